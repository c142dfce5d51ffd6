//! [`EmbeddedStore`]: the accepted-event log, the checkpoint, the latest results and metadata in one
//! SQLite database, `<dir>/topsellers.db`.
//!
//! Durability: WAL with `synchronous = FULL`, so a commit is on disk (the WAL is fsynced) before
//! `append` returns, and each call is one transaction. Bounded size: `save_checkpoint` deletes the log
//! it covers, gives the freed pages back to the file system (`auto_vacuum = INCREMENTAL`) and truncates
//! the WAL, so the directory holds about one checkpoint plus the log written since.

use crate::dir_lock::DirLock;
use crate::error::sql_err;
use crate::{log_codec, schema, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use topsellers_model::{LogRecord, Snapshot, TimestampMs};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "topsellers.db";

/// The stored aggregator state and the log position it covers: replay entries with a larger seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub covers_seq: u64,
    pub state: Vec<u8>,
    /// Wall-clock time the checkpoint was written.
    pub saved_at_ms: TimestampMs,
}

/// Sizes of what the store holds, for metrics and for checking that the directory stays bounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Log entries (appended batches) not yet truncated behind a checkpoint.
    pub log_entries: u64,
    /// Records in those entries.
    pub log_records: u64,
    /// Encoded bytes of those entries.
    pub log_bytes: u64,
    /// Size of `topsellers.db`.
    pub db_file_bytes: u64,
    /// Size of `topsellers.db-wal` (0 when absent).
    pub wal_bytes: u64,
    /// Size of the stored checkpoint state (0 when none).
    pub checkpoint_bytes: u64,
    /// Log position the checkpoint covers (0 when none).
    pub checkpoint_seq: u64,
}

/// A reader of the log that checkpoints must not truncate past: entries with a seq above the value it holds are
/// kept, whatever a checkpoint covers. The live Parquet archive holds one at the last entry it has published, so
/// a checkpoint never deletes events it has not archived yet. Cheap to clone; the reader moves it forward.
#[derive(Clone, Debug, Default)]
pub struct LogHold(Arc<AtomicU64>);

impl LogHold {
    pub fn new(through_seq: u64) -> LogHold {
        LogHold(Arc::new(AtomicU64::new(through_seq)))
    }

