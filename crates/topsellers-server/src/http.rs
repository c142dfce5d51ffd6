//! The router, the state it shares, and serving it.

use crate::error::{ApiError, ErrorKind};
use crate::metrics::Route;
use crate::{api, page, probes, purchases, Metrics, PurchaseSink, Results, ServerConfig};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;

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
}

pub(crate) type Ctx = Arc<Shared>;

/// The whole HTTP API as a router, ready for [`serve`] or for in-process tests.
///
/// Reads (`/v1/top`, `/v1/categories`, probes, the page) never wait on anything but memory, so
/// they are neither shed nor timed out; only `POST /v1/purchases` is limited by
/// `server.max_concurrent_posts`, `server.max_body_bytes` and `server.request_timeout_ms`.
pub fn router(state: AppState) -> Router {
    let page = page::render_page(&state.config);
    let ctx: Ctx = Arc::new(Shared {
        post_permits: Semaphore::new(state.config.max_concurrent_posts),
        page,
        app: state,
    });
    Router::new()
        .route("/v1/top", get(api::top))
        .route("/v1/categories", get(api::categories))
        .route("/v1/purchases", post(purchases::submit))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .route("/", get(page::index))
        .route("/assets/{file}", get(page::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(ctx.clone(), count_requests))
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

/// Counts every answer by route and status class, including 404s and 405s.
async fn count_requests(State(ctx): State<Ctx>, request: Request, next: Next) -> Response {
    let route = Route::of_path(request.uri().path());
    let response = next.run(request).await;
    ctx.app
        .metrics
        .record_http(route, response.status().as_u16());
    response
}

const ENDPOINTS: &str = "GET /v1/top, GET /v1/categories, POST /v1/purchases, GET /healthz, GET /readyz, GET /metrics and the web page at GET /";

/// A bug must not cost the client its connection, nor leak the panic message: a plain 500.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; answering 500");
    ApiError::new(
        ErrorKind::Internal,
        "internal error while answering; the request may be retried",
    )
    .into_response()
}

async fn not_found() -> Response {
    ApiError::new(
        ErrorKind::NotFound,
        format!("no such endpoint; this server answers {ENDPOINTS}"),
    )
    .into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "method {} is not allowed on {}; this server answers {ENDPOINTS}",
            request.method(),
            Route::of_path(request.uri().path()).path()
        ),
    )
    .into_response()
}
