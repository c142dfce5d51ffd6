//! One test per rule of the engine's semantics (DESIGN.md), through the public API.

use crate::{Admission, Engine, EngineConfig, EngineError};
use topsellers_model::{CategoryPath, LogRecord, PurchaseEvent, Snapshot};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// A round start time, so bucket boundaries are easy to read.
const T0: i64 = 1_000 * DAY;

fn ev(item: &str, category: &str, quantity: i64, time: i64) -> PurchaseEvent {
    PurchaseEvent {
        event_id: None,
        event_time_ms: time,
        original_time_ms: None,
        item_id: item.into(),
        item_name: None,
        category: CategoryPath::parse(category).unwrap(),
        quantity,
        unit_price_minor: 100,
        currency: "GBP".into(),
        country: None,
    }
}

fn with_id(mut e: PurchaseEvent, id: &str) -> PurchaseEvent {
    e.event_id = Some(id.into());
    e
}

fn refund_of(mut e: PurchaseEvent, original: Option<i64>) -> PurchaseEvent {
    e.original_time_ms = original;
    e
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default()).unwrap()
}

/// `(item, units)` of one list, best first.
fn top(snapshot: &Snapshot, category: &str, window: &str) -> Vec<(String, i64)> {
    snapshot
        .list(category, window)
        .unwrap_or_else(|| panic!("no list for {category:?}/{window}"))
        .items
        .iter()
        .map(|r| (r.item_id.clone(), r.units))
        .collect()
}

fn pairs(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    items.iter().map(|&(i, u)| (i.to_string(), u)).collect()
}

#[test]
fn sales_roll_up_to_every_ancestor_and_site_wide() {
    let mut e = engine();
    e.admit(&ev("x", "a/b/c", 2, T0));
    e.admit(&ev("y", "a/d", 1, T0));
    let s = e.snapshot(1, 0, "GBP");
    assert_eq!(top(&s, "a/b/c", "1h"), pairs(&[("x", 2)]));
    assert_eq!(top(&s, "a/b", "1h"), pairs(&[("x", 2)]));
    assert_eq!(top(&s, "a/d", "1h"), pairs(&[("y", 1)]));
    assert_eq!(top(&s, "a", "1h"), pairs(&[("x", 2), ("y", 1)]));
    assert_eq!(top(&s, "", "all"), pairs(&[("x", 2), ("y", 1)]));
    let paths: Vec<&str> = s.lists.keys().map(String::as_str).collect();
    assert_eq!(paths, ["", "a", "a/b", "a/b/c", "a/d"]);
    assert!(s.lists.values().all(|l| l.len() == 4));
}

#[test]
fn an_item_sold_in_two_categories_sums_in_their_common_ancestors() {
    let mut e = engine();
    e.admit(&ev("x", "a/b", 2, T0));
    e.admit(&ev("x", "a/c", 3, T0));
    let s = e.snapshot(1, 0, "GBP");
    assert_eq!(top(&s, "a/b", "1h"), pairs(&[("x", 2)]));
    assert_eq!(top(&s, "a/c", "1h"), pairs(&[("x", 3)]));
    assert_eq!(top(&s, "a", "1h"), pairs(&[("x", 5)]));
    assert_eq!(top(&s, "", "1h"), pairs(&[("x", 5)]));
}

#[test]
fn windows_slide_and_old_buckets_are_dropped() {
    let mut e = engine();
    e.admit(&ev("x", "a", 1, T0));
    e.admit(&ev("y", "a", 1, T0 + 30 * MIN));
    // Event time moves to the last minute of the window of x's bucket: x is still in `1h`.
    e.tick(T0 + 59 * MIN);
    assert_eq!(
        top(&e.snapshot(1, 0, ""), "a", "1h"),
        pairs(&[("x", 1), ("y", 1)])
    );
    // One bucket later x's bucket has left `1h`, but not `24h` or `all`.
    e.tick(T0 + HOUR);
    let s = e.snapshot(2, 0, "");
    assert_eq!(top(&s, "a", "1h"), pairs(&[("y", 1)]));
    assert_eq!(top(&s, "a", "24h"), pairs(&[("x", 1), ("y", 1)]));
    let bounds = s.list("a", "1h").unwrap().bounds;
    assert_eq!(bounds.end_ms, T0 + HOUR + MIN);
    assert_eq!(bounds.start_ms, Some(T0 + MIN));
    assert_eq!(s.list("a", "all").unwrap().bounds.start_ms, None);
    assert_eq!(e.stats().buckets, 2);
    // After 7 days nothing is left in any sliding window, and no bucket is kept.
    e.tick(T0 + 8 * DAY);
    let s = e.snapshot(3, 0, "");
    assert!(top(&s, "a", "7d").is_empty());
    assert_eq!(top(&s, "a", "all"), pairs(&[("x", 1), ("y", 1)]));
    assert_eq!(e.stats().buckets, 0);
    assert_eq!(e.stats().bucket_entries, 0);
}

