//! The partition store: where the aggregators of a Kafka consumer group keep, per partition, the engine
//! checkpoint together with the Kafka offset it stands at, and the published results.
//!
//! Why a store per partition: a partition moves between processes (rebalance, crash, scale up or down),
//! and its new owner must resume exactly where the state stands, so that no event is lost or counted
//! twice. The state and the offset are therefore written in one atomic step, and ownership is fenced
//! by an epoch: taking a partition ([`PartitionStore::claim`]) increments its epoch, and every later
//! write must carry that epoch. A paused owner that wakes up after its partition moved (a "zombie")
//! gets [`StoreError::Fenced`] and can never overwrite the newer owner's data.
//!
//! Results (the partition's [`Snapshot`]) are written more often than checkpoints; API servers poll
//! the cheap [`PartitionStore::result_versions`] and load only partitions whose version changed, then
//! merge them.
//!
//! # Lifecycle of an aggregator
//!
//! 1. Open the backend for one namespace (the topic, or topic and group): rows are keyed by
//!    (namespace, partition), so several topics or groups can share one backend.
//! 2. [`bind`](PartitionStore::bind) once at start-up with the topic's partition count and the engine
//!    settings: the first process records them, every later one is checked against them.
//! 3. On assignment of a partition: [`claim`](PartitionStore::claim) it, restore the engine from
//!    `claim.checkpoint` (or start empty) and seek the consumer to its `next_offset` (or the start).
//! 4. While consuming: [`save_results`](PartitionStore::save_results) often and
//!    [`save_checkpoint`](PartitionStore::save_checkpoint) now and then, both with the claimed epoch.
//!    Results never go back: until the engine has caught up to `claim.results` (the previous owner may
//!    have published past its last checkpoint), publish and checkpoint nothing, and number snapshots
//!    above `claim.results.version`.
//! 5. On [`StoreError::Fenced`]: stop processing that partition at once; its new owner carries on.
//!
//! Readers (API servers) only call [`result_versions`](PartitionStore::result_versions) and
//! [`load_results`](PartitionStore::load_results); they need no binding and no epoch.
//!
//! # What "saved" means
//!
//! A save returns `Ok` only once it is durable in the backend (for SQLite: committed with the WAL
//! fsynced). A save that returns an error changed nothing. Each call is all or nothing: a reader or a
//! new owner sees either everything one save wrote or none of it.
//!
//! # Backends
//!
//! - [`SqlitePartitionStore`]: one SQLite file shared by the processes on one host.
//! - [`MemoryPartitionStore`]: in memory, for tests of the code that uses a store.
//!
//! Every backend must pass [`conformance::run_all`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use topsellers_model::Snapshot;
//! use topsellers_store::{
//!     MemoryPartitionStore, PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding,
//! };
//!
//! let store = MemoryPartitionStore::new("purchases");
//! store
//!     .bind(&StoreBinding { partitions: 12, settings: "bucket_secs=60 windows=1h,all top_k=10".into() })
//!     .unwrap();
//!
//! let claim = store.claim(3).unwrap();
//! assert_eq!((claim.epoch, claim.checkpoint.is_none(), claim.results.is_none()), (1, true, true));
//!
//! let snapshot = Snapshot {
//!     version: 1,
//!     as_of_ms: 60_000,
//!     watermark_ms: 0,
//!     computed_at_ms: 61_000,
//!     currency: "USD".into(),
//!     top_k: 10,
//!     windows: Vec::new(),
//!     lists: BTreeMap::new(),
//!     events_counted: 500,
//! };
//! let results = PartitionResults { next_offset: 500, snapshot };
//! let checkpoint = PartitionCheckpoint { next_offset: 500, state: b"engine state".to_vec() };
//! store.save_checkpoint(3, claim.epoch, &checkpoint, &results).unwrap();
//!
//! // Another process takes the partition over: it resumes at offset 500, and the old owner is fenced.
//! let other_process = store.handle("purchases");
//! let next = other_process.claim(3).unwrap();
//! assert_eq!(next.epoch, 2);
//! assert_eq!(next.checkpoint.as_ref().map(|c| c.next_offset), Some(500));
//! let err = store.save_results(3, claim.epoch, &results).unwrap_err();
//! assert!(err.is_fenced());
//!
//! let marks = store.result_versions().unwrap();
//! assert_eq!((marks[0].partition, marks[0].version, marks[0].next_offset), (3, 1, 500));
//! ```

mod codec;
pub mod conformance;
mod memory;
mod sqlite;

pub use codec::{decode_snapshot, encode_snapshot, SNAPSHOT_FORMAT};
pub use memory::MemoryPartitionStore;
pub use sqlite::{SqlitePartitionStore, SQLITE_BUSY_TIMEOUT};

use crate::StoreError;
use std::fmt;
use topsellers_model::Snapshot;

/// Durable per-partition checkpoints and results of one namespace, shared by every process of a
/// consumer group. See the [module documentation](self) for the call order.
///
/// Implementations are synchronous and used as `Arc<dyn PartitionStore>` from several threads. Errors
/// are [`StoreError`]s; the ones a caller acts on are [`StoreError::Fenced`] (stop processing the
/// partition), [`StoreError::PartitionCountChanged`] and [`StoreError::SettingsChanged`] (refuse to
/// start); [`StoreError::ResultsBehind`], [`StoreError::PartitionCheckpointBehind`],
/// [`StoreError::NotBound`] and [`StoreError::PartitionOutOfRange`] are bugs in the caller; the rest
/// ([`StoreError::Locked`], I/O, a backend that is down) may pass, so retry later. Every failed call
/// changed nothing.
pub trait PartitionStore: Send + Sync {
    /// Records, on the first call for the namespace, what the stored data means; checks it on every
    /// later call (from any process). A different partition count is
    /// [`StoreError::PartitionCountChanged`] (a topic re-created with another partition count moves its
    /// keys, so the stored state no longer matches), different settings text is
    /// [`StoreError::SettingsChanged`]; both name the stored and the given value and the fix.
    fn bind(&self, binding: &StoreBinding) -> Result<(), StoreError>;

