//! The admit loop of `benches/engine.rs` alone, timed by thread CPU time as well as wall time, so the
//! figure holds on a shared machine, and with a pause after setup for `perf record -p <pid>` to attach.
//! `NO_IDS=1` drops the event ids (no dedup), `NO_NAMES=1` the item names; `BATCH=1` admits the whole
//! stream with one `Engine::admit_batch` call instead of `Engine::admit` per event.
//! Run: `cargo run --release -p topsellers-engine --example admit_loop`
use std::time::Instant;

#[path = "../benches/support/workload.rs"]
mod workload;
use workload::{setup, STREAM};

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