#[test]
fn a_refund_counts_at_its_original_time_inside_a_window() {
    let mut e = engine();
    e.admit(&ev("x", "a", 3, T0));
    e.admit(&refund_of(ev("x", "a", -1, T0 + 10 * MIN), Some(T0)));
    let s = e.snapshot(1, 0, "");
    assert_eq!(top(&s, "a", "1h"), pairs(&[("x", 2)]));
    assert_eq!(s.list("a", "1h").unwrap().items[0].revenue_minor, 200);
    assert_eq!(e.stats().refunds_counted, 1);
}

#[test]
fn a_refund_of_an_older_sale_does_not_dent_the_short_window() {
    let mut e = engine();
    e.admit(&ev("x", "a", 3, T0));
    e.admit(&ev("x", "a", 2, T0 + 2 * HOUR));
    // Refund of the first sale, two hours later: outside `1h`, inside `24h`.
    e.admit(&refund_of(ev("x", "a", -3, T0 + 2 * HOUR), Some(T0)));
    let s = e.snapshot(1, 0, "");
    assert_eq!(top(&s, "a", "1h"), pairs(&[("x", 2)]));
    assert_eq!(top(&s, "a", "24h"), pairs(&[("x", 2)]));
    assert_eq!(top(&s, "a", "all"), pairs(&[("x", 2)]));
    // When the refunded bucket later leaves `24h`, its net (zero) leaves with it.
    e.tick(T0 + 24 * HOUR + MIN);
    assert_eq!(top(&e.snapshot(2, 0, ""), "a", "24h"), pairs(&[("x", 2)]));
}

#[test]
fn a_refund_older_than_every_kept_bucket_only_changes_all() {
    let mut e = engine();
    let month_ago = T0 - 30 * DAY;
    e.admit(&ev("x", "a", 2, T0));
    e.admit(&refund_of(ev("x", "a", -1, T0), Some(month_ago)));
    let s = e.snapshot(1, 0, "");
    for w in ["1h", "24h", "7d"] {
        assert_eq!(top(&s, "a", w), pairs(&[("x", 2)]), "{w}");
    }
    assert_eq!(top(&s, "a", "all"), pairs(&[("x", 1)]));
    assert_eq!(
        e.stats().bucket_entries,
        1,
        "the old bucket is not resurrected"
    );
}

#[test]
fn a_refund_without_original_time_counts_at_its_own_time() {
    let mut e = engine();
    e.admit(&ev("x", "a", 2, T0));
    e.tick(T0 + 2 * HOUR);
    e.admit(&refund_of(ev("x", "a", -1, T0 + 2 * HOUR), None));
    let s = e.snapshot(1, 0, "");
    assert!(top(&s, "a", "1h").is_empty(), "net -1 in 1h does not rank");
    assert_eq!(top(&s, "a", "24h"), pairs(&[("x", 1)]));
}

#[test]
fn an_original_time_after_the_event_time_is_clamped() {
    let mut e = engine();
    e.admit(&refund_of(ev("x", "a", -1, T0), Some(T0 + DAY)));
    assert_eq!(e.as_of_ms(), T0 + MIN, "the refund did not move event time");
    e.admit(&ev("x", "a", 3, T0));
    assert_eq!(top(&e.snapshot(1, 0, ""), "a", "1h"), pairs(&[("x", 2)]));
}

#[test]
fn net_zero_or_below_never_ranks() {
    let mut e = engine();
    e.admit(&ev("zero", "a", 2, T0));
    e.admit(&ev("zero", "a", -2, T0));
    e.admit(&ev("neg", "a", -1, T0));
    e.admit(&ev("pos", "a", 1, T0));
    let s = e.snapshot(1, 0, "");
    for w in ["1h", "all"] {
        assert_eq!(top(&s, "a", w), pairs(&[("pos", 1)]));
    }
}

