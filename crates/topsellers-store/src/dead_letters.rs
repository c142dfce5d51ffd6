//! [`DeadLetterFile`]: rejected records as NDJSON, so an operator can `tail -f` and `jq` them.
//!
//! Plain lines in a file rather than a table: dead letters are for people, are written rarely, and must
//! stay readable when the database is the thing that broke. The file is rotated at a size limit
//! (`dead-letters.ndjson` -> `dead-letters.1.ndjson` -> ... ), keeping a fixed number of old files, so
//! a flood of bad input cannot fill the disk.

use crate::embedded::sync_dir;
use crate::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use topsellers_model::DeadLetter;

/// Rotate when the current file would grow past this.
pub const DEFAULT_ROTATE_BYTES: u64 = 64 * 1024 * 1024;
/// Rotated files kept beside the current one.
pub const DEFAULT_KEEP_ROTATED: usize = 3;

const STEM: &str = "dead-letters";

/// An append-only NDJSON file of dead letters under the data directory.
#[derive(Debug)]
pub struct DeadLetterFile {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
    /// A crash can leave a torn last line; the next write starts on a fresh line so it stays parseable.
    needs_newline: bool,
    rotate_bytes: u64,
    keep_rotated: usize,
    written: u64,
}

impl DeadLetterFile {
    /// Opens (creating if needed) `<dir>/dead-letters.ndjson` with the default rotation: 64 MiB, 3 kept.
    pub fn open(dir: &Path) -> Result<DeadLetterFile, StoreError> {
        Self::with_rotation(dir, DEFAULT_ROTATE_BYTES, DEFAULT_KEEP_ROTATED)
    }

    /// Like [`DeadLetterFile::open`] with an explicit size limit and number of rotated files kept
    /// (`keep_rotated = 0` drops the old file at rotation).
    pub fn with_rotation(
        dir: &Path,
        rotate_bytes: u64,
        keep_rotated: usize,
    ) -> Result<DeadLetterFile, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("create the data directory", dir, e))?;
        let path = dir.join(format!("{STEM}.ndjson"));
        let (file, len, needs_newline) = open_for_append(&path)?;
        Ok(DeadLetterFile {
            dir: dir.to_path_buf(),
            path,
            file,
            len,
            needs_newline,
            rotate_bytes: rotate_bytes.max(1),
            keep_rotated,
            written: 0,
        })
    }

    /// The current file, `<dir>/dead-letters.ndjson`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the letters, one JSON object per line, and fsyncs before returning.
    pub fn write(&mut self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        self.append(letters, true)
    }

    /// Appends the letters without waiting for the disk; [`DeadLetterFile::sync`] makes them durable. For
    /// writers whose input can be read again (a replay resumes from its last checkpoint and syncs there), where
    /// an fsync per batch would only slow the run down.
    pub fn write_deferred(&mut self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        self.append(letters, false)
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.file
            .sync_data()
            .map_err(|e| StoreError::io("sync dead letters to", &self.path, e))
    }

    fn append(&mut self, letters: &[DeadLetter], sync: bool) -> Result<(), StoreError> {
        if letters.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(256 * letters.len());
        for letter in letters {
            serde_json::to_writer(&mut buf, letter).map_err(|e| StoreError::Encode {
                what: "a dead letter",
                detail: e.to_string(),
            })?;
            buf.push(b'\n');
        }
        if self.len > 0 && self.len + buf.len() as u64 > self.rotate_bytes {
            self.rotate()?;
        }
        if self.needs_newline {
            buf.insert(0, b'\n');
        }
        self.file
            .write_all(&buf)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) })
            .map_err(|e| StoreError::io("write dead letters to", &self.path, e))?;
        self.needs_newline = false;
        self.len += buf.len() as u64;
        self.written += letters.len() as u64;
        Ok(())
    }

    /// Dead letters written through this handle.
    pub fn count(&self) -> u64 {
        self.written
    }

    fn rotated_path(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{STEM}.{n}.ndjson"))
    }

    /// Shifts `.1` -> `.2` ... (dropping the oldest), moves the current file to `.1`, starts a new one.
    fn rotate(&mut self) -> Result<(), StoreError> {
        let oldest = self.rotated_path(self.keep_rotated.max(1));
        remove_if_exists(&oldest)?;
        for n in (1..self.keep_rotated).rev() {
            rename_if_exists(&self.rotated_path(n), &self.rotated_path(n + 1))?;
        }
        if self.keep_rotated == 0 {
            remove_if_exists(&self.path)?;
        } else {
            rename_if_exists(&self.path, &self.rotated_path(1))?;
        }
        let (file, len, needs_newline) = open_for_append(&self.path)?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.len = len;
        self.needs_newline = needs_newline;
        Ok(())
    }
}

