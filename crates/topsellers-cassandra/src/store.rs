//! [`CassandraPartitionStore`]: the partition store in an Apache Cassandra keyspace.
//!
//! # How a save stays all or nothing without multi-partition transactions
//!
//! Every partition has one small row in `partitions`: its epoch, a change counter `seq`, and
//! *pointers* to its checkpoint and results blobs (generation id, length, chunk count, checksum,
//! offset, version). The blobs themselves live in `blob_chunks`, in chunks of [`CHUNK_BYTES`], under a
//! generation id that is new for every save and never written again. A save:
//! 1. records the new generation ids in `pending_blobs` (so a crash from here on leaves nothing that a
//!    later claim cannot find and delete);
//! 2. writes the chunks (idempotent plain writes, a few at a time);
//! 3. flips the pointers with one lightweight transaction on the partition row,
//!    `UPDATE ... IF epoch = <owner's epoch> AND seq = <seq the checks were made against>`. The epoch
//!    condition fences out an old owner; the `seq` condition makes the forward-only checks on offsets
//!    and versions hold at the moment of the write;
//! 4. deletes the generations the flip replaced. When the flip lost (fenced, or refused), the new
//!    generation is deleted instead. When its outcome is unknown (a timeout), a serial read of the row
//!    settles it: a serial read completes or voids any Paxos round in flight, so what it sees is final.
//!
//! Readers follow the pointers: a reader that finds chunks missing (deleted by the next save after it
//! read the pointer) reads the pointer again. Nothing a reader can see is half-written: chunks are
//! written before the pointer to them, and checked against its length and checksum.
//!
//! A claim is a lightweight transaction too (`SET epoch = epoch + 1 ... IF seq = <read>`), preceded by
//! a serial read of the row, so the checkpoint and results it hands out are exactly those at the new
//! epoch's start. It then deletes whatever `pending_blobs` lists that no pointer references and an
//! earlier epoch wrote: the leftovers of a process that died in the middle of a save.
//!
//! # Threads and the driver's runtime
//!
//! The trait is synchronous; the driver is async. Each store (and every [`handle`] made from it) shares
//! one small multi-thread tokio runtime owned by the store. A call spawns its work onto that runtime
//! and waits for the answer on a std channel, so it works from plain threads and from inside another
//! runtime's `spawn_blocking` alike, where `Runtime::block_on` would panic. The runtime is shut down
//! in the background when the last handle is dropped, which is allowed anywhere, even inside an async
//! task.
//!
//! [`handle`]: CassandraPartitionStore::handle

use crate::error::{driver_error, store_error, Op};
use crate::schema::Migrator;
use crate::settings::CassandraSettings;
use crate::StoreError;
use futures_util::{stream, StreamExt, TryStreamExt};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::runtime::Runtime;
use topsellers_store::partitions::{decode_snapshot, encode_snapshot};
use topsellers_store::{
    Claim, PartitionCheckpoint, PartitionResults, PartitionStore, ResultsMark, StoreBinding,
};
use uuid::Uuid;
use xxhash_rust::xxh3::xxh3_64;

/// Size of one chunk of a blob: far below Cassandra's largest mutation (half a commit log segment,
/// 16 MiB by default) and its 16 MiB native-protocol frames, and large enough that a 20 MB checkpoint
/// is 20 writes.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Chunks written or read at the same time by one call: enough to keep a few nodes busy, few enough
/// that a 1-core node does not time out.
const CHUNK_CONCURRENCY: usize = 4;

/// Partition rows read at the same time by `result_versions`.
const MARK_CONCURRENCY: usize = 32;

/// How often a claim retries when other processes claim the same partition at the same moment.
const CLAIM_ATTEMPTS: u32 = 8;

/// How often a save retries its flip when the row changed under it without a new epoch (another handle
/// of the same owner saved in between).
const FLIP_ATTEMPTS: u32 = 5;

/// How often a reader follows a moved pointer before giving up.
const LOAD_ATTEMPTS: u32 = 10;

/// Worker threads of the store's own runtime: the driver needs little CPU (it mostly waits on sockets).
const RUNTIME_THREADS: usize = 2;

/// A partition store in a Cassandra keyspace, opened for one namespace.
///
/// Open once per process with [`open`](Self::open) and make further handles for other namespaces (or
/// the same one) with [`handle`](Self::handle): they share the connections and the runtime. Every
/// method is synchronous and may be called from any thread, including from inside tokio's
/// `spawn_blocking`.
///
/// ```no_run
/// use topsellers_cassandra::{CassandraPartitionStore, CassandraSettings};
/// use topsellers_store::{PartitionStore, StoreBinding};
///
/// let settings = CassandraSettings {
///     contact_points: vec!["10.0.0.1:9042".into(), "10.0.0.2:9042".into()],
///     ..CassandraSettings::default()
/// };
/// let store = CassandraPartitionStore::open(&settings, "purchases")?;
/// store.bind(&StoreBinding { partitions: 12, settings: "bucket_secs=60".into() })?;
/// let claim = store.claim(3)?;
/// println!("{} owns partition 3 at epoch {}", store.describe(), claim.epoch);
/// # Ok::<(), topsellers_store::StoreError>(())
/// ```
pub struct CassandraPartitionStore {
    shared: Arc<Shared>,
    ctx: Ctx,
    /// Per partition: what this handle last knew of the row, behind a lock that also serialises this
    /// handle's claims and saves of the partition.
    rows: Mutex<HashMap<u32, Arc<Mutex<PartitionCache>>>>,
    /// The bound partition count, once seen (it never changes for a namespace).
    partitions: Mutex<Option<u32>>,
}

impl std::fmt::Debug for CassandraPartitionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraPartitionStore")
            .field("store", &self.ctx.store)
            .finish_non_exhaustive()
    }
}

/// What the handles of one open store share.
struct Shared {
    runtime: Option<Runtime>,
    inner: Arc<Inner>,
    settings: CassandraSettings,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which panics inside an async context; shutting it
        // down in the background is allowed everywhere.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The session and its prepared statements, used from the runtime's tasks.
struct Inner {
    session: Session,
    st: Statements,
}

/// Everything a spawned task needs: cheap to clone, `'static`.
#[derive(Clone)]
struct Ctx {
    inner: Arc<Inner>,
    namespace: Arc<str>,
    /// `describe()`.
    store: Arc<str>,
}

struct Statements {
    bind_insert: PreparedStatement,
    binding_get: PreparedStatement,
    row_get_serial: PreparedStatement,
    marks_get: PreparedStatement,
    results_ptr_get: PreparedStatement,
    claim_insert: PreparedStatement,
    claim_update: PreparedStatement,
    flip_results: PreparedStatement,
    flip_checkpoint: PreparedStatement,
    chunk_put: PreparedStatement,
    chunk_get: PreparedStatement,
    chunk_delete: PreparedStatement,
    pending_put: PreparedStatement,
    pending_get: PreparedStatement,
}

/// Where a blob is: its generation and what to check it against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlobRef {
    generation: Uuid,
    len: u64,
    chunks: u32,
    checksum: u64,
}

