//! What the conformance suite cannot see: expiry, broken connections, calls from a tokio runtime's
//! blocking threads, exact integers past 2^53, damaged values, and the errors of an unreachable or
//! refusing Redis. Against a real Redis and Redis Cluster (see tests/common).

mod common;

use common::{Raw, Shape};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use topsellers_model::Snapshot;
use topsellers_redis::{RedisPartitionStore, RedisSettings};
use topsellers_store::{
    PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding, StoreError,
};

fn binding(partitions: u32) -> StoreBinding {
    StoreBinding {
        partitions,
        settings: "bucket_secs=60 windows=1h,all top_k=10".into(),
    }
}

fn results(version: u64, next_offset: i64) -> PartitionResults {
    PartitionResults {
        next_offset,
        snapshot: Snapshot {
            version,
            as_of_ms: 1_700_000_000_000,
            watermark_ms: 1_700_000_000_000,
            computed_at_ms: 1_700_000_000_250,
            currency: "USD".into(),
            top_k: 10,
            windows: Vec::new(),
            lists: BTreeMap::new(),
            events_counted: next_offset.unsigned_abs(),
        },
    }
}

fn checkpoint(next_offset: i64) -> PartitionCheckpoint {
    PartitionCheckpoint {
        next_offset,
        state: format!("state at {next_offset}").into_bytes(),
    }
}

/// A fresh namespace on the Redis of `shape` (with `adjust` applied to the settings), bound to
/// `partitions`; `None` to skip.
fn fresh(
    shape: Shape,
    name: &str,
    partitions: u32,
    adjust: impl FnOnce(&mut RedisSettings),
) -> Option<(RedisSettings, RedisPartitionStore)> {
    let mut settings = common::settings(shape)?;
    adjust(&mut settings);
    let store = common::open(&settings, &common::unique(name));
    store.bind(&binding(partitions)).unwrap();
    Some((settings, store))
}

fn ttl_is_set_and_refreshed(shape: Shape) {
    let Some((settings, store)) = fresh(shape, "ttl", 3, |s| s.key_ttl_secs = 3600) else {
        return;
    };
    let epochs: Vec<u64> = (0..3).map(|p| store.claim(p).unwrap().epoch).collect();
    store.save_results(0, epochs[0], &results(1, 10)).unwrap();
    store
        .save_checkpoint(1, epochs[1], &checkpoint(20), &results(1, 20))
        .unwrap();
    let mut raw = Raw::new(&settings);
    let tag = store.key_tag().to_string();
    let mut keys = raw.keys_of(&store, 3);
    keys.sort();
    let mut expected: Vec<String> = [
        "binding",
        "marks",
        "partition:0",
        "partition:1",
        "partition:2",
        "results:0",
        "results:1",
        "checkpoint:1",
    ]
    .iter()
    .map(|k| format!("{tag}:{k}"))
    .collect();
    expected.sort();
    assert_eq!(keys, expected, "the documented key layout");
    let hour_ms = 3_600_000;
    for key in &keys {
        let ttl = raw.pttl(key);
        assert!(
            (hour_ms - 10_000..=hour_ms).contains(&ttl),
            "{key} has PTTL {ttl}, expected about an hour"
        );
    }

    // A handle whose settings say "never": its first write takes the TTL off every key.
    let forever = common::open(
        &RedisSettings {
            key_ttl_secs: 0,
            ..settings.clone()
        },
        store.namespace(),
    );
    forever.bind(&binding(3)).unwrap();
    for key in &keys {
        assert_eq!(raw.pttl(key), -1, "{key} should have lost its TTL");
    }
    // And back: one results save gives every key of the namespace the hour again.
    std::thread::sleep(Duration::from_millis(20));
    store.save_results(0, epochs[0], &results(2, 10)).unwrap();
    for key in &keys {
        let ttl = raw.pttl(key);
        assert!(
            (hour_ms - 10_000..=hour_ms).contains(&ttl),
            "{key} has PTTL {ttl} after a write, expected about an hour"
        );
    }
    store.delete_namespace().unwrap();
    assert!(raw.keys_of(&store, 3).is_empty());
}

