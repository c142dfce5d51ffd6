//! [`SqlitePartitionStore`]: the partition store in one SQLite file that every aggregator process on a
//! host opens at the same time.
//!
//! Unlike the embedded store there is no `LOCK` file: sharing the file is the point. SQLite's own
//! locks serialise the writers (WAL lets readers go on meanwhile); a writer that finds the file locked
//! waits up to [`SQLITE_BUSY_TIMEOUT`] instead of failing, and every read-check-write runs in a
//! `BEGIN IMMEDIATE` transaction, which takes the write lock before reading, so the epoch and offsets it
//! checks cannot change before it writes. (A deferred transaction would read first and could then be
//! refused the upgrade with `SQLITE_BUSY` at once, busy timeout or not.)
//!
//! Schema, in tables prefixed `pstore_` so the file can hold other things too (the version lives in
//! its own table rather than `PRAGMA user_version` for the same reason):
//! - `pstore_schema(id = 1, version)`;
//! - `pstore_binding(namespace, partitions, settings, bound_at_ms)`;
//! - `pstore_partition(id, namespace, partition, epoch, claimed_at_ms, checkpoint_offset,
//!   results_version, results_offset)`: one small row per partition, what `claim` and the saves check
//!   and what `result_versions` lists without touching a blob;
//! - `pstore_checkpoint(id, saved_at_ms, checksum, state)` and `pstore_results(id, saved_at_ms,
//!   checksum, snapshot)`, keyed by the partition row's id. The blobs live apart from the partition
//!   row because SQLite rewrites a whole row on update: results are saved every second or so, and must
//!   not copy a checkpoint of tens of megabytes each time.
//!
//! Each blob carries an xxh3 checksum, so a damaged one is reported rather than decoded into wrong
//! state; snapshots are encoded by [`encode_snapshot`](super::encode_snapshot) (bincode behind a format
//! byte).

use super::{
    decode_snapshot, encode_snapshot, Claim, PartitionCheckpoint, PartitionResults, PartitionStore,
    ResultsMark, StoreBinding,
};
use crate::embedded::sync_dir;
use crate::StoreError;
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use xxhash_rust::xxh3::xxh3_64;

/// How long a call waits for another process's write to finish before giving up with
/// [`StoreError::Locked`]. Writes hold the lock for about a millisecond (results) or a few hundred at
/// most (a 20 MB checkpoint took 50 to 350 ms here); only a process stopped in the middle of a write
/// holds it longer.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema, as an ordered list of migrations: migration `i` (1-based) makes version `i`. Append,
/// never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: bindings, the partition rows, and their checkpoint and results blobs.
    "CREATE TABLE pstore_binding (
         namespace   TEXT PRIMARY KEY,
         partitions  INTEGER NOT NULL,
         settings    TEXT NOT NULL,
         bound_at_ms INTEGER NOT NULL
     );
     CREATE TABLE pstore_partition (
         id                INTEGER PRIMARY KEY,
         namespace         TEXT NOT NULL,
         partition         INTEGER NOT NULL,
         epoch             INTEGER NOT NULL,
         claimed_at_ms     INTEGER NOT NULL,
         checkpoint_offset INTEGER,
         results_version   INTEGER,
         results_offset    INTEGER,
         UNIQUE (namespace, partition)
     );
     CREATE TABLE pstore_checkpoint (
         id          INTEGER PRIMARY KEY REFERENCES pstore_partition (id),
         saved_at_ms INTEGER NOT NULL,
         checksum    INTEGER NOT NULL,
         state       BLOB NOT NULL
     );
     CREATE TABLE pstore_results (
         id          INTEGER PRIMARY KEY REFERENCES pstore_partition (id),
         saved_at_ms INTEGER NOT NULL,
         checksum    INTEGER NOT NULL,
         snapshot    BLOB NOT NULL
     );",
];

