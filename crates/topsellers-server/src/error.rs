//! The one error shape of the API: every failure is classified once into an [`ErrorKind`], and the
//! kind alone decides the HTTP status.
//!
//! ```json
//! {"error":{"kind":"bad_request","parameter":"n","message":"n must be an integer from 1 to 100","allowed":"1..=100"}}
//! ```

use crate::sink::RejectedRecord;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What went wrong, from the client's point of view: whether to fix the request, authenticate, or
/// retry later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    /// Only for a `Content-Encoding` the server does not decode.
    UnsupportedEncoding,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The only place a kind becomes a status.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Seconds a client is told to wait after a 503: short, because overload and sink outages are
/// expected to be brief and producers retry anyway.
const RETRY_AFTER_SECS: &str = "1";

/// An API error on its way to becoming a response.
#[derive(Debug, Serialize)]
pub(crate) struct ApiError {
    pub kind: ErrorKind,
    /// The query parameter or field to blame, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    pub message: String,
    /// What would have been accepted instead, when that is a short list or range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<serde_json::Value>,
    /// Per-record details when a submitted body held no valid purchase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Vec<RejectedRecord>>,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            parameter: None,
            message: message.into(),
            allowed: None,
            rejected: None,
        }
    }

    pub(crate) fn bad_parameter(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            parameter: Some(parameter.into()),
            ..ApiError::new(ErrorKind::BadRequest, message)
        }
    }

    pub(crate) fn allowed(mut self, allowed: serde_json::Value) -> Self {
        self.allowed = Some(allowed);
        self
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(flatten)]
    error: &'a ApiError,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_with_request_id(None)
    }
}

impl ApiError {
    /// The response, with `request_id` inside the error object when given (`POST /v1/purchases`
    /// does, so a producer's log line can be matched with the server's; every response also has
    /// it in `X-Request-Id`).
    pub(crate) fn into_response_with_request_id(self, request_id: Option<&str>) -> Response {
        let envelope = Envelope {
            error: ErrorBody {
                error: &self,
                request_id,
            },
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            // Serialising strings and numbers cannot fail; keep a valid body even if it somehow did.
            br#"{"error":{"kind":"internal","message":"error could not be rendered"}}"#.to_vec()
        });
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self.kind {
            ErrorKind::Unavailable => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            ErrorKind::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"topsellers\""),
                );
            }
            ErrorKind::UnsupportedEncoding => {
                // RFC 7694: say which codings are accepted.
                headers.insert(
                    header::ACCEPT_ENCODING,
                    HeaderValue::from_static("identity"),
                );
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_their_status() {
        let cases = [
            (ErrorKind::BadRequest, 400),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::NotFound, 404),
            (ErrorKind::MethodNotAllowed, 405),
            (ErrorKind::PayloadTooLarge, 413),
            (ErrorKind::UnsupportedEncoding, 415),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Internal, 500),
        ];
        for (kind, status) in cases {
            assert_eq!(kind.status().as_u16(), status, "{kind:?}");
        }
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let r = ApiError::new(ErrorKind::Unavailable, "busy").into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
