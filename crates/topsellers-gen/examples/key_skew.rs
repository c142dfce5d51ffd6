//! How evenly each candidate Kafka key spreads the demo's traffic over the partitions: the measurement
//! behind keying the `purchases` topic by item id.
//!
//! Generates N events (default 1 000 000) with the demo generator's default settings (the `[demo]`
//! section's defaults, as `topsellers demo` runs them), hashes each candidate key with Kafka's default
//! partitioner (`home_partition`: murmur2, as the Java client does), and prints a markdown table: per key,
//! how many distinct values it has, the share of events of its single hottest value (a floor on the
//! busiest partition whatever the partition count), and for 6, 12 and 24 partitions the events of the
//! busiest partition relative to the mean (1.00 is perfectly even; P is the worst possible).
//!
//! `cargo run --release -p topsellers-gen --example key_skew [-- <events>]`

use std::collections::HashMap;
use topsellers_gen::{GenConfig, Timeline};
use topsellers_model::{home_partition, PurchaseEvent};

const PARTITIONS: [u32; 3] = [6, 12, 24];
const START_MS: i64 = 1_700_000_000_000;

/// A candidate key: its name in the table and how it is read off an event.
struct Key {
    name: &'static str,
    of: fn(&PurchaseEvent) -> &str,
}

const KEYS: [Key; 4] = [
    Key {
        name: "category (leaf path)",
        of: |e| e.category.as_str(),
    },
    Key {
        name: "top-level category",
        of: |e| {
            let path = e.category.as_str();
            path.split('/').next().unwrap_or(path)
        },
    },
    Key {
        name: "item id",
        of: |e| &e.item_id,
    },
    Key {
        name: "event id",
        of: |e| e.event_id.as_deref().unwrap_or(""),
    },
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|e| format!("events {n:?}: {e}"))?,
        None => 1_000_000,
    };
    if events == 0 {
        return Err("events must be at least 1".into());
    }
    let config = GenConfig::default();
    let problems = config.validate();
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }
    // The demo prefixes every event id with its run's id (so a restarted demo does not reuse ids);
    // a fixed prefix of the same shape keeps the event-id keys as the demo sends them.
    let run_id = format!("{START_MS:x}");

    // Per key: events per distinct value.
    let mut counts: Vec<HashMap<String, u64>> = KEYS.iter().map(|_| HashMap::new()).collect();
    for mut event in Timeline::new(&config, events, START_MS) {
        if let Some(id) = &mut event.event_id {
            *id = format!("{run_id}-{id}");
        }
        for (key, counts) in KEYS.iter().zip(&mut counts) {
            let value = (key.of)(&event);
            match counts.get_mut(value) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(value.to_string(), 1);
                }
            }
        }
    }

    println!(
        "{events} events of the demo generator's default traffic (seed {}, {} departments, {} leaf \
         categories, {} items per leaf, Zipf exponent {}); Kafka's default partitioner on each key.\n",
        config.seed,
        config.departments,
        config.leaves,
        config.items_per_leaf,
        config.zipf_exponent
    );
    let mut header = String::from("| key | distinct values | hottest value's share |");
    let mut rule = String::from("|---|---:|---:|");
    for p in PARTITIONS {
        header.push_str(&format!(" busiest/mean, {p} partitions |"));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    for (key, counts) in KEYS.iter().zip(&counts) {
        let hottest = counts.values().copied().max().unwrap_or(0);
        let share = 100.0 * hottest as f64 / events as f64;
        // Two decimals hide a value repeated only by a few duplicate deliveries.
        let share = if share < 0.01 {
            format!("{share:.4} %")
        } else {
            format!("{share:.2} %")
        };
        let mut row = format!("| {} | {} | {share} |", key.name, counts.len());
        for p in PARTITIONS {
            let mut load = vec![0u64; p as usize];
            for (value, n) in counts {
                load[home_partition(value, p) as usize] += n;
            }
            let busiest = load.iter().copied().max().unwrap_or(0);
            let mean = events as f64 / f64::from(p);
            row.push_str(&format!(" {:.2} |", busiest as f64 / mean));
        }
        println!("{row}");
    }
    Ok(())
}