/// The schema version this build writes and understands.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Largest the WAL is left at after SQLite's automatic checkpoints. Without a limit it would stay as
/// large as the largest burst of writes, several checkpoints of tens of megabytes.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// A partition store in a SQLite file, opened for one namespace. Any number of handles, in any number
/// of processes, may have the same file open at once; each handle is one connection, used by one
/// thread at a time.
///
/// ```
/// use topsellers_store::{PartitionStore, SqlitePartitionStore, StoreBinding};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("partitions.db");
/// let binding = StoreBinding { partitions: 6, settings: "bucket_secs=60".into() };
/// let aggregator_a = SqlitePartitionStore::open(&path, "purchases").unwrap();
/// let aggregator_b = SqlitePartitionStore::open(&path, "purchases").unwrap();
/// aggregator_a.bind(&binding).unwrap();
/// aggregator_b.bind(&binding).unwrap();
/// assert_eq!(aggregator_a.claim(0).unwrap().epoch, 1);
/// assert_eq!(aggregator_b.claim(0).unwrap().epoch, 2);
/// assert_eq!(
///     aggregator_a.describe(),
///     format!("sqlite partition store {} (namespace purchases)", path.display())
/// );
/// ```
#[derive(Debug)]
pub struct SqlitePartitionStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    namespace: String,
}

/// The partition row, as the saves check it.
struct PartitionRow {
    id: i64,
    epoch: u64,
    checkpoint_offset: Option<i64>,
    results: Option<(u64, i64)>,
}

impl SqlitePartitionStore {
    /// Opens (creating it and its directory if needed) the SQLite file at `path` for `namespace`, and
    /// brings its schema up to date. Safe to call from several processes at once.
    pub fn open(path: &Path, namespace: &str) -> Result<SqlitePartitionStore, StoreError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("create the directory of", path, e))?;
        let created = !path.exists();
        let describe = store_describe(path, namespace);
        let err = |e| store_err(&describe, path, e);
        let mut conn = Connection::open(path).map_err(err)?;
        // First, so that even the pragmas below wait for a process that is writing.
        conn.busy_handler(Some(busy_wait)).map_err(err)?;
        configure(&conn, path, &err)?;
        migrate(&mut conn, path, &err)?;
        if created {
            // The new file's directory entry must survive a crash too, or the first saves vanish with it.
            sync_dir(dir)?;
        }
        Ok(SqlitePartitionStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            namespace: namespace.to_string(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace this handle reads and writes.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a transaction rolled it back while unwinding (rusqlite's Transaction does so
        // on drop), so the connection behind a poisoned lock is in a clean state.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| store_err(&self.describe(), &self.path, e)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction and commits it; an error from `body` rolls back.
    fn write<T>(
        &self,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let out = body(&tx)?;
        tx.commit().map_err(self.err())?;
        Ok(out)
    }

    /// The partition row after checking that `epoch` is current. A partition never claimed has no row
    /// and epoch 0, which no claim hands out, so every write to it is fenced.
    fn owned_row(
        &self,
        tx: &Transaction<'_>,
        partition: u32,
        epoch: u64,
    ) -> Result<PartitionRow, StoreError> {
        let row = tx
            .prepare_cached(
                "SELECT id, epoch, checkpoint_offset, results_version, results_offset
                 FROM pstore_partition WHERE namespace = ?1 AND partition = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![self.namespace, partition], |r| {
                    let results = match (r.get::<_, Option<i64>>(3)?, r.get::<_, Option<i64>>(4)?) {
                        (Some(version), Some(offset)) => Some((version as u64, offset)),
                        _ => None,
                    };
                    Ok(PartitionRow {
                        id: r.get(0)?,
                        epoch: r.get::<_, i64>(1)? as u64,
                        checkpoint_offset: r.get(2)?,
                        results,
                    })
                })
                .optional()
            })
            .map_err(self.err())?;
        match row {
            Some(row) if row.epoch == epoch => Ok(row),
            row => Err(StoreError::Fenced {
                store: self.describe(),
                partition,
                epoch,
                current: row.map_or(0, |r| r.epoch),
            }),
        }
    }

    fn check_results(
        &self,
        row: &PartitionRow,
        partition: u32,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        let new = results.mark(partition);
        let Some((version, next_offset)) = row.results else {
            return Ok(());
        };
        let stored = ResultsMark {
            partition,
            version,
            next_offset,
        };
        if stored.may_be_replaced_by(&new) {
            return Ok(());
        }
        Err(StoreError::ResultsBehind {
            store: self.describe(),
            partition,
            next_offset: new.next_offset,
            version: new.version,
            stored_offset: stored.next_offset,
            stored_version: stored.version,
        })
    }

    /// Writes the results blob and mark of the partition row `id`.
    fn put_results(
        &self,
        tx: &Transaction<'_>,
        id: i64,
        now: i64,
        results: &PartitionResults,
        encoded: &[u8],
    ) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT INTO pstore_results (id, saved_at_ms, checksum, snapshot) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET
                 saved_at_ms = excluded.saved_at_ms, checksum = excluded.checksum, snapshot = excluded.snapshot",
        )
        .and_then(|mut stmt| {
            // The checksum's bit pattern is kept; SQLite has no unsigned integers.
            stmt.execute(params![id, now, xxh3_64(encoded) as i64, encoded])
        })
        .map_err(self.err())?;
        tx.prepare_cached(
            "UPDATE pstore_partition SET results_version = ?2, results_offset = ?3 WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                id,
                results.snapshot.version as i64,
                results.next_offset
            ])
        })
        .map_err(self.err())?;
        Ok(())
    }

    fn corrupt(&self, partition: u32, what: &'static str, detail: String) -> StoreError {
        StoreError::CorruptPartition {
            store: self.describe(),
            partition,
            what,
            detail,
        }
    }
}

