//! What the agent's HTTP intakes share: the bearer-token check, one JSON error shape, bodies read up to a bound
//! (a longer one becomes an `oversized` dead letter, not just a 413 the operator never sees), and the server
//! thread that stops with the agent.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use topsellers_model::{DeadLetter, RejectReason};

/// Whether the request carries `Authorization: Bearer <token>` (always, when no token is configured).
pub fn authorized(headers: &HeaderMap, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(token)
}

/// The one error shape: `{"error": "..."}`.
pub fn answer(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

/// `503` with `Retry-After`: the spool is at its bound. The client keeps the events and sends them again.
pub fn spool_full() -> Response {
    let mut r = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "the agent's spool is full because the downstream is not taking events; retry later",
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static("5"));
    r
}

/// The body, or the `oversized` dead letter (and the `413` to answer) when it is longer than `max` bytes.
/// A body announced as too long is refused unread; one that turns out too long is read no further than `max`.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    source: &str,
    setting: &str,
) -> Result<Bytes, (DeadLetter, Response)> {
    let announced = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_long = |size: String| {
        let message = format!(
            "the request body is {size}, more than {setting} ({max} bytes); send smaller requests or raise the limit"
        );
        let letter = DeadLetter {
            source: source.to_string(),
            location: "body".into(),
            field: None,
            reason: RejectReason::Oversized,
            message: message.clone(),
            record: String::new(),
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        (letter, answer(StatusCode::PAYLOAD_TOO_LARGE, &message))
    };
    if let Some(len) = announced.filter(|&len| len > max as u64) {
        return Err(too_long(format!("{len} bytes")));
    }
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| too_long("longer than the limit or cut off".into()))
}

/// Serves `router` on `listener` from a thread of its own (one tokio worker) until `stop` is set.
pub fn spawn(
    name: &str,
    listener: std::net::TcpListener,
    router: Router,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let name = name.to_string();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let shutdown = async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(target: "topsellers", "the agent's {name} stopped: {e}");
                }
            });
        })
}

/// Binds `address` for the setting `key`, naming both when it fails.
pub fn bind(address: &str, key: &str) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(address).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {key} {address:?} ({e}); pick a free address"),
        )
    })
}
