//! The embedded node: the one place that admits events, logs them durably, keeps the aggregator current,
//! publishes results and writes checkpoints.
//!
//! Order of work for a batch: the engine admits each event (accepted, duplicate or late), the accepted ones are
//! appended to the log in one transaction, and only then does the caller hear back. The engine is a pure function
//! of the log, so a restart rebuilds it from the last checkpoint plus the log behind it and lands in exactly the
//! state an uninterrupted run would have. If the append fails, the in-memory engine is ahead of the log; it is
//! rebuilt from the store before anything else happens, and the caller gets the error (no OK, nothing counted).

use crate::config::Config;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use topsellers_engine::{Admission, Engine, EngineConfig};
use topsellers_ingest::{Parsed, SkipReason};
use topsellers_model::{DeadLetter, LogRecord, Snapshot};
use topsellers_server::{Metrics, Results};
use topsellers_store::{DeadLetterFile, EmbeddedStore, LogHold};

/// Meta key under which the engine settings the data directory was built with are kept.
const ENGINE_SETTINGS_KEY: &str = "engine_settings";
/// Meta key of the settings that give stored revenue and event time their meaning.
const DATA_SETTINGS_KEY: &str = "data_settings";

/// What happened to one submitted batch.
#[derive(Debug, Default, Clone)]
pub struct BatchOutcome {
    pub accepted: u64,
    pub refunds: u64,
    pub duplicates: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub rejected: Vec<DeadLetter>,
}

impl BatchOutcome {
    pub fn add(&mut self, other: &BatchOutcome) {
        self.accepted += other.accepted;
        self.refunds += other.refunds;
        self.duplicates += other.duplicates;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
    }
}

/// Where the items of a submission came from, for dead letters the engine produces (late events).
#[derive(Debug, Clone)]
pub enum Locations {
    /// Item i started at `line lines[i]` of the input named by the submission's origin (0: unknown).
    Lines(Vec<u64>),
    /// Item i is `record i+1` of one request or generated batch; `context` names it (`request 7f3a`).
    Records { context: String },
}

impl Locations {
    fn describe(&self, index: usize) -> String {
        match self {
            Locations::Lines(lines) => match lines.get(index) {
                Some(&line) if line > 0 => format!("line {line}"),
                _ => format!("record {}", index + 1),
            },
            Locations::Records { context } if context.is_empty() => format!("record {}", index + 1),
            Locations::Records { context } => format!("record {} of {context}", index + 1),
        }
    }
}

/// One batch handed to the node: the parsed items and where they came from.
#[derive(Debug)]
pub struct Submission {
    pub items: Vec<Parsed>,
    /// Metric label (a fixed word: `replay`, `http`, `demo`).
    pub source: &'static str,
    /// The `source` of dead letters: `file:<path>`, `http`, `demo`.
    pub origin: String,
    pub locations: Locations,
}

impl Submission {
    pub fn new(items: Vec<Parsed>, source: &'static str) -> Submission {
        Submission {
            items,
            source,
            origin: source.to_string(),
            locations: Locations::Records {
                context: String::new(),
            },
        }
    }
}

pub fn skip_reason_label(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::Excluded => "excluded",
        SkipReason::NotASale => "not_a_sale",
        SkipReason::BlankLine => "blank_line",
    }
}

pub struct NodeCore {
    store: EmbeddedStore,
    engine: Engine,
    engine_config: EngineConfig,
    dead_letters: DeadLetterFile,
    metrics: Arc<Metrics>,
    currency: String,
    version: u64,
    last_checkpoint: Instant,
    records_since_checkpoint: u64,
    checkpoint_interval_secs: u64,
    checkpoint_every_records: u64,
    changed_since_snapshot: bool,
    /// Wall time of the oldest append not yet visible in a published snapshot: the start of the freshness lag.
    oldest_unpublished_append_ms: Option<i64>,
    /// Keeps the log entries the Parquet archive has not published through checkpoints.
    archive_hold: Option<LogHold>,
}

