//! Helpers for the tests that run against a real Kafka started by `scripts/services.sh` (the test command starts
//! it and exports `TOPSELLERS_TEST_KAFKA`). Without it they skip with a message, except under CI, where a
//! missing service is a failure: CI must never pass by skipping.
#![allow(dead_code)]

use super::bin;
use super::stores::StoreChoice;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The bootstrap servers of the Kafka named by `var`, or `None` (after saying why) when the test should skip.
pub fn kafka_from_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set under CI: scripts/test.sh must start Kafka (scripts/services.sh start ...)");
            }
            eprintln!("SKIPPED: {var} is not set; run ./scripts/test.sh (it starts Kafka) to run this test");
            None
        }
    }
}

/// A unique name per test run, so tests sharing one broker never see each other's topics or groups.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A cluster-shape setup: one config file naming a fresh topic, group and results store.
pub struct ClusterSetup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub topic: String,
}

impl ClusterSetup {
    /// `engine_and_more` is TOML for the sections other than [kafka] and [cluster] (the same text is used for
    /// the embedded reference run).
    pub fn new(
        bootstrap: &str,
        partitions: u32,
        engine_and_more: &str,
        kafka_extra: &str,
    ) -> ClusterSetup {
        ClusterSetup::with_store(
            bootstrap,
            partitions,
            engine_and_more,
            kafka_extra,
            &StoreChoice::Sqlite,
        )
    }

    /// [`ClusterSetup::new`] with the results in `store` (SQLite, Cassandra or Redis).
    pub fn with_store(
        bootstrap: &str,
        partitions: u32,
        engine_and_more: &str,
        kafka_extra: &str,
        store: &StoreChoice,
    ) -> ClusterSetup {
        let dir = tempfile::tempdir().unwrap();
        let topic = unique("purchases");
        let config = dir.path().join("cluster.toml");
        let text = format!(
            "{engine_and_more}\n[kafka]\nbootstrap_servers = \"{bootstrap}\"\ntopic = \"{topic}\"\n\
             dead_letter_topic = \"{topic}.dead-letters\"\ngroup_id = \"{topic}-aggregators\"\npartitions = {partitions}\n\
             {kafka_extra}\n[cluster]\nresults_store = \"{}\"\nresults_interval_ms = 100\n\
             checkpoint_interval_secs = 1\ncheckpoint_every_records = 2000\nrefresh_interval_ms = 100\n{}",
            store.results_store(dir.path()),
            store.section()
        );
        std::fs::write(&config, text).unwrap();
        ClusterSetup { dir, config, topic }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data_dir());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running topsellers")
    }

    /// Publishes files with `replay --to kafka`; panics with the output when it fails.
    pub fn publish(&self, files: &[&Path]) -> Output {
        let mut c = self.command(&["replay", "--to", "kafka", "--no-progress"]);
        for f in files {
            c.arg(f);
        }
        let out = c.output().expect("running topsellers replay --to kafka");
        assert!(
            out.status.success(),
            "replay --to kafka failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts an aggregator; its log goes to `<dir>/aggregator-<name>.log`.
    pub fn spawn_aggregator(&self, name: &str) -> Child {
        let log =
            std::fs::File::create(self.dir.path().join(format!("aggregator-{name}.log"))).unwrap();
        self.command(&["aggregate"])
            .env("RUST_LOG", "topsellers=info,warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting topsellers aggregate")
    }

    pub fn aggregator_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("aggregator-{name}.log")))
            .unwrap_or_default()
    }

    /// The merged cluster results, as `results --cluster` prints them (`None` while there are none).
    pub fn cluster_results(&self) -> Option<serde_json::Value> {
        let out = self.run(&["results", "--cluster", "--n", "10"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until the cluster results equal `expected` (compared without `version`), up to `limit`; returns
    /// the last cluster results seen, for the assertion that follows.
    pub fn wait_for_results(
        &self,
        expected: &serde_json::Value,
        limit: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            if let Some(r) = self.cluster_results() {
                last = comparable(&r);
                if &last == expected {
                    return last;
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        last
    }
}

/// The parts of a `results` JSON that must agree between two computations of the same purchases.
pub fn comparable(results: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "as_of_ms": results["as_of_ms"],
        "events_counted": results["events_counted"],
        "currency": results["currency"],
        "lists": results["lists"],
    })
}

/// The embedded pipeline's results for the same files and config: the reference the Kafka path must equal.
pub fn embedded_reference(config: &Path, files: &[&Path]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(bin());
    c.args(["replay", "--no-progress", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(dir.path());
    for f in files {
        c.arg(f);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin())
        .args(["results", "--n", "10", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    comparable(&serde_json::from_slice(&out.stdout).unwrap())
}

/// Writes `lines` to a file.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// Stops a child: SIGTERM (a clean leave, with final checkpoints) or SIGKILL.
pub fn signal(child: &mut Child, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

pub fn wait_exit(child: &mut Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills every child it holds when dropped: a failing test leaves no aggregator running.
#[derive(Default)]
pub struct Reaper(pub Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
