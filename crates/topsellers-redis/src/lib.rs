//! The partition store ([`PartitionStore`](topsellers_store::PartitionStore)) on Redis, standalone or
//! Redis Cluster: where the Kafka aggregators keep each partition's fenced checkpoint and results, and
//! where the API servers read the results from.
//!
//! ```no_run
//! use topsellers_redis::{RedisPartitionStore, RedisSettings};
//! use topsellers_store::{PartitionStore, StoreBinding};
//!
//! let settings = RedisSettings {
//!     urls: vec!["redis://10.0.0.1:6379".into(), "redis://10.0.0.2:6379".into()],
//!     cluster: true,
//!     ..RedisSettings::default()
//! };
//! let store = RedisPartitionStore::open(&settings, "purchases")?;
//! store.bind(&StoreBinding { partitions: 24, settings: "bucket_secs=60 windows=1h,all".into() })?;
//! let claim = store.claim(5)?;
//! // ... restore the engine from claim.checkpoint, consume, save_results / save_checkpoint with claim.epoch
//! # let _ = claim;
//! # Ok::<(), topsellers_store::StoreError>(())
//! ```
//!
//! # Key layout
//!
//! Every key of a namespace starts with the hash tag `{<key_prefix>:<namespace>}` (`key_prefix` defaults
//! to `topsellers`), written `T` here:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `T:binding` | hash | `partitions`, `settings`, `bound_at_ms`; `ttl_ms`, `ttl_refreshed_at_ms` (expiry bookkeeping) |
//! | `T:marks` | hash | field `<partition>` = `"<results version> <next offset>"`: all that `result_versions` reads, in one `HGETALL` |
//! | `T:partition:<p>` | hash | `epoch`, `claimed_at_ms`, `checkpoint_offset`, `checkpoint_xxh3`, `checkpoint_saved_at_ms`, `results_xxh3`, `results_saved_at_ms` |
//! | `T:checkpoint:<p>` | string | the engine's checkpoint bytes |
//! | `T:results:<p>` | string | the snapshot, as [`encode_snapshot`](topsellers_store::partitions::encode_snapshot) writes it |
//! | `T:incoming-checkpoint:<p>`, `T:incoming-results:<p>` | string | a save's new values, for the moment between their `SET` and its script's `RENAME`, inside one `MULTI`/`EXEC` |
//!
//! **One hash tag per namespace.** Redis Cluster places a key by the hash of its tag only, so all keys
//! of a namespace sit in one slot, and one `MULTI`/`EXEC` or Lua script may read and write several of
//! them at once: that is what makes claim (epoch, checkpoint, mark) and save (epoch check, checkpoint,
//! results, mark) single atomic steps in a cluster too. That is fine because a namespace is small: two
//! keys, three per partition (and two more for the instant of a save), tens of megabytes of checkpoints
//! at most, and a few writes per second per partition. The cost: one namespace lives on one shard, so
//! its load and memory do not spread over the cluster (and a reshard of its slot moves all of it at
//! once); different namespaces (topics, consumer groups) spread as usual. One topic whose state outgrows
//! a shard is the limit of this layout.
//!
//! **Exact numbers.** Counts inside a snapshot are exact because the snapshot is stored as the codec's
//! bytes, never as sorted-set scores (doubles, exact only up to 2^53). Epochs, offsets and versions are
//! written and compared by the scripts as decimal strings, never as Lua numbers (doubles too); epochs
//! are incremented with `HINCRBY`, which counts in 64-bit integers.
//!
//! # What each operation does
//!
//! Each operation is one `MULTI`/`EXEC` transaction, so that no other client's command runs between its
//! checks and its writes, nor between the reads of one load; the rules are in one Lua script per writing
//! operation (`src/lua/`, called by `EVALSHA`, or `EVAL` on `NOSCRIPT`):
//! - `bind` records the binding, or compares it (partition count first, then settings);
//! - `claim` checks the binding and the partition number, increments the epoch and returns it with the
//!   checkpoint's offset and the results mark; a `GET` of the checkpoint state follows in the same
//!   transaction;
//! - `save_checkpoint` and `save_results` first `SET` the new state and snapshot to the partition's
//!   incoming keys; their script then checks the epoch (fencing), the checkpoint offset and the results
//!   rule ([`ResultsMark::may_be_replaced_by`](topsellers_store::ResultsMark::may_be_replaced_by)) before
//!   its first write, and either `RENAME`s the incoming values into place and updates the marks, or
//!   deletes them and changes nothing;
//! - `load_results` reads mark, checksum and snapshot in one transaction (no torn reads);
//!   `result_versions` is one `HGETALL`.
//!
//! Big values never pass through Lua. A script holds up every other client of the server while it runs,
//! and a Lua string is one more copy: a 20 MB value took 40 to 85 ms of the server inside a script,
//! against 2 ms for a plain `SET` (server time on this 2-core machine). With the incoming keys, a 20 MB
//! checkpoint save holds the server for about 4 ms (its script's `RENAME`, which frees the replaced
//! value), a claim for about 20 ms (the `GET` of 20 MB).
//!
//! Checkpoint state and snapshots carry an xxh3 checksum, checked on every read, so damaged or foreign
//! bytes are reported ([`StoreError::CorruptPartition`](topsellers_store::StoreError::CorruptPartition)),
//! never decoded into wrong state. A 20 MB checkpoint is one Redis string (the limit is 512 MB).
//!
//! Latency on this 2-core machine over loopback, p50 (p99), standalone / 3-master cluster, from
//! `cargo run --release -p topsellers-redis --example latency`:
//!
//! | call | standalone | cluster |
//! |---|---:|---:|
//! | `claim`, no checkpoint | 0.04 (0.13) ms | 0.05 (0.37) ms |
//! | `save_results`, 50 categories (55 KB) | 0.11 (0.22) ms | 0.13 (1.2) ms |
//! | `save_results`, 2000 categories (2.3 MB) | 12 (18) ms | 7 (11) ms |
//! | `result_versions`, 24 partitions | 0.03 (0.09) ms | 0.03 (0.08) ms |
//! | `load_results`, 2000 categories | 13 (29) ms | 12 (26) ms |
//! | `save_checkpoint`, 20 MB | 42 (60) ms | 41 (50) ms |
//! | `claim` returning a 20 MB checkpoint | 38 (54) ms | 39 (51) ms |
//!
//! The big ones are mostly the client's work: encoding or decoding 60 000 ranked items, copying and
//! moving 20 MB (a plain `SET` of 20 MB alone took 40 to 50 ms here).
//!
//! # Expiry
//!
//! Results of a namespace that nobody writes any more should not stay for ever: every key of a namespace
//! gets a TTL of [`RedisSettings::key_ttl_secs`] (default 7 days; 0 = never), set again by every write
//! (bind, claim, saves). The namespace expires as a whole, never in parts: whichever partition is
//! written, all keys of the namespace get the TTL again at least every TTL/64, so a quiet partition's
//! checkpoint never expires while the others are written (its next owner would start it from nothing).
//! Reads do not extend it. Choose the TTL longer than any outage you want to resume from: an expired
//! namespace starts over, empty.
//!
//! # Durability and the Redis it needs
//!
//! A save returns `Ok` once Redis executed it. It survives a Redis crash only as far as Redis persists
//! it: run Redis with `appendonly yes` and `appendfsync always` (with `everysec` a crash may lose the
//! last second of saves, claims included, and an epoch that goes back breaks fencing). Replication is
//! asynchronous: a replica promoted by a failover (Sentinel, or Redis Cluster) may miss the last writes
//! its primary acknowledged, with the same consequence; the store does not wait for replicas (`WAIT`).
//! Redis must not evict keys: [`RedisPartitionStore::open`] refuses a server whose `maxmemory-policy` is
//! `allkeys-*`, or `volatile-*` while keys have a TTL, and warns (`tracing`) about one without an
//! append-only file.
//!
//! # Connections
//!
//! Synchronous connections (`redis::Connection`, `redis::cluster::ClusterConnection`), a small pool per
//! handle, so the store needs no async runtime and can be called from plain threads and from
//! `spawn_blocking` threads of any tokio runtime alike. A connection that breaks is replaced at the next
//! call; a call that finds its connection dropped by the server (restart, `CLIENT KILL`, idle timeout) is
//! made once more on a new one. In a cluster, a namespace whose slot moved to another node (resharding)
//! is followed: the `MOVED` that comes back inside an aborted `MULTI`/`EXEC` makes the call start over on
//! a new connection, which reads the slot map afresh. Connections name themselves
//! `topsellers:<namespace>` (`CLIENT LIST`).
//!
//! Every operation may be repeated safely: a repeated save is accepted as an exact repeat, a repeated
//! claim takes one more epoch. That matters because of the one place where a network store cannot keep
//! the trait's "a failed call changed nothing": every refusal changes nothing, but a call whose reply
//! was lost (timeout, dropped connection) may have been carried out.
//!
//! Errors are [`StoreError`](topsellers_store::StoreError)s naming the store ([`describe`]), the
//! operation and the fix: the rules of the trait (`Fenced`, `ResultsBehind`, ...) as in every backend;
//! an unreachable or failing Redis as `StoreError::Io` (retry later); a refused password or ACL as
//! `StoreError::PermissionDenied`.
//!
//! [`describe`]: topsellers_store::PartitionStore::describe

mod conn;
mod scripts;
mod settings;
mod store;

pub use settings::{RedisSettings, DEFAULT_KEY_TTL_SECS};
pub use store::RedisPartitionStore;