impl NodeCore {
    /// Opens the data directory and brings the aggregator up to date: last checkpoint, then the log behind it.
    pub fn open(config: &Config, metrics: Arc<Metrics>) -> Result<NodeCore> {
        let dir = &config.data_dir;
        let mut store = EmbeddedStore::open(dir)
            .with_context(|| format!("cannot open the data directory {}", dir.display()))?;
        bind_settings(
            &mut store,
            dir,
            ENGINE_SETTINGS_KEY,
            &engine_settings_fingerprint(&config.engine),
            "[engine]",
        )?;
        bind_settings(
            &mut store,
            dir,
            DATA_SETTINGS_KEY,
            &data_settings_fingerprint(config),
            "limits.currency, limits.price_decimals and node.idle_advance",
        )?;
        let archive_hold = match &config.archive {
            Some(settings) => crate::live_archive::existing_hold(settings, &mut store)?,
            None => None,
        };
        let started = Instant::now();
        let (engine, covers_seq, replayed) = recover_engine(&store, &config.engine)
            .with_context(|| format!("cannot recover the aggregator from {}", dir.display()))?;
        let version = store.load_results()?.map_or(0, |s| s.version);
        if covers_seq > 0 || replayed > 0 {
            tracing::info!(
                data_dir = %dir.display(),
                checkpoint_seq = covers_seq,
                replayed_records = replayed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "recovered aggregator state"
            );
        }
        let dead_letters = DeadLetterFile::open(dir)?;
        Ok(NodeCore {
            store,
            engine,
            engine_config: config.engine.clone(),
            dead_letters,
            metrics,
            currency: config.limits.currency.clone(),
            version,
            last_checkpoint: Instant::now(),
            records_since_checkpoint: replayed,
            checkpoint_interval_secs: config.node.checkpoint_interval_secs,
            checkpoint_every_records: config.node.checkpoint_every_records,
            changed_since_snapshot: true,
            oldest_unpublished_append_ms: None,
            archive_hold,
        })
    }

    /// Binds the `[archive]` to this data directory's log, when configured: from here on, checkpoints keep what the
    /// archive has not published. Call before accepting anything; start the returned binding once the node runs.
    pub fn bind_live_archive(
        &mut self,
        config: &Config,
    ) -> Result<Option<crate::live_archive::Binding>> {
        let Some(settings) = &config.archive else {
            return Ok(None);
        };
        let hold = self.archive_hold.take();
        let binding = crate::live_archive::bind(settings, &mut self.store, hold)?;
        self.archive_hold = Some(binding.hold());
        Ok(Some(binding))
    }

    pub fn dead_letter_path(&self) -> std::path::PathBuf {
        self.dead_letters.path().to_path_buf()
    }

