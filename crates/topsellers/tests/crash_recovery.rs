//! kill -9 at random moments while purchases are being posted, restart, resend what was not acknowledged: the
//! final results equal those of one uninterrupted replay of the same events. Nothing acknowledged is lost, nothing
//! is counted twice.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[engine]
allowed_lateness_secs = 300
[node]
idle_advance = false
checkpoint_interval_secs = 1
# Checkpoints (and log truncations) every few batches, so kills land before, during and after them.
checkpoint_every_records = 5000
[server]
auth_token = "crash-test-token"
[input]
format = "jsonl"
"#;

fn stored_results(config: &Path, dir: &Path) -> Value {
    let out = run(&["results", "--n", "100"], config, dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Versions count snapshots, which differ between runs by design; everything else must be equal.
    v.as_object_mut().unwrap().remove("version");
    v
}

/// Writes `n` generated purchases starting 2026-01-01 (fixed, so runs compare).
fn generate_events(n: u64, path: &Path) {
    let out = std::process::Command::new(bin())
        .args([
            "generate",
            "--events",
            &n.to_string(),
            "--start",
            "2026-01-01T00:00:00Z",
            "--out",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The reference every interrupted run is held to: one uninterrupted replay of the same file.
fn clean_replay(config: &Path, events: &Path, dir: &Path) -> Value {
    let out = run(
        &["replay", "--no-progress", events.to_str().unwrap()],
        config,
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stored_results(config, dir)
}

/// A small deterministic generator for kill delays, so a failure can be reproduced from the printed seed.
struct XorShift(u64);
impl XorShift {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

#[test]
fn kill_9_at_random_points_loses_and_doubles_nothing() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("crash.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let events = work.path().join("events.jsonl");
    generate_events(40000, &events);

    // The reference: one uninterrupted replay of the same file.
    let reference = clean_replay(&config, &events, &work.path().join("reference"));

    // The crash run: post in batches over HTTP while another thread kill -9s the server at random moments.
    let lines: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let batches: Vec<String> = lines.chunks(100).map(|c| c.join("\n")).collect();
    let dir = work.path().join("crashed");
    let port = free_port();
    let server = Arc::new(Mutex::new(spawn_serve(&config, &dir, port)));
    assert!(
        wait_healthy(port, Duration::from_secs(30)),
        "server did not start"
    );
    let done = Arc::new(AtomicBool::new(false));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed {seed}");
    // Kill points are chosen by progress (after a random number of acknowledged batches, plus a random few
    // milliseconds so the kill lands mid-request), not by wall time: how fast the batches go differs between debug
    // and release builds and between machines, and every run must kill several times while posting.
    let posted = Arc::new(AtomicUsize::new(0));
    let mut rng = XorShift(seed);
    let mut kill_points: Vec<usize> = (0..6)
        .map(|_| rng.next_ms(5, batches.len() as u64 - 5) as usize)
        .collect();
    kill_points.sort_unstable();
    let killer = {
        let (server, done, posted, config, dir) = (
            server.clone(),
            done.clone(),
            posted.clone(),
            config.clone(),
            dir.clone(),
        );
        std::thread::spawn(move || {
            let mut kills = 0;
            for point in kill_points {
                while posted.load(Ordering::SeqCst) < point && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if done.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(rng.next_ms(0, 15)));
                let mut child = server.lock().unwrap();
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                *child = spawn_serve(&config, &dir, port);
                assert!(
                    wait_healthy(port, Duration::from_secs(60)),
                    "server did not restart after kill {kills}"
                );
            }
            kills
        })
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    for (i, batch) in batches.iter().enumerate() {
        loop {
            assert!(
                Instant::now() < deadline,
                "posting did not finish in time (batch {i})"
            );
            match http(
                port,
                "POST",
                "/v1/purchases",
                &[
                    ("Authorization", "Bearer crash-test-token"),
                    ("Content-Type", "application/x-ndjson"),
                ],
                batch.as_bytes(),
            ) {
                Ok(r) if r.status == 200 => {
                    posted.store(i + 1, Ordering::SeqCst);
                    break;
                }
                Ok(r) if r.status == 503 || r.status >= 500 => {}
                Ok(r) => panic!("batch {i} got {}: {}", r.status, r.body),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    done.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();
    eprintln!(
        "server was killed {kills} times while {} batches were posted",
        batches.len()
    );
    assert!(
        kills >= 3,
        "the test must kill the server several times, killed {kills}"
    );
    terminate(&mut server.lock().unwrap());

    let crashed = stored_results(&config, &dir);
    assert_eq!(crashed["events_counted"], reference["events_counted"]);
    assert_eq!(
        crashed, reference,
        "results after kill -9 and restarts differ from an uninterrupted run"
    );
}

#[test]
fn a_replay_killed_half_way_and_run_again_counts_everything_once() {
    let work = tempfile::tempdir().unwrap();
    // No event ids in the mapping: the node makes them up from the file and the record's position.
    let config = work.path().join("replay.toml");
    std::fs::write(
        &config,
        "[node]\nidle_advance = false\ncheckpoint_interval_secs = 1\ncheckpoint_every_records = 20000\nmax_batch_records = 2000\n\
         [input]\nformat = \"csv\"\n[input.fields]\nitem_id = \"item_id\"\nitem_name = \"item_name\"\n\
         category = \"category\"\nquantity = \"quantity\"\nunit_price = \"unit_price\"\ntime = \"time\"\n\
         original_time = \"original_time\"\ncurrency = \"currency\"\n",
    )
    .unwrap();
    let events = work.path().join("events.csv");
    generate_events(200000, &events);

    // Kill at random points inside the time a clean replay takes here, whatever the build and the machine.
    let started = Instant::now();
    let reference = clean_replay(&config, &events, &work.path().join("reference"));
    let clean_ms = (started.elapsed().as_millis() as u64).max(50);

    let dir = work.path().join("interrupted");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed {seed}");
    let mut rng = XorShift(seed);
    let mut killed = 0;
    for _ in 0..3 {
        let mut child = std::process::Command::new(bin())
            .args(["replay", "--no-progress", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&dir)
            .arg(&events)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(
            rng.next_ms(clean_ms / 20, clean_ms * 3 / 5),
        ));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
    }
    let out = run(
        &["replay", "--no-progress", events.to_str().unwrap()],
        &config,
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("replay was killed {killed} times before the final run");
    assert!(
        killed >= 1,
        "no replay was killed: they all finished within {clean_ms} ms"
    );
    let resumed = stored_results(&config, &dir);
    assert_eq!(
        resumed, reference,
        "an interrupted and repeated replay differs from one clean replay"
    );
}
