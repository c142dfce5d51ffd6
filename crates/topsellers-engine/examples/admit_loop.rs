//! The admit loop of `benches/engine.rs` alone, timed by thread CPU time as well as wall time, so the
//! figure holds on a shared machine, and with a pause after setup for `perf record -p <pid>` to attach.
//! `NO_IDS=1` drops the event ids (no dedup), `NO_NAMES=1` the item names; `BATCH=1` admits the whole
//! stream with one `Engine::admit_batch` call instead of `Engine::admit` per event.
//! Run: `cargo run --release -p topsellers-engine --example admit_loop`
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::time::Instant;
use topsellers_engine::{Engine, EngineConfig};
use topsellers_model::{CategoryPath, PurchaseEvent};

const ITEMS: usize = 1_000_000;
const STREAM: usize = 1_000_000;
const T0: i64 = 1_700_006_400_000;
const MIN: i64 = 60_000;

struct Catalog {
    categories: Vec<CategoryPath>,
}

impl Catalog {
    fn new() -> Self {
        let categories = (0..100)
            .map(|i| CategoryPath::parse(&format!("dept{}/shelf{}", i / 10, i % 10)).unwrap())
            .collect();
        Catalog { categories }
    }

    /// One purchase of `item`; every item lives in one category and has a fixed price and name.
    fn event(&self, n: usize, item: usize, time: i64, rng: &mut StdRng) -> PurchaseEvent {
        // About 1% refunds, half of them of a sale a few minutes earlier.
        let refund = rng.gen_ratio(1, 100);
        PurchaseEvent {
            event_id: Some(format!("order-{n}")),
            event_time_ms: time,
            original_time_ms: (refund && n % 2 == 0).then(|| time - 3 * MIN),
            item_id: format!("sku-{item:07}"),
            item_name: Some(format!("Item number {item}")),
            category: self.categories[item % 100].clone(),
            quantity: if refund { -1 } else { 1 + (n % 3) as i64 },
            unit_price_minor: 100 + (item % 5000) as i64,
            currency: "GBP".into(),
            country: None,
        }
    }
}

/// Zipf-ish (s = 1) item choice: log-uniform over `1..=ITEMS`, so a few items sell a lot and most sell
/// rarely, as on a real shop.
fn zipf_item(rng: &mut StdRng) -> usize {
    let x = (ITEMS as f64).powf(rng.gen::<f64>());
    (x as usize).clamp(1, ITEMS) - 1
}

/// An engine that has seen every item once (5 minutes of event time), and the next `STREAM` events
/// (10 more minutes) drawn Zipf-ish.
fn setup() -> (Engine, Vec<PurchaseEvent>) {
    let catalog = Catalog::new();
    let mut rng = StdRng::seed_from_u64(7);
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    for item in 0..ITEMS {
        let time = T0 + (item as i64 * 5 * MIN) / ITEMS as i64;
        engine.admit(&catalog.event(item, item, time, &mut rng));
    }
    let stream = (0..STREAM)
        .map(|n| {
            let time = T0 + 5 * MIN + (n as i64 * 10 * MIN) / STREAM as i64;
            let item = zipf_item(&mut rng);
            catalog.event(ITEMS + n, item, time, &mut rng)
        })
        .collect();
    (engine, stream)
}

/// CPU time of this thread in ns: unlike wall time, not inflated when other processes share the cores.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let t = Instant::now();
    let (mut engine, mut stream) = setup();
    if std::env::var_os("NO_IDS").is_some() {
        stream.iter_mut().for_each(|e| e.event_id = None);
    }
    if std::env::var_os("ONE_ITEM").is_some() {
        let first = stream[0].clone();
        stream.iter_mut().for_each(|e| {
            e.item_id = first.item_id.clone();
            e.category = first.category.clone();
        });
    }
    if std::env::var_os("NO_NAMES").is_some() {
        stream.iter_mut().for_each(|e| e.item_name = None);
    }
    eprintln!("setup {:?}", t.elapsed());
    // Time for a profiler to attach (`perf record -p`).
    std::thread::sleep(std::time::Duration::from_secs(2));
    let t = Instant::now();
    let c = cpu_ns();
    if std::env::var_os("BATCH").is_some() {
        let mut out = Vec::with_capacity(stream.len());
        engine.admit_batch(&stream, &mut out);
        std::hint::black_box(&out);
    } else {
        for ev in &stream {
            std::hint::black_box(engine.admit(ev));
        }
    }
    let cpu = (cpu_ns() - c) as f64;
    let el = t.elapsed();
    eprintln!(
        "admit wall {:?} = {:.2} M events/s; cpu {:.0} ms = {:.2} M events/s",
        el,
        STREAM as f64 / el.as_secs_f64() / 1e6,
        cpu / 1e6,
        STREAM as f64 / cpu * 1e3
    );
    let t = Instant::now();
    let c = cpu_ns();
    let s = engine.snapshot(1, 0, "GBP");
    eprintln!(
        "snapshot wall {:?}, cpu {:.1} ms ({} lists)",
        t.elapsed(),
        (cpu_ns() - c) as f64 / 1e6,
        s.lists.len()
    );
}
