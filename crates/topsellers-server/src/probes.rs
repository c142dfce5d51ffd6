//! Liveness, readiness and metrics.

use crate::error::{ApiError, ErrorKind};
use crate::freshness::wall_clock_ms as now_ms;
use crate::http::Shared;
use crate::render::{as_of, is_empty, rfc3339};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The process is up and answering.
pub(crate) fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Ready once a snapshot was published. A stale snapshot stays ready on purpose: serving old
/// results beats taking every server out of rotation when the aggregator is down; the age is
/// reported so that monitoring can alert on it. A node that has counted nothing yet is ready too
/// (it is up and answers, with empty lists): `events_counted` is 0 and `empty` is true.
///
/// The same holds when the results store cannot be read: the server stays ready with the last
/// results, and says `"stale": true`, `"stale_seconds"` (since the last successful refresh) and
/// `"store_error"` (why the last refresh failed; `null` when it did not). `stale_seconds` is 0
/// while fresh; a server without a results store is never stale.
pub(crate) fn readyz(ctx: &Shared) -> Response {
    let now = now_ms();
    let freshness = ctx
        .app
        .results
        .freshness(now, ctx.app.config.stale_after_ms);
    match ctx.app.results.current() {
        None => {
            let message = match &freshness.store_error {
                Some(error) => format!(
                    "no results yet: the results store cannot be read ({error}); the server will be ready after the first successful refresh"
                ),
                None => "no results published yet; the server is warming up and will be ready after the first snapshot".to_string(),
            };
            ApiError::new(ErrorKind::Unavailable, message).into_response()
        }
        Some(snapshot) => {
            let age_ms = (now - snapshot.computed_at_ms).max(0);
            Json(serde_json::json!({
                "status": "ready",
                "snapshot_version": snapshot.version,
                "snapshot_age_seconds": age_ms as f64 / 1000.0,
                "as_of": as_of(&snapshot),
                "computed_at": rfc3339(snapshot.computed_at_ms),
                "events_counted": snapshot.events_counted,
                "empty": is_empty(&snapshot),
                "stale": freshness.stale,
                "stale_seconds": freshness.stale_seconds,
                "store_error": freshness.store_error,
                "last_refresh": freshness.last_refresh_ms.and_then(rfc3339),
                "refresh_failures": freshness.refresh_failures,
            }))
            .into_response()
        }
    }
}

pub(crate) fn metrics(ctx: &Shared) -> Response {
    let now = now_ms();
    let snapshot = ctx.app.results.current();
    let mut text = ctx.app.metrics.render(snapshot.as_deref(), now);
    let freshness = ctx
        .app
        .results
        .freshness(now, ctx.app.config.stale_after_ms);
    crate::metrics::render_freshness(&mut text, &freshness);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
