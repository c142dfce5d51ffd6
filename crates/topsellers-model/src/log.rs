//! What the accepted-event log holds.

use crate::{PurchaseEvent, TimestampMs};
use serde::{Deserialize, Serialize};

/// One record of the log that feeds the aggregator.
///
/// The aggregator is a pure function of this sequence: replaying the same records from the same
/// checkpoint gives the same state. That is why the wall clock enters only as a logged [`LogRecord::Tick`]
/// and never by reading the clock inside the aggregator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRecord {
    Event(PurchaseEvent),
    /// The input was idle: event time may advance to `now_ms` (minus the allowed lateness).
    Tick {
        now_ms: TimestampMs,
    },
}
