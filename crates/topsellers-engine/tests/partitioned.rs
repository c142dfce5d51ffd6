//! Property test: a stream split by item across partitions, each with its own engine, and the
//! partitions' snapshots merged, gives exactly the snapshot of one engine over the whole stream.
//!
//! This is the Kafka path in miniature. Events go to `home_partition(item, P)` (Kafka's default
//! partitioner on the item id) for every P in 1..=7; before each event its partition's engine is
//! ticked to the newest event time the producer has sent so far (what the producer's header carries),
//! stream ticks go to every partition, and at the end the producer's newest time is sent to every
//! partition. `merge_snapshots` of the partitions must then equal the single engine's snapshot, and
//! every event must get the same admission in both runs.
//!
//! The generator mirrors the oracle's (tests/oracle.rs): late and out-of-order events, refunds with
//! and without the original sale's time, ties, nested categories, ticks, checkpoint/restore. One
//! difference, on purpose: here an event id stands for one moment, as a real order does. A fresh
//! event gets a fresh id; duplicates come from retries (an exact copy of an earlier event) and from
//! other lines of an order (its id and time on another item, or on the same item again). The
//! producer's header counts every event it sends, duplicates included, and a single engine does not
//! advance time on a duplicate; the two agree because a duplicate carries the time of the event it
//! repeats, which real retries do. (An "event" reusing an id and item at a newer time would advance
//! the partitions but not the single engine.)

use proptest::prelude::*;
use topsellers_engine::{Admission, Engine, EngineConfig};
use topsellers_model::{home_partition, merge_snapshots, CategoryPath, PurchaseEvent, Snapshot};

const ITEMS: [&str; 10] = ["i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8", "i9"];
const CATEGORIES: [&str; 7] = ["a", "a/b", "a/b/c", "a/b/c/d", "a/e", "x", "x/y/z/w"];
const NAMES: [&str; 3] = ["", "Name A", "Name B"];

#[derive(Clone, Debug)]
enum Op {
    /// A fresh event `delta_ms` away from the newest time generated so far (negative: out of order
    /// or late), with a fresh id or none.
    Event {
        delta_ms: i64,
        item: usize,
        category: usize,
        quantity: i64,
        price: i64,
        with_id: bool,
        /// For refunds: how long before the event the refunded sale was.
        original_back_ms: Option<i64>,
        name: Option<usize>,
    },
    /// Another line of the newest order (event with an id): its id and time on the item `item_step`
    /// places further on (0: the same item again, a duplicate line), with its own quantity.
    OtherLine {
        item_step: usize,
        quantity: i64,
    },
    /// A producer retry: an exact copy of an earlier event.
    Retry {
        back: prop::sample::Index,
    },
    Tick {
        delta_ms: i64,
    },
    /// Checkpoint and restore every engine, and go on with the restored ones.
    Restore,
}

fn op() -> impl Strategy<Value = Op> {
    let event = (
        -15_000i64..6_000,
        0..ITEMS.len(),
        0..CATEGORIES.len(),
        -3i64..=5,
        prop::sample::select(vec![0i64, 100, 250]),
        prop::bool::weighted(0.6),
        prop::option::of(0i64..90_000),
        prop::option::of(0..NAMES.len()),
    )
        .prop_map(
            |(delta_ms, item, category, quantity, price, with_id, original_back_ms, name)| {
                Op::Event {
                    delta_ms,
                    item,
                    category,
                    quantity,
                    price,
                    with_id,
                    original_back_ms,
                    name,
                }
            },
        );
    prop_oneof![
        12 => event,
        3 => (0..ITEMS.len(), -3i64..=5)
            .prop_map(|(item_step, quantity)| Op::OtherLine { item_step, quantity }),
        3 => any::<prop::sample::Index>().prop_map(|back| Op::Retry { back }),
        2 => (0i64..40_000).prop_map(|delta_ms| Op::Tick { delta_ms }),
        1 => Just(Op::Restore),
    ]
}

/// The oracle's engine settings: small buckets and windows, so events expire and arrive late often.
fn config() -> impl Strategy<Value = EngineConfig> {
    (
        prop::sample::select(vec![1u64, 2, 5]),
        prop::collection::btree_set(1u64..=8, 1..=3),
        any::<prop::sample::Index>(),
        0u64..=10,
        1usize..=4,
    )
        .prop_map(
            |(bucket_secs, lengths, all_at, allowed_lateness_secs, top_k)| {
                let mut windows: Vec<String> = lengths
                    .into_iter()
                    .rev()
                    .map(|n| format!("{}s", n * bucket_secs))
                    .collect();
                windows.insert(all_at.index(windows.len() + 1), "all".into());
                EngineConfig {
                    bucket_secs,
                    windows,
                    allowed_lateness_secs,
                    top_k,
                }
            },
        )
}

/// What the producer sends, in order.
#[derive(Clone, Debug)]
enum Step {
    Event(PurchaseEvent),
    Tick(i64),
    Restore,
}

