//! The Kafka path against a real broker: the same purchases give the same top lists through Kafka as through the
//! embedded pipeline, with outside producers (kcat), bad messages, and aggregators killed, added and removed.

mod common;

use common::kafka::{
    embedded_reference, kafka_from_env, signal, wait_exit, write_lines, ClusterSetup, Reaper,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ENGINE: &str = r#"
[engine]
bucket_secs = 60
windows = ["1h", "24h", "all"]
allowed_lateness_secs = 3600
[node]
idle_advance = false
[demo]
rate_per_sec = 20
"#;

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

/// Splits a JSON-lines file into `n` files of consecutive lines (a stream arriving in parts).
fn split(path: &Path, n: usize) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let per = lines.len().div_ceil(n);
    lines
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            let p = path.with_file_name(format!("part-{i:02}.jsonl"));
            write_lines(&p, chunk);
            p
        })
        .collect()
}

#[test]
fn kafka_path_equals_embedded_path_on_generated_traffic() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let setup = ClusterSetup::new(&bootstrap, 6, ENGINE, "");
    // Generated traffic has refunds of earlier sales, duplicate deliveries and late events.
    let file = generate(&setup, "events.jsonl", 30_000, "2026-11-01T00:00:00Z");
    let expected = embedded_reference(&setup.config, &[&file]);
    assert!(expected["events_counted"].as_u64().unwrap() > 25_000);

    let mut reaper = Reaper::default();
    reaper.0.push(setup.spawn_aggregator("a"));
    reaper.0.push(setup.spawn_aggregator("b"));
    let out = setup.publish(&[&file]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("published"), "{report}");

    let got = setup.wait_for_results(&expected, Duration::from_secs(120));
    assert_eq!(
        got,
        expected,
        "Kafka path differs from the embedded path; aggregator logs:\n{}\n{}",
        setup.aggregator_log("a"),
        setup.aggregator_log("b")
    );
}

#[test]
fn events_from_kcat_are_aggregated_and_bad_messages_go_to_the_dead_letter_topic() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let setup = ClusterSetup::new(&bootstrap, 4, ENGINE, "");
    let mut reaper = Reaper::default();
    reaper.0.push(setup.spawn_aggregator("a"));
    // Wait for the topics to exist (the aggregator creates them) before kcat produces.
    std::thread::sleep(Duration::from_secs(3));

    // All purchases within one minute, so every partition ends in the same bucket whatever reaches it first.
    let mut good = Vec::new();
    for i in 0..400u32 {
        let item = format!("sku-{}", i % 37);
        let category = ["toys/lego", "toys/dolls", "books", "garden/tools"][(i % 4) as usize];
        let qty = if i % 29 == 0 { -1 } else { 1 + (i % 3) as i64 };
        good.push(format!(
            r#"{{"event_id":"k-{i}","time":"2026-11-02T12:00:{:02}Z","item_id":"{item}","category":"{category}","quantity":{qty},"unit_price":"{}.50","currency":"USD"}}"#,
            i % 50,
            1 + i % 7
        ));
    }
    // Duplicates of some purchases (same id, same item): dropped.
    let duplicates: Vec<String> = good.iter().step_by(40).cloned().collect();
    let bad = vec![
        "this is not json".to_string(),
        r#"{"item_id":"sku-1","quantity":1}"#.to_string(),
        r#"{"event_id":"bad-3","time":"2026-11-02T12:00:00Z","item_id":"sku-1","category":"toys","quantity":"lots","unit_price":"1.00","currency":"USD"}"#.to_string(),
    ];
    // Half keyed by item id (with librdkafka's default partitioner, not Kafka's: many land on another partition
    // than their item's and must be forwarded), half with no key at all.
    let (keyed, unkeyed) = good.split_at(200);
    let keyed_lines: Vec<String> = keyed
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{}|{l}", v["item_id"].as_str().unwrap())
        })
        .collect();
    let kcat = |args: &[&str], lines: &[String]| {
        let input = setup.dir.path().join("kcat-input.txt");
        write_lines(&input, lines);
        let status = Command::new("kcat")
            .args(["-b", &bootstrap, "-t", &setup.topic, "-P"])
            .args(args)
            .arg("-l")
            .arg(&input)
            .status()
            .expect("kcat must be installed (scripts/services.sh install kcat)");
        assert!(status.success());
    };
    kcat(&["-K", "|"], &keyed_lines);
    kcat(&[], unkeyed);
    kcat(&[], &duplicates);
    kcat(&[], &bad);

    let reference_file = setup.dir.path().join("good.jsonl");
    write_lines(&reference_file, &good);
    let expected = embedded_reference(&setup.config, &[&reference_file]);
    let got = setup.wait_for_results(&expected, Duration::from_secs(60));
    assert_eq!(
        got,
        expected,
        "aggregator log:\n{}",
        setup.aggregator_log("a")
    );

    // The dead-letter topic names each bad message's reason and offset.
    let out = Command::new("kcat")
        .args(["-b", &bootstrap, "-C", "-e", "-q", "-o", "beginning", "-t"])
        .arg(format!("{}.dead-letters", setup.topic))
        .output()
        .unwrap();
    let letters = String::from_utf8_lossy(&out.stdout);
    let letters: Vec<serde_json::Value> = letters
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 3, "{letters:#?}");
    for letter in &letters {
        assert!(letter["offset"].as_i64().is_some(), "{letter}");
        assert!(letter["partition"].as_i64().is_some(), "{letter}");
        assert!(!letter["reason"].to_string().is_empty(), "{letter}");
    }
    let text = serde_json::to_string(&letters).unwrap();
    assert!(
        text.contains("quantity"),
        "the bad quantity is named: {text}"
    );
}

