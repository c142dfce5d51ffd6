//! Replaying into the same data directory again never counts a purchase twice: the same file is skipped, a file
//! that grew at its end is read only for its new records, and an edited file is refused.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

const HEADER: &str = "event_id,time,item_id,category,quantity,unit_price,currency\n";

fn row(t: u32, item: &str, qty: i64) -> String {
    format!(",2026-01-01T10:00:{t:02}Z,{item},toys,{qty},1.00,USD\n")
}

fn units(config: &Path, data: &Path) -> Vec<(String, i64)> {
    let out = run(
        &["results", "--category", "toys", "--window", "all"],
        config,
        data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["lists"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item_id"].as_str().unwrap().to_string(),
                i["units"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_grown_and_edited_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[node]\nidle_advance = false\n").unwrap();
    let data = dir.path().join("d");
    let file = dir.path().join("day.csv");
    let replay = || {
        run(
            &["replay", "--no-progress", file.to_str().unwrap()],
            &config,
            &data,
        )
    };

    std::fs::write(
        &file,
        format!(
            "{HEADER}{}{}{}",
            row(1, "A", 1),
            row(2, "B", 2),
            row(3, "A", 3)
        ),
    )
    .unwrap();
    assert!(replay().status.success());
    assert_eq!(units(&config, &data), [("A".into(), 4), ("B".into(), 2)]);

    // The same file again: nothing new.
    let out = replay();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already replayed"));
    assert_eq!(units(&config, &data), [("A".into(), 4), ("B".into(), 2)]);

    // The file grew: only the new rows count.
    let mut grown = std::fs::read_to_string(&file).unwrap();
    grown.push_str(&row(4, "A", 10));
    grown.push_str(&row(5, "C", 5));
    std::fs::write(&file, &grown).unwrap();
    let out = replay();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("grew"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        units(&config, &data),
        [("A".into(), 14), ("C".into(), 5), ("B".into(), 2)]
    );

    // An edit in the middle: refused, nothing counted.
    std::fs::write(&file, grown.replace(",B,toys,2,", ",B,toys,7,")).unwrap();
    let out = replay();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has changed since"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        units(&config, &data),
        [("A".into(), 14), ("C".into(), 5), ("B".into(), 2)]
    );
}

#[test]
fn a_file_that_ended_mid_line_and_then_grew_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[node]\nidle_advance = false\n").unwrap();
    let data = dir.path().join("d");
    let file = dir.path().join("live.csv");
    // A writer was still appending: the last line is cut ("1" of what becomes "12").
    let head = format!(
        "{HEADER}{}{}",
        row(1, "A", 1),
        ",2026-01-01T10:00:02Z,B,toys,1"
    );
    std::fs::write(&file, &head).unwrap();
    let out = run(
        &["replay", "--no-progress", file.to_str().unwrap()],
        &config,
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&file, format!("{head}2,1.00,USD\n{}", row(3, "C", 1))).unwrap();
    let out = run(
        &["replay", "--no-progress", file.to_str().unwrap()],
        &config,
        &data,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("without a line break"), "{err}");
}

#[test]
fn a_file_that_grows_while_its_replay_is_interrupted_is_continued_not_reread() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        // No event ids: only the ledger can keep the re-read records from counting twice.
        "[node]\nidle_advance = false\ncheckpoint_every_records = 10000\nmax_batch_records = 2000\n\
         [input]\nformat = \"csv\"\n[input.fields]\nitem_id = \"item_id\"\ncategory = \"category\"\n\
         quantity = \"quantity\"\nunit_price = \"unit_price\"\ntime = \"time\"\ncurrency = \"currency\"\n",
    )
    .unwrap();
    let full = dir.path().join("full.csv");
    let out = std::process::Command::new(bin())
        .args([
            "generate",
            "--events",
            "150000",
            "--start",
            "2026-01-01T00:00:00Z",
            "--out",
        ])
        .arg(&full)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&full).unwrap();
    let cut = text[..text.len() * 2 / 3].rfind('\n').unwrap() + 1;
    let live = dir.path().join("live.csv");
    std::fs::write(&live, &text[..cut]).unwrap();

    // The reference: the complete file, replayed once.
    let started = std::time::Instant::now();
    let reference_dir = dir.path().join("reference");
    assert!(run(
        &["replay", "--no-progress", full.to_str().unwrap()],
        &config,
        &reference_dir
    )
    .status
    .success());
    let clean = started.elapsed();

    // Replay the first two thirds, stopped part-way by SIGTERM; the file then grows to its full length.
    let data = dir.path().join("d");
    let mut child = std::process::Command::new(bin())
        .args(["replay", "--no-progress", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg(&live)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(clean / 3);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    eprintln!("first replay ended with {status} (130 means it was interrupted part-way)");
    std::fs::write(&live, &text).unwrap();
    let out = run(
        &["replay", "--no-progress", live.to_str().unwrap()],
        &config,
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("version");
        v
    };
    let ours = strip(
        serde_json::from_slice(&run(&["results", "--n", "100"], &config, &data).stdout).unwrap(),
    );
    let reference = strip(
        serde_json::from_slice(&run(&["results", "--n", "100"], &config, &reference_dir).stdout)
            .unwrap(),
    );
    assert_eq!(
        ours, reference,
        "an interrupted replay of a file that then grew differs from one clean replay"
    );
}
