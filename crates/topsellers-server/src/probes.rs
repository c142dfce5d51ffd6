//! Liveness, readiness and metrics.

use crate::error::{ApiError, ErrorKind};
use crate::http::Shared;
use crate::render::rfc3339;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use topsellers_model::TimestampMs;

fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The process is up and answering.
pub(crate) fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Ready once a snapshot was published. A stale snapshot stays ready on purpose: serving old
/// results beats taking every server out of rotation when the aggregator is down; the age is
/// reported so that monitoring can alert on it.
pub(crate) fn readyz(ctx: &Shared) -> Response {
    match ctx.app.results.current() {
        None => ApiError::new(
            ErrorKind::Unavailable,
            "no results published yet; the server is warming up and will be ready after the first snapshot",
        )
        .into_response(),
        Some(snapshot) => {
            let age_ms = (now_ms() - snapshot.computed_at_ms).max(0);
            Json(serde_json::json!({
                "status": "ready",
                "snapshot_version": snapshot.version,
                "snapshot_age_seconds": age_ms as f64 / 1000.0,
                "as_of": rfc3339(snapshot.as_of_ms),
                "computed_at": rfc3339(snapshot.computed_at_ms),
            }))
            .into_response()
        }
    }
}

pub(crate) fn metrics(ctx: &Shared) -> Response {
    let snapshot = ctx.app.results.current();
    let text = ctx.app.metrics.render(snapshot.as_deref(), now_ms());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
