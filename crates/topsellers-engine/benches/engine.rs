//! Throughput of `Engine::admit` and cost of `Engine::snapshot` at the scale of the performance target:
//! 1 M distinct items, 100 leaf categories of depth 2, default windows (`1h`, `24h`, `7d`, `all`),
//! 1-minute buckets, about 10 minutes of event time.
//!
//! Run: `cargo bench -p topsellers-engine --bench engine -- --measurement-time 5 --warm-up-time 2`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use topsellers_model::PurchaseEvent;

#[path = "support/workload.rs"]
mod workload;
use rand::{rngs::StdRng, SeedableRng};
use workload::{setup, zipf_item, Catalog, ITEMS, STREAM};

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
