//! Helpers for the tests against a real Redis and a real Redis Cluster, started by `scripts/services.sh
//! start redis` and `start redis-cluster` (addresses from `eval "$(scripts/services.sh env)"`). Without
//! them the tests skip with a message, except under CI, where a missing service is a failure: CI must
//! never pass by skipping.
#![allow(dead_code)]

use redis::ConnectionLike;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use topsellers_redis::{RedisPartitionStore, RedisSettings};

#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Standalone,
    Cluster,
}

impl Shape {
    fn var(self) -> &'static str {
        match self {
            Shape::Standalone => "TOPSELLERS_TEST_REDIS",
            Shape::Cluster => "TOPSELLERS_TEST_REDIS_CLUSTER",
        }
    }
}

/// Settings for the Redis of `shape` named by the environment, or `None` (after saying why) to skip.
/// Keys get a TTL of an hour, so a failed test leaves nothing behind for long.
pub fn settings(shape: Shape) -> Option<RedisSettings> {
    let var = shape.var();
    let addrs = match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            let start = match shape {
                Shape::Standalone => "redis",
                Shape::Cluster => "redis-cluster",
            };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{var} is not set under CI: start Redis with scripts/services.sh start {start} and export its \
                     address with eval \"$(scripts/services.sh env)\""
                );
            }
            eprintln!(
                "SKIPPED: {var} is not set; run scripts/services.sh start {start} and \
                 eval \"$(scripts/services.sh env)\" to run this test"
            );
            return None;
        }
    };
    let urls: Vec<String> = addrs
        .split(',')
        .map(|a| {
            let a = a.trim();
            if a.contains("://") {
                a.to_string()
            } else {
                format!("redis://{a}")
            }
        })
        .collect();
    Some(RedisSettings {
        urls,
        cluster: matches!(shape, Shape::Cluster),
        key_ttl_secs: 3600,
        ..RedisSettings::default()
    })
}

/// A namespace no other test or run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos)
}

pub fn open(settings: &RedisSettings, namespace: &str) -> RedisPartitionStore {
    RedisPartitionStore::open(settings, namespace)
        .unwrap_or_else(|e| panic!("open namespace {namespace}: {e}"))
}

/// Namespaces a test used, deleted at the end (and checked gone).
#[derive(Default)]
pub struct Namespaces(Mutex<BTreeSet<String>>);

impl Namespaces {
    pub fn add(&self, namespace: &str) {
        self.0.lock().unwrap().insert(namespace.to_string());
    }

    pub fn delete_all(&self, settings: &RedisSettings) {
        let mut raw = Raw::new(settings);
        for ns in self.0.lock().unwrap().iter() {
            let store = open(settings, ns);
            store
                .delete_namespace()
                .unwrap_or_else(|e| panic!("delete {ns}: {e}"));
            let left = raw.keys_of(&store, 64);
            assert!(left.is_empty(), "keys left after deleting {ns}: {left:?}");
        }
    }
}

/// Plain commands on the test's Redis, outside the store: a cluster connection routes by key.
pub struct Raw {
    conn: Box<dyn ConnectionLike>,
    settings: RedisSettings,
}

impl Raw {
    pub fn new(settings: &RedisSettings) -> Raw {
        let conn: Box<dyn ConnectionLike> = if settings.cluster {
            Box::new(
                redis::cluster::ClusterClient::new(settings.urls.clone())
                    .unwrap()
                    .get_connection()
                    .unwrap(),
            )
        } else {
            Box::new(
                redis::Client::open(settings.urls[0].as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap(),
            )
        };
        Raw {
            conn,
            settings: settings.clone(),
        }
    }

    pub fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> T {
        cmd.query(&mut *self.conn).unwrap_or_else(|e| {
            panic!(
                "{:?}: {e}",
                String::from_utf8_lossy(&cmd.get_packed_command())
            )
        })
    }

    /// PTTL of `key`: ms left, -1 without a TTL, -2 when the key does not exist.
    pub fn pttl(&mut self, key: &str) -> i64 {
        self.query(redis::cmd("PTTL").arg(key))
    }

    /// The keys of the store's namespace that exist, for partitions below `partitions`, by the layout the
    /// crate documents.
    pub fn keys_of(&mut self, store: &RedisPartitionStore, partitions: u32) -> Vec<String> {
        let tag = store.key_tag();
        let mut names = vec![format!("{tag}:binding"), format!("{tag}:marks")];
        for p in 0..partitions {
            for kind in [
                "partition",
                "checkpoint",
                "results",
                "incoming-checkpoint",
                "incoming-results",
            ] {
                names.push(format!("{tag}:{kind}:{p}"));
            }
        }
        names
            .into_iter()
            .filter(|k| self.query::<i64>(redis::cmd("EXISTS").arg(k)) == 1)
            .collect()
    }

    /// Kills every connection named `name` on every node; returns how many.
    pub fn kill_clients_named(&self, name: &str) -> usize {
        let mut killed = 0;
        for url in &self.settings.urls {
            let mut node = redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap();
            let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut node).unwrap();
            for line in list.lines() {
                let field = |k: &str| {
                    line.split(' ')
                        .find_map(|f| f.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                };
                if field("name") == Some(name) {
                    let id = field("id").unwrap();
                    let n: i64 = redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("ID")
                        .arg(id)
                        .query(&mut node)
                        .unwrap();
                    killed += n as usize;
                }
            }
        }
        killed
    }
}
