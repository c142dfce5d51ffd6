//! The store is synchronous over an async driver: it must work from plain threads and from inside
//! another tokio runtime's `spawn_blocking`, and may be dropped anywhere.

mod common;

use std::collections::BTreeMap;
use topsellers_cassandra::CassandraPartitionStore;
use topsellers_model::Snapshot;
use topsellers_store::{PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding};

fn results(version: u64, next_offset: i64) -> PartitionResults {
    PartitionResults {
        next_offset,
        snapshot: Snapshot {
            version,
            as_of_ms: 1_000,
            watermark_ms: 0,
            computed_at_ms: 1_000,
            currency: "USD".into(),
            top_k: 10,
            windows: Vec::new(),
            lists: BTreeMap::new(),
            events_counted: next_offset as u64,
        },
    }
}

#[test]
fn works_inside_spawn_blocking_of_another_runtime_and_drops_inside_async_code() {
    let Some(nodes) = common::cassandra("works_inside_spawn_blocking_of_another_runtime") else {
        return;
    };
    let ks = common::TestKeyspace::new(&nodes, "runtime");
    let settings = ks.settings.clone();
    let caller = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = caller.block_on(async move {
        tokio::task::spawn_blocking(move || {
            // Opening (connect + schema) and every call, from a blocking thread of `caller`.
            let store = CassandraPartitionStore::open(&settings, "ns").unwrap();
            store
                .bind(&StoreBinding {
                    partitions: 1,
                    settings: "s".into(),
                })
                .unwrap();
            let epoch = store.claim(0).unwrap().epoch;
            let checkpoint = PartitionCheckpoint {
                next_offset: 10,
                state: b"state".to_vec(),
            };
            store
                .save_checkpoint(0, epoch, &checkpoint, &results(1, 10))
                .unwrap();
            store.save_results(0, epoch, &results(2, 12)).unwrap();
            assert_eq!(store.result_versions().unwrap()[0].version, 2);
            assert_eq!(store.load_results(0).unwrap(), Some(results(2, 12)));
            store
        })
        .await
        .unwrap()
    });
    // A handle used from a plain thread while the caller's runtime still runs.
    let other = store.handle("ns");
    assert_eq!(other.claim(0).unwrap().epoch, 2);
    // Dropping the last handles inside an async task must not panic (dropping a runtime there would).
    caller.block_on(async move {
        tokio::spawn(async move {
            drop(store);
            drop(other);
        })
        .await
        .unwrap();
    });
}

/// A current-thread runtime (as `#[tokio::test]` makes) is the easiest place to deadlock: its only
/// thread is blocked in `spawn_blocking`'s caller.
#[test]
fn works_from_a_current_thread_runtime() {
    let Some(nodes) = common::cassandra("works_from_a_current_thread_runtime") else {
        return;
    };
    let ks = common::TestKeyspace::new(&nodes, "current");
    let store = CassandraPartitionStore::open(&ks.settings, "ns").unwrap();
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = caller.block_on(async move {
        tokio::task::spawn_blocking(move || {
            store
                .bind(&StoreBinding {
                    partitions: 3,
                    settings: "s".into(),
                })
                .unwrap();
            assert_eq!(store.claim(2).unwrap().epoch, 1);
            store
        })
        .await
        .unwrap()
    });
    assert_eq!(store.claim(2).unwrap().epoch, 2);
}
