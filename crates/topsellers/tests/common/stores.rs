//! Helpers for the tests that run the cluster shape on each results store (`cluster.results_store` = SQLite,
//! Cassandra, Redis or Redis Cluster): the store's config text, API servers (`topsellers api`) and a steady HTTP
//! loader that records every answer that is not a 2xx.
#![allow(dead_code)]

use super::http;
use super::kafka::{ClusterSetup, Reaper};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the aggregators of a test keep their checkpoints and results. Each test names its own keyspace or key
/// prefix, so tests sharing one server never see each other's partitions.
#[derive(Clone, Debug)]
pub enum StoreChoice {
    /// A SQLite file in the test's folder.
    Sqlite,
    /// `contact_points`: `host:port,host:port`; replication `SimpleStrategy` with `factor` copies; QUORUM reads and
    /// writes (the defaults).
    Cassandra {
        contact_points: String,
        keyspace: String,
        factor: u32,
    },
    /// `addresses`: `host:port,host:port` (one for a standalone server, any nodes of a cluster).
    Redis {
        addresses: String,
        cluster: bool,
        key_prefix: String,
    },
}

impl StoreChoice {
    /// A Cassandra store in a fresh keyspace named after `prefix`.
    pub fn cassandra(contact_points: &str, prefix: &str, factor: u32) -> StoreChoice {
        StoreChoice::Cassandra {
            contact_points: contact_points.to_string(),
            keyspace: unique_identifier(prefix),
            factor,
        }
    }

    /// A Redis store under a fresh key prefix named after `prefix`.
    pub fn redis(addresses: &str, cluster: bool, prefix: &str) -> StoreChoice {
        StoreChoice::Redis {
            addresses: addresses.to_string(),
            cluster,
            key_prefix: unique_identifier(prefix),
        }
    }

    /// The value of `cluster.results_store` (a SQLite file under `dir`).
    pub fn results_store(&self, dir: &Path) -> String {
        match self {
            StoreChoice::Sqlite => format!("sqlite:{}", dir.join("results.db").display()),
            StoreChoice::Cassandra { .. } => "cassandra".into(),
            StoreChoice::Redis { .. } => "redis".into(),
        }
    }

    /// The store's own config section (`[cassandra]`, `[redis]`), empty for SQLite.
    pub fn section(&self) -> String {
        let list = |csv: &str, scheme: &str| {
            csv.split(',')
                .map(|a| format!("\"{scheme}{}\"", a.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            StoreChoice::Sqlite => String::new(),
            StoreChoice::Cassandra {
                contact_points,
                keyspace,
                factor,
            } => format!(
                "[cassandra]\ncontact_points = [{}]\nkeyspace = \"{keyspace}\"\nread_consistency = \"QUORUM\"\n\
                 write_consistency = \"QUORUM\"\nreplication = {{ strategy = \"SimpleStrategy\", factor = {factor} }}\n",
                list(contact_points, "")
            ),
            StoreChoice::Redis {
                addresses,
                cluster,
                key_prefix,
            } => format!(
                "[redis]\nurls = [{}]\ncluster = {cluster}\nkey_prefix = \"{key_prefix}\"\n",
                list(addresses, "redis://")
            ),
        }
    }
}

/// `<prefix>_<pid>_<nanos>`: letters, digits and `_` only, valid as a Cassandra keyspace (at most 48 characters)
/// and as a Redis key prefix.
pub fn unique_identifier(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000);
    assert!(id.len() <= 48, "identifier too long: {id}");
    id
}

/// The address of the service named by `var` (`TOPSELLERS_TEST_CASSANDRA`, `..._REDIS`, ...), or `None` after a
/// skip note; under CI a missing service is a failure, as in [`super::kafka::kafka_from_env`].
pub fn service_from_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set under CI: scripts/test.sh must start it (scripts/services.sh start ...)");
            }
            eprintln!("SKIPPED: {var} is not set; run ./scripts/test.sh (it starts the services) to run this test");
            None
        }
    }
}

