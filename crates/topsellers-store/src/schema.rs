//! Connection settings and versioned schema migrations (`PRAGMA user_version`).
//!
//! Migration `i` (1-based) turns schema version `i - 1` into `i`, each in its own transaction together
//! with the version bump, so a crash mid-migration leaves the previous version intact. A database with
//! a version above [`SCHEMA_VERSION`] was written by a newer topsellers and is refused rather than
//! misread.

use crate::error::sql_err;
use crate::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// The schema, as an ordered list of migrations. Append, never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: the log, the single checkpoint and results rows, and key-value metadata.
    // AUTOINCREMENT makes SQLite remember the highest seq ever used (in sqlite_sequence), so a seq is
    // never handed out twice even after the log was truncated to nothing.
    // Blob columns come last so the small columns stay on the row's first page.
    "CREATE TABLE log (
         seq          INTEGER PRIMARY KEY AUTOINCREMENT,
         record_count INTEGER NOT NULL,
         checksum     INTEGER NOT NULL,
         body         BLOB NOT NULL
     );
     CREATE TABLE checkpoint (
         id          INTEGER PRIMARY KEY CHECK (id = 1),
         covers_seq  INTEGER NOT NULL,
         saved_at_ms INTEGER NOT NULL,
         state       BLOB NOT NULL
     );
     CREATE TABLE results (
         id          INTEGER PRIMARY KEY CHECK (id = 1),
         saved_at_ms INTEGER NOT NULL,
         snapshot    TEXT NOT NULL
     );
     CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     ) WITHOUT ROWID;",
];

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Largest the WAL is left at after a checkpoint; it is truncated to zero at every store checkpoint
/// anyway, this only bounds it when the caller checkpoints rarely.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Sets the durability and space settings. `auto_vacuum` only takes effect on a database without
/// tables, which is why it comes before the migrations create any.
pub(crate) fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES};"
    ))
    .map_err(sql_err(path))?;
    // journal_mode answers with the mode it got; anything but WAL (say, a read-only medium) would
    // silently change the durability story.
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(sql_err(path))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWriteAheadLog {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Brings the schema up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err(path))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let tx = conn.transaction().map_err(sql_err(path))?;
        tx.execute_batch(sql).map_err(sql_err(path))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(sql_err(path))?;
        tx.commit().map_err(sql_err(path))?;
    }
    Ok(())
}