impl BlobRef {
    fn of(generation: Uuid, bytes: &[u8]) -> BlobRef {
        BlobRef {
            generation,
            len: bytes.len() as u64,
            chunks: bytes.len().div_ceil(CHUNK_BYTES) as u32,
            checksum: xxh3_64(bytes),
        }
    }
}

/// What a handle knows of one partition between calls.
#[derive(Clone, Debug, Default)]
struct PartitionCache {
    /// The row as of this handle's last claim or save; `None` when unknown.
    row: Option<RowState>,
    /// Generations of saves whose outcome stayed unknown (the flip and the serial read after it both
    /// failed): deleted once a later serial read shows that no pointer references them.
    unresolved: Vec<(Uuid, u32)>,
}

/// The partition row as the saves check it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RowState {
    epoch: u64,
    seq: i64,
    owner: Option<Uuid>,
    checkpoint: Option<(BlobRef, i64)>,
    /// Blob, version, offset.
    results: Option<(BlobRef, u64, i64)>,
}

impl RowState {
    fn results_mark(&self, partition: u32) -> Option<ResultsMark> {
        self.results.map(|(_, version, next_offset)| ResultsMark {
            partition,
            version,
            next_offset,
        })
    }
}

#[derive(scylla::DeserializeRow)]
struct RowColumns {
    epoch: Option<i64>,
    seq: Option<i64>,
    owner: Option<Uuid>,
    checkpoint_gen: Option<Uuid>,
    checkpoint_offset: Option<i64>,
    checkpoint_len: Option<i64>,
    checkpoint_chunks: Option<i32>,
    checkpoint_checksum: Option<i64>,
    results_gen: Option<Uuid>,
    results_version: Option<i64>,
    results_offset: Option<i64>,
    results_len: Option<i64>,
    results_chunks: Option<i32>,
    results_checksum: Option<i64>,
}

fn blob_ref(
    generation: Option<Uuid>,
    len: Option<i64>,
    chunks: Option<i32>,
    checksum: Option<i64>,
) -> Option<BlobRef> {
    Some(BlobRef {
        generation: generation?,
        len: len? as u64,
        chunks: chunks? as u32,
        // The checksum's bit pattern is kept; CQL has no unsigned integers.
        checksum: checksum? as u64,
    })
}

impl RowColumns {
    fn into_state(self) -> RowState {
        let checkpoint = blob_ref(
            self.checkpoint_gen,
            self.checkpoint_len,
            self.checkpoint_chunks,
            self.checkpoint_checksum,
        )
        .zip(self.checkpoint_offset);
        let results = blob_ref(
            self.results_gen,
            self.results_len,
            self.results_chunks,
            self.results_checksum,
        )
        .and_then(|b| Some((b, self.results_version? as u64, self.results_offset?)));
        RowState {
            epoch: self.epoch.unwrap_or(0) as u64,
            seq: self.seq.unwrap_or(0),
            owner: self.owner,
            checkpoint,
            results,
        }
    }
}

const ROW_COLUMNS: &str = "epoch, seq, owner, checkpoint_gen, checkpoint_offset, checkpoint_len, \
     checkpoint_chunks, checkpoint_checksum, results_gen, results_version, results_offset, results_len, \
     results_chunks, results_checksum";

/// A save's new content, owned so the runtime's task can hold it.
struct SaveJob {
    op: Op,
    partition: u32,
    epoch: u64,
    checkpoint: Option<(i64, Arc<Vec<u8>>)>,
    results: (ResultsMark, Arc<Vec<u8>>),
}

/// What reading a blob found.
enum BlobRead {
    Whole(Vec<u8>),
    /// A chunk is gone: deleted by a later save (follow the pointer again), or lost.
    Missing,
    /// The bytes differ from the pointer's length or checksum.
    Damaged(String),
}

/// Outcome of a lightweight transaction: whether it applied, and the current values of the columns
/// Cassandra returns when it did not.
pub(crate) struct LwtOutcome {
    pub applied: bool,
    pub columns: HashMap<String, Option<CqlValue>>,
}

impl LwtOutcome {
    fn get(&self, column: &str) -> Option<&CqlValue> {
        self.columns.get(column).and_then(|v| v.as_ref())
    }
}

/// Reads the `[applied]` column and the returned values of a lightweight transaction.
pub(crate) fn lwt_applied(
    result: Result<QueryResult, ExecutionError>,
    store: &str,
    op: Op,
) -> Result<LwtOutcome, StoreError> {
    let rows = result
        .map_err(|e| driver_error(store, op, e))?
        .into_rows_result()
        .map_err(|e| driver_error(store, op, e))?;
    let names: Vec<String> = rows
        .column_specs()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let row = rows
        .maybe_first_row::<Row>()
        .map_err(|e| driver_error(store, op, e))?
        .unwrap_or_default();
    let columns: HashMap<String, Option<CqlValue>> = names.into_iter().zip(row.columns).collect();
    let applied = matches!(
        columns.get("[applied]"),
        Some(Some(CqlValue::Boolean(true)))
    );
    Ok(LwtOutcome { applied, columns })
}

