//! One process per data directory: an exclusive `flock(2)` on `<dir>/LOCK`.
//!
//! `flock` locks belong to the open file description, so a second `open` in the same process conflicts
//! too (POSIX `fcntl` locks would not), and the kernel drops the lock when the holder dies, even by
//! `kill -9`, so a crashed node never leaves a stale lock behind. The file holds the holder's pid only to
//! make the error message useful; the lock itself is the truth.

use crate::StoreError;
use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub(crate) const LOCK_FILE: &str = "LOCK";

/// Held for the life of the store; dropping it closes the file and so releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path: PathBuf = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io("open the lock file", &path, e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(errno) if errno == rustix::io::Errno::WOULDBLOCK => {
                let mut text = String::new();
                // Best effort: the holder may be between truncate and write.
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::InUse {
                    dir: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(errno) => {
                return Err(StoreError::io(
                    "lock",
                    &path,
                    std::io::Error::from_raw_os_error(errno.raw_os_error()),
                ))
            }
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())
        };
        write_pid(&mut file).map_err(|e| StoreError::io("write the lock file", &path, e))?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_with_pid_until_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        match DirLock::acquire(dir.path()) {
            Err(StoreError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
