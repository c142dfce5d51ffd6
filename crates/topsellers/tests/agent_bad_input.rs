//! Bad input through every intake of `topsellers agent` (the file tail, its `POST /v1/purchases`, the log4j2 socket
//! and the log4j2 HTTP intake), forwarding to a real `topsellers serve`: binary garbage, invalid UTF-8, a 10 MB
//! line, JSON nested 100 000 levels deep, and a record cut short (a line cut at rotation, a connection closed
//! mid-event, a truncated body), each carrying planted personal data. Each becomes a dead letter with its reason
//! and no personal data in it; the agent stays up, each connection keeps going, and the good records sent after the
//! bad ones all arrive, exactly once (the node's results equal one replay of the good records).

mod common;

use common::agent::*;
use common::{free_port, http, terminate, wait_healthy};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// Good purchases in the canonical shape, with personal data in unmapped keys and now and then in the item name.
fn good_records(intake: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = if i % 4 == 0 {
                format!("Mug for {}", PLANTED[1])
            } else {
                format!("Mug {}", i % 5)
            };
            let category = ["home/kitchen", "books", "electronics/phones"][i % 3];
            serde_json::json!({
                "event_id": format!("{intake}-{i}"),
                "time": format!("2026-01-01T{:02}:{:02}:00Z", i / 60, i % 60),
                "item_id": format!("SKU-{}", i % 5),
                "item_name": name,
                "category": category,
                "quantity": 1 + i % 3,
                "unit_price": format!("{}.{:02}", 2 + i % 7, i % 100),
                "currency": "USD",
                "customer": {"name": PLANTED[0], "email": PLANTED[1], "card": PLANTED[2],
                             "phone": PLANTED[3], "address": PLANTED[4], "ip": PLANTED[5]},
            })
            .to_string()
        })
        .collect()
}

/// A purchase as a log4j2 JSON layout event: the purchase JSON as the message, personal data in the ThreadContext
/// (flattened into the event, as the ECS template does).
fn as_log4j2_event(record: &str) -> String {
    serde_json::json!({
        "@timestamp": "2026-12-04T10:00:00.000Z",
        "log.level": "INFO",
        "message": record,
        "customer.email": PLANTED[1],
        "client_ip": PLANTED[5],
    })
    .to_string()
}

/// Bytes that are no text at all (no newline among them), then planted data.
fn garbage() -> Vec<u8> {
    let mut g: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .filter(|&b| b != b'\n')
        .collect();
    g.extend_from_slice(PLANTED[1].as_bytes());
    g
}

fn invalid_utf8() -> Vec<u8> {
    format!(
        "{{\"item_id\":\"sku-\u{1}\",\"customer\":\"{}\",\"email\":\"{}\"}}",
        PLANTED[0], PLANTED[1]
    )
    .replace('\u{1}', "\u{fffd}")
    .into_bytes()
    .into_iter()
    .flat_map(|b| if b == 0xef { vec![0xff, 0xfe] } else { vec![b] })
    .collect()
}

/// A 10 MB record: an ordinary purchase with a huge field, and personal data.
fn ten_mb() -> Vec<u8> {
    format!(
        "{{\"item_id\":\"sku-1\",\"customer\":\"{}\",\"pad\":\"{}\"}}",
        PLANTED[0],
        "x".repeat(10 << 20)
    )
    .into_bytes()
}

/// JSON nested 100 000 levels deep, with personal data inside.
fn deeply_nested() -> Vec<u8> {
    format!(
        "{{\"customer\":\"{}\",\"a\":{}\"{}\"{}}}",
        PLANTED[0],
        "[".repeat(100_000),
        PLANTED[1],
        "]".repeat(100_000)
    )
    .into_bytes()
}

/// A record cut short: no closing brace, no newline.
fn cut() -> Vec<u8> {
    format!(
        "{{\"event_id\":\"cut-1\",\"item_id\":\"sku-cut\",\"customer\":\"{}\",\"email\":\"{}\"",
        PLANTED[0], PLANTED[1]
    )
    .into_bytes()
}

fn bad_inputs() -> Vec<Vec<u8>> {
    vec![garbage(), invalid_utf8(), ten_mb(), deeply_nested()]
}

