//! The web page: static HTML, CSS and JavaScript compiled into the binary, no build step and no
//! outside requests.

use crate::error::{ApiError, ErrorKind};
use crate::http::Shared;
use crate::ServerConfig;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Where the page reads its refresh interval from; replaced once when the router is built.
const REFRESH_PLACEHOLDER: &str = "{{PAGE_REFRESH_SECS}}";

/// Assets may change with every release, so browsers revalidate them rather than cache blindly.
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

pub(crate) fn render_page(config: &ServerConfig) -> Bytes {
    Bytes::from(INDEX_HTML.replace(REFRESH_PLACEHOLDER, &config.page_refresh_secs.to_string()))
}

pub(crate) fn index(ctx: &Shared) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, NO_CACHE),
        ],
        ctx.page.clone(),
    )
        .into_response()
}

pub(crate) fn asset(file: &str) -> Response {
    let (content_type, body) = match file {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        _ => {
            return ApiError::new(
                ErrorKind::NotFound,
                "no such asset; the page uses /assets/app.js and /assets/app.css",
            )
            .into_response()
        }
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, NO_CACHE),
        ],
        body,
    )
        .into_response()
}
