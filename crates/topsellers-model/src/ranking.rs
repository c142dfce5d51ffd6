//! Ranked results and the one tie-break rule everybody uses.

use crate::{TimestampMs, WindowSpec};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The ranking order: net units descending, then revenue descending, then item id ascending
/// (byte order). Total and deterministic, so two servers, a restart or a replay never disagree.
pub fn rank_order(
    a_units: i64,
    a_revenue: i64,
    a_item: &str,
    b_units: i64,
    b_revenue: i64,
    b_item: &str,
) -> Ordering {
    b_units
        .cmp(&a_units)
        .then(b_revenue.cmp(&a_revenue))
        .then_with(|| a_item.as_bytes().cmp(b_item.as_bytes()))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankedItem {
    pub rank: u32,
    pub item_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
    pub units: i64,
    pub revenue_minor: i64,
}

/// Event-time bounds of a window: `[start_ms, end_ms)`; `start_ms` is `None` for `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowBounds {
    pub start_ms: Option<TimestampMs>,
    pub end_ms: TimestampMs,
}

/// The top items of one category in one window, best first, at most `Snapshot::top_k` long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopList {
    pub category: String,
    pub window: String,
    pub bounds: WindowBounds,
    pub items: Vec<RankedItem>,
}

/// Every top list at one moment: what the API serves and the store keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Increases with every snapshot of one aggregator lineage; drives ETags and refresh.
    pub version: u64,
    /// Event time the results are complete up to (exclusive end of the current bucket).
    pub as_of_ms: TimestampMs,
    /// Events older than this are late.
    pub watermark_ms: TimestampMs,
    /// Wall-clock time the snapshot was computed.
    pub computed_at_ms: TimestampMs,
    pub currency: String,
    pub top_k: usize,
    pub windows: Vec<WindowSpec>,
    /// Category path -> one list per window, in the order of `windows`. Contains every category that
    /// ever had a sale (a quiet category has empty lists), including the site-wide `""`.
    pub lists: BTreeMap<String, Vec<TopList>>,
    /// Events counted so far (accepted, not duplicates or late).
    pub events_counted: u64,
}

impl Snapshot {
    pub fn list(&self, category: &str, window: &str) -> Option<&TopList> {
        let w = self.windows.iter().position(|w| w.name == window)?;
        self.lists.get(category)?.get(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_break_on_revenue_then_item_id() {
        assert_eq!(rank_order(5, 0, "b", 4, 100, "a"), Ordering::Less);
        assert_eq!(rank_order(5, 10, "b", 5, 20, "a"), Ordering::Greater);
        assert_eq!(rank_order(5, 10, "a", 5, 10, "b"), Ordering::Less);
    }
}
