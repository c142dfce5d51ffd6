//! `POST /v1/purchases`: authenticate, bound, and hand the body to the [`PurchaseSink`].
//!
//! [`PurchaseSink`]: crate::PurchaseSink

use crate::edge::request_id;
use crate::error::{ApiError, ErrorKind};
use crate::http::Shared;
use crate::sink::{SubmitContext, SubmitError, SubmitReport};
use crate::PurchaseSink;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::AbortHandle;

/// The 200 body: the sink's report and the request id the client can quote.
#[derive(Serialize)]
struct Accepted {
    #[serde(flatten)]
    report: SubmitReport,
    request_id: String,
}

pub(crate) async fn submit(ctx: &Shared, request: Request) -> Response {
    let request_id = request_id(request.headers()).to_string();
    match accept(ctx, request, request_id.clone()).await {
        Ok(report) => Json(Accepted { report, request_id }).into_response(),
        Err(e) => e.into_response_with_request_id(Some(&request_id)),
    }
}

async fn accept(
    ctx: &Shared,
    request: Request,
    request_id: String,
) -> Result<SubmitReport, ApiError> {
    let config = &ctx.app.config;
    let Some(token) = config.auth_token.as_deref() else {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "POST /v1/purchases is disabled on this server; set server.auth_token in the config to enable it",
        ));
    };
    authorize(request.headers(), token)?;
    let Some(sink) = ctx.app.sink.clone() else {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "this server does not ingest purchases (it only serves results); send them to a node that ingests",
        ));
    };
    check_encoding(request.headers())?;
    // Shed load before reading the body, so an overloaded server spends nothing on the excess.
    let Ok(_permit) = ctx.post_permits.try_acquire() else {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            format!(
                "too many purchase submissions at once (server.max_concurrent_posts = {}); retry after the Retry-After delay",
                config.max_concurrent_posts
            ),
        ));
    };
    let limit = config.max_body_bytes;
    if declared_length(request.headers()).is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let work = async move {
        let body = read_body(request, limit).await?;
        run_isolated(sink, body, SubmitContext::new(request_id))
            .await?
            .map_err(|e| match e {
                SubmitError::Unavailable(message) => ApiError::new(ErrorKind::Unavailable, message),
                SubmitError::BadRequest(message) => ApiError::new(ErrorKind::BadRequest, message),
            })
    };
    let report = tokio::time::timeout(timeout, work).await.map_err(|_| {
        ApiError::new(
            ErrorKind::Unavailable,
            format!(
                "the submission took longer than server.request_timeout_ms = {} ms and may not be durable; retry it (events with an event_id are deduplicated)",
                config.request_timeout_ms
            ),
        )
    })??;
    nothing_valid(report)
}

/// Runs the sink on its own task, so that a panic in the node's code becomes a 500 for this
/// request instead of unwinding through the server. Dropping the returned future (the timeout)
/// aborts the task, as the [`PurchaseSink`](crate::PurchaseSink) contract says.
async fn run_isolated(
    sink: Arc<dyn PurchaseSink>,
    body: Bytes,
    context: SubmitContext,
) -> Result<Result<SubmitReport, SubmitError>, ApiError> {
    let sink_failed = || {
        tracing::error!("the purchase sink panicked; answering 500");
        ApiError::new(
            ErrorKind::Internal,
            "internal error while storing the purchases; they may not be durable, retry the request",
        )
    };
    let future =
        std::panic::catch_unwind(AssertUnwindSafe(|| sink.submit_with_context(body, context)))
            .map_err(|_| sink_failed())?;
    let task = tokio::spawn(future);
    let _abort_on_drop = AbortOnDrop(task.abort_handle());
    task.await.map_err(|_| sink_failed())
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        // A no-op when the task has finished.
        self.0.abort();
    }
}

