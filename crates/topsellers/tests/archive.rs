//! `topsellers archive` on the Online Retail files plus a file with planted personal data, read back with DuckDB's
//! Python package (`pip install duckdb`, done by scripts/test.sh): every event the embedded replay counts is in the
//! archive exactly once, also after a run killed part-way and a repeated run; each row sits in the `dt=`/`hour=`
//! partition of its event time; no personal data and no temporary file is visible.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/online-retail/by-day")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn duckdb_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "python3 cannot import duckdb under CI: scripts/test.sh must pip install duckdb"
            );
        }
        eprintln!("SKIPPED: python3 cannot import duckdb; run ./scripts/test.sh (it installs it) to run this test");
    }
    ok
}

const READ_BACK: &str = r#"
import duckdb, json, sys
glob = sys.argv[1] + "/**/*.parquet"
con = duckdb.connect()
con.execute(f"CREATE VIEW a AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{'dt': VARCHAR, 'hour': VARCHAR}})")
one = lambda q: con.execute(q).fetchone()[0]
text_cols = [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE a) WHERE column_type = 'VARCHAR'").fetchall()]
leaks = " OR ".join(f"(coalesce({c}, '') LIKE '%@%' OR coalesce({c}, '') LIKE '%PLANTED-CUSTOMER%')" for c in text_cols)
print(json.dumps({
    "columns": [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE a)").fetchall()],
    "rows": one("SELECT count(*) FROM a"),
    "distinct_ids": one("SELECT count(DISTINCT event_id) FROM a"),
    "null_ids": one("SELECT count(*) FROM a WHERE event_id IS NULL"),
    "units": one("SELECT sum(quantity) FROM a"),
    "misplaced": one("SELECT count(*) FROM a WHERE dt <> strftime(event_time AT TIME ZONE 'UTC', '%Y-%m-%d') OR hour <> strftime(event_time AT TIME ZONE 'UTC', '%H')"),
    "leaks": one(f"SELECT count(*) FROM a WHERE {leaks}"),
    "redacted": one("SELECT count(*) FROM a WHERE item_name LIKE '%[email]%'"),
}))
"#;