/// Opens `path` for appending; returns it with its length and whether it ends in a torn line.
fn open_for_append(path: &Path) -> Result<(File, u64, bool), StoreError> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| StoreError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| StoreError::io("read the size of", path, e))?
        .len();
    let mut needs_newline = false;
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| StoreError::io("read", path, e))?;
        needs_newline = last[0] != b'\n';
    }
    Ok((file, len, needs_newline))
}

fn remove_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::io("remove", path, e))
        }
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<(), StoreError> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::io("rotate", from, e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topsellers_model::RejectReason;

    fn letter(i: usize) -> DeadLetter {
        DeadLetter {
            source: "file:/in.csv".into(),
            location: format!("line {i}"),
            field: Some("quantity".into()),
            reason: RejectReason::InvalidField,
            message: "quantity \"x\" is not an integer; write a whole number".into(),
            record: String::new(),
            at_ms: 1_700_000_000_000,
        }
    }

    fn read_lines(path: &Path) -> Vec<DeadLetter> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writes_one_parseable_line_per_letter_and_appends_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = DeadLetterFile::open(dir.path()).unwrap();
        f.write(&[letter(1), letter(2)]).unwrap();
        f.write(&[]).unwrap();
        assert_eq!(f.count(), 2);
        drop(f);
        let mut f = DeadLetterFile::open(dir.path()).unwrap();
        f.write(&[letter(3)]).unwrap();
        assert_eq!(f.count(), 1);
        assert_eq!(f.path(), dir.path().join("dead-letters.ndjson"));
        assert_eq!(read_lines(f.path()), vec![letter(1), letter(2), letter(3)]);
    }

    #[test]
    fn a_torn_last_line_does_not_swallow_the_next_letter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead-letters.ndjson");
        std::fs::write(&path, b"{\"source\":\"http\",\"loc").unwrap();
        let mut f = DeadLetterFile::open(dir.path()).unwrap();
        f.write(&[letter(7)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let last = text.lines().last().unwrap();
        assert_eq!(serde_json::from_str::<DeadLetter>(last).unwrap(), letter(7));
    }

    #[test]
    fn rotates_at_the_limit_and_keeps_only_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let one_line = serde_json::to_string(&letter(0)).unwrap().len() as u64 + 1;
        // Room for two letters per file.
        let mut f = DeadLetterFile::with_rotation(dir.path(), one_line * 2 + 2, 3).unwrap();
        for i in 0..12 {
            f.write(&[letter(i)]).unwrap();
        }
        assert_eq!(f.count(), 12);
        let current = read_lines(f.path());
        assert_eq!(current.len(), 2);
        assert_eq!(current[1], letter(11));
        assert_eq!(
            read_lines(&dir.path().join("dead-letters.1.ndjson"))[0],
            letter(8)
        );
        assert_eq!(
            read_lines(&dir.path().join("dead-letters.3.ndjson"))[0],
            letter(4)
        );
        assert!(!dir.path().join("dead-letters.4.ndjson").exists());
    }
}
