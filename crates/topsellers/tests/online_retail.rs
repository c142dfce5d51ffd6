//! The real data: replaying every Online Retail file with the example config gives, for every country, the `all`
//! window and the 24h window at the end of the data, the same top-10 as an independent computation: the raw CSV
//! rows loaded into SQLite and ranked by SQL with the same filters.

use rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/online-retail/by-day")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

type Top = Vec<(String, i64, i64)>;

#[test]
fn replay_matches_an_independent_sql_computation() {
    let data = data_dir();
    if !data.is_dir() {
        eprintln!(
            "online-retail data not found at {}; skipping the real-data check",
            data.display()
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store_dir = work.path().join("d");
    let bin = env!("CARGO_BIN_EXE_topsellers");
    let config = repo_root().join("examples/online-retail.toml");
    let out = Command::new(bin)
        .args(["replay", "--no-progress", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&store_dir)
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "replay failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");

    let out = Command::new(bin)
        .args(["results", "--n", "10", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&store_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ours: BTreeMap<(String, String), (Top, Value)> = BTreeMap::new();
    for list in results["lists"].as_array().unwrap() {
        let items = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["item_id"].as_str().unwrap().to_string(),
                    i["units"].as_i64().unwrap(),
                    i["revenue_minor"].as_i64().unwrap(),
                )
            })
            .collect();
        ours.insert(
            (
                list["category"].as_str().unwrap().to_string(),
                list["window"].as_str().unwrap().to_string(),
            ),
            (items, list["bounds"].clone()),
        );
    }

    let db = load_raw_rows(&data);
    // The end of the data, computed independently: the end of the 1-minute bucket holding the newest counted row
    // (excluded rows and stock adjustments never move event time). The data spans December to February, when UK
    // local time equals UTC, so local times are UTC times.
    let max_ts_ms: i64 = db
        .query_row("SELECT max(ts_ms) FROM clean", [], |r| r.get(0))
        .unwrap();
    let end_ms = (max_ts_ms.div_euclid(60_000) + 1) * 60_000;
    let windows: [(&str, Option<i64>); 2] = [("all", None), ("24h", Some(end_ms - 86_400_000))];

    let countries: Vec<String> = {
        let mut st = db
            .prepare("SELECT DISTINCT category FROM clean ORDER BY 1")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        countries.len() >= 30,
        "expected about 31 countries, got {}",
        countries.len()
    );
    let mut compared = 0;
    for (window, start_ms) in windows {
        for category in countries.iter().map(String::as_str).chain([""]) {
            let expected = sql_top10(&db, category, start_ms, end_ms);
            let Some((got, bounds)) = ours.get(&(category.to_string(), window.to_string())) else {
                panic!("no {window} list for category {category:?} in our results");
            };
            assert_eq!(
                got, &expected,
                "top-10 differs for category {category:?}, window {window}"
            );
            assert_eq!(
                bounds["end_ms"].as_i64(),
                Some(end_ms),
                "window end for {category:?} {window}"
            );
            assert_eq!(
                bounds["start_ms"].as_i64(),
                start_ms,
                "window start for {category:?} {window}"
            );
            compared += 1;
        }
    }
    eprintln!("compared {compared} top-10 lists with SQL: all equal");
}

/// Every CSV row as text, straight from the files, then one `clean` view applying the same rules as
/// examples/online-retail.toml, written in SQL.
fn load_raw_rows(dir: &Path) -> Connection {
    let db = Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE raw (invoice TEXT, stock TEXT, descr TEXT, qty INTEGER, date TEXT, price TEXT, country TEXT);",
    )
    .unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let tx = db.unchecked_transaction().unwrap();
    {
        let mut ins = tx
            .prepare("INSERT INTO raw VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .unwrap();
        for f in files {
            let mut rd = csv::Reader::from_path(&f).unwrap();
            for rec in rd.records() {
                let r = rec.unwrap();
                // CustomerID (column 6) is deliberately not loaded.
                ins.execute(rusqlite::params![
                    &r[0],
                    &r[1],
                    &r[2],
                    r[3].parse::<i64>().unwrap(),
                    &r[4],
                    &r[5],
                    &r[7]
                ])
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    db.execute_batch(
        "CREATE TABLE clean AS
           SELECT upper(trim(stock)) AS item, lower(trim(country)) AS category, qty,
                  CAST(round(CAST(price AS REAL) * 100) AS INTEGER) AS price_minor,
                  unixepoch(date) * 1000 AS ts_ms
           FROM raw
           WHERE upper(trim(stock)) NOT IN ('POST','DOT','M','S','C2','D','AMAZONFEE','BANK CHARGES')
             AND upper(trim(stock)) NOT LIKE 'GIFT\\_0001\\_%' ESCAPE '\\'
             AND upper(trim(stock)) NOT LIKE 'DCGS%'
             AND (qty > 0 OR invoice LIKE 'C%');",
    )
    .unwrap();
    db
}

fn sql_top10(db: &Connection, category: &str, start_ms: Option<i64>, end_ms: i64) -> Top {
    let mut st = db
        .prepare(
            "SELECT item, sum(qty) AS units, sum(qty * price_minor) AS revenue FROM clean
             WHERE (?1 = '' OR category = ?1) AND (?2 IS NULL OR ts_ms >= ?2) AND ts_ms < ?3
             GROUP BY item HAVING units > 0
             ORDER BY units DESC, revenue DESC, item ASC LIMIT 10",
        )
        .unwrap();
    st.query_map(rusqlite::params![category, start_ms, end_ms], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}