impl CassandraPartitionStore {
    /// Connects to the cluster of `settings`, creates or upgrades the keyspace and its tables (see
    /// the [schema module](crate::schema)), prepares the statements, and opens the store for
    /// `namespace`. Invalid settings, an unreachable cluster and a keyspace written by a newer
    /// topsellers ([`StoreError::NewerSchema`]) are refused.
    pub fn open(
        settings: &CassandraSettings,
        namespace: &str,
    ) -> Result<CassandraPartitionStore, StoreError> {
        let store = describe(settings, namespace);
        let problems = settings.validate();
        if !problems.is_empty() {
            return Err(store_error(
                &store,
                Op::Connect,
                io::ErrorKind::InvalidInput,
                format!(
                    "invalid settings: {}; fix the [cassandra] section",
                    problems.join("; ")
                ),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("topsellers-cassandra")
            .enable_all()
            .build()
            .map_err(|e| {
                store_error(
                    &store,
                    Op::Connect,
                    e.kind(),
                    format!("cannot start the driver's runtime: {e}"),
                )
            })?;
        let connect = {
            let settings = settings.clone();
            let store = store.clone();
            async move {
                let session = connect(&settings, &store).await?;
                Migrator {
                    session: &session,
                    keyspace: &settings.keyspace,
                    replication: &settings.replication,
                    serial: settings.serial_consistency.to_driver(),
                    write: settings.write_consistency.to_driver(),
                    store: &store,
                }
                .run()
                .await?;
                let st = Statements::prepare(&session, &settings, &store).await?;
                Ok(Inner { session, st })
            }
        };
        let inner = match wait(&runtime, &store, Op::Connect, connect) {
            Ok(inner) => inner,
            Err(e) => {
                // As in `Shared::drop`: dropping the runtime here would wait for its tasks, which panics
                // when the caller runs in an async context (`topsellers api` opens the store in one).
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            runtime: Some(runtime),
            inner: Arc::new(inner),
            settings: settings.clone(),
        });
        Ok(CassandraPartitionStore::with_shared(shared, namespace))
    }

    /// Another handle on the same cluster and keyspace, for `namespace` (the same one or another),
    /// sharing this one's connections and runtime; like a second process, it has its own view of the
    /// rows it claims and saves.
    pub fn handle(&self, namespace: &str) -> CassandraPartitionStore {
        CassandraPartitionStore::with_shared(Arc::clone(&self.shared), namespace)
    }

    fn with_shared(shared: Arc<Shared>, namespace: &str) -> CassandraPartitionStore {
        let ctx = Ctx {
            inner: Arc::clone(&shared.inner),
            namespace: namespace.into(),
            store: describe(&shared.settings, namespace).into(),
        };
        CassandraPartitionStore {
            shared,
            ctx,
            rows: Mutex::new(HashMap::new()),
            partitions: Mutex::new(None),
        }
    }

    /// The namespace this handle reads and writes.
    pub fn namespace(&self) -> &str {
        &self.ctx.namespace
    }

    /// The settings the store was opened with.
    pub fn settings(&self) -> &CassandraSettings {
        &self.shared.settings
    }

    /// Runs `work` on the store's runtime and waits for it from this thread.
    fn run<T: Send + 'static>(
        &self,
        op: Op,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let runtime = self
            .shared
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        wait(runtime, &self.ctx.store, op, work)
    }

    fn row_lock(&self, partition: u32) -> Arc<Mutex<PartitionCache>> {
        let mut rows = lock(&self.rows);
        Arc::clone(rows.entry(partition).or_default())
    }

    /// The bound partition count: remembered once seen, read otherwise.
    fn bound_partitions(&self, op: Op) -> Result<Option<u32>, StoreError> {
        if let Some(n) = *lock(&self.partitions) {
            return Ok(Some(n));
        }
        let ctx = self.ctx.clone();
        let found = self.run(op, async move { ctx.binding(op).await })?;
        let n = found.map(|(n, _)| n);
        *lock(&self.partitions) = n;
        Ok(n)
    }

    fn save(&self, job: SaveJob) -> Result<(), StoreError> {
        let cell = self.row_lock(job.partition);
        let mut cached = lock(&cell);
        let ctx = self.ctx.clone();
        let known = cached.clone();
        let op = job.op;
        let (known, result) = self.run(op, async move { Ok(ctx.save(job, known).await) })?;
        *cached = known;
        result
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every writer replaces the
/// value whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spawns `work` on `runtime` and blocks this thread until it is done, without entering the runtime
/// from this thread (so it is fine inside another runtime's `spawn_blocking`).
fn wait<T: Send + 'static>(
    runtime: &Runtime,
    store: &str,
    op: Op,
    work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv().unwrap_or_else(|_| {
        Err(store_error(
            store,
            op,
            io::ErrorKind::Other,
            "the store's driver task stopped without an answer (a panic, or the process is shutting \
             down); retry, and report it if it persists"
                .into(),
        ))
    })
}

fn describe(settings: &CassandraSettings, namespace: &str) -> String {
    format!(
        "cassandra partition store keyspace {} at {} (namespace {namespace})",
        settings.keyspace,
        settings.contact_points.join(",")
    )
}

async fn connect(settings: &CassandraSettings, store: &str) -> Result<Session, StoreError> {
    let profile = ExecutionProfile::builder()
        .consistency(settings.read_consistency.to_driver())
        .serial_consistency(Some(settings.serial_consistency.to_driver()))
        .request_timeout(Some(settings.request_timeout()))
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&settings.contact_points)
        .connection_timeout(settings.connect_timeout())
        .default_execution_profile_handle(profile.into_handle())
        .keyspaces_to_fetch([settings.keyspace.clone()]);
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.user(user, password.expose());
    }
    if let Some(dc) = &settings.local_datacenter {
        builder = builder.prefer_datacenter(dc.clone());
    }
    builder
        .build()
        .await
        .map_err(|e| driver_error(store, Op::Connect, e))
}

impl Statements {
    async fn prepare(
        session: &Session,
        settings: &CassandraSettings,
        store: &str,
    ) -> Result<Statements, StoreError> {
        let ks = &settings.keyspace;
        let read = settings.read_consistency.to_driver();
        let write = settings.write_consistency.to_driver();
        let serial = settings.serial_consistency;
        #[derive(Clone, Copy)]
        enum Kind {
            /// Plain read at the read level.
            Read,
            /// Serial read: sees every committed lightweight transaction.
            SerialRead,
            /// Plain, idempotent write at the write level.
            Write,
            /// Lightweight transaction: Paxos at the serial level, committed at the write level; not
            /// idempotent (a retry after a lost reply could apply it twice).
            Lwt,
        }
        let prepare = |cql: String, kind: Kind| async move {
            let mut st = session
                .prepare(cql)
                .await
                .map_err(|e| driver_error(store, Op::Prepare, e))?;
            match kind {
                Kind::Read => {
                    st.set_consistency(read);
                    st.set_is_idempotent(true);
                }
                Kind::SerialRead => {
                    st.set_consistency(serial.as_read());
                    st.set_is_idempotent(true);
                }
                Kind::Write => {
                    st.set_consistency(write);
                    st.set_is_idempotent(true);
                }
                Kind::Lwt => {
                    st.set_consistency(write);
                    st.set_serial_consistency(Some(serial.to_driver()));
                    st.set_is_idempotent(false);
                }
            }
            Ok::<_, StoreError>(st)
        };
        // `saved_at` is set by the coordinator, which keeps the checkpoint flip at 16 values (the most
        // a tuple binds).
        let flip_results_set =
            "seq = ?, saved_at = toTimestamp(now()), results_gen = ?, results_version = ?, \
             results_offset = ?, results_len = ?, results_chunks = ?, results_checksum = ?";
        Ok(Statements {
            bind_insert: prepare(
                format!(
                    "INSERT INTO {ks}.bindings (namespace, partitions, settings, bound_at) \
                     VALUES (?, ?, ?, ?) IF NOT EXISTS"
                ),
                Kind::Lwt,
            )
            .await?,
            binding_get: prepare(
                format!("SELECT partitions, settings FROM {ks}.bindings WHERE namespace = ?"),
                Kind::Read,
            )
            .await?,
            row_get_serial: prepare(
                format!(
                    "SELECT {ROW_COLUMNS} FROM {ks}.partitions WHERE namespace = ? AND partition = ?"
                ),
                Kind::SerialRead,
            )
            .await?,
            marks_get: prepare(
                format!(
                    "SELECT results_version, results_offset FROM {ks}.partitions \
                     WHERE namespace = ? AND partition = ?"
                ),
                Kind::Read,
            )
            .await?,
            results_ptr_get: prepare(
                format!(
                    "SELECT results_gen, results_version, results_offset, results_len, results_chunks, \
                     results_checksum FROM {ks}.partitions WHERE namespace = ? AND partition = ?"
                ),
                Kind::Read,
            )
            .await?,
            claim_insert: prepare(
                format!(
                    "INSERT INTO {ks}.partitions (namespace, partition, epoch, seq, owner, claimed_at) \
                     VALUES (?, ?, 1, 1, ?, ?) IF NOT EXISTS"
                ),
                Kind::Lwt,
            )
            .await?,
            claim_update: prepare(
                format!(
                    "UPDATE {ks}.partitions SET epoch = ?, seq = ?, owner = ?, claimed_at = ? \
                     WHERE namespace = ? AND partition = ? IF seq = ?"
                ),
                Kind::Lwt,
            )
            .await?,
            flip_results: prepare(
                format!(
                    "UPDATE {ks}.partitions SET {flip_results_set} \
                     WHERE namespace = ? AND partition = ? IF epoch = ? AND seq = ?"
                ),
                Kind::Lwt,
            )
            .await?,
            flip_checkpoint: prepare(
                format!(
                    "UPDATE {ks}.partitions SET {flip_results_set}, checkpoint_gen = ?, \
                     checkpoint_offset = ?, checkpoint_len = ?, checkpoint_chunks = ?, checkpoint_checksum = ? \
                     WHERE namespace = ? AND partition = ? IF epoch = ? AND seq = ?"
                ),
                Kind::Lwt,
            )
            .await?,
            chunk_put: prepare(
                format!(
                    "INSERT INTO {ks}.blob_chunks (namespace, partition, generation, chunk, data, written_at) \
                     VALUES (?, ?, ?, ?, ?, ?)"
                ),
                Kind::Write,
            )
            .await?,
            chunk_get: prepare(
                format!(
                    "SELECT data FROM {ks}.blob_chunks \
                     WHERE namespace = ? AND partition = ? AND generation = ? AND chunk = ?"
                ),
                Kind::Read,
            )
            .await?,
            chunk_delete: prepare(
                format!(
                    "DELETE FROM {ks}.blob_chunks \
                     WHERE namespace = ? AND partition = ? AND generation = ? AND chunk = ?"
                ),
                Kind::Write,
            )
            .await?,
            pending_put: prepare(
                format!(
                    "INSERT INTO {ks}.pending_blobs (namespace, partition, kind, generation, chunks, epoch, \
                     written_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                Kind::Write,
            )
            .await?,
            pending_get: prepare(
                format!(
                    "SELECT kind, generation, chunks, epoch FROM {ks}.pending_blobs \
                     WHERE namespace = ? AND partition = ?"
                ),
                Kind::Read,
            )
            .await?,
        })
    }
}

impl Ctx {
    fn st(&self) -> &Statements {
        &self.inner.st
    }