impl PartitionStore for SqlitePartitionStore {
    fn bind(&self, binding: &StoreBinding) -> Result<(), StoreError> {
        self.write(|tx| {
            let stored: Option<(u32, String)> = tx
                .query_row(
                    "SELECT partitions, settings FROM pstore_binding WHERE namespace = ?1",
                    [&self.namespace],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(self.err())?;
            match stored {
                None => {
                    tx.execute(
                        "INSERT INTO pstore_binding (namespace, partitions, settings, bound_at_ms)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![
                            self.namespace,
                            binding.partitions,
                            binding.settings,
                            wall_clock_ms()
                        ],
                    )
                    .map_err(self.err())?;
                    Ok(())
                }
                Some((partitions, _)) if partitions != binding.partitions => {
                    Err(StoreError::PartitionCountChanged {
                        store: self.describe(),
                        stored: partitions,
                        given: binding.partitions,
                    })
                }
                Some((_, settings)) if settings != binding.settings => {
                    Err(StoreError::SettingsChanged {
                        store: self.describe(),
                        stored: settings,
                        given: binding.settings.clone(),
                    })
                }
                Some(_) => Ok(()),
            }
        })
    }

    fn claim(&self, partition: u32) -> Result<Claim, StoreError> {
        self.write(|tx| {
            let partitions: Option<u32> = tx
                .query_row(
                    "SELECT partitions FROM pstore_binding WHERE namespace = ?1",
                    [&self.namespace],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.err())?;
            let partitions = partitions.ok_or_else(|| StoreError::NotBound {
                store: self.describe(),
            })?;
            if partition >= partitions {
                return Err(StoreError::PartitionOutOfRange {
                    store: self.describe(),
                    partition,
                    partitions,
                });
            }
            let (id, epoch, checkpoint_offset, results_version, results_offset) = tx
                .query_row(
                    "INSERT INTO pstore_partition (namespace, partition, epoch, claimed_at_ms)
                     VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (namespace, partition) DO UPDATE SET
                         epoch = epoch + 1, claimed_at_ms = excluded.claimed_at_ms
                     RETURNING id, epoch, checkpoint_offset, results_version, results_offset",
                    params![self.namespace, partition, wall_clock_ms()],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)? as u64,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                        ))
                    },
                )
                .map_err(self.err())?;
            let checkpoint = match checkpoint_offset {
                None => None,
                Some(next_offset) => {
                    let (checksum, state): (i64, Vec<u8>) = tx
                        .query_row(
                            "SELECT checksum, state FROM pstore_checkpoint WHERE id = ?1",
                            [id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .map_err(self.err())?
                        .ok_or_else(|| {
                            self.corrupt(partition, "checkpoint", "its state is missing".into())
                        })?;
                    let actual = xxh3_64(&state);
                    if actual != checksum as u64 {
                        return Err(self.corrupt(
                            partition,
                            "checkpoint",
                            format!(
                                "checksum mismatch: stored {:016x}, computed {actual:016x}",
                                checksum as u64
                            ),
                        ));
                    }
                    Some(PartitionCheckpoint { next_offset, state })
                }
            };
            let results = match (results_version, results_offset) {
                (Some(version), Some(next_offset)) => Some(ResultsMark {
                    partition,
                    version: version as u64,
                    next_offset,
                }),
                _ => None,
            };
            Ok(Claim {
                epoch,
                checkpoint,
                results,
            })
        })
    }

    fn save_checkpoint(
        &self,
        partition: u32,
        epoch: u64,
        checkpoint: &PartitionCheckpoint,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        // Encode and checksum before taking the write lock, which other processes are waiting for.
        let encoded = encode_snapshot(&results.snapshot);
        let state_checksum = xxh3_64(&checkpoint.state) as i64;
        let now = wall_clock_ms();
        self.write(|tx| {
            let row = self.owned_row(tx, partition, epoch)?;
            if let Some(stored) = row
                .checkpoint_offset
                .filter(|&stored| checkpoint.next_offset < stored)
            {
                return Err(StoreError::PartitionCheckpointBehind {
                    store: self.describe(),
                    partition,
                    next_offset: checkpoint.next_offset,
                    stored,
                });
            }
            self.check_results(&row, partition, results)?;
            tx.prepare_cached(
                "INSERT INTO pstore_checkpoint (id, saved_at_ms, checksum, state) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET
                     saved_at_ms = excluded.saved_at_ms, checksum = excluded.checksum, state = excluded.state",
            )
            .and_then(|mut stmt| stmt.execute(params![row.id, now, state_checksum, checkpoint.state]))
            .map_err(self.err())?;
            tx.prepare_cached("UPDATE pstore_partition SET checkpoint_offset = ?2 WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute(params![row.id, checkpoint.next_offset]))
                .map_err(self.err())?;
            self.put_results(tx, row.id, now, results, &encoded)
        })
    }

    fn save_results(
        &self,
        partition: u32,
        epoch: u64,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        let encoded = encode_snapshot(&results.snapshot);
        let now = wall_clock_ms();
        self.write(|tx| {
            let row = self.owned_row(tx, partition, epoch)?;
            self.check_results(&row, partition, results)?;
            self.put_results(tx, row.id, now, results, &encoded)
        })
    }

    fn result_versions(&self) -> Result<Vec<ResultsMark>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT partition, results_version, results_offset FROM pstore_partition
                 WHERE namespace = ?1 AND results_version IS NOT NULL ORDER BY partition",
            )
            .map_err(self.err())?;
        let marks = stmt
            .query_map([&self.namespace], |r| {
                Ok(ResultsMark {
                    partition: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u64,
                    next_offset: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.err())?;
        Ok(marks)
    }

    fn load_results(&self, partition: u32) -> Result<Option<PartitionResults>, StoreError> {
        let conn = self.lock();
        // One statement reads the mark and the blob from one snapshot of the database (WAL), so they
        // belong to the same save even while writers go on.
        let row: Option<(i64, i64, i64, Vec<u8>)> = conn
            .prepare_cached(
                "SELECT p.results_version, p.results_offset, r.checksum, r.snapshot
                 FROM pstore_partition p JOIN pstore_results r ON r.id = p.id
                 WHERE p.namespace = ?1 AND p.partition = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![self.namespace, partition], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(self.err())?;
        drop(conn);
        let Some((version, next_offset, checksum, bytes)) = row else {
            return Ok(None);
        };
        let actual = xxh3_64(&bytes);
        if actual != checksum as u64 {
            return Err(self.corrupt(
                partition,
                "results",
                format!(
                    "checksum mismatch: stored {:016x}, computed {actual:016x}",
                    checksum as u64
                ),
            ));
        }
        let snapshot =
            decode_snapshot(&bytes).map_err(|detail| self.corrupt(partition, "results", detail))?;
        if snapshot.version != version as u64 {
            return Err(self.corrupt(
                partition,
                "results",
                format!(
                    "the snapshot has version {}, its row says {version}",
                    snapshot.version
                ),
            ));
        }
        Ok(Some(PartitionResults {
            next_offset,
            snapshot,
        }))
    }

    fn describe(&self) -> String {
        store_describe(&self.path, &self.namespace)
    }
}

fn store_describe(path: &Path, namespace: &str) -> String {
    format!(
        "sqlite partition store {} (namespace {namespace})",
        path.display()
    )
}

/// Called by SQLite when another connection holds the lock it needs; `tries` counts the earlier calls
/// for the same wait. Returns whether to try again.
///
/// SQLite's built-in busy timeout backs off to sleeps of 100 ms, so a waiter often sleeps on long after
/// the lock was freed while the connection that just committed takes it again: under contention one
/// writer runs many transactions and the others starve (the multi-process test showed whole runs
/// without a single interleaving). Polling every few milliseconds keeps a wait close to how long the
/// lock is really held.
fn busy_wait(tries: i32) -> bool {
    const FAST_TRIES: u32 = 20;
    const FAST: Duration = Duration::from_millis(1);
    const SLOW: Duration = Duration::from_millis(5);
    let tries = tries.max(0) as u32;
    // Sleeps are lower bounds, so this underestimates the time waited: the limit is never cut short.
    let waited = FAST * tries.min(FAST_TRIES) + SLOW * tries.saturating_sub(FAST_TRIES);
    if waited >= SQLITE_BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(if tries < FAST_TRIES { FAST } else { SLOW });
    true
}

/// Classifies a SQLite error: a lock that outlasted [`SQLITE_BUSY_TIMEOUT`] says so; the rest as in the
/// embedded store.
fn store_err(store: &str, path: &Path, e: rusqlite::Error) -> StoreError {
    match &e {
        // SQLITE_BUSY_SNAPSHOT comes at once, without waiting, and only to a deferred transaction that
        // tries to write; every write here is IMMEDIATE, so it would be a bug, reported as it is.
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ErrorCode::DatabaseBusy
                && f.extended_code != rusqlite::ffi::SQLITE_BUSY_SNAPSHOT =>
        {
            StoreError::Locked {
                store: store.to_string(),
                path: path.to_path_buf(),
                waited_ms: SQLITE_BUSY_TIMEOUT.as_millis() as u64,
            }
        }
        _ => StoreError::sqlite(path, e),
    }
}

/// Durability settings, per connection.
fn configure(
    conn: &Connection,
    path: &Path,
    err: &dyn Fn(rusqlite::Error) -> StoreError,
) -> Result<(), StoreError> {
    // Switching to WAL needs the file to itself, and SQLite answers `SQLITE_BUSY` at once, without
    // its busy handler, when another connection has it open (as when every aggregator of a group
    // starts at the same moment on a new file). The mode is persistent, so retry until either this
    // connection switched it or another one did.
    let started = Instant::now();
    let mode = loop {
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(err)?;
        if mode.eq_ignore_ascii_case("wal") {
            break mode;
        }
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) => break mode,
            Err(e) if is_busy(&e) && started.elapsed() < SQLITE_BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(err(e)),
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        // Without WAL, readers would block the writers, and durability would rest on other settings.
        return Err(StoreError::NoWriteAheadLog {
            path: path.to_path_buf(),
            mode,
        });
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES};"
    ))
    .map_err(err)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DatabaseBusy)
}

