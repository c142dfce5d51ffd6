//! Records that could not be accepted, with where they came from and why.

use crate::TimestampMs;
use serde::{Deserialize, Serialize};

/// Why a record was rejected. The machine-readable half of a dead letter; it is also the `reason`
/// label of the rejection metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The line is not valid CSV/JSON at all.
    Malformed,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Longer than the configured maximum record size.
    Oversized,
    /// A required field is absent or empty.
    MissingField,
    /// A field is present but has the wrong type or format.
    InvalidField,
    /// A value is well-formed but outside the accepted range (absurd quantity, price, timestamp).
    OutOfRange,
    /// The currency differs from the one this deployment sums revenue in.
    CurrencyMismatch,
    /// Event time older than the watermark (newest event time minus the allowed lateness).
    Late,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::Oversized => "oversized",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::CurrencyMismatch => "currency_mismatch",
            RejectReason::Late => "late",
        }
    }
}

/// A rejected record. It names the input, where in it, which field and why, and carries only the
/// fields the mapping selects (never the whole raw record), so that personal data in unmapped columns
/// cannot reach the dead-letter store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Which input: `file:<path>`, `http`, `engine`.
    pub source: String,
    /// Where in it: `line 12`, `record 3 of request`.
    pub location: String,
    /// The offending field, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: RejectReason,
    /// Human-readable explanation with the fix.
    pub message: String,
    /// The mapped fields of the record as far as they could be read (JSON object text), possibly empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub record: String,
    /// Wall-clock time of the rejection.
    pub at_ms: TimestampMs,
}
