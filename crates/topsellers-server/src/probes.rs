//! Liveness, readiness and metrics.

use crate::error::{ApiError, ErrorKind};
use crate::http::Shared;
use crate::render::{as_of, is_empty, rfc3339};
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
/// reported so that monitoring can alert on it. A node that has counted nothing yet is ready too
/// (it is up and answers, with empty lists): `events_counted` is 0 and `empty` is true.
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
                "as_of": as_of(&snapshot),
                "computed_at": rfc3339(snapshot.computed_at_ms),
                "events_counted": snapshot.events_counted,
                "empty": is_empty(&snapshot),
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
