//! `topsellers batch` against a real PostgreSQL (`scripts/services.sh start postgres`, address in
//! `TOPSELLERS_TEST_POSTGRES`) loaded with the Online Retail data:
//! - the batch gives the same top lists as the embedded replay of the same purchases;
//! - a second run with no new rows changes nothing;
//! - a run after new rows equals a full recompute;
//! - a run killed mid-way leaves the committed results as they were;
//! - a missing table or column, a wrong column type and a database that is down are clear errors.
//!
//! Each test works in its own PostgreSQL schema, dropped at the end.

mod common;

use postgres::{Client, NoTls};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn postgres_from_env() -> Option<String> {
    let var = "TOPSELLERS_TEST_POSTGRES";
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set under CI: scripts/test.sh must start PostgreSQL (scripts/services.sh start postgres)");
            }
            eprintln!("SKIPPED: {var} is not set; run ./scripts/test.sh (it starts PostgreSQL) to run this test");
            None
        }
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/online-retail/by-day")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A schema of its own, dropped (with everything in it) when the test ends, even on a panic.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str, prefix: &str) -> Schema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        let mut client =
            Client::connect(url, NoTls).expect("connecting to TOPSELLERS_TEST_POSTGRES");
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        Schema {
            url: url.to_string(),
            name,
        }
    }

    fn client(&self) -> Client {
        let mut c = Client::connect(&self.url, NoTls).unwrap();
        c.batch_execute(&format!("SET search_path TO {}", self.name))
            .unwrap();
        c
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.url, NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// The Online Retail CSV files as a table `raw`, without the customer id (personal data, never loaded).
fn load_online_retail(client: &mut Client, files: &[PathBuf]) -> u64 {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS raw (invoice text NOT NULL, stock text NOT NULL, descr text, qty integer NOT NULL, \
             invoice_date timestamp NOT NULL, price numeric(12, 3) NOT NULL, country text NOT NULL)",
        )
        .unwrap();
    let mut rows = 0;
    let mut writer = client
        .copy_in("COPY raw FROM STDIN WITH (FORMAT csv)")
        .unwrap();
    {
        let mut out = csv::Writer::from_writer(&mut writer);
        for f in files {
            let mut rd = csv::Reader::from_path(f).unwrap();
            for rec in rd.records() {
                let r = rec.unwrap();
                out.write_record([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[7]])
                    .unwrap();
                rows += 1;
            }
        }
        out.flush().unwrap();
    }
    writer.finish().unwrap();
    rows
}

fn csv_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
}

/// The rules of examples/online-retail.toml, in SQL.
const CLEAN_QUERY: &str = "SELECT upper(trim(stock)) AS item, lower(trim(country)) AS country, descr, qty, invoice_date, price \
     FROM raw WHERE upper(trim(stock)) NOT IN ('POST','DOT','M','S','C2','D','AMAZONFEE','BANK CHARGES') \
     AND upper(trim(stock)) NOT LIKE 'GIFT\\_0001\\_%' AND upper(trim(stock)) NOT LIKE 'DCGS%' \
     AND (qty > 0 OR invoice LIKE 'C%')";

const ENGINE: &str = "[engine]\nbucket_secs = 60\nwindows = [\"1h\", \"24h\", \"7d\", \"all\"]\nallowed_lateness_secs = 3600\n\
     [limits]\ncurrency = \"GBP\"\nprice_decimals = 2\nmax_quantity = 100000\n";

