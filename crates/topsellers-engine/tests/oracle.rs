//! Property tests: the engine against a brute-force oracle.
//!
//! The oracle keeps the list of accepted events and recomputes every ranking from scratch, straight from
//! the rules in DESIGN.md; it decides admission itself. It shares no code with the engine beyond the
//! model types and `rank_order`, so an incremental bookkeeping bug (expiry, refunds, roll-up, caching,
//! checkpoints) shows up as a difference.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use topsellers_engine::{Admission, Engine, EngineConfig};
use topsellers_model::{
    rank_order, CategoryPath, PurchaseEvent, RankedItem, Snapshot, TopList, WindowBounds,
    WindowSpec,
};

struct Oracle {
    config: EngineConfig,
    max_time: Option<i64>,
    /// (Event id, item id) -> event time of the accepted event that carried them: a duplicate is the
    /// same id for the same item (two items under one id are two lines of one order).
    seen: HashMap<(String, String), i64>,
    accepted: Vec<PurchaseEvent>,
    counts: (u64, u64, u64),
}

impl Oracle {
    fn new(config: EngineConfig) -> Self {
        Oracle {
            config,
            max_time: None,
            seen: HashMap::new(),
            accepted: Vec::new(),
            counts: (0, 0, 0),
        }
    }

    fn watermark(&self) -> i64 {
        let lateness = self.config.allowed_lateness_secs as i64 * 1000;
        self.max_time.map_or(i64::MIN, |t| t - lateness)
    }

    fn admit(&mut self, ev: &PurchaseEvent) -> Admission {
        let wm = self.watermark();
        let line = ev
            .event_id
            .clone()
            .filter(|id| !id.is_empty())
            .map(|id| (id, ev.item_id.clone()));
        if let Some(line) = &line {
            if self.seen.get(line).is_some_and(|&t| t >= wm) {
                self.counts.1 += 1;
                return Admission::Duplicate;
            }
        }
        if ev.event_time_ms < wm {
            self.counts.2 += 1;
            return Admission::Late { watermark_ms: wm };
        }
        self.tick(ev.event_time_ms);
        if let Some(line) = line {
            self.seen.insert(line, ev.event_time_ms);
        }
        self.accepted.push(ev.clone());
        self.counts.0 += 1;
        Admission::Accepted
    }

    fn tick(&mut self, now: i64) {
        self.max_time = Some(self.max_time.map_or(now, |t| t.max(now)));
    }

