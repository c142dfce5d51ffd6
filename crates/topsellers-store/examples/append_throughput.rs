//! Measures durable append throughput by batch size (each append is one fsynced transaction), and the
//! cost of a checkpoint, in a data directory of your choice (default: a new temporary directory, so
//! on the disk that holds /tmp).
//!
//! `cargo run --release -p topsellers-store --example append_throughput -- [dir] [seconds_per_size]`

use std::time::{Duration, Instant};
use topsellers_model::{CategoryPath, LogRecord, PurchaseEvent, Snapshot};
use topsellers_store::EmbeddedStore;

fn event(n: u64) -> LogRecord {
    LogRecord::Event(PurchaseEvent {
        event_id: Some(format!("g-42-{n}")),
        event_time_ms: 1_700_000_000_000 + n as i64,
        original_time_ms: None,
        item_id: format!("SKU-{:06}", n % 24_000),
        item_name: Some("Compact Kettle K-420".into()),
        category: CategoryPath::parse("home & garden/kitchen/premium").unwrap(),
        quantity: 1,
        unit_price_minor: 2_999,
        currency: "USD".into(),
        country: Some("US".into()),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let temp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| temp.path().to_path_buf(), Into::into);
    let per_size = Duration::from_secs_f64(args.next().map_or(Ok(2.0), |s| s.parse())?);
    let mut store = EmbeddedStore::open(&dir)?;
    println!("data directory {}", dir.display());
    println!(
        "{:>6} {:>10} {:>12} {:>10}",
        "batch", "appends/s", "records/s", "bytes/rec"
    );
    let mut n = 0u64;
    for batch_size in [1u64, 10, 100, 1_000, 10_000] {
        let batch: Vec<LogRecord> = (0..batch_size).map(|i| event(n + i)).collect();
        n += batch_size;
        let before = store.stats()?.log_bytes;
        let started = Instant::now();
        let mut appends = 0u64;
        while started.elapsed() < per_size {
            store.append(&batch)?;
            appends += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        let bytes = store.stats()?.log_bytes - before;
        println!(
            "{batch_size:>6} {:>10.0} {:>12.0} {:>10.1}",
            appends as f64 / secs,
            (appends * batch_size) as f64 / secs,
            bytes as f64 / (appends * batch_size) as f64
        );
    }
    let stats = store.stats()?;
    let state = vec![1u8; 16 << 20];
    let snapshot = Snapshot {
        version: 1,
        as_of_ms: 0,
        watermark_ms: 0,
        computed_at_ms: 0,
        currency: "USD".into(),
        top_k: 10,
        windows: vec![],
        lists: Default::default(),
        events_counted: 0,
    };
    let started = Instant::now();
    store.save_checkpoint(store.last_seq()?, &state, &snapshot)?;
    println!(
        "checkpoint of 16 MiB state truncating {} entries ({} records, {} MiB db + {} MiB wal before): {:.0} ms; after: {:?}",
        stats.log_entries,
        stats.log_records,
        stats.db_file_bytes >> 20,
        stats.wal_bytes >> 20,
        started.elapsed().as_secs_f64() * 1000.0,
        store.stats()?
    );
    Ok(())
}
