//! The embedded store's contract: round trips, seq rules, truncation, bounded size, locking, schema
//! versions, and clear errors on damaged files.

mod common;

use common::{batch, snapshot};
use rusqlite::Connection;
use std::path::Path;
use topsellers_model::LogRecord;
use topsellers_store::{EmbeddedStore, StoreError, DB_FILE};

fn read_all(store: &EmbeddedStore, after: u64) -> Vec<(u64, Vec<LogRecord>)> {
    let mut out = Vec::new();
    store
        .read_after(after, &mut |seq, records| {
            out.push((seq, records));
            Ok(())
        })
        .unwrap();
    out
}

/// A plain connection to the database, as an operator's sqlite3 shell would have.
fn raw(dir: &Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

#[test]
fn appended_batches_read_back_in_order_after_any_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.last_seq().unwrap(), 0);
    assert!(read_all(&store, 0).is_empty());
    let batches: Vec<Vec<LogRecord>> = vec![
        batch(0, 3),
        vec![LogRecord::Tick { now_ms: 42 }],
        vec![],
        batch(3, 100),
    ];
    let seqs: Vec<u64> = batches.iter().map(|b| store.append(b).unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(store.last_seq().unwrap(), seqs[3]);

    let all = read_all(&store, 0);
    assert_eq!(
        all,
        seqs.iter()
            .copied()
            .zip(batches.iter().cloned())
            .collect::<Vec<_>>()
    );
    let tail = read_all(&store, seqs[1]);
    assert_eq!(tail.iter().map(|(s, _)| *s).collect::<Vec<_>>(), &seqs[2..]);
    assert!(read_all(&store, u64::MAX).is_empty());

    let stats = store.stats().unwrap();
    assert_eq!(stats.log_entries, 4);
    assert_eq!(stats.log_records, 104);
    assert!(stats.log_bytes > 0 && stats.db_file_bytes > 0);
    assert_eq!((stats.checkpoint_bytes, stats.checkpoint_seq), (0, 0));
}

#[test]
fn a_visitor_error_stops_the_read_and_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    for b in 0..3 {
        store.append(&batch(b, 2)).unwrap();
    }
    let mut visited = 0;
    let err = store
        .read_after(0, &mut |seq, _| {
            visited += 1;
            Err(StoreError::CheckpointAhead {
                path: "visitor".into(),
                covers_seq: seq,
                last_seq: 0,
            })
        })
        .unwrap_err();
    assert_eq!(visited, 1);
    assert!(matches!(
        err,
        StoreError::CheckpointAhead { covers_seq: 1, .. }
    ));
}

#[test]
fn log_and_meta_survive_reopen_and_seq_keeps_growing() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let mut store = EmbeddedStore::open(dir.path()).unwrap();
        store.set_meta("engine", "windows=1h,24h").unwrap();
        store.set_meta("engine", "windows=1h,24h,all").unwrap();
        store.append(&batch(1, 5)).unwrap()
    };
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get_meta("engine").unwrap().as_deref(),
        Some("windows=1h,24h,all")
    );
    assert_eq!(store.get_meta("absent").unwrap(), None);
    assert_eq!(read_all(&store, 0), vec![(first, batch(1, 5))]);
    let second = store.append(&batch(2, 5)).unwrap();
    assert!(second > first);
}

#[test]
fn checkpoint_truncates_the_log_and_seqs_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    let s1 = store.append(&batch(1, 10)).unwrap();
    let s2 = store.append(&batch(2, 10)).unwrap();
    let s3 = store.append(&batch(3, 10)).unwrap();

    store
        .save_checkpoint(s2, b"state-at-2", &snapshot(1))
        .unwrap();
    let cp = store.load_checkpoint().unwrap().unwrap();
    assert_eq!(
        (cp.covers_seq, cp.state.as_slice()),
        (s2, &b"state-at-2"[..])
    );
    assert!(cp.saved_at_ms > 1_600_000_000_000);
    assert_eq!(store.load_results().unwrap(), Some(snapshot(1)));
    // Only the entry behind the checkpoint is left, even when asked from the start.
    assert_eq!(read_all(&store, 0), vec![(s3, batch(3, 10))]);
    let stats = store.stats().unwrap();
    assert_eq!((stats.log_entries, stats.checkpoint_seq), (1, s2));
    assert_eq!(stats.checkpoint_bytes, 10);

    // Truncate everything; the next seq must still be above every seq handed out, also after reopen.
    store
        .save_checkpoint(s3, b"state-at-3", &snapshot(2))
        .unwrap();
    assert!(read_all(&store, 0).is_empty());
    assert_eq!(store.last_seq().unwrap(), s3);
    drop(store);
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.last_seq().unwrap(), s3);
    let s4 = store.append(&batch(4, 1)).unwrap();
    assert!(s4 > s3 && s3 > s1, "{s1} {s3} {s4}");
    assert_eq!(
        store.load_checkpoint().unwrap().unwrap().state,
        b"state-at-3"
    );
    assert_eq!(store.load_results().unwrap(), Some(snapshot(2)));
}

