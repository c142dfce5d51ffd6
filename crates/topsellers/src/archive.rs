//! `topsellers archive`: purchase files through the same parsing and scrubbing as `replay`, into the Parquet archive
//! of `[archive]` (see the `topsellers_archive` crate for the layout and the atomic publish).
//!
//! Exactly once across runs: each input file is archived under its own file-name prefix (a hash of its first
//! 64 KiB) and, once all its files are published, marked done in `<dir>/_topsellers/done-<hash>` (written under a
//! temporary name and renamed). A later run skips files marked done; a file whose run died part-way has its
//! published parts removed and is archived again. Events without an event id get a stable one (the hash and the
//! record's position, as `replay --to kafka` gives them), so a reader can check uniqueness.

use crate::config::Config;
use crate::node::wall_clock_ms;
use crate::replay::expand_inputs;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use topsellers_archive::{ArchiveSettings, ArchiveStats, ArchiveWriter};
use topsellers_ingest::{FileReader, InputConfig, Parsed, Redactions};

/// Test hook: abort the process (like `kill -9`) after this many events of a run.
const ABORT_AFTER_EVENTS_ENV: &str = "TOPSELLERS_TEST_ARCHIVE_ABORT_AFTER_EVENTS";

#[derive(Debug, Default)]
struct Summary {
    files: usize,
    skipped_done: usize,
    records: u64,
    skipped: u64,
    rejected: u64,
    written: ArchiveStats,
    redactions: Redactions,
    unreadable: Vec<String>,
}

