//! What every request passes through: a request id, and panic isolation.
//!
//! One layer does both, instead of `tower_http`'s catch-panic plus a request-id layer, because
//! `Router::layer` wraps every route in another boxed future per layer; the hot read path pays
//! for one box here, not two.
//!
//! The request id: an incoming `X-Request-Id` of 1 to 64 characters from `[A-Za-z0-9._-]` is kept;
//! anything else (absent, too long, other characters that could forge log lines or carry personal
//! data) is replaced by a generated one. Handlers read the final id from the request's
//! `X-Request-Id` header, and every response, errors and panics included, carries it back.

use crate::error::{ApiError, ErrorKind};
use crate::metrics::Route;
use crate::Metrics;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tower::{Layer, Service};

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id kept as-is.
pub(crate) const MAX_REQUEST_ID_LEN: usize = 64;

/// The request id of a `POST` request that went through [`EdgeLayer`] (other methods keep the
/// client's header as sent); empty for one that did not.
pub(crate) fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// True for an id worth keeping: short, and only characters safe in logs, headers and file names.
pub(crate) fn is_valid_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A new id, `<8 hex digits per process>-<hex counter>`: unique within a process without a
/// random number per request, and distinct across processes and restarts with high probability.
pub(crate) fn generate_request_id() -> HeaderValue {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let prefix = *PREFIX.get_or_init(|| {
        // `RandomState` is seeded from the OS; enough randomness for an id prefix, no extra crate.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish() as u32
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 8 + 1 + 16];
    write_hex(&mut buf[..8], u64::from(prefix));
    buf[8] = b'-';
    let digits = (16 - n.leading_zeros() as usize / 4).max(1);
    write_hex(&mut buf[9..9 + digits], n);
    HeaderValue::from_bytes(&buf[..9 + digits]).expect("hex digits and a dash are a valid header")
}

/// Writes the low `out.len()` hex digits of `value` into `out`, most significant first.
fn write_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// The layer [`router`](crate::router) puts around every route.
#[derive(Clone)]
pub(crate) struct EdgeLayer {
    pub metrics: Arc<Metrics>,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response>,
    // Axum's route futures are `Unpin` (they box the handler), so no pin projection is needed.
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = match request.headers().get(X_REQUEST_ID) {
            Some(given) if is_valid_request_id(given.as_bytes()) => given.clone(),
            _ => {
                let id = generate_request_id();
                // Only the purchase handler reads the id from the request; reads skip the insert.
                if request.method() == Method::POST {
                    request.headers_mut().insert(X_REQUEST_ID, id.clone());
                }
                id
            }
        };
        let state = match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => State::Running(future),
            Err(_) => State::Panicked,
        };
        EdgeFuture {
            state,
            id: Some(id),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

enum State<F> {
    Running(F),
    Panicked,
}

pub(crate) struct EdgeFuture<F> {
    state: State<F>,
    id: Option<HeaderValue>,
    metrics: Arc<Metrics>,
}

impl<F, E> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let outcome = match &mut this.state {
            State::Running(future) => {
                match catch_unwind(AssertUnwindSafe(|| Pin::new(future).poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => result,
                    Err(_) => Ok(panic_response(&this.metrics)),
                }
            }
            State::Panicked => Ok(panic_response(&this.metrics)),
        };
        Poll::Ready(outcome.map(|mut response| {
            if let Some(id) = this.id.take() {
                response.headers_mut().insert(X_REQUEST_ID, id);
            }
            response
        }))
    }
}

/// A bug must not cost the client its connection, nor leak the panic message: a plain 500. The
/// route is unknown here: the handler that knew it is gone.
fn panic_response(metrics: &Metrics) -> Response {
    tracing::error!("a request handler panicked; answering 500");
    let response = ApiError::new(
        ErrorKind::Internal,
        "internal error while answering; the request may be retried",
    )
    .into_response();
    metrics.record_http(Route::Unknown, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_short_and_plain() {
        for good in ["a", "req-1.2_3", "ABCdef0123", &"x".repeat(64)] {
            assert!(is_valid_request_id(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            &"x".repeat(65) as &str,
            "a b",
            "a\nb",
            "a/b",
            "é",
            "a,b",
            "jane@example.com",
        ] {
            assert!(!is_valid_request_id(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate_request_id();
        let b = generate_request_id();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert!(is_valid_request_id(id.as_bytes()), "{id:?}");
            assert_eq!(id.as_bytes()[8], b'-', "{id:?}");
        }
        assert_eq!(
            a.as_bytes()[..8],
            b.as_bytes()[..8],
            "one prefix per process"
        );
    }

    #[tokio::test]
    async fn panics_become_500s_with_the_request_id() {
        use tower::{service_fn, ServiceExt};
        let metrics = Arc::new(Metrics::new());
        let layer = EdgeLayer {
            metrics: Arc::clone(&metrics),
        };
        let request = || {
            Request::builder()
                .header(X_REQUEST_ID, "r1")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let panics_in_call = layer.layer(service_fn(
            |_: Request| -> std::future::Ready<Result<Response, std::convert::Infallible>> {
                panic!("bug in call")
            },
        ));
        let panics_in_poll = layer.layer(service_fn(|_: Request| {
            std::future::poll_fn(|_| -> Poll<Result<Response, std::convert::Infallible>> {
                panic!("bug in poll")
            })
        }));
        for response in [
            panics_in_call.oneshot(request()).await.unwrap(),
            panics_in_poll.oneshot(request()).await.unwrap(),
        ] {
            assert_eq!(response.status(), 500);
            assert_eq!(response.headers()[X_REQUEST_ID], "r1");
        }
        let fine = layer.layer(service_fn(|r: Request| {
            assert_eq!(r.method(), Method::POST);
            // The handler sees the final id in the request.
            let id = request_id(r.headers()).to_string();
            std::future::ready(Ok::<_, std::convert::Infallible>(id.into_response()))
        }));
        let response = fine
            .oneshot(
                Request::post("/")
                    .header(X_REQUEST_ID, "bad id")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let id = response.headers()[X_REQUEST_ID].clone();
        assert_ne!(id, "bad id");
        let body = axum::body::to_bytes(response.into_body(), 100)
            .await
            .unwrap();
        assert_eq!(body, id.as_bytes());
    }

    #[test]
    fn hex_is_fixed_width() {
        let mut out = [0u8; 8];
        write_hex(&mut out, 0xbeef);
        assert_eq!(&out, b"0000beef");
    }
}