#[test]
fn every_key_of_a_namespace_carries_the_ttl_standalone() {
    ttl_is_set_and_refreshed(Shape::Standalone);
}

#[test]
fn every_key_of_a_namespace_carries_the_ttl_cluster() {
    ttl_is_set_and_refreshed(Shape::Cluster);
}

/// With a TTL of 2 s: writing only partition 0 for 3 s keeps partition 1 alive too; 2 s after the last
/// write, the whole namespace is gone.
fn namespace_expires_as_a_whole(shape: Shape) {
    let Some((settings, store)) = fresh(shape, "expiry", 2, |s| s.key_ttl_secs = 2) else {
        return;
    };
    let e0 = store.claim(0).unwrap().epoch;
    let e1 = store.claim(1).unwrap().epoch;
    store
        .save_checkpoint(1, e1, &checkpoint(5), &results(1, 5))
        .unwrap();
    let started = Instant::now();
    let mut version = 0;
    while started.elapsed() < Duration::from_secs(3) {
        version += 1;
        store
            .save_results(0, e0, &results(version, version as i64))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut raw = Raw::new(&settings);
    assert_eq!(
        store.load_results(1).unwrap(),
        Some(results(1, 5)),
        "a quiet partition of a namespace that is written must not expire"
    );
    assert_eq!(raw.keys_of(&store, 2).len(), 7, "every key is still there");
    let claim = store.claim(1).unwrap();
    assert_eq!(claim.checkpoint, Some(checkpoint(5)));

    std::thread::sleep(Duration::from_millis(2_300));
    assert_eq!(raw.keys_of(&store, 2), Vec::<String>::new());
    assert_eq!(store.result_versions().unwrap(), vec![]);
    assert_eq!(store.load_results(0).unwrap(), None);
    assert!(matches!(store.claim(0), Err(StoreError::NotBound { .. })));
}

#[test]
fn a_namespace_nobody_writes_expires_as_a_whole_standalone() {
    namespace_expires_as_a_whole(Shape::Standalone);
}

#[test]
fn a_namespace_nobody_writes_expires_as_a_whole_cluster() {
    namespace_expires_as_a_whole(Shape::Cluster);
}

/// `CLIENT KILL` of the store's connections between two calls: the next call works, on a new connection.
///
/// A cluster connection replaces a dropped node connection by itself, and the replacement does not carry
/// the store's client name, so there each kill is aimed at a fresh handle's (named) connections.
fn killed_connection_is_replaced(shape: Shape) {
    let Some((settings, store)) = fresh(shape, "kill", 1, |s| s.pool_size = 1) else {
        return;
    };
    let raw = Raw::new(&settings);
    let name = format!("topsellers:{}", store.namespace());
    let fresh_handle = |store: RedisPartitionStore| match shape {
        Shape::Standalone => store,
        Shape::Cluster => common::open(&settings, store.namespace()),
    };
    let epoch = store.claim(0).unwrap().epoch;
    assert!(
        raw.kill_clients_named(&name) >= 1,
        "no connection named {name}"
    );
    store
        .save_results(0, epoch, &results(1, 100))
        .expect("the call after CLIENT KILL reconnects");
    let store = fresh_handle(store);
    assert!(raw.kill_clients_named(&name) >= 1);
    assert_eq!(
        store.result_versions().unwrap(),
        vec![results(1, 100).mark(0)]
    );
    let store = fresh_handle(store);
    assert!(raw.kill_clients_named(&name) >= 1);
    assert_eq!(store.load_results(0).unwrap(), Some(results(1, 100)));
    let store = fresh_handle(store);
    assert!(raw.kill_clients_named(&name) >= 1);
    assert_eq!(store.claim(0).unwrap().epoch, epoch + 1);
    store.delete_namespace().unwrap();
}

#[test]
fn a_killed_connection_is_replaced_standalone() {
    killed_connection_is_replaced(Shape::Standalone);
}

#[test]
fn a_killed_connection_is_replaced_cluster() {
    killed_connection_is_replaced(Shape::Cluster);
}

/// The trait is called from `spawn_blocking` threads of a tokio runtime as well as from plain threads;
/// the store uses blocking sockets, so it needs no runtime of its own and nests none.
#[test]
fn works_from_spawn_blocking_threads_of_a_runtime_and_plain_threads() {
    let Some((settings, store)) = fresh(Shape::Standalone, "tokio", 4, |_| {}) else {
        return;
    };
    let store: Arc<dyn PartitionStore> = Arc::new(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..3u32)
            .map(|p| {
                let store = Arc::clone(&store);
                tokio::task::spawn_blocking(move || {
                    let epoch = store.claim(p).unwrap().epoch;
                    for v in 1..=20u64 {
                        store.save_results(p, epoch, &results(v, v as i64)).unwrap();
                    }
                    store
                        .save_checkpoint(p, epoch, &checkpoint(20), &results(20, 20))
                        .unwrap();
                })
            })
            .collect();
        // Opening a store inside the runtime's blocking pool works too.
        let namespace = settings.clone();
        let name = store.describe();
        let opened = tokio::task::spawn_blocking(move || {
            let ns = name
                .split("namespace ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string();
            common::open(&namespace, &ns)
                .result_versions()
                .unwrap()
                .len()
        });
        for task in tasks {
            task.await.unwrap();
        }
        assert!(opened.await.unwrap() <= 3);
    });
    let plain = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let epoch = store.claim(3).unwrap().epoch;
            store.save_results(3, epoch, &results(7, 70)).unwrap();
            store.result_versions().unwrap()
        })
    };
    let marks = plain.join().unwrap();
    assert_eq!(
        marks,
        vec![
            results(20, 20).mark(0),
            results(20, 20).mark(1),
            results(20, 20).mark(2),
            results(7, 70).mark(3)
        ]
    );
    drop(runtime);
    let ns = store.describe();
    let ns = ns
        .split("namespace ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    common::open(&settings, ns).delete_namespace().unwrap();
}

