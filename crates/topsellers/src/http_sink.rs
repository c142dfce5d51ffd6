//! `POST /v1/purchases` on an embedded node: parse and validate the body, then hand it to the node thread and
//! answer once the accepted events are durable.

use crate::node::{wall_clock_ms, Locations, Submission};
use crate::runner::{NodeHandle, SubmitFailure};
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use topsellers_ingest::{parse_http_body_with_redactions, Limits, PiiKind};
use topsellers_server::Metrics;
use topsellers_server::{PurchaseSink, RejectedRecord, SubmitContext, SubmitError, SubmitReport};

pub struct NodeSink {
    pub node: NodeHandle,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

impl PurchaseSink for NodeSink {
    fn submit(
        &self,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<SubmitReport, SubmitError>> + Send>> {
        self.submit_with_context(body, SubmitContext::new("without id"))
    }

    /// Dead letters of a request name it (`record 3 of request 1a2b-7`), so a client can find what it sent.
    fn submit_with_context(
        &self,
        body: Bytes,
        ctx: SubmitContext,
    ) -> Pin<Box<dyn Future<Output = Result<SubmitReport, SubmitError>> + Send>> {
        let node = self.node.clone();
        let limits = self.limits.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let context = format!("request {}", ctx.request_id);
            let (mut parsed, redactions) =
                parse_http_body_with_redactions(&body, &limits, wall_clock_ms());
            for kind in [PiiKind::Email, PiiKind::Card, PiiKind::Phone, PiiKind::Ip] {
                metrics.inc_redactions(kind.as_str(), redactions.get(kind));
            }
            for item in &mut parsed {
                if let topsellers_ingest::Parsed::Rejected(letter) = item {
                    letter.location = format!("{} of {context}", letter.location);
                }
            }
            let submission = Submission {
                items: parsed,
                source: "http",
                origin: "http".to_string(),
                locations: Locations::Records { context },
            };
            let outcome = node.submit(submission).await.map_err(|e| match e {
                SubmitFailure::Busy | SubmitFailure::Closed => {
                    SubmitError::Unavailable(e.to_string())
                }
                SubmitFailure::Failed(msg) => SubmitError::Unavailable(msg),
            })?;
            Ok(SubmitReport {
                accepted: outcome.accepted,
                duplicates: outcome.duplicates,
                skipped: outcome.skipped.values().sum(),
                rejected: outcome
                    .rejected
                    .into_iter()
                    .map(|l| RejectedRecord {
                        location: l.location,
                        field: l.field,
                        reason: l.reason.as_str().to_string(),
                        message: l.message,
                    })
                    .collect(),
            })
        })
    }
}
