//! Which files a data directory has already replayed, so that running the same replay twice does not count the
//! same purchases twice.
//!
//! A file is known by a fingerprint of its size and its first and last MiB: cheap for a 500 MB file. A finished file
//! is also remembered by its path, with its size, a hash of its whole content and its record count, so that when
//! the same path shows up again with other content the replay can tell a file that only grew at its end (read only
//! the new records) from one that was edited (refused: reading it again would count its purchases twice). Files
//! that keep growing are better followed by the agent (it remembers positions).

use crate::node::{fmt_ms, wall_clock_ms, NodeCore};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const EDGE_BYTES: u64 = 1 << 20;
const DONE_PREFIX: &str = "replayed/";
const PARTIAL_PREFIX: &str = "replaying/";
const PATH_PREFIX: &str = "replayed-path/";

/// What the ledger keeps of a finished file under its path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PathEntry {
    size: u64,
    /// xxh3-128 of the whole content, hex.
    content_hash: String,
    records: u64,
    /// Whether the file ended with a line break. When it did not, its last record may have been cut mid-way by a
    /// writer still appending: a longer version can then not be continued safely.
    #[serde(default = "yes")]
    ends_with_newline: bool,
}

fn yes() -> bool {
    true
}

fn ends_with_newline(path: &Path, size: u64) -> Result<bool> {
    if size == 0 {
        return Ok(true);
    }
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    file.seek(SeekFrom::Start(size - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// xxh3-128 of the first `len` bytes of a file.
fn content_hash(path: &Path, len: u64) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..want])
            .with_context(|| format!("cannot read {}", path.display()))?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

fn path_key(path: &Path) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("{PATH_PREFIX}{}", canonical.display())
}

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
    /// Replayed before under this path, and since then only grown at its end: its first N records are counted.
    Grown {
        records: u64,
        old_size: u64,
    },
    /// Replayed before under this path, and changed since other than by growing: reading it again would count
    /// purchases twice.
    Changed {
        records: u64,
        old_size: u64,
    },
    /// Grew since it was replayed, but its old version ended without a line break: its last record may have been
    /// read cut short, so neither skipping nor re-reading that record is known to be right.
    GrownAfterCutLine {
        records: u64,
        old_size: u64,
    },
}

impl FileStatus {
    /// Why a file in this state is not read, with the fix; only for the refused states.
    pub fn refusal(&self, file: &Path, data_dir: &Path) -> String {
        let (file, data_dir) = (file.display(), data_dir.display());
        match self {
            FileStatus::GrownAfterCutLine { records, old_size } => format!(
                "{file} grew since it was replayed into {data_dir} ({records} records, {old_size} bytes), but back \
                 then it ended without a line break, so its last record may have been read cut short; continuing \
                 could miss or double count that record. Replay complete files (ending with a line break), or \
                 replay into a new data directory to rebuild from scratch"
            ),
            FileStatus::Changed { records, old_size } => format!(
                "{file} was replayed into {data_dir} before ({records} records, {old_size} bytes) and has changed \
                 since, not only grown at its end; reading it again would count its purchases twice. Restore the \
                 original file, or replay into a new data directory to rebuild from scratch"
            ),
            other => format!("{file} is not refused ({other:?})"),
        }
    }
}

/// The replay ledger lives in the store's metadata and is only ever written together with a checkpoint, so it
/// always describes exactly the state that is durable.
pub struct ReplayLedger;

impl ReplayLedger {
    pub fn status(core: &NodeCore, fp: &FileFingerprint, path: &Path) -> Result<FileStatus> {
        if let Some(note) = core.get_meta(&fp.key(DONE_PREFIX))? {
            return Ok(FileStatus::Done(note));
        }
        if let Some(n) = core.get_meta(&fp.key(PARTIAL_PREFIX))? {
            return Ok(FileStatus::Partial(n.parse().with_context(|| {
                format!("the replay ledger entry {n:?} is not a record count; the data directory is damaged")
            })?));
        }
        let Some(entry) = core.get_meta(&path_key(path))? else {
            return Ok(FileStatus::New);
        };
        let old: PathEntry = serde_json::from_str(&entry).with_context(|| {
            format!("the replay ledger entry for {} is damaged", path.display())
        })?;
        let grown = fp.size > old.size && content_hash(path, old.size)? == old.content_hash;
        Ok(if grown && !old.ends_with_newline {
            FileStatus::GrownAfterCutLine {
                records: old.records,
                old_size: old.size,
            }
        } else if grown {
            FileStatus::Grown {
                records: old.records,
                old_size: old.size,
            }
        } else {
            FileStatus::Changed {
                records: old.records,
                old_size: old.size,
            }
        })
    }

    /// The entries that say how far an unfinished file was read: under its fingerprint (the same file, run again,
    /// resumes there) and, once something was read, under its path with a hash of the bytes read so far (a longer
    /// version of the file, written on meanwhile, also resumes there instead of being read twice).
    pub fn partial_entries(
        fp: &FileFingerprint,
        path: &Path,
        records: u64,
        bytes_read: u64,
    ) -> Result<Vec<(String, String)>> {
        let mut entries = vec![(fp.key(PARTIAL_PREFIX), records.to_string())];
        if bytes_read > 0 {
            let entry = PathEntry {
                size: bytes_read,
                content_hash: content_hash(path, bytes_read)?,
                records,
                // The records read so far were each followed by more of the file, so none was cut short.
                ends_with_newline: true,
            };
            entries.push((path_key(path), serde_json::to_string(&entry)?));
        }
        Ok(entries)
    }

    /// The entries that mark a file finished: under its fingerprint, and under its path (with a hash of the whole
    /// content, so a later, longer version of the file can be recognised).
    pub fn done_entries(
        fp: &FileFingerprint,
        path: &Path,
        records: u64,
    ) -> Result<[(String, String); 2]> {
        let note = format!(
            "{records} records from {} on {}",
            path.display(),
            fmt_ms(wall_clock_ms())
        );
        let entry = PathEntry {
            size: fp.size,
            content_hash: content_hash(path, fp.size)?,
            records,
            ends_with_newline: ends_with_newline(path, fp.size)?,
        };
        Ok([
            (fp.key(DONE_PREFIX), note),
            (path_key(path), serde_json::to_string(&entry)?),
        ])
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