/// Versions, offsets and epochs are compared as exact integers in the scripts: as doubles, 2^53 + 1
/// would equal 2^53, and a step back would pass for a repeat.
fn integers_past_2_pow_53_are_exact(shape: Shape) {
    let Some((settings, store)) = fresh(shape, "exact", 1, |_| {}) else {
        return;
    };
    const BIG: u64 = 1 << 53;
    let big = BIG as i64;
    let epoch = store.claim(0).unwrap().epoch;
    store.save_results(0, epoch, &results(1, -10)).unwrap();
    store.save_results(0, epoch, &results(2, -5)).unwrap();
    assert!(matches!(
        store.save_results(0, epoch, &results(3, -7)),
        Err(StoreError::ResultsBehind {
            stored_offset: -5,
            ..
        })
    ));
    store
        .save_results(0, epoch, &results(BIG + 1, big + 1))
        .unwrap();
    match store.save_results(0, epoch, &results(BIG, big + 1)) {
        Err(StoreError::ResultsBehind {
            stored_version,
            stored_offset,
            ..
        }) => assert_eq!((stored_version, stored_offset), (BIG + 1, big + 1)),
        other => panic!("version 2^53 after 2^53 + 1 must be refused, got {other:?}"),
    }
    store
        .save_checkpoint(0, epoch, &checkpoint(big + 1), &results(BIG + 2, big + 1))
        .unwrap();
    match store.save_checkpoint(0, epoch, &checkpoint(big), &results(BIG + 3, big + 1)) {
        Err(StoreError::PartitionCheckpointBehind { stored, .. }) => assert_eq!(stored, big + 1),
        other => panic!("checkpoint at 2^53 after 2^53 + 1 must be refused, got {other:?}"),
    }
    store
        .save_results(0, epoch, &results(u64::MAX, i64::MAX))
        .unwrap();
    assert_eq!(
        store.result_versions().unwrap(),
        vec![results(u64::MAX, i64::MAX).mark(0)]
    );

    // Epochs count with HINCRBY, in 64-bit integers.
    let mut raw = Raw::new(&settings);
    let _: () = raw.query(
        redis::cmd("HSET")
            .arg(format!("{}:partition:0", store.key_tag()))
            .arg("epoch")
            .arg(BIG + 1),
    );
    let claim = store.claim(0).unwrap();
    assert_eq!(claim.epoch, BIG + 2);
    match store.save_results(0, BIG + 1, &results(u64::MAX, i64::MAX)) {
        Err(e @ StoreError::Fenced { .. }) => {
            assert!(matches!(e, StoreError::Fenced { current, .. } if current == BIG + 2));
            assert!(e.to_string().contains(&store.describe()), "{e}");
        }
        other => panic!("epoch 2^53 + 1 after a claim must be fenced, got {other:?}"),
    }
    store
        .save_results(0, BIG + 2, &results(u64::MAX, i64::MAX))
        .unwrap();
    store.delete_namespace().unwrap();
}