    fn snapshot(&self) -> Snapshot {
        let bucket_ms = self.config.bucket_secs as i64 * 1000;
        let cur = self.max_time.map(|t| t.div_euclid(bucket_ms));
        let as_of = cur.map_or(0, |c| (c + 1) * bucket_ms);
        let windows: Vec<WindowSpec> = self
            .config
            .windows
            .iter()
            .map(|w| WindowSpec::parse(w).unwrap())
            .collect();
        let mut categories: BTreeSet<String> = BTreeSet::from([String::new()]);
        let mut names: HashMap<&str, &str> = HashMap::new();
        for e in &self.accepted {
            categories.extend(e.category.ancestors().map(str::to_string));
            if let Some(name) = e.item_name.as_deref().filter(|n| !n.is_empty()) {
                names.insert(&e.item_id, name);
            }
        }
        let mut lists = BTreeMap::new();
        for cat in &categories {
            let mut per_window = Vec::new();
            for w in &windows {
                let mut sums: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
                for e in &self.accepted {
                    if !e.category.ancestors().any(|a| a == cat) {
                        continue;
                    }
                    let applied = e
                        .applied_time_ms()
                        .min(e.event_time_ms)
                        .div_euclid(bucket_ms);
                    let inside = match w.length_secs {
                        None => true,
                        Some(len) => {
                            applied > cur.unwrap() - (len / self.config.bucket_secs) as i64
                        }
                    };
                    if inside {
                        let s = sums.entry(&e.item_id).or_default();
                        s.0 += e.quantity;
                        s.1 += e.quantity * e.unit_price_minor;
                    }
                }
                let mut ranked: Vec<(&str, i64, i64)> = sums
                    .into_iter()
                    .filter(|(_, s)| s.0 > 0)
                    .map(|(i, s)| (i, s.0, s.1))
                    .collect();
                ranked.sort_by(|a, b| rank_order(a.1, a.2, a.0, b.1, b.2, b.0));
                ranked.truncate(self.config.top_k);
                per_window.push(TopList {
                    category: cat.clone(),
                    window: w.name.clone(),
                    bounds: WindowBounds {
                        start_ms: w.length_secs.map(|l| as_of - l as i64 * 1000),
                        end_ms: as_of,
                    },
                    items: ranked
                        .into_iter()
                        .enumerate()
                        .map(|(i, (item, units, revenue))| RankedItem {
                            rank: i as u32 + 1,
                            item_id: item.to_string(),
                            item_name: names.get(item).map(|n| n.to_string()),
                            units,
                            revenue_minor: revenue,
                        })
                        .collect(),
                });
            }
            lists.insert(cat.clone(), per_window);
        }
        Snapshot {
            version: 1,
            as_of_ms: as_of,
            watermark_ms: self.watermark(),
            computed_at_ms: 0,
            currency: "GBP".into(),
            top_k: self.config.top_k,
            windows,
            lists,
            events_counted: self.counts.0,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// An event `delta_ms` away from the newest time generated so far (negative: out of order or late).
    Event {
        delta_ms: i64,
        item: usize,
        category: usize,
        quantity: i64,
        price: i64,
        id: Option<usize>,
        /// For refunds: how long before the event the refunded sale was.
        original_back_ms: Option<i64>,
        name: Option<usize>,
    },
    /// Another line of the order of the newest event with an id: that id and time on the item
    /// `item_step` places further on in `ITEMS` (so a different item), with its own quantity. One id on
    /// two items is two lines, never a duplicate; the same step twice is a duplicate line. Nothing
    /// before the first event with an id.
    OtherLine {
        item_step: usize,
        quantity: i64,
    },
    Tick {
        delta_ms: i64,
    },
    /// Checkpoint, restore, and go on with the restored engine.
    Restore,
}

const ITEMS: [&str; 6] = ["i0", "i1", "i2", "i3", "i4", "i5"];
const CATEGORIES: [&str; 7] = ["a", "a/b", "a/b/c", "a/b/c/d", "a/e", "x", "x/y/z/w"];
const NAMES: [&str; 3] = ["", "Name A", "Name B"];

fn op() -> impl Strategy<Value = Op> {
    weighted_op(12, 2, 1)
}

/// Events, ticks and restores in the ratio `events : ticks : restores`; other lines of an order come
/// with one in four events on top.
fn weighted_op(events: u32, ticks: u32, restores: u32) -> impl Strategy<Value = Op> {
    let event = (
        -15_000i64..6_000,
        0..ITEMS.len(),
        0..CATEGORIES.len(),
        -3i64..=5,
        prop::sample::select(vec![0i64, 100, 250]),
        prop::option::weighted(0.6, 0..12usize),
        prop::option::of(0i64..90_000),
        prop::option::of(0..NAMES.len()),
    )
        .prop_map(
            |(delta_ms, item, category, quantity, price, id, original_back_ms, name)| Op::Event {
                delta_ms,
                item,
                category,
                quantity,
                price,
                id,
                original_back_ms,
                name,
            },
        );
    let other_line = (1..ITEMS.len(), -3i64..=5).prop_map(|(item_step, quantity)| Op::OtherLine {
        item_step,
        quantity,
    });
    prop_oneof![
        events => event,
        events.div_ceil(4) => other_line,
        ticks => (0i64..40_000).prop_map(|delta_ms| Op::Tick { delta_ms }),
        restores => Just(Op::Restore),
    ]
}

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

fn run(config: EngineConfig, base: i64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut engine = Engine::new(config.clone()).unwrap();
    let mut oracle = Oracle::new(config.clone());
    let mut stream = Stream::new(base);
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Event { .. } | Op::OtherLine { .. } => {
                if let Some(ev) = stream.event(&op) {
                    let expected = oracle.admit(&ev);
                    prop_assert_eq!(engine.admit(&ev), expected, "step {}: {:?}", step, ev);
                }
            }
            Op::Tick { delta_ms } => {
                stream.clock += delta_ms;
                engine.tick(stream.clock);
                oracle.tick(stream.clock);
            }
            Op::Restore => {
                let bytes = engine.checkpoint();
                engine = Engine::restore(config.clone(), &bytes).unwrap();
                prop_assert_eq!(engine.checkpoint(), bytes);
            }
        }
        if step % 3 == 0 {
            prop_assert_eq!(
                engine.snapshot(1, 0, "GBP"),
                oracle.snapshot(),
                "after step {}",
                step
            );
        }
    }
    prop_assert_eq!(engine.snapshot(1, 0, "GBP"), oracle.snapshot());
    let stats = engine.stats();
    prop_assert_eq!(
        (stats.events_counted, stats.duplicates, stats.late),
        oracle.counts
    );
    Ok(())
}

/// Turns ops into events: the newest time generated so far, and the newest event with an id (the
/// order whose other lines `Op::OtherLine` adds).
struct Stream {
    clock: i64,
    order: Option<PurchaseEvent>,
}

impl Stream {
    fn new(base: i64) -> Self {
        Stream {
            clock: base,
            order: None,
        }
    }

