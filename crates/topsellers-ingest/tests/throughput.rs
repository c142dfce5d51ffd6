//! Rows per second of `FileReader` on a generated 1 M-row CSV. A measurement, not a timed test:
//!
//! ```text
//! cargo test --release -p topsellers-ingest --test throughput -- --ignored --nocapture
//! ```

use std::io::Write;
use std::time::Instant;
use topsellers_ingest::{FieldMapping, FileReader, InputConfig, Limits, Parsed};

const ROWS: usize = 1_000_000;

/// A purchases CSV in the shape of the 10 M-row benchmark file: one sale per row, 100 k items,
/// 50 categories, times rising through 2024.
fn generate(path: &std::path::Path, local_times: bool) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        out,
        "event_id,time,item_id,category,quantity,unit_price,customer"
    )
    .unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let start = jiff::civil::date(2024, 1, 1).at(0, 0, 0, 0);
    for i in 0..ROWS {
        // xorshift: cheap, deterministic, no extra dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let item = state % 100_000;
        let category = (state >> 20) % 50;
        let quantity = 1 + (state >> 40) % 5;
        let cents = 99 + (state >> 30) % 10_000;
        let t = start + jiff::SignedDuration::from_secs(i as i64 * 3);
        let time = if local_times {
            t.strftime("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        };
        writeln!(
            out,
            "ev-{i},{time},sku-{item:05},dept-{}/cat-{category},{quantity},{}.{:02},{}",
            category % 7,
            cents / 100,
            cents % 100,
            state % 1_000_000
        )
        .unwrap();
    }
}

fn measure(label: &str, local_times: bool, time_format: &str, time_zone: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("purchases.csv");
    generate(&path, local_times);
    let input = InputConfig {
        fields: FieldMapping {
            item_name: None,
            currency: None,
            country: None,
            original_time: None,
            ..FieldMapping::canonical()
        },
        time_format: time_format.into(),
        time_zone: time_zone.into(),
        ..InputConfig::default()
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let started = Instant::now();
    let mut reader = FileReader::open(&path, &input, &Limits::default(), now_ms).unwrap();
    let (mut events, mut units) = (0usize, 0i64);
    for parsed in reader.by_ref() {
        match parsed {
            Parsed::Event(e) => {
                events += 1;
                units += e.quantity;
            }
            other => panic!("generated rows are all valid: {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let bytes = reader.bytes_read();
    assert_eq!(events, ROWS);
    assert!(units >= ROWS as i64);
    println!(
        "{label}: {ROWS} rows, {:.1} MB in {secs:.3} s = {:.2} M rows/s, {:.0} MB/s",
        bytes as f64 / 1e6,
        ROWS as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6
    );
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn csv_rows_per_second() {
    measure("rfc3339 UTC", false, "rfc3339", "UTC");
    measure(
        "%Y-%m-%d %H:%M:%S Europe/London",
        true,
        "%Y-%m-%d %H:%M:%S",
        "Europe/London",
    );
}