#[test]
fn integers_past_2_pow_53_are_compared_exactly_standalone() {
    integers_past_2_pow_53_are_exact(Shape::Standalone);
}

#[test]
fn integers_past_2_pow_53_are_compared_exactly_cluster() {
    integers_past_2_pow_53_are_exact(Shape::Cluster);
}

/// Bytes changed behind the store's back are reported, never decoded into wrong state.
#[test]
fn damaged_values_are_reported_as_corrupt() {
    let Some((settings, store)) = fresh(Shape::Standalone, "damage", 1, |_| {}) else {
        return;
    };
    let epoch = store.claim(0).unwrap().epoch;
    store
        .save_checkpoint(0, epoch, &checkpoint(10), &results(1, 10))
        .unwrap();
    let mut raw = Raw::new(&settings);
    let tag = store.key_tag().to_string();
    let _: i64 = raw.query(
        redis::cmd("SETRANGE")
            .arg(format!("{tag}:checkpoint:0"))
            .arg(0)
            .arg("X"),
    );
    let _: i64 = raw.query(
        redis::cmd("SETRANGE")
            .arg(format!("{tag}:results:0"))
            .arg(3)
            .arg("X"),
    );
    for err in [
        store.claim(0).unwrap_err(),
        store.load_results(0).unwrap_err(),
    ] {
        assert!(
            matches!(err, StoreError::CorruptPartition { partition: 0, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }
    let _: i64 = raw.query(
        redis::cmd("HSET")
            .arg(format!("{tag}:marks"))
            .arg("0")
            .arg("garbage"),
    );
    let err = store.result_versions().unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    store.delete_namespace().unwrap();
}

/// Needs no Redis: nothing listens on port 1.
#[test]
fn an_unreachable_redis_is_a_clear_error() {
    let settings = RedisSettings {
        connect_timeout_ms: 500,
        ..RedisSettings::standalone("redis://127.0.0.1:1")
    };
    let err = RedisPartitionStore::open(&settings, "purchases").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Io { .. }), "{text}");
    assert!(
        text.starts_with(
            "cannot connect to redis partition store redis://127.0.0.1:1 (namespace purchases, keys \
             {topsellers:purchases}:*): "
        ),
        "{text}"
    );
    assert!(text.contains("check that Redis is running"), "{text}");

    let invalid = RedisSettings {
        urls: vec![],
        ..RedisSettings::default()
    };
    let text = RedisPartitionStore::open(&invalid, "purchases")
        .unwrap_err()
        .to_string();
    assert!(text.contains("invalid settings: urls is empty"), "{text}");
}

#[test]
fn a_refused_password_is_permission_denied_and_never_shown() {
    let Some(settings) = common::settings(Shape::Standalone) else {
        return;
    };
    let url = settings.urls[0].replace("redis://", "redis://nobody:hunter2@");
    let err = RedisPartitionStore::open(&RedisSettings::standalone(&url), "purchases").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::PermissionDenied { .. }), "{text}");
    assert!(text.contains("nobody:***@"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("check the user name and password"), "{text}");
}

