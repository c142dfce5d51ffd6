//! One error type for the store, classified once so every message names the path and the fix.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds `<dir>/LOCK`.
    #[error(
        "data directory {} is in use by another topsellers process ({}); stop that process or use another data directory",
        dir.display(),
        pid.map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"))
    )]
    InUse { dir: PathBuf, pid: Option<u32> },

    #[error(
        "database {} has schema version {found}, newer than version {supported} that this topsellers understands; \
         upgrade topsellers or use another data directory",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "database {} has schema version {found}, older than version {supported}; open it once with \
         `topsellers serve` (which upgrades it) before reading it read-only",
        path.display()
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("no topsellers database at {}; check the data directory, or run a node on it first", path.display())]
    Missing { path: PathBuf },

    #[error("the store {} was opened read-only; open it with EmbeddedStore::open to write", path.display())]
    ReadOnly { path: PathBuf },

    #[error("database {} is corrupt ({detail}); move {} away and replay the inputs", path.display(), path.display())]
    Corrupt { path: PathBuf, detail: String },

    #[error(
        "log entry {seq} in {} is corrupt ({detail}); move {} away and replay the inputs",
        path.display(),
        path.display()
    )]
    CorruptEntry {
        path: PathBuf,
        seq: u64,
        detail: String,
    },

    #[error("no space left on the device holding {}; free disk space and retry", path.display())]
    DiskFull { path: PathBuf },

    #[error(
        "permission denied on {} ({detail}); give the user running topsellers read and write access to it",
        path.display()
    )]
    PermissionDenied { path: PathBuf, detail: String },

    #[error(
        "checkpoint covering log seq {covers_seq} would move backwards from the stored checkpoint at seq {stored} \
         in {}; the log behind the stored one is gone, so checkpoint from the state recovered from this store",
        path.display()
    )]
    CheckpointBehind {
        path: PathBuf,
        covers_seq: u64,
        stored: u64,
    },

    #[error(
        "checkpoint claims to cover log seq {covers_seq} but the log in {} ends at seq {last_seq}; \
         checkpoint only what was appended",
        path.display()
    )]
    CheckpointAhead {
        path: PathBuf,
        covers_seq: u64,
        last_seq: u64,
    },

    #[error(
        "database {} cannot use write-ahead logging (journal mode stays {mode}); put the data directory on a \
         local, writable file system",
        path.display()
    )]
    NoWriteAheadLog { path: PathBuf, mode: String },

    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("cannot encode {what}: {detail}; this is a bug in topsellers, please report it")]
    Encode { what: &'static str, detail: String },
}

impl StoreError {
    /// Classifies an I/O error on `path` so disk-full and permission problems say what to do.
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> StoreError {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull => StoreError::DiskFull { path },
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::PermissionDenied {
                    path,
                    detail: source.to_string(),
                }
            }
            _ => StoreError::Io {
                action,
                path,
                source,
            },
        }
    }

    /// Classifies a SQLite error on the database at `path`.
    pub(crate) fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        let path = path.to_path_buf();
        let code = match &source {
            rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                path,
                detail: source.to_string(),
            },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::PermissionDenied | ErrorCode::ReadOnly | ErrorCode::CannotOpen) => {
                StoreError::PermissionDenied {
                    path,
                    detail: source.to_string(),
                }
            }
            _ => StoreError::Sqlite { path, source },
        }
    }

    /// True for errors that mean the database file itself is damaged.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. } | StoreError::CorruptEntry { .. }
        )
    }
}

/// `map_err` helper: `.map_err(sql_err(&path))`.
pub(crate) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::sqlite(path, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_use_message_names_dir_and_pid() {
        let e = StoreError::InUse {
            dir: "/var/lib/ts".into(),
            pid: Some(42),
        };
        assert!(e.to_string().starts_with(
            "data directory /var/lib/ts is in use by another topsellers process (pid 42)"
        ));
    }

    #[test]
    fn io_errors_are_classified() {
        let p = Path::new("/x");
        let full = StoreError::io("write", p, io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(full, StoreError::DiskFull { .. }));
        assert!(full.to_string().contains("free disk space"));
        let denied = StoreError::io("open", p, io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(denied, StoreError::PermissionDenied { .. }));
        let other = StoreError::io("open", p, io::Error::other("boom"));
        assert_eq!(other.to_string(), "cannot open /x: boom");
    }
}
