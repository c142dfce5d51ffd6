//! Throughput of `Engine::admit` and cost of `Engine::snapshot` at the scale of the performance target:
//! 1 M distinct items, 100 leaf categories of depth 2, default windows (`1h`, `24h`, `7d`, `all`),
//! 1-minute buckets, about 10 minutes of event time.
//!
//! Run: `cargo bench -p topsellers-engine --bench engine -- --measurement-time 5 --warm-up-time 2`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
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

fn benches(c: &mut Criterion) {
    let (warm, stream) = setup();

    let mut group = c.benchmark_group("admit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STREAM as u64));
    group.bench_function("zipf_1M_items", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut engine| {
                for ev in &stream {
                    black_box(engine.admit(ev));
                }
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("batch_zipf_1M_items", |b| {
        b.iter_batched(
            || (warm.clone(), Vec::with_capacity(stream.len())),
            |(mut engine, mut out)| {
                engine.admit_batch(&stream, &mut out);
                black_box(&out);
                (engine, out)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut after = warm.clone();
    for ev in &stream {
        after.admit(ev);
    }
    let stats = after.stats();
    eprintln!(
        "state after {} events: {stats:?}; approx bytes per (series, bucket) entry: {:.1}",
        stats.events_counted + stats.duplicates + stats.late,
        after.approx_bytes_per_bucket_entry()
    );

    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.bench_function("every_list_dirty", |b| {
        b.iter_batched(
            || after.clone(),
            |mut engine| {
                black_box(engine.snapshot(1, 0, "GBP"));
                engine
            },
            BatchSize::PerIteration,
        )
    });
    // The steady state: a snapshot per refresh interval, with ~10 k events in between.
    let mut refreshed = after.clone();
    refreshed.snapshot(1, 0, "GBP");
    let catalog = Catalog::new();
    let mut rng = StdRng::seed_from_u64(11);
    let last = stream.last().unwrap().event_time_ms;
    let more: Vec<PurchaseEvent> = (0..10_000)
        .map(|n| {
            catalog.event(
                2 * ITEMS + n,
                zipf_item(&mut rng),
                last + n as i64,
                &mut rng,
            )
        })
        .collect();
    group.bench_function("after_10k_events", |b| {
        b.iter_batched(
            || {
                let mut engine = refreshed.clone();
                for ev in &more {
                    engine.admit(ev);
                }
                engine
            },
            |mut engine| {
                black_box(engine.snapshot(2, 0, "GBP"));
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
