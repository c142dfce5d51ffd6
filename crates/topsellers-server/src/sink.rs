//! Where `POST /v1/purchases` hands its body, and what comes back.

use bytes::Bytes;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future, as [`PurchaseSink::submit`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Takes the body of a purchase submission.
///
/// Lifecycle: the server authenticates the request, enforces the size and concurrency limits, then
/// calls [`submit_with_context`](PurchaseSink::submit_with_context) (by default, [`submit`](PurchaseSink::submit))
/// once with the whole body (NDJSON or a JSON array; the sink
/// parses it). The returned future must resolve only once every accepted record is durable (logged),
/// because the server answers 200 on `Ok` and a 200 promises the events are not lost.
///
/// Error contract: `Ok` with a report for any body that could be read, even when some or all records
/// were rejected (the server turns "nothing valid" into a 400 itself); `Err(BadRequest)` when the body
/// as a whole is unusable; `Err(Unavailable)` when the events could not be made durable now (log full,
/// store down) and the client should retry; the server answers 503 with `Retry-After`. A future that
/// outlives `server.request_timeout_ms` is dropped and the client gets 503: the sink must then be
/// safe to see the same events again (producers retry, and `event_id` deduplicates).
///
/// Metrics: the sink, not the server, counts received/accepted/rejected events, because only it
/// knows them (see [`Metrics`](crate::Metrics)).
pub trait PurchaseSink: Send + Sync + 'static {
    /// Takes one whole body; see the trait documentation for the contract.
    fn submit(&self, body: Bytes) -> BoxFuture<'static, Result<SubmitReport, SubmitError>>;

    /// What the server calls: [`submit`](PurchaseSink::submit) with what is known about the
    /// request, such as its id, so that dead letters and logs can name the request they came
    /// from. The default ignores the context; a sink that records rejects should override it.
    fn submit_with_context(
        &self,
        body: Bytes,
        ctx: SubmitContext,
    ) -> BoxFuture<'static, Result<SubmitReport, SubmitError>> {
        let _ = ctx;
        self.submit(body)
    }
}

/// What the server knows about a submission besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubmitContext {
    /// The request's id, as sent back in the `X-Request-Id` header and the response body: the
    /// client's own (1 to 64 characters of `[A-Za-z0-9._-]`) or one the server generated. Safe to
    /// write into logs and dead-letter records as-is.
    pub request_id: String,
}

impl SubmitContext {
    pub fn new(request_id: impl Into<String>) -> SubmitContext {
        SubmitContext {
            request_id: request_id.into(),
        }
    }
}

/// The outcome of one submission, returned to the client as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubmitReport {
    /// Records logged durably and counted from now on.
    pub accepted: u64,
    /// Records whose `event_id` was seen before; dropped, and harmless to resend.
    pub duplicates: u64,
    /// Records deliberately ignored (such as blank lines); not errors.
    pub skipped: u64,
    /// Records that were refused, each with where and why.
    pub rejected: Vec<RejectedRecord>,
}

/// One refused record of a submission. It never carries the record itself, only where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRecord {
    /// Where in the body: `line 3`, `element 2`.
    pub location: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// Machine-readable reason, a `RejectReason::as_str()` value.
    pub reason: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Why a whole submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The events could not be made durable now; the client should retry later (503).
    #[error("{0}")]
    Unavailable(String),
    /// The body as a whole cannot be used, such as an unknown format (400).
    #[error("{0}")]
    BadRequest(String),
}
