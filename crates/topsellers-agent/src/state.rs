//! Durable file positions and the dead-letter file, in the agent's state directory.
//!
//! A position is saved only after the downstream acknowledged every event before it (and the dead letters before
//! it are synced), by writing a new file, syncing it, renaming it over the old one and syncing the directory: a
//! kill -9 at any moment leaves either the old or the new positions, never a torn file.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use topsellers_model::DeadLetter;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PositionsFile {
    version: u32,
    /// Fingerprint (16 hex digits) -> position.
    files: BTreeMap<String, Position>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Bytes read and acknowledged.
    pub offset: u64,
    /// Where the file was last seen, for people reading the state.
    pub path: String,
}

/// The positions of every file the agent knows.
pub struct Positions {
    path: PathBuf,
    state: PositionsFile,
}

impl Positions {
    pub fn open(state_dir: &Path) -> io::Result<Positions> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join("positions.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::other(format!(
                    "{} is not a positions file ({e}); restore it, or delete it to read every file from the start (downstream dedup drops what was sent before)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => PositionsFile {
                version: 1,
                ..Default::default()
            },
            Err(e) => return Err(e),
        };
        Ok(Positions { path, state })
    }

    pub fn offset(&self, fingerprint: u64) -> u64 {
        self.state
            .files
            .get(&format!("{fingerprint:016x}"))
            .map_or(0, |p| p.offset)
    }

    pub fn set(&mut self, fingerprint: u64, offset: u64, path: &Path) {
        self.state.files.insert(
            format!("{fingerprint:016x}"),
            Position {
                offset,
                path: path.display().to_string(),
            },
        );
    }

    /// Forgets files no longer found (rotated away and deleted).
    pub fn retain(&mut self, seen: &std::collections::HashSet<u64>) -> bool {
        let before = self.state.files.len();
        self.state
            .files
            .retain(|k, _| u64::from_str_radix(k, 16).is_ok_and(|f| seen.contains(&f)));
        before != self.state.files.len()
    }

    pub fn len(&self) -> usize {
        self.state.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.files.is_empty()
    }

    /// Writes the positions durably (temp file, fsync, rename, fsync of the directory).
    pub fn save(&self) -> io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&self.state).map_err(io::Error::other)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// `dead_letters.jsonl` in the state directory: one JSON dead letter per line, synced before the position past
/// the line is saved.
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
}

impl DeadLetters {
    pub fn new(state_dir: &Path) -> DeadLetters {
        DeadLetters {
            path: state_dir.join("dead_letters.jsonl"),
            file: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, letters: &[DeadLetter]) -> io::Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let file = self.file.as_mut().expect("opened above");
        let mut buf = Vec::new();
        for l in letters {
            serde_json::to_writer(&mut buf, l).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        file.write_all(&buf)?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Positions::open(dir.path()).unwrap();
        assert_eq!(p.offset(7), 0);
        p.set(7, 120, Path::new("/x.log"));
        p.save().unwrap();
        let p = Positions::open(dir.path()).unwrap();
        assert_eq!(p.offset(7), 120);
        std::fs::write(dir.path().join("positions.json"), "garbage").unwrap();
        let e = Positions::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("delete it"), "{e}");
    }
}
