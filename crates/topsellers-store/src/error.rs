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

    // The partition store (`crate::partitions`). These name the store by its `describe()` text rather
    // than a path, because the same errors come from every backend (SQLite, Cassandra, Redis).
    #[error(
        "{store} holds the state of a topic with {stored} partitions, but this process sees {given}; a changed \
         partition count sends keys to other partitions, so the stored checkpoints no longer apply: use a new \
         namespace (topic or consumer group) and replay the topic, or run with the original topic"
    )]
    PartitionCountChanged {
        store: String,
        stored: u32,
        given: u32,
    },

    #[error(
        "{store} was written with the settings {stored:?}, but this process runs with {given:?}; run with the \
         stored settings, or use a new namespace (topic or consumer group) and replay the topic to apply the new ones"
    )]
    SettingsChanged {
        store: String,
        stored: String,
        given: String,
    },

    #[error(
        "{store} has no binding yet; call bind with the topic's partition count and the engine settings before \
         claiming partitions"
    )]
    NotBound { store: String },

    #[error(
        "partition {partition} does not exist in {store}, which is bound to a topic with {partitions} partitions \
         (0 to {}); check the topic the consumer reads",
        partitions.saturating_sub(1)
    )]
    PartitionOutOfRange {
        store: String,
        partition: u32,
        partitions: u32,
    },

    #[error(
        "partition {partition} of {store} is now at epoch {current}, this owner holds epoch {epoch}: another \
         process claimed it since (or it was never claimed); stop processing the partition, its current owner \
         carries on from the last checkpoint"
    )]
    Fenced {
        store: String,
        partition: u32,
        epoch: u64,
        current: u64,
    },

    #[error(
        "checkpoint of partition {partition} at offset {next_offset} would move back from the stored one at \
         offset {stored} in {store}; only checkpoint state resumed from the stored checkpoint (Claim::checkpoint)"
    )]
    PartitionCheckpointBehind {
        store: String,
        partition: u32,
        next_offset: i64,
        stored: i64,
    },

    #[error(
        "results of partition {partition} at offset {next_offset} version {version} would not move forward from \
         the stored results at offset {stored_offset} version {stored_version} in {store}; publish only after \
         catching up to the stored offset, with a version above the stored one (Claim::results says where they stand)"
    )]
    ResultsBehind {
        store: String,
        partition: u32,
        next_offset: i64,
        version: u64,
        stored_offset: i64,
        stored_version: u64,
    },

    #[error(
        "{store} stayed locked by another process (this one waits up to {waited_ms} ms); a process may be stopped \
         in the middle of a write (check `fuser {}`): let it continue or end it, then retry",
        path.display()
    )]
    Locked {
        store: String,
        path: PathBuf,
        waited_ms: u64,
    },

    #[error(
        "{store}: the stored {what} of partition {partition} is damaged or in an unknown format ({detail}); \
         run the topsellers version that wrote it, or start the namespace over and replay the topic"
    )]
    CorruptPartition {
        store: String,
        partition: u32,
        what: &'static str,
        detail: String,
    },
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
            StoreError::Corrupt { .. }
                | StoreError::CorruptEntry { .. }
                | StoreError::CorruptPartition { .. }
        )
    }

    /// True for [`StoreError::Fenced`]: the partition has a newer owner, so this one must stop
    /// processing it (retrying cannot help).
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Fenced { .. })
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
