//! The spool: scrubbed events that an intake (`POST /v1/purchases`, the log4j2 appenders) accepted, kept as
//! canonical JSON lines in segment files under `<state_dir>/spool`, each append fsynced before the intake
//! acknowledges it, so an acknowledged event survives kill -9.
//!
//! Each intake writes its own segments (`<prefix>-<millis>-<seq>.jsonl`); the agent's main loop tails them like logs
//! (one source per prefix, so "the newest segment", which is never deleted, is the one its writer appends to) and
//! deletes the older ones once every line in them was acknowledged downstream. Only scrubbed events are ever
//! written here.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where spool segments live, under the state directory.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

/// The glob of one intake's segments, which the main loop tails.
pub fn spool_glob(state_dir: &Path, prefix: &str) -> String {
    format!("{}/{prefix}-*.jsonl", spool_dir(state_dir).display())
}

/// A segment is closed and a new one begun past this size (or an eighth of the bound, when smaller), so
/// acknowledged data is deleted soon and a full spool means undelivered events, not delivered ones kept.
const SEGMENT_BYTES: u64 = 8 << 20;

/// One intake's segments: appends, and whether the bound is reached.
pub struct Spool {
    dir: PathBuf,
    prefix: &'static str,
    max_bytes: u64,
    segment_bytes: u64,
    current: Option<(File, u64)>,
    sequence: u64,
}

impl Spool {
    /// `prefix` names the intake's segments (letters only); `max_bytes` bounds them together.
    pub fn new(state_dir: &Path, prefix: &'static str, max_bytes: u64) -> Spool {
        debug_assert!(prefix.bytes().all(|b| b.is_ascii_alphanumeric()));
        Spool {
            dir: spool_dir(state_dir),
            prefix,
            max_bytes,
            segment_bytes: SEGMENT_BYTES.min(max_bytes / 8).max(1),
            current: None,
            sequence: 0,
        }
    }

    /// The bytes of this intake's segments on disk: undelivered events (and at most one segment of delivered ones).
    pub fn total_bytes(&self) -> u64 {
        let own = format!("{}-", self.prefix);
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&own)))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The bound is reached: the intake pushes back (503, or stops reading its socket) until the main loop has
    /// delivered and deleted segments.
    pub fn is_full(&self) -> bool {
        self.total_bytes() >= self.max_bytes
    }

    /// Appends complete lines and fsyncs them: when this returns `Ok`, they survive a crash.
    pub fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
        if self
            .current
            .as_ref()
            .is_none_or(|(_, len)| *len >= self.segment_bytes)
        {
            std::fs::create_dir_all(&self.dir)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            self.sequence += 1;
            // Names sort in creation order: the main loop keeps the newest and deletes older, acknowledged ones.
            let path = self.dir.join(format!(
                "{}-{now:015}-{:06}.jsonl",
                self.prefix, self.sequence
            ));
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            // A first line of its own gives every segment its own fingerprint, whatever the events; the main
            // loop skips it.
            let header = format!(
                "{{\"spool_segment\":\"{}\"}}\n",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            file.write_all(header.as_bytes())?;
            File::open(&self.dir)?.sync_all()?;
            self.current = Some((file, header.len() as u64));
        }
        let (file, len) = self.current.as_mut().expect("opened above");
        file.write_all(lines)?;
        file.sync_data()?;
        *len += lines.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_roll_and_count_per_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Spool::new(dir.path(), "http", 64 << 10);
        let mut b = Spool::new(dir.path(), "log4j2", 64 << 10);
        let line = format!("{}\n", "x".repeat(1000));
        for _ in 0..20 {
            a.append(line.as_bytes()).unwrap();
        }
        b.append(line.as_bytes()).unwrap();
        let segments = |p: &str| {
            std::fs::read_dir(spool_dir(dir.path()))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_str()
                        .unwrap()
                        .starts_with(p)
                })
                .count()
        };
        // Segments of 8 KiB (an eighth of the bound): 20 KB of lines make three.
        assert_eq!((segments("http-"), segments("log4j2-")), (3, 1));
        assert!(a.total_bytes() > 20_000 && b.total_bytes() < 2000);
        assert!(!a.is_full());
        for _ in 0..50 {
            a.append(line.as_bytes()).unwrap();
        }
        assert!(a.is_full() && !b.is_full());
    }
}
