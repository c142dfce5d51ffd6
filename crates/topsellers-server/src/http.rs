//! The router, the state it shares, and serving it.

use crate::edge::EdgeLayer;
use crate::error::{ApiError, ErrorKind};
use crate::metrics::Route;
use crate::{api, page, probes, purchases, Metrics, PurchaseSink, Results, ServerConfig};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Everything the handlers need. Cloning is cheap (reference counts).
#[derive(Clone)]
pub struct AppState {
    /// What reads are answered from.
    pub results: Results,
    /// Where `POST /v1/purchases` hands bodies; `None` on a node that does not ingest (the endpoint
    /// then answers 403).
    pub sink: Option<Arc<dyn PurchaseSink>>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ServerConfig>,
}

/// The state behind one router: the caller's [`AppState`] plus what the router derives from it
/// once. One `Arc`, so extracting it per request costs one reference count.
pub(crate) struct Shared {
    pub app: AppState,
    /// Permits for concurrent purchase submissions (load shedding).
    pub post_permits: Semaphore,
    /// The web page with its settings filled in.
    pub page: bytes::Bytes,
    /// `Cache-Control` of tagged answers, from the configuration.
    pub cache_control: axum::http::HeaderValue,
}

pub(crate) type Ctx = Arc<Shared>;

impl Shared {
    /// Counts `response` under `route` and passes it on. The routes count their own answers
    /// rather than a middleware doing it for all: a middleware boxes every request's future, a
    /// cost the hot read path does not need to pay.
    pub(crate) fn counted(&self, route: Route, response: Response) -> Response {
        self.app
            .metrics
            .record_http(route, response.status().as_u16());
        response
    }
}

/// The whole HTTP API as a router, ready for [`serve`] or for in-process tests.
///
/// Reads (`/v1/top`, `/v1/categories`, probes, the page) never wait on anything but memory, so
/// they are neither shed nor timed out; only `POST /v1/purchases` is limited by
/// `server.max_concurrent_posts`, `server.max_body_bytes` and `server.request_timeout_ms`.
///
/// Results that a follower reports stale (see [`Results::refreshed`]) are still answered with
/// 200s, marked `X-Results-Stale`: no page request ever gets a 5xx because a store is down.
///
/// Every response carries an `X-Request-Id`: the client's own when it is 1 to 64 characters of
/// `[A-Za-z0-9._-]`, else a generated one. A panicking handler becomes a 500 JSON error.
pub fn router(state: AppState) -> Router {
    let page = page::render_page(&state.config);
    let metrics = Arc::clone(&state.metrics);
    let cache_control = axum::http::HeaderValue::from_str(&state.config.cache_control())
        .unwrap_or(crate::results::CACHE_CONTROL);
    let ctx: Ctx = Arc::new(Shared {
        post_permits: Semaphore::new(state.config.max_concurrent_posts),
        page,
        cache_control,
        app: state,
    });
    Router::new()
        .route(
            "/v1/top",
            get(|State(ctx): State<Ctx>, request: Request| async move {
                ctx.counted(Route::Top, api::top(&ctx, &request))
            }),
        )
        .route(
            "/v1/categories",
            get(|State(ctx): State<Ctx>, request: Request| async move {
                ctx.counted(Route::Categories, api::categories(&ctx, &request))
            }),
        )
        .route(
            "/v1/purchases",
            post(|State(ctx): State<Ctx>, request: Request| async move {
                let response = purchases::submit(&ctx, request).await;
                ctx.counted(Route::Purchases, response)
            }),
        )
        .route(
            "/healthz",
            get(|State(ctx): State<Ctx>| async move {
                ctx.counted(Route::Healthz, probes::healthz())
            }),
        )
        .route(
            "/readyz",
            get(|State(ctx): State<Ctx>| async move {
                ctx.counted(Route::Readyz, probes::readyz(&ctx))
            }),
        )
        .route(
            "/metrics",
            get(|State(ctx): State<Ctx>| async move {
                ctx.counted(Route::Metrics, probes::metrics(&ctx))
            }),
        )
        .route(
            "/",
            get(|State(ctx): State<Ctx>| async move { ctx.counted(Route::Page, page::index(&ctx)) }),
        )
        .route(
            "/assets/{file}",
            get(
                |State(ctx): State<Ctx>, Path(file): Path<String>| async move {
                    ctx.counted(Route::Assets, page::asset(&file))
                },
            ),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(EdgeLayer { metrics })
        .with_state(ctx)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets in-flight
/// requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Small JSON answers must not wait for Nagle's algorithm to coalesce them.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

const ENDPOINTS: &str = "GET /v1/top, GET /v1/categories, POST /v1/purchases, GET /healthz, GET /readyz, GET /metrics and the web page at GET /";

async fn not_found(State(ctx): State<Ctx>) -> Response {
    let response = ApiError::new(
        ErrorKind::NotFound,
        format!("no such endpoint; this server answers {ENDPOINTS}"),
    )
    .into_response();
    ctx.counted(Route::Unmatched, response)
}

async fn method_not_allowed(State(ctx): State<Ctx>, request: Request) -> Response {
    let route = Route::of_path(request.uri().path());
    let response = ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "method {} is not allowed on {}; this server answers {ENDPOINTS}",
            request.method(),
            route.path()
        ),
    )
    .into_response();
    ctx.counted(route, response)
}
