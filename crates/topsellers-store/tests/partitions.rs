//! The SQLite partition store: the conformance suite, then what only a shared file can get wrong:
//! several processes and connections claiming and saving at once, opening a new file together, locks
//! held by others, reopening, schema versions and damaged rows.
//!
//! The multi-process test re-executes this test binary: the parent runs the ignored test
//! `partitions_child_worker` in child processes, which work on the same file as the parent's threads.

mod common;

use common::snapshot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use topsellers_store::partitions::conformance;
use topsellers_store::{
    PartitionCheckpoint, PartitionResults, PartitionStore, SqlitePartitionStore, StoreBinding,
    StoreError,
};

#[test]
fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partitions.db");
    conformance::run_all(&|namespace: &str| -> Box<dyn PartitionStore> {
        Box::new(SqlitePartitionStore::open(&path, namespace).unwrap())
    });
}

// ---------------------------------------------------------------------------------------------------
// Concurrent owners. Every worker follows the aggregator protocol: claim a partition, resume from its
// checkpoint, catch up to the published results before publishing, save with its epoch until fenced.
// The checkpoint state is a chain: each save stores the previous stored count + 1. If a fenced owner's
// write ever got through, the next owner would build on a state that was then overwritten (or the
// other way round), so the final count would fall short of the number of successful saves: a lost or
// doubly counted step, exactly what fencing exists to prevent.

