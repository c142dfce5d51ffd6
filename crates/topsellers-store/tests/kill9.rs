//! Durability under `kill -9`: every seq that `append` returned before the kill is on disk afterwards.
//!
//! The test binary re-executes itself: the parent runs the ignored test `kill9_child_writer` in a
//! child process, which appends batches (and checkpoints now and then) in a loop and prints each
//! returned seq. The parent SIGKILLs it at a random moment, reopens the store, and checks that every
//! printed seq is either covered by the checkpoint or present in the log with exactly its records.

mod common;

use common::{batch, snapshot};
use rand::Rng;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use topsellers_store::EmbeddedStore;

const DIR_ENV: &str = "TOPSELLERS_STORE_KILL9_DIR";
const ROUND_ENV: &str = "TOPSELLERS_STORE_KILL9_ROUND";
const ROUNDS: u64 = 5;
/// The child stops by itself after this long, so a parent that failed to kill it leaves nothing behind.
const CHILD_MAX_RUN: Duration = Duration::from_secs(30);
const CHECKPOINT_EVERY_BATCHES: u64 = 25;

/// One acknowledged append as the child reported it.
struct Acked {
    seq: u64,
    batch_no: u64,
    size: u64,
}

fn batch_size(batch_no: u64) -> u64 {
    1 + batch_no % 50
}

fn checkpoint_state(covers_seq: u64) -> Vec<u8> {
    format!("state through {covers_seq}").into_bytes()
}

#[test]
#[ignore = "child process of every_acknowledged_seq_survives_kill_9; runs only when re-executed by it"]
fn kill9_child_writer() {
    let dir =
        std::env::var_os(DIR_ENV).expect("only every_acknowledged_seq_survives_kill_9 runs this");
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let mut store = EmbeddedStore::open(dir.as_ref()).unwrap();
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut previous_seq = store.last_seq().unwrap();
    for b in 0.. {
        let batch_no = round * 1_000_000 + b;
        let size = batch_size(batch_no);
        let seq = store.append(&batch(batch_no, size)).unwrap();
        // The seq is printed only after append returned: this line is the "HTTP OK".
        writeln!(out, "seq {seq} batch {batch_no} size {size}").unwrap();
        out.flush().unwrap();
        if b % CHECKPOINT_EVERY_BATCHES == CHECKPOINT_EVERY_BATCHES - 1 {
            // Leave the newest entry in the log so recovery always has both a checkpoint and a tail.
            store
                .save_checkpoint(
                    previous_seq,
                    &checkpoint_state(previous_seq),
                    &snapshot(seq),
                )
                .unwrap();
        }
        previous_seq = seq;
        if started.elapsed() > CHILD_MAX_RUN {
            break;
        }
    }
}

#[test]
fn every_acknowledged_seq_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut highest_so_far = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "kill9_child_writer", "--nocapture"])
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut acked = Vec::new();
        let mut take = |line: String| {
            if let Some(rest) = line.strip_prefix("seq ") {
                let f: Vec<u64> = rest.split(' ').filter_map(|w| w.parse().ok()).collect();
                acked.push(Acked {
                    seq: f[0],
                    batch_no: f[1],
                    size: f[2],
                });
                true
            } else {
                false
            }
        };
        // Kill only once the child is really appending, then at a random moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the child printed no seq within 60 s");
            if take(line) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in lines.iter() {
            take(line);
        }
        reader.join().unwrap();

        let store = EmbeddedStore::open(dir.path()).unwrap();
        let covers = store.load_checkpoint().unwrap().map_or(0, |cp| {
            assert_eq!(cp.state, checkpoint_state(cp.covers_seq));
            cp.covers_seq
        });
        let mut in_log = std::collections::BTreeMap::new();
        store
            .read_after(covers, &mut |seq, records| {
                in_log.insert(seq, records);
                Ok(())
            })
            .unwrap();
        for a in &acked {
            assert!(a.seq > highest_so_far, "seq {} reused after a crash", a.seq);
            if a.seq <= covers {
                continue;
            }
            let records = in_log
                .get(&a.seq)
                .unwrap_or_else(|| panic!("round {round}: acknowledged seq {} is lost", a.seq));
            assert_eq!(records, &batch(a.batch_no, a.size), "seq {}", a.seq);
        }
        let last = acked.last().unwrap().seq;
        assert!(store.last_seq().unwrap() >= last);
        eprintln!(
            "round {round}: {} appends acknowledged before the kill, checkpoint at {covers}, {} entries in the log",
            acked.len(),
            in_log.len()
        );
        highest_so_far = store.last_seq().unwrap();
    }
}
