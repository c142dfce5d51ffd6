//! The cluster shape's shared pieces: opening the results store named in `[cluster]` (SQLite on one host,
//! Cassandra or Redis across hosts), and following the per-partition results in it as one merged snapshot.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use topsellers_cassandra::CassandraPartitionStore;
use topsellers_model::{merge_snapshots, Snapshot};
use topsellers_redis::RedisPartitionStore;
use topsellers_store::partitions::SqlitePartitionStore;
use topsellers_store::{PartitionStore, ResultsMark};

/// A parsed `cluster.results_store`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// One host: every aggregator and API server of the host shares one SQLite file.
    Sqlite(PathBuf),
    /// Apache Cassandra, as the `[cassandra]` section says.
    Cassandra,
    /// Redis or Redis Cluster, as the `[redis]` section says.
    Redis,
}

/// What `cluster.results_store` accepts, for error messages.
pub const STORE_LOCATIONS: &str =
    "sqlite:<path>, cassandra (settings in [cassandra]) or redis (settings in [redis])";

impl StoreLocation {
    pub fn parse(text: &str) -> Result<StoreLocation> {
        match text.trim() {
            "cassandra" => return Ok(StoreLocation::Cassandra),
            "redis" => return Ok(StoreLocation::Redis),
            _ => {}
        }
        match text.split_once(':') {
            Some(("sqlite", path)) if !path.trim().is_empty() => {
                Ok(StoreLocation::Sqlite(PathBuf::from(path)))
            }
            _ => bail!("{text:?} is not a results store location; use {STORE_LOCATIONS}"),
        }
    }
}

/// Opens the results store that `cluster.results_store` names, for the namespace `kafka.topic` (several topics
/// can share a store).
pub fn open_store(config: &Config) -> Result<Arc<dyn PartitionStore>> {
    let location = &config.cluster.results_store;
    let namespace = &config.kafka.topic;
    let context = || format!("cannot open the results store {location} (cluster.results_store)");
    match StoreLocation::parse(location)? {
        StoreLocation::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create {} for cluster.results_store", dir.display())
                })?;
            }
            let store = SqlitePartitionStore::open(&path, namespace).with_context(context)?;
            Ok(Arc::new(store))
        }
        StoreLocation::Cassandra => {
            let store = CassandraPartitionStore::open(&config.cassandra, namespace)
                .with_context(context)?;
            Ok(Arc::new(store))
        }
        StoreLocation::Redis => {
            let store =
                RedisPartitionStore::open(&config.redis, namespace).with_context(context)?;
            Ok(Arc::new(store))
        }
    }
}

/// Keeps the newest results of every partition and merges them, loading only partitions whose results
/// version changed since the last refresh: a refresh is one small query when nothing changed.
pub struct ResultsFollower {
    store: Arc<dyn PartitionStore>,
    parts: BTreeMap<u32, (ResultsMark, Snapshot)>,
    merged_version: u64,
}

impl ResultsFollower {
    pub fn new(store: Arc<dyn PartitionStore>) -> ResultsFollower {
        ResultsFollower {
            store,
            parts: BTreeMap::new(),
            merged_version: 0,
        }
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Asks the store what changed; returns a new merged snapshot when anything did.
    pub fn refresh(&mut self, now_ms: i64) -> Result<Option<Snapshot>> {
        let marks = self.store.result_versions()?;
        let mut changed = false;
        for mark in marks {
            let known = self.parts.get(&mark.partition).map(|(m, _)| m.version);
            if known == Some(mark.version) {
                continue;
            }
            if let Some(results) = self.store.load_results(mark.partition)? {
                let loaded = results.mark(mark.partition);
                // A mark older than what we hold (read from a lagging replica) is no news.
                if known.is_some_and(|v| v >= loaded.version) {
                    continue;
                }
                self.parts
                    .insert(mark.partition, (loaded, results.snapshot));
                changed = true;
            }
        }
        if !changed {
            return Ok(None);
        }
        let snapshots: Vec<Snapshot> = self.parts.values().map(|(_, s)| s.clone()).collect();
        // Each partition's version only grows, so their sum does too: a version that orders merged snapshots
        // across API servers without any coordination between them.
        let version: u64 = self.parts.values().map(|(m, _)| m.version).sum();
        self.merged_version = version;
        let merged = merge_snapshots(&snapshots, version, now_ms)
            .context("the partitions' results cannot be merged")?;
        Ok(Some(merged))
    }

    /// Partitions with results, and the offset of the next message each partition's results do not include.
    pub fn offsets(&self) -> BTreeMap<u32, i64> {
        self.parts
            .iter()
            .map(|(p, (m, _))| (*p, m.next_offset))
            .collect()
    }
}