const PARTITIONS: u32 = 3;
const NAMESPACE: &str = "purchases";
const PATH_ENV: &str = "TOPSELLERS_PSTORE_CHILD_PATH";
const WORKER_ENV: &str = "TOPSELLERS_PSTORE_CHILD_WORKER";
const START_ENV: &str = "TOPSELLERS_PSTORE_CHILD_START_MS";

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits for the wall-clock moment every process was told to start at, so they really overlap.
fn wait_until(start_ms: u64) {
    while wall_ms() < start_ms {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn group_binding() -> StoreBinding {
    StoreBinding {
        partitions: PARTITIONS,
        settings: "bucket_secs=60 windows=1h,all top_k=10".into(),
    }
}

/// The state after `count` successful checkpoints, by `worker` at `epoch`; padded so a save moves
/// more than one page.
fn chain_state(count: u64, worker: u64, epoch: u64) -> Vec<u8> {
    let mut state = format!("count={count} worker={worker} epoch={epoch};").into_bytes();
    state.resize(state.len() + 20_000, b'.');
    state
}

fn chain_count(state: &[u8]) -> u64 {
    let text =
        std::str::from_utf8(&state[..state.iter().position(|&b| b == b';').unwrap()]).unwrap();
    text.split(' ').next().unwrap()["count=".len()..]
        .parse()
        .unwrap()
}

fn results_at(version: u64, next_offset: i64) -> PartitionResults {
    let mut snapshot = snapshot(version);
    snapshot.events_counted = next_offset as u64;
    PartitionResults {
        next_offset,
        snapshot,
    }
}

/// What one worker did, per partition.
#[derive(Debug, Default)]
struct Report {
    checkpoints: BTreeMap<u32, u64>,
    results: u64,
    fenced: u64,
}

/// Claims partitions in turn and works on each until fenced or `steps` records are done. Panics on
/// any error but [`StoreError::Fenced`].
fn work(path: &Path, worker: u64, rounds: u64, steps: u64) -> Report {
    let store = SqlitePartitionStore::open(path, NAMESPACE).unwrap();
    store.bind(&group_binding()).unwrap();
    let mut report = Report::default();
    // Random, not round-robin: workers in lockstep would otherwise never pick the same partition.
    let mut rng = StdRng::seed_from_u64(worker);
    for _ in 0..rounds {
        let partition = rng.gen_range(0..PARTITIONS);
        let claim = store.claim(partition).unwrap();
        let epoch = claim.epoch;
        let (mut offset, mut count) = claim
            .checkpoint
            .as_ref()
            .map_or((0, 0), |c| (c.next_offset, chain_count(&c.state)));
        assert_eq!(
            offset as u64,
            count * 3,
            "partition {partition}: the checkpoint's offset and state disagree"
        );
        let (published_offset, mut version) =
            claim.results.map_or((0, 0), |r| (r.next_offset, r.version));
        for _ in 0..steps {
            // The work of consuming a record, during which other processes get at the file.
            std::thread::sleep(Duration::from_micros(200));
            offset += 1; // one record consumed
            if offset < published_offset {
                continue; // catching up: the previous owner published these already
            }
            let saved = if offset % 3 == 0 {
                let checkpoint = PartitionCheckpoint {
                    next_offset: offset,
                    state: chain_state(count + 1, worker, epoch),
                };
                store.save_checkpoint(
                    partition,
                    epoch,
                    &checkpoint,
                    &results_at(version + 1, offset),
                )
            } else {
                store.save_results(partition, epoch, &results_at(version + 1, offset))
            };
            match saved {
                Ok(()) => {
                    version += 1;
                    if offset % 3 == 0 {
                        count += 1;
                        *report.checkpoints.entry(partition).or_default() += 1;
                    } else {
                        report.results += 1;
                    }
                }
                Err(StoreError::Fenced { .. }) => {
                    report.fenced += 1;
                    break;
                }
                Err(e) => panic!("worker {worker}, partition {partition}, epoch {epoch}: {e}"),
            }
        }
    }
    report
}

/// Checks the file against the successful checkpoint saves of every worker.
fn check_final_state(path: &Path, reports: &[Report]) {
    let reader = SqlitePartitionStore::open(path, NAMESPACE).unwrap();
    let marks = reader.result_versions().unwrap();
    for partition in 0..PARTITIONS {
        let saves: u64 = reports
            .iter()
            .map(|r| r.checkpoints.get(&partition).copied().unwrap_or(0))
            .sum();
        let claim = reader.claim(partition).unwrap();
        let count = claim
            .checkpoint
            .as_ref()
            .map_or(0, |c| chain_count(&c.state));
        assert_eq!(
            count, saves,
            "partition {partition}: {saves} checkpoints were acknowledged, the stored chain counts {count}"
        );
        let checkpoint_offset = claim.checkpoint.map_or(0, |c| c.next_offset);
        let loaded = reader.load_results(partition).unwrap();
        let mark = marks.iter().find(|m| m.partition == partition).copied();
        assert_eq!(loaded.as_ref().map(|r| r.mark(partition)), mark);
        if let Some(r) = loaded {
            assert!(
                r.next_offset >= checkpoint_offset,
                "results behind the checkpoint"
            );
            assert_eq!(
                r.snapshot.events_counted, r.next_offset as u64,
                "torn results row"
            );
        }
    }
}

#[test]
fn handles_in_threads_fence_each_other_and_never_see_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partitions.db");
    let start = Arc::new(Barrier::new(4));
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|worker| {
                let (path, start) = (&path, Arc::clone(&start));
                scope.spawn(move || {
                    start.wait();
                    work(path, worker, 24, 20)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let fenced: u64 = reports.iter().map(|r| r.fenced).sum();
    let saved: u64 = reports.iter().flat_map(|r| r.checkpoints.values()).sum();
    assert!(
        fenced > 0 && saved > 0,
        "the workers must both collide and progress: {reports:?}"
    );
    check_final_state(&path, &reports);
}

#[test]
#[ignore = "child process of processes_fence_each_other_and_never_see_busy; runs only when re-executed by it"]
fn partitions_child_worker() {
    let path = std::env::var_os(PATH_ENV)
        .expect("only processes_fence_each_other_and_never_see_busy runs this");
    let worker: u64 = std::env::var(WORKER_ENV).unwrap().parse().unwrap();
    wait_until(std::env::var(START_ENV).unwrap().parse().unwrap());
    let report = work(Path::new(&path), worker, 30, 20);
    for (partition, saves) in &report.checkpoints {
        println!("REPORT checkpoints {partition} {saves}");
    }
    println!("REPORT fenced {}", report.fenced);
}

#[test]
fn processes_fence_each_other_and_never_see_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partitions.db");
    // The file does not exist yet: the processes also race to create the schema and the binding.
    // Starting a process takes a while; all start working at one moment, well after that.
    let start_ms = wall_ms() + 1_000;
    let children: Vec<_> = (0..2u64)
        .map(|worker| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "partitions_child_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(PATH_ENV, &path)
                .env(WORKER_ENV, worker.to_string())
                .env(START_ENV, start_ms.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_until(start_ms);
    let mine = work(&path, 2, 30, 20);
    let mut reports = vec![mine];
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a child worker failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut report = Report::default();
        // The harness may print its own text before ours on the same line.
        for line in stdout
            .lines()
            .filter_map(|l| l.split_once("REPORT ").map(|(_, r)| r))
        {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["checkpoints", p, n] => {
                    report
                        .checkpoints
                        .insert(p.parse().unwrap(), n.parse().unwrap());
                }
                ["fenced", n] => report.fenced = n.parse().unwrap(),
                _ => {}
            }
        }
        assert!(
            !report.checkpoints.is_empty(),
            "a child reported no checkpoint at all:\n{stdout}"
        );
        reports.push(report);
    }
    let fenced: u64 = reports.iter().map(|r| r.fenced).sum();
    assert!(fenced > 0, "the processes never collided: {reports:?}");
    check_final_state(&path, &reports);
}

// ---------------------------------------------------------------------------------------------------

#[test]
fn many_connections_opening_a_new_file_at_once_create_it_once() {
    // The race (switching a new file to WAL while others open it) is lost only now and then, so
    // run it on many new files.
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("partitions.db");
        let start = Barrier::new(8);
        let mut epochs: Vec<u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        let store = SqlitePartitionStore::open(&path, NAMESPACE)
                            .unwrap_or_else(|e| panic!("round {round}: open: {e}"));
                        store.bind(&group_binding()).unwrap();
                        store.claim(0).unwrap().epoch
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        epochs.sort_unstable();
        assert_eq!(
            epochs,
            (1..=8).collect::<Vec<u64>>(),
            "every claim got its own epoch"
        );
    }
}

#[test]
fn a_writer_waits_for_another_connections_transaction_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partitions.db");
    let store = SqlitePartitionStore::open(&path, NAMESPACE).unwrap();
    store.bind(&group_binding()).unwrap();
    let epoch = store.claim(0).unwrap().epoch;
    // Another process (here a plain connection, as an operator's sqlite3 shell) holds the write lock.
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let held = Duration::from_millis(400);
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            std::thread::sleep(held);
            other.execute_batch("COMMIT").unwrap();
        });
        store.save_results(0, epoch, &results_at(1, 10)).unwrap();
    });
    assert!(
        started.elapsed() >= held,
        "the save did not wait for the lock"
    );
    assert_eq!(store.load_results(0).unwrap(), Some(results_at(1, 10)));
}

