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

mod api;
mod config;
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
pub use sink::{BoxFuture, PurchaseSink, RejectedRecord, SubmitError, SubmitReport};
