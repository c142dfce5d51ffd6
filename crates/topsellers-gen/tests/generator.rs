//! The generated traffic has the shape the config asks for: determinism, shares of refunds,
//! duplicates and late events, refunds that undo real earlier sales, Zipf skew, the category tree, and
//! files that parse back.

use std::collections::{BTreeMap, HashMap, HashSet};
use topsellers_gen::{write_events, GenConfig, Generator, RatePattern, CSV_HEADER};
use topsellers_model::{parse_decimal_minor, PurchaseEvent};

const START_MS: i64 = 1_700_000_000_000;

/// `n` events at a steady 200 per second of event time (5 ms apart).
fn stream(config: GenConfig, n: usize) -> (Generator, Vec<(i64, PurchaseEvent)>) {
    let mut generator = Generator::new(config);
    let events = (0..n)
        .map(|i| {
            let now = START_MS + i as i64 * 5;
            (now, generator.next_event(now))
        })
        .collect();
    (generator, events)
}

#[test]
fn the_same_seed_gives_the_same_catalog_and_events_and_another_seed_does_not() {
    let (a, events_a) = stream(GenConfig::default(), 5_000);
    let (b, events_b) = stream(GenConfig::default(), 5_000);
    assert_eq!(events_a, events_b);
    assert_eq!(a.catalog().items(), b.catalog().items());
    assert_eq!(a.catalog().leaves(), b.catalog().leaves());
    let (c, events_c) = stream(
        GenConfig {
            seed: 7,
            ..GenConfig::default()
        },
        5_000,
    );
    assert_ne!(events_a, events_c);
    assert_ne!(a.catalog().items(), c.catalog().items());
    assert!(events_c[0]
        .1
        .event_id
        .as_deref()
        .unwrap()
        .starts_with("g-7-"));
}

#[derive(Default, Debug)]
struct Shares {
    duplicates: usize,
    refunds: usize,
    late: usize,
    total: usize,
}

fn shares(events: &[(i64, PurchaseEvent)]) -> Shares {
    let mut seen = HashSet::new();
    let mut s = Shares::default();
    for (now, e) in events {
        s.total += 1;
        if !seen.insert(e.event_id.clone().unwrap()) {
            s.duplicates += 1;
        } else if e.quantity < 0 {
            s.refunds += 1;
        } else if e.event_time_ms < *now {
            s.late += 1;
        }
    }
    s
}

fn assert_share(what: &str, count: usize, total: usize, fraction: f64) {
    let expected = fraction * total as f64;
    // Five standard deviations of a binomial count: fails only when the share is really off.
    let tolerance = 5.0 * (expected * (1.0 - fraction)).sqrt() + 1.0;
    assert!(
        (count as f64 - expected).abs() <= tolerance,
        "{what}: {count} of {total}, expected {expected:.0} +- {tolerance:.0}"
    );
}

#[test]
fn shares_of_refunds_duplicates_and_late_events_match_the_config() {
    for config in [
        GenConfig::default(),
        GenConfig {
            seed: 3,
            refund_fraction: 0.1,
            duplicate_fraction: 0.05,
            late_fraction: 0.08,
            ..GenConfig::default()
        },
    ] {
        let (_, events) = stream(config.clone(), 100_000);
        let s = shares(&events);
        assert_share(
            "duplicates",
            s.duplicates,
            s.total,
            config.duplicate_fraction,
        );
        assert_share("refunds", s.refunds, s.total, config.refund_fraction);
        assert_share("late", s.late, s.total, config.late_fraction);
    }
}

#[test]
fn late_events_are_one_to_twenty_minutes_old() {
    let config = GenConfig {
        late_fraction: 0.2,
        ..GenConfig::default()
    };
    let (_, events) = stream(config, 20_000);
    let mut ids = HashSet::new();
    let mut late = 0;
    for (now, e) in &events {
        if !ids.insert(e.event_id.clone()) || e.quantity < 0 {
            continue; // duplicates keep their original's time; refunds are on time
        }
        let age = now - e.event_time_ms;
        if age != 0 {
            late += 1;
            assert!((60_000..=20 * 60_000).contains(&age), "age {age}");
        }
    }
    assert!(late > 3_000, "{late}");
}

