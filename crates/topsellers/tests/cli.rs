//! The binary as a user meets it: help with examples, config mistakes reported together, bad input files that
//! never stop a replay, the demo serving its page and API, and POST /v1/purchases end to end.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

#[test]
fn help_shows_examples_for_every_subcommand() {
    for sub in [
        None,
        Some("demo"),
        Some("serve"),
        Some("replay"),
        Some("generate"),
        Some("results"),
        Some("check-config"),
    ] {
        let mut cmd = Command::new(bin());
        if let Some(s) = sub {
            cmd.arg(s);
        }
        let out = cmd.arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(
            text.contains("Examples:"),
            "{sub:?} help has no examples:\n{text}"
        );
    }
}

#[test]
fn a_config_with_several_mistakes_reports_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[engine]\nbucket_secs = 0\nwindowz = [\"1h\"]\n[server]\nlisten = 5\n[limits]\nprice_decimals = \"two\"\n[nodes]\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for needle in [
        "engine.bucket_secs",
        "engine.windowz",
        "server.listen",
        "limits.price_decimals",
        "nodes",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
}

#[test]
fn an_environment_override_is_applied_and_secrets_are_masked() {
    let out = Command::new(bin())
        .arg("check-config")
        .env("TOPSELLERS_SERVER__AUTH_TOKEN", "very-secret-token")
        .env("TOPSELLERS_ENGINE__ALLOWED_LATENESS_SECS", "420")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("allowed_lateness_secs = 420"), "{text}");
    assert!(
        !text.contains("very-secret-token"),
        "the token leaked:\n{text}"
    );
}

#[test]
fn a_dirty_file_keeps_its_good_records_and_dead_letters_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[node]\nidle_advance = false\n[input]\nformat = \"csv\"\n",
    )
    .unwrap();
    let csv = dir.path().join("in.csv");
    let long_name = "x".repeat(10 * 1024 * 1024);
    let content = format!(
        "event_id,time,item_id,item_name,category,quantity,unit_price,currency\n\
         e1,2026-01-01T10:00:00Z,A,Alpha,toys/cars,3,2.50,USD\n\
         e2,2026-01-01T10:00:01Z,B,Beta,toys/cars,abc,2.50,USD\n\
         e3,not-a-time,C,Gamma,toys/cars,1,2.50,USD\n\
         e4,2026-01-01T10:00:02Z,D,{long_name},toys/cars,1,2.50,USD\n\
         e5,2026-01-01T10:00:03Z,E,Eps,toys/cars,1,2.50,EUR\n\
         e6,1970-01-01T00:00:00Z,F,Old,toys/cars,1,2.50,USD\n\
         e7,2026-01-01T10:00:04Z,G,,toys/dolls,2,-1.00,USD\n\
         e1,2026-01-01T10:00:00Z,A,Alpha,toys/cars,3,2.50,USD\n\
         e8,2026-01-01T10:00:05Z,A,Alpha,toys/cars,4,2.50,USD\n"
    );
    let mut bytes = content.into_bytes();
    bytes.extend_from_slice(b"e9,2026-01-01T10:00:06Z,\xff\xfe,Bad,toys,1,1.00,USD\n");
    // Twenty minutes older than the newest event: late, and its dead letter names its line.
    bytes.extend_from_slice(b"e10,2026-01-01T09:40:00Z,H,Late,toys/cars,1,1.00,USD\n");
    std::fs::write(&csv, bytes).unwrap();
    let data = dir.path().join("d");
    let out = run(
        &["replay", "--no-progress", csv.to_str().unwrap()],
        &cfg,
        &data,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("duplicates dropped"), "{stdout}");

    let letters = std::fs::read_to_string(data.join("dead-letters.ndjson")).unwrap();
    let letters: Vec<Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_line = |n: u32| {
        letters
            .iter()
            .find(|l| {
                let loc = l["location"].as_str().unwrap_or_default();
                loc == format!("line {n}") || loc.starts_with(&format!("line {n} "))
            })
            .unwrap_or_else(|| panic!("no dead letter for line {n}: {letters:#?}"))
    };
    assert_eq!(by_line(3)["field"], "quantity");
    assert_eq!(by_line(4)["field"], "time");
    assert_eq!(by_line(5)["reason"], "oversized");
    assert_eq!(by_line(6)["reason"], "currency_mismatch");
    assert_eq!(by_line(7)["reason"], "out_of_range");
    assert_eq!(by_line(8)["field"], "unit_price");
    assert_eq!(by_line(11)["reason"], "invalid_utf8");
    assert_eq!(by_line(12)["reason"], "late");
    for l in &letters {
        assert!(l["source"].as_str().unwrap().contains("in.csv"), "{l}");
        assert!(!l["message"].as_str().unwrap().is_empty());
    }

    let out = run(
        &["results", "--category", "toys/cars", "--window", "all"],
        &cfg,
        &data,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = &v["lists"][0]["items"];
    assert_eq!(items[0]["item_id"], "A");
    assert_eq!(
        items[0]["units"], 7,
        "e1 once (its duplicate dropped) plus e8"
    );
}

