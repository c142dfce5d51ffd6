//! Broker failures against a real three-broker Kafka cluster (replication factor 3, min.insync.replicas 2),
//! started by `scripts/services.sh start kafka3`: a broker stopped and brought back mid-stream loses and
//! doubles nothing; an aggregator started while Kafka is down says so, retries, and recovers.

mod common;

use common::kafka::{embedded_reference, kafka_from_env, ClusterSetup, Reaper};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const ENGINE: &str = r#"
[engine]
bucket_secs = 60
windows = ["1h", "all"]
allowed_lateness_secs = 3600
[node]
idle_advance = false
[demo]
rate_per_sec = 20
"#;

const KAFKA3: &str = "replication_factor = 3\nmin_insync_replicas = 2\n";

fn services(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .expect("running scripts/services.sh");
    assert!(status.success(), "scripts/services.sh {args:?} failed");
}

fn generate(setup: &ClusterSetup, name: &str, events: u64, start: &str) -> PathBuf {
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

/// One test, because both parts stop brokers of the one shared cluster.
#[test]
fn broker_failures_lose_and_double_nothing() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA3") else {
        return;
    };

    // 1. One broker of three stopped mid-stream, then brought back.
    let setup = ClusterSetup::new(&bootstrap, 6, ENGINE, KAFKA3);
    let all = generate(&setup, "events.jsonl", 30_000, "2026-11-05T00:00:00Z");
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (first, second) = (
        setup.dir.path().join("first.jsonl"),
        setup.dir.path().join("second.jsonl"),
    );
    common::kafka::write_lines(&first, &lines[..lines.len() / 2]);
    common::kafka::write_lines(&second, &lines[lines.len() / 2..]);
    let expected = embedded_reference(&setup.config, &[&first, &second]);
    let mut reaper = Reaper::default();
    reaper.0.push(setup.spawn_aggregator("a"));
    reaper.0.push(setup.spawn_aggregator("b"));
    setup.publish(&[&first]);
    services(&["stop-broker", "2", "--kill"]);
    // With min.insync.replicas 2, acks=all still succeeds on the two brokers left.
    setup.publish(&[&second]);
    services(&["start-broker", "2"]);
    let got = setup.wait_for_results(&expected, Duration::from_secs(120));
    assert_eq!(
        got,
        expected,
        "logs:\n{}\n{}",
        setup.aggregator_log("a"),
        setup.aggregator_log("b")
    );
    drop(reaper);

    // 2. Kafka down when an aggregator starts: it says so, keeps retrying, and recovers when Kafka comes up;
    //    then down mid-stream and back.
    // (The single-broker Kafka: stopping and starting it again gives a fresh, empty cluster.)
    let Some(single) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let setup = ClusterSetup::new(&single, 3, ENGINE, "");
    let file = generate(&setup, "events.jsonl", 5_000, "2026-11-06T00:00:00Z");
    let expected = embedded_reference(&setup.config, &[&file]);
    services(&["stop", "kafka"]);
    let mut reaper = Reaper::default();
    reaper.0.push(setup.spawn_aggregator("down"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !setup.aggregator_log("down").contains("cannot reach Kafka") && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = setup.aggregator_log("down");
    let running = reaper.0[0].try_wait().unwrap().is_none();
    // A publisher facing a cluster that stays down fails loudly once its delivery timeout runs out.
    let out = setup
        .command(&["replay", "--to", "kafka", "--no-progress"])
        .arg(&file)
        .env("TOPSELLERS_KAFKA__DELIVERY_TIMEOUT_MS", "3000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    services(&["start", "kafka"]);
    assert!(
        log.contains("cannot reach Kafka"),
        "the aggregator must say Kafka is unreachable: {log}"
    );
    assert!(
        running,
        "the aggregator must keep running while Kafka is down"
    );
    assert!(
        !out.status.success() && stderr.contains("cannot reach Kafka"),
        "publishing to a down cluster must fail with a clear error: {stderr}"
    );
    // Then Kafka goes down mid-stream and comes back on its data: nothing lost, nothing doubled.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (first, second) = (
        setup.dir.path().join("first.jsonl"),
        setup.dir.path().join("second.jsonl"),
    );
    common::kafka::write_lines(&first, &lines[..lines.len() / 2]);
    common::kafka::write_lines(&second, &lines[lines.len() / 2..]);
    setup.publish(&[&first]);
    std::thread::sleep(Duration::from_secs(1));
    services(&["stop", "kafka"]);
    std::thread::sleep(Duration::from_secs(3));
    services(&["resume", "kafka"]);
    setup.publish(&[&second]);
    let got = setup.wait_for_results(&expected, Duration::from_secs(120));
    assert_eq!(got, expected, "log:\n{}", setup.aggregator_log("down"));
    assert!(
        reaper.0[0].try_wait().unwrap().is_none(),
        "the aggregator outlived the outage"
    );
}