    fn session(&self) -> &Session {
        &self.inner.session
    }

    fn err<E: std::error::Error + 'static>(&self, op: Op) -> impl Fn(E) -> StoreError + '_ {
        move |e| driver_error(&self.store, op, e)
    }

    fn corrupt(&self, partition: u32, what: &'static str, detail: String) -> StoreError {
        StoreError::CorruptPartition {
            store: self.store.to_string(),
            partition,
            what,
            detail,
        }
    }

    fn fenced(&self, partition: u32, epoch: u64, current: u64) -> StoreError {
        StoreError::Fenced {
            store: self.store.to_string(),
            partition,
            epoch,
            current,
        }
    }

    /// The stored binding of the namespace: partition count and settings.
    async fn binding(&self, op: Op) -> Result<Option<(u32, String)>, StoreError> {
        let rows = self
            .session()
            .execute_unpaged(&self.st().binding_get, (&*self.namespace,))
            .await
            .map_err(self.err(op))?
            .into_rows_result()
            .map_err(self.err(op))?;
        let row = rows
            .maybe_first_row::<(Option<i32>, Option<String>)>()
            .map_err(self.err(op))?;
        Ok(row.and_then(|(n, s)| Some((n? as u32, s.unwrap_or_default()))))
    }

    async fn bind(&self, binding: StoreBinding) -> Result<(), StoreError> {
        let op = Op::Bind;
        let result = self
            .session()
            .execute_unpaged(
                &self.st().bind_insert,
                (
                    &*self.namespace,
                    binding.partitions as i32,
                    &binding.settings,
                    now(),
                ),
            )
            .await;
        let outcome = lwt_applied(result, &self.store, op)?;
        if outcome.applied {
            return Ok(());
        }
        let stored_partitions = match outcome.get("partitions") {
            Some(CqlValue::Int(n)) => *n as u32,
            other => {
                return Err(store_error(
                    &self.store,
                    op,
                    io::ErrorKind::InvalidData,
                    format!(
                        "the stored binding has no partition count ({other:?}); delete the namespace's row \
                         from the bindings table and bind again"
                    ),
                ))
            }
        };
        let stored_settings = match outcome.get("settings") {
            Some(CqlValue::Text(s)) => s.clone(),
            _ => String::new(),
        };
        if stored_partitions != binding.partitions {
            return Err(StoreError::PartitionCountChanged {
                store: self.store.to_string(),
                stored: stored_partitions,
                given: binding.partitions,
            });
        }
        if stored_settings != binding.settings {
            return Err(StoreError::SettingsChanged {
                store: self.store.to_string(),
                stored: stored_settings,
                given: binding.settings,
            });
        }
        Ok(())
    }