    /// The reader is done with every entry up to and including `seq`.
    pub fn release_through(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn through(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// The embedded node's durable storage. One per data directory, enforced by a lock file.
#[derive(Debug)]
pub struct EmbeddedStore {
    // Declared before the lock so the connection closes (and finishes its own WAL checkpoint) before
    // another process can take the directory over.
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    /// `None` for a read-only handle, which shares the directory with the process that holds it.
    lock: Option<DirLock>,
    /// Log entries above this are kept by checkpoints (see [`LogHold`]).
    hold: Option<LogHold>,
}

impl EmbeddedStore {
    /// Creates the directory and `<dir>/topsellers.db` if needed, applies the schema migrations, and
    /// takes the directory lock: a second open while this store lives fails with
    /// [`StoreError::InUse`].
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("create the data directory", dir, e))?;
        let lock = DirLock::acquire(dir)?;
        let path = dir.join(DB_FILE);
        let created = !path.exists();
        let mut conn = Connection::open(&path).map_err(sql_err(&path))?;
        schema::configure(&conn, &path)?;
        schema::migrate(&mut conn, &path)?;
        if created {
            // The new file's directory entry must survive a crash too, or the first appends vanish with it.
            sync_dir(dir)?;
        }
        Ok(EmbeddedStore {
            conn,
            path,
            dir: dir.to_path_buf(),
            lock: Some(lock),
            hold: None,
        })
    }

    /// Opens an existing store for reading only, without the directory lock, so a command like
    /// `topsellers results` can look at a data directory while a node is running on it (WAL lets one
    /// writer and many readers share the file). The write methods return [`StoreError::ReadOnly`].
    pub fn open_read_only(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql_err(&path))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err(&path))?;
        if found > schema::SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        if found < schema::SCHEMA_VERSION {
            // Only a writer migrates; an old database read with today's queries would fail obscurely.
            return Err(StoreError::OlderSchema {
                path,
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        Ok(EmbeddedStore {
            conn,
            path,
            dir: dir.to_path_buf(),
            lock: None,
            hold: None,
        })
    }

    /// True for a handle from [`EmbeddedStore::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.lock.is_none()
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(StoreError::ReadOnly {
                path: self.path.clone(),
            }),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file, `<dir>/topsellers.db`.
    pub fn db_path(&self) -> &Path {
        &self.path
    }

    /// Appends one batch of records as one log entry; durable on return. Returns the entry's seq:
    /// strictly increasing, never reused even after truncation. An empty batch still makes an entry,
    /// so every successful call has its own seq.
    pub fn append(&mut self, records: &[LogRecord]) -> Result<u64, StoreError> {
        self.check_writable()?;
        let (body, checksum) = log_codec::encode(records).map_err(|e| StoreError::Encode {
            what: "log records",
            detail: e.to_string(),
        })?;
        let path = &self.path;
        // Autocommit: the INSERT is its own transaction, committed (WAL fsynced) when execute returns.
        self.conn
            .prepare_cached("INSERT INTO log (record_count, checksum, body) VALUES (?1, ?2, ?3)")
            .and_then(|mut stmt| {
                stmt.execute(params![
                    records.len() as i64,
                    checksum as i64, // bit pattern kept; SQLite has no unsigned integers
                    body
                ])
            })
            .map_err(sql_err(path))?;
        Ok(self.conn.last_insert_rowid() as u64)
    }

    /// From now on, checkpoints keep the log entries above what `hold` holds (see [`LogHold`]).
    pub fn hold_log(&mut self, hold: LogHold) {
        self.hold = Some(hold);
    }

    /// Visits every log entry with `seq > after_seq` in order. A damaged entry stops the visit with
    /// [`StoreError::CorruptEntry`] naming its seq; an error from `visit` stops it and is returned.
    pub fn read_after(
        &self,
        after_seq: u64,
        visit: &mut dyn FnMut(u64, Vec<LogRecord>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read_after_limited(after_seq, u64::MAX, visit)
    }

    /// [`EmbeddedStore::read_after`] for at most `max_entries` entries, so a reader that follows the log in steps
    /// never keeps a read transaction open for long (that would hold back the WAL truncation of checkpoints).
    pub fn read_after_limited(
        &self,
        after_seq: u64,
        max_entries: u64,
        visit: &mut dyn FnMut(u64, Vec<LogRecord>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, record_count, checksum, body FROM log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(sql_err(path))?;
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(max_entries).unwrap_or(i64::MAX);
        let mut rows = stmt.query([after, limit]).map_err(sql_err(path))?;
        while let Some(row) = rows.next().map_err(sql_err(path))? {
            let seq: i64 = row.get(0).map_err(sql_err(path))?;
            let seq = seq as u64;
            let corrupt = |detail: String| StoreError::CorruptEntry {
                path: path.clone(),
                seq,
                detail,
            };
            let count: i64 = row.get(1).map_err(|e| corrupt(e.to_string()))?;
            let checksum: i64 = row.get(2).map_err(|e| corrupt(e.to_string()))?;
            let body = row
                .get_ref(3)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(|e| corrupt(e.to_string()))?;
            let records =
                log_codec::decode(body, checksum as u64, count as u64).map_err(corrupt)?;
            visit(seq, records)?;
        }
        Ok(())
    }

    /// The highest seq ever appended; 0 when nothing was. Truncation does not lower it.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        last_seq(&self.conn).map_err(sql_err(&self.path))
    }

    /// In one transaction: stores the checkpoint (state + covered seq + wall time) and the results
    /// snapshot, and deletes the log entries with `seq <= covers_seq` (and not above a [`LogHold`]); then frees the deleted pages
    /// and truncates the WAL so the directory stays bounded.
    ///
    /// Refuses a `covers_seq` beyond the log ([`StoreError::CheckpointAhead`]) or behind the stored
    /// checkpoint ([`StoreError::CheckpointBehind`]): the entries in between are already gone, so such
    /// a checkpoint would lose events on the next recovery.
    pub fn save_checkpoint(
        &mut self,
        covers_seq: u64,
        state: &[u8],
        results: &Snapshot,
    ) -> Result<(), StoreError> {
        self.save_checkpoint_with_meta(covers_seq, state, results, &[])
    }

    /// [`EmbeddedStore::save_checkpoint`] that also sets metadata values in the same transaction: for state
    /// that must move together with the checkpoint, like how far a replay has read its input file.
    pub fn save_checkpoint_with_meta(
        &mut self,
        covers_seq: u64,
        state: &[u8],
        results: &Snapshot,
        meta: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        let snapshot_json = serde_json::to_string(results).map_err(|e| StoreError::Encode {
            what: "the results snapshot",
            detail: e.to_string(),
        })?;
        let now = wall_clock_ms();
        let path = self.path.clone();
        let err = sql_err(&path);
        // IMMEDIATE: take the write lock up front so the checks below cannot go stale.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let last = last_seq(&tx).map_err(&err)?;
        if covers_seq > last {
            return Err(StoreError::CheckpointAhead {
                path: self.path.clone(),
                covers_seq,
                last_seq: last,
            });
        }
        let stored: Option<i64> = tx
            .query_row("SELECT covers_seq FROM checkpoint WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(&err)?;
        if let Some(stored) = stored.map(|s| s as u64).filter(|&s| covers_seq < s) {
            return Err(StoreError::CheckpointBehind {
                path: self.path.clone(),
                covers_seq,
                stored,
            });
        }
        tx.execute(
            "INSERT OR REPLACE INTO checkpoint (id, covers_seq, saved_at_ms, state) VALUES (1, ?1, ?2, ?3)",
            params![covers_seq as i64, now, state],
        )
        .map_err(&err)?;
        tx.execute(
            "INSERT OR REPLACE INTO results (id, saved_at_ms, snapshot) VALUES (1, ?1, ?2)",
            params![now, snapshot_json],
        )
        .map_err(&err)?;
        for (key, value) in meta {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(&err)?;
        }
        let truncate_through = match &self.hold {
            Some(hold) => covers_seq.min(hold.through()),
            None => covers_seq,
        };
        tx.execute("DELETE FROM log WHERE seq <= ?1", [truncate_through as i64])
            .map_err(&err)?;
        // Hand the pages freed by the delete and by the replaced blobs back to the file system. The pragma
        // frees one page per step, so it must be stepped to the end (execute_batch would stop after one).
        {
            let mut vacuum = tx.prepare("PRAGMA incremental_vacuum").map_err(&err)?;
            let mut steps = vacuum.query([]).map_err(&err)?;
            while steps.next().map_err(&err)?.is_some() {}
        }
        tx.commit().map_err(&err)?;
        // Move the WAL into the database and cut it to zero. A reader in another process (an operator's
        // sqlite3 shell) can make this a partial checkpoint; that is fine, the next one catches up.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(&err)?;
        Ok(())
    }

    /// The stored checkpoint, if any.
    pub fn load_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.conn
            .query_row(
                "SELECT covers_seq, state, saved_at_ms FROM checkpoint WHERE id = 1",
                [],
                |r| {
                    Ok(Checkpoint {
                        covers_seq: r.get::<_, i64>(0)? as u64,
                        state: r.get(1)?,
                        saved_at_ms: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(sql_err(&self.path))
    }

    /// The results stored with the last checkpoint, if any.
    pub fn load_results(&self) -> Result<Option<Snapshot>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT snapshot FROM results WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql_err(&self.path))?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("the stored results snapshot does not decode: {e}"),
            })
        })
        .transpose()
    }

    /// Metadata the data directory was built with (for example the engine settings fingerprint).
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sql_err(&self.path))
    }

    /// Sets one metadata value; durable on return.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.check_writable()?;
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(drop)
            .map_err(sql_err(&self.path))
    }

    /// Sizes of the log, the checkpoint and the files.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let err = sql_err(&self.path);
        let (log_entries, log_records, log_bytes) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(sum(record_count), 0), coalesce(sum(length(body)), 0) FROM log",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, i64>(2)? as u64,
                    ))
                },
            )
            .map_err(&err)?;
        let (checkpoint_bytes, checkpoint_seq) = self
            .conn
            .query_row(
                "SELECT length(state), covers_seq FROM checkpoint WHERE id = 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(&err)?
            .unwrap_or((0, 0));
        Ok(StoreStats {
            log_entries,
            log_records,
            log_bytes,
            db_file_bytes: file_len(&self.path)?,
            wal_bytes: file_len(&wal_path(&self.path))?,
            checkpoint_bytes,
            checkpoint_seq,
        })
    }
}