#[test]
fn demo_serves_the_page_and_the_api_and_stops_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(bin())
        .args([
            "demo",
            "--backfill-minutes",
            "5",
            "--duration-secs",
            "20",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("demo"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_healthy(port, Duration::from_secs(30)),
        "demo did not become ready"
    );
    let page = http(port, "GET", "/", &[], b"").unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html"), "{}", page.body);
    let top = http(port, "GET", "/v1/top?window=1h&n=10", &[], b"").unwrap();
    assert_eq!(top.status, 200, "{}", top.body);
    let v: Value = serde_json::from_str(&top.body).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 10, "{v}");
    let cats = http(port, "GET", "/v1/categories", &[], b"").unwrap();
    let c: Value = serde_json::from_str(&cats.body).unwrap();
    assert!(c["categories"].as_array().unwrap().len() > 40, "{c}");
    let bad = http(port, "GET", "/v1/top?n=0", &[], b"").unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("\"n\""), "{}", bad.body);
    let metrics = http(port, "GET", "/metrics", &[], b"").unwrap();
    assert!(
        metrics.body.contains("topsellers_events_accepted_total"),
        "{}",
        metrics.body
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
}

#[test]
fn posted_purchases_are_served_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[server]\nauth_token = \"t0ken-for-tests-only\"\n[node]\nidle_advance = false\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = spawn_serve(&cfg, &dir.path().join("d"), port);
    assert!(wait_healthy(port, Duration::from_secs(30)));
    let now = jiff::Timestamp::now().to_string();
    let body = format!(
        "{{\"event_id\":\"p1\",\"time\":\"{now}\",\"item_id\":\"SKU-1\",\"item_name\":\"Kettle\",\"category\":\"Home/Kitchen\",\"quantity\":2,\"unit_price\":\"19.99\",\"currency\":\"USD\"}}\n\
         {{\"event_id\":\"p2\",\"time\":\"{now}\",\"item_id\":\"SKU-2\",\"category\":\"home/kitchen\",\"quantity\":\"x\",\"unit_price\":\"1\",\"currency\":\"USD\"}}\n"
    );
    let unauthorized = http(port, "POST", "/v1/purchases", &[], body.as_bytes()).unwrap();
    assert_eq!(unauthorized.status, 401, "{}", unauthorized.body);
    let r = http(
        port,
        "POST",
        "/v1/purchases",
        &[("Authorization", "Bearer t0ken-for-tests-only")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let report: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["rejected"][0]["field"], "quantity", "{report}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let top = http(port, "GET", "/v1/top?category=Home&window=1h", &[], b"").unwrap();
        let v: Value = serde_json::from_str(&top.body).unwrap();
        if v["items"].as_array().is_some_and(|i| !i.is_empty()) {
            assert_eq!(v["items"][0]["item_id"], "SKU-1");
            assert_eq!(v["items"][0]["units"], 2);
            assert_eq!(v["items"][0]["revenue_minor"], 3998);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the purchase never showed up: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A retry of the same request is acknowledged again but counted once.
    let again = http(
        port,
        "POST",
        "/v1/purchases",
        &[("Authorization", "Bearer t0ken-for-tests-only")],
        body.as_bytes(),
    )
    .unwrap();
    let report: Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(report["duplicates"], 1, "{report}");
    terminate(&mut child);
}