#[test]
fn reopening_after_the_writer_is_dropped_sees_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partitions.db");
    let binding = group_binding();
    let big_state = (0..3_000_000u32)
        .flat_map(|i| i.to_le_bytes())
        .collect::<Vec<u8>>();
    {
        let writer = SqlitePartitionStore::open(&path, NAMESPACE).unwrap();
        writer.bind(&binding).unwrap();
        for partition in 0..PARTITIONS {
            let epoch = writer.claim(partition).unwrap().epoch;
            let offset = 100 * i64::from(partition + 1);
            let checkpoint = PartitionCheckpoint {
                next_offset: offset,
                state: big_state.iter().map(|b| b ^ partition as u8).collect(),
            };
            writer
                .save_checkpoint(partition, epoch, &checkpoint, &results_at(1, offset))
                .unwrap();
            writer
                .save_results(partition, epoch, &results_at(2, offset + 5))
                .unwrap();
        }
    }
    let reopened = SqlitePartitionStore::open(&path, NAMESPACE).unwrap();
    reopened.bind(&binding).unwrap();
    let err = reopened
        .bind(&StoreBinding {
            partitions: PARTITIONS + 1,
            ..binding.clone()
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PartitionCountChanged { .. }),
        "{err}"
    );
    let marks = reopened.result_versions().unwrap();
    assert_eq!(
        marks,
        (0..PARTITIONS)
            .map(|p| results_at(2, 100 * i64::from(p + 1) + 5).mark(p))
            .collect::<Vec<_>>()
    );
    for partition in 0..PARTITIONS {
        let offset = 100 * i64::from(partition + 1);
        let claim = reopened.claim(partition).unwrap();
        assert_eq!(claim.epoch, 2);
        let checkpoint = claim.checkpoint.unwrap();
        assert_eq!(checkpoint.next_offset, offset);
        assert!(
            checkpoint
                .state
                .iter()
                .zip(&big_state)
                .all(|(s, b)| *s == b ^ partition as u8)
                && checkpoint.state.len() == big_state.len(),
            "partition {partition}: the state came back different"
        );
        assert_eq!(
            reopened.load_results(partition).unwrap(),
            Some(results_at(2, offset + 5))
        );
    }
}

