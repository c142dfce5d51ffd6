//! Results-store failures through the real binary, under load: aggregators write while Kafka is fed steadily and
//! two API servers are read by a steady HTTP loader (`/v1/top` and the page). A Cassandra node of three stopped
//! mid-stream, and a Redis killed with SIGKILL, cost no reader an error; with the whole store down the servers
//! keep answering 200 with the last results, marked stale; when it comes back the marker goes away, new purchases
//! show up, and the final results equal the embedded replay.
//!
//! The Cassandra test runs on the three-node cluster of `scripts/services.sh start cassandra3` when
//! `TOPSELLERS_TEST_CASSANDRA3` names it, and otherwise starts it for its own run and stops it after (3 JVMs of
//! 1.25 GB each for the ~2 minutes of this test rather than the whole suite; see scripts/test.sh).

mod common;

use common::kafka::{embedded_reference, kafka_from_env, ClusterSetup};
use common::stores::{
    all_logs, generate, is_stale, readyz, service_from_env, services, split, wait_api_serves,
    wait_until, Cluster, Loader, StoreChoice,
};
use common::{free_port, http};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The engine, and API servers that call results stale 2 s after the last good refresh (refresh every 100 ms).
const ENGINE: &str = r#"
[engine]
bucket_secs = 60
windows = ["1h", "all"]
allowed_lateness_secs = 3600
[node]
idle_advance = false
[server]
stale_after_ms = 2000
[demo]
rate_per_sec = 20
"#;

/// What the loader reads: the site-wide list, one window's list, and the page.
fn load_paths() -> Vec<String> {
    vec![
        "/v1/top?n=10".into(),
        "/v1/top?window=1h&n=5".into(),
        "/".into(),
    ]
}

/// Publishes `parts` one after another, a little apart: a steady stream rather than one burst.
/// Notes how far the test got, for the log of a slow or failed run.
fn phase(started: std::time::Instant, what: &str) {
    eprintln!("[{:6.1} s] {what}", started.elapsed().as_secs_f64());
}

