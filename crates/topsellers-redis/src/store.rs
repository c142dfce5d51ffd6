//! [`RedisPartitionStore`]: the implementation of [`PartitionStore`] on Redis (see the crate docs for the
//! key layout and why it is safe).

use crate::conn::{has_code, Conn, Pool};
use crate::scripts::{self, Lua, SCRIPTS};
use crate::settings::RedisSettings;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{ErrorKind, Pipeline, RedisError, ServerErrorKind, Value};
use std::io;
use std::path::PathBuf;
use topsellers_store::partitions::{decode_snapshot, encode_snapshot};
use topsellers_store::{
    Claim, PartitionCheckpoint, PartitionResults, PartitionStore, ResultsMark, StoreBinding,
    StoreError,
};
use xxhash_rust::xxh3::xxh3_64;

/// How long a value sent to an incoming key may wait for its script: it is renamed or deleted in the
/// same MULTI/EXEC, so only a failed script leaves one behind, for this long.
const INCOMING_TTL_MS: u64 = 600_000;

/// A partition store in Redis or a Redis Cluster, opened for one namespace. Any number of handles, in
/// any number of processes, may use the same namespace at once; each handle keeps up to
/// [`RedisSettings::pool_size`] connections and may be shared by threads (`Arc<dyn PartitionStore>`).
///
/// ```no_run
/// use topsellers_redis::{RedisPartitionStore, RedisSettings};
/// use topsellers_store::{PartitionStore, StoreBinding};
///
/// let settings = RedisSettings::standalone("redis://127.0.0.1:6379");
/// let store = RedisPartitionStore::open(&settings, "purchases").unwrap();
/// store.bind(&StoreBinding { partitions: 12, settings: "bucket_secs=60".into() }).unwrap();
/// let claim = store.claim(3).unwrap();
/// assert_eq!(store.key_tag(), "{topsellers:purchases}");
/// # let _ = claim;
/// ```
pub struct RedisPartitionStore {
    pool: Pool,
    namespace: String,
    keys: Keys,
    ttl_ms: String,
    describe: String,
}

// The pool holds sockets, nothing worth printing; `describe` says what the store is (passwords masked).
impl std::fmt::Debug for RedisPartitionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPartitionStore")
            .field("describe", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The key names of one namespace (layout in the crate docs).
struct Keys {
    tag: String,
}

impl Keys {
    fn binding(&self) -> String {
        format!("{}:binding", self.tag)
    }

    /// The seven keys every script takes, for `partition` (see `src/lua/prelude.lua`).
    fn script_keys(&self, partition: u32) -> [String; 7] {
        let t = &self.tag;
        [
            format!("{t}:binding"),
            format!("{t}:marks"),
            format!("{t}:partition:{partition}"),
            format!("{t}:checkpoint:{partition}"),
            format!("{t}:results:{partition}"),
            format!("{t}:incoming-checkpoint:{partition}"),
            format!("{t}:incoming-results:{partition}"),
        ]
    }
}

/// What an operation was doing, for errors: "cannot {action} {store}: ...".
#[derive(Clone, Copy)]
enum Op {
    Connect,
    Bind,
    Claim(u32),
    SaveCheckpoint(u32),
    SaveResults(u32),
    ListVersions,
    LoadResults(u32),
    DeleteNamespace,
}

impl Op {
    fn action(self) -> &'static str {
        match self {
            Op::Connect => "connect to",
            Op::Bind => "record or check the binding in",
            Op::Claim(_) => "claim a partition in",
            Op::SaveCheckpoint(_) => "save a checkpoint to",
            Op::SaveResults(_) => "save results to",
            Op::ListVersions => "list the results versions in",
            Op::LoadResults(_) => "load results from",
            Op::DeleteNamespace => "delete the namespace from",
        }
    }

    fn partition(self) -> Option<u32> {
        match self {
            Op::Claim(p) | Op::SaveCheckpoint(p) | Op::SaveResults(p) | Op::LoadResults(p) => {
                Some(p)
            }
            _ => None,
        }
    }
}

/// A script's reply: its first element, and the rest (`None` for nil).
struct Reply {
    status: String,
    fields: Vec<Option<Vec<u8>>>,
}