/// Runs `scripts/services.sh ARGS`; panics when it fails.
pub fn services(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .expect("running scripts/services.sh");
    assert!(status.success(), "scripts/services.sh {args:?} failed");
}

/// Writes `count` generated events starting at `start` to `<dir>/<name>`.
pub fn generate(setup: &ClusterSetup, name: &str, events: u64, start: &str) -> PathBuf {
    let path = setup.dir.path().join(name);
    let out = setup.run(&[
        "generate",
        "--events",
        &events.to_string(),
        "--out",
        path.to_str().unwrap(),
        "--start",
        start,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Splits a JSON-lines file into `n` files of consecutive lines (a stream arriving in parts).
pub fn split(path: &Path, n: usize) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let per = lines.len().div_ceil(n);
    lines
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            let p = path.with_file_name(format!(
                "{}-part-{i:02}.jsonl",
                path.file_stem().unwrap().to_string_lossy()
            ));
            super::kafka::write_lines(&p, chunk);
            p
        })
        .collect()
}

/// Starts `topsellers api` on a free port; its log goes to `<dir>/api-<name>.log`. Returns the child and port.
pub fn spawn_api(setup: &ClusterSetup, name: &str) -> (Child, u16) {
    let port = super::free_port();
    let log = std::fs::File::create(setup.dir.path().join(format!("api-{name}.log"))).unwrap();
    let child = setup
        .command(&["api", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "topsellers=info,warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting topsellers api");
    (child, port)
}

pub fn api_log(setup: &ClusterSetup, name: &str) -> String {
    std::fs::read_to_string(setup.dir.path().join(format!("api-{name}.log"))).unwrap_or_default()
}

/// Every log of the setup's folder (aggregators, API servers), for a failure message.
pub fn all_logs(setup: &ClusterSetup) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(setup.dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            // The end of each log is what matters; a long one is cut.
            let tail: String = text
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            format!("--- {}\n{tail}\n", p.file_name().unwrap().to_string_lossy())
        })
        .collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `/v1/top` path of one category (`""`: site-wide) and window.
pub fn top_path(category: &str, window: &str, n: usize) -> String {
    if category.is_empty() {
        format!("/v1/top?window={}&n={n}", encode(window))
    } else {
        format!(
            "/v1/top?category={}&window={}&n={n}",
            encode(category),
            encode(window)
        )
    }
}