/// POSTs `body`; the status, or `None` when the server closed the connection before answering (which it may do
/// with a body it refused unread).
fn post(port: u16, path: &str, body: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

fn post_ok(port: u16, path: &str, body: &[u8]) {
    let auth = format!("Bearer {TOKEN}");
    let r = http(
        port,
        "POST",
        path,
        &[("Authorization", auth.as_str())],
        body,
    )
    .unwrap();
    assert_eq!(r.status, 200, "POST {path}: {}", r.body);
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn bad_input_through_every_intake_is_dead_lettered_and_the_good_records_after_it_arrive() {
    let work = tempfile::tempdir().unwrap();
    let node_config = work.path().join("node.toml");
    std::fs::write(&node_config, NODE_CONFIG).unwrap();
    let node_dir = work.path().join("node");
    let node_log = work.path().join("node.log");
    let port = free_port();
    let mut procs = Procs(vec![spawn_serve_logged(
        &node_config,
        &node_dir,
        port,
        &node_log,
    )]);
    assert!(
        wait_healthy(port, Duration::from_secs(30)),
        "the node did not start"
    );
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let state = work.path().join("agent-state");
    let (http_port, socket_port, log4j2_http_port) = (free_port(), free_port(), free_port());
    let agent_config = work.path().join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            r#"
[agent]
state_dir = "{state}"
poll_interval_ms = 20
cut_line_timeout_ms = 300
[agent.downstream]
type = "node"
url = "http://127.0.0.1:{port}/v1/purchases"
auth_token = "{TOKEN}"
[[agent.files]]
path = "{logs}/purchases.log*"
[agent.http]
listen = "127.0.0.1:{http_port}"
auth_token = "{TOKEN}"
[agent.log4j2]
socket_listen = "127.0.0.1:{socket_port}"
http_listen = "127.0.0.1:{log4j2_http_port}"
auth_token = "{TOKEN}"
"#,
            state = state.display(),
            logs = logs.display(),
        ),
    )
    .unwrap();
    let agent_log = work.path().join("agent.log");
    procs.0.push(spawn_agent(&agent_config, &agent_log));
    for p in [http_port, socket_port, log4j2_http_port] {
        assert!(
            wait_listening(p, Duration::from_secs(20)),
            "the agent does not listen on {p}: {}",
            std::fs::read_to_string(&agent_log).unwrap_or_default()
        );
    }
    let mut expected_lines = Vec::new();

    // The file tail: the bad lines, good ones, a last line cut by a rotation (rename), good ones in the new file.
    let live = logs.join("purchases.log");
    let good = good_records("file", 40);
    append(&live, format!("{}\n", good[0]).as_bytes());
    for bad in bad_inputs() {
        append(&live, &bad);
        append(&live, b"\n");
    }
    append(&live, (good[1..20].join("\n") + "\n").as_bytes());
    append(&live, &cut());
    std::fs::rename(&live, logs.join("purchases.log.1")).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // the new file is the newer one, by modification time
    append(&live, (good[20..].join("\n") + "\n").as_bytes());
    expected_lines.extend(good);

    // The agent's POST /v1/purchases: each bad body, then the good records.
    let good = good_records("http", 30);
    for bad in bad_inputs().into_iter().chain([cut()]) {
        let status = post(http_port, "/v1/purchases", &bad);
        assert!(
            matches!(status, Some(200 | 413) | None),
            "POST /v1/purchases of a bad body answered {status:?}"
        );
    }
    post_ok(http_port, "/v1/purchases", good.join("\n").as_bytes());
    expected_lines.extend(good);

    // The log4j2 socket: one connection, the bad lines, the good events, and an event cut by closing it.
    let good = good_records("socket", 30);
    let mut socket = TcpStream::connect(("127.0.0.1", socket_port)).unwrap();
    for bad in bad_inputs() {
        socket.write_all(&bad).unwrap();
        socket.write_all(b"\n").unwrap();
    }
    for record in &good {
        socket
            .write_all(format!("{}\n", as_log4j2_event(record)).as_bytes())
            .unwrap();
    }
    socket.write_all(&cut()).unwrap();
    drop(socket);
    expected_lines.extend(good);

    // The log4j2 HTTP intake: each bad body, then one good event per request.
    let good = good_records("log4j2http", 30);
    for bad in bad_inputs().into_iter().chain([cut()]) {
        let status = post(log4j2_http_port, "/v1/log4j2", &bad);
        assert!(
            matches!(status, Some(200 | 413) | None),
            "POST /v1/log4j2 of a bad body answered {status:?}"
        );
    }
    for record in &good {
        post_ok(
            log4j2_http_port,
            "/v1/log4j2",
            as_log4j2_event(record).as_bytes(),
        );
    }
    expected_lines.extend(good);

    // Every good record arrives, once.
    let expected = reference_results(&node_config, work.path(), &expected_lines);
    wait_for_results(
        &node_config,
        &node_dir,
        &expected,
        Duration::from_secs(60),
        || {
            format!(
                "agent log:\n{}",
                std::fs::read_to_string(&agent_log).unwrap_or_default()
            )
        },
    );
    // Each bad input is a dead letter with its reason (the cut line once its file has been left alone).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while dead_letters(&state).len() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(procs.0[1].try_wait().unwrap().is_none(), "the agent exited");
    assert_no_planted("the node's API", api_dump(port).as_bytes());
    terminate(&mut procs.0[1]);
    terminate(&mut procs.0[0]);
    assert_eq!(results(&node_config, &node_dir), expected);

    let letters = dead_letters(&state);
    let mut by_intake: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for l in &letters {
        let source = l["source"].as_str().unwrap();
        let intake = match source {
            s if s.starts_with("file:") => "file",
            s if s.starts_with("agent:log4j2-socket") => "log4j2 socket",
            "agent:log4j2-http" => "log4j2 http",
            "agent:http" => "http",
            other => panic!("a dead letter from {other:?}"),
        };
        assert!(
            !l["message"].as_str().unwrap_or_default().is_empty(),
            "a dead letter without its reason: {l}"
        );
        by_intake
            .entry(intake.into())
            .or_default()
            .push(l["reason"].as_str().unwrap().to_string());
    }
    for reasons in by_intake.values_mut() {
        reasons.sort();
    }
    let every: Vec<String> = [
        "invalid_utf8",
        "invalid_utf8",
        "malformed",
        "malformed",
        "oversized",
    ]
    .map(String::from)
    .to_vec();
    let expected_letters: std::collections::BTreeMap<String, Vec<String>> =
        ["file", "http", "log4j2 http", "log4j2 socket"]
            .into_iter()
            .map(|i| (i.to_string(), every.clone()))
            .collect();
    assert_eq!(
        by_intake,
        expected_letters,
        "{}",
        serde_json::to_string_pretty(&Value::from(letters.clone())).unwrap()
    );
    assert_none_planted_in(&[&node_dir, &state], &[&agent_log, &node_log]);
}