#[test]
fn a_checkpoint_may_not_run_ahead_of_the_log_or_fall_behind_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    // Covering nothing on an empty store is how a fresh node saves its first state.
    store.save_checkpoint(0, b"empty", &snapshot(0)).unwrap();
    let s1 = store.append(&batch(1, 1)).unwrap();
    let s2 = store.append(&batch(2, 1)).unwrap();
    let ahead = store
        .save_checkpoint(s2 + 1, b"x", &snapshot(1))
        .unwrap_err();
    assert!(
        matches!(ahead, StoreError::CheckpointAhead { .. }),
        "{ahead}"
    );
    store.save_checkpoint(s2, b"at-2", &snapshot(1)).unwrap();
    let behind = store.save_checkpoint(s1, b"x", &snapshot(2)).unwrap_err();
    assert!(
        matches!(behind, StoreError::CheckpointBehind { .. }),
        "{behind}"
    );
    // The refused checkpoints changed nothing.
    assert_eq!(store.load_checkpoint().unwrap().unwrap().state, b"at-2");
    assert_eq!(store.load_results().unwrap(), Some(snapshot(1)));
    // Re-checkpointing the same position (say, after only ticks) is fine.
    store
        .save_checkpoint(s2, b"at-2-again", &snapshot(2))
        .unwrap();
}

#[test]
fn second_open_is_refused_while_the_first_lives() {
    let dir = tempfile::tempdir().unwrap();
    let first = EmbeddedStore::open(dir.path()).unwrap();
    let err = EmbeddedStore::open(dir.path()).unwrap_err();
    let expected = format!(
        "data directory {} is in use by another topsellers process (pid {})",
        dir.path().display(),
        std::process::id()
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
    drop(first);
    EmbeddedStore::open(dir.path()).unwrap();
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/data");
    let mut store = EmbeddedStore::open(&nested).unwrap();
    store.append(&batch(0, 1)).unwrap();
    assert!(nested.join(DB_FILE).exists());
    assert!(nested.join("LOCK").exists());
}

#[test]
fn a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    raw(dir.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade topsellers"), "{err}");
}

#[test]
fn the_database_is_in_wal_mode_with_incremental_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let _store = EmbeddedStore::open(dir.path()).unwrap();
    let conn = raw(dir.path());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let vacuum: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), vacuum), ("wal", 2));
}

#[test]
fn a_file_that_is_not_a_database_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 64 * 1024]).unwrap();
    let err = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(err.is_corrupt(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(DB_FILE) && text.contains("away and replay the inputs"),
        "{text}"
    );
}

#[test]
fn a_truncated_database_gives_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = EmbeddedStore::open(dir.path()).unwrap();
        for b in 0..50 {
            store.append(&batch(b, 200)).unwrap();
        }
    }
    let path = dir.path().join(DB_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    // Closing checkpointed the WAL into the file; cut the file in half.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let outcome = EmbeddedStore::open(dir.path()).and_then(|store| {
        store.read_after(0, &mut |_, _| Ok(()))?;
        store.stats()
    });
    let err = outcome.expect_err("reading a half database must fail");
    assert!(err.is_corrupt(), "{err:?}");
    assert!(err.to_string().contains("replay the inputs"), "{err}");
}

#[test]
fn a_damaged_log_entry_is_reported_by_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    let good = store.append(&batch(1, 4)).unwrap();
    let bad = store.append(&batch(2, 4)).unwrap();
    // Flip one byte of the second entry behind the store's back.
    raw(dir.path())
        .execute(
            "UPDATE log SET body = substr(body, 1, 10) || x'ff' || substr(body, 12) WHERE seq = ?1",
            [bad as i64],
        )
        .unwrap();
    let mut seen = Vec::new();
    let err = store
        .read_after(0, &mut |seq, _| {
            seen.push(seq);
            Ok(())
        })
        .unwrap_err();
    assert_eq!(seen, vec![good]);
    match &err {
        StoreError::CorruptEntry { seq, .. } => assert_eq!(*seq, bad),
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!("log entry {bad} in ")),
        "{err}"
    );
}

#[test]
fn checkpoints_hand_freed_space_back_to_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    let seq = store.append(&batch(0, 1)).unwrap();
    store
        .save_checkpoint(seq, &vec![7u8; 8 << 20], &snapshot(1))
        .unwrap();
    let big = store.stats().unwrap().db_file_bytes;
    assert!(big > 8 << 20, "{big}");
    store.save_checkpoint(seq, b"small", &snapshot(2)).unwrap();
    let stats = store.stats().unwrap();
    assert!(stats.db_file_bytes < 256 * 1024, "{stats:?}");
    assert_eq!(
        stats.wal_bytes, 0,
        "the WAL is truncated at each checkpoint"
    );
}