#[test]
fn ties_break_on_revenue_then_item_id() {
    let mut e = engine();
    let mut pricey = ev("m", "a", 2, T0);
    pricey.unit_price_minor = 500;
    e.admit(&ev("z", "a", 2, T0));
    e.admit(&ev("b", "a", 2, T0));
    e.admit(&pricey);
    e.admit(&ev("top", "a", 3, T0));
    let s = e.snapshot(1, 0, "");
    assert_eq!(
        top(&s, "a", "1h"),
        pairs(&[("top", 3), ("m", 2), ("b", 2), ("z", 2)])
    );
    let ranks: Vec<u32> = s
        .list("a", "1h")
        .unwrap()
        .items
        .iter()
        .map(|r| r.rank)
        .collect();
    assert_eq!(ranks, [1, 2, 3, 4]);
}

#[test]
fn lists_keep_top_k() {
    let mut e = Engine::new(EngineConfig {
        top_k: 2,
        ..EngineConfig::default()
    })
    .unwrap();
    for (i, item) in ["a", "b", "c", "d"].iter().enumerate() {
        e.admit(&ev(item, "c", i as i64 + 1, T0));
    }
    let s = e.snapshot(1, 0, "");
    assert_eq!(top(&s, "c", "1h"), pairs(&[("d", 4), ("c", 3)]));
    assert_eq!(s.top_k, 2);
}

#[test]
fn late_events_are_refused_and_counted() {
    let mut e = engine();
    assert_eq!(e.watermark_ms(), i64::MIN);
    e.admit(&ev("x", "a", 1, T0 + 10 * MIN));
    let watermark = T0 + 5 * MIN;
    assert_eq!(e.watermark_ms(), watermark);
    assert_eq!(
        e.admit(&ev("x", "a", 1, watermark)),
        Admission::Accepted,
        "on the watermark is in time"
    );
    assert_eq!(
        e.admit(&ev("x", "a", 1, watermark - 1)),
        Admission::Late {
            watermark_ms: watermark
        }
    );
    assert_eq!(e.stats().late, 1);
    assert_eq!(e.stats().events_counted, 2);
    assert_eq!(top(&e.snapshot(1, 0, ""), "a", "all"), pairs(&[("x", 2)]));
}

#[test]
fn a_late_refund_is_judged_by_its_own_time_not_the_original() {
    let mut e = engine();
    e.admit(&ev("x", "a", 1, T0));
    e.tick(T0 + DAY);
    assert_eq!(
        e.admit(&refund_of(ev("x", "a", -1, T0 + DAY), Some(T0))),
        Admission::Accepted
    );
}

#[test]
fn retries_with_the_same_id_and_item_are_dropped() {
    let mut e = engine();
    let sale = with_id(ev("x", "a", 1, T0), "e1");
    assert_eq!(e.admit(&sale), Admission::Accepted);
    assert_eq!(e.admit(&sale), Admission::Duplicate);
    // Even with other content, the id and the item decide.
    assert_eq!(
        e.admit(&with_id(ev("x", "b", 5, T0 + MIN), "e1")),
        Admission::Duplicate
    );
    // Events without an id (or with an empty one) are never duplicates.
    assert_eq!(e.admit(&ev("x", "a", 1, T0)), Admission::Accepted);
    assert_eq!(e.admit(&ev("x", "a", 1, T0)), Admission::Accepted);
    assert_eq!(
        e.admit(&with_id(ev("x", "a", 1, T0), "")),
        Admission::Accepted
    );
    assert_eq!(
        e.admit(&with_id(ev("x", "a", 1, T0), "")),
        Admission::Accepted
    );
    let stats = e.stats();
    assert_eq!(
        (stats.events_counted, stats.duplicates, stats.dedup_ids),
        (5, 2, 1)
    );
    assert_eq!(top(&e.snapshot(1, 0, ""), "a", "all"), pairs(&[("x", 5)]));
}

#[test]
fn one_id_on_two_items_is_two_lines() {
    // One order id on several items (an invoice number): each item is its own line, and a retry of
    // the order is a duplicate line by line.
    let mut e = engine();
    let line = |item: &str| with_id(ev(item, "a", 1, T0), "order-1");
    assert_eq!(e.admit(&line("x")), Admission::Accepted);
    assert_eq!(e.admit(&line("y")), Admission::Accepted);
    assert_eq!(e.admit(&line("y")), Admission::Duplicate);
    assert_eq!(e.admit(&line("x")), Admission::Duplicate);
    assert_eq!(
        e.admit(&with_id(ev("1x", "a", 1, T0), "order-")),
        Admission::Accepted,
        "the id and the item are kept apart: (\"order-\", \"1x\") is not (\"order-1\", \"x\")"
    );
    let stats = e.stats();
    assert_eq!(
        (stats.events_counted, stats.duplicates, stats.dedup_ids),
        (3, 2, 3)
    );
    assert_eq!(
        top(&e.snapshot(1, 0, ""), "a", "all"),
        pairs(&[("1x", 1), ("x", 1), ("y", 1)])
    );
}

