//! The cluster shape's shared pieces: opening the results store named in `[cluster]` (SQLite on one host,
//! Cassandra or Redis across hosts), and following the per-partition results in it as one merged snapshot.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use topsellers_cassandra::CassandraPartitionStore;
use topsellers_model::{merge_snapshots, Snapshot};
use topsellers_redis::RedisPartitionStore;
use topsellers_store::partitions::SqlitePartitionStore;
use topsellers_store::{PartitionResults, PartitionStore, ResultsMark, StoreError};

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

/// [`open_store`], waiting while the store is unreachable (down, restarting, not yet listening) as the
/// Kafka side waits for its brokers: with a warning and growing pauses (up to 10 s), until it answers or
/// `stop` is raised (`Ok(None)`). Any other failure (bad settings, refused credentials, a schema from a
/// newer version) is returned at once: waiting would not fix it.
pub fn open_store_waiting(
    config: &Config,
    stop: &AtomicBool,
) -> Result<Option<Arc<dyn PartitionStore>>> {
    let mut pause = Duration::from_millis(500);
    loop {
        match open_store(config) {
            Ok(store) => return Ok(Some(store)),
            Err(e) if store_unreachable(&e) => {
                if stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                tracing::warn!(target: "topsellers", "{}; retrying in {pause:?}", crate::error_chain(&e));
                let until = Instant::now() + pause;
                while Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether an error of opening a store may pass by itself: the store did not answer, or answered that it
/// is busy.
fn store_unreachable(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::*;
    error
        .chain()
        .any(|cause| match cause.downcast_ref::<StoreError>() {
            Some(StoreError::Io { source, .. }) => matches!(
                source.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | TimedOut
                    | HostUnreachable
                    | NetworkUnreachable
                    | Interrupted
                    | WouldBlock
            ),
            Some(StoreError::Locked { .. }) => true,
            _ => false,
        })
}

/// At most this many partitions' results are read from the store at once by one refresh.
const MAX_CONCURRENT_LOADS: usize = 8;

/// Loads the results of `partitions`, several at once: a refresh after a busy interval finds most partitions
/// changed, and one after another their round trips add up (with six partitions on Cassandra they were about
/// half of saved -> visible). In the order given; the first error wins.
fn load_concurrently(
    store: &dyn PartitionStore,
    partitions: &[u32],
) -> Result<Vec<(u32, Option<PartitionResults>)>, StoreError> {
    if partitions.len() <= 1 {
        return partitions
            .iter()
            .map(|&p| Ok((p, store.load_results(p)?)))
            .collect();
    }
    let lanes = partitions.len().min(MAX_CONCURRENT_LOADS);
    let mut loaded: Vec<(usize, u32, Option<PartitionResults>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..lanes)
            .map(|lane| {
                scope.spawn(move || {
                    partitions
                        .iter()
                        .enumerate()
                        .skip(lane)
                        .step_by(lanes)
                        .map(|(i, &p)| Ok((i, p, store.load_results(p)?)))
                        .collect::<Result<Vec<_>, StoreError>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a results load panicked"))
            .collect::<Result<Vec<_>, StoreError>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    loaded.sort_by_key(|(i, _, _)| *i);
    Ok(loaded.into_iter().map(|(_, p, r)| (p, r)).collect())
}

/// Keeps the newest results of every partition and merges them, loading only partitions whose results
/// version changed since the last refresh: a refresh is one small query when nothing changed.
pub struct ResultsFollower {
    store: Arc<dyn PartitionStore>,
    parts: BTreeMap<u32, (ResultsMark, Snapshot)>,
    merged_version: u64,
    /// Partitions held here whose results the store no longer lists (its data was lost, e.g. Redis
    /// restarted without persistence). Their next results are taken whatever their version: the
    /// lineage started again, so "older than what we hold" no longer means a lagging replica.
    lost: BTreeSet<u32>,
}

impl ResultsFollower {
    pub fn new(store: Arc<dyn PartitionStore>) -> ResultsFollower {
        ResultsFollower {
            store,
            parts: BTreeMap::new(),
            merged_version: 0,
            lost: BTreeSet::new(),
        }
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Asks the store what changed; returns a new merged snapshot when anything did.
    ///
    /// A store that no longer lists results this server holds is an error, not "nothing changed": the
    /// held results stay served, marked stale (with the reason in `/readyz`), until every such partition
    /// has results again.
    pub fn refresh(&mut self, now_ms: i64) -> Result<Option<Snapshot>> {
        let marks = self.store.result_versions()?;
        let listed: BTreeSet<u32> = marks.iter().map(|m| m.partition).collect();
        let vanished: Vec<u32> = self
            .parts
            .keys()
            .filter(|p| !listed.contains(p))
            .copied()
            .collect();
        if !vanished.is_empty() {
            self.lost.extend(&vanished);
            bail!(
                "{} no longer has results for partition(s) {vanished:?}, which this server holds: its data \
                 was lost (e.g. Redis restarted without persistence) or the namespace was dropped; serving the \
                 last results held until the aggregators have written those partitions again",
                self.store.describe()
            );
        }
        let moved: Vec<u32> = marks
            .iter()
            .filter(|mark| {
                let known = self.parts.get(&mark.partition).map(|(m, _)| m.version);
                known != Some(mark.version) || self.lost.contains(&mark.partition)
            })
            .map(|mark| mark.partition)
            .collect();
        let mut changed = false;
        for (partition, results) in load_concurrently(&*self.store, &moved)? {
            let known = self.parts.get(&partition).map(|(m, _)| m.version);
            if let Some(results) = results {
                let loaded = results.mark(partition);
                // A mark older than what we hold (read from a lagging replica) is no news, unless the store
                // lost the partition's results and they start again.
                let restarted = self.lost.remove(&partition);
                if !restarted && known.is_some_and(|v| v >= loaded.version) {
                    continue;
                }
                self.parts.insert(partition, (loaded, results.snapshot));
                changed = true;
            }
        }
        if !changed {
            return Ok(None);
        }
        let snapshots: Vec<Snapshot> = self.parts.values().map(|(_, s)| s.clone()).collect();
        // Each partition's version only grows, so their sum does too: a version that orders merged snapshots
        // across API servers without any coordination between them. Only a store that lost results makes a
        // sum go down; the merged version still moves up, so no ETag ever names two different answers.
        let sum: u64 = self.parts.values().map(|(m, _)| m.version).sum();
        let version = if sum > self.merged_version {
            sum
        } else {
            self.merged_version + 1
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use topsellers_store::{
        Claim, PartitionCheckpoint, PartitionResults, StoreBinding, StoreError,
    };

    /// Results a test sets directly: the follower only lists and loads.
    #[derive(Default)]
    struct ListedResults(Mutex<BTreeMap<u32, PartitionResults>>);

    impl ListedResults {
        fn set(&self, partition: u32, version: u64) {
            let snapshot = Snapshot {
                version,
                as_of_ms: 0,
                watermark_ms: 0,
                computed_at_ms: 0,
                currency: "EUR".into(),
                top_k: 10,
                windows: Vec::new(),
                lists: BTreeMap::new(),
                events_counted: version,
            };
            let results = PartitionResults {
                next_offset: version as i64,
                snapshot,
            };
            self.0.lock().unwrap().insert(partition, results);
        }

        fn lose_everything(&self) {
            self.0.lock().unwrap().clear();
        }
    }

    impl PartitionStore for ListedResults {
        fn bind(&self, _: &StoreBinding) -> Result<(), StoreError> {
            unreachable!("followers do not bind")
        }
        fn claim(&self, _: u32) -> Result<Claim, StoreError> {
            unreachable!("followers do not claim")
        }
        fn save_checkpoint(
            &self,
            _: u32,
            _: u64,
            _: &PartitionCheckpoint,
            _: &PartitionResults,
        ) -> Result<(), StoreError> {
            unreachable!("followers do not save")
        }
        fn save_results(&self, _: u32, _: u64, _: &PartitionResults) -> Result<(), StoreError> {
            unreachable!("followers do not save")
        }
        fn result_versions(&self) -> Result<Vec<ResultsMark>, StoreError> {
            let held = self.0.lock().unwrap();
            Ok(held.iter().map(|(p, r)| r.mark(*p)).collect())
        }
        fn load_results(&self, partition: u32) -> Result<Option<PartitionResults>, StoreError> {
            Ok(self.0.lock().unwrap().get(&partition).cloned())
        }
        fn describe(&self) -> String {
            "the test store".into()
        }
    }

    #[test]
    fn many_changed_partitions_load_at_once_and_merge_whole() {
        let store = Arc::new(ListedResults::default());
        let mut follower = ResultsFollower::new(store.clone());
        for p in 0..20 {
            store.set(p, u64::from(p) + 1);
        }
        let merged = follower.refresh(1).unwrap().expect("new results");
        assert_eq!(merged.events_counted, (1..=20).sum::<u64>());
        assert_eq!(follower.offsets().len(), 20);
        assert_eq!(follower.offsets()[&19], 20);
        store.set(7, 100);
        store.set(13, 100);
        let merged = follower.refresh(2).unwrap().expect("two changed");
        assert_eq!(merged.events_counted, (1..=20).sum::<u64>() - 8 - 14 + 200);
    }

    /// QA: a Redis restarted without persistence came back empty and the API servers called their old results
    /// fresh.
    #[test]
    fn a_store_that_lost_results_is_an_error_until_they_are_back() {
        let store = Arc::new(ListedResults::default());
        let mut follower = ResultsFollower::new(store.clone());
        store.set(0, 40);
        store.set(1, 60);
        let first = follower.refresh(1).unwrap().expect("new results");
        assert_eq!(first.version, 100);
        assert!(follower.refresh(2).unwrap().is_none(), "nothing changed");

        store.lose_everything();
        let err = format!("{:#}", follower.refresh(3).unwrap_err());
        assert!(
            err.contains("the test store no longer has results for partition(s) [0, 1]"),
            "{err}"
        );
        // Partly back: still an error, the missing one named.
        store.set(0, 2);
        let err = format!("{:#}", follower.refresh(4).unwrap_err());
        assert!(err.contains("partition(s) [1]"), "{err}");

        // Back with versions below the ones held: taken (the lineage restarted), and the merged version
        // still moves up.
        store.set(1, 3);
        let back = follower.refresh(5).unwrap().expect("the restarted results");
        assert_eq!(back.events_counted, 5);
        assert!(
            back.version > first.version,
            "{} after {}",
            back.version,
            first.version
        );
        assert_eq!(follower.offsets(), BTreeMap::from([(0, 2), (1, 3)]));

        // From then on the usual rule again: an older mark is a lagging replica, no news.
        store.set(1, 2);
        assert!(follower.refresh(6).unwrap().is_none());
    }
}