#[test]
fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partitions.db");
    drop(SqlitePartitionStore::open(&path, NAMESPACE).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE pstore_schema SET version = 99", [])
        .unwrap();
    let err = SqlitePartitionStore::open(&path, NAMESPACE).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade topsellers"), "{err}");
}

#[test]
fn the_file_can_hold_other_tables_and_a_user_version() {
    // The partition store keeps its version in its own table, so a file that is also something
    // else (here: one with a user_version and a table of its own) is left alone.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA user_version = 7; CREATE TABLE other (x INTEGER);")
        .unwrap();
    let store = SqlitePartitionStore::open(&path, NAMESPACE).unwrap();
    store.bind(&group_binding()).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 7);
}

#[test]
fn damaged_rows_are_reported_by_partition_not_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partitions.db");
    let store = SqlitePartitionStore::open(&path, NAMESPACE).unwrap();
    store.bind(&group_binding()).unwrap();
    let epoch = store.claim(1).unwrap().epoch;
    let checkpoint = PartitionCheckpoint {
        next_offset: 9,
        state: b"engine state".to_vec(),
    };
    store
        .save_checkpoint(1, epoch, &checkpoint, &results_at(1, 9))
        .unwrap();
    let raw = Connection::open(&path).unwrap();

    // A flipped byte in the snapshot: the checksum catches it.
    let mut blob: Vec<u8> = raw
        .query_row("SELECT snapshot FROM pstore_results", [], |r| r.get(0))
        .unwrap();
    let middle = blob.len() / 2;
    blob[middle] ^= 0x40;
    raw.execute("UPDATE pstore_results SET snapshot = ?1", [&blob])
        .unwrap();
    let err = store.load_results(1).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::CorruptPartition {
                partition: 1,
                what: "results",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.is_corrupt() && err.to_string().contains("checksum mismatch"),
        "{err}"
    );

    // A snapshot in a format this build does not know, with a matching checksum (a newer writer).
    let mut newer = topsellers_store::partitions::encode_snapshot(&snapshot(1));
    newer[0] = topsellers_store::partitions::SNAPSHOT_FORMAT + 1;
    let checksum = xxh3(&newer);
    raw.execute(
        "UPDATE pstore_results SET snapshot = ?1, checksum = ?2",
        rusqlite::params![newer, checksum],
    )
    .unwrap();
    let err = store.load_results(1).unwrap_err();
    assert!(err.to_string().contains("snapshot format 2"), "{err}");

    // A damaged checkpoint is refused by the claim that would resume from it.
    raw.execute("UPDATE pstore_checkpoint SET state = X'00'", [])
        .unwrap();
    let err = store.claim(1).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::CorruptPartition {
                partition: 1,
                what: "checkpoint",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&store.describe()), "{err}");
}

/// The checksum the store keeps beside a blob, as SQLite holds it (the u64's bit pattern).
fn xxh3(bytes: &[u8]) -> i64 {
    xxhash_rust::xxh3::xxh3_64(bytes) as i64
}