#[test]
fn ids_are_forgotten_once_the_watermark_passes_them() {
    let mut e = engine();
    let sale = with_id(ev("x", "a", 1, T0), "e1");
    e.admit(&sale);
    e.tick(T0 + 5 * MIN);
    assert_eq!(
        e.admit(&sale),
        Admission::Duplicate,
        "still at the watermark"
    );
    e.tick(T0 + 5 * MIN + 1);
    assert_eq!(
        e.admit(&sale),
        Admission::Late {
            watermark_ms: T0 + 1
        }
    );
    e.tick(T0 + HOUR);
    assert_eq!(e.stats().dedup_ids, 0, "memory for old ids is released");
}

#[test]
fn a_month_gap_costs_only_the_buckets_that_exist() {
    let mut e = engine();
    e.admit(&ev("x", "a", 1, T0));
    e.admit(&ev("y", "a", 1, T0 + 30 * DAY));
    assert_eq!(e.stats().buckets, 1);
    // A jump across ~290 million years of one-minute buckets must still return at once.
    e.tick(i64::MAX / 1000);
    e.admit(&ev("z", "b", 1, i64::MAX / 1000));
    let s = e.snapshot(1, 0, "");
    assert_eq!(top(&s, "", "7d"), pairs(&[("z", 1)]));
    assert_eq!(top(&s, "", "all"), pairs(&[("x", 1), ("y", 1), ("z", 1)]));
    assert!(
        top(&s, "a", "7d").is_empty(),
        "quiet category ages out but stays listed"
    );
}

#[test]
fn extreme_times_do_not_overflow() {
    let mut e = engine();
    e.admit(&ev("x", "a", 1, i64::MAX));
    e.admit(&ev("x", "a", 1, i64::MIN));
    let s = e.snapshot(1, 0, "");
    assert_eq!(top(&s, "a", "all"), pairs(&[("x", 1)]));
    let mut e = engine();
    e.admit(&ev("x", "a", 1, -5));
    assert_eq!(e.as_of_ms(), 0, "bucket of a negative time rounds down");
}

#[test]
fn ticks_move_time_forward_only() {
    let mut e = engine();
    e.tick(T0);
    assert_eq!(e.watermark_ms(), T0 - 5 * MIN);
    assert_eq!(
        e.apply(&LogRecord::Tick { now_ms: T0 - DAY }),
        Admission::Accepted
    );
    assert_eq!(e.watermark_ms(), T0 - 5 * MIN);
    assert_eq!(e.as_of_ms(), T0 + MIN);
    assert_eq!(
        e.apply(&LogRecord::Event(ev("x", "a", 1, T0 - HOUR))),
        Admission::Late {
            watermark_ms: T0 - 5 * MIN
        }
    );
}

#[test]
fn the_latest_non_empty_name_is_shown() {
    let mut e = engine();
    let named = |name: Option<&str>| {
        let mut s = ev("x", "a", 1, T0);
        s.item_name = name.map(str::to_string);
        s
    };
    e.admit(&named(None));
    assert_eq!(
        e.snapshot(1, 0, "").list("a", "1h").unwrap().items[0].item_name,
        None
    );
    e.admit(&named(Some("Old")));
    e.admit(&named(Some("New")));
    e.admit(&named(Some("")));
    e.admit(&named(None));
    let s = e.snapshot(2, 0, "");
    assert_eq!(
        s.list("a", "1h").unwrap().items[0].item_name.as_deref(),
        Some("New")
    );
}

#[test]
fn an_idle_engine_lists_the_site_wide_category() {
    let mut e = engine();
    let s = e.snapshot(7, 42, "EUR");
    assert_eq!(
        (s.version, s.computed_at_ms, s.currency.as_str()),
        (7, 42, "EUR")
    );
    assert_eq!(
        (s.as_of_ms, s.watermark_ms, s.events_counted),
        (0, i64::MIN, 0)
    );
    assert_eq!(s.lists.len(), 1);
    let windows: Vec<&str> = s.lists[""].iter().map(|l| l.window.as_str()).collect();
    assert_eq!(windows, ["1h", "24h", "7d", "all"]);
}

#[test]
fn snapshots_reuse_clean_lists_and_refresh_dirty_ones() {
    let mut e = engine();
    e.admit(&ev("x", "a", 1, T0));
    e.admit(&ev("y", "b", 1, T0));
    let first = e.snapshot(1, 0, "");
    assert_eq!(e.snapshot(1, 0, ""), first);
    e.admit(&ev("y", "b", 5, T0));
    let s = e.snapshot(2, 0, "");
    assert_eq!(s.lists["a"], first.lists["a"]);
    assert_eq!(top(&s, "b", "1h"), pairs(&[("y", 6)]));
    assert_eq!(top(&s, "", "1h"), pairs(&[("y", 6), ("x", 1)]));
}