fn publish_steadily(setup: &ClusterSetup, parts: &[PathBuf]) {
    for p in parts {
        setup.publish(&[p]);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// While the store is down: every API server answers 200 with its last results, marked stale in the header, the
/// body and `/readyz`.
fn assert_serving_stale(setup: &ClusterSetup, ports: &[u16], what: &str) {
    for &port in ports {
        let became_stale = wait_until(Duration::from_secs(60), || {
            readyz(port)["stale"] == serde_json::Value::Bool(true)
        });
        assert!(
            became_stale,
            "{what}: the API server on port {port} never reported stale results in /readyz: {}\nlogs:\n{}",
            readyz(port),
            all_logs(setup)
        );
        let top = http(port, "GET", "/v1/top?n=10", &[], b"").unwrap();
        assert_eq!(top.status, 200, "{what}: {}", top.body);
        assert!(
            is_stale(&top),
            "{what}: no X-Results-Stale: {}",
            top.headers
        );
        let body: serde_json::Value = serde_json::from_str(&top.body).unwrap();
        assert_eq!(body["stale"], true, "{what}: {body}");
        assert!(
            !body["items"].as_array().unwrap().is_empty(),
            "{what}: the last results are still served: {body}"
        );
        let ready = readyz(port);
        assert!(
            ready["store_error"].is_string(),
            "{what}: /readyz names the store error: {ready}"
        );
        let page = http(port, "GET", "/", &[], b"").unwrap();
        assert_eq!(page.status, 200, "{what}: the page while stale");
    }
}

/// After the store is back: every API server drops the stale marker.
fn assert_fresh_again(setup: &ClusterSetup, ports: &[u16], what: &str) {
    for &port in ports {
        let fresh = wait_until(Duration::from_secs(90), || {
            let ready = readyz(port);
            ready["stale"] == serde_json::Value::Bool(false)
                && http(port, "GET", "/v1/top?n=10", &[], b"").is_ok_and(|r| !is_stale(&r))
        });
        assert!(
            fresh,
            "{what}: the API server on port {port} still reports stale results: {}\nlogs:\n{}",
            readyz(port),
            all_logs(setup)
        );
    }
}

fn wait_ready(setup: &ClusterSetup, ports: &[u16]) {
    for &port in ports {
        assert!(
            wait_until(Duration::from_secs(60), || !readyz(port).is_null()),
            "the API server on port {port} never became ready; logs:\n{}",
            all_logs(setup)
        );
    }
}

fn check_final(setup: &ClusterSetup, cluster: &Cluster, expected: &serde_json::Value, what: &str) {
    let got = setup.wait_for_results(expected, Duration::from_secs(120));
    assert_eq!(
        &got,
        expected,
        "{what}: results --cluster differ from the embedded replay; logs:\n{}",
        all_logs(setup)
    );
    for &port in &cluster.api_ports {
        let diff = wait_api_serves(port, expected, Duration::from_secs(30));
        assert!(
            diff.is_none(),
            "{what}: the API server on port {port} does not serve the final results: {}\nlogs:\n{}",
            diff.unwrap_or_default(),
            all_logs(setup)
        );
    }
}

fn assert_no_errors(setup: &ClusterSetup, loader: Loader, what: &str) {
    let report = loader.finish();
    eprintln!("{what}: loader {report:?}");
    assert_eq!(
        report.failures,
        0,
        "{what}: readers got errors: {:?}\nlogs:\n{}",
        report.examples,
        all_logs(setup)
    );
    assert!(report.ok > 0 && report.stale > 0, "{what}: {report:?}");
}

// ------------------------------------------------------------------------------------------------------------
// Cassandra, three nodes

/// The three-node cluster of the test. When `TOPSELLERS_TEST_CASSANDRA3` names a running one, that one, with every
/// node brought back when dropped, however the test ends; otherwise one this test starts with
/// `scripts/services.sh start cassandra3` (beside the single node, on addresses of its own) and stops again.
struct Cassandra3 {
    nodes: String,
    started_here: bool,
}

impl Cassandra3 {
    /// `None` (after a skip note) where no test Cassandra is installed; under CI that is a failure.
    fn get() -> Option<Cassandra3> {
        if let Ok(nodes) = std::env::var("TOPSELLERS_TEST_CASSANDRA3") {
            if !nodes.trim().is_empty() {
                // Every node up to begin with (a previous run may have left one down).
                start_nodes(&nodes);
                return Some(Cassandra3 {
                    nodes,
                    started_here: false,
                });
            }
        }
        // The single test node runs, so the Cassandra jars are installed: start the three nodes.
        service_from_env("TOPSELLERS_TEST_CASSANDRA")?;
        // The guard first, so a failed start is stopped too.
        let mut guard = Cassandra3 {
            nodes: String::new(),
            started_here: true,
        };
        services(&["start", "cassandra3"]);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
        let env = Command::new("bash")
            .arg(script)
            .arg("env")
            .output()
            .unwrap();
        let env = String::from_utf8_lossy(&env.stdout);
        guard.nodes = env
            .lines()
            .find_map(|l| l.strip_prefix("export TOPSELLERS_TEST_CASSANDRA3="))
            .expect("scripts/services.sh env names the three nodes once they run")
            .to_string();
        Some(guard)
    }
}

impl Drop for Cassandra3 {
    fn drop(&mut self) {
        if self.started_here {
            services(&["stop", "cassandra3"]);
        } else {
            start_nodes(&self.nodes);
        }
    }
}

/// `scripts/services.sh start-node N` for nodes 1, 2 and 3; a running node is left alone. Node 1, the seed, first:
/// a restarting node that finds no seed to gossip with gives up ("Unable to gossip with any peers"). The other
/// two then at once, as each waits until it sees all three Up.
fn start_nodes(nodes: &str) {
    let seed_address: std::net::SocketAddr = nodes
        .split(',')
        .next()
        .and_then(|a| a.trim().parse().ok())
        .expect("TOPSELLERS_TEST_CASSANDRA3 is a list of host:port");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
    let spawn = |n: u32| {
        Command::new("bash")
            .arg(&script)
            .args(["start-node", &n.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("running scripts/services.sh")
    };
    let mut seed = spawn(1);
    // The seed gossips once it answers CQL (its own start-node also waits for the other two).
    let seed_up = wait_until(Duration::from_secs(180), || {
        std::net::TcpStream::connect_timeout(&seed_address, Duration::from_secs(1)).is_ok()
            || seed.try_wait().ok().flatten().is_some()
    });
    let mut children = vec![(2, spawn(2)), (3, spawn(3))];
    children.insert(0, (1, seed));
    for (n, mut child) in children {
        let ok = child.wait().is_ok_and(|s| s.success());
        if !ok || !seed_up {
            eprintln!("scripts/services.sh start-node {n} failed (see .services/run/cassandra3/node-{n}/server.log)");
        }
    }
}

#[test]
fn cassandra_nodes_down_cost_readers_nothing_and_lose_nothing() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let t0 = std::time::Instant::now();
    let Some(cassandra3) = Cassandra3::get() else {
        return;
    };
    phase(t0, "cassandra: three nodes up");
    let nodes = cassandra3.nodes.clone();
    let store = StoreChoice::cassandra(&nodes, "failures", 3);
    let setup = ClusterSetup::with_store(&bootstrap, 4, ENGINE, "", &store);
    let before = generate(&setup, "before.jsonl", 24_000, "2026-11-12T00:00:00Z");
    let after = generate(&setup, "after.jsonl", 3_000, "2026-11-12T06:00:00Z");
    // The generator numbers its event ids from 1 each run: ids of their own, or the new purchases would be
    // dropped as duplicates of the first ones.
    let renamed = std::fs::read_to_string(&after)
        .unwrap()
        .replace("\"event_id\":\"", "\"event_id\":\"after-");
    std::fs::write(&after, renamed).unwrap();
    let expected_before = embedded_reference(&setup.config, &[&before]);
    let expected_all = embedded_reference(&setup.config, &[&before, &after]);
    assert!(
        expected_all["events_counted"].as_u64() > expected_before["events_counted"].as_u64(),
        "the second file adds purchases"
    );
    let parts = split(&before, 12);

    let cluster = Cluster::start(&setup, 2, 2);
    publish_steadily(&setup, &parts[..1]);
    wait_ready(&setup, &cluster.api_ports);
    let loader = Loader::start(cluster.api_ports.clone(), load_paths());

    // One node of three stopped mid-stream: QUORUM reads and writes go on with the other two.
    publish_steadily(&setup, &parts[1..4]);
    phase(t0, "cassandra: stopping node 2 mid-stream");
    services(&["stop-node", "2"]);
    publish_steadily(&setup, &parts[4..]);
    check_final(&setup, &cluster, &expected_before, "one node down");
    phase(
        t0,
        "cassandra: exact results with node 2 down; stopping nodes 1 and 3",
    );

    // Every node down: the last results stay served, marked stale.
    // SIGKILL, like a power cut (and quicker than a drain).
    services(&["stop-node", "1", "--kill"]);
    services(&["stop-node", "3", "--kill"]);
    assert_serving_stale(&setup, &cluster.api_ports, "all nodes down");
    phase(
        t0,
        "cassandra: stale answers with every node down; starting them",
    );
    std::thread::sleep(Duration::from_secs(2));

    // Back: fresh again, and new purchases show up.
    start_nodes(&nodes);
    phase(t0, "cassandra: three nodes up again");
    assert_fresh_again(&setup, &cluster.api_ports, "nodes back");
    phase(t0, "cassandra: fresh again");
    publish_steadily(&setup, &split(&after, 3));
    check_final(&setup, &cluster, &expected_all, "nodes back");
    assert_no_errors(&setup, loader, "cassandra");
    phase(
        t0,
        "cassandra: exact results after the outage, no reader errors",
    );
}

// ------------------------------------------------------------------------------------------------------------
// Redis

/// A `redis-server` of this test's own on a free port, with an append-only file fsynced on every write, so it can
/// be killed with SIGKILL and restarted on its data. (The shared test Redis of `scripts/services.sh` keeps
/// nothing on disk: a restart would be a different failure, the loss of every key.) Killed when dropped.
struct RedisServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        let mut server = RedisServer {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the server on its folder (and the data there) and waits until it answers PING.
    fn restart(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server, scripts/services.sh install redis) is needed");
        self.child = Some(child);
        let up = wait_until(Duration::from_secs(30), || {
            Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
        });
        assert!(up, "redis-server did not start: {}", self.log());
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[test]
fn redis_killed_and_restarted_costs_readers_nothing_and_loses_nothing() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    // Runs where the test Redis runs, which means redis-server is installed.
    if service_from_env("TOPSELLERS_TEST_REDIS").is_none() {
        return;
    }
    let t0 = std::time::Instant::now();
    let mut redis = RedisServer::start();
    let store = StoreChoice::redis(&redis.address(), false, "failures");
    let setup = ClusterSetup::with_store(&bootstrap, 4, ENGINE, "", &store);
    let all = generate(&setup, "events.jsonl", 30_000, "2026-11-13T00:00:00Z");
    let expected = embedded_reference(&setup.config, &[&all]);
    let parts = split(&all, 12);

    let cluster = Cluster::start(&setup, 2, 2);
    publish_steadily(&setup, &parts[..1]);
    wait_ready(&setup, &cluster.api_ports);
    let loader = Loader::start(cluster.api_ports.clone(), load_paths());

    publish_steadily(&setup, &parts[1..4]);
    // SIGKILL under load; purchases keep coming while it is down.
    phase(t0, "redis: kill -9");
    redis.kill9();
    publish_steadily(&setup, &parts[4..7]);
    assert_serving_stale(&setup, &cluster.api_ports, "redis down");
    phase(t0, "redis: stale answers while down; restarting");
    redis.restart();
    assert!(
        redis.path().join("appendonlydir").is_dir() || redis.log().contains("append only"),
        "the restarted server read its append-only file: {}",
        redis.log()
    );
    assert_fresh_again(&setup, &cluster.api_ports, "redis back");
    publish_steadily(&setup, &parts[7..]);
    check_final(&setup, &cluster, &expected, "redis back");
    assert_no_errors(&setup, loader, "redis");
    phase(
        t0,
        "redis: exact results after the restart, no reader errors",
    );
}
