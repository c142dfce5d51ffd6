//! Which files a data directory has already replayed, so that running the same replay twice does not count the
//! same purchases twice.
//!
//! A file is known by a fingerprint of its size and its first and last MiB: cheap for a 500 MB file, and a
//! complete purchase file that changed anywhere near its ends is a different file. Files that keep growing are
//! the agent's job (it remembers positions); `replay` is for complete files.

use crate::node::{fmt_ms, wall_clock_ms, NodeCore};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const EDGE_BYTES: u64 = 1 << 20;
const DONE_PREFIX: &str = "replayed/";
const PARTIAL_PREFIX: &str = "replaying/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFingerprint {
    pub size: u64,
    pub hash: u128,
}

impl FileFingerprint {
    pub fn of(path: &Path) -> Result<FileFingerprint> {
        let mut file =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata()?.len();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&size.to_le_bytes());
        let mut buf = vec![0u8; EDGE_BYTES.min(size) as usize];
        file.read_exact(&mut buf)?;
        hasher.update(&buf);
        if size > EDGE_BYTES {
            let tail = EDGE_BYTES.min(size - EDGE_BYTES);
            file.seek(SeekFrom::End(-(tail as i64)))?;
            buf.resize(tail as usize, 0);
            file.read_exact(&mut buf)?;
            hasher.update(&buf);
        }
        Ok(FileFingerprint {
            size,
            hash: hasher.digest128(),
        })
    }

    fn key(&self, prefix: &str) -> String {
        format!("{prefix}{:032x}-{}", self.hash, self.size)
    }
}

/// What a data directory knows of one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    New,
    /// An interrupted replay's last checkpoint holds the file's first N records.
    Partial(u64),
    /// Fully replayed; the note says when and how much.
    Done(String),
}

/// The replay ledger lives in the store's metadata and is only ever written together with a checkpoint, so it
/// always describes exactly the state that is durable.
pub struct ReplayLedger;

impl ReplayLedger {
    pub fn status(core: &NodeCore, fp: &FileFingerprint) -> Result<FileStatus> {
        if let Some(note) = core.get_meta(&fp.key(DONE_PREFIX))? {
            return Ok(FileStatus::Done(note));
        }
        match core.get_meta(&fp.key(PARTIAL_PREFIX))? {
            Some(n) => Ok(FileStatus::Partial(n.parse().with_context(|| {
                format!("the replay ledger entry {n:?} is not a record count; the data directory is damaged")
            })?)),
            None => Ok(FileStatus::New),
        }
    }

    pub fn partial_entry(fp: &FileFingerprint, records: u64) -> (String, String) {
        (fp.key(PARTIAL_PREFIX), records.to_string())
    }

    pub fn done_entry(fp: &FileFingerprint, path: &Path, records: u64) -> (String, String) {
        let note = format!(
            "{records} records from {} on {}",
            path.display(),
            fmt_ms(wall_clock_ms())
        );
        (fp.key(DONE_PREFIX), note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        std::fs::write(&a, "x,y\n1,2\n").unwrap();
        std::fs::write(&b, "x,y\n1,2\n").unwrap();
        std::fs::write(&c, "x,y\n1,3\n").unwrap();
        assert_eq!(
            FileFingerprint::of(&a).unwrap(),
            FileFingerprint::of(&b).unwrap()
        );
        assert_ne!(
            FileFingerprint::of(&a).unwrap(),
            FileFingerprint::of(&c).unwrap()
        );
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&a, &big).unwrap();
        let mut changed = big.clone();
        *changed.last_mut().unwrap() ^= 1;
        std::fs::write(&b, &changed).unwrap();
        assert_ne!(
            FileFingerprint::of(&a).unwrap(),
            FileFingerprint::of(&b).unwrap()
        );
    }
}