#[test]
fn refunds_undo_an_earlier_sale_of_the_same_item_at_its_time() {
    let config = GenConfig {
        refund_fraction: 0.1,
        ..GenConfig::default()
    };
    let (generator, events) = stream(config, 100_000);
    // (item, sale time) -> units sold and not yet refunded, from the originals only.
    let mut open_sales: HashMap<(String, i64), i64> = HashMap::new();
    let mut ids = HashSet::new();
    let mut refunds = 0;
    for (now, e) in &events {
        if !ids.insert(e.event_id.clone().unwrap()) {
            continue; // a duplicate re-delivers an event checked below
        }
        let item = generator.catalog().item(&e.item_id).unwrap();
        assert_eq!(
            (&e.category, e.unit_price_minor, e.item_name.as_ref()),
            (&item.category, item.unit_price_minor, Some(&item.name))
        );
        if e.quantity > 0 {
            *open_sales
                .entry((e.item_id.clone(), e.event_time_ms))
                .or_default() += e.quantity;
            continue;
        }
        refunds += 1;
        assert_eq!(e.event_time_ms, *now);
        let original = e.original_time_ms.expect("refunds carry the sale's time");
        assert!(original <= e.event_time_ms);
        let open = open_sales
            .get_mut(&(e.item_id.clone(), original))
            .unwrap_or_else(|| panic!("refund {:?} has no earlier sale", e.event_id));
        assert!(*open >= -e.quantity, "refund of more units than were sold");
        *open += e.quantity;
    }
    assert!(refunds > 8_000, "{refunds}");
}

#[test]
fn duplicates_are_exact_copies_of_earlier_events() {
    let config = GenConfig {
        duplicate_fraction: 0.05,
        ..GenConfig::default()
    };
    let (_, events) = stream(config, 20_000);
    let mut first_seen: HashMap<String, &PurchaseEvent> = HashMap::new();
    let mut duplicates = 0;
    for (_, e) in &events {
        match first_seen.get(e.event_id.as_ref().unwrap()) {
            Some(original) => {
                duplicates += 1;
                assert_eq!(*original, e);
            }
            None => {
                first_seen.insert(e.event_id.clone().unwrap(), e);
            }
        }
    }
    assert!(duplicates > 500, "{duplicates}");
}

#[test]
fn popularity_is_skewed_within_leaves_and_across_leaves() {
    let (generator, events) = stream(GenConfig::default(), 100_000);
    let mut per_leaf: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_item: HashMap<&str, usize> = HashMap::new();
    for (_, e) in &events {
        *per_leaf.entry(e.category.as_str()).or_default() += 1;
        *per_item.entry(e.item_id.as_str()).or_default() += 1;
    }
    let busiest = generator.catalog().leaf_by_popularity(0);
    let mut counts: Vec<usize> = busiest
        .items_by_popularity
        .iter()
        .map(|&i| {
            per_item
                .get(generator.catalog().items()[i].id.as_str())
                .copied()
                .unwrap_or(0)
        })
        .collect();
    counts.sort_unstable();
    let (top, median) = (counts[counts.len() - 1], counts[counts.len() / 2]);
    assert!(top >= 20 * median.max(1), "top {top}, median {median}");

    let mut leaf_counts: Vec<usize> = generator
        .catalog()
        .leaves()
        .iter()
        .map(|l| per_leaf.get(l.path.as_str()).copied().unwrap_or(0))
        .collect();
    leaf_counts.sort_unstable();
    let (top, median) = (
        leaf_counts[leaf_counts.len() - 1],
        leaf_counts[leaf_counts.len() / 2],
    );
    assert!(
        top >= 4 * median,
        "busiest leaf {top}, median leaf {median}"
    );
    assert!(leaf_counts[0] > 0, "every leaf sells something");
}

#[test]
fn the_tree_has_the_configured_leaves_at_depth_two_or_three() {
    for (departments, leaves) in [(6, 48), (1, 1), (3, 100), (12, 12), (5, 7)] {
        let config = GenConfig {
            departments,
            leaves,
            items_per_leaf: 3,
            ..GenConfig::default()
        };
        assert!(config.validate().is_empty());
        let generator = Generator::new(config);
        let catalog = generator.catalog();
        assert_eq!(catalog.departments().len(), departments);
        assert_eq!(catalog.leaves().len(), leaves);
        let paths: HashSet<&str> = catalog.leaves().iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths.len(), leaves, "leaf paths are unique");
        let department_names: HashSet<&str> =
            catalog.departments().iter().map(|d| d.as_str()).collect();
        for leaf in catalog.leaves() {
            assert!((2..=3).contains(&leaf.path.depth()), "{:?}", leaf.path);
            let ancestors: Vec<&str> = leaf.path.ancestors().collect();
            assert!(department_names.contains(ancestors[ancestors.len() - 2]));
            // A leaf is never also the parent of another leaf.
            assert!(
                ancestors[1..].iter().all(|a| !paths.contains(a)),
                "{:?}",
                leaf.path
            );
            assert_eq!(leaf.items_by_popularity.len(), 3);
        }
        if leaves >= 48 {
            let depths: HashSet<usize> = catalog.leaves().iter().map(|l| l.path.depth()).collect();
            assert_eq!(depths, HashSet::from([2, 3]));
        }
    }
    let catalog = Generator::new(GenConfig::default()).catalog().clone();
    assert_eq!(catalog.departments()[1].as_str(), "home & garden");
}