/// A batch config over `schema` reading `source` (TOML for `table = ...` or `query = ...`), results in `store`.
fn batch_config(
    dir: &Path,
    name: &str,
    url: &str,
    schema: &str,
    source: &str,
    store: &Path,
) -> PathBuf {
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let text = format!(
        "{ENGINE}[cluster]\nresults_store = \"sqlite:{}\"\n[batch]\nurl = \"{url}\"\n{source}\n\
         [batch.columns]\nitem_id = \"item\"\nitem_name = \"descr\"\ncategory = \"country\"\nquantity = \"qty\"\n\
         unit_price = \"price\"\ntime = \"invoice_date\"\n",
        store.display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn topsellers(args: &[&str], config: &Path, extra_env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(common::bin());
    c.args(args).arg("--config").arg(config);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

type Lists = BTreeMap<(String, String), Value>;

/// Every list of a `results` answer, keyed by (category, window): items (id, units, revenue, name) and bounds.
fn lists(results: &str) -> (Lists, Value) {
    let v: Value = serde_json::from_str(results).unwrap();
    let mut out = BTreeMap::new();
    for list in v["lists"].as_array().unwrap() {
        out.insert(
            (
                list["category"].as_str().unwrap().to_string(),
                list["window"].as_str().unwrap().to_string(),
            ),
            serde_json::json!({ "items": list["items"], "bounds": list["bounds"] }),
        );
    }
    (out, v)
}

fn batch_results(config: &Path) -> (Lists, Value) {
    let out = topsellers(&["results", "--cluster", "--n", "100"], config, &[]);
    lists(&ok(&out, "results --cluster"))
}

fn assert_same_lists(got: &Lists, expected: &Lists, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: different lists"
    );
    for (key, e) in expected {
        assert_eq!(&got[key], e, "{what}: list {key:?} differs");
    }
}

#[test]
fn batch_equals_the_embedded_replay_and_runs_incrementally() {
    let Some(url) = postgres_from_env() else {
        return;
    };
    if !data_dir().is_dir() {
        eprintln!(
            "SKIPPED: online-retail data not found at {}",
            data_dir().display()
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let schema = Schema::new(&url, "batch_conformance");
    let mut client = schema.client();
    let files = csv_files();
    let loaded = load_online_retail(&mut client, &files);
    eprintln!("loaded {loaded} Online Retail rows into PostgreSQL");

    // The embedded replay of the same files: the reference.
    let replay_dir = work.path().join("replay");
    let example = repo_root().join("examples/online-retail.toml");
    let out = Command::new(common::bin())
        .args(["replay", "--no-progress", "--config"])
        .arg(&example)
        .arg("--data-dir")
        .arg(&replay_dir)
        .arg(data_dir())
        .output()
        .unwrap();
    ok(&out, "replay");
    let out = Command::new(common::bin())
        .args(["results", "--n", "100", "--config"])
        .arg(&example)
        .arg("--data-dir")
        .arg(&replay_dir)
        .output()
        .unwrap();
    let (replayed, replayed_all) = lists(&ok(&out, "results"));

    // One full batch over everything.
    let source = format!("query = \"{}\"", CLEAN_QUERY.replace('\\', "\\\\"));
    let full = batch_config(
        work.path(),
        "full",
        &url,
        &schema.name,
        &source,
        &work.path().join("full.db"),
    );
    let stdout = ok(
        &topsellers(&["batch", "--no-progress"], &full, &[]),
        "batch",
    );
    eprintln!("{stdout}");
    let (batched, batched_all) = batch_results(&full);
    assert_same_lists(&batched, &replayed, "full batch vs embedded replay");
    assert_eq!(batched_all["as_of_ms"], replayed_all["as_of_ms"]);
    assert_eq!(
        batched_all["events_counted"],
        replayed_all["events_counted"]
    );

    // Incremental: a table filled in two steps (up to the end of 2010, then the rest).
    client
        .batch_execute(&format!(
            "CREATE TABLE purchases AS {CLEAN_QUERY} AND invoice_date < '2011-01-01'; \
             CREATE TABLE later AS {CLEAN_QUERY} AND invoice_date >= '2011-01-01'"
        ))
        .unwrap();
    let store = work.path().join("incremental.db");
    let inc = batch_config(
        work.path(),
        "inc",
        &url,
        &schema.name,
        "table = \"purchases\"",
        &store,
    );
    ok(
        &topsellers(&["batch", "--no-progress"], &inc, &[]),
        "first run",
    );
    let (_, first) = batch_results(&inc);

    // Nothing new: nothing changes, not even the version.
    let stdout = ok(
        &topsellers(&["batch", "--no-progress"], &inc, &[]),
        "second run",
    );
    assert!(stdout.contains("nothing to do"), "{stdout}");
    let (_, second) = batch_results(&inc);
    assert_eq!(second, first, "a run without new rows changed the results");

    // New rows arrive; a run killed after a few groups saves nothing.
    client
        .batch_execute("INSERT INTO purchases SELECT * FROM later")
        .unwrap();
    let killed = topsellers(
        &["batch", "--no-progress"],
        &inc,
        &[("TOPSELLERS_TEST_BATCH_ABORT_AFTER_GROUPS", "5000")],
    );
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(6),
        "the run was meant to abort part-way: {}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let (_, after_kill) = batch_results(&inc);
    assert_eq!(after_kill, first, "a killed run left partial results");

    // The next run catches up and equals the full recompute.
    ok(
        &topsellers(&["batch", "--no-progress"], &inc, &[]),
        "run after new rows",
    );
    let (caught_up, caught_up_all) = batch_results(&inc);
    assert_same_lists(&caught_up, &batched, "incremental vs full batch");
    assert_eq!(
        caught_up_all["events_counted"],
        batched_all["events_counted"]
    );
    assert_eq!(
        caught_up_all["version"].as_u64(),
        first["version"].as_u64().map(|v| v + 1)
    );
}

#[test]
fn batch_errors_name_the_problem_and_save_nothing() {
    let Some(url) = postgres_from_env() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let schema = Schema::new(&url, "batch_errors");
    let mut client = schema.client();
    client
        .batch_execute(
            "CREATE TABLE purchases (item text, descr text, country text, qty integer, price numeric, invoice_date timestamptz); \
             INSERT INTO purchases VALUES ('A', 'a thing', 'uk', 2, 1.50, '2024-01-01 10:00:00+00'); \
             CREATE TABLE wrong_types (item integer, descr text, country text, qty text, price numeric, invoice_date timestamptz)",
        )
        .unwrap();
    let store = work.path().join("r.db");
    let run = |name: &str, url: &str, source: &str| {
        let config = batch_config(work.path(), name, url, &schema.name, source, &store);
        let out = topsellers(&["batch", "--no-progress"], &config, &[]);
        (out, config)
    };
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).to_string();

    let (out, _) = run("missing_table", &url, "table = \"no_such_table\"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(stderr(&out).contains("batch.table"), "{}", stderr(&out));

    let (out, _) = run(
        "missing_column",
        &url,
        "query = \"SELECT item, descr, country, qty, price FROM purchases\"",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("batch.columns"), "{}", stderr(&out));

    let (out, _) = run("wrong_types", &url, "table = \"wrong_types\"");
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("batch.columns.item_id") && e.contains("int4"),
        "{e}"
    );

    // Nothing listens on the port: a down database, with the password masked.
    let port = common::free_port();
    let down = format!("postgres://topsellers:hunter2secret@127.0.0.1:{port}/topsellers");
    let (out, _) = run("down", &down, "table = \"purchases\"");
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("cannot reach PostgreSQL"), "{e}");
    assert!(
        !e.contains("hunter2secret"),
        "the password was printed: {e}"
    );

    // None of these saved anything; a good run then works.
    let (out, config) = run("good", &url, "table = \"purchases\"");
    ok(&out, "good run");
    let (lists, all) = batch_results(&config);
    assert_eq!(all["version"], 1);
    assert_eq!(
        lists[&("uk".to_string(), "all".to_string())]["items"][0]["units"],
        2
    );
    assert_eq!(
        lists[&("uk".to_string(), "all".to_string())]["items"][0]["revenue_minor"],
        300
    );
}