fn last_seq(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT seq FROM sqlite_sequence WHERE name = 'log'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|s| s.map_or(0, |s| s as u64))
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Size of a file, 0 when it does not exist.
fn file_len(path: &Path) -> Result<u64, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::io("read the size of", path, e)),
    }
}

/// Makes a directory's entries (new or renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync the directory", dir, e))
}

fn wall_clock_ms() -> TimestampMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimestampMs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kill -9 test proves process-crash durability; power-loss durability rests on these settings
    /// of the store's own connection (pragmas are per connection, so only this handle can show them).
    #[test]
    fn commits_are_fsynced_through_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let synchronous: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!((synchronous, mode.as_str()), (2, "wal")); // 2 = FULL
    }

    #[test]
    fn checkpoints_keep_the_log_a_hold_has_not_released() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = EmbeddedStore::open(dir.path()).unwrap();
        let hold = LogHold::new(0);
        store.hold_log(hold.clone());
        for i in 0..5 {
            store.append(&[LogRecord::Tick { now_ms: i }]).unwrap();
        }
        hold.release_through(2);
        let snapshot = Snapshot {
            version: 1,
            as_of_ms: 0,
            watermark_ms: 0,
            computed_at_ms: 0,
            currency: "GBP".into(),
            top_k: 10,
            windows: Vec::new(),
            lists: Default::default(),
            events_counted: 0,
        };
        store.save_checkpoint(5, b"state", &snapshot).unwrap();
        let seqs = |store: &EmbeddedStore, limit| {
            let mut seqs = Vec::new();
            store
                .read_after_limited(0, limit, &mut |seq, _| {
                    seqs.push(seq);
                    Ok(())
                })
                .unwrap();
            seqs
        };
        assert_eq!(seqs(&store, u64::MAX), [3, 4, 5], "entries 3..5 are held");
        assert_eq!(seqs(&store, 2), [3, 4]);
        // Recovery reads after the checkpoint only, so held entries are never applied twice.
        let mut after_checkpoint = 0;
        store
            .read_after(5, &mut |_, _| {
                after_checkpoint += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(after_checkpoint, 0);
        hold.release_through(5);
        hold.release_through(1); // a hold never moves back
        store.save_checkpoint(5, b"state", &snapshot).unwrap();
        assert!(seqs(&store, u64::MAX).is_empty());
    }
}