/// A body in which no record was usable is the client's mistake: 400, with the reasons.
fn nothing_valid(report: SubmitReport) -> Result<SubmitReport, ApiError> {
    if report.accepted > 0 || report.duplicates > 0 {
        return Ok(report);
    }
    if report.rejected.is_empty() {
        if report.skipped > 0 {
            return Ok(report);
        }
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "the request body holds no purchases; send NDJSON (one JSON object per line) or a JSON array of purchases",
        ));
    }
    let mut error = ApiError::new(
        ErrorKind::BadRequest,
        format!(
            "none of the {} records in the body is valid; see rejected for where and why",
            report.rejected.len()
        ),
    );
    error.rejected = Some(report.rejected);
    Err(error)
}

/// Checks `Authorization: Bearer <token>` in constant time with respect to the token's content.
fn authorize(headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorKind::Unauthorized, message);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "missing Authorization header; send Authorization: Bearer <server.auth_token>",
        ));
    };
    let presented = value
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .or_else(|| value.as_bytes().strip_prefix(b"bearer "))
        .ok_or_else(|| {
            unauthorized("the Authorization header is not a bearer token; send Authorization: Bearer <server.auth_token>")
        })?;
    if constant_time_eq(presented, token.as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized(
            "the bearer token does not match server.auth_token; check the token the client sends",
        ))
    }
}

/// Compares without returning early on the first difference, so response time does not reveal how
/// much of a guessed token was right. The length may leak; a random token's length is no secret.
fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    let difference = presented
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// Only uncompressed bodies are taken. A compressed body would otherwise reach the parser as
/// binary and be rejected as "not valid UTF-8", which points the client the wrong way; and
/// decompressing would need its own bomb protection for little gain (purchase batches are small and
/// producers sit close to the server).
fn check_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut encodings = headers.get_all(header::CONTENT_ENCODING).iter().peekable();
    if encodings.peek().is_none() {
        return Ok(());
    }
    let mut named = Vec::new();
    for value in encodings {
        let text = String::from_utf8_lossy(value.as_bytes());
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !coding.eq_ignore_ascii_case("identity") {
                // Echo what was sent, but not an unbounded header back into the body.
                named.push(coding.chars().take(32).collect::<String>());
            }
        }
    }
    if named.is_empty() {
        return Ok(());
    }
    let mut error = ApiError::new(
        ErrorKind::UnsupportedEncoding,
        format!(
            "Content-Encoding: {} is not supported on POST /v1/purchases; send the body uncompressed and remove the Content-Encoding header",
            named.join(", ")
        ),
    )
    .allowed(serde_json::json!(["identity"]));
    error.parameter = Some("Content-Encoding".to_string());
    Err(error)
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!(
            "the request body is larger than server.max_body_bytes = {limit}; split it into smaller batches"
        ),
    )
}

/// Reads the whole body, failing as soon as it exceeds `limit` (a client may lie about or omit
/// Content-Length).
async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(ApiError::new(
            ErrorKind::BadRequest,
            format!("could not read the request body: {e}; send the whole body again"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
    }

    #[test]
    fn nothing_valid_means_400_with_reasons() {
        let rejected = crate::RejectedRecord {
            location: "line 1".into(),
            field: Some("quantity".into()),
            reason: "invalid_field".into(),
            message: "quantity must be an integer".into(),
        };
        let all_bad = SubmitReport {
            rejected: vec![rejected.clone()],
            ..SubmitReport::default()
        };
        let e = nothing_valid(all_bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert_eq!(e.rejected.as_deref(), Some(&[rejected.clone()][..]));

        let some_good = SubmitReport {
            accepted: 1,
            rejected: vec![rejected],
            ..SubmitReport::default()
        };
        assert!(nothing_valid(some_good).is_ok());
        let only_duplicates = SubmitReport {
            duplicates: 2,
            ..SubmitReport::default()
        };
        assert!(nothing_valid(only_duplicates).is_ok());
        assert!(nothing_valid(SubmitReport::default()).is_err());
    }
}
