//! `topsellers replay --to kafka`: read purchase files and publish the scrubbed events to the purchases topic.
//!
//! Records without an event id get a stable one (a hash of the file's fingerprint and the record's position),
//! so publishing the same file again cannot count anything twice: the aggregators drop the repeats as
//! duplicates (or as late, once they are older than the lateness allowance).

use crate::replay::expand_inputs;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use topsellers_ingest::{FileReader, InputConfig, Parsed, Redactions};
use topsellers_kafka::Publisher;
use topsellers_store::DeadLetterFile;

use crate::config::Config;
use crate::node::wall_clock_ms;

#[derive(Debug, Default)]
pub struct PublishSummary {
    pub files: usize,
    pub records: u64,
    pub published: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub rejected: u64,
    pub unreadable_files: Vec<String>,
    pub redactions: Redactions,
    pub elapsed: Duration,
    pub dead_letter_path: Option<PathBuf>,
    pub topic: String,
    pub partitions: u32,
}

impl PublishSummary {
    pub fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        outln!(
            "published to Kafka topic {} ({} partitions) in {:.2} s: {} files, {} records ({:.0} records/s)",
            self.topic,
            self.partitions,
            secs,
            self.files,
            self.records,
            self.records as f64 / secs
        );
        outln!(
            "  published (acknowledged by all in-sync replicas) {:>10}",
            self.published
        );
        for (reason, n) in &self.skipped {
            outln!("  skipped: {reason:<10} {n:>12}");
        }
        if self.rejected > 0 {
            outln!(
                "  rejected            {:>12}  (dead letters with file, line, field and reason: {})",
                self.rejected,
                self.dead_letter_path
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string())
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
        for f in &self.unreadable_files {
            outln!("  NOT READ: {f}");
        }
    }
}

pub fn run(config: &Config, inputs: &[PathBuf]) -> Result<PublishSummary> {
    let default_input = InputConfig::default();
    let input = config.input.as_ref().unwrap_or(&default_input);
    let files = expand_inputs(inputs)?;
    let started = Instant::now();
    let mut publisher = Publisher::connect(&config.kafka, config.limits.price_decimals)
        .context("cannot publish to Kafka")?;
    let mut summary = PublishSummary {
        files: files.len(),
        topic: config.kafka.topic.clone(),
        partitions: publisher.partitions(),
        ..PublishSummary::default()
    };
    let mut dead_letters: Option<DeadLetterFile> = None;
    for file in &files {
        let id_prefix = match head_hash(file) {
            Ok(h) => format!("r{h:016x}"),
            Err(e) => {
                summary
                    .unreadable_files
                    .push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let mut reader = match FileReader::open(file, input, &config.limits, wall_clock_ms()) {
            Ok(r) => r,
            Err(e) => {
                summary
                    .unreadable_files
                    .push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let mut ordinal = 0u64;
        for item in reader.by_ref() {
            ordinal += 1;
            summary.records += 1;
            match item {
                Parsed::Event(mut event) => {
                    if event.event_id.as_deref().is_none_or(str::is_empty) {
                        event.event_id = Some(format!("{id_prefix}:{ordinal}"));
                    }
                    publisher.publish(&event)?;
                    summary.published += 1;
                }
                Parsed::Skipped(reason) => {
                    *summary.skipped.entry(reason.as_str()).or_default() += 1
                }
                Parsed::Rejected(letter) => {
                    summary.rejected += 1;
                    if dead_letters.is_none() {
                        std::fs::create_dir_all(&config.data_dir).with_context(|| {
                            format!("cannot create {}", config.data_dir.display())
                        })?;
                        dead_letters = Some(DeadLetterFile::open(&config.data_dir)?);
                    }
                    if let Some(d) = dead_letters.as_mut() {
                        d.write(&[letter])?;
                    }
                }
            }
        }
        if let Some(e) = reader.take_error() {
            summary
                .unreadable_files
                .push(format!("{}: reading failed part-way: {e}", file.display()));
        }
        summary.redactions.merge(&reader.redactions());
    }
    let stats = publisher
        .finish()
        .context("not every event reached Kafka; run the same command again (repeats are dropped by event id)")?;
    summary.published = stats.events;
    summary.dead_letter_path = dead_letters.map(|d| d.path().to_path_buf());
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A hash of the file's first 64 KiB: the same for the file and for the file after more lines were appended
/// to it, so the ids of its first records stay the same when it is published again after growing.
fn head_hash(path: &std::path::Path) -> Result<u64> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(xxhash_rust::xxh3::xxh3_64(&head))
}