impl Reply {
    fn parse(value: Value) -> Option<Reply> {
        let Value::Array(items) = value else {
            return None;
        };
        let mut items = items.into_iter().map(|v| match v {
            Value::Nil => Some(None),
            Value::BulkString(bytes) => Some(Some(bytes)),
            Value::SimpleString(s) => Some(Some(s.into_bytes())),
            Value::Int(i) => Some(Some(i.to_string().into_bytes())),
            _ => None,
        });
        let status = String::from_utf8(items.next()???).ok()?;
        let fields = items.collect::<Option<Vec<_>>>()?;
        Some(Reply { status, fields })
    }

    /// Field `i` as text; `None` when nil, absent or not UTF-8.
    fn text(&self, i: usize) -> Option<&str> {
        self.fields
            .get(i)?
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Field `i`, taken out (for the big ones).
    fn take(&mut self, i: usize) -> Option<Vec<u8>> {
        self.fields.get_mut(i)?.take()
    }
}

impl RedisPartitionStore {
    /// Opens the store for `namespace`: checks the settings, connects once (so a wrong address, password
    /// or TLS setting is reported now rather than at the first claim) and checks that Redis will not
    /// evict the store's keys under memory pressure. Later calls reconnect by themselves.
    pub fn open(
        settings: &RedisSettings,
        namespace: &str,
    ) -> Result<RedisPartitionStore, StoreError> {
        let tag = format!("{{{}:{namespace}}}", settings.key_prefix);
        let describe = format!(
            "redis{} partition store {} (namespace {namespace}, keys {tag}:*)",
            if settings.cluster { " cluster" } else { "" },
            settings.masked_urls().join(",")
        );
        if let Err(problems) = settings.validate() {
            return Err(StoreError::Io {
                action: "open",
                path: PathBuf::from(describe),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid settings: {}", problems.join("; ")),
                ),
            });
        }
        let client_name = format!("topsellers:{namespace}")
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && !matches!(c, '{' | '}') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let pool = Pool::new(settings, client_name);
        let store = RedisPartitionStore {
            pool: pool.map_err(|e| unavailable(&describe, Op::Connect, e))?,
            namespace: namespace.to_string(),
            keys: Keys { tag },
            ttl_ms: settings.ttl_ms_arg(),
            describe,
        };
        store.check_server(settings)?;
        Ok(store)
    }

    /// The namespace this handle reads and writes.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The hash tag in front of every key of the namespace, e.g. `{topsellers:purchases}`.
    pub fn key_tag(&self) -> &str {
        &self.keys.tag
    }

