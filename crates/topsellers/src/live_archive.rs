//! The embedded node's live archive: with an `[archive]` section, `serve` and `demo` run a thread that follows the
//! event log (the accepted, scrubbed events, in the order they were made durable) and publishes them as Parquet.
//!
//! Why follow the log rather than write from the node thread: the log already is the exactly-once record of what
//! was accepted (duplicates and late events never reach it), it survives kill -9, and a Parquet file can take
//! seconds to encode, which would stall every `POST /v1/purchases` waiting on the node thread.
//!
//! Exactly once: the archive keeps its position in the log in `_topsellers/<stream>.position` of the archive, where
//! `<stream>` is `log-<id>` with an id the data directory gets the first time (meta `archive_stream`). Runs of log
//! entries are published as files named after the stream and the run's first and last entry, with the run written
//! into the position file before its files and the position committed after them (see
//! `topsellers_archive::PositionFile`), so a crash in between republishes the same files. The node's checkpoints
//! keep every log entry the archive has not committed (a [`LogHold`]), so nothing is truncated before it is
//! archived; a stopped or failing archive makes the log grow instead (`archive_lag_entries` in /metrics).
//!
//! A new archive starts at the log's end: events accepted before `[archive]` was configured are not in it (use
//! `topsellers archive` on the purchase files for history). `replay` does not write the log (the files are its
//! log), so replayed files are archived with `topsellers archive`, not here.

use crate::node::wall_clock_ms;
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use topsellers_archive::{ArchiveSettings, ArchiveTarget, PositionFile, Segment};
use topsellers_model::LogRecord;
use topsellers_server::Metrics;
use topsellers_store::{EmbeddedStore, LogHold};

/// Meta key of the data directory's stream name in the archive.
const STREAM_KEY: &str = "archive_stream";
/// How often an idle follower looks for new log entries.
const POLL: Duration = Duration::from_millis(250);
/// Wait after a failure (disk full, archive unwritable) before trying again.
const RETRY: Duration = Duration::from_secs(2);
/// Log entries read per step: an entry is one group commit (up to `node.max_batch_records` events), and the read
/// transaction stays short so checkpoints can truncate the WAL.
const READ_ENTRIES: u64 = 16;
/// Test hook: abort the process (like kill -9) after this many runs were published but before the last one's
/// position is committed: the window where a careless design duplicates.
const ABORT_AFTER_PUBLISHES_ENV: &str = "TOPSELLERS_TEST_LIVE_ARCHIVE_ABORT_AFTER_PUBLISHES";

/// The hold that keeps unarchived log entries through checkpoints, when this data directory has an archive
/// position already (also for commands that do not archive, like `replay`, so they never truncate what the archive
/// still needs).
pub fn existing_hold(
    settings: &ArchiveSettings,
    store: &mut EmbeddedStore,
) -> Result<Option<LogHold>> {
    let Some(stream) = store.get_meta(STREAM_KEY)? else {
        return Ok(None);
    };
    let target = ArchiveTarget::open(settings)?;
    let Some(position) = PositionFile::read(&target, &stream)? else {
        return Ok(None);
    };
    let hold = LogHold::new(position_through(position));
    store.hold_log(hold.clone());
    Ok(Some(hold))
}

/// Everything up to here is archived (a run being published is not yet).
fn position_through(position: topsellers_archive::StreamPosition) -> u64 {
    match position.publishing {
        Some((first, _)) => first - 1,
        None => position.archived_through,
    }
}

