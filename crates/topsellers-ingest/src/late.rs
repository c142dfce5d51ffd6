//! The dead letter of an event the engine refused as late: one shape wherever it is judged (the embedded node,
//! a Kafka aggregator), like every other dead letter: source, location, field, reason, a readable message with
//! the fix, and the scrubbed event.

use topsellers_model::{DeadLetter, PurchaseEvent, RejectReason, TimestampMs};

/// `source` and `location` say where the event came from (`location` gains the event id when it has one);
/// the times shown are the one the engine judged (a refund's original time) and the watermark.
pub fn late_letter(
    event: &PurchaseEvent,
    watermark_ms: TimestampMs,
    source: String,
    location: String,
    now_ms: TimestampMs,
) -> DeadLetter {
    let location = match &event.event_id {
        Some(id) => format!("{location} (event {id})"),
        None => location,
    };
    DeadLetter {
        source,
        location,
        field: Some("time".into()),
        reason: RejectReason::Late,
        message: format!(
            "event time {} is older than the watermark {}: event time has already advanced past it by more than \
             engine.allowed_lateness_secs (it follows the newest event time, and on an embedded node the wall clock \
             when node.idle_advance is on); send events sooner, or raise engine.allowed_lateness_secs if such \
             delays are normal",
            readable(event.applied_time_ms()),
            readable(watermark_ms)
        ),
        record: serde_json::to_string(event).unwrap_or_default(),
        at_ms: now_ms,
    }
}

fn readable(ms: TimestampMs) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms} ms"), |t| t.to_string())
}