/// The directory must stay proportional to one checkpoint interval, not to the events ever seen.
#[test]
fn size_stays_bounded_over_many_append_and_checkpoint_cycles() {
    const CYCLES: u64 = 200;
    const RECORDS_PER_CYCLE: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    let state = vec![3u8; 64 * 1024];
    let mut first_cycle_peak = 0;
    let mut peak_after_warmup = 0;
    for cycle in 0..CYCLES {
        // Group commit as the node does it: a few batches per checkpoint interval.
        let mut last = 0;
        for part in 0..4 {
            last = store
                .append(&batch(cycle * 4 + part, RECORDS_PER_CYCLE / 4))
                .unwrap();
        }
        let before = store.stats().unwrap();
        assert_eq!(before.log_records, RECORDS_PER_CYCLE);
        store
            .save_checkpoint(last, &state, &snapshot(cycle))
            .unwrap();
        let after = store.stats().unwrap();
        assert_eq!(after.log_entries, 0);
        let peak =
            (before.db_file_bytes + before.wal_bytes).max(after.db_file_bytes + after.wal_bytes);
        if cycle == 0 {
            first_cycle_peak = peak;
        } else if cycle >= CYCLES / 2 {
            peak_after_warmup = peak_after_warmup.max(peak);
        }
    }
    let stats = store.stats().unwrap();
    eprintln!(
        "bounded size: first cycle peak {first_cycle_peak} B, peak over cycles {}..{CYCLES} {peak_after_warmup} B, \
         final db {} B, wal {} B",
        CYCLES / 2,
        stats.db_file_bytes,
        stats.wal_bytes
    );
    assert!(
        peak_after_warmup <= 2 * first_cycle_peak,
        "directory grew from {first_cycle_peak} to {peak_after_warmup} bytes"
    );
}

#[test]
fn a_read_only_handle_reads_beside_the_running_writer() {
    let dir = tempfile::tempdir().unwrap();
    let missing = EmbeddedStore::open_read_only(dir.path()).unwrap_err();
    assert!(matches!(missing, StoreError::Missing { .. }), "{missing}");

    let mut writer = EmbeddedStore::open(dir.path()).unwrap();
    let s1 = writer.append(&batch(1, 3)).unwrap();
    writer.save_checkpoint(s1, b"state", &snapshot(5)).unwrap();
    let s2 = writer.append(&batch(2, 3)).unwrap();

    let mut reader = EmbeddedStore::open_read_only(dir.path()).unwrap();
    assert!(reader.is_read_only() && !writer.is_read_only());
    assert_eq!(reader.load_results().unwrap(), Some(snapshot(5)));
    assert_eq!(reader.last_seq().unwrap(), s2);
    assert_eq!(read_all(&reader, 0), vec![(s2, batch(2, 3))]);
    // The writer goes on; the reader sees it.
    let s3 = writer.append(&batch(3, 1)).unwrap();
    assert_eq!(reader.last_seq().unwrap(), s3);

    for err in [
        reader.append(&batch(4, 1)).unwrap_err(),
        reader.set_meta("k", "v").unwrap_err(),
        reader.save_checkpoint(s3, b"x", &snapshot(6)).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    }
    assert_eq!(writer.last_seq().unwrap(), s3);
}

/// The node moves its store onto a dedicated thread.
#[test]
fn handles_can_move_between_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<EmbeddedStore>();
    assert_send::<topsellers_store::DeadLetterFile>();
    // anyhow in the binary needs errors that are Send + Sync.
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<StoreError>();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let seq = std::thread::spawn(move || {
        let mut store = store;
        store.append(&batch(0, 1)).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(seq, 1);
}

#[test]
fn checkpoint_and_its_metadata_land_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    let seq = store.append(&batch(0, 10)).unwrap();
    store
        .save_checkpoint_with_meta(
            seq,
            b"state",
            &snapshot(1),
            &[("replay/x", "record 10"), ("other", "v")],
        )
        .unwrap();
    assert_eq!(
        store.get_meta("replay/x").unwrap().as_deref(),
        Some("record 10")
    );
    assert_eq!(store.get_meta("other").unwrap().as_deref(), Some("v"));
    // A refused checkpoint leaves the metadata as it was.
    let err = store
        .save_checkpoint_with_meta(
            seq + 5,
            b"state2",
            &snapshot(2),
            &[("replay/x", "record 99")],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::CheckpointAhead { .. }), "{err}");
    assert_eq!(
        store.get_meta("replay/x").unwrap().as_deref(),
        Some("record 10")
    );
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.get_meta("replay/x").unwrap().as_deref(),
        Some("record 10")
    );
    assert_eq!(store.load_checkpoint().unwrap().unwrap().state, b"state");
}