    /// The partition row as of every committed lightweight transaction; `None` if never claimed.
    async fn row_serial(&self, partition: u32, op: Op) -> Result<Option<RowState>, StoreError> {
        let rows = self
            .session()
            .execute_unpaged(
                &self.st().row_get_serial,
                (&*self.namespace, partition as i32),
            )
            .await
            .map_err(self.err(op))?
            .into_rows_result()
            .map_err(self.err(op))?;
        let row = rows.maybe_first_row::<RowColumns>().map_err(self.err(op))?;
        Ok(row.map(RowColumns::into_state))
    }

    async fn claim(
        &self,
        partition: u32,
        partitions: Option<u32>,
        unresolved: Vec<(Uuid, u32)>,
    ) -> (PartitionCache, Result<Claim, StoreError>) {
        let op = Op::Claim;
        let unknown = |unresolved: Vec<(Uuid, u32)>| PartitionCache {
            row: None,
            unresolved,
        };
        let partitions = match partitions {
            Some(n) => n,
            None => match self.binding(op).await {
                Ok(Some((n, _))) => n,
                Ok(None) => {
                    return (
                        unknown(unresolved),
                        Err(StoreError::NotBound {
                            store: self.store.to_string(),
                        }),
                    )
                }
                Err(e) => return (unknown(unresolved), Err(e)),
            },
        };
        if partition >= partitions {
            return (
                unknown(unresolved),
                Err(StoreError::PartitionOutOfRange {
                    store: self.store.to_string(),
                    partition,
                    partitions,
                }),
            );
        }
        let state = match self.take_over(partition).await {
            Ok(state) => state,
            Err(e) => return (unknown(unresolved), Err(e)),
        };
        // The serial read and the transaction of the take-over settled every earlier flip.
        self.settle(partition, &state, unresolved).await;
        self.sweep_pending(partition, &state).await;
        let checkpoint = match state.checkpoint {
            None => None,
            Some((blob, next_offset)) => match self.read_blob(partition, blob, op).await {
                Ok(BlobRead::Whole(bytes)) => Some(PartitionCheckpoint {
                    next_offset,
                    state: bytes,
                }),
                Ok(BlobRead::Missing) => {
                    // Only a newer owner's save deletes a live checkpoint; otherwise it is lost.
                    let err = match self.row_serial(partition, op).await {
                        Ok(Some(row)) if row.epoch != state.epoch => {
                            self.fenced(partition, state.epoch, row.epoch)
                        }
                        Ok(_) => self.corrupt(
                            partition,
                            "checkpoint",
                            format!("chunks of generation {} are missing", blob.generation),
                        ),
                        Err(e) => e,
                    };
                    return (PartitionCache::default(), Err(err));
                }
                Ok(BlobRead::Damaged(detail)) => {
                    return (
                        PartitionCache::default(),
                        Err(self.corrupt(partition, "checkpoint", detail)),
                    )
                }
                Err(e) => return (PartitionCache::default(), Err(e)),
            },
        };
        let results = state.results_mark(partition);
        let claim = Claim {
            epoch: state.epoch,
            checkpoint,
            results,
        };
        let known = PartitionCache {
            row: Some(state),
            unresolved: Vec::new(),
        };
        (known, Ok(claim))
    }

    /// Moves the row to the next epoch; returns the row as of that moment.
    async fn take_over(&self, partition: u32) -> Result<RowState, StoreError> {
        let op = Op::Claim;
        for attempt in 0..CLAIM_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let row = self.row_serial(partition, op).await?;
            let owner = Uuid::new_v4();
            let (result, next) = match &row {
                None => (
                    self.session()
                        .execute_unpaged(
                            &self.st().claim_insert,
                            (&*self.namespace, partition as i32, owner, now()),
                        )
                        .await,
                    RowState {
                        epoch: 1,
                        seq: 1,
                        owner: Some(owner),
                        checkpoint: None,
                        results: None,
                    },
                ),
                Some(row) => (
                    self.session()
                        .execute_unpaged(
                            &self.st().claim_update,
                            (
                                (row.epoch + 1) as i64,
                                row.seq + 1,
                                owner,
                                now(),
                                &*self.namespace,
                                partition as i32,
                                row.seq,
                            ),
                        )
                        .await,
                    RowState {
                        epoch: row.epoch + 1,
                        seq: row.seq + 1,
                        owner: Some(owner),
                        ..row.clone()
                    },
                ),
            };
            match lwt_applied(result, &self.store, op) {
                Ok(outcome) if outcome.applied => return Ok(next),
                Ok(_) => continue, // another process claimed in between: read again
                Err(e) => {
                    // Unknown outcome: a serial read settles it (the owner id is this attempt's own).
                    match self.row_serial(partition, op).await {
                        Ok(Some(now)) if now.owner == Some(owner) => return Ok(now),
                        Ok(_) => tracing::debug!(
                            store = &*self.store,
                            partition,
                            error = %e,
                            "a claim failed; trying again"
                        ),
                        Err(_) => return Err(e),
                    }
                }
            }
        }
        Err(store_error(
            &self.store,
            op,
            io::ErrorKind::WouldBlock,
            format!(
                "partition {partition} was claimed by other processes at the same time {CLAIM_ATTEMPTS} times in \
                 a row; give every partition one owner (one consumer group), then retry"
            ),
        ))
    }

