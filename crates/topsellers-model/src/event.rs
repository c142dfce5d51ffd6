//! The scrubbed purchase event: the only shape of a purchase that exists past the agent.

use crate::{CategoryPath, TimestampMs};
use serde::{Deserialize, Serialize};

pub const MAX_EVENT_ID_LEN: usize = 128;
pub const MAX_ITEM_ID_LEN: usize = 128;
pub const MAX_ITEM_NAME_LEN: usize = 256;

/// One purchase line after scrubbing: exactly the fields of DESIGN.md, nothing else.
///
/// A negative `quantity` is a refund or cancellation. When the refund knows the time of the sale it
/// undoes, `original_time_ms` carries it and the refund is applied at that time (see
/// [`PurchaseEvent::applied_time_ms`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseEvent {
    /// Producer-assigned id; when present, a second event with the same id is a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub event_time_ms: TimestampMs,
    /// For refunds: the time of the sale being refunded, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_time_ms: Option<TimestampMs>,
    pub item_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
    pub category: CategoryPath,
    pub quantity: i64,
    /// Price of one unit in minor units of `currency` (pence, cents).
    pub unit_price_minor: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl PurchaseEvent {
    pub fn is_refund(&self) -> bool {
        self.quantity < 0
    }

    /// The event time at which the event counts: a refund's original sale time when known, else its
    /// own time.
    pub fn applied_time_ms(&self) -> TimestampMs {
        match self.original_time_ms {
            Some(t) if self.is_refund() => t,
            _ => self.event_time_ms,
        }
    }

    /// Revenue of the line in minor units (negative for refunds). Ingest bounds quantity and price so
    /// that this cannot overflow; saturation is a last line of defence, never a normal path.
    pub fn revenue_minor(&self) -> i64 {
        self.quantity.saturating_mul(self.unit_price_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(q: i64, original: Option<i64>) -> PurchaseEvent {
        PurchaseEvent {
            event_id: None,
            event_time_ms: 1000,
            original_time_ms: original,
            item_id: "i".into(),
            item_name: None,
            category: CategoryPath::parse("a").unwrap(),
            quantity: q,
            unit_price_minor: 250,
            currency: "GBP".into(),
            country: None,
        }
    }

    #[test]
    fn refunds_apply_at_original_time() {
        assert_eq!(ev(-1, Some(10)).applied_time_ms(), 10);
        assert_eq!(ev(-1, None).applied_time_ms(), 1000);
        assert_eq!(ev(2, Some(10)).applied_time_ms(), 1000);
        assert_eq!(ev(-2, None).revenue_minor(), -500);
    }

    #[test]
    fn json_round_trip_omits_absent_fields() {
        let e = ev(1, None);
        let s = serde_json::to_string(&e).unwrap();
        assert!(!s.contains("event_id"));
        assert_eq!(serde_json::from_str::<PurchaseEvent>(&s).unwrap(), e);
    }
}
