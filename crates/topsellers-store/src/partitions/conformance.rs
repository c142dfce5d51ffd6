//! The behaviour every [`PartitionStore`] backend must have, as one reusable suite.
//!
//! Each backend's tests call [`run_all`] with a function that opens a handle for a namespace:
//!
//! ```
//! use topsellers_store::partitions::conformance;
//! use topsellers_store::{MemoryPartitionStore, PartitionStore};
//!
//! let backend = MemoryPartitionStore::new("unused");
//! conformance::run_all(&|namespace: &str| -> Box<dyn PartitionStore> {
//!     Box::new(backend.handle(namespace))
//! });
//! ```
//!
//! The suite knows nothing of any backend: it uses only the trait, [`StoreError`] variants and the
//! types of this module. A failed check panics with what was expected; the name of the running check is
//! printed on stderr before it starts, which the test harness shows with the failure.

use super::{
    Claim, PartitionCheckpoint, PartitionResults, PartitionStore, ResultsMark, StoreBinding,
};
use crate::StoreError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use topsellers_model::{RankedItem, Snapshot, TopList, WindowBounds, WindowSpec};

/// Opens a handle on the backend under test for a namespace.
type MakeStore<'a> = &'a dyn Fn(&str) -> Box<dyn PartitionStore>;

/// Runs every check against the backend that `make` opens.
///
/// Contract for `make`: every call opens a new handle on *one* shared backend (one file, one
/// keyspace, one Redis), for the namespace given. Two calls with the same namespace are two handles on
/// the same data, as two processes would have; calls with different namespaces must not see each
/// other's data. The suite makes up a new namespace for every check (unique per run, so a backend that
/// keeps data between runs, like a Cassandra keyspace, needs no cleaning); `make` should not assume any
/// particular form of it beyond ASCII letters, digits and `-`.
pub fn run_all(make: &dyn Fn(&str) -> Box<dyn PartitionStore>) {
    // Each check by its own name, so a failure says which one ran.
    macro_rules! checks {
        ($($check:ident),* $(,)?) => {
            [$((stringify!($check), $check as fn(MakeStore<'_>))),*]
        };
    }
    let checks = checks![
        bind_records_then_checks,
        claim_needs_a_binding_and_a_partition_in_range,
        claim_increments_the_epoch_and_returns_the_last_checkpoint,
        a_stale_epoch_is_fenced_and_changes_nothing,
        save_checkpoint_is_all_or_nothing,
        readers_never_see_a_torn_save,
        results_never_go_back,
        checkpoints_never_go_back,
        result_versions_lists_every_partition_with_results,
        namespaces_are_isolated,
        big_state_round_trips,
    ];
    for (name, check) in checks {
        eprintln!("partition store conformance: {name}");
        check(make);
    }
}

/// A namespace no earlier run used: process id, wall time and a counter.
fn fresh_namespace(check: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("conformance-{check}-{}-{nanos:x}-{n}", std::process::id()).replace('_', "-")
}

/// Unwraps a store result, panicking with the error's message and what was being done.
#[track_caller]
fn ok<T>(result: Result<T, StoreError>, doing: &str) -> T {
    result.unwrap_or_else(|e| panic!("{doing}: unexpected error: {e}"))
}

/// Unwraps a store error, panicking if the call succeeded.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, StoreError>, doing: &str) -> StoreError {
    match result {
        Ok(v) => panic!("{doing}: expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

fn binding(partitions: u32) -> StoreBinding {
    StoreBinding {
        partitions,
        settings: "bucket_secs=60 windows=1h,24h,all top_k=10 lateness_secs=300".into(),
    }
}

/// A store for `namespace`, bound to `partitions`.
fn bound(make: MakeStore<'_>, namespace: &str, partitions: u32) -> Box<dyn PartitionStore> {
    let store = make(namespace);
    ok(store.bind(&binding(partitions)), "bind a fresh namespace");
    store
}

/// A snapshot whose content is a function of its arguments, so a reader can check it belongs to the
/// mark it came with.
fn snapshot(version: u64, next_offset: i64, categories: usize) -> Snapshot {
    let windows = vec![WindowSpec::parse("1h").unwrap(), WindowSpec::all()];
    let lists = (0..categories)
        .map(|c| {
            let category = format!("category-{c}/sub-{}", c % 7);
            let lists = windows
                .iter()
                .map(|w| TopList {
                    category: category.clone(),
                    window: w.name.clone(),
                    bounds: WindowBounds {
                        start_ms: w.length_secs.map(|_| 1_700_000_000_000),
                        end_ms: 1_700_003_600_000 + next_offset,
                    },
                    items: (1..=10u32)
                        .map(|rank| RankedItem {
                            rank,
                            item_id: format!("SKU-{c:04}-{rank:02}"),
                            item_name: (rank % 3 != 0).then(|| format!("Item {c} {rank}")),
                            units: next_offset + 100 - i64::from(rank),
                            revenue_minor: 1999 * i64::from(rank),
                        })
                        .collect(),
                })
                .collect();
            (category, lists)
        })
        .collect::<BTreeMap<_, _>>();
    Snapshot {
        version,
        as_of_ms: 1_700_003_600_000 + next_offset,
        watermark_ms: 1_700_003_300_000,
        computed_at_ms: 1_700_003_600_250 + next_offset,
        currency: "USD".into(),
        top_k: 10,
        windows,
        lists,
        events_counted: next_offset as u64,
    }
}

fn results(version: u64, next_offset: i64) -> PartitionResults {
    PartitionResults {
        next_offset,
        snapshot: snapshot(version, next_offset, 3),
    }
}

fn checkpoint(next_offset: i64) -> PartitionCheckpoint {
    PartitionCheckpoint {
        next_offset,
        state: format!("engine state through offset {next_offset}").into_bytes(),
    }
}

/// Deterministic bytes that no backend can compress away.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn bind_records_then_checks(make: MakeStore<'_>) {
    let ns = fresh_namespace("bind");
    let store = make(&ns);
    let first = binding(4);
    ok(store.bind(&first), "first bind");
    ok(store.bind(&first), "the same binding again");
    let other_process = make(&ns);
    ok(
        other_process.bind(&first),
        "the same binding from another handle",
    );

    let err = refused(
        other_process.bind(&StoreBinding {
            partitions: 6,
            ..first.clone()
        }),
        "bind with another partition count",
    );
    match &err {
        StoreError::PartitionCountChanged { stored, given, .. } => {
            assert_eq!((*stored, *given), (4, 6), "{err}")
        }
        _ => panic!("another partition count: expected PartitionCountChanged, got {err}"),
    }
    let text = err.to_string();
    assert!(
        text.contains('4') && text.contains('6') && text.contains(&ns),
        "the error names both counts and the store: {text}"
    );

    let changed = StoreBinding {
        settings: "bucket_secs=30 windows=1h,all top_k=20 lateness_secs=300".into(),
        ..first.clone()
    };
    let err = refused(store.bind(&changed), "bind with other settings");
    match &err {
        StoreError::SettingsChanged { stored, given, .. } => {
            assert_eq!((stored, given), (&first.settings, &changed.settings))
        }
        _ => panic!("other settings: expected SettingsChanged, got {err}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&first.settings) && text.contains(&changed.settings),
        "the error names both settings: {text}"
    );

    // A refused bind recorded nothing: the first binding still holds, for every handle.
    ok(make(&ns).bind(&first), "the first binding after refusals");
    assert!(matches!(
        make(&ns).bind(&changed),
        Err(StoreError::SettingsChanged { .. })
    ));
}

fn claim_needs_a_binding_and_a_partition_in_range(make: MakeStore<'_>) {
    let ns = fresh_namespace("claim-range");
    let store = make(&ns);
    let err = refused(store.claim(0), "claim before bind");
    assert!(
        matches!(err, StoreError::NotBound { .. }),
        "claim before bind: expected NotBound, got {err}"
    );
    ok(store.bind(&binding(4)), "bind");
    let err = refused(store.claim(4), "claim partition 4 of 4");
    match &err {
        StoreError::PartitionOutOfRange {
            partition,
            partitions,
            ..
        } => assert_eq!((*partition, *partitions), (4, 4)),
        _ => panic!("claim partition 4 of 4: expected PartitionOutOfRange, got {err}"),
    }
    assert_eq!(ok(store.claim(3), "claim partition 3 of 4").epoch, 1);
    // The refused claims did not count: partition 0 was never claimed.
    assert_eq!(ok(store.claim(0), "claim partition 0").epoch, 1);
}

fn claim_increments_the_epoch_and_returns_the_last_checkpoint(make: MakeStore<'_>) {
    let ns = fresh_namespace("claim");
    let a = bound(make, &ns, 4);
    let b = make(&ns);
    assert_eq!(
        ok(a.claim(2), "first claim"),
        Claim {
            epoch: 1,
            checkpoint: None,
            results: None
        },
        "a partition never claimed starts at epoch 1, empty"
    );
    let cp = checkpoint(1_000);
    let r = results(5, 1_000);
    ok(a.save_checkpoint(2, 1, &cp, &r), "save at epoch 1");

    let claim = ok(b.claim(2), "claim from another handle");
    assert_eq!(claim.epoch, 2);
    assert_eq!(claim.checkpoint.as_ref(), Some(&cp));
    assert_eq!(claim.results, Some(r.mark(2)));

    // Results saved after the checkpoint move the mark, not the checkpoint.
    let later = results(6, 1_500);
    ok(b.save_results(2, 2, &later), "results at epoch 2");
    let claim = ok(a.claim(2), "third claim");
    assert_eq!(claim.epoch, 3);
    assert_eq!(claim.checkpoint.as_ref(), Some(&cp));
    assert_eq!(
        claim.results,
        Some(ResultsMark {
            partition: 2,
            version: 6,
            next_offset: 1_500
        })
    );
    // Epochs are per partition.
    assert_eq!(ok(a.claim(0), "claim another partition").epoch, 1);
    assert_eq!(ok(b.claim(2), "fourth claim").epoch, 4);
}

fn a_stale_epoch_is_fenced_and_changes_nothing(make: MakeStore<'_>) {
    let ns = fresh_namespace("fenced");
    let zombie = bound(make, &ns, 4);
    let owner = make(&ns);
    let old = ok(zombie.claim(1), "first owner claims").epoch;
    let (cp, r) = (checkpoint(100), results(1, 100));
    ok(zombie.save_checkpoint(1, old, &cp, &r), "first owner saves");
    let new = ok(owner.claim(1), "second owner claims").epoch;
    assert_eq!(new, old + 1);

    let expect_fenced = |result: Result<(), StoreError>, doing: &str, epoch: u64, current: u64| {
        let err = refused(result, doing);
        assert!(err.is_fenced(), "{doing}: expected Fenced, got {err}");
        match err {
            StoreError::Fenced {
                partition,
                epoch: e,
                current: c,
                ..
            } => assert_eq!((partition, e, c), (1, epoch, current), "{doing}"),
            _ => unreachable!(),
        }
    };
    let (cp2, r2) = (checkpoint(200), results(2, 200));
    expect_fenced(
        zombie.save_checkpoint(1, old, &cp2, &r2),
        "checkpoint with the old epoch",
        old,
        new,
    );
    expect_fenced(
        zombie.save_results(1, old, &r2),
        "results with the old epoch",
        old,
        new,
    );
    expect_fenced(
        zombie.save_results(1, new + 1, &r2),
        "results with an epoch never handed out",
        new + 1,
        new,
    );
    // A partition never claimed has epoch 0, and no epoch (not even 0) may write to it.
    for epoch in [0, 1] {
        let err = refused(
            zombie.save_checkpoint(2, epoch, &cp2, &r2),
            "save to a partition never claimed",
        );
        assert!(
            matches!(err, StoreError::Fenced { current: 0, .. }),
            "save to a partition never claimed with epoch {epoch}: expected Fenced at 0, got {err}"
        );
    }

    // Nothing of the fenced writes is visible.
    for reader in [&zombie, &owner] {
        assert_eq!(
            ok(reader.result_versions(), "list after fenced writes"),
            vec![r.mark(1)]
        );
        assert_eq!(
            ok(reader.load_results(1), "load after fenced writes"),
            Some(r.clone())
        );
        assert_eq!(ok(reader.load_results(2), "load partition 2"), None);
    }
    let claim = ok(owner.claim(1), "claim after fenced writes");
    assert_eq!(claim.checkpoint, Some(cp));
    assert_eq!(claim.results, Some(r.mark(1)));
    // The owner fenced itself out by claiming again; the newest claim writes.
    expect_fenced(
        owner.save_results(1, new, &r2),
        "results with the superseded epoch",
        new,
        claim.epoch,
    );
    ok(
        owner.save_checkpoint(1, claim.epoch, &cp2, &r2),
        "save with the newest epoch",
    );
}

fn save_checkpoint_is_all_or_nothing(make: MakeStore<'_>) {
    let ns = fresh_namespace("atomic");
    let store = bound(make, &ns, 2);
    let epoch = ok(store.claim(0), "claim").epoch;
    let (cp, r) = (checkpoint(500), results(10, 500));
    ok(store.save_checkpoint(0, epoch, &cp, &r), "save");

    // A checkpoint that is fine with results that are refused: neither is written.
    let err = refused(
        store.save_checkpoint(0, epoch, &checkpoint(600), &results(9, 600)),
        "checkpoint forward, results version back",
    );
    assert!(
        matches!(err, StoreError::ResultsBehind { .. }),
        "expected ResultsBehind, got {err}"
    );
    // Results that are fine with a checkpoint that is refused: neither is written.
    let err = refused(
        store.save_checkpoint(0, epoch, &checkpoint(400), &results(11, 600)),
        "checkpoint back, results forward",
    );
    assert!(
        matches!(err, StoreError::PartitionCheckpointBehind { .. }),
        "expected PartitionCheckpointBehind, got {err}"
    );
    assert_eq!(ok(store.load_results(0), "load"), Some(r.clone()));
    let claim = ok(make(&ns).claim(0), "claim from another handle");
    assert_eq!(claim.checkpoint, Some(cp));
    assert_eq!(claim.results, Some(r.mark(0)));

    // A save that is accepted is seen whole, by any handle.
    let (cp2, r2) = (checkpoint(700), results(12, 700));
    ok(
        store.save_checkpoint(0, claim.epoch, &cp2, &r2),
        "save with the new epoch",
    );
    let other = make(&ns);
    assert_eq!(ok(other.load_results(0), "load"), Some(r2.clone()));
    assert_eq!(ok(other.result_versions(), "list"), vec![r2.mark(0)]);
    let claim = ok(other.claim(0), "claim");
    assert_eq!(
        (claim.checkpoint, claim.results),
        (Some(cp2), Some(r2.mark(0)))
    );
}

/// While one handle saves in a loop, readers on other handles only ever see results whose content
/// matches their mark, and marks that never go back.
fn readers_never_see_a_torn_save(make: MakeStore<'_>) {
    let ns = fresh_namespace("torn");
    let writer = bound(make, &ns, 1);
    let readers: Vec<Box<dyn PartitionStore>> = (0..2).map(|_| make(&ns)).collect();
    let epoch = ok(writer.claim(0), "claim").epoch;
    let done = AtomicBool::new(false);
    const SAVES: i64 = 150;
    std::thread::scope(|scope| {
        for reader in &readers {
            let done = &done;
            scope.spawn(move || {
                let mut last = ResultsMark {
                    partition: 0,
                    version: 0,
                    next_offset: 0,
                };
                let mut loads = 0u64;
                while !done.load(Ordering::Acquire) || loads == 0 {
                    let marks = ok(reader.result_versions(), "list while saving");
                    if let Some(&mark) = marks.first() {
                        assert!(
                            mark.version >= last.version && mark.next_offset >= last.next_offset,
                            "the mark went back from {last:?} to {mark:?}"
                        );
                        last = mark;
                    }
                    if let Some(r) = ok(reader.load_results(0), "load while saving") {
                        loads += 1;
                        // Every save below has version == offset / 10 and a snapshot built from both.
                        assert_eq!(
                            r.snapshot.version as i64 * 10,
                            r.next_offset,
                            "torn results"
                        );
                        assert_eq!(
                            r.snapshot,
                            snapshot(r.snapshot.version, r.next_offset, 3),
                            "torn snapshot"
                        );
                        assert!(
                            r.snapshot.version >= last.version,
                            "load older than the list"
                        );
                    }
                    std::thread::yield_now();
                }
            });
        }
        for i in 1..=SAVES {
            let r = results(i as u64, i * 10);
            if i % 5 == 0 {
                ok(
                    writer.save_checkpoint(0, epoch, &checkpoint(i * 10), &r),
                    "checkpoint in the loop",
                );
            } else {
                ok(writer.save_results(0, epoch, &r), "results in the loop");
            }
        }
        done.store(true, Ordering::Release);
    });
    assert_eq!(
        ok(readers[0].result_versions(), "list at the end"),
        vec![results(SAVES as u64, SAVES * 10).mark(0)]
    );
}

fn results_never_go_back(make: MakeStore<'_>) {
    let ns = fresh_namespace("results-forward");
    let store = bound(make, &ns, 1);
    let epoch = ok(store.claim(0), "claim").epoch;
    ok(
        store.save_results(0, epoch, &results(5, 100)),
        "first results",
    );

    let behind = |version: u64, offset: i64, doing: &str| {
        let err = refused(
            store.save_results(0, epoch, &results(version, offset)),
            doing,
        );
        match &err {
            StoreError::ResultsBehind {
                next_offset,
                version: v,
                stored_offset,
                stored_version,
                ..
            } => assert_eq!(
                (*next_offset, *v, *stored_offset, *stored_version),
                (offset, version, 100, 5),
                "{doing}"
            ),
            _ => panic!("{doing}: expected ResultsBehind, got {err}"),
        }
    };
    behind(6, 90, "a higher version at an older offset");
    behind(4, 100, "an older version at the same offset");
    behind(4, 120, "an older version at a newer offset");
    behind(
        5,
        120,
        "the same version at a newer offset (readers would miss it)",
    );
    behind(5, 90, "the same version at an older offset");
    assert_eq!(
        ok(store.result_versions(), "list after refusals"),
        vec![results(5, 100).mark(0)]
    );

    ok(
        store.save_results(0, epoch, &results(5, 100)),
        "an exact repeat (a retry) is accepted",
    );
    ok(
        store.save_results(0, epoch, &results(6, 100)),
        "a new version at the same offset (time moved, no records)",
    );
    ok(
        store.save_results(0, epoch, &results(9, 250)),
        "a higher version at a newer offset",
    );
    // save_checkpoint applies the same rule to its results.
    let err = refused(
        store.save_checkpoint(0, epoch, &checkpoint(200), &results(10, 200)),
        "checkpoint with results behind the stored ones",
    );
    assert!(
        matches!(err, StoreError::ResultsBehind { .. }),
        "expected ResultsBehind, got {err}"
    );
    ok(
        store.save_checkpoint(0, epoch, &checkpoint(250), &results(9, 250)),
        "checkpoint repeating the stored results",
    );
    // The rule holds across owners: the next one must catch up before it publishes.
    let claim = ok(make(&ns).claim(0), "claim");
    assert_eq!(claim.results, Some(results(9, 250).mark(0)));
    let next = make(&ns);
    assert!(matches!(
        next.save_results(0, claim.epoch, &results(1, 250)),
        Err(StoreError::ResultsBehind { .. })
    ));
    ok(
        next.save_results(0, claim.epoch, &results(10, 260)),
        "the new owner, caught up, numbering above the stored version",
    );
    assert_eq!(ok(store.load_results(0), "load"), Some(results(10, 260)));
}

fn checkpoints_never_go_back(make: MakeStore<'_>) {
    let ns = fresh_namespace("checkpoint-forward");
    let store = bound(make, &ns, 1);
    let epoch = ok(store.claim(0), "claim").epoch;
    ok(
        store.save_checkpoint(0, epoch, &checkpoint(1_000), &results(1, 1_000)),
        "first checkpoint",
    );
    let err = refused(
        store.save_checkpoint(0, epoch, &checkpoint(999), &results(2, 1_000)),
        "a checkpoint at an older offset",
    );
    match &err {
        StoreError::PartitionCheckpointBehind {
            next_offset,
            stored,
            ..
        } => assert_eq!((*next_offset, *stored), (999, 1_000)),
        _ => panic!("expected PartitionCheckpointBehind, got {err}"),
    }
    let same_offset = PartitionCheckpoint {
        next_offset: 1_000,
        state: b"same offset, state with a later wall-clock tick".to_vec(),
    };
    ok(
        store.save_checkpoint(0, epoch, &same_offset, &results(2, 1_000)),
        "a checkpoint at the same offset",
    );
    let claim = ok(store.claim(0), "claim");
    assert_eq!(claim.checkpoint, Some(same_offset));
    assert_eq!(claim.results, Some(results(2, 1_000).mark(0)));
}

fn result_versions_lists_every_partition_with_results(make: MakeStore<'_>) {
    let ns = fresh_namespace("versions");
    let store = bound(make, &ns, 8);
    assert_eq!(
        ok(store.result_versions(), "list of a fresh namespace"),
        vec![]
    );
    let epochs: Vec<u64> = (0..8).map(|p| ok(store.claim(p), "claim").epoch).collect();
    // Claimed is not listed: only partitions with results are.
    assert_eq!(ok(store.result_versions(), "list after claims"), vec![]);
    for (p, version, offset) in [(5, 3, 30), (1, 7, 70), (3, 1, 10)] {
        ok(
            store.save_results(p, epochs[p as usize], &results(version, offset)),
            "results",
        );
    }
    ok(
        store.save_checkpoint(6, epochs[6], &checkpoint(60), &results(2, 60)),
        "checkpoint with results",
    );
    let expected = vec![
        ResultsMark {
            partition: 1,
            version: 7,
            next_offset: 70,
        },
        ResultsMark {
            partition: 3,
            version: 1,
            next_offset: 10,
        },
        ResultsMark {
            partition: 5,
            version: 3,
            next_offset: 30,
        },
        ResultsMark {
            partition: 6,
            version: 2,
            next_offset: 60,
        },
    ];
    let reader = make(&ns); // a reader needs no binding
    assert_eq!(ok(reader.result_versions(), "list"), expected);
    ok(
        store.save_results(3, epochs[3], &results(4, 45)),
        "new results for partition 3",
    );
    let mut expected = expected;
    expected[1] = ResultsMark {
        partition: 3,
        version: 4,
        next_offset: 45,
    };
    assert_eq!(
        ok(reader.result_versions(), "list after an update"),
        expected
    );
    for mark in &expected {
        let loaded = ok(
            reader.load_results(mark.partition),
            "load a listed partition",
        )
        .unwrap_or_else(|| panic!("partition {} is listed but has no results", mark.partition));
        assert_eq!(loaded.mark(mark.partition), *mark);
        assert_eq!(loaded, results(mark.version, mark.next_offset));
    }
    assert_eq!(
        ok(reader.load_results(0), "load a partition without results"),
        None
    );
    assert_eq!(
        ok(
            reader.load_results(100),
            "load a partition that does not exist"
        ),
        None
    );
}

fn namespaces_are_isolated(make: MakeStore<'_>) {
    let (ns_a, ns_b) = (fresh_namespace("isolated-a"), fresh_namespace("isolated-b"));
    let a = make(&ns_a);
    let b = make(&ns_b);
    ok(a.bind(&binding(4)), "bind a");
    // Another partition count and other settings in another namespace are no mismatch.
    ok(
        b.bind(&StoreBinding {
            partitions: 8,
            settings: "something else entirely".into(),
        }),
        "bind b",
    );
    assert_eq!(ok(a.claim(0), "claim a/0").epoch, 1);
    let epoch_a = ok(a.claim(0), "claim a/0 again").epoch;
    assert_eq!(epoch_a, 2);
    let epoch_b = ok(b.claim(0), "claim b/0").epoch;
    assert_eq!(epoch_b, 1, "epochs are per namespace");
    ok(
        a.save_checkpoint(0, epoch_a, &checkpoint(40), &results(4, 40)),
        "save a/0",
    );
    // b's claim of its partition 0 did not fence a's, and a's data is not b's.
    assert_eq!(ok(b.result_versions(), "list b"), vec![]);
    assert_eq!(ok(b.load_results(0), "load b/0"), None);
    assert_eq!(ok(b.claim(0), "claim b/0 again").checkpoint, None);
    assert!(
        matches!(b.claim(5), Ok(Claim { epoch: 1, .. })),
        "b has 8 partitions even though a has 4"
    );
    assert!(matches!(
        a.claim(5),
        Err(StoreError::PartitionOutOfRange { .. })
    ));
    assert_eq!(
        ok(a.result_versions(), "list a"),
        vec![results(4, 40).mark(0)]
    );
    assert_ne!(a.describe(), b.describe());
    assert!(
        a.describe().contains(&ns_a),
        "describe names the namespace: {}",
        a.describe()
    );
}

fn big_state_round_trips(make: MakeStore<'_>) {
    const BIG: usize = 20 * 1024 * 1024;
    let ns = fresh_namespace("big");
    let store = bound(make, &ns, 1);
    let epoch = ok(store.claim(0), "claim").epoch;
    let first = PartitionCheckpoint {
        next_offset: 1_000_000,
        state: noise(BIG, 1),
    };
    // Results with a few thousand lists, as a real site's partition has.
    let big_results = PartitionResults {
        next_offset: 1_000_000,
        snapshot: snapshot(1, 1_000_000, 2_000),
    };
    ok(
        store.save_checkpoint(0, epoch, &first, &big_results),
        "save 20 MB of state",
    );
    let claim = ok(make(&ns).claim(0), "claim the big state");
    assert!(
        claim.checkpoint.as_ref() == Some(&first),
        "20 MB of state came back different: {:?}",
        claim.checkpoint
    );
    assert_eq!(
        ok(store.load_results(0), "load the big results"),
        Some(big_results)
    );
    // Replaced by another big state, which must not mix with the first.
    let second = PartitionCheckpoint {
        next_offset: 2_000_000,
        state: noise(BIG + 12_345, 2),
    };
    ok(
        store.save_checkpoint(0, claim.epoch, &second, &results(2, 2_000_000)),
        "save another 20 MB of state",
    );
    let claim = ok(make(&ns).claim(0), "claim the second big state");
    assert!(
        claim.checkpoint.as_ref() == Some(&second),
        "the second 20 MB came back different: {:?}",
        claim.checkpoint
    );
}
