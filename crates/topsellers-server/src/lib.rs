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
pub use http::{router, serve, AppState};
pub use metrics::Metrics;
pub use results::Results;
pub use sink::{BoxFuture, PurchaseSink, RejectedRecord, SubmitContext, SubmitError, SubmitReport};
