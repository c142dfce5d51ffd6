//! The embedded store: the accepted-event log, checkpoints, results and dead letters under one data
//! directory, with no outside service.
//!
//! Layout of a data directory:
//! - `topsellers.db` (+ `-wal`): SQLite holding the log (one entry per appended batch, bincode with a
//!   checksum), the latest checkpoint of the aggregator state with the log seq it covers, the results
//!   snapshot stored with it, and key-value metadata. See [`EmbeddedStore`].
//! - `dead-letters.ndjson` (+ rotated `.1`, `.2`, `.3`): rejected records, one JSON per line. See
//!   [`DeadLetterFile`].
//! - `LOCK`: held with `flock` while a process uses the directory; holds its pid. A read-only handle
//!   ([`EmbeddedStore::open_read_only`]) takes no lock and can look at a directory a node is using.
//!
//! The recovery contract: an event got its OK only after [`EmbeddedStore::append`] returned, so after a
//! crash `load_checkpoint` + `read_after(covers_seq)` rebuilds exactly what was acknowledged.
//!
//! ```
//! use topsellers_model::LogRecord;
//! use topsellers_store::EmbeddedStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = EmbeddedStore::open(dir.path()).unwrap();
//! let seq = store.append(&[LogRecord::Tick { now_ms: 1_000 }]).unwrap();
//! assert_eq!(store.last_seq().unwrap(), seq);
//!
//! // Recovery: the checkpoint (none yet), then every entry behind it.
//! let covers = store.load_checkpoint().unwrap().map_or(0, |c| c.covers_seq);
//! let mut replayed = Vec::new();
//! store
//!     .read_after(covers, &mut |seq, records| {
//!         replayed.push((seq, records));
//!         Ok(())
//!     })
//!     .unwrap();
//! assert_eq!(replayed, vec![(seq, vec![LogRecord::Tick { now_ms: 1_000 }])]);
//!
//! // A second process (or a second open) cannot share the directory.
//! let err = EmbeddedStore::open(dir.path()).unwrap_err();
//! assert!(err.to_string().contains("is in use by another topsellers process"));
//! ```

mod dead_letters;
mod dir_lock;
mod embedded;
mod error;
mod log_codec;
pub mod partitions;
mod schema;

pub use dead_letters::{DeadLetterFile, DEFAULT_KEEP_ROTATED, DEFAULT_ROTATE_BYTES};
pub use embedded::{Checkpoint, EmbeddedStore, LogHold, StoreStats, DB_FILE};
pub use error::StoreError;
pub use partitions::{
    Claim, MemoryPartitionStore, PartitionCheckpoint, PartitionResults, PartitionStore,
    ResultsMark, SqlitePartitionStore, StoreBinding,
};