/// Turns ops into the producer's stream.
fn stream(base: i64, ops: &[Op]) -> Vec<Step> {
    let mut clock = base;
    let mut sent: Vec<PurchaseEvent> = Vec::new();
    let mut order: Option<PurchaseEvent> = None;
    let mut steps = Vec::with_capacity(ops.len());
    for op in ops {
        let ev = match *op {
            Op::Event {
                delta_ms,
                item,
                category,
                quantity,
                price,
                with_id,
                original_back_ms,
                name,
            } => {
                let time = clock + delta_ms;
                clock = clock.max(time);
                let ev = PurchaseEvent {
                    event_id: with_id.then(|| format!("e{}", sent.len())),
                    event_time_ms: time,
                    original_time_ms: original_back_ms.map(|back| time - back),
                    item_id: ITEMS[item].into(),
                    item_name: name.map(|n| NAMES[n].to_string()),
                    category: CategoryPath::parse(CATEGORIES[category]).unwrap(),
                    quantity,
                    unit_price_minor: price,
                    currency: "GBP".into(),
                    country: None,
                };
                if with_id {
                    order = Some(ev.clone());
                }
                ev
            }
            Op::OtherLine {
                item_step,
                quantity,
            } => {
                let Some(order) = &order else { continue };
                let at = ITEMS.iter().position(|&i| i == order.item_id).unwrap();
                PurchaseEvent {
                    item_id: ITEMS[(at + item_step) % ITEMS.len()].into(),
                    quantity,
                    original_time_ms: None,
                    ..order.clone()
                }
            }
            Op::Retry { back } => {
                if sent.is_empty() {
                    continue;
                }
                sent[back.index(sent.len())].clone()
            }
            Op::Tick { delta_ms } => {
                clock += delta_ms;
                steps.push(Step::Tick(clock));
                continue;
            }
            Op::Restore => {
                steps.push(Step::Restore);
                continue;
            }
        };
        sent.push(ev.clone());
        steps.push(Step::Event(ev));
    }
    steps
}

/// P engines fed the way a partitioned topic feeds its aggregators.
struct Partitioned {
    config: EngineConfig,
    engines: Vec<Engine>,
    /// The producer's newest event time so far: what the next event's header carries.
    newest: Option<i64>,
}

impl Partitioned {
    fn new(config: &EngineConfig, partitions: u32) -> Self {
        Partitioned {
            config: config.clone(),
            engines: (0..partitions)
                .map(|_| Engine::new(config.clone()).unwrap())
                .collect(),
            newest: None,
        }
    }

    fn admit(&mut self, ev: &PurchaseEvent) -> Admission {
        let p = home_partition(&ev.item_id, self.engines.len() as u32) as usize;
        let engine = &mut self.engines[p];
        if let Some(newest) = self.newest {
            engine.tick(newest);
        }
        self.newest = Some(
            self.newest
                .map_or(ev.event_time_ms, |t| t.max(ev.event_time_ms)),
        );
        engine.admit(ev)
    }

    fn broadcast_tick(&mut self, now_ms: i64) {
        self.engines.iter_mut().for_each(|e| e.tick(now_ms));
    }

    /// The end of the producer's input: its newest time to every partition.
    fn finish(&mut self) {
        if let Some(newest) = self.newest {
            self.broadcast_tick(newest);
        }
    }

    fn restore(&mut self) {
        for engine in &mut self.engines {
            *engine = Engine::restore(self.config.clone(), &engine.checkpoint()).unwrap();
        }
    }

    fn merged(&mut self) -> Snapshot {
        let parts: Vec<Snapshot> = self
            .engines
            .iter_mut()
            .map(|e| e.snapshot(1, 0, "GBP"))
            .collect();
        merge_snapshots(&parts, 1, 0).unwrap()
    }

    /// (counted, duplicates, late) over all partitions.
    fn counts(&self) -> (u64, u64, u64) {
        self.engines.iter().fold((0, 0, 0), |(c, d, l), e| {
            let s = e.stats();
            (c + s.events_counted, d + s.duplicates, l + s.late)
        })
    }
}

fn run(config: EngineConfig, base: i64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let steps = stream(base, &ops);
    let mut single = Engine::new(config.clone()).unwrap();
    let mut runs: Vec<Partitioned> = (1..=7).map(|p| Partitioned::new(&config, p)).collect();
    for (at, step) in steps.iter().enumerate() {
        match step {
            Step::Event(ev) => {
                let expected = single.admit(ev);
                for run in &mut runs {
                    prop_assert_eq!(
                        run.admit(ev),
                        expected,
                        "{} partitions, step {}: {:?}",
                        run.engines.len(),
                        at,
                        ev
                    );
                }
            }
            Step::Tick(now_ms) => {
                single.tick(*now_ms);
                let expected = single.snapshot(1, 0, "GBP");
                for run in &mut runs {
                    run.broadcast_tick(*now_ms);
                    // A stream tick is past every event sent, so every partition is at the same time.
                    prop_assert_eq!(
                        run.merged(),
                        expected.clone(),
                        "{} partitions, after the tick of step {}",
                        run.engines.len(),
                        at
                    );
                }
            }
            Step::Restore => {
                single = Engine::restore(config.clone(), &single.checkpoint()).unwrap();
                runs.iter_mut().for_each(Partitioned::restore);
            }
        }
    }
    let expected = single.snapshot(1, 0, "GBP");
    let stats = single.stats();
    for run in &mut runs {
        run.finish();
        let partitions = run.engines.len();
        prop_assert_eq!(run.merged(), expected.clone(), "{} partitions", partitions);
        prop_assert_eq!(
            run.counts(),
            (stats.events_counted, stats.duplicates, stats.late),
            "{} partitions",
            partitions
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn merged_partitions_equal_one_engine(
        config in config(),
        base in prop::sample::select(vec![-100_000i64, 0, 1_700_000_000_000]),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(config, base, ops)?;
    }
}

/// The items really spread: with P > 1 every run above uses more than one partition.
#[test]
fn the_test_items_spread_over_the_partitions() {
    for partitions in 2..=7u32 {
        let used: std::collections::BTreeSet<u32> = ITEMS
            .iter()
            .map(|i| home_partition(i, partitions))
            .collect();
        assert!(used.len() > 1, "{partitions} partitions: all items in one");
    }
}