/// Names this data directory's stream (once) and makes sure its position exists, starting at the log's current end.
/// Call before the node accepts anything, so no entry falls between the start and the follower.
pub fn bind(
    settings: &ArchiveSettings,
    store: &mut EmbeddedStore,
    hold: Option<LogHold>,
) -> Result<Binding> {
    let stream = match store.get_meta(STREAM_KEY)? {
        Some(s) => s,
        None => {
            let seed = format!(
                "{} {} {}",
                store.dir().display(),
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            );
            let stream = format!("log-{:016x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()));
            store.set_meta(STREAM_KEY, &stream)?;
            stream
        }
    };
    let target = Arc::new(ArchiveTarget::open(settings)?);
    let position = PositionFile::open_or_start(&target, &stream, store.last_seq()?)
        .with_context(|| format!("cannot start the live archive in {}", target.describe()))?;
    let through = position_through(position.current());
    let hold = match hold {
        Some(h) => {
            h.release_through(through);
            h
        }
        None => {
            let h = LogHold::new(through);
            store.hold_log(h.clone());
            h
        }
    };
    Ok(Binding {
        settings: settings.clone(),
        target,
        stream,
        position,
        hold,
    })
}

/// The archive's place in one data directory's log, ready to be followed.
pub struct Binding {
    settings: ArchiveSettings,
    target: Arc<ArchiveTarget>,
    stream: String,
    position: PositionFile,
    hold: LogHold,
}

impl Binding {
    /// The hold the node's checkpoints respect; the follower moves it forward.
    pub fn hold(&self) -> LogHold {
        self.hold.clone()
    }

    /// Starts the follower thread on the data directory's log (read through its own read-only connection).
    pub fn start(self, data_dir: &Path, metrics: Arc<Metrics>) -> Result<LiveArchive> {
        let log = EmbeddedStore::open_read_only(data_dir).with_context(|| {
            format!(
                "cannot open the event log in {} for the live archive",
                data_dir.display()
            )
        })?;
        if let Some(dir) = self.target.local_dir() {
            let removed = topsellers_archive::remove_temp_files_of(dir, &self.stream)?;
            if removed > 0 {
                tracing::info!(
                    removed,
                    "removed temporary Parquet files of an interrupted archive run"
                );
            }
        }
        eprintln!(
            "topsellers: archiving accepted events to {} (Parquet, dt=/hour=; stream {})",
            self.target.describe(),
            self.stream
        );
        let follower = Follower {
            segment: Segment::new(&self.stream),
            binding: self,
            log,
            metrics,
            abort_after_publishes: std::env::var(ABORT_AFTER_PUBLISHES_ENV)
                .ok()
                .and_then(|v| v.parse().ok()),
            publishes: 0,
            errors: 0,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let join = std::thread::Builder::new()
            .name("topsellers-archive".into())
            .spawn(move || follower.run(&stop_flag))
            .context("cannot start the archive thread")?;
        Ok(LiveArchive { stop, join })
    }
}

/// The running follower.
pub struct LiveArchive {
    stop: Arc<AtomicBool>,
    join: JoinHandle<()>,
}

impl LiveArchive {
    /// Archives what the log holds up to now and stops. Call after the node stopped, so that is everything.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.join.join();
    }
}

struct Follower {
    binding: Binding,
    log: EmbeddedStore,
    segment: Segment,
    metrics: Arc<Metrics>,
    abort_after_publishes: Option<u64>,
    publishes: u64,
    errors: i64,
}

impl Follower {
    fn run(mut self, stop: &AtomicBool) {
        loop {
            let stopping = stop.load(Ordering::Acquire);
            match self.step(stopping) {
                Ok(true) if stopping => return,
                Ok(true) => std::thread::sleep(POLL),
                Ok(false) => {}
                Err(e) => {
                    self.errors += 1;
                    self.metrics.set_gauge("archive_errors", self.errors);
                    tracing::error!(
                        error = format!("{e:#}"),
                        "live archive failed; retrying from its last committed position"
                    );
                    // Rebuild from the committed position: the log still holds everything after it.
                    self.segment = Segment::new(&self.binding.stream);
                    if stopping {
                        eprintln!("topsellers: the live archive stopped behind the log ({e:#}); the next start continues from {}", self.binding.position.path());
                        return;
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
    }

    /// Finishes an interrupted run, reads the next log entries and publishes the segment when due (or, when
    /// `draining`, once the log is read to its end). True when caught up with the log.
    fn step(&mut self, draining: bool) -> Result<bool> {
        if let Some((first, last)) = self.binding.position.current().publishing {
            self.republish(first, last)?;
        }
        let after = match self.segment.range() {
            Some((_, last)) => last,
            None => self.binding.position.current().archived_through,
        };
        let entries = self.read(after, READ_ENTRIES)?;
        let caught_up = (entries.len() as u64) < READ_ENTRIES;
        if let Some((first_seq, _)) = entries.first() {
            if self.segment.range().is_none() && *first_seq > after + 1 {
                tracing::warn!(
                    archived_through = after,
                    next_entry = first_seq,
                    "the event log was truncated past the archive position while the archive was not configured; \
                     those events are not in the archive (topsellers archive can add them from the purchase files)"
                );
            }
        }
        let now = wall_clock_ms();
        for (seq, records) in entries {
            add_entry(&mut self.segment, &self.binding.stream, seq, records, now)?;
            if self.segment.is_full(&self.binding.settings) {
                self.publish()?;
            }
        }
        if self.segment.is_due(&self.binding.settings, wall_clock_ms())
            || (draining && caught_up && self.segment.range().is_some())
        {
            self.publish()?;
        }
        let last_seq = self.log.last_seq()?;
        let through = self.binding.position.current().archived_through;
        self.metrics
            .set_gauge("archive_archived_through_seq", through as i64);
        self.metrics.set_gauge(
            "archive_lag_entries",
            last_seq.saturating_sub(through) as i64,
        );
        Ok(caught_up)
    }

    fn read(&self, after: u64, max_entries: u64) -> Result<Vec<(u64, Vec<LogRecord>)>> {
        let mut entries = Vec::new();
        self.log
            .read_after_limited(after, max_entries, &mut |seq, records| {
                entries.push((seq, records));
                Ok(())
            })
            .context("cannot read the event log for the live archive")?;
        Ok(entries)
    }

    /// Publishes the segment with the begin / publish / commit protocol and releases its log entries.
    fn publish(&mut self) -> Result<()> {
        let segment = std::mem::replace(&mut self.segment, Segment::new(&self.binding.stream));
        let Some((first, last)) = segment.range() else {
            return Ok(());
        };
        let position = &mut self.binding.position;
        if segment.rows() > 0 {
            position.begin(first, last)?;
            let stats = segment.publish(&self.binding.target)?;
            tracing::debug!(
                first,
                last,
                events = stats.events,
                files = stats.files,
                "archived"
            );
            self.publishes += 1;
            if self.abort_after_publishes == Some(self.publishes) {
                std::process::abort();
            }
        }
        // A run of ticks only has nothing to publish; its commit just moves past it.
        position.commit(last)?;
        self.binding.hold.release_through(last);
        Ok(())
    }

    /// Publishes exactly the run `[first, last]` a crash interrupted: the same events, so the same files.
    fn republish(&mut self, first: u64, last: u64) -> Result<()> {
        let mut segment = Segment::new(&self.binding.stream);
        let now = wall_clock_ms();
        for (seq, records) in self.read(first - 1, last - first + 1)? {
            if seq > last {
                break;
            }
            add_entry(&mut segment, &self.binding.stream, seq, records, now)?;
        }
        anyhow::ensure!(
            segment.range() == Some((first, last)),
            "the event log no longer holds entries {first} to {last}, which the archive was publishing when it \
             stopped; was the data directory replaced? Restore it, or delete {} to archive from the log's end on",
            self.binding.position.path()
        );
        tracing::info!(
            first,
            last,
            "republishing an archive run a crash interrupted"
        );
        self.segment = segment;
        self.publish_interrupted()
    }

    fn publish_interrupted(&mut self) -> Result<()> {
        let segment = std::mem::replace(&mut self.segment, Segment::new(&self.binding.stream));
        let (_, last) = segment.range().expect("checked by republish");
        segment.publish(&self.binding.target)?;
        self.binding.position.commit(last)?;
        self.binding.hold.release_through(last);
        Ok(())
    }
}

/// Adds one log entry's events to `segment` (ticks only extend its run).
fn add_entry(
    segment: &mut Segment,
    stream: &str,
    seq: u64,
    records: Vec<LogRecord>,
    now_ms: i64,
) -> Result<()> {
    segment.extend_to(seq, now_ms);
    for (index, record) in records.into_iter().enumerate() {
        if let LogRecord::Event(mut event) = record {
            if event.event_id.as_deref().is_none_or(str::is_empty) {
                // Derived from the entry, so republishing gives the same id and a reader can still check that
                // each event is there once.
                event.event_id = Some(format!("{stream}:{seq}:{index}"));
            }
            segment.push(seq, event, now_ms)?;
        }
    }
    Ok(())
}
