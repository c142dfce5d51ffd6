//! `topsellers replay`: read purchase files into a data directory, with a progress bar and a summary.

use crate::config::Config;
use crate::node::{wall_clock_ms, BatchOutcome, NodeCore};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use topsellers_ingest::{FileReader, Parsed};
use topsellers_server::{Metrics, Results};

const READ_EXTENSIONS: &[&str] = &["csv", "jsonl", "ndjson", "json", "tsv", "txt"];

#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub unreadable_files: Vec<String>,
    pub records: u64,
    pub outcome: BatchOutcome,
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    pub late: u64,
    pub elapsed: Duration,
    pub dead_letter_path: PathBuf,
}

impl ReplaySummary {
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.values().sum()
    }

    pub fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "replay finished in {:.2} s: {} files, {} records ({:.0} records/s)",
            secs,
            self.files,
            self.records,
            self.records as f64 / secs
        );
        println!(
            "  accepted            {:>12}  (refunds {})",
            self.outcome.accepted, self.outcome.refunds
        );
        println!("  duplicates dropped  {:>12}", self.outcome.duplicates);
        println!("  late                {:>12}", self.late);
        for (reason, n) in &self.outcome.skipped {
            println!("  skipped: {reason:<10} {n:>12}");
        }
        for (reason, n) in &self.rejected_by_reason {
            if *reason != "late" {
                println!("  rejected: {reason:<17} {n:>4}");
            }
        }
        if self.rejected() > 0 {
            println!(
                "  dead letters (with file, line, field and reason): {}",
                self.dead_letter_path.display()
            );
        }
        for f in &self.unreadable_files {
            println!("  NOT READ: {f}");
        }
    }
}

/// Expands directories to the purchase files in them, in name order (Online Retail's by-day files are then in
/// time order).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).with_context(|| {
            format!("input {} does not exist or cannot be read", input.display())
        })?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot list directory {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            READ_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                        })
                })
                .collect();
            found.sort();
            if found.is_empty() {
                bail!(
                    "directory {} holds no purchase files (*.csv, *.jsonl, *.ndjson, *.json)",
                    input.display()
                );
            }
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

pub fn run(config: &Config, inputs: &[PathBuf], show_progress: bool) -> Result<ReplaySummary> {
    let Some(input) = &config.input else {
        bail!("the config has no [input] section saying how to read the files; see examples/online-retail.toml for one");
    };
    let files = expand_inputs(inputs)?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let metrics = Arc::new(Metrics::new());
    let mut core = NodeCore::open(config, metrics)?;
    let results = Results::with_currency_decimals(config.limits.price_decimals);
    let bar = progress_bar(total_bytes, show_progress);
    let started = Instant::now();
    let mut summary = ReplaySummary {
        files: files.len(),
        dead_letter_path: core.dead_letter_path(),
        ..ReplaySummary::default()
    };
    let mut done_bytes = 0u64;
    let batch_size = config.node.max_batch_records;
    for file in &files {
        let mut reader = match FileReader::open(file, input, &config.limits, wall_clock_ms()) {
            Ok(r) => r,
            Err(e) => {
                bar.suspend(|| eprintln!("topsellers: skipping {}: {e}", file.display()));
                summary
                    .unreadable_files
                    .push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        bar.set_message(
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        loop {
            let batch: Vec<Parsed> = reader.by_ref().take(batch_size).collect();
            if batch.is_empty() {
                break;
            }
            summary.records += batch.len() as u64;
            let outcome = core.ingest(batch, "replay", None)?;
            account(&mut summary, &outcome);
            bar.set_position(done_bytes + reader.bytes_read());
            if core.checkpoint_due() {
                core.checkpoint(&results)?;
            }
        }
        done_bytes += reader.total_bytes().unwrap_or_else(|| reader.bytes_read());
        bar.set_position(done_bytes);
    }
    core.publish_snapshot(&results, true);
    core.checkpoint(&results)?;
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn account(summary: &mut ReplaySummary, outcome: &BatchOutcome) {
    summary.outcome.add(outcome);
    for letter in &outcome.rejected {
        *summary
            .rejected_by_reason
            .entry(letter.reason.as_str())
            .or_default() += 1;
        if letter.reason == topsellers_model::RejectReason::Late {
            summary.late += 1;
        }
    }
}

fn progress_bar(total: u64, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
