//! The HTTP face of topsellers: answers "top N sellers in category X" from an in-memory snapshot,
//! accepts purchases over HTTP, serves the web page and the metrics.
//!
//! Reads never touch a store or a lock: the node [`publish`](Results::publish)es each new
//! [`Snapshot`](topsellers_model::Snapshot) into [`Results`], which renders the hot answers once, and
//! every `GET /v1/top` is a pointer load, a map lookup and a reference-counted body. Writes go to a
//! [`PurchaseSink`] that the node implements; a 200 means the purchases are durable.
//!
//! ```
//! use std::sync::Arc;
//! use topsellers_server::{router, AppState, Metrics, Results, ServerConfig};
//!
//! let results = Results::new();
//! let app = router(AppState {
//!     results: results.clone(),
//!     sink: None, // read-only: POST /v1/purchases answers 403
//!     metrics: Arc::new(Metrics::new()),
//!     config: Arc::new(ServerConfig::default()),
//! });
//! // Serve `app` with `topsellers_server::serve(listener, app, shutdown)`; meanwhile the node calls
//! // `results.publish(snapshot)` whenever it has new results.
//! # let _ = app;
//! ```
//!
//! Endpoints: `GET /v1/top?category=&window=&n=`, `GET /v1/categories`, `POST /v1/purchases`,
//! `GET /healthz`, `GET /readyz`, `GET /metrics`, and the page at `GET /`. Every error has the same
//! JSON shape, `{"error":{"kind","message","parameter"?,"allowed"?}}`.
//!
//! Rules a client can rely on:
//! - **Unknown query parameters are ignored** (cache-busters such as `_=123`, `utm_*` tags); a bad
//!   value of a known one, or a known one given twice, is a 400 naming it.
//! - **Before the first snapshot** answers are 200 with empty lists and `"warming_up": true`, and
//!   `/readyz` is 503.
//! - **A node that has counted nothing yet** (a snapshot with `events_counted == 0`, whatever its
//!   event time: with idle advance on it moves with the wall clock before any purchase) is up and ready: answers are 200 with empty lists, `"empty": true`, and
//!   `window_start`, `window_end` and `as_of` `null` (its zero times are no real times); `/readyz`
//!   is 200 with `"events_counted": 0` and `"empty": true`. The key is absent otherwise.
//! - **Stale results are served, never an error.** A server that follows a results store reports
//!   each refresh ([`Results::refreshed`], [`Results::refresh_failed`]). When the last one failed,
//!   or the last success is older than `server.stale_after_ms`, `/v1/top` and `/v1/categories`
//!   still answer 200 with the last results, plus the header `X-Results-Stale: <seconds>` and the
//!   body keys `"stale": true, "stale_seconds": <seconds>` (both absent while fresh); `/readyz`
//!   stays 200 and adds `store_error`; `/metrics` has `topsellers_results_stale_seconds`.
//! - **Caching:** tagged answers carry an `ETag` named after the result version and
//!   `Cache-Control` from [`ServerConfig::cache_control`] (`public, max-age=1,
//!   stale-while-revalidate=10, stale-if-error=3600` by default); `If-None-Match` gets a 304.
//! - **Every response carries `X-Request-Id`**: the client's own if it is 1 to 64 characters of
//!   `[A-Za-z0-9._-]`, else a generated one. `POST /v1/purchases` also returns it as
//!   `request_id` in its body (errors included) and hands it to the sink through
//!   [`PurchaseSink::submit_with_context`].
//! - `POST /v1/purchases` takes uncompressed bodies only: any `Content-Encoding` but `identity` is
//!   a 415 naming the header.

mod api;
mod config;
mod edge;
mod error;
mod freshness;
mod http;
pub mod metrics;
mod page;
mod probes;
mod purchases;
mod query;
mod render;
mod results;
mod sink;

#[cfg(test)]
#[path = "../tests/common/fixture.rs"]
mod testdata;

pub use config::ServerConfig;
pub use freshness::Freshness;
pub use http::{router, serve, AppState};
pub use metrics::Metrics;
pub use results::{Results, X_RESULTS_STALE};
pub use sink::{BoxFuture, PurchaseSink, RejectedRecord, SubmitContext, SubmitError, SubmitReport};