fn read_back(archive: &Path) -> Value {
    let out = Command::new("python3")
        .args(["-c", READ_BACK])
        .arg(archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb read-back failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn archive_holds_every_event_once_and_no_personal_data() {
    if !duckdb_available() {
        return;
    }
    if !data_dir().is_dir() {
        eprintln!(
            "SKIPPED: online-retail data not found at {}",
            data_dir().display()
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("archive");
    let example = std::fs::read_to_string(repo_root().join("examples/online-retail.toml")).unwrap();
    let config = work.path().join("archive.toml");
    std::fs::write(
        &config,
        format!(
            "{example}\n[archive]\ndir = \"{}\"\nmax_file_rows = 5000\n",
            archive.display()
        ),
    )
    .unwrap();
    // Planted personal data: an email in a kept text field, a customer id in an unmapped column.
    let planted_dir = work.path().join("planted");
    std::fs::create_dir(&planted_dir).unwrap();
    std::fs::write(
        planted_dir.join("2011-03-01.csv"),
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
         900001,85123A,gift for jane.doe@example.com,2,2011-03-01 10:00:00,2.55,PLANTED-CUSTOMER-1,United Kingdom\n\
         900001,71053,WHITE METAL LANTERN,1,2011-03-01 10:00:00,3.39,PLANTED-CUSTOMER-1,United Kingdom\n\
         900002,22633,HAND WARMER UNION JACK,3,2011-03-01 11:30:00,1.85,PLANTED-CUSTOMER-2,France\n",
    )
    .unwrap();
    let inputs = [data_dir(), planted_dir];
    let archive_run = |env: Option<(&str, &str)>| {
        let mut c = Command::new(common::bin());
        c.arg("archive").arg("--config").arg(&config).args(&inputs);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        c.output().unwrap()
    };

    // The reference: the events the embedded replay counts from the same files.
    let replay_dir = work.path().join("replay");
    let run = |args: &[&str]| {
        let out = Command::new(common::bin())
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&replay_dir)
            .args(if args[0] == "replay" {
                &inputs[..]
            } else {
                &[]
            })
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&["replay", "--no-progress"]);
    let results: Value = serde_json::from_slice(&run(&["results", "--n", "1"]).stdout).unwrap();
    let expected = results["events_counted"].as_u64().unwrap();

    // A run killed part-way: only whole files are visible, and the next run completes the archive.
    let killed = archive_run(Some((
        "TOPSELLERS_TEST_ARCHIVE_ABORT_AFTER_EVENTS",
        "30000",
    )));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(6),
        "the run was meant to abort part-way: {}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let out = archive_run(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    // Running again adds nothing.
    let before = files_under(&archive);
    let out = archive_run(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 events in 0 Parquet files"));
    assert_eq!(files_under(&archive), before);
    assert!(
        before
            .iter()
            .all(|f| f.ends_with(".parquet") || f.starts_with("_topsellers/done-")),
        "unexpected files: {before:?}"
    );

    let got = read_back(&archive);
    eprintln!("duckdb: {got}");
    assert_eq!(
        got["rows"].as_u64(),
        Some(expected),
        "every event exactly once"
    );
    assert_eq!(
        got["distinct_ids"].as_u64(),
        Some(expected),
        "no event twice"
    );
    assert_eq!(got["null_ids"], 0);
    assert_eq!(got["misplaced"], 0, "rows in the wrong dt=/hour= partition");
    assert_eq!(got["leaks"], 0, "personal data in the archive");
    assert_eq!(
        got["redacted"], 1,
        "the planted email is redacted, its event kept"
    );
    let columns: Vec<&str> = got["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "event_id",
            "event_time",
            "original_time",
            "item_id",
            "item_name",
            "category",
            "quantity",
            "unit_price_minor",
            "currency",
            "country",
            "dt",
            "hour"
        ]
    );
}

const LIVE_CONFIG: &str = r#"
[engine]
allowed_lateness_secs = 86400
[node]
idle_advance = false
# Checkpoints (and log truncations) every few batches: they must keep what the archive has not published.
checkpoint_interval_secs = 1
checkpoint_every_records = 1000
[server]
auth_token = "live-archive-token"
[demo]
# About 2 events a second of event time: 4000 events span three hours, so runs split across hour= folders.
rate_per_sec = 2.0
[archive]
max_file_rows = 700
max_file_age_secs = 1
"#;

/// The live archive of `serve`: purchases posted over HTTP while the server aborts itself between publishing a run
/// of files and committing its position (the window where a careless archive duplicates), and is killed with
/// SIGKILL mid-stream; restarted each time, with unacknowledged batches resent. After a graceful stop the archive
/// holds every event the node counted exactly once, in the right dt=/hour=, with no planted personal data.
#[test]
fn live_archive_of_serve_holds_every_accepted_event_once_through_kill_9() {
    if !duckdb_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("archive");
    let keys = format!("dir = \"{}\"\n", archive.display());
    serve_scenario(work.path(), &keys, &[], &|| archive.clone());
}

/// The same scenario with the archive in an object store: `archive.url = "s3://..."` against a real S3-compatible
/// server (moto's, `pip install 'moto[server]'`, done by scripts/test.sh) that the test starts on a free port and
/// stops; the archive is downloaded with boto3 and read back with DuckDB.
#[test]
fn live_archive_to_an_s3_object_store_holds_every_accepted_event_once_through_kill_9() {
    if !duckdb_available() || !moto_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _moto = Moto::start(port, &work.path().join("moto.log"));
    let bucket = common::http(port, "PUT", "/archive", &[], b"").unwrap();
    assert_eq!(bucket.status, 200, "creating the bucket: {}", bucket.body);
    let endpoint = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mirrors = std::cell::Cell::new(0);
    let mirror = || {
        mirrors.set(mirrors.get() + 1);
        let out = work.path().join(format!("mirror-{}", mirrors.get()));
        std::fs::create_dir_all(&out).unwrap();
        let done = Command::new("python3")
            .args(["-c", MIRROR, &endpoint, "archive", "shop-1"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            done.status.success(),
            "downloading the archive: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        out
    };
    serve_scenario(
        work.path(),
        "url = \"s3://archive/shop-1\"\n",
        &env,
        &mirror,
    );
}

const MIRROR: &str = r#"
import boto3, os, sys
endpoint, bucket, prefix, out = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    for o in page.get("Contents", []):
        path = os.path.join(out, o["Key"][len(prefix) + 1:])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, o["Key"], path)
"#;

fn moto_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("python3 cannot import moto.server under CI: scripts/test.sh must pip install 'moto[server]'");
        }
        eprintln!("SKIPPED: python3 cannot import moto.server; run ./scripts/test.sh (it installs it) to run this test");
    }
    ok
}

/// moto's S3 server on `port`, stopped when dropped (also when the test fails).
struct Moto(std::process::Child);

impl Moto {
    fn start(port: u16, log: &Path) -> Moto {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let moto = Moto(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while common::http(port, "GET", "/", &[], b"").is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The scenario of the live archive tests: `archive_keys` completes the `[archive]` section, `env` is given to every
/// `serve`, and `mirror` returns a local folder holding what the archive holds now.
fn serve_scenario(
    work: &Path,
    archive_keys: &str,
    env: &[(String, String)],
    mirror: &dyn Fn() -> PathBuf,
) {
    let config = work.join("live.toml");
    std::fs::write(&config, format!("{LIVE_CONFIG}{archive_keys}")).unwrap();
    let events = work.join("events.jsonl");
    let out = Command::new(common::bin())
        .args([
            "generate",
            "--events",
            "4000",
            "--start",
            "2026-01-01T00:00:00Z",
            "--config",
        ])
        .arg(&config)
        .arg("--out")
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // Planted personal data: an e-mail in a kept field, and keys the event has no place for.
    let last_time = serde_json::from_str::<Value>(lines.last().unwrap()).unwrap()["time"].clone();
    lines.push(
        serde_json::json!({
            "event_id": "planted-1", "time": last_time, "item_id": "SKU-PLANTED",
            "item_name": "gift for jane.doe@example.com", "category": "home/kitchen", "quantity": 1,
            "unit_price": "9.99", "currency": "USD", "customer_name": "PLANTED-CUSTOMER Jane Doe",
            "email": "jane.doe@example.com", "card_number": "4111 1111 1111 1111", "ip": "203.0.113.9"
        })
        .to_string(),
    );
    let batches: Vec<String> = lines.chunks(100).map(|c| c.join("\n")).collect();
    let data_dir = work.join("data");
    let port = common::free_port();
    let spawn = |abort_after_publishes: Option<u32>| {
        let mut c = Command::new(common::bin());
        c.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(n) = abort_after_publishes {
            c.env(
                "TOPSELLERS_TEST_LIVE_ARCHIVE_ABORT_AFTER_PUBLISHES",
                n.to_string(),
            );
        }
        let child = c.spawn().unwrap();
        assert!(
            common::wait_healthy(port, std::time::Duration::from_secs(30)),
            "serve did not start"
        );
        child
    };
    let post = |batch: &str| {
        common::http(
            port,
            "POST",
            "/v1/purchases",
            &[
                ("Authorization", "Bearer live-archive-token"),
                ("Content-Type", "application/x-ndjson"),
            ],
            batch.as_bytes(),
        )
        .is_ok_and(|r| {
            assert!(
                r.status == 200 || r.status >= 500,
                "{}: {}",
                r.status,
                r.body
            );
            r.status == 200
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);

    // 1. The server aborts itself after its third run of files is published, before the run is committed.
    let mut server = spawn(Some(3));
    let mut next = 0;
    while server.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the archive never published 3 runs"
        );
        if next < batches.len() / 2 && post(&batches[next]) {
            next += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let position_dir = mirror().join("_topsellers");
    let position = std::fs::read_dir(&position_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&position).unwrap()).unwrap();
    assert!(
        !stored["publishing"].is_null(),
        "the abort was meant to land between publishing and committing: {stored}"
    );

    // 2. Restarted (the interrupted run is republished), then killed with SIGKILL mid-stream.
    let mut server = spawn(None);
    let kill_at = next + (batches.len() - next) / 2;
    while next < kill_at {
        assert!(
            std::time::Instant::now() < deadline,
            "posting stalled at batch {next}"
        );
        if post(&batches[next]) {
            next += 1;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1500)); // a run or two gets published meanwhile
    if post(&batches[next]) {
        next += 1;
    }
    server.kill().unwrap();
    server.wait().unwrap();

    // 3. Restarted again; the rest (the batch in flight at the kill resent: ids make that harmless), then a
    // graceful stop, which archives what the log still holds.
    let mut server = spawn(None);
    while next < batches.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "posting stalled at batch {next}"
        );
        if post(&batches[next]) {
            next += 1;
        }
    }
    common::terminate(&mut server);

    let out = common::run(&["results", "--n", "1"], &config, &data_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counted = serde_json::from_slice::<Value>(&out.stdout).unwrap()["events_counted"]
        .as_u64()
        .unwrap();
    assert!(counted > 3500, "the node counted only {counted} events");
    let archive = mirror();
    let position = archive
        .join("_topsellers")
        .join(position.file_name().unwrap());
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&position).unwrap()).unwrap();
    assert!(stored["publishing"].is_null(), "{stored}");
    let files = files_under(&archive);
    assert!(
        files
            .iter()
            .all(|f| f.ends_with(".parquet") || f.starts_with("_topsellers/")),
        "temporary or unexpected files: {files:?}"
    );
    let hours: std::collections::BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.rsplit_once('/').map(|(d, _)| d))
        .collect();
    assert!(
        hours.len() >= 3,
        "expected several hour= folders: {hours:?}"
    );

    let got = read_back(&archive);
    eprintln!("duckdb: {got}; the node counted {counted}");
    assert_eq!(
        got["rows"].as_u64(),
        Some(counted),
        "every accepted event exactly once"
    );
    assert_eq!(
        got["distinct_ids"].as_u64(),
        Some(counted),
        "no event twice"
    );
    assert_eq!(got["null_ids"], 0);
    assert_eq!(got["misplaced"], 0, "rows in the wrong dt=/hour= partition");
    assert_eq!(got["leaks"], 0, "personal data in the archive");
    assert_eq!(
        got["redacted"], 1,
        "the planted e-mail is redacted, its event kept"
    );
}

/// `topsellers archive --from kafka` against the real broker: the archiver aborts itself between publishing a run
/// and committing its position, is killed with SIGKILL while purchases arrive, and is restarted each time; after a
/// clean stop, DuckDB finds every purchase of the topic exactly once, in its dt=/hour=, without the planted personal
/// data.
#[test]
fn kafka_archive_holds_every_message_once_through_kill_9() {
    use common::kafka::{kafka_from_env, signal, unique, wait_exit, write_lines, ClusterSetup};
    use std::time::{Duration, Instant};
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    if !duckdb_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("archive");
    let sections = format!(
        "[engine]\nallowed_lateness_secs = 86400\n[node]\nidle_advance = false\n\
         [demo]\nrate_per_sec = 2.0\nduplicate_fraction = 0.0\n\
         [archive]\ndir = \"{}\"\nmax_file_rows = 100000\nmax_file_age_secs = 1\nkafka_group_id = \"{}\"\n",
        archive.display(),
        unique("archive")
    );
    let setup = ClusterSetup::new(&bootstrap, 3, &sections, "");
    let events = work.path().join("events.jsonl");
    let out = setup.run(&[
        "generate",
        "--events",
        "4000",
        "--start",
        "2026-01-01T00:00:00Z",
        "--out",
        events.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let last_time = serde_json::from_str::<Value>(lines.last().unwrap()).unwrap()["time"].clone();
    lines.push(
        serde_json::json!({
            "event_id": "planted-1", "time": last_time, "item_id": "SKU-PLANTED",
            "item_name": "gift for jane.doe@example.com", "category": "home/kitchen", "quantity": 1,
            "unit_price": "9.99", "currency": "USD", "customer_name": "PLANTED-CUSTOMER Jane Doe",
            "email": "jane.doe@example.com", "card_number": "4111 1111 1111 1111"
        })
        .to_string(),
    );
    let expected = lines.len() as u64;
    let (first_half, second_half) = lines.split_at(lines.len() / 2);
    let first = work.path().join("first.jsonl");
    let second = work.path().join("second.jsonl");
    write_lines(&first, first_half);
    write_lines(&second, second_half);
    let spawn = |abort_after: Option<u32>, log: &str| {
        let log = std::fs::File::create(work.path().join(log)).unwrap();
        let mut c = setup.command(&["archive", "--from", "kafka"]);
        c.env("RUST_LOG", "topsellers=info,warn")
            .stdout(std::process::Stdio::null())
            .stderr(log);
        if let Some(n) = abort_after {
            c.env(
                "TOPSELLERS_TEST_KAFKA_ARCHIVE_ABORT_AFTER_PUBLISHES",
                n.to_string(),
            );
        }
        c.spawn().unwrap()
    };
    let rows_now = || -> u64 {
        if files_under(&archive)
            .iter()
            .all(|f| !f.ends_with(".parquet"))
        {
            return 0;
        }
        read_back(&archive)["rows"].as_u64().unwrap()
    };

    // 1. Half the purchases; the archiver aborts after its first run is published, before committing it. Runs end
    // by age here (1 s), so a run rebuilt after the restart, when the second half has arrived, would end at another
    // offset: only republishing exactly the interrupted run keeps its events from appearing twice.
    setup.publish(&[&first]);
    let mut archiver = spawn(Some(1), "archive-1.log");
    wait_exit(&mut archiver, Duration::from_secs(60));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&archiver.wait().unwrap()),
        Some(6),
        "the archiver was meant to abort: {}",
        std::fs::read_to_string(work.path().join("archive-1.log")).unwrap()
    );
    let interrupted = files_under(&archive)
        .iter()
        .filter(|f| f.ends_with(".position"))
        .map(|f| std::fs::read_to_string(archive.join(f)).unwrap())
        .filter(|p| !p.contains("\"publishing\":null"))
        .count();
    assert_eq!(interrupted, 1, "one partition's run was interrupted");

    // 2. Restarted; the other half arrives while it runs; SIGKILL mid-stream.
    let mut archiver = spawn(None, "archive-2.log");
    setup.publish(&[&second]);
    std::thread::sleep(Duration::from_millis(700));
    signal(&mut archiver, "-KILL");
    wait_exit(&mut archiver, Duration::from_secs(10));

    // 3. Restarted until everything is in, then stopped cleanly.
    let mut archiver = spawn(None, "archive-3.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows_now() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1000));
    }
    signal(&mut archiver, "-TERM");
    wait_exit(&mut archiver, Duration::from_secs(30));
    let log = std::fs::read_to_string(work.path().join("archive-3.log")).unwrap();
    eprintln!("{log}");

    let files = files_under(&archive);
    assert!(
        files
            .iter()
            .all(|f| f.ends_with(".parquet") || f.starts_with("_topsellers/kafka-")),
        "temporary or unexpected files: {files:?}"
    );
    let got = read_back(&archive);
    eprintln!("duckdb: {got}; published {expected}");
    assert_eq!(
        got["rows"].as_u64(),
        Some(expected),
        "every purchase exactly once"
    );
    assert_eq!(
        got["distinct_ids"].as_u64(),
        Some(expected),
        "no purchase twice"
    );
    assert_eq!(got["misplaced"], 0, "rows in the wrong dt=/hour= partition");
    assert_eq!(got["leaks"], 0, "personal data in the archive");
    assert_eq!(
        got["redacted"], 1,
        "the planted e-mail is redacted, its event kept"
    );
}