    /// Deletes the blobs a process that died in the middle of a save left behind: those the pending
    /// slots name that no pointer of `state` references and that an earlier epoch wrote. Failures are
    /// logged, not returned: garbage is no reason to refuse a claim.
    async fn sweep_pending(&self, partition: u32, state: &RowState) {
        let rows = async {
            let rows = self
                .session()
                .execute_unpaged(&self.st().pending_get, (&*self.namespace, partition as i32))
                .await
                .map_err(self.err(Op::Claim))?
                .into_rows_result()
                .map_err(self.err(Op::Claim))?;
            rows.rows::<(String, Option<Uuid>, Option<i32>, Option<i64>)>()
                .map_err(self.err(Op::Claim))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.err(Op::Claim))
        }
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(store = &*self.store, partition, error = %e, "cannot list pending blobs");
                return;
            }
        };
        let live = [
            state.checkpoint.map(|(b, _)| b.generation),
            state.results.map(|(b, _, _)| b.generation),
        ];
        for (kind, generation, chunks, epoch) in rows {
            let (Some(generation), Some(chunks), Some(epoch)) = (generation, chunks, epoch) else {
                continue;
            };
            if live.contains(&Some(generation)) || epoch as u64 >= state.epoch {
                continue;
            }
            tracing::info!(
                store = &*self.store,
                partition,
                kind,
                %generation,
                "deleting a blob an earlier owner left unfinished"
            );
            self.delete_blob(partition, generation, chunks as u32).await;
        }
    }

    /// Checks a save against the row: the epoch, then the checkpoint and results rules.
    fn check(&self, row: &RowState, job: &SaveJob) -> Result<(), StoreError> {
        if row.epoch != job.epoch {
            return Err(self.fenced(job.partition, job.epoch, row.epoch));
        }
        if let Some((offset, _)) = &job.checkpoint {
            if let Some((_, stored)) = row.checkpoint.filter(|(_, stored)| offset < stored) {
                return Err(StoreError::PartitionCheckpointBehind {
                    store: self.store.to_string(),
                    partition: job.partition,
                    next_offset: *offset,
                    stored,
                });
            }
        }
        let new = job.results.0;
        if let Some(stored) = row.results_mark(job.partition) {
            if !stored.may_be_replaced_by(&new) {
                return Err(StoreError::ResultsBehind {
                    store: self.store.to_string(),
                    partition: job.partition,
                    next_offset: new.next_offset,
                    version: new.version,
                    stored_offset: stored.next_offset,
                    stored_version: stored.version,
                });
            }
        }
        Ok(())
    }

    /// Deletes the generations of unknown saves that `row` (read with a serial read, so every flip
    /// before it is settled) does not reference.
    async fn settle(&self, partition: u32, row: &RowState, unresolved: Vec<(Uuid, u32)>) {
        let live = [
            row.checkpoint.map(|(b, _)| b.generation),
            row.results.map(|(b, _, _)| b.generation),
        ];
        for (generation, chunks) in unresolved {
            if !live.contains(&Some(generation)) {
                self.delete_blob(partition, generation, chunks).await;
            }
        }
    }

    /// A save: checks, pending slots, chunks, the flip, then the cleanup (see the module docs).
    /// Returns what is known of the partition afterwards, for the handle's cache, with the outcome.
    async fn save(
        &self,
        job: SaveJob,
        cached: PartitionCache,
    ) -> (PartitionCache, Result<(), StoreError>) {
        let (op, partition) = (job.op, job.partition);
        let PartitionCache {
            row: cached,
            mut unresolved,
        } = cached;
        let known = |row: Option<RowState>| PartitionCache {
            row,
            unresolved: Vec::new(),
        };
        let mut row = match cached.filter(|row| row.epoch == job.epoch) {
            Some(row) => row,
            None => match self.row_serial(partition, op).await {
                Ok(Some(row)) => {
                    self.settle(partition, &row, std::mem::take(&mut unresolved))
                        .await;
                    row
                }
                Ok(None) => {
                    let empty = RowState {
                        epoch: 0,
                        seq: 0,
                        owner: None,
                        checkpoint: None,
                        results: None,
                    };
                    self.settle(partition, &empty, unresolved).await;
                    return (known(None), Err(self.fenced(partition, job.epoch, 0)));
                }
                Err(e) => {
                    let cache = PartitionCache {
                        row: None,
                        unresolved,
                    };
                    return (cache, Err(e));
                }
            },
        };
        debug_assert!(
            unresolved.is_empty(),
            "unresolved saves come with an unknown row"
        );
        if let Err(e) = self.check(&row, &job) {
            return (known(Some(row)), Err(e));
        }
        let results_blob = BlobRef::of(Uuid::new_v4(), &job.results.1);
        let checkpoint_blob = job
            .checkpoint
            .as_ref()
            .map(|(_, bytes)| BlobRef::of(Uuid::new_v4(), bytes));
        let mut new_blobs = vec![(results_blob, Arc::clone(&job.results.1), "results")];
        if let (Some(blob), Some((_, bytes))) = (checkpoint_blob, &job.checkpoint) {
            new_blobs.push((blob, Arc::clone(bytes), "checkpoint"));
        }
        if let Err(e) = self.write_blobs(partition, job.epoch, &new_blobs, op).await {
            self.delete_blobs(partition, &new_blobs).await;
            return (known(Some(row)), Err(e));
        }
        for _ in 0..FLIP_ATTEMPTS {
            let result = self.flip(&job, &row, results_blob, checkpoint_blob).await;
            let next = RowState {
                seq: row.seq + 1,
                results: Some((
                    results_blob,
                    job.results.0.version,
                    job.results.0.next_offset,
                )),
                checkpoint: match (checkpoint_blob, &job.checkpoint) {
                    (Some(blob), Some((offset, _))) => Some((blob, *offset)),
                    _ => row.checkpoint,
                },
                ..row.clone()
            };
            match lwt_applied(result, &self.store, op) {
                Ok(outcome) if outcome.applied => {
                    self.delete_replaced(partition, &row, &next).await;
                    return (known(Some(next)), Ok(()));
                }
                Ok(_) => {
                    // Not applied, for sure: the epoch or the row moved. Read it again, check again.
                    row = match self.row_serial(partition, op).await {
                        Ok(Some(fresh)) => fresh,
                        Ok(None) => {
                            self.delete_blobs(partition, &new_blobs).await;
                            return (known(None), Err(self.fenced(partition, job.epoch, 0)));
                        }
                        Err(e) => {
                            self.delete_blobs(partition, &new_blobs).await;
                            return (known(None), Err(e));
                        }
                    };
                    if let Err(e) = self.check(&row, &job) {
                        self.delete_blobs(partition, &new_blobs).await;
                        return (known(Some(row)), Err(e));
                    }
                }
                Err(e) => {
                    // Unknown outcome: settle it with a serial read.
                    return match self.row_serial(partition, op).await {
                        Ok(Some(fresh))
                            if fresh.results.map(|(b, _, _)| b.generation)
                                == Some(results_blob.generation) =>
                        {
                            self.delete_replaced(partition, &row, &fresh).await;
                            (known(Some(fresh)), Ok(()))
                        }
                        Ok(fresh) => {
                            self.delete_blobs(partition, &new_blobs).await;
                            (known(fresh), Err(e))
                        }
                        // Still unknown: keep the chunks, and delete them once a later serial read
                        // shows they were not flipped in (or let a later claim's sweep do it).
                        Err(_) => {
                            let unresolved = new_blobs
                                .iter()
                                .map(|(b, _, _)| (b.generation, b.chunks))
                                .collect();
                            let cache = PartitionCache {
                                row: None,
                                unresolved,
                            };
                            (cache, Err(e))
                        }
                    };
                }
            }
        }
        self.delete_blobs(partition, &new_blobs).await;
        let err = store_error(
            &self.store,
            op,
            io::ErrorKind::WouldBlock,
            format!(
                "partition {partition} changed under this save {FLIP_ATTEMPTS} times in a row without a new \
                 epoch; save each partition from one thread of its owner at a time"
            ),
        );
        (known(None), Err(err))
    }

    async fn flip(
        &self,
        job: &SaveJob,
        row: &RowState,
        results: BlobRef,
        checkpoint: Option<BlobRef>,
    ) -> Result<QueryResult, ExecutionError> {
        let ns = &*self.namespace;
        let p = job.partition as i32;
        let mark = job.results.0;
        let (epoch, seq) = (job.epoch as i64, row.seq);
        match (checkpoint, &job.checkpoint) {
            (Some(cp), Some((offset, _))) => {
                let values = (
                    seq + 1,
                    results.generation,
                    mark.version as i64,
                    mark.next_offset,
                    results.len as i64,
                    results.chunks as i32,
                    results.checksum as i64,
                    cp.generation,
                    *offset,
                    cp.len as i64,
                    cp.chunks as i32,
                    cp.checksum as i64,
                    ns,
                    p,
                    epoch,
                    seq,
                );
                self.session()
                    .execute_unpaged(&self.st().flip_checkpoint, values)
                    .await
            }
            _ => {
                let values = (
                    seq + 1,
                    results.generation,
                    mark.version as i64,
                    mark.next_offset,
                    results.len as i64,
                    results.chunks as i32,
                    results.checksum as i64,
                    ns,
                    p,
                    epoch,
                    seq,
                );
                self.session()
                    .execute_unpaged(&self.st().flip_results, values)
                    .await
            }
        }
    }

    /// Records the new blobs in their pending slots, then writes their chunks.
    async fn write_blobs(
        &self,
        partition: u32,
        epoch: u64,
        blobs: &[(BlobRef, Arc<Vec<u8>>, &'static str)],
        op: Op,
    ) -> Result<(), StoreError> {
        let ns = &*self.namespace;
        let p = partition as i32;
        let written_at = now();
        futures_util::future::try_join_all(blobs.iter().map(|(blob, _, kind)| {
            self.session().execute_unpaged(
                &self.st().pending_put,
                (
                    ns,
                    p,
                    *kind,
                    blob.generation,
                    blob.chunks as i32,
                    epoch as i64,
                    written_at,
                ),
            )
        }))
        .await
        .map_err(self.err(op))?;
        let chunks: Vec<(Uuid, usize, Arc<Vec<u8>>)> = blobs
            .iter()
            .flat_map(|(blob, bytes, _)| {
                (0..blob.chunks as usize).map(|i| (blob.generation, i, Arc::clone(bytes)))
            })
            .collect();
        stream::iter(chunks)
            .map(|(generation, i, bytes)| {
                let ctx = self.clone();
                async move {
                    let data = &bytes[i * CHUNK_BYTES..((i + 1) * CHUNK_BYTES).min(bytes.len())];
                    ctx.session()
                        .execute_unpaged(
                            &ctx.st().chunk_put,
                            (&*ctx.namespace, p, generation, i as i32, data, written_at),
                        )
                        .await
                }
            })
            .buffer_unordered(CHUNK_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(self.err(op))
    }

    async fn delete_blobs(&self, partition: u32, blobs: &[(BlobRef, Arc<Vec<u8>>, &'static str)]) {
        for (blob, _, _) in blobs {
            self.delete_blob(partition, blob.generation, blob.chunks)
                .await;
        }
    }

    /// Deletes the generations that `after` no longer references but `before` did.
    async fn delete_replaced(&self, partition: u32, before: &RowState, after: &RowState) {
        let old_results = before.results.map(|(b, _, _)| b);
        let new_results = after.results.map(|(b, _, _)| b.generation);
        if let Some(b) = old_results.filter(|b| Some(b.generation) != new_results) {
            self.delete_blob(partition, b.generation, b.chunks).await;
        }
        let old_checkpoint = before.checkpoint.map(|(b, _)| b);
        let new_checkpoint = after.checkpoint.map(|(b, _)| b.generation);
        if let Some(b) = old_checkpoint.filter(|b| Some(b.generation) != new_checkpoint) {
            self.delete_blob(partition, b.generation, b.chunks).await;
        }
    }

    /// Deletes the chunks of a generation. Best effort: a failure leaves garbage, never wrong data
    /// (no pointer references the generation), so it is logged, not returned.
    async fn delete_blob(&self, partition: u32, generation: Uuid, chunks: u32) {
        let p = partition as i32;
        let result = stream::iter(0..chunks as i32)
            .map(|i| {
                let ctx = self.clone();
                async move {
                    ctx.session()
                        .execute_unpaged(
                            &ctx.st().chunk_delete,
                            (&*ctx.namespace, p, generation, i),
                        )
                        .await
                }
            })
            .buffer_unordered(CHUNK_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await;
        if let Err(e) = result {
            tracing::warn!(
                store = &*self.store,
                partition,
                %generation,
                error = %e,
                "cannot delete a replaced blob; it stays as garbage"
            );
        }
    }

    async fn read_blob(
        &self,
        partition: u32,
        blob: BlobRef,
        op: Op,
    ) -> Result<BlobRead, StoreError> {
        let p = partition as i32;
        let chunks: Vec<Option<Vec<u8>>> = stream::iter(0..blob.chunks as i32)
            .map(|i| {
                let ctx = self.clone();
                async move {
                    let rows = ctx
                        .session()
                        .execute_unpaged(
                            &ctx.st().chunk_get,
                            (&*ctx.namespace, p, blob.generation, i),
                        )
                        .await
                        .map_err(ctx.err(op))?
                        .into_rows_result()
                        .map_err(ctx.err(op))?;
                    let row = rows
                        .maybe_first_row::<(Option<Vec<u8>>,)>()
                        .map_err(ctx.err(op))?;
                    Ok::<_, StoreError>(row.and_then(|(data,)| data))
                }
            })
            .buffered(CHUNK_CONCURRENCY)
            .try_collect()
            .await?;
        if chunks.iter().any(Option::is_none) {
            return Ok(BlobRead::Missing);
        }
        let mut bytes = Vec::with_capacity(blob.len as usize);
        for chunk in chunks.into_iter().flatten() {
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != blob.len {
            return Ok(BlobRead::Damaged(format!(
                "generation {} has {} bytes, its pointer says {}",
                blob.generation,
                bytes.len(),
                blob.len
            )));
        }
        let actual = xxh3_64(&bytes);
        if actual != blob.checksum {
            return Ok(BlobRead::Damaged(format!(
                "checksum mismatch in generation {}: stored {:016x}, computed {actual:016x}",
                blob.generation, blob.checksum
            )));
        }
        Ok(BlobRead::Whole(bytes))
    }

    async fn result_versions(&self, partitions: u32) -> Result<Vec<ResultsMark>, StoreError> {
        let op = Op::ResultVersions;
        let marks: Vec<Option<ResultsMark>> = stream::iter(0..partitions)
            .map(|partition| {
                let ctx = self.clone();
                async move {
                    let rows = ctx
                        .session()
                        .execute_unpaged(&ctx.st().marks_get, (&*ctx.namespace, partition as i32))
                        .await
                        .map_err(ctx.err(op))?
                        .into_rows_result()
                        .map_err(ctx.err(op))?;
                    let row = rows
                        .maybe_first_row::<(Option<i64>, Option<i64>)>()
                        .map_err(ctx.err(op))?;
                    Ok::<_, StoreError>(match row {
                        Some((Some(version), Some(next_offset))) => Some(ResultsMark {
                            partition,
                            version: version as u64,
                            next_offset,
                        }),
                        _ => None,
                    })
                }
            })
            .buffered(MARK_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(marks.into_iter().flatten().collect())
    }

    async fn load_results(&self, partition: u32) -> Result<Option<PartitionResults>, StoreError> {
        let op = Op::LoadResults;
        let mut last_failed: Option<BlobRef> = None;
        for _ in 0..LOAD_ATTEMPTS {
            let rows = self
                .session()
                .execute_unpaged(
                    &self.st().results_ptr_get,
                    (&*self.namespace, partition as i32),
                )
                .await
                .map_err(self.err(op))?
                .into_rows_result()
                .map_err(self.err(op))?;
            type Ptr = (
                Option<Uuid>,
                Option<i64>,
                Option<i64>,
                Option<i64>,
                Option<i32>,
                Option<i64>,
            );
            let Some((generation, version, next_offset, len, chunks, checksum)) =
                rows.maybe_first_row::<Ptr>().map_err(self.err(op))?
            else {
                return Ok(None);
            };
            let (Some(blob), Some(version), Some(next_offset)) = (
                blob_ref(generation, len, chunks, checksum),
                version,
                next_offset,
            ) else {
                return Ok(None);
            };
            let failure = match self.read_blob(partition, blob, op).await? {
                BlobRead::Whole(bytes) => {
                    let snapshot = decode_snapshot(&bytes)
                        .map_err(|detail| self.corrupt(partition, "results", detail))?;
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
                    return Ok(Some(PartitionResults {
                        next_offset,
                        snapshot,
                    }));
                }
                BlobRead::Missing => {
                    format!("chunks of generation {} are missing", blob.generation)
                }
                BlobRead::Damaged(detail) => detail,
            };
            // Deleted by a save that came after the pointer was read: read the pointer again. The same
            // pointer failing twice is damage, not a race.
            if last_failed == Some(blob) {
                return Err(self.corrupt(partition, "results", failure));
            }
            last_failed = Some(blob);
        }
        Err(store_error(
            &self.store,
            op,
            io::ErrorKind::WouldBlock,
            format!(
                "the results of partition {partition} were replaced {LOAD_ATTEMPTS} times while being read; \
                 retry (saves come faster than this reader reads)"
            ),
        ))
    }
}

/// A short, jittered pause before retrying a contended claim.
async fn backoff(attempt: u32) {
    let jitter = (Uuid::new_v4().as_u128() % 10) as u64;
    let ms = (5u64 << attempt.min(5)) + jitter;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn now() -> CqlTimestamp {
    CqlTimestamp(wall_clock_ms())
}

pub(crate) fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl PartitionStore for CassandraPartitionStore {
    fn bind(&self, binding: &StoreBinding) -> Result<(), StoreError> {
        let ctx = self.ctx.clone();
        let binding = binding.clone();
        let partitions = binding.partitions;
        self.run(Op::Bind, async move { ctx.bind(binding).await })?;
        *lock(&self.partitions) = Some(partitions);
        Ok(())
    }

    fn claim(&self, partition: u32) -> Result<Claim, StoreError> {
        let known = *lock(&self.partitions);
        let cell = self.row_lock(partition);
        let mut cached = lock(&cell);
        let ctx = self.ctx.clone();
        let unresolved = std::mem::take(&mut cached.unresolved);
        let (known, result) = self.run(Op::Claim, async move {
            Ok(ctx.claim(partition, known, unresolved).await)
        })?;
        *cached = known;
        result
    }

    fn save_checkpoint(
        &self,
        partition: u32,
        epoch: u64,
        checkpoint: &PartitionCheckpoint,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        let job = SaveJob {
            op: Op::SaveCheckpoint,
            partition,
            epoch,
            checkpoint: Some((checkpoint.next_offset, Arc::new(checkpoint.state.clone()))),
            results: (
                results.mark(partition),
                Arc::new(encode_snapshot(&results.snapshot)),
            ),
        };
        self.save(job)
    }

    fn save_results(
        &self,
        partition: u32,
        epoch: u64,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        let job = SaveJob {
            op: Op::SaveResults,
            partition,
            epoch,
            checkpoint: None,
            results: (
                results.mark(partition),
                Arc::new(encode_snapshot(&results.snapshot)),
            ),
        };
        self.save(job)
    }

    fn result_versions(&self) -> Result<Vec<ResultsMark>, StoreError> {
        let Some(partitions) = self.bound_partitions(Op::ResultVersions)? else {
            return Ok(Vec::new());
        };
        let ctx = self.ctx.clone();
        self.run(Op::ResultVersions, async move {
            ctx.result_versions(partitions).await
        })
    }

    fn load_results(&self, partition: u32) -> Result<Option<PartitionResults>, StoreError> {
        let ctx = self.ctx.clone();
        self.run(
            Op::LoadResults,
            async move { ctx.load_results(partition).await },
        )
    }

    fn describe(&self) -> String {
        self.ctx.store.to_string()
    }
}
