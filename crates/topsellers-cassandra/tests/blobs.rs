//! What the blobs leave in Cassandra: replaced generations are deleted, a crash's leftovers are swept
//! by the next claim, fenced saves leave nothing, damage is reported rather than decoded, and claims
//! racing each other hand out distinct epochs.

mod common;

use common::TestKeyspace;
use std::collections::{BTreeMap, BTreeSet};
use topsellers_cassandra::CassandraPartitionStore;
use topsellers_model::Snapshot;
use topsellers_store::{
    PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding, StoreError,
};

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

fn checkpoint(next_offset: i64, len: usize) -> PartitionCheckpoint {
    PartitionCheckpoint {
        next_offset,
        state: (0..len).map(|i| (i * 31 % 251) as u8).collect(),
    }
}

fn bound(ks: &TestKeyspace, namespace: &str, partitions: u32) -> CassandraPartitionStore {
    let store = CassandraPartitionStore::open(&ks.settings, namespace).unwrap();
    store
        .bind(&StoreBinding {
            partitions,
            settings: "s".into(),
        })
        .unwrap();
    store
}

/// Every (generation, chunk) stored for the namespace and partition.
fn chunks(ks: &TestKeyspace, namespace: &str, partition: u32) -> BTreeSet<(String, String)> {
    ks.cql(&[&format!(
        "SELECT namespace, partition, generation, chunk FROM {}.blob_chunks",
        ks.name()
    )])
    .into_iter()
    .filter(|row| row[0] == namespace && row[1] == partition.to_string())
    .map(|row| (row[2].clone(), row[3].clone()))
    .collect()
}

/// The generations the partition row points to: (checkpoint, results).
fn live(ks: &TestKeyspace, namespace: &str, partition: u32) -> (String, String) {
    let row = ks.cql(&[&format!(
        "SELECT checkpoint_gen, results_gen FROM {}.partitions WHERE namespace = '{namespace}' AND partition = {partition}",
        ks.name()
    )]);
    (row[0][0].clone(), row[0][1].clone())
}

#[test]
fn only_the_live_generations_stay() {
    let Some(nodes) = common::cassandra("only_the_live_generations_stay") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "live");
    let store = bound(&ks, "ns", 1);
    let epoch = store.claim(0).unwrap().epoch;
    // 2.5 chunks of state: three chunks per checkpoint.
    let size = topsellers_cassandra::CHUNK_BYTES * 5 / 2;
    for i in 1..=3 {
        store
            .save_checkpoint(
                0,
                epoch,
                &checkpoint(i * 100, size),
                &results(i as u64 * 10, i * 100),
            )
            .unwrap();
        for v in 1..=3 {
            store
                .save_results(0, epoch, &results(i as u64 * 10 + v, i * 100 + v as i64))
                .unwrap();
        }
    }
    let (cp, res) = live(&ks, "ns", 0);
    let expected: BTreeSet<(String, String)> = [
        (cp.clone(), "0".to_string()),
        (cp.clone(), "1".to_string()),
        (cp, "2".to_string()),
        (res, "0".to_string()),
    ]
    .into();
    assert_eq!(chunks(&ks, "ns", 0), expected);

    // A fenced save and a refused one write nothing that stays.
    let newer = store.handle("ns").claim(0).unwrap().epoch;
    let err = store
        .save_checkpoint(0, epoch, &checkpoint(900, size), &results(90, 900))
        .unwrap_err();
    assert!(err.is_fenced(), "{err}");
    let err = store.save_results(0, newer, &results(1, 1)).unwrap_err();
    assert!(matches!(err, StoreError::ResultsBehind { .. }), "{err}");
    assert_eq!(chunks(&ks, "ns", 0), expected);
}

/// A process that died between writing chunks and flipping the pointer: the next claim deletes what it
/// left, and nothing live.
#[test]
fn a_claim_sweeps_what_a_crashed_save_left() {
    let Some(nodes) = common::cassandra("a_claim_sweeps_what_a_crashed_save_left") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "sweep");
    let store = bound(&ks, "ns", 2);
    let epoch = store.claim(1).unwrap().epoch;
    store
        .save_checkpoint(1, epoch, &checkpoint(5, 1000), &results(1, 5))
        .unwrap();
    let live_before = chunks(&ks, "ns", 1);
    assert_eq!(live_before.len(), 2);
    // What the dead process got through: its pending slot and two of its three chunks.
    let dead = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
    let name = ks.name();
    ks.cql(&[
        &format!(
            "INSERT INTO {name}.pending_blobs (namespace, partition, kind, generation, chunks, epoch) \
             VALUES ('ns', 1, 'checkpoint', {dead}, 3, {epoch})"
        ),
        &format!(
            "INSERT INTO {name}.blob_chunks (namespace, partition, generation, chunk, data) \
             VALUES ('ns', 1, {dead}, 0, 0x00)"
        ),
        &format!(
            "INSERT INTO {name}.blob_chunks (namespace, partition, generation, chunk, data) \
             VALUES ('ns', 1, {dead}, 1, 0x00)"
        ),
    ]);
    assert_eq!(chunks(&ks, "ns", 1).len(), 4);
    let claim = store.handle("ns").claim(1).unwrap();
    assert_eq!(claim.checkpoint, Some(checkpoint(5, 1000)));
    assert_eq!(chunks(&ks, "ns", 1), live_before);
}

#[test]
fn damaged_chunks_are_reported_not_decoded() {
    let Some(nodes) = common::cassandra("damaged_chunks_are_reported_not_decoded") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "damage");
    let store = bound(&ks, "ns", 1);
    let epoch = store.claim(0).unwrap().epoch;
    store
        .save_checkpoint(0, epoch, &checkpoint(5, 1000), &results(1, 5))
        .unwrap();
    let (cp, res) = live(&ks, "ns", 0);
    let name = ks.name();
    for generation in [&cp, &res] {
        ks.cql(&[&format!(
            "UPDATE {name}.blob_chunks SET data = 0x0102 \
             WHERE namespace = 'ns' AND partition = 0 AND generation = {generation} AND chunk = 0"
        )]);
    }
    let err = store.load_results(0).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::CorruptPartition {
                what: "results",
                partition: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&res),
        "names the generation: {err}"
    );
    let err = store.claim(0).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::CorruptPartition {
                what: "checkpoint",
                ..
            }
        ),
        "{err}"
    );
    // A chunk that is gone (and stays gone) is damage too, not an endless retry.
    ks.cql(&[&format!(
        "DELETE FROM {name}.blob_chunks WHERE namespace = 'ns' AND partition = 0 AND generation = {res} AND chunk = 0"
    )]);
    let err = store.load_results(0).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn racing_claims_hand_out_distinct_epochs() {
    let Some(nodes) = common::cassandra("racing_claims_hand_out_distinct_epochs") else {
        return;
    };
    let ks = TestKeyspace::new(&nodes, "race");
    let store = bound(&ks, "ns", 1);
    const THREADS: usize = 4;
    const CLAIMS: usize = 4;
    let mut epochs: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let handle = store.handle("ns");
                scope.spawn(move || {
                    (0..CLAIMS)
                        .map(|_| handle.claim(0).unwrap().epoch)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    epochs.sort();
    assert_eq!(epochs, (1..=(THREADS * CLAIMS) as u64).collect::<Vec<_>>());
}