    /// Admits, logs and accounts one batch of parsed records. Returns only once accepted events are durable.
    pub fn ingest(&mut self, submission: Submission, tick_ms: Option<i64>) -> Result<BatchOutcome> {
        let mut outcomes = self.ingest_groups(vec![submission], tick_ms)?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    /// Admits and accounts records that are NOT written to the log, because their input is itself durable and
    /// re-readable: `replay` reads files, and records in the checkpoint how far it got (see `replay.rs`). Their
    /// effect becomes durable with the next checkpoint; a crash before it loses nothing the input does not hold.
    pub fn admit_unlogged(&mut self, submission: Submission) -> Result<BatchOutcome> {
        let mut outcomes = self.admit_groups(vec![submission], None, false)?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    /// Like [`NodeCore::ingest`] for several submissions at once, written with one log append (group commit);
    /// each submission gets its own outcome.
    pub fn ingest_groups(
        &mut self,
        groups: Vec<Submission>,
        tick_ms: Option<i64>,
    ) -> Result<Vec<BatchOutcome>> {
        self.admit_groups(groups, tick_ms, true)
    }

    fn admit_groups(
        &mut self,
        groups: Vec<Submission>,
        tick_ms: Option<i64>,
        log: bool,
    ) -> Result<Vec<BatchOutcome>> {
        let now_ms = wall_clock_ms();
        let mut records = if log {
            Vec::with_capacity(groups.iter().map(|g| g.items.len()).sum::<usize>() + 1)
        } else {
            Vec::new()
        };
        let mut unlogged = 0u64;
        if let Some(now) = tick_ms {
            self.engine.tick(now);
            records.push(LogRecord::Tick { now_ms: now });
        }
        let mut outcomes = Vec::with_capacity(groups.len());
        for group in groups {
            let mut outcome = BatchOutcome::default();
            self.metrics
                .inc_received(group.source, group.items.len() as u64);
            // Events are admitted as one batch (the engine overlaps their memory accesses); skips and parse
            // rejections are accounted on the way.
            let mut events = Vec::with_capacity(group.items.len());
            let mut positions = Vec::with_capacity(group.items.len());
            for (index, item) in group.items.into_iter().enumerate() {
                match item {
                    Parsed::Event(ev) => {
                        events.push(ev);
                        positions.push(index);
                    }
                    Parsed::Skipped(reason) => {
                        *outcome
                            .skipped
                            .entry(skip_reason_label(&reason))
                            .or_default() += 1;
                    }
                    Parsed::Rejected(letter) => outcome.rejected.push(letter),
                }
            }
            let mut admissions = Vec::with_capacity(events.len());
            self.engine.admit_batch(&events, &mut admissions);
            debug_assert_eq!(admissions.len(), events.len());
            for ((ev, admission), index) in events.into_iter().zip(admissions).zip(positions) {
                match admission {
                    Admission::Accepted => {
                        outcome.accepted += 1;
                        if ev.is_refund() {
                            outcome.refunds += 1;
                        }
                        // Unlogged (replay) admissions only need counting: the file is their log.
                        if log {
                            records.push(LogRecord::Event(ev));
                        } else {
                            unlogged += 1;
                        }
                    }
                    Admission::Duplicate => outcome.duplicates += 1,
                    Admission::Late { watermark_ms } => {
                        outcome.rejected.push(topsellers_ingest::late_letter(
                            &ev,
                            watermark_ms,
                            group.origin.clone(),
                            group.locations.describe(index),
                            now_ms,
                        ));
                    }
                }
            }
            outcomes.push(outcome);
        }
        if !log {
            self.records_since_checkpoint += unlogged;
            self.changed_since_snapshot |= unlogged > 0;
        } else if !records.is_empty() {
            if let Err(e) = self.store.append(&records) {
                self.metrics.inc_log_append_errors(1);
                // The engine already counted events the log does not hold: rebuild it from what is durable.
                self.rebuild_engine_from_store()
                    .context("rebuilding the aggregator after a failed log append")?;
                return Err(e)
                    .context("cannot append to the event log; nothing of this batch was accepted");
            }
            self.metrics.inc_log_appends(1);
            self.records_since_checkpoint += records.len() as u64;
            self.changed_since_snapshot = true;
            self.oldest_unpublished_append_ms.get_or_insert(now_ms);
        }
        for outcome in &outcomes {
            if !outcome.rejected.is_empty() {
                // Dead letters are at-least-once: a crash between the log append and this write can only lose
                // the dead-letter copy of a record that was rejected anyway, never an accepted event.
                let written = if log {
                    self.dead_letters.write(&outcome.rejected)
                } else {
                    self.dead_letters.write_deferred(&outcome.rejected)
                };
                if let Err(e) = written {
                    tracing::error!(error = %e, path = %self.dead_letters.path().display(), "cannot write dead letters");
                }
                for l in &outcome.rejected {
                    self.metrics.inc_rejected(l.reason, 1);
                }
            }
            self.metrics.inc_accepted(outcome.accepted);
            self.metrics.inc_refunds_accepted(outcome.refunds);
            self.metrics.inc_duplicates(outcome.duplicates);
            for (reason, n) in &outcome.skipped {
                self.metrics.inc_skipped(reason, *n);
            }
        }
        Ok(outcomes)
    }

    fn rebuild_engine_from_store(&mut self) -> Result<()> {
        let (engine, _, _) = recover_engine(&self.store, &self.engine_config)?;
        self.engine = engine;
        self.changed_since_snapshot = true;
        Ok(())
    }

    /// Computes new results if anything changed (or always when `force`), and publishes them.
    pub fn publish_snapshot(&mut self, results: &Results, force: bool) -> Option<Snapshot> {
        if !self.changed_since_snapshot && !force {
            return None;
        }
        self.version += 1;
        let snap = self
            .engine
            .snapshot(self.version, wall_clock_ms(), &self.currency);
        self.changed_since_snapshot = false;
        let stats = self.engine.stats();
        for (name, value) in [
            ("engine_items", stats.items),
            ("engine_categories", stats.categories),
            ("engine_series", stats.series),
            ("engine_buckets", stats.buckets),
            ("engine_bucket_entries", stats.bucket_entries),
            ("engine_dedup_ids", stats.dedup_ids),
            ("engine_approx_state_bytes", stats.approx_state_bytes),
        ] {
            self.metrics.set_gauge(name, value as i64);
        }
        results.publish(snap.clone());
        if let Some(appended) = self.oldest_unpublished_append_ms.take() {
            self.metrics
                .set_gauge("last_event_to_visible_ms", wall_clock_ms() - appended);
        }
        Some(snap)
    }

    /// True when a checkpoint is due by time or by volume.
    pub fn checkpoint_due(&self) -> bool {
        self.records_since_checkpoint > 0
            && (self.records_since_checkpoint >= self.checkpoint_every_records
                || self.last_checkpoint.elapsed().as_secs() >= self.checkpoint_interval_secs)
    }

    /// Writes the aggregator state with the log position it covers, plus the results; truncates the log.
    pub fn checkpoint(&mut self, results: &Results) -> Result<()> {
        self.checkpoint_with_meta(results, &[])
    }

    /// [`NodeCore::checkpoint`] that also stores metadata atomically with the state it describes.
    pub fn checkpoint_with_meta(&mut self, results: &Results, meta: &[(&str, &str)]) -> Result<()> {
        let started = Instant::now();
        // Dead letters written without an fsync (replay) become durable no later than the state they go with.
        if let Err(e) = self.dead_letters.sync() {
            tracing::error!(error = %e, path = %self.dead_letters.path().display(), "cannot sync dead letters");
        }
        let covers_seq = self.store.last_seq()?;
        let state = self.engine.checkpoint();
        let snap = match results.current() {
            Some(s) if !self.changed_since_snapshot => (*s).clone(),
            _ => self
                .publish_snapshot(results, true)
                .expect("forced snapshot"),
        };
        if let Err(e) = self
            .store
            .save_checkpoint_with_meta(covers_seq, &state, &snap, meta)
        {
            self.metrics.inc_checkpoint_errors();
            return Err(e).context("cannot write a checkpoint");
        }
        self.metrics.inc_checkpoints();
        self.records_since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        tracing::debug!(
            covers_seq,
            state_bytes = state.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "checkpoint written"
        );
        Ok(())
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.store.get_meta(key)?)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The aggregator as the store holds it: the last checkpoint, then every log record behind it. Returns the engine,
/// the log position the checkpoint covered and how many records were replayed on top.
fn recover_engine(store: &EmbeddedStore, config: &EngineConfig) -> Result<(Engine, u64, u64)> {
    let (mut engine, covers_seq) = match store.load_checkpoint()? {
        Some(cp) => (
            Engine::restore(config.clone(), &cp.state).context("cannot restore the checkpoint")?,
            cp.covers_seq,
        ),
        None => (Engine::new(config.clone())?, 0),
    };
    let mut replayed = 0u64;
    store.read_after(covers_seq, &mut |_, records| {
        for r in &records {
            engine.apply(r);
        }
        replayed += records.len() as u64;
        Ok(())
    })?;
    Ok((engine, covers_seq, replayed))
}

/// A data directory is bound to the settings that give its contents their meaning; opening it with others would
/// silently relabel or corrupt what it holds (revenue read in another currency or precision; a wall-clock tick
/// that moves last year's data out of every sliding window and makes any later replay of it late).
fn bind_settings(
    store: &mut EmbeddedStore,
    dir: &std::path::Path,
    key: &str,
    settings: &str,
    what: &str,
) -> Result<()> {
    match store.get_meta(key)? {
        Some(stored) if stored != settings => anyhow::bail!(
            "the data directory {} was built with other settings ({stored}) than the config has ({settings}); \
             use the config it was built with (--config), or replay the inputs into a new data_dir to change \
             {what}",
            dir.display()
        ),
        Some(_) => Ok(()),
        None => Ok(store.set_meta(key, settings)?),
    }
}

fn data_settings_fingerprint(config: &Config) -> String {
    format!(
        "currency={} price_decimals={} idle_advance={}",
        config.limits.currency, config.limits.price_decimals, config.node.idle_advance
    )
}

/// The engine settings that change the meaning of a checkpoint; a data dir is bound to them.
fn engine_settings_fingerprint(c: &EngineConfig) -> String {
    format!(
        "bucket_secs={} windows={} top_k={}",
        c.bucket_secs,
        c.windows.join(","),
        c.top_k
    )
}

pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn fmt_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms} ms"), |t| t.to_string())
}
