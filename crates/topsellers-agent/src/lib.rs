//! The purchase-side agent: the one process that sees raw purchase records. It tails purchase logs, keeps
//! only the event fields of DESIGN.md (personal data in kept free text redacted and counted, everything else
//! dropped unread) and delivers the scrubbed events to an embedded node or to Kafka without losing any.
//!
//! - **Intake** ([`tail`]): files by glob, known by the fingerprint of their first line, so rotation by rename
//!   or by copy-truncate, restarts and new files all keep their place.
//! - **Pushed intakes** ([`intake`]: `POST /v1/purchases`; [`log4j2`]: log4j2's SocketAppender and HttpAppender):
//!   each record is scrubbed as it arrives and the accepted events are fsynced to a bounded spool before they are
//!   acknowledged; the spool is tailed like a file. A full spool pushes back (`503`, an unread socket).
//! - **Parsing** ([`LineParser`]): a JSON object (after a log layout's prefix, if any) or `key=value` pairs of
//!   a log4j pattern-layout line, through a field mapping. The raw line is a [`RawLine`]: no `Serialize`, a
//!   `Debug` without content.
//! - **Delivery** ([`Downstream`]): a batch's file positions are saved only after the downstream acknowledged
//!   it; event ids are `a<fingerprint>-<offset>` (unless the line carries its own), so a batch sent again after
//!   a crash is deduplicated downstream. While the downstream is down, tailing pauses: the files are the buffer,
//!   and nothing is dropped.
//!
//! ```no_run
//! use topsellers_agent::{Agent, AgentConfig, NodeHttp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: AgentConfig = toml_like_config();
//! let node = NodeHttp::new("http://127.0.0.1:8080/v1/purchases", Some("token".into()), 30_000, 2)?;
//! let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
//! let mut agent = Agent::new(&config, &Default::default(), "/var/lib/topsellers/agent".as_ref(), Box::new(node))?;
//! agent.run(&stop)?;
//! # Ok(()) }
//! # fn toml_like_config() -> AgentConfig { AgentConfig::default() }
//! ```

mod config;
mod customer_key;
mod http_server;
pub mod intake;
pub mod log4j2;
mod parse;
mod raw;
mod sink;
mod spool;
mod state;
pub mod tail;

pub use config::{AgentConfig, DownstreamConfig, FileSource, HttpIntakeConfig, LineFormat};
pub use customer_key::{CustomerKey, CustomerKeyConfig, CustomerKeyer};
pub use parse::LineParser;
pub use raw::RawLine;
pub use sink::{
    encode_canonical, encode_canonical_keyed, AgentEvent, DeliveryError, Downstream, HttpTarget,
    NodeHttp,
};
pub use state::{DeadLetters, Positions};

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tail::{fingerprint, read_lines, Glob, Line};
use topsellers_ingest::{Limits, Parsed, PiiKind, Redactions};
use topsellers_model::TimestampMs;

/// What went wrong in a way the agent cannot work around (its own state directory).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid [agent] config: {0}")]
    Config(String),
    #[error("the agent's state directory {dir}: {detail}; check that it exists, is writable and is not full")]
    State { dir: PathBuf, detail: String },
}

/// Counts since start, logged every few seconds and at exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    pub lines: u64,
    pub delivered: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub batches: u64,
    pub retries: u64,
    pub redactions: Redactions,
}

struct Source {
    glob: Glob,
    parser: LineParser,
    /// The spool of the HTTP intake: segments are deleted once acknowledged (all but the newest).
    spool: bool,
}

/// The agent's main loop; see the crate docs.
pub struct Agent {
    sources: Vec<Source>,
    positions: Positions,
    dead_letters: DeadLetters,
    downstream: Box<dyn Downstream>,
    state_dir: PathBuf,
    batch_max_events: usize,
    max_line_bytes: usize,
    poll: Duration,
    retry_max: Duration,
    cut_line_timeout: Duration,
    stats: AgentStats,
}

fn wall_clock_ms() -> TimestampMs {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimestampMs)
}

