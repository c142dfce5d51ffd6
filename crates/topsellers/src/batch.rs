//! `topsellers batch`: one incremental run over the PostgreSQL purchase table of `[batch]`, into the results store
//! of `[cluster]` under the namespace `kafka.topic` (where `topsellers api` reads). See the `topsellers_batch` crate
//! for what a run does and why it is safe to kill and to repeat.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};
use topsellers_batch::{BatchOptions, BatchSummary, Progress};

/// Test hook: abort the process (like `kill -9`) after this many groups, before anything is saved.
const ABORT_AFTER_GROUPS_ENV: &str = "TOPSELLERS_TEST_BATCH_ABORT_AFTER_GROUPS";

pub fn run(config: &Config, show_progress: bool) -> Result<()> {
    let settings = &config.batch;
    let problems = settings.validate();
    if !problems.is_empty() {
        bail!(
            "the [batch] section cannot be used:\n  - batch.{}",
            problems.join("\n  - batch.")
        );
    }
    let store = crate::cluster::open_store(config)?;
    let options = BatchOptions {
        engine: config.engine.clone(),
        currency: config.limits.currency.clone(),
        price_decimals: config.limits.price_decimals,
        now_ms: crate::node::wall_clock_ms(),
    };
    eprintln!(
        "topsellers: batch from {} at {} into {}",
        settings.source_name(),
        settings.masked_url(),
        store.describe()
    );
    let abort_after: Option<u64> = std::env::var(ABORT_AFTER_GROUPS_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let bar = progress_bar(show_progress);
    let started = Instant::now();
    let outcome = topsellers_batch::run(settings, &options, store.as_ref(), |p: &Progress| {
        if p.groups.is_multiple_of(1024) {
            let from = p.from_ms.unwrap_or(p.at_ms.min(p.to_ms));
            bar.set_length((p.to_ms - from).max(1) as u64);
            bar.set_position((p.at_ms - from).max(0) as u64);
            bar.set_message(format!(
                "{} rows, {} groups, at {}",
                p.rows,
                p.groups,
                show_time(p.at_ms)
            ));
        }
        if abort_after.is_some_and(|n| p.groups >= n) {
            std::process::abort();
        }
    });
    bar.finish_and_clear();
    let summary = outcome.context("the batch run failed and saved nothing")?;
    print_summary(&summary, started.elapsed());
    Ok(())
}

fn progress_bar(show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(1),
        if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

fn print_summary(s: &BatchSummary, elapsed: Duration) {
    let from = s.from_ms.map_or("the beginning".to_string(), show_time);
    match s.version {
        None => outln!(
            "batch: no rows after {from}; nothing to do, the results store is unchanged ({:.2} s)",
            elapsed.as_secs_f64()
        ),
        Some(version) => {
            let secs = elapsed.as_secs_f64();
            outln!(
                "batch: counted {} rows ({} groups from PostgreSQL) after {from} up to {} in {secs:.2} s ({:.0} rows/s)",
                s.rows,
                s.groups,
                s.to_ms.map_or("-".to_string(), show_time),
                s.rows as f64 / secs.max(1e-9)
            );
            outln!(
                "batch: committed results version {version} and the watermark together; {} rows counted by all runs",
                s.events_counted_total
            );
        }
    }
    if s.rows_with_nulls > 0 {
        outln!(
            "batch: skipped {} rows with NULL in a mapped column (filter or fill them in batch.query)",
            s.rows_with_nulls
        );
    }
    if s.groups_rejected > 0 {
        outln!(
            "batch: skipped {} groups with an invalid item id or category, the first for {}",
            s.groups_rejected,
            s.first_rejection.as_deref().unwrap_or("-")
        );
    }
}