    /// Deletes every key of the namespace, for starting it over or cleaning up after tests; returns how
    /// many keys there were. Other handles on the namespace then see it empty and unbound.
    pub fn delete_namespace(&self) -> Result<u64, StoreError> {
        let op = Op::DeleteNamespace;
        let (mut reply, _) = self.script(
            op,
            &SCRIPTS.delete_namespace,
            0,
            &[],
            &|_, _| {},
            &|_, _| {},
        )?;
        let removed = reply.take(0).and_then(|b| String::from_utf8(b).ok());
        removed
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| self.unexpected(op, &SCRIPTS.delete_namespace, "no key count"))
    }

    /// Connects once and refuses a Redis that may evict keys; warns about one without an append-only
    /// file. Servers that do not let us read their configuration (managed services, ACLs) pass.
    fn check_server(&self, settings: &RedisSettings) -> Result<(), StoreError> {
        let route = self.keys.binding();
        let (policy, appendonly) = self
            .pool
            .run(|conn| {
                Ok((
                    config_get(conn, "maxmemory-policy", &route)?,
                    config_get(conn, "appendonly", &route)?,
                ))
            })
            .map_err(|e| self.error(Op::Connect, e))?;
        if let Some(policy) = &policy {
            if evicts_store_keys(policy, settings.key_ttl_secs) {
                return Err(StoreError::Io {
                    action: "use",
                    path: PathBuf::from(&self.describe),
                    source: io::Error::other(format!(
                        "its maxmemory-policy is {policy}, so Redis may evict the store's keys when memory runs \
                         short{}, and an evicted epoch or checkpoint breaks fencing or loses a partition's state; \
                         set maxmemory-policy noeviction (CONFIG SET and redis.conf), or give topsellers a Redis \
                         of its own",
                        if policy.starts_with("volatile-") { " (they all have a TTL, key_ttl_secs)" } else { "" }
                    )),
                });
            }
        }
        if appendonly.as_deref() == Some("no") {
            tracing::warn!(
                store = %self.describe,
                "Redis runs without an append-only file: a Redis restart loses the saves since its last \
                 snapshot, and an epoch that goes back breaks fencing; run it with appendonly yes and \
                 appendfsync always (everysec may lose the last second on a crash)"
            );
        }
        Ok(())
    }

    /// Runs `lua` for `partition` with the arguments after the common ones (tag, TTL, partition), in one
    /// MULTI/EXEC behind the commands `before` queues and ahead of those `after` queues (given the keys);
    /// returns the script's reply and the replies of the commands after it.
    fn script(
        &self,
        op: Op,
        lua: &Lua,
        partition: u32,
        args: &[&[u8]],
        before: &dyn Fn(&mut Pipeline, &[String; 7]),
        after: &dyn Fn(&mut Pipeline, &[String; 7]),
    ) -> Result<(Reply, Vec<Value>), StoreError> {
        let keys = self.keys.script_keys(partition);
        let partition_arg = partition.to_string();
        let mut all: Vec<&[u8]> = vec![
            self.keys.tag.as_bytes(),
            self.ttl_ms.as_bytes(),
            partition_arg.as_bytes(),
        ];
        all.extend_from_slice(args);
        let (queued_before, values) = self
            .pool
            .run(|conn| {
                lua.run(
                    conn.like(),
                    &keys,
                    &all,
                    &|pipe| before(pipe, &keys),
                    &|pipe| after(pipe, &keys),
                )
            })
            .map_err(|e| self.error(op, e))?;
        let mut values = values.into_iter().skip(queued_before);
        let reply = values
            .next()
            .and_then(Reply::parse)
            .ok_or_else(|| self.unexpected(op, lua, "not an array of strings"))?;
        match reply.status.as_str() {
            "corrupt" => Err(self.corrupt(
                partition,
                "results mark",
                format!(
                    "{:?} is not \"<version> <next_offset>\"",
                    reply.text(1).unwrap_or_default()
                ),
            )),
            "not_staged" => Err(self.unexpected(op, lua, "an incoming value went missing")),
            _ => Ok((reply, values.collect())),
        }
    }

    fn error(&self, op: Op, e: RedisError) -> StoreError {
        unavailable(&self.describe, op, e)
    }

    /// A reply the scripts never give: a bug, or another program writing the namespace's keys.
    fn unexpected(&self, op: Op, lua: &Lua, what: &str) -> StoreError {
        StoreError::Io {
            action: op.action(),
            path: PathBuf::from(&self.describe),
            source: io::Error::other(format!(
                "{}unexpected reply of script {} ({what}); check that nothing else writes the keys {}:*, \
                 otherwise this is a bug in topsellers, please report it",
                op.partition()
                    .map_or_else(String::new, |p| format!("partition {p}: ")),
                lua.name,
                self.keys.tag
            )),
        }
    }

    fn corrupt(&self, partition: u32, what: &'static str, detail: String) -> StoreError {
        StoreError::CorruptPartition {
            store: self.describe.clone(),
            partition,
            what,
            detail,
        }
    }

    fn fenced(&self, partition: u32, epoch: u64, reply: &Reply) -> StoreError {
        match reply.text(0).and_then(|c| c.parse().ok()) {
            Some(current) => StoreError::Fenced {
                store: self.describe.clone(),
                partition,
                epoch,
                current,
            },
            None => self.corrupt(
                partition,
                "epoch",
                format!("{:?} is not an epoch", reply.text(0).unwrap_or_default()),
            ),
        }
    }

    fn results_behind(
        &self,
        partition: u32,
        results: &PartitionResults,
        reply: &Reply,
    ) -> StoreError {
        let stored_version = reply.text(0).and_then(|v| v.parse().ok());
        let stored_offset = reply.text(1).and_then(|v| v.parse().ok());
        match (stored_version, stored_offset) {
            (Some(stored_version), Some(stored_offset)) => StoreError::ResultsBehind {
                store: self.describe.clone(),
                partition,
                next_offset: results.next_offset,
                version: results.version(),
                stored_offset,
                stored_version,
            },
            _ => self.corrupt(
                partition,
                "results mark",
                format!(
                    "version {:?} and offset {:?} are not integers",
                    reply.text(0),
                    reply.text(1)
                ),
            ),
        }
    }

    /// Both saves: the results, and with `checkpoint` the checkpoint too.
    fn save(
        &self,
        partition: u32,
        epoch: u64,
        results: &PartitionResults,
        checkpoint: Option<&PartitionCheckpoint>,
    ) -> Result<(), StoreError> {
        let (op, lua) = match checkpoint {
            Some(_) => (Op::SaveCheckpoint(partition), &SCRIPTS.save_checkpoint),
            None => (Op::SaveResults(partition), &SCRIPTS.save_results),
        };
        // Encode and checksum before the call: the script runs with every other client of this Redis
        // waiting, so it should only move bytes.
        let snapshot = encode_snapshot(&results.snapshot);
        let snapshot_xxh3 = format!("{:016x}", xxh3_64(&snapshot));
        let (epoch_arg, version, offset) = (
            epoch.to_string(),
            results.version().to_string(),
            results.next_offset.to_string(),
        );
        let checkpoint_args = checkpoint.map(|c| {
            (
                c.next_offset.to_string(),
                format!("{:016x}", xxh3_64(&c.state)),
            )
        });
        let mut args: Vec<&[u8]> = vec![
            epoch_arg.as_bytes(),
            version.as_bytes(),
            offset.as_bytes(),
            snapshot_xxh3.as_bytes(),
        ];
        if let Some((offset, checksum)) = &checkpoint_args {
            args.extend_from_slice(&[offset.as_bytes(), checksum.as_bytes()]);
        }
        // The big values go to the incoming keys by plain SETs in the same MULTI/EXEC, never through Lua.
        let stage = |pipe: &mut Pipeline, keys: &[String; 7]| {
            if let Some(checkpoint) = checkpoint {
                pipe.cmd("SET")
                    .arg(&keys[5])
                    .arg(&checkpoint.state[..])
                    .arg("PX")
                    .arg(INCOMING_TTL_MS);
            }
            pipe.cmd("SET")
                .arg(&keys[6])
                .arg(&snapshot[..])
                .arg("PX")
                .arg(INCOMING_TTL_MS);
        };
        let (reply, _) = self.script(op, lua, partition, &args, &stage, &|_, _| {})?;
        match reply.status.as_str() {
            "ok" => Ok(()),
            "fenced" => Err(self.fenced(partition, epoch, &reply)),
            "results_behind" => Err(self.results_behind(partition, results, &reply)),
            "checkpoint_behind" => match (checkpoint, reply.text(0).and_then(|s| s.parse().ok())) {
                (Some(checkpoint), Some(stored)) => Err(StoreError::PartitionCheckpointBehind {
                    store: self.describe.clone(),
                    partition,
                    next_offset: checkpoint.next_offset,
                    stored,
                }),
                _ => Err(self.unexpected(op, lua, "checkpoint_behind")),
            },
            other => Err(self.unexpected(op, lua, other)),
        }
    }
}