impl Agent {
    pub fn new(
        config: &AgentConfig,
        limits: &Limits,
        state_dir: &Path,
        downstream: Box<dyn Downstream>,
    ) -> Result<Agent, AgentError> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(AgentError::Config(problems.join("; ")));
        }
        let keyer = match &config.customer_key {
            Some(c) => Some((
                c.field.clone(),
                CustomerKeyer::from_config(c).map_err(AgentError::Config)?,
            )),
            None => None,
        };
        let mut sources = Vec::new();
        for (i, f) in config.files.iter().enumerate() {
            let glob = Glob::parse(&f.path).map_err(AgentError::Config)?;
            let mut parser = LineParser::new(f, limits, wall_clock_ms())
                .map_err(|e| AgentError::Config(format!("agent.files[{i}]: {e}")))?;
            if let Some((field, keyer)) = &keyer {
                parser = parser.with_customer_key(field, keyer.clone());
            }
            sources.push(Source {
                glob,
                parser,
                spool: false,
            });
        }
        // Each intake's spool is a source of its own: its newest segment is the one being written.
        let spools = [
            (config.http.is_some(), intake::SPOOL_PREFIX, "agent.http"),
            (
                config.log4j2.is_some(),
                log4j2::SPOOL_PREFIX,
                "agent.log4j2",
            ),
        ];
        for (_, prefix, key) in spools.into_iter().filter(|(on, ..)| *on) {
            let spool = FileSource {
                path: spool::spool_glob(state_dir, prefix),
                format: LineFormat::Json,
                fields: topsellers_ingest::FieldMapping::canonical(),
                time_format: "rfc3339".into(),
                time_zone: "UTC".into(),
                currency: None,
            };
            let glob = Glob::parse(&spool.path).map_err(AgentError::Config)?;
            let mut parser = LineParser::new(&spool, limits, wall_clock_ms())
                .map_err(|e| AgentError::Config(format!("{key}: {e}")))?;
            if keyer.is_some() {
                // The intake hashed the customer id before spooling; the key is carried on as it is.
                parser = parser.with_spooled_customer_key();
            }
            sources.push(Source {
                glob,
                parser,
                spool: true,
            });
        }
        let state_err = |e: std::io::Error| AgentError::State {
            dir: state_dir.to_path_buf(),
            detail: e.to_string(),
        };
        let positions = Positions::open(state_dir).map_err(state_err)?;
        Ok(Agent {
            sources,
            positions,
            dead_letters: DeadLetters::new(state_dir),
            downstream,
            state_dir: state_dir.to_path_buf(),
            batch_max_events: config.batch_max_events,
            max_line_bytes: config.max_line_bytes,
            poll: Duration::from_millis(config.poll_interval_ms),
            retry_max: Duration::from_millis(config.retry_max_ms),
            cut_line_timeout: Duration::from_millis(config.cut_line_timeout_ms),
            stats: AgentStats::default(),
        })
    }

    pub fn stats(&self) -> AgentStats {
        let mut s = self.stats;
        for src in &self.sources {
            s.redactions.merge(&src.parser.redactions());
        }
        s
    }

    fn state_err(&self, e: std::io::Error) -> AgentError {
        AgentError::State {
            dir: self.state_dir.clone(),
            detail: e.to_string(),
        }
    }

    /// Runs until `stop` is set. Returns only on stop or when the state directory fails.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<AgentStats, AgentError> {
        tracing::info!(target: "topsellers", downstream = %self.downstream.describe(), files = self.sources.len(), "agent started");
        let mut last_report = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let progressed = self.scan(stop)?;
            if last_report.elapsed() >= Duration::from_secs(10) {
                self.report();
                last_report = Instant::now();
            }
            if !progressed {
                if let Err(e) = self.downstream.idle() {
                    tracing::warn!(target: "topsellers", "downstream idle notice failed, repeating later: {e}");
                }
                std::thread::sleep(self.poll);
            }
        }
        self.report();
        Ok(self.stats())
    }

    fn report(&self) {
        let s = self.stats();
        tracing::info!(
            target: "topsellers",
            lines = s.lines,
            delivered = s.delivered,
            rejected = s.rejected,
            skipped = s.skipped,
            retries = s.retries,
            redacted_email = s.redactions.get(PiiKind::Email),
            redacted_card = s.redactions.get(PiiKind::Card),
            redacted_phone = s.redactions.get(PiiKind::Phone),
            redacted_ip = s.redactions.get(PiiKind::Ip),
            "agent totals"
        );
    }

    /// One pass over every file: reads and delivers what is new. True when anything was read.
    pub fn scan(&mut self, stop: &AtomicBool) -> Result<bool, AgentError> {
        let mut progressed = false;
        let mut seen = HashSet::new();
        for i in 0..self.sources.len() {
            let mut paths = self.sources[i].glob.expand();
            if self.sources[i].spool {
                paths.sort(); // by name: creation order
            }
            let newest = paths.last().cloned();
            for path in paths {
                if stop.load(Ordering::Relaxed) {
                    return Ok(progressed);
                }
                let Ok(mut file) = File::open(&path) else {
                    continue; // rotated away between listing and opening
                };
                let Ok(Some(fp)) = fingerprint(&mut file) else {
                    continue;
                };
                // During copy-truncate the copy and the original share a fingerprint: read one of them.
                if !seen.insert(fp) {
                    continue;
                }
                progressed |= self.drain(i, &path, &mut file, fp, stop)?;
                if Some(&path) != newest.as_ref() && !stop.load(Ordering::Relaxed) {
                    progressed |= self.skip_cut_line(&path, &mut file, fp)?;
                }
                if self.sources[i].spool
                    && Some(&path) != newest.as_ref()
                    && file
                        .metadata()
                        .is_ok_and(|m| m.len() == self.positions.offset(fp))
                {
                    // Every line of this closed segment is acknowledged downstream.
                    std::fs::remove_file(&path).map_err(|e| self.state_err(e))?;
                    seen.remove(&fp);
                }
            }
        }
        if self.positions.retain(&seen) {
            self.positions.save().map_err(|e| self.state_err(e))?;
        }
        Ok(progressed)
    }

    /// The last line of a rotated file that has had no newline for `agent.cut_line_timeout_ms`, the file
    /// unchanged, was cut at rotation (the writer moved on to the new file mid-line) and can never complete: it
    /// becomes a `malformed` dead letter, its bytes unread, and the position moves past it. Without this the file
    /// would wait for the newline forever. True when a line was skipped.
    fn skip_cut_line(&mut self, path: &Path, file: &mut File, fp: u64) -> Result<bool, AgentError> {
        let offset = self.positions.offset(fp);
        let Ok(meta) = file.metadata() else {
            return Ok(false);
        };
        let unchanged_for = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .unwrap_or_default();
        if meta.len() <= offset || unchanged_for < self.cut_line_timeout {
            return Ok(false);
        }
        // Only a last line without its newline is left (drain reads every complete one)? Checked by reading, since
        // drain may have stopped early; the bytes stream by and are not kept.
        let (complete, _) =
            read_lines(file, offset, 1, self.max_line_bytes).map_err(|e| AgentError::State {
                dir: path.to_path_buf(),
                detail: format!("reading failed: {e}"),
            })?;
        if !complete.is_empty() {
            return Ok(false);
        }
        let len = meta.len() - offset;
        let letter = topsellers_model::DeadLetter {
            source: format!("file:{}", path.display()),
            location: format!("byte {offset}"),
            field: None,
            reason: topsellers_model::RejectReason::Malformed,
            message: format!(
                "the file ends in {len} bytes without a newline and a newer file replaced it {} s ago: the line was cut at rotation and is skipped; rotate after complete lines (log4j2 and logrotate do), or raise agent.cut_line_timeout_ms",
                unchanged_for.as_secs()
            ),
            record: String::new(),
            at_ms: wall_clock_ms(),
        };
        self.stats.rejected += 1;
        self.dead_letters
            .write(&[letter])
            .map_err(|e| self.state_err(e))?;
        self.positions.set(fp, meta.len(), path);
        self.positions.save().map_err(|e| self.state_err(e))?;
        Ok(true)
    }

    /// Reads, parses and delivers batches of `file` until its end (or `stop`).
    fn drain(
        &mut self,
        source: usize,
        path: &Path,
        file: &mut File,
        fp: u64,
        stop: &AtomicBool,
    ) -> Result<bool, AgentError> {
        let mut offset = self.positions.offset(fp);
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < offset {
            // Same first line, shorter file: rewritten in place. Its lines get the ids of the old content.
            tracing::warn!(target: "topsellers", path = %path.display(), "the file is shorter than the position read; reading it again from the start");
            offset = 0;
        }
        let mut progressed = false;
        let spool = self.sources[source].spool;
        let parser = &mut self.sources[source].parser;
        parser.set_source(format!("file:{}", path.display()));
        loop {
            let (lines, end) = read_lines(file, offset, self.batch_max_events, self.max_line_bytes)
                .map_err(|e| AgentError::State {
                    dir: path.to_path_buf(),
                    detail: format!("reading failed: {e}"),
                })?;
            if lines.is_empty() {
                return Ok(progressed);
            }
            progressed = true;
            let parser = &mut self.sources[source].parser;
            parser.set_now(wall_clock_ms());
            let mut events: Vec<AgentEvent> = Vec::with_capacity(lines.len());
            let mut letters = Vec::new();
            for line in &lines {
                self.stats.lines += 1;
                match line {
                    Line::Oversized { offset, len } => {
                        letters.push(parser.oversized(*offset, *len, self.max_line_bytes))
                    }
                    Line::Text { offset, bytes } => {
                        if bytes.iter().all(u8::is_ascii_whitespace) || (spool && *offset == 0) {
                            self.stats.skipped += 1;
                            continue;
                        }
                        match parser.parse_keyed(&RawLine::new(bytes, *offset)) {
                            (Parsed::Event(mut event), customer_key) => {
                                if event.event_id.is_none() {
                                    event.event_id = Some(format!("a{fp:016x}-{offset}"));
                                }
                                events.push(AgentEvent {
                                    event,
                                    customer_key,
                                });
                            }
                            (Parsed::Skipped(_), _) => self.stats.skipped += 1,
                            (Parsed::Rejected(d), _) => letters.push(d),
                        }
                    }
                }
            }
            self.stats.rejected += letters.len() as u64;
            self.dead_letters
                .write(&letters)
                .map_err(|e| self.state_err(e))?;
            if !events.is_empty() && !self.deliver(&events, stop) {
                return Ok(progressed); // stopping: the position stays before this batch
            }
            self.stats.delivered += events.len() as u64;
            self.stats.batches += 1;
            offset = end;
            self.positions.set(fp, offset, path);
            self.positions.save().map_err(|e| self.state_err(e))?;
        }
    }

    /// Delivers one batch, retrying with back-off until it is acknowledged. False when stopped first.
    fn deliver(&mut self, events: &[AgentEvent], stop: &AtomicBool) -> bool {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.downstream.deliver(events) {
                Ok(()) => return true,
                Err(e) => {
                    self.stats.retries += 1;
                    match &e {
                        DeliveryError::Refused(m) => {
                            tracing::error!(target: "topsellers", "downstream refused a batch, retrying in {pause:?}: {m}")
                        }
                        DeliveryError::Unavailable(m) => {
                            tracing::warn!(target: "topsellers", "downstream unavailable, retrying in {pause:?}: {m}")
                        }
                    }
                }
            }
            let until = Instant::now() + pause;
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            pause = (pause * 2).min(self.retry_max);
        }
    }

    /// Where dead letters go.
    pub fn dead_letter_path(&self) -> &Path {
        self.dead_letters.path()
    }
}