    /// The event `op` stands for, if any; moves the clock on.
    fn event(&mut self, op: &Op) -> Option<PurchaseEvent> {
        match *op {
            Op::Event {
                delta_ms,
                item,
                category,
                quantity,
                price,
                id,
                original_back_ms,
                name,
            } => {
                let time = self.clock + delta_ms;
                self.clock = self.clock.max(time);
                let ev = PurchaseEvent {
                    event_id: id.map(|i| format!("e{i}")),
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
                if ev.event_id.is_some() {
                    self.order = Some(ev.clone());
                }
                Some(ev)
            }
            Op::OtherLine {
                item_step,
                quantity,
            } => {
                let order = self.order.as_ref()?;
                let at = ITEMS.iter().position(|&i| i == order.item_id).unwrap();
                Some(PurchaseEvent {
                    item_id: ITEMS[(at + item_step) % ITEMS.len()].into(),
                    quantity,
                    original_time_ms: None,
                    ..order.clone()
                })
            }
            Op::Tick { .. } | Op::Restore => None,
        }
    }
}

/// `admit_batch` against `admit` one event at a time: the runs of events between ticks and restores
/// are cut into batches of the sizes in `cuts` (cycled), long enough to fill its pipeline.
fn run_batched(
    config: EngineConfig,
    base: i64,
    ops: Vec<Op>,
    cuts: Vec<usize>,
) -> Result<(), TestCaseError> {
    let mut single = Engine::new(config.clone()).unwrap();
    let mut batched = Engine::new(config.clone()).unwrap();
    let mut stream = Stream::new(base);
    let mut cuts = cuts.into_iter().cycle();
    let mut pending: Vec<PurchaseEvent> = Vec::new();
    let mut out = Vec::new();
    let mut flush = |single: &mut Engine,
                     batched: &mut Engine,
                     pending: &mut Vec<PurchaseEvent>|
     -> Result<(), TestCaseError> {
        out.clear();
        batched.admit_batch(&[], &mut out);
        prop_assert!(out.is_empty());
        let mut rest = &pending[..];
        while !rest.is_empty() {
            let n = cuts.next().unwrap().min(rest.len());
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            out.clear();
            out.push(Admission::Duplicate); // `admit_batch` appends: what was there stays.
            batched.admit_batch(batch, &mut out);
            let expected: Vec<Admission> = std::iter::once(Admission::Duplicate)
                .chain(batch.iter().map(|ev| single.admit(ev)))
                .collect();
            prop_assert_eq!(&out, &expected);
        }
        pending.clear();
        prop_assert_eq!(batched.snapshot(1, 0, "GBP"), single.snapshot(1, 0, "GBP"));
        Ok(())
    };
    for op in &ops {
        if let Some(ev) = stream.event(op) {
            pending.push(ev);
            continue;
        }
        flush(&mut single, &mut batched, &mut pending)?;
        match op {
            Op::Tick { delta_ms } => {
                stream.clock += delta_ms;
                single.tick(stream.clock);
                batched.tick(stream.clock);
            }
            Op::Restore => {
                let bytes = batched.checkpoint();
                prop_assert_eq!(&bytes, &single.checkpoint());
                batched = Engine::restore(config.clone(), &bytes).unwrap();
                single = Engine::restore(config.clone(), &bytes).unwrap();
            }
            // An other line before any event with an id stands for nothing.
            Op::OtherLine { .. } => {}
            Op::Event { .. } => unreachable!(),
        }
    }
    flush(&mut single, &mut batched, &mut pending)?;
    prop_assert_eq!(batched.checkpoint(), single.checkpoint());
    prop_assert_eq!(batched.stats(), single.stats());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn admit_batch_equals_admit_one_by_one(
        config in config(),
        base in prop::sample::select(vec![-100_000i64, 0, 1_700_000_000_000]),
        // Long runs of events between ticks and restores, so batches fill several groups.
        ops in prop::collection::vec(weighted_op(80, 2, 1), 1..300),
        cuts in prop::collection::vec(1usize..80, 1..6),
    ) {
        run_batched(config, base, ops, cuts)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_brute_force_recomputation(
        config in config(),
        base in prop::sample::select(vec![-100_000i64, 0, 1_700_000_000_000]),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        run(config, base, ops)?;
    }

    #[test]
    fn same_calls_give_same_snapshots(
        config in config(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        // Determinism: two engines fed the same calls agree, with or without checkpoints in between.
        let replay = |ops: &[Op], restore: bool| {
            let mut engine = Engine::new(config.clone()).unwrap();
            let mut clock = 0;
            for op in ops {
                match op {
                    Op::Event { delta_ms, item, category, quantity, .. } => {
                        clock = clock.max(clock + delta_ms);
                        let ev = PurchaseEvent {
                            event_id: None,
                            event_time_ms: clock + delta_ms.min(&0),
                            original_time_ms: None,
                            item_id: ITEMS[*item].into(),
                            item_name: None,
                            category: CategoryPath::parse(CATEGORIES[*category]).unwrap(),
                            quantity: *quantity,
                            unit_price_minor: 100,
                            currency: "GBP".into(),
                            country: None,
                        };
                        engine.admit(&ev);
                    }
                    Op::Tick { delta_ms } => { clock += delta_ms; engine.tick(clock); }
                    Op::Restore if restore => {
                        engine = Engine::restore(config.clone(), &engine.checkpoint()).unwrap();
                    }
                    Op::Restore | Op::OtherLine { .. } => {}
                }
            }
            engine.snapshot(1, 0, "GBP")
        };
        prop_assert_eq!(replay(&ops, true), replay(&ops, false));
    }
}