/// Brings the schema up to [`SCHEMA_VERSION`]. Several processes may open a new file at the same
/// moment: the version is read and the migrations applied inside one `BEGIN IMMEDIATE` transaction,
/// so exactly one of them creates the tables and the others find them. A newer version is refused
/// rather than misread.
fn migrate(
    conn: &mut Connection,
    path: &Path,
    err: &dyn Fn(rusqlite::Error) -> StoreError,
) -> Result<(), StoreError> {
    // The common case, a file already up to date, needs no write lock.
    let found = schema_version(conn).map_err(err)?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let newer = |found| StoreError::NewerSchema {
        path: path.to_path_buf(),
        found,
        supported: SCHEMA_VERSION,
    };
    if found > SCHEMA_VERSION {
        return Err(newer(found));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS pstore_schema (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         )",
    )
    .map_err(err)?;
    let found = schema_version(&tx).map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(newer(found));
    }
    for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.execute_batch(sql).map_err(err)?;
    }
    tx.execute(
        "INSERT INTO pstore_schema (id, version) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        [SCHEMA_VERSION],
    )
    .map_err(err)?;
    tx.commit().map_err(err)
}

/// The stored schema version; 0 for a file without the partition store's tables.
fn schema_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pstore_schema')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    Ok(conn
        .query_row("SELECT version FROM pstore_schema WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power-loss durability rests on these settings of the store's own connection (pragmas are per
    /// connection, so only this handle can show them).
    #[test]
    fn connections_are_wal_and_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlitePartitionStore::open(&dir.path().join("p.db"), "ns").unwrap();
        let conn = store.lock();
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!((synchronous, mode.as_str()), (2, "wal")); // 2 = FULL
    }

    #[test]
    fn the_busy_wait_polls_briefly_and_gives_up_after_the_timeout() {
        let started = std::time::Instant::now();
        assert!(busy_wait(0));
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(busy_wait(6_000));
        assert!(!busy_wait(20 + 30_000 / 5));
        assert!(!busy_wait(i32::MAX));
    }
}
