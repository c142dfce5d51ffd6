//! The read API: `GET /v1/top` and `GET /v1/categories`.
//!
//! Both answer from the published snapshot without locks or awaits; the default `/v1/top` answer
//! is a pre-rendered body, so the hot path allocates nothing for the body.

use crate::error::ApiError;
use crate::http::Shared;
use crate::query::{normalise_category, parse_n, parse_top_query};
use crate::render;
use crate::results::{Prepared, Rendered, CACHE_CONTROL, DEFAULT_N, JSON};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::borrow::Cow;

/// Largest `n` accepted before the first snapshot says what `top_k` is.
const WARMING_UP_MAX_N: usize = 1000;

pub(crate) fn top(ctx: &Shared, request: &Request) -> Response {
    answer_top(ctx, request.uri().query(), request.headers())
}

fn answer_top(ctx: &Shared, query: Option<&str>, headers: &HeaderMap) -> Response {
    let query = match parse_top_query(query) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let category = match query.category.as_deref().map(normalise_category) {
        None => Cow::Borrowed(""),
        Some(Ok(c)) => c,
        Some(Err(e)) => return e.into_response(),
    };
    ctx.app.results.with_prepared(|prepared| {
        let Some(prepared) = prepared.filter(|p| !p.snapshot.windows.is_empty()) else {
            let n = match query.n.as_deref().map(|n| parse_n(n, WARMING_UP_MAX_N)) {
                None => DEFAULT_N,
                Some(Ok(n)) => n,
                Some(Err(e)) => return e.into_response(),
            };
            let body = render::warming_up_top_body(&category, query.window.as_deref(), n);
            return uncached_json(Bytes::from(body));
        };
        let window = match query.window.as_deref() {
            None => 0,
            Some(name) => match prepared.window_index(name) {
                Some(w) => w,
                None => return unknown_window(prepared, name).into_response(),
            },
        };
        let n = match query
            .n
            .as_deref()
            .map(|n| parse_n(n, prepared.snapshot.top_k.max(1)))
        {
            None => prepared.default_n,
            Some(Ok(n)) => n,
            Some(Err(e)) => return e.into_response(),
        };
        let on_demand;
        let rendered = match prepared.pre_rendered(&category, window) {
            Some(hot) if n == prepared.default_n => hot,
            _ => {
                on_demand = prepared.render(&category, window, n);
                &on_demand
            }
        };
        respond(ctx, rendered, headers)
    })
}

fn unknown_window(prepared: &Prepared, name: &str) -> ApiError {
    let names: Vec<&str> = prepared
        .snapshot
        .windows
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    ApiError::bad_parameter(
        "window",
        format!(
            "window {name:?} is not served; use one of {}",
            names.join(", ")
        ),
    )
    .allowed(serde_json::json!(names))
}

/// 200 with the body, or 304 when the client already holds this answer; the headers are the
/// ones built with the answer at publish time, plus the configured `Cache-Control`.
///
/// Stale results (a follower reported a failed refresh, or none for `server.stale_after_ms`) are
/// answered all the same, with the [stale variant](Rendered::stale) of the answer: never an error.
fn respond(ctx: &Shared, rendered: &Rendered, request_headers: &HeaderMap) -> Response {
    let stale;
    let rendered = match ctx.app.results.stale_seconds(ctx.app.config.stale_after_ms) {
        None => rendered,
        Some(seconds) => {
            stale = rendered.stale(seconds);
            &stale
        }
    };
    let mut response = match request_headers.get(header::IF_NONE_MATCH) {
        Some(tags) if etag_matches(tags, &rendered.etag) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        _ => Response::new(Body::from(rendered.body.clone())),
    };
    let headers = response.headers_mut();
    *headers = rendered.headers.clone();
    // Replaces the pre-built value in place: the map does not grow.
    headers.insert(header::CACHE_CONTROL, ctx.cache_control.clone());
    response
}

/// A body that has no tag (warming up): cacheable for a second, without the configured
/// `stale-*` allowances (an empty list is nothing for a cache to fall back on).
fn uncached_json(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, JSON);
    headers.insert(header::CACHE_CONTROL, CACHE_CONTROL);
    response
}

/// `If-None-Match` holds `*` or a comma-separated list of tags, possibly weak (`W/"..."`); weak
/// comparison is the rule for `If-None-Match`.
fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let tags = if_none_match.as_bytes();
    if tags == etag.as_bytes() {
        return true;
    }
    tags.split(|&b| b == b',').any(|tag| {
        let tag = tag.trim_ascii();
        let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
        tag == b"*" || tag == etag.as_bytes()
    })
}

pub(crate) fn categories(ctx: &Shared, request: &Request) -> Response {
    // /v1/categories takes no parameters; any given (cache-busters, tracking tags) are ignored
    // rather than failing a page load.
    ctx.app.results.with_prepared(|prepared| match prepared {
        None => uncached_json(Bytes::from(render::warming_up_categories_body())),
        Some(p) => respond(ctx, &p.categories, request.headers()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let etag = HeaderValue::from_static("\"42.a\"");
        for matching in ["\"42.a\"", "W/\"42.a\"", "\"x\", \"42.a\"", "*"] {
            assert!(
                etag_matches(&HeaderValue::from_static(matching), &etag),
                "{matching}"
            );
        }
        for other in ["\"42.b\"", "42.a", "\"42.a"] {
            assert!(
                !etag_matches(&HeaderValue::from_static(other), &etag),
                "{other}"
            );
        }
    }
}