pub fn run(config: &Config, inputs: &[PathBuf]) -> Result<()> {
    let defaults = ArchiveSettings::default();
    let settings = config.archive.as_ref().unwrap_or(&defaults);
    if let Some(url) = &settings.url {
        bail!(
            "topsellers archive <files> writes to a local archive.dir, not to archive.url ({url}); leave url out \
             for this command (serve, demo and archive --from kafka write to the URL)"
        );
    }
    let problems = settings.validate();
    if !problems.is_empty() {
        bail!(
            "the [archive] section cannot be used:\n  - archive.{}",
            problems.join("\n  - archive.")
        );
    }
    let default_input = InputConfig::default();
    let input = config.input.as_ref().unwrap_or(&default_input);
    let files = expand_inputs(inputs)?;
    let marks = settings.dir.join("_topsellers");
    std::fs::create_dir_all(&marks)
        .with_context(|| format!("cannot create {} (archive.dir)", marks.display()))?;
    let abort_after: Option<u64> = std::env::var(ABORT_AFTER_EVENTS_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let started = Instant::now();
    let mut s = Summary {
        files: files.len(),
        ..Summary::default()
    };
    let mut events_this_run = 0u64;
    for file in &files {
        let hash = match head_hash(file) {
            Ok(h) => format!("f{h:016x}"),
            Err(e) => {
                s.unreadable.push(format!("{}: {e:#}", file.display()));
                continue;
            }
        };
        let done = marks.join(format!("done-{hash}"));
        if done.exists() {
            s.skipped_done += 1;
            continue;
        }
        let mut reader = match FileReader::open(file, input, &config.limits, wall_clock_ms()) {
            Ok(r) => r,
            Err(e) => {
                s.unreadable.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        remove_parts(&settings.dir, &hash)?;
        let mut writer = ArchiveWriter::open(settings, &hash)?;
        let mut ordinal = 0u64;
        for item in reader.by_ref() {
            ordinal += 1;
            s.records += 1;
            match item {
                Parsed::Event(mut event) => {
                    if event.event_id.as_deref().is_none_or(str::is_empty) {
                        event.event_id = Some(format!("{hash}:{ordinal}"));
                    }
                    writer.write(&event, wall_clock_ms())?;
                    events_this_run += 1;
                    if abort_after.is_some_and(|n| events_this_run >= n) {
                        std::process::abort();
                    }
                }
                Parsed::Skipped(_) => s.skipped += 1,
                Parsed::Rejected(_) => s.rejected += 1,
            }
        }
        if let Some(e) = reader.take_error() {
            // Publish nothing more for this file and do not mark it: the next run archives it again.
            s.unreadable
                .push(format!("{}: reading failed part-way: {e}", file.display()));
            continue;
        }
        s.redactions.merge(&reader.redactions());
        let stats = writer.finish()?;
        s.written.events += stats.events;
        s.written.files += stats.files;
        s.written.bytes += stats.bytes;
        s.written.removed_temp_files += stats.removed_temp_files;
        let temp = marks.join(format!(".done-{hash}.tmp"));
        std::fs::write(&temp, file.display().to_string())
            .and_then(|()| std::fs::rename(&temp, &done))
            .with_context(|| {
                format!(
                    "cannot mark {} archived in {}",
                    file.display(),
                    marks.display()
                )
            })?;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    outln!(
        "archived to {} in {secs:.2} s: {} files read ({} already archived), {} events in {} Parquet files ({} bytes, {:.0} events/s)",
        settings.dir.display(),
        s.files - s.skipped_done,
        s.skipped_done,
        s.written.events,
        s.written.files,
        s.written.bytes,
        s.written.events as f64 / secs
    );
    outln!(
        "  records {}, skipped {}, rejected {} (the replay's dead letters say why), personal data redacted {}",
        s.records,
        s.skipped,
        s.rejected,
        s.redactions.total()
    );
    for f in &s.unreadable {
        outln!("  NOT ARCHIVED (run again): {f}");
    }
    if !s.unreadable.is_empty() {
        bail!(
            "{} input file(s) could not be archived (listed above)",
            s.unreadable.len()
        );
    }
    Ok(())
}

/// Removes the published parts of an input whose earlier run died before marking it done.
fn remove_parts(dir: &Path, hash: &str) -> Result<()> {
    let prefix = format!("{hash}-");
    for dt in read_dirs(dir)? {
        for hour in read_dirs(&dt)? {
            for entry in std::fs::read_dir(&hour)
                .with_context(|| format!("cannot list {}", hour.display()))?
            {
                let path = entry?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                if name.starts_with(&prefix) && name.ends_with(".parquet") {
                    std::fs::remove_file(&path).with_context(|| {
                        format!("cannot remove the partial part {}", path.display())
                    })?;
                }
            }
        }
    }
    Ok(())
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if path.is_dir() && (name.starts_with("dt=") || name.starts_with("hour=")) {
            out.push(path);
        }
    }
    Ok(out)
}

/// A hash of the file's first 64 KiB (as `replay --to kafka` uses for event ids).
fn head_hash(path: &Path) -> Result<u64> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(xxhash_rust::xxh3::xxh3_64(&head))
}

/// `topsellers archive --from kafka`: the `[kafka]` topic into the archive until `stop` (see
/// `topsellers_kafka::archiver` for the exactly-once protocol).
pub fn run_from_kafka(
    config: &Config,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let defaults = ArchiveSettings::default();
    let settings = config.archive.as_ref().unwrap_or(&defaults);
    eprintln!(
        "topsellers: archiving topic {} at {} to {} as a member of group {} (until Ctrl-C)",
        config.kafka.topic,
        config.kafka.bootstrap_servers,
        settings
            .url
            .clone()
            .unwrap_or_else(|| settings.dir.display().to_string()),
        settings.kafka_group_id
    );
    let stats = std::sync::Arc::new(topsellers_kafka::archiver::ArchiverStats::default());
    let outcome = topsellers_kafka::archiver::run(
        &config.kafka,
        settings,
        &config.limits,
        stats.clone(),
        stop,
    );
    eprintln!(
        "topsellers: archive stopped: {} messages read, {} events in {} Parquet files ({} runs), {} not on their \
         item's partition (archived where the aggregators forward them), {} skipped, {} kafka errors",
        stats.messages.load(Relaxed),
        stats.events.load(Relaxed),
        stats.files.load(Relaxed),
        stats.runs.load(Relaxed),
        stats.not_home.load(Relaxed),
        stats.skipped.load(Relaxed),
        stats.kafka_errors.load(Relaxed)
    );
    outcome.context("the Kafka archive stopped")
}
