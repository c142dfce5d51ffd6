//! `topsellers replay`: read purchase files into a data directory, with a progress bar and a summary.

use crate::config::Config;
use crate::ledger::{FileFingerprint, FileStatus, ReplayLedger};
use crate::node::{wall_clock_ms, BatchOutcome, Locations, NodeCore, Submission};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use topsellers_ingest::{FileReader, InputConfig, Parsed, Redactions};
use topsellers_server::{Metrics, Results};

const READ_EXTENSIONS: &[&str] = &["csv", "jsonl", "ndjson", "json", "tsv"];

#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub unreadable_files: Vec<String>,
    pub already_replayed: Vec<String>,
    pub resumed_files: usize,
    pub grown_files: usize,
    /// Stopped by SIGINT/SIGTERM; the data directory holds everything up to where it stopped.
    pub interrupted: bool,
    pub redactions: Redactions,
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
        outln!(
            "replay finished in {:.2} s: {} files, {} records ({:.0} records/s)",
            secs,
            self.files,
            self.records,
            self.records as f64 / secs
        );
        outln!(
            "  accepted            {:>12}  (refunds {})",
            self.outcome.accepted,
            self.outcome.refunds
        );
        outln!("  duplicates dropped  {:>12}", self.outcome.duplicates);
        outln!("  late                {:>12}", self.late);
        for (reason, n) in &self.outcome.skipped {
            outln!("  skipped: {reason:<10} {n:>12}");
        }
        for (reason, n) in &self.rejected_by_reason {
            if *reason != "late" {
                outln!("  rejected: {reason:<17} {n:>4}");
            }
        }
        if self.rejected() > 0 {
            outln!(
                "  dead letters (with file, line, field and reason): {}",
                self.dead_letter_path.display()
            );
        }
        let r = &self.redactions;
        if r.total() > 0 {
            outln!(
                "  personal data redacted in kept text fields: {} (email {}, card {}, phone {}, ip {})",
                r.total(),
                r.email,
                r.card,
                r.phone,
                r.ip
            );
        }
        if self.interrupted {
            outln!("  INTERRUPTED by a signal: everything read so far is saved; run the same command again to continue");
        }
        if self.grown_files > 0 {
            outln!(
                "  files that grew since they were replayed (only new records read): {}",
                self.grown_files
            );
        }
        if self.resumed_files > 0 {
            outln!(
                "  files resumed where an interrupted replay stopped: {}",
                self.resumed_files
            );
        }
        if !self.already_replayed.is_empty() {
            outln!(
                "  files already replayed into this data directory, not counted again: {}",
                self.already_replayed.len()
            );
        }
        for f in &self.unreadable_files {
            outln!("  NOT READ: {f}");
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
    // Without an [input] section, files are read in the canonical shape (what `topsellers generate` writes and
    // POST /v1/purchases takes), the format taken from each file's extension.
    let default_input = InputConfig::default();
    let input = config.input.as_ref().unwrap_or(&default_input);
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
    // Ledger entries to store with the next checkpoint: a file counts as replayed exactly when the state that
    // holds its purchases is durable, never before.
    let mut pending_ledger: Vec<(String, String)> = Vec::new();
    let stop = stop_on_signal();
    for file in &files {
        let fingerprint = match FileFingerprint::of(file) {
            Ok(f) => f,
            Err(e) => {
                summary
                    .unreadable_files
                    .push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let resume_after = match ReplayLedger::status(&core, &fingerprint, file)? {
            FileStatus::Done(earlier) => {
                // One line per file for the first few; the summary counts them all.
                if summary.already_replayed.len() < 3 {
                    bar.suspend(|| {
                        eprintln!(
                            "topsellers: {} was already replayed into {} ({earlier}); not counting it again (use a \
                             new data directory to rebuild from scratch)",
                            file.display(),
                            config.data_dir.display()
                        )
                    });
                }
                summary.already_replayed.push(file.display().to_string());
                done_bytes += fingerprint.size;
                bar.set_position(done_bytes);
                continue;
            }
            FileStatus::Partial(records) => {
                bar.suspend(|| {
                    eprintln!(
                        "topsellers: resuming {} after record {records}, where an interrupted replay left it",
                        file.display()
                    )
                });
                summary.resumed_files += 1;
                records
            }
            FileStatus::Grown { records, old_size } => {
                bar.suspend(|| {
                    eprintln!(
                        "topsellers: {} grew from {old_size} to {} bytes since it was replayed; reading only what \
                         follows its first {records} records",
                        file.display(),
                        fingerprint.size
                    )
                });
                summary.grown_files += 1;
                records
            }
            refused @ (FileStatus::Changed { .. } | FileStatus::GrownAfterCutLine { .. }) => {
                let msg = refused.refusal(file, &config.data_dir);
                bar.suspend(|| eprintln!("topsellers: {msg}"));
                summary.unreadable_files.push(msg);
                done_bytes += fingerprint.size;
                continue;
            }
            FileStatus::New => 0,
        };
        let reader = match FileReader::open(file, input, &config.limits, wall_clock_ms()) {
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
        let origin = format!("file:{}", file.display());
        let mut file_records = resume_after;
        // Bytes of the file the records admitted so far were read from (0 until the first batch of this run).
        let mut file_bytes = 0u64;
        // Parsing runs on its own thread, one batch ahead of the aggregator: the two halves take similar time, and
        // there are two cores.
        let (tx, rx) = std::sync::mpsc::sync_channel::<ReadBatch>(2);
        let read_end = std::thread::scope(|scope| -> Result<ReadEnd> {
            scope.spawn(move || read_batches(reader, batch_size, resume_after, tx));
            let mut end = ReadEnd::default();
            for msg in rx {
                match msg {
                    ReadBatch::Items {
                        items,
                        ordinals,
                        lines,
                        bytes_read,
                    } => {
                        file_records = ordinals.last().copied().unwrap_or(file_records);
                        file_bytes = bytes_read;
                        summary.records += items.len() as u64;
                        // Not logged: the file is the log. The checkpoint below stores how far it was read.
                        let outcome = core.admit_unlogged(Submission {
                            items,
                            source: "replay",
                            origin: origin.clone(),
                            locations: Locations::Lines(lines),
                        })?;
                        account(&mut summary, &outcome);
                        bar.set_position(done_bytes + bytes_read);
                        if core.checkpoint_due() {
                            let mut ledger = std::mem::take(&mut pending_ledger);
                            ledger.extend(ReplayLedger::partial_entries(
                                &fingerprint,
                                file,
                                file_records,
                                file_bytes,
                            )?);
                            core.checkpoint_with_meta(&results, &as_pairs(&ledger))?;
                        }
                        if stop.load(Ordering::SeqCst) {
                            // Dropping the receiver stops the reader; the final checkpoint below records how
                            // far this file got, so running the same command again continues from there.
                            summary.interrupted = true;
                            break;
                        }
                    }
                    ReadBatch::End(e) => end = e,
                }
            }
            Ok(end)
        })?;
        if summary.interrupted {
            pending_ledger.extend(ReplayLedger::partial_entries(
                &fingerprint,
                file,
                file_records,
                file_bytes,
            )?);
            break;
        }
        if let Some(e) = read_end.error {
            bar.suspend(|| {
                eprintln!(
                    "topsellers: reading {} failed part-way: {e}",
                    file.display()
                )
            });
            summary
                .unreadable_files
                .push(format!("{}: {e}", file.display()));
            pending_ledger.extend(ReplayLedger::partial_entries(
                &fingerprint,
                file,
                file_records,
                file_bytes,
            )?);
        } else {
            pending_ledger.extend(ReplayLedger::done_entries(
                &fingerprint,
                file,
                file_records,
            )?);
        }
        done_bytes += read_end.total_bytes;
        summary.redactions.merge(&read_end.redactions);
        bar.set_position(done_bytes);
    }
    core.publish_snapshot(&results, true);
    core.checkpoint_with_meta(&results, &as_pairs(&pending_ledger))?;
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

enum ReadBatch {
    Items {
        items: Vec<Parsed>,
        /// Position of each item among the file's records (what a resumed replay skips by).
        ordinals: Vec<u64>,
        /// Line where each event started (0 for other items), for dead letters.
        lines: Vec<u64>,
        bytes_read: u64,
    },
    End(ReadEnd),
}

#[derive(Default)]
struct ReadEnd {
    error: Option<topsellers_ingest::IngestError>,
    total_bytes: u64,
    redactions: Redactions,
}

/// The reading half of a replay: parse the file into batches and hand them over, skipping the first
/// `resume_after` records (already counted by an interrupted run whose checkpoint says so).
fn read_batches(
    mut reader: FileReader,
    batch_size: usize,
    resume_after: u64,
    tx: std::sync::mpsc::SyncSender<ReadBatch>,
) {
    let mut ordinal = 0u64;
    loop {
        let mut items: Vec<Parsed> = Vec::with_capacity(batch_size);
        let mut ordinals: Vec<u64> = Vec::with_capacity(batch_size);
        let mut lines: Vec<u64> = Vec::with_capacity(batch_size);
        while let Some(item) = reader.next() {
            ordinal += 1;
            if ordinal <= resume_after {
                continue;
            }
            ordinals.push(ordinal);
            lines.push(if matches!(item, Parsed::Event(_)) {
                reader.last_event_line()
            } else {
                0
            });
            items.push(item);
            if items.len() == batch_size {
                break;
            }
        }
        if items.is_empty() {
            break;
        }
        let bytes_read = reader.bytes_read();
        if tx
            .send(ReadBatch::Items {
                items,
                ordinals,
                lines,
                bytes_read,
            })
            .is_err()
        {
            return; // the aggregating side stopped on an error; it reports it
        }
    }
    let total_bytes = reader.total_bytes().unwrap_or_else(|| reader.bytes_read());
    let _ = tx.send(ReadBatch::End(ReadEnd {
        error: reader.take_error(),
        total_bytes,
        redactions: reader.redactions(),
    }));
}

/// A flag raised by SIGINT or SIGTERM, so a replay stops between two batches with a checkpoint instead of dying
/// mid-way (which would be safe too, but would redo the work since the last checkpoint).
pub fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = std::thread::Builder::new()
        .name("replay-signals".into())
        .spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(crate::serve::shutdown_signal());
                flag.store(true, Ordering::SeqCst);
                eprintln!("topsellers: stopping after the current batch");
            }
        });
    stop
}

fn as_pairs(entries: &[(String, String)]) -> Vec<(&str, &str)> {
    entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
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