    /// Takes ownership of `partition`: increments its epoch, which fences out every earlier owner, and
    /// returns the new epoch (1 for a partition never claimed), the last checkpoint and where the
    /// published results stand. Requires a binding ([`StoreError::NotBound`]) and a partition below
    /// its partition count ([`StoreError::PartitionOutOfRange`]).
    fn claim(&self, partition: u32) -> Result<Claim, StoreError>;

    /// Stores the checkpoint (state and offset) and the results together, atomically, if `epoch` is
    /// still the partition's current epoch ([`StoreError::Fenced`] otherwise). Refuses a checkpoint
    /// behind the stored one ([`StoreError::PartitionCheckpointBehind`]) and results that would not move
    /// forward ([`StoreError::ResultsBehind`], see [`PartitionStore::save_results`]).
    fn save_checkpoint(
        &self,
        partition: u32,
        epoch: u64,
        checkpoint: &PartitionCheckpoint,
        results: &PartitionResults,
    ) -> Result<(), StoreError>;

    /// Stores the results only, with the same fencing. Results must move forward, so that readers, who
    /// reload a partition only when its version changes, never miss a change nor go back in time:
    /// the offset may not be below the stored one, and the version must be above the stored one. The
    /// one exception is an exact repeat (same version and offset), accepted so a retry after a lost
    /// reply is harmless. Anything else is [`StoreError::ResultsBehind`].
    fn save_results(
        &self,
        partition: u32,
        epoch: u64,
        results: &PartitionResults,
    ) -> Result<(), StoreError>;

    /// Every partition of the namespace that has results, by partition number. Cheap (no snapshot is
    /// read), so readers can poll it every second.
    fn result_versions(&self) -> Result<Vec<ResultsMark>, StoreError>;

    /// The stored results of `partition`, `None` if it has none.
    fn load_results(&self, partition: u32) -> Result<Option<PartitionResults>, StoreError>;

    /// What the store is, for logs and errors, e.g. "sqlite partition store /var/lib/ts/partitions.db
    /// (namespace purchases)".
    fn describe(&self) -> String;
}

/// What the stored data of a namespace means: checked on every start so that state is never resumed
/// under a different partitioning or different engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreBinding {
    /// The topic's partition count.
    pub partitions: u32,
    /// The canonical text of the settings that give a checkpoint its meaning (bucket size, windows,
    /// top_k, ...), compared verbatim.
    pub settings: String,
}

/// What a new owner of a partition gets from [`PartitionStore::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Carried by every save of this owner; a later claim by anyone makes it stale.
    pub epoch: u64,
    /// Where to resume: the state and the offset of the next record to consume. `None`: start empty,
    /// from the beginning of the partition.
    pub checkpoint: Option<PartitionCheckpoint>,
    /// Where the published results stand. They may be ahead of the checkpoint (results are saved
    /// more often): publish nothing before having caught up to `next_offset`, and number the next
    /// snapshot above `version`.
    pub results: Option<ResultsMark>,
}

/// Engine state and the partition offset it stands at.
#[derive(Clone, PartialEq, Eq)]
pub struct PartitionCheckpoint {
    /// Offset of the next record to consume: the state holds every record before it and none after.
    pub next_offset: i64,
    /// The engine's checkpoint bytes; opaque to the store.
    pub state: Vec<u8>,
}

// The state can be tens of megabytes; a failed `assert_eq!` must not print all of it.
impl fmt::Debug for PartitionCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionCheckpoint")
            .field("next_offset", &self.next_offset)
            .field("state_len", &self.state.len())
            .field(
                "state_xxh3",
                &format_args!("{:016x}", xxhash_rust::xxh3::xxh3_64(&self.state)),
            )
            .finish()
    }
}

/// The published results of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionResults {
    /// Offset of the next record: the snapshot holds every record before it. It may be ahead of the
    /// checkpoint's.
    pub next_offset: i64,
    /// The partition's top lists; `snapshot.version` is the results version readers compare.
    pub snapshot: Snapshot,
}

impl PartitionResults {
    /// The version readers compare: `snapshot.version`.
    pub fn version(&self) -> u64 {
        self.snapshot.version
    }

    /// The mark of these results as they would be listed for `partition`.
    pub fn mark(&self, partition: u32) -> ResultsMark {
        ResultsMark {
            partition,
            version: self.snapshot.version,
            next_offset: self.next_offset,
        }
    }
}

/// Where the results of one partition stand, without the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResultsMark {
    pub partition: u32,
    /// `snapshot.version` of the stored results.
    pub version: u64,
    /// `next_offset` of the stored results.
    pub next_offset: i64,
}

impl ResultsMark {
    /// The results rule every backend applies: may results at `new` replace the stored ones at `self`?
    /// Yes when they move forward (higher version, offset not lower) or repeat them exactly (a retry).
    pub fn may_be_replaced_by(&self, new: &ResultsMark) -> bool {
        let forward = new.version > self.version && new.next_offset >= self.next_offset;
        let repeat = new.version == self.version && new.next_offset == self.next_offset;
        forward || repeat
    }
}
