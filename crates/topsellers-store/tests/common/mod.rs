//! Test data shared by the store's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use topsellers_model::{
    CategoryPath, LogRecord, PurchaseEvent, RankedItem, Snapshot, TopList, WindowBounds, WindowSpec,
};

/// A realistic event whose content is a function of (batch, index), so a reader can check it.
pub fn event(batch: u64, index: u64) -> LogRecord {
    LogRecord::Event(PurchaseEvent {
        event_id: Some(format!("b{batch}-{index}")),
        event_time_ms: 1_700_000_000_000 + (batch * 1000 + index) as i64,
        original_time_ms: None,
        item_id: format!("SKU-{:06}", (batch * 7 + index) % 5000),
        item_name: Some("Compact Desk Lamp L-20".into()),
        category: CategoryPath::parse("home & garden/lighting/desk").unwrap(),
        quantity: 1 + (index % 3) as i64,
        unit_price_minor: 1999,
        currency: "USD".into(),
        country: index.is_multiple_of(2).then(|| "US".to_string()),
    })
}

pub fn batch(batch_no: u64, size: u64) -> Vec<LogRecord> {
    (0..size).map(|i| event(batch_no, i)).collect()
}

pub fn snapshot(version: u64) -> Snapshot {
    Snapshot {
        version,
        as_of_ms: 1_700_000_060_000,
        watermark_ms: 1_700_000_000_000,
        computed_at_ms: 1_700_000_061_000,
        currency: "USD".into(),
        top_k: 10,
        windows: vec![WindowSpec::parse("1h").unwrap(), WindowSpec::all()],
        lists: BTreeMap::from([(
            "home & garden".to_string(),
            vec![TopList {
                category: "home & garden".into(),
                window: "1h".into(),
                bounds: WindowBounds {
                    start_ms: Some(1_699_999_460_000),
                    end_ms: 1_700_000_060_000,
                },
                items: vec![RankedItem {
                    rank: 1,
                    item_id: "SKU-000042".into(),
                    item_name: Some("Compact Desk Lamp L-20".into()),
                    units: 12,
                    revenue_minor: 23_988,
                }],
            }],
        )]),
        events_counted: version * 10,
    }
}