impl PartitionStore for RedisPartitionStore {
    fn bind(&self, binding: &StoreBinding) -> Result<(), StoreError> {
        let partitions = binding.partitions.to_string();
        let lua = &SCRIPTS.bind;
        let (reply, _) = self.script(
            Op::Bind,
            lua,
            0,
            &[partitions.as_bytes(), binding.settings.as_bytes()],
            &|_, _| {},
            &|_, _| {},
        )?;
        match reply.status.as_str() {
            "ok" => Ok(()),
            "partitions_changed" => match reply.text(0).and_then(|s| s.parse().ok()) {
                Some(stored) => Err(StoreError::PartitionCountChanged {
                    store: self.describe.clone(),
                    stored,
                    given: binding.partitions,
                }),
                None => Err(self.unexpected(Op::Bind, lua, "stored partition count")),
            },
            "settings_changed" => Err(StoreError::SettingsChanged {
                store: self.describe.clone(),
                stored: String::from_utf8_lossy(
                    reply
                        .fields
                        .first()
                        .and_then(|f| f.as_deref())
                        .unwrap_or_default(),
                )
                .into_owned(),
                given: binding.settings.clone(),
            }),
            other => Err(self.unexpected(Op::Bind, lua, other)),
        }
    }

    fn claim(&self, partition: u32) -> Result<Claim, StoreError> {
        let op = Op::Claim(partition);
        let lua = &SCRIPTS.claim;
        // The state is read by a plain GET right behind the script, in the same MULTI/EXEC.
        let read_state = |pipe: &mut Pipeline, keys: &[String; 7]| {
            pipe.cmd("GET").arg(&keys[3]);
        };
        let (reply, after) = self.script(op, lua, partition, &[], &|_, _| {}, &read_state)?;
        match reply.status.as_str() {
            "ok" => {}
            "not_bound" => {
                return Err(StoreError::NotBound {
                    store: self.describe.clone(),
                })
            }
            "out_of_range" => {
                let partitions = reply
                    .text(0)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.unexpected(op, lua, "partition count"))?;
                return Err(StoreError::PartitionOutOfRange {
                    store: self.describe.clone(),
                    partition,
                    partitions,
                });
            }
            other => return Err(self.unexpected(op, lua, other)),
        }
        let epoch = reply
            .text(0)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.corrupt(partition, "epoch", "not an integer".into()))?;
        let checkpoint = match reply.text(1) {
            None => None,
            Some(offset) => {
                let next_offset = offset.parse().map_err(|_| {
                    self.corrupt(
                        partition,
                        "checkpoint",
                        format!("its offset {offset:?} is not an integer"),
                    )
                })?;
                let checksum = reply.text(2).unwrap_or_default().to_string();
                let state = match after.into_iter().next() {
                    Some(Value::BulkString(state)) => Some(state),
                    _ => None,
                };
                let state = state.ok_or_else(|| {
                    self.corrupt(partition, "checkpoint", "its state is missing".into())
                })?;
                let actual = format!("{:016x}", xxh3_64(&state));
                if actual != checksum {
                    return Err(self.corrupt(
                        partition,
                        "checkpoint",
                        format!("checksum mismatch: stored {checksum:?}, computed {actual}"),
                    ));
                }
                Some(PartitionCheckpoint { next_offset, state })
            }
        };
        let results = match reply.text(3) {
            None => None,
            Some(mark) => Some(
                parse_mark(partition, mark)
                    .ok_or_else(|| self.corrupt(partition, "results mark", format!("{mark:?}")))?,
            ),
        };
        Ok(Claim {
            epoch,
            checkpoint,
            results,
        })
    }

    fn save_checkpoint(
        &self,
        partition: u32,
        epoch: u64,
        checkpoint: &PartitionCheckpoint,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        self.save(partition, epoch, results, Some(checkpoint))
    }

    fn save_results(
        &self,
        partition: u32,
        epoch: u64,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        self.save(partition, epoch, results, None)
    }

    fn result_versions(&self) -> Result<Vec<ResultsMark>, StoreError> {
        let key = format!("{}:marks", self.keys.tag);
        let fields: Vec<(String, String)> = self
            .pool
            .run(|conn| redis::cmd("HGETALL").arg(&key).query(conn.like()))
            .map_err(|e| self.error(Op::ListVersions, e))?;
        let mut marks = fields
            .iter()
            .map(|(field, mark)| {
                let partition = field.parse().map_err(|_| {
                    self.corrupt(
                        0,
                        "results mark",
                        format!("field {field:?} of {key} is not a partition number"),
                    )
                })?;
                parse_mark(partition, mark)
                    .ok_or_else(|| self.corrupt(partition, "results mark", format!("{mark:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        marks.sort_unstable_by_key(|m| m.partition);
        Ok(marks)
    }

    fn load_results(&self, partition: u32) -> Result<Option<PartitionResults>, StoreError> {
        let t = &self.keys.tag;
        let (marks, row, results) = (
            format!("{t}:marks"),
            format!("{t}:partition:{partition}"),
            format!("{t}:results:{partition}"),
        );
        // One MULTI/EXEC, so that mark, checksum and snapshot belong to the same save.
        let (mark, checksum, bytes): (Option<String>, Option<String>, Option<Vec<u8>>) = self
            .pool
            .run(|conn| {
                let values = scripts::exec(
                    conn.like(),
                    redis::pipe()
                        .atomic()
                        .hget(&marks, partition)
                        .hget(&row, "results_xxh3")
                        .get(&results),
                )?;
                redis::FromRedisValue::from_redis_value(Value::Array(values))
                    .map_err(redis::RedisError::from)
            })
            .map_err(|e| self.error(Op::LoadResults(partition), e))?;
        let Some(mark_text) = mark else {
            return Ok(None);
        };
        let mark = parse_mark(partition, &mark_text)
            .ok_or_else(|| self.corrupt(partition, "results mark", format!("{mark_text:?}")))?;
        let checksum = checksum.unwrap_or_default();
        let bytes = bytes.ok_or_else(|| {
            self.corrupt(
                partition,
                "results",
                "the mark is there but the snapshot is missing".into(),
            )
        })?;
        let actual = format!("{:016x}", xxh3_64(&bytes));
        if actual != checksum {
            return Err(self.corrupt(
                partition,
                "results",
                format!("checksum mismatch: stored {checksum:?}, computed {actual}"),
            ));
        }
        let snapshot =
            decode_snapshot(&bytes).map_err(|detail| self.corrupt(partition, "results", detail))?;
        if snapshot.version != mark.version {
            return Err(self.corrupt(
                partition,
                "results",
                format!(
                    "the snapshot has version {}, its mark says {}",
                    snapshot.version, mark.version
                ),
            ));
        }
        Ok(Some(PartitionResults {
            next_offset: mark.next_offset,
            snapshot,
        }))
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Whether Redis with `maxmemory-policy` `policy` may evict the store's keys when memory runs short:
/// `allkeys-*` evicts any key, `volatile-*` any key with a TTL, which ours have unless `key_ttl_secs` is 0.
fn evicts_store_keys(policy: &str, key_ttl_secs: u64) -> bool {
    policy.starts_with("allkeys-") || (policy.starts_with("volatile-") && key_ttl_secs > 0)
}

/// A stored mark, `"<version> <next_offset>"`.
fn parse_mark(partition: u32, mark: &str) -> Option<ResultsMark> {
    let (version, offset) = mark.split_once(' ')?;
    Some(ResultsMark {
        partition,
        version: version.parse().ok()?,
        next_offset: offset.parse().ok()?,
    })
}

/// `CONFIG GET name` on the node holding `route_key`; `None` when the server will not say (ACLs, a
/// renamed command, a managed service).
fn config_get(conn: &mut Conn, name: &str, route_key: &str) -> redis::RedisResult<Option<String>> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg(name);
    let reply = match conn.cluster() {
        Some(cluster) => cluster.route_command(
            &cmd,
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_slot(
                Slot::for_key(route_key),
                SlotAddr::Master,
            ))),
        ),
        None => cmd.query::<Value>(conn.like()),
    };
    let value = match reply {
        Ok(v) => v,
        Err(e) if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension) => {
            tracing::debug!(error = %e, "cannot read the Redis setting {name}; not checked");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    Ok(match &value {
        Value::Array(items) if items.len() == 2 => text(&items[1]),
        Value::Map(pairs) => pairs.first().and_then(|(_, v)| text(v)),
        _ => None,
    })
}

/// Turns a Redis error into the store's error: what was being done, on which store, and what to do.
fn unavailable(describe: &str, op: Op, e: RedisError) -> StoreError {
    let partition = op
        .partition()
        .map_or_else(String::new, |p| format!("partition {p}: "));
    let denied = matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::Server(ServerErrorKind::NoPerm)
    ) || has_code(&e, &["WRONGPASS", "NOAUTH", "NOPERM"]);
    if denied {
        return StoreError::PermissionDenied {
            path: PathBuf::from(describe),
            detail: format!(
                "{partition}cannot {}: {e}; check the user name and password in the store URL, and that the \
                 Redis ACL lets this user run EVAL, EVALSHA, HGETALL and CONFIG GET on the store's keys",
                op.action().trim_end_matches(" to").trim_end_matches(" in").trim_end_matches(" from")
            ),
        };
    }
    let (kind, fix) = if e.is_timeout() {
        (
            io::ErrorKind::TimedOut,
            "Redis did not answer in time (connect_timeout_ms, response_timeout_ms); check its load and \
             the network, or raise the timeout; the call is safe to retry",
        )
    } else if e.is_connection_refusal() {
        (
            io::ErrorKind::ConnectionRefused,
            "check that Redis is running and reachable at this address from this host; the call is safe \
             to retry",
        )
    } else {
        // Inside an aborted transaction, the error of the command that was refused decides.
        let code = [
            "OOM",
            "BUSY",
            "MOVED",
            "ASK",
            "TRYAGAIN",
            "CLUSTERDOWN",
            "READONLY",
            "LOADING",
        ]
        .into_iter()
        .find(|c| has_code(&e, &[c]))
        .unwrap_or_default();
        match (e.kind(), code) {
            (ErrorKind::Io | ErrorKind::ClusterConnectionNotFound, _) => (
                io::ErrorKind::ConnectionAborted,
                "check that Redis is running and reachable at this address from this host; the call is \
                 safe to retry",
            ),
            (ErrorKind::Server(ServerErrorKind::BusyLoading), _) | (_, "LOADING") => (
                io::ErrorKind::Other,
                "Redis is loading its data after a restart; retry in a moment",
            ),
            (
                ErrorKind::Server(
                    ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown,
                ),
                _,
            )
            | (_, "TRYAGAIN" | "CLUSTERDOWN" | "ASK") => (
                io::ErrorKind::Other,
                "the Redis Cluster is failing over or moving slots; retry in a moment",
            ),
            (ErrorKind::Server(ServerErrorKind::ReadOnly), _) | (_, "READONLY") => (
                io::ErrorKind::Other,
                "this Redis is a read-only replica; point the store's URL at the primary",
            ),
            (ErrorKind::Server(ServerErrorKind::Moved), _) | (_, "MOVED") => (
                io::ErrorKind::Other,
                "the key's slot is served by another Redis Cluster node: set cluster = true if the store \
                 is not configured for a cluster yet, otherwise its slots are moving; retry in a moment",
            ),
            (_, "OOM") => (
                io::ErrorKind::OutOfMemory,
                "Redis reached its maxmemory; raise maxmemory or free memory (a shorter key_ttl_secs lets \
                 namespaces that nobody writes any more go sooner)",
            ),
            (_, "BUSY") => (
                io::ErrorKind::Other,
                "Redis is busy running a long script; retry in a moment",
            ),
            _ => (
                io::ErrorKind::Other,
                "check the Redis log and version (6.2 or newer is needed); the call is safe to retry",
            ),
        }
    };
    StoreError::Io {
        action: op.action(),
        path: PathBuf::from(describe),
        source: io::Error::new(kind, format!("{partition}{e}; {fix}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_parse_exactly_up_to_the_integer_limits() {
        assert_eq!(
            parse_mark(3, "18446744073709551615 -9223372036854775808"),
            Some(ResultsMark {
                partition: 3,
                version: u64::MAX,
                next_offset: i64::MIN
            })
        );
        assert_eq!(parse_mark(0, "1"), None);
        assert_eq!(parse_mark(0, "1 x"), None);
        assert_eq!(parse_mark(0, "-1 5"), None);
    }

    #[test]
    fn evicting_policies_are_refused_when_they_can_take_our_keys() {
        assert!(!evicts_store_keys("noeviction", 3600));
        assert!(evicts_store_keys("allkeys-lru", 0));
        assert!(evicts_store_keys("allkeys-random", 3600));
        assert!(evicts_store_keys("volatile-ttl", 3600));
        assert!(!evicts_store_keys("volatile-lru", 0));
    }

    #[test]
    fn errors_name_the_store_the_operation_and_the_fix() {
        let store = "redis partition store redis://h:1 (namespace n, keys {t:n}:*)";
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let e = unavailable(store, Op::Claim(7), refused);
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot claim a partition in {store}: partition 7: "
            )),
            "{text}"
        );
        assert!(text.contains("check that Redis is running"), "{text}");

        let auth = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        let e = unavailable(store, Op::Connect, auth);
        assert!(matches!(e, StoreError::PermissionDenied { .. }), "{e}");
        assert!(
            e.to_string().contains("check the user name and password"),
            "{e}"
        );

        let timeout = RedisError::from(io::Error::from(io::ErrorKind::TimedOut));
        let text = unavailable(store, Op::SaveCheckpoint(1), timeout).to_string();
        assert!(text.contains("did not answer in time"), "{text}");
    }
}
