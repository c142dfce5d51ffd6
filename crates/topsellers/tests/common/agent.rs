//! Helpers for the agent's end-to-end tests against a real `topsellers serve`: processes that are killed when the
//! test ends, logs kept for the personal-data scan, results polled until they match.
#![allow(dead_code)]

use super::{bin, http, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "agent-test-token-0123456789";

/// A node that takes every purchase of 2026-01-01 (no idle advance, a day of lateness) and checkpoints often.
pub const NODE_CONFIG: &str = r#"
[engine]
allowed_lateness_secs = 86400
[node]
idle_advance = false
checkpoint_interval_secs = 1
[server]
auth_token = "agent-test-token-0123456789"
[input]
format = "jsonl"
"#;

/// Personal data planted in the inputs, which must be found nowhere downstream of the agent.
pub const PLANTED: [&str; 6] = [
    "Zelda Plantedname",
    "zelda.planted@example.com",
    "4111 1111 1111 1111",
    "+44 20 7946 0958",
    "221B Plantedstreet",
    "203.0.113.77",
];

/// Kills what it holds when the test ends, however it ends.
pub struct Procs(pub Vec<Child>);
impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn log_file(log: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap()
}

pub fn spawn_agent(config: &Path, log: &Path) -> Child {
    Command::new(bin())
        .args(["agent", "--config"])
        .arg(config)
        .stdout(log_file(log))
        .stderr(log_file(log))
        .spawn()
        .expect("starting topsellers agent")
}

/// `topsellers serve` with its output in `log` (scanned for personal data).
pub fn spawn_serve_logged(config: &Path, data_dir: &Path, port: u16, log: &Path) -> Child {
    Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(log_file(log))
        .stderr(log_file(log))
        .spawn()
        .expect("starting topsellers serve")
}

/// Waits until something listens on `port`.
pub fn wait_listening(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `topsellers results` of a data directory (also beside a running server), without the version.
pub fn results(config: &Path, dir: &Path) -> Value {
    try_results(config, dir).unwrap_or_else(|e| panic!("{e}"))
}

/// [`results`], or the error (a node that has written no results yet, say).
pub fn try_results(config: &Path, dir: &Path) -> Result<Value, String> {
    let out = run(&["results", "--n", "100"], config, dir);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_object_mut().unwrap().remove("version");
    Ok(v)
}

/// The results of one clean replay of `lines` (canonical purchases) into a fresh data directory.
pub fn reference_results(config: &Path, work: &Path, lines: &[String]) -> Value {
    let file = work.join("reference.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let dir = work.join("reference");
    let out = run(
        &["replay", "--no-progress", file.to_str().unwrap()],
        config,
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    results(config, &dir)
}

/// Polls the node's results until they equal `expected`; panics with `context()` after `within`.
pub fn wait_for_results(
    config: &Path,
    dir: &Path,
    expected: &Value,
    within: Duration,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + within;
    loop {
        if try_results(config, dir).is_ok_and(|r| r == *expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node's results never equalled the reference; {}",
            context()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn assert_no_planted(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for p in PLANTED {
        assert!(
            !text.contains(p),
            "{what} holds planted personal data {p:?}"
        );
    }
    assert!(
        !text.contains("Plantedname") && !text.contains("zelda.planted"),
        "{what} holds planted personal data"
    );
}

/// Every file under each directory and each log: no planted personal data.
pub fn assert_none_planted_in(dirs: &[&Path], logs: &[&Path]) {
    for dir in dirs {
        for f in files_under(dir) {
            assert_no_planted(&f.display().to_string(), &std::fs::read(&f).unwrap());
        }
    }
    for log in logs {
        assert_no_planted(&log.display().to_string(), &std::fs::read(log).unwrap());
    }
}

/// What the node's API shows: the categories, every top list of every window, the metrics.
pub fn api_dump(port: u16) -> String {
    let get = |path: &str| {
        let r = http(port, "GET", path, &[], b"").unwrap();
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.body
    };
    let categories = get("/v1/categories");
    let v: Value = serde_json::from_str(&categories).unwrap();
    let mut dump = categories.clone();
    let windows: Vec<String> = v["windows"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|x| x.as_str().or_else(|| x["name"].as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<String> = v["categories"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["path"].as_str().or_else(|| c.as_str()).map(String::from))
        .collect();
    for window in &windows {
        dump.push_str(&get(&format!("/v1/top?window={window}&n=100")));
        for c in &names {
            dump.push_str(&get(&format!("/v1/top?category={c}&window={window}&n=100")));
        }
    }
    dump.push_str(&get("/metrics"));
    dump.push_str(&get("/"));
    dump
}

/// The dead letters in the agent's state directory.
pub fn dead_letters(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("dead_letters.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