/// What the tests of the pushed intakes share: an in-memory downstream, one agent pass over a state directory, and
/// the check that a pushed event's customer key is the one a tailed file gives.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use std::sync::{Arc, Mutex};

    pub const SECRET: &str = "a-test-secret-of-enough-bytes";
    /// The raw customer id: it must never be written or sent.
    pub const CUSTOMER_ID: &str = "C-PLANTED-4711";

    /// A purchase in the canonical shape, with its customer id under `customer.id`.
    pub fn purchase(item: &str) -> String {
        format!(
            r#"{{"item_id":"{item}","quantity":1,"unit_price":"2.50","time":"2026-01-01T00:00:00Z","customer":{{"id":"{CUSTOMER_ID}","name":"Jane"}}}}"#
        )
    }

    /// `[agent.customer_key]` with `field = "customer.id"` and the secret in a file under `dir`.
    pub fn customer_key(dir: &Path) -> CustomerKeyConfig {
        let file = dir.join("customer-key-secret");
        std::fs::write(&file, format!("{SECRET}\n")).unwrap();
        CustomerKeyConfig {
            field: "customer.id".into(),
            secret_file: Some(file),
            secret_env: None,
        }
    }

    /// The in-memory downstream: keeps every delivered event.
    struct Collect(Arc<Mutex<Vec<AgentEvent>>>);

    impl Downstream for Collect {
        fn deliver(&mut self, events: &[AgentEvent]) -> Result<(), DeliveryError> {
            self.0.lock().unwrap().extend_from_slice(events);
            Ok(())
        }

        fn describe(&self) -> String {
            "memory".into()
        }
    }

    /// Runs the agent over `state` until nothing is new and returns what it delivered: the pushed intakes' spools
    /// (as `config` enables them) and, when `config` has none, no files.
    pub fn deliver(config: &AgentConfig, state: &Path) -> Vec<AgentEvent> {
        let got = Arc::new(Mutex::new(Vec::new()));
        let downstream = Box::new(Collect(got.clone()));
        let mut agent = Agent::new(config, &Limits::default(), state, downstream).unwrap();
        let stop = AtomicBool::new(false);
        while agent.scan(&stop).unwrap() {}
        let events = got.lock().unwrap().clone();
        events
    }

    /// Every byte of every spool segment under `state` (none yet: empty).
    pub fn spool_text(state: &Path) -> String {
        let mut text = String::new();
        let Ok(segments) = std::fs::read_dir(spool::spool_dir(state)) else {
            return text;
        };
        for entry in segments {
            text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        text
    }

    /// The key the agent gives [`purchase`]`(item)` when it tails it from a file, with the same config.
    fn key_from_a_tailed_file(config: &AgentConfig, dir: &Path) -> Option<CustomerKey> {
        let file = dir.join("tailed.jsonl");
        std::fs::write(&file, purchase("tailed") + "\n").unwrap();
        let config = AgentConfig {
            files: vec![FileSource {
                path: file.display().to_string(),
                format: LineFormat::Json,
                fields: topsellers_ingest::FieldMapping::canonical(),
                time_format: "rfc3339".into(),
                time_zone: "UTC".into(),
                currency: None,
            }],
            http: None,
            log4j2: None,
            ..config.clone()
        };
        let events = deliver(&config, &dir.join("tailed-state"));
        assert_eq!(events.len(), 1);
        events[0].customer_key.clone()
    }

    /// After an intake spooled events whose customer id is [`CUSTOMER_ID`] (their item ids start with `keyed`)
    /// and others without one (`anonymous`): the raw id is neither in the spool nor in what is delivered; with
    /// `[agent.customer_key]` every `keyed` event carries the key a tailed file gives the same id (hashed once, not
    /// again from the spool) and `anonymous` ones none; without it, no event and no spool line has a key. Returns
    /// the delivered events.
    pub fn assert_keys_delivered(
        config: &AgentConfig,
        state: &Path,
        dir: &Path,
    ) -> Vec<AgentEvent> {
        let spooled = spool_text(state);
        assert!(!spooled.contains(CUSTOMER_ID), "{spooled}");
        let events = deliver(config, state);
        assert!(events.iter().any(|e| e.event.item_id.starts_with("keyed")));
        let shown = format!("{events:?}");
        assert!(!shown.contains(CUSTOMER_ID), "{shown}");
        let mut sent = Vec::new();
        for e in &events {
            encode_canonical_keyed(&e.event, e.customer_key.as_ref(), 2, &mut sent);
        }
        assert!(!String::from_utf8_lossy(&sent).contains(CUSTOMER_ID));
        match &config.customer_key {
            None => {
                assert!(!spooled.contains("customer_key"), "{spooled}");
                assert!(events.iter().all(|e| e.customer_key.is_none()), "{shown}");
            }
            Some(c) => {
                let key = key_from_a_tailed_file(config, dir).expect("the file gives a key");
                assert_eq!(
                    Some(&key),
                    CustomerKeyer::from_config(c)
                        .unwrap()
                        .key(CUSTOMER_ID)
                        .as_ref()
                );
                assert!(
                    spooled.contains(&format!("\"customer_key\":\"{}\"", key.as_str())),
                    "{spooled}"
                );
                for e in &events {
                    let id = &e.event.item_id;
                    if id.starts_with("keyed") {
                        assert_eq!(e.customer_key.as_ref(), Some(&key), "{shown}");
                    } else if id.starts_with("anonymous") {
                        assert_eq!(e.customer_key, None, "{shown}");
                    }
                }
            }
        }
        events
    }
}