/// The ranked items of a list, as the parts that `results` and `/v1/top` share.
fn ranked(items: &serde_json::Value) -> Vec<(u64, String, i64, i64)> {
    items
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["rank"].as_u64().unwrap_or(0),
                        i["item_id"].as_str().unwrap_or("").to_string(),
                        i["units"].as_i64().unwrap_or(0),
                        i["revenue_minor"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where the API server on `port` disagrees with `expected` (a `comparable` results JSON): `None` when it serves
/// every list of it, item for item, and counted the same events.
pub fn api_differs(port: u16, expected: &serde_json::Value) -> Option<String> {
    let ready = match http(port, "GET", "/readyz", &[], b"") {
        Ok(r) => r,
        Err(e) => return Some(format!("/readyz: {e}")),
    };
    let ready: serde_json::Value = serde_json::from_str(&ready.body).unwrap_or_default();
    if ready["events_counted"] != expected["events_counted"] {
        return Some(format!(
            "events_counted {} (expected {})",
            ready["events_counted"], expected["events_counted"]
        ));
    }
    for list in expected["lists"].as_array().into_iter().flatten() {
        let category = list["category"].as_str().unwrap_or("");
        let window = list["window"].as_str().unwrap_or("");
        let path = top_path(category, window, 10);
        let got = match http(port, "GET", &path, &[], b"") {
            Ok(r) if r.status == 200 => r,
            Ok(r) => return Some(format!("{path}: status {} {}", r.status, r.body)),
            Err(e) => return Some(format!("{path}: {e}")),
        };
        let body: serde_json::Value = match serde_json::from_str(&got.body) {
            Ok(b) => b,
            Err(e) => return Some(format!("{path}: not JSON ({e}): {}", got.body)),
        };
        let (want, have) = (ranked(&list["items"]), ranked(&body["items"]));
        if want != have {
            return Some(format!("{path}: served {have:?}, expected {want:?}"));
        }
    }
    None
}

/// Waits until the API server on `port` serves `expected` (see [`api_differs`]), up to `limit`; returns the last
/// difference seen, `None` when it matched.
pub fn wait_api_serves(port: u16, expected: &serde_json::Value, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let diff = api_differs(port, expected)?;
        if Instant::now() > deadline {
            return Some(diff);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `/readyz` of the server on `port` as JSON (`Null` when it does not answer 200).
pub fn readyz(port: u16) -> serde_json::Value {
    match http(port, "GET", "/readyz", &[], b"") {
        Ok(r) if r.status == 200 => serde_json::from_str(&r.body).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

/// Whether a response carries `X-Results-Stale`.
pub fn is_stale(r: &super::Response) -> bool {
    r.headers
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("x-results-stale:"))
}

/// Waits until `check` holds, up to `limit`; returns whether it did.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

/// What a [`Loader`] saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub ok: u64,
    pub stale: u64,
    /// Answers that were not 2xx, and requests that got no answer at all (the first few of each, described).
    pub failures: u64,
    pub examples: Vec<String>,
}

/// A thread doing GETs of `paths` on every server of `ports`, one after another, until stopped: the steady
/// readers of a shop's pages during a failure.
pub struct Loader {
    stop: Arc<AtomicBool>,
    pub requests: Arc<AtomicU64>,
    report: Arc<Mutex<LoadReport>>,
    handle: Option<JoinHandle<()>>,
}

impl Loader {
    pub fn start(ports: Vec<u16>, paths: Vec<String>) -> Loader {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let handle = {
            let (stop, requests, report) = (stop.clone(), requests.clone(), report.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for port in &ports {
                        for path in &paths {
                            let answer = http(*port, "GET", path, &[], b"");
                            requests.fetch_add(1, Ordering::Relaxed);
                            let mut r = report.lock().unwrap();
                            match answer {
                                Ok(a) if (200..300).contains(&a.status) => {
                                    r.ok += 1;
                                    if is_stale(&a) {
                                        r.stale += 1;
                                    }
                                }
                                Ok(a) => {
                                    r.failures += 1;
                                    if r.examples.len() < 10 {
                                        let body: String = a.body.chars().take(300).collect();
                                        r.examples.push(format!(
                                            "port {port} {path}: {} {body}",
                                            a.status
                                        ));
                                    }
                                }
                                Err(e) => {
                                    r.failures += 1;
                                    if r.examples.len() < 10 {
                                        r.examples.push(format!("port {port} {path}: {e}"));
                                    }
                                }
                            }
                        }
                    }
                    // A steady reader, not a benchmark: the machine's 2 cores also run the services.
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Loader {
            stop,
            requests,
            report,
            handle: Some(handle),
        }
    }

    /// Stops the thread and returns what it saw.
    pub fn finish(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("the loader thread panicked");
        }
        std::mem::take(&mut *self.report.lock().unwrap())
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Aggregators and API servers of one test, killed when dropped.
pub struct Cluster {
    pub reaper: Reaper,
    pub api_ports: Vec<u16>,
}

impl Cluster {
    /// Starts `aggregators` aggregators (named a, b, ...) and `apis` API servers (named 0, 1, ...) on `setup`.
    pub fn start(setup: &ClusterSetup, aggregators: usize, apis: usize) -> Cluster {
        let mut reaper = Reaper::default();
        for i in 0..aggregators {
            reaper
                .0
                .push(setup.spawn_aggregator(&format!("{}", (b'a' + i as u8) as char)));
        }
        let mut api_ports = Vec::new();
        for i in 0..apis {
            let (child, port) = spawn_api(setup, &format!("{i}"));
            reaper.0.push(child);
            api_ports.push(port);
        }
        Cluster { reaper, api_ports }
    }
}