#[test]
fn events_due_follows_the_pattern_deterministically() {
    for pattern in [RatePattern::Steady, RatePattern::Bursty] {
        let config = GenConfig {
            pattern,
            ..GenConfig::default()
        };
        let mut a = Generator::new(config.clone());
        let mut b = Generator::new(config);
        let by_100ms: usize = (0..36_000).map(|i| a.events_due(i * 100, 100)).sum();
        let by_minute: usize = (0..60).map(|i| b.events_due(i * 60_000, 60_000)).sum();
        assert_eq!(by_100ms, by_minute);
        let per_sec = by_minute as f64 / 3600.0;
        assert!((per_sec - 200.0).abs() < 10.0, "{pattern:?}: {per_sec}/s");
    }
}

#[test]
fn csv_output_parses_back_to_the_generated_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.csv");
    let config = GenConfig {
        refund_fraction: 0.1,
        ..GenConfig::default()
    };
    assert_eq!(
        write_events(&config, 20_000, START_MS, &path).unwrap(),
        20_000
    );
    let catalog = Generator::new(config).catalog().clone();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    assert_eq!(
        reader
            .headers()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
            .join(","),
        CSV_HEADER
    );
    let mut rows = 0;
    let mut refunds = 0;
    let mut last_time = jiff::Timestamp::MIN;
    for row in reader.records() {
        let row = row.unwrap();
        rows += 1;
        assert!(row[0].starts_with("g-42-"));
        let time: jiff::Timestamp = row[1].parse().unwrap();
        assert!(row[1].ends_with('Z') && row[1].len() == 24, "{}", &row[1]);
        let item = catalog.item(&row[3]).unwrap();
        assert_eq!(
            (&row[4], &row[5]),
            (item.name.as_str(), item.category.as_str())
        );
        let quantity: i64 = row[6].parse().unwrap();
        assert_eq!(
            parse_decimal_minor(&row[7], 2).unwrap(),
            item.unit_price_minor
        );
        assert_eq!(&row[8], "USD");
        if quantity < 0 {
            refunds += 1;
            let original: jiff::Timestamp = row[2].parse().unwrap();
            assert!(original <= time);
        } else {
            assert_eq!(&row[2], "");
        }
        if time > last_time {
            last_time = time;
        }
    }
    assert_eq!(rows, 20_000);
    assert!(refunds > 1_000, "{refunds}");
    // 20 000 events at a mean of 200/s span about 100 s of event time.
    let span = last_time.as_millisecond() - START_MS;
    assert!((80_000..=120_000).contains(&span), "span {span} ms");
}

#[test]
fn json_lines_output_parses_back_in_the_canonical_shape() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["events.jsonl", "events.ndjson"] {
        let path = dir.path().join(name);
        assert_eq!(
            write_events(&GenConfig::default(), 5_000, START_MS, &path).unwrap(),
            5_000
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = 0;
        for line in text.lines() {
            lines += 1;
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let obj = v.as_object().unwrap();
            for key in [
                "event_id",
                "time",
                "item_id",
                "item_name",
                "category",
                "quantity",
                "unit_price",
                "currency",
            ] {
                assert!(obj.contains_key(key), "{key} missing in {line}");
            }
            let allowed = [
                "event_id",
                "time",
                "original_time",
                "item_id",
                "item_name",
                "category",
                "quantity",
                "unit_price",
                "currency",
                "country",
            ];
            assert!(obj.keys().all(|k| allowed.contains(&k.as_str())), "{line}");
            obj["time"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap();
            parse_decimal_minor(obj["unit_price"].as_str().unwrap(), 2).unwrap();
            let quantity = obj["quantity"].as_i64().unwrap();
            assert_eq!(obj.contains_key("original_time"), quantity < 0, "{line}");
        }
        assert_eq!(lines, 5_000);
    }
}