#[test]
fn invalid_config_reports_every_problem() {
    let err = Engine::new(EngineConfig {
        bucket_secs: 0,
        top_k: 0,
        ..EngineConfig::default()
    })
    .unwrap_err();
    let EngineError::InvalidConfig(problems) = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 2);
    assert!(err.to_string().contains("engine.bucket_secs"));
}

fn busy_engine() -> Engine {
    let mut e = engine();
    let mut named = with_id(ev("x", "a/b", 3, T0), "e1");
    named.item_name = Some("X".into());
    e.admit(&named);
    e.admit(&with_id(ev("y", "a/c", 2, T0 + 2 * HOUR), "e2"));
    e.admit(&with_id(ev("x", "a/c", 1, T0 + 2 * HOUR), "e3"));
    e.admit(&refund_of(ev("x", "a/b", -1, T0 + 2 * HOUR), Some(T0)));
    e
}

#[test]
fn restore_continues_exactly_where_the_checkpoint_was_taken() {
    let mut original = busy_engine();
    let bytes = original.checkpoint();
    assert_eq!(bytes[0], crate::CHECKPOINT_FORMAT_VERSION);
    let mut restored = Engine::restore(EngineConfig::default(), &bytes).unwrap();
    assert_eq!(restored.checkpoint(), bytes, "same state, same bytes");
    // Capacities (and so approx_state_bytes) may differ; every count must not.
    let counts = |e: &Engine| crate::EngineStats {
        approx_state_bytes: 0,
        ..e.stats()
    };
    assert_eq!(counts(&restored), counts(&original));
    for e in [&mut original, &mut restored] {
        assert_eq!(
            e.admit(&with_id(ev("y", "a/b", 1, T0 + 2 * HOUR), "e2")),
            Admission::Duplicate
        );
        e.admit(&with_id(ev("z", "d", 4, T0 + 3 * HOUR), "e4"));
        e.tick(T0 + DAY + 30 * MIN);
    }
    assert_eq!(
        restored.snapshot(1, 2, "GBP"),
        original.snapshot(1, 2, "GBP")
    );
    assert_eq!(restored.checkpoint(), original.checkpoint());
}

#[test]
fn restore_may_change_lateness_and_top_k() {
    let bytes = busy_engine().checkpoint();
    let config = EngineConfig {
        top_k: 1,
        allowed_lateness_secs: 0,
        ..EngineConfig::default()
    };
    let mut e = Engine::restore(config, &bytes).unwrap();
    assert_eq!(e.watermark_ms(), T0 + 2 * HOUR);
    assert_eq!(top(&e.snapshot(1, 0, ""), "a", "all"), pairs(&[("x", 3)]));
}

#[test]
fn restore_refuses_other_bucket_or_window_settings() {
    let bytes = busy_engine().checkpoint();
    let other_bucket = EngineConfig {
        bucket_secs: 30,
        ..EngineConfig::default()
    };
    let err = Engine::restore(other_bucket, &bytes).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("engine.bucket_secs = 60"), "{message}");
    assert!(
        message.contains("keep the old settings or rebuild the data directory"),
        "{message}"
    );
    let other_windows = EngineConfig {
        windows: vec!["1h".into(), "all".into()],
        ..EngineConfig::default()
    };
    let err = Engine::restore(other_windows, &bytes).unwrap_err();
    assert!(matches!(
        err,
        EngineError::CheckpointSettingsMismatch {
            setting: "engine.windows",
            ..
        }
    ));
}

#[test]
fn restore_refuses_corrupt_bytes() {
    let bytes = busy_engine().checkpoint();
    let config = EngineConfig::default;
    assert!(matches!(
        Engine::restore(config(), &[]),
        Err(EngineError::CorruptCheckpoint { .. })
    ));
    assert!(matches!(
        Engine::restore(config(), &bytes[..bytes.len() - 1]),
        Err(EngineError::CorruptCheckpoint { .. })
    ));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let err = Engine::restore(config(), &flipped).unwrap_err();
    assert!(err.to_string().contains("replaying the inputs"), "{err}");
    let mut future = bytes.clone();
    future[0] = 99;
    assert!(matches!(
        Engine::restore(config(), &future),
        Err(EngineError::UnsupportedCheckpointVersion { found: 99, .. })
    ));
}