#[test]
fn aggregators_killed_added_and_removed_mid_stream_give_exact_results() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let setup = ClusterSetup::new(&bootstrap, 6, ENGINE, "");
    let generated = generate(&setup, "events.jsonl", 48_000, "2026-11-03T00:00:00Z");
    // Without event ids in the file (the publisher then gives each record a stable id of its own).
    let file = setup.dir.path().join("no-ids.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&generated)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("event_id");
            v.to_string()
        })
        .collect();
    write_lines(&file, &lines);
    let parts = split(&file, 12);
    let expected = embedded_reference(&setup.config, &[&file]);

    let mut reaper = Reaper::default();
    for name in ["a", "b", "c"] {
        reaper.0.push(setup.spawn_aggregator(name));
    }
    for (i, part) in parts.iter().enumerate() {
        setup.publish(&[part]);
        match i {
            // kill -9 one aggregator mid-stream, then start a replacement
            2 => signal(&mut reaper.0[0], "-KILL"),
            3 => reaper.0.push(setup.spawn_aggregator("d")),
            // add a fourth
            5 => reaper.0.push(setup.spawn_aggregator("e")),
            // remove two (a clean leave with final checkpoints)
            8 => {
                signal(&mut reaper.0[1], "-TERM");
                signal(&mut reaper.0[2], "-TERM");
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    for i in [1, 2] {
        wait_exit(&mut reaper.0[i], Duration::from_secs(30));
    }
    let got = setup.wait_for_results(&expected, Duration::from_secs(180));
    let logs: String = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| format!("--- {n}\n{}", setup.aggregator_log(n)))
        .collect();
    assert_eq!(
        got, expected,
        "results differ after failover; logs:\n{logs}"
    );
    assert!(
        logs.contains("claimed partition"),
        "partitions moved between aggregators: {logs}"
    );
}

#[test]
fn online_retail_through_kafka_equals_the_embedded_replay() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("../shared/data/online-retail/by-day");
    if !data.is_dir() {
        eprintln!(
            "online-retail data not found at {}; skipping the real-data check",
            data.display()
        );
        return;
    }
    // The example config as it is (mapping, refunds, exclusions, time zone), minus its data_dir.
    let example = std::fs::read_to_string(root.join("examples/online-retail.toml")).unwrap();
    let example: String = example
        .lines()
        .filter(|l| !l.starts_with("data_dir"))
        .map(|l| format!("{l}\n"))
        .collect();
    let setup = ClusterSetup::new(&bootstrap, 6, &example, "");
    let expected = embedded_reference(&setup.config, &[&data]);
    assert!(expected["events_counted"].as_u64().unwrap() > 100_000);
    let mut reaper = Reaper::default();
    reaper.0.push(setup.spawn_aggregator("a"));
    reaper.0.push(setup.spawn_aggregator("b"));
    setup.publish(&[&data]);
    let got = setup.wait_for_results(&expected, Duration::from_secs(180));
    assert_eq!(
        got,
        expected,
        "logs:\n{}\n{}",
        setup.aggregator_log("a"),
        setup.aggregator_log("b")
    );
}