/// A `redis-server` of this test's own, on a free port, with an append-only file fsynced on every write.
struct OwnRedis {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut own = OwnRedis {
            dir: tempfile::tempdir().unwrap(),
            port,
            child: None,
        };
        own.restart();
        own
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) is needed for this test");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let ping = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis killed and started again (with its append-only file): while it is down, calls fail with an
/// error that says what to check; once it is back, the same handle carries on where the data stands, and
/// the scripts, gone from the restarted server's cache, are sent again (NOSCRIPT, then EVAL).
#[test]
fn a_restarted_redis_is_picked_up_again() {
    // Runs where the test Redis runs, which means redis-server is installed.
    if common::settings(Shape::Standalone).is_none() {
        return;
    }
    let mut redis = OwnRedis::start();
    let settings = RedisSettings {
        connect_timeout_ms: 500,
        ..RedisSettings::standalone(&redis.url())
    };
    let store = common::open(&settings, "restart");
    store.bind(&binding(2)).unwrap();
    let epoch = store.claim(1).unwrap().epoch;
    store
        .save_checkpoint(1, epoch, &checkpoint(50), &results(3, 50))
        .unwrap();

    redis.kill();
    let err = store.save_results(1, epoch, &results(4, 60)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot save results to {}: partition 1: ",
            store.describe()
        )),
        "{text}"
    );
    assert!(text.contains("check that Redis is running"), "{text}");
    assert!(store.result_versions().is_err());

    redis.restart();
    assert_eq!(
        store.result_versions().unwrap(),
        vec![results(3, 50).mark(1)]
    );
    store.save_results(1, epoch, &results(4, 60)).unwrap();
    let claim = store.claim(1).unwrap();
    assert_eq!(
        (claim.epoch, claim.checkpoint, claim.results),
        (
            epoch + 1,
            Some(checkpoint(50)),
            Some(results(4, 60).mark(1))
        )
    );
}

/// Moves the namespace's slot to another master, the way `redis-cli --cluster reshard` does, between two
/// calls: the store follows it (a MOVED inside MULTI/EXEC comes back as EXECABORT, which the cluster
/// client does not follow by itself) and the data moved with it.
#[test]
fn the_store_follows_its_slot_to_another_cluster_node() {
    let Some((settings, store)) = fresh(Shape::Cluster, "reshard", 2, |_| {}) else {
        return;
    };
    let epoch = store.claim(1).unwrap().epoch;
    store
        .save_checkpoint(1, epoch, &checkpoint(30), &results(2, 30))
        .unwrap();

    let node = |url: &str| redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut any = node(&settings.urls[0]);
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(store.key_tag())
        .query(&mut any)
        .unwrap();
    // "<id> <host:port@bus> <flags> ... <slot ranges>" per master.
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut any).unwrap();
    let masters: Vec<(String, String, bool)> = nodes
        .lines()
        .filter(|l| l.contains("master"))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let addr = f[1].split('@').next().unwrap().to_string();
            let owns = f[8..].iter().any(|r| match r.split_once('-') {
                Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).contains(&slot),
                None => r.parse::<i64>().ok() == Some(slot),
            });
            (f[0].to_string(), addr, owns)
        })
        .collect();
    let (src_id, src_addr, _) = masters.iter().find(|m| m.2).unwrap().clone();
    let (dst_id, dst_addr, _) = masters.iter().find(|m| !m.2).unwrap().clone();
    let mut src = node(&format!("redis://{src_addr}"));
    let mut dst = node(&format!("redis://{dst_addr}"));
    let setslot = |conn: &mut redis::Connection, state: &str, id: &str| {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(id)
            .query(conn)
            .unwrap();
    };
    setslot(&mut dst, "IMPORTING", &src_id);
    setslot(&mut src, "MIGRATING", &dst_id);
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100)
            .query(&mut src)
            .unwrap();
        if keys.is_empty() {
            break;
        }
        let (host, port) = dst_addr.split_once(':').unwrap();
        let _: () = redis::cmd("MIGRATE")
            .arg(host)
            .arg(port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&keys)
            .query(&mut src)
            .unwrap();
    }
    for (_, addr, _) in &masters {
        setslot(&mut node(&format!("redis://{addr}")), "NODE", &dst_id);
    }

    store
        .save_results(1, epoch, &results(3, 40))
        .expect("a save after the slot moved");
    assert_eq!(store.load_results(1).unwrap(), Some(results(3, 40)));
    let claim = store.claim(1).unwrap();
    assert_eq!(
        (claim.epoch, claim.checkpoint),
        (epoch + 1, Some(checkpoint(30)))
    );
    store.delete_namespace().unwrap();
}
