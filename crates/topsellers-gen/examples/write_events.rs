//! Writes a benchmark input file of generated events and reports the time it took.
//!
//! `cargo run --release -p topsellers-gen --example write_events -- 10000000 /tmp/purchases.csv [rate_per_sec]`
//! (`.jsonl` / `.ndjson` for JSON lines). Uses the default `[demo]` settings with the given mean rate.

use std::time::Instant;
use topsellers_gen::{write_events, GenConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: write_events <count> <path> [rate_per_sec]";
    let count: u64 = args.next().ok_or(usage)?.parse()?;
    let path = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let mut config = GenConfig::default();
    if let Some(rate) = args.next() {
        config.rate_per_sec = rate.parse()?;
    }
    let problems = config.validate();
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }
    let started = Instant::now();
    let written = write_events(&config, count, 1_700_000_000_000, &path)?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "wrote {written} events ({bytes} bytes) to {} in {secs:.2} s ({:.0} events/s)",
        path.display(),
        written as f64 / secs
    );
    Ok(())
}
