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
