//! A small snapshot shared by the unit tests (through `#[path]`) and the HTTP tests.

use std::collections::BTreeMap;
use topsellers_model::{RankedItem, Snapshot, TopList, WindowBounds, WindowSpec};

/// 2024-05-01T12:00:00Z
pub const AS_OF_MS: i64 = 1_714_564_800_000;

fn item(rank: u32, id: &str, name: Option<&str>, units: i64, revenue_minor: i64) -> RankedItem {
    RankedItem {
        rank,
        item_id: id.to_string(),
        item_name: name.map(str::to_string),
        units,
        revenue_minor,
    }
}

/// `count` items ranked by descending units, named after the category.
fn items(prefix: &str, count: u32) -> Vec<RankedItem> {
    (1..=count)
        .map(|rank| {
            let units = i64::from(1000 - rank * 7);
            item(
                rank,
                &format!("{prefix}-{rank}"),
                Some(&format!("{prefix} item {rank}")),
                units,
                units * 1999,
            )
        })
        .collect()
}

/// Windows `1h`, `24h`, `all`; categories site-wide, `electronics`, `electronics/phones`, `books`
/// (which has an item whose name is markup); `top_k` 50; the `all` list of `books` is empty.
pub fn snapshot() -> Snapshot {
    let windows = vec![
        WindowSpec::parse("1h").unwrap(),
        WindowSpec::parse("24h").unwrap(),
        WindowSpec::all(),
    ];
    let mut lists = BTreeMap::new();
    for (category, count) in [
        ("", 30),
        ("electronics", 20),
        ("electronics/phones", 12),
        ("books", 3),
    ] {
        let per_window = windows
            .iter()
            .map(|w| {
                let mut list = items(
                    if category.is_empty() {
                        "site"
                    } else {
                        category
                    },
                    count,
                );
                if category == "books" {
                    list[0].item_name = Some("<script>alert(1)</script> & \"quotes\"".into());
                    if w.is_all() {
                        list.clear();
                    }
                }
                TopList {
                    category: category.to_string(),
                    window: w.name.clone(),
                    bounds: WindowBounds {
                        start_ms: w.length_secs.map(|s| AS_OF_MS - s as i64 * 1000),
                        end_ms: AS_OF_MS,
                    },
                    items: list,
                }
            })
            .collect();
        lists.insert(category.to_string(), per_window);
    }
    Snapshot {
        version: 42,
        as_of_ms: AS_OF_MS,
        watermark_ms: AS_OF_MS - 60_000,
        computed_at_ms: AS_OF_MS + 500,
        currency: "GBP".into(),
        top_k: 50,
        windows,
        lists,
        events_counted: 12345,
    }
}
