//! The PII audit (DESIGN.md, "what must never happen" 1): purchase records full of planted personal data go through
//! the whole cluster shape, and a scanner then looks for every planted value, in its normalized forms too, in
//! everything the pipeline wrote or said.
//!
//! Planted: a name, an e-mail address, two payment cards (Luhn-valid), two phone numbers, a street address, an IPv4
//! and an IPv6 address, a customer id. All of them sit in keys the agent's mapping does not name (dropped unread);
//! the e-mail, the cards, the phones and the IPs also sit inside the kept free text (item names, categories,
//! country), where the scrubber must redact them. Names and street addresses inside kept free text are not
//! planted: no detector recognises them (a product called "Jane Doe Mug" is not personal data), so keeping them out
//! of item names is the shop's mapping, not the scrubber's job.
//!
//! Path: JSON and log4j `key=value` log files and the agent's own `POST /v1/purchases` → `topsellers agent` (with the
//! pseudonymous customer key on) → Kafka →
//! two `topsellers aggregate` groups → results in SQLite and in Redis → a `topsellers api` on each; the JSON file
//! also through `topsellers archive` into Parquet. Bad lines and late events are among them, so the agent's dead
//! letters and the dead-letter topic have content. Scanned: both topics (read back with `kcat`), the SQLite files
//! (bytes and every row), the Redis keys of the run (every value), every API response (top lists of every category
//! and window, categories, page, /metrics, /readyz, /healthz), every process's stdout and stderr (at debug level), the
//! agent's state directory and dead letters, the Parquet files (bytes and every text cell). The scanner proves itself
//! first: it finds every planted value in the raw input and in a copy with the values normalized.

mod common;

use common::kafka::{kafka_from_env, unique, Reaper};
use common::stores::{service_from_env, top_path, StoreChoice};
use common::{bin, free_port, http, terminate};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use topsellers_agent::CustomerKeyer;

const NAME: &str = "Zelda Plantedname";
const EMAIL: &str = "Zelda.Planted@Example.org";
const PHONE_UK: &str = "+44 20 7946 0958";
const PHONE_US: &str = "(555) 014-7731";
const STREET: &str = "221B Plantedstreet Road, Springfield";
const IP4: &str = "203.0.113.77";
const IP6: &str = "2001:db8:77:1::9a";
const CUSTOMER_ID: &str = "CUST-PLANTED-80417";
const SECRET: &str = "pii-audit-secret-0123456789abcdef";
const TOKEN: &str = "pii-audit-token-0123456789";
/// Purchases posted to the agent's HTTP intake (canonical keys, personal data beside them).
const POSTED: usize = 18;

/// The unkeyed hash a careless pseudonymisation would send: lowercase hex of SHA-256.
fn plain_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `body` plus the Luhn check digit.
fn luhn_complete(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// `digits` in groups of four joined by `sep`.
fn grouped(digits: &str, sep: &str) -> String {
    digits
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

/// One planted value and what the scanner looks for: `needles` in the lower-cased bytes, `compact` in the
/// lower-cased bytes with separators (space, `-`, `.`, `(`, `)`, `+`, `_`, `/`) removed, so a card or phone number
/// leaked in any grouping is found.
struct Planted {
    label: &'static str,
    needles: Vec<String>,
    compact: Vec<String>,
}

struct Plants {
    card1: String,
    card2: String,
    all: Vec<Planted>,
}

impl Plants {
    fn new() -> Plants {
        let card1 = luhn_complete("492951337401283");
        let card2 = luhn_complete("545762198830114");
        let sha = plain_sha256(CUSTOMER_ID);
        let lower = |s: &str| s.to_ascii_lowercase();
        let all = vec![
            Planted {
                label: "name",
                needles: vec!["plantedname".into()],
                compact: vec![],
            },
            Planted {
                label: "email",
                needles: vec![
                    lower(EMAIL),
                    lower(&EMAIL.replace('@', "%40")),
                    "zelda.planted".into(),
                ],
                compact: vec!["zeldaplanted@exampleorg".into()],
            },
            Planted {
                label: "card 1",
                needles: vec![],
                compact: vec![card1.clone()],
            },
            Planted {
                label: "card 2",
                needles: vec![],
                compact: vec![card2.clone()],
            },
            Planted {
                label: "phone (UK)",
                needles: vec![],
                compact: vec!["2079460958".into()],
            },
            Planted {
                label: "phone (US)",
                needles: vec![],
                compact: vec!["5550147731".into()],
            },
            Planted {
                label: "street address",
                needles: vec!["plantedstreet".into()],
                compact: vec![],
            },
            Planted {
                label: "IPv4",
                needles: vec![IP4.into()],
                compact: vec![],
            },
            Planted {
                label: "IPv6",
                needles: vec![IP6.into(), "2001:0db8:0077:0001".into()],
                compact: vec![],
            },
            Planted {
                label: "customer id",
                needles: vec![lower(CUSTOMER_ID)],
                compact: vec!["custplanted80417".into()],
            },
            Planted {
                label: "customer id (plain SHA-256)",
                needles: vec![sha[..16].to_string()],
                compact: vec![],
            },
        ];
        Plants { card1, card2, all }
    }

    /// The labels of the planted values found in `bytes`.
    fn scan(&self, bytes: &[u8]) -> BTreeSet<&'static str> {
        let lower = bytes.to_ascii_lowercase();
        let compact: Vec<u8> = lower
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+' | b'_' | b'/'))
            .collect();
        let has = |hay: &[u8], needle: &str| memchr::memmem::find(hay, needle.as_bytes()).is_some();
        self.all
            .iter()
            .filter(|p| {
                p.needles.iter().any(|n| has(&lower, n))
                    || p.compact.iter().any(|n| has(&compact, n))
            })
            .map(|p| p.label)
            .collect()
    }

    fn labels(&self) -> BTreeSet<&'static str> {
        self.all.iter().map(|p| p.label).collect()
    }
}

/// Personal data inside kept free text, one variant per line (the scrubber must redact each); index 0 is a plain
/// product name.
fn kept_text_variants(p: &Plants) -> Vec<String> {
    vec![
        "Plain mug".into(),
        format!("Mug for {EMAIL}"),
        format!("Mug paid with {}", grouped(&p.card1, " ")),
        format!("Mug {}", p.card2),
        format!("Mug, call {PHONE_UK}"),
        format!("Mug ({PHONE_US})"),
        format!("Mug from {IP4}"),
        format!("Mug via {IP6}"),
        format!("Mug {}", grouped(&p.card2, "-")),
    ]
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).unwrap().to_string()
}

struct Inputs {
    json: PathBuf,
    kv: PathBuf,
    /// Events the aggregators must count (the late ones and the bad lines are not).
    counted: u64,
    /// Events `topsellers archive` must write (it has no lateness: late ones are archived).
    archived: u64,
}

/// The purchase logs: JSON lines and log4j key=value lines, each full of planted personal data, some bad and some
/// late.
fn write_inputs(dir: &Path, p: &Plants) -> Inputs {
    std::fs::create_dir_all(dir).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let base = now - 20 * 60;
    let variants = kept_text_variants(p);
    let categories = [
        "kitchen/mugs".to_string(),
        format!("gifts/for {EMAIL}"),
        format!("gifts/call {PHONE_UK}"),
        format!("gifts/from {IP4}"),
    ];
    let json_line = |i: usize, ts: i64, name: &str| {
        serde_json::json!({
            "ts": rfc3339(ts),
            "sku": format!("SKU-{}", i % 12),
            "qty": 1 + i % 3,
            "price": "9.99",
            "product": {"name": name, "category": categories[i % categories.len()]},
            "customer_id": CUSTOMER_ID,
            "customer": {"name": NAME, "email": EMAIL, "phone": PHONE_US, "ip": IP4, "ip6": IP6},
            "shipping": {"country": if i.is_multiple_of(5) { format!("GB, tel {PHONE_UK}") } else { "United Kingdom".into() },
                         "street": STREET, "recipient": NAME},
            "payment": {"card": grouped(&p.card1, " "), "card_bare": p.card2},
            "note": format!("deliver to {STREET}, ring {PHONE_UK}, {EMAIL}"),
        })
        .to_string()
    };
    let mut json = Vec::new();
    let good_json = 54;
    for i in 0..good_json {
        json.push(json_line(i, base + i as i64, &variants[i % variants.len()]));
    }
    // Bad lines: an e-mail as the item id (refused; its dead letter must not repeat it), a line cut short, a
    // quantity that is no number (with personal data beside it).
    json.push(
        serde_json::json!({"ts": rfc3339(base), "sku": EMAIL, "qty": 1, "price": "1.00", "customer_id": CUSTOMER_ID})
            .to_string(),
    );
    json.push(format!(
        r#"{{"ts":"{}","sku":"SKU-1","customer":{{"name":"{NAME}","email":"{EMAIL}","card":"{}""#,
        rfc3339(base),
        p.card1
    ));
    json.push(
        serde_json::json!({"ts": rfc3339(base), "sku": "SKU-2", "qty": "lots", "price": "1.00",
                           "product": {"name": format!("for {EMAIL}")}, "customer": {"name": NAME}})
        .to_string(),
    );
    // Late: three days old, after the rest (so the aggregators' watermark is past them): dead-letter topic.
    let late = 3;
    for i in 0..late {
        json.push(json_line(i + 1, now - 3 * 86_400, &variants[1 + i]));
    }
    let json_path = dir.join("purchases.jsonl");
    std::fs::write(&json_path, json.join("\n") + "\n").unwrap();

    let mut kv = Vec::new();
    let good_kv = 36;
    for i in 0..good_kv {
        let name = variants[i % variants.len()].replace('"', "\\\"");
        kv.push(format!(
            "2026-12-04 16:00:{:02},123 INFO [http-7] PurchaseLog - sale customer_id={CUSTOMER_ID} customer=\"{NAME}\" \
             email={EMAIL} phone=\"{PHONE_UK}\" ip={IP4} address=\"{STREET}\" card=\"{}\" sku=K{} name=\"{name}\" \
             cat=\"{}\" qty={} price=4.50 ts={}",
            i % 60,
            grouped(&p.card1, "-"),
            i % 8,
            categories[i % categories.len()],
            1 + i % 2,
            rfc3339(base + 100 + i as i64)
        ));
    }
    kv.push(format!(
        "2026-12-04 16:01:00,000 WARN [http-9] PurchaseLog - sale customer=\"{NAME}\" email={EMAIL} sku=K1 qty=lots price=1.00 ts={}",
        rfc3339(base)
    ));
    let kv_path = dir.join("app.log");
    std::fs::write(&kv_path, kv.join("\n") + "\n").unwrap();
    Inputs {
        json: json_path,
        kv: kv_path,
        counted: (good_json + good_kv) as u64,
        archived: (good_json + late) as u64,
    }
}

/// The shared part of both configs: engine, Kafka, the agent (files, mapping, customer key), the archive's input.
fn base_config(
    work: &Path,
    bootstrap: &str,
    topic: &str,
    inputs: &Inputs,
    intake_port: u16,
) -> String {
    format!(
        r#"
[engine]
bucket_secs = 60
windows = ["1h", "24h", "all"]
allowed_lateness_secs = 3600
[kafka]
bootstrap_servers = "{bootstrap}"
topic = "{topic}"
dead_letter_topic = "{topic}.dead-letters"
partitions = 3
[agent]
state_dir = "{work}/agent-state"
poll_interval_ms = 20
batch_max_events = 25
[agent.downstream]
type = "kafka"
[agent.http]
listen = "127.0.0.1:{intake_port}"
auth_token = "{TOKEN}"
[agent.customer_key]
field = "customer_id"
secret_file = "{work}/secret/customer-key"
[[agent.files]]
path = "{json}"
format = "json"
[agent.files.fields]
item_id = "sku"
item_name = "product.name"
category = "product.category"
quantity = "qty"
unit_price = "price"
time = "ts"
country = "shipping.country"
[[agent.files]]
path = "{kv}"
format = "log4j_kv"
[agent.files.fields]
item_id = "sku"
item_name = "name"
category = "cat"
quantity = "qty"
unit_price = "price"
time = "ts"
[input]
format = "jsonl"
[input.fields]
item_id = "sku"
item_name = "product.name"
category = "product.category"
quantity = "qty"
unit_price = "price"
time = "ts"
country = "shipping.country"
[archive]
dir = "{work}/archive"
"#,
        work = work.display(),
        json = inputs.json.display(),
        kv = inputs.kv.display(),
    )
}

/// The body posted to the agent's intake: canonical purchases with the planted data in keys no event has and in
/// the item names.
fn posted_body(p: &Plants) -> String {
    let variants = kept_text_variants(p);
    let now = jiff::Timestamp::now().as_second();
    (0..POSTED)
        .map(|i| {
            serde_json::json!({
                "time": rfc3339(now - 600 + i as i64),
                "item_id": format!("H-{}", i % 4),
                "item_name": variants[i % variants.len()],
                "category": format!("gifts/for {EMAIL}"),
                "quantity": 1,
                "unit_price": "3.00",
                "currency": "USD",
                "customer_id": CUSTOMER_ID,
                "customer": {"name": NAME, "email": EMAIL, "phone": PHONE_UK, "ip": IP4, "street": STREET},
                "card": grouped(&p.card1, " "),
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Posts `body` to the agent's intake until it answers 200 (it may still be starting).
fn post_to_agent(port: u16, body: &str, work: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let auth = format!("Bearer {TOKEN}");
    loop {
        match http(
            port,
            "POST",
            "/v1/purchases",
            &[("Authorization", auth.as_str())],
            body.as_bytes(),
        ) {
            Ok(r) if r.status == 200 => return,
            Ok(r) if r.status != 503 => {
                panic!("the agent's intake answered {}: {}", r.status, r.body)
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the agent's intake never took the body: {}",
            logs_of(work, "agent")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One results store of the run: its config file and the processes reading and serving it.
struct Store {
    name: &'static str,
    config: PathBuf,
    choice: StoreChoice,
}

impl Store {
    fn new(work: &Path, name: &'static str, base: &str, topic: &str, choice: StoreChoice) -> Store {
        let dir = work.join(format!("store-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = work.join(format!("{name}.toml"));
        let text = base.replace(
            "[agent]\n",
            &format!(
                "group_id = \"{topic}-{name}\"\n[cluster]\nresults_store = \"{}\"\nresults_interval_ms = 100\n\
                 checkpoint_interval_secs = 1\nrefresh_interval_ms = 100\n{}\n[agent]\n",
                choice.results_store(&dir),
                choice.section()
            ),
        );
        std::fs::write(&config, text).unwrap();
        Store {
            name,
            config,
            choice,
        }
    }

    fn command(&self, work: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(work.join(format!("data-{}", self.name)));
        c
    }
}

/// Starts `command` with stdout and stderr in `<work>/logs/<name>.out|err`, logging at debug level: the more a
/// process says, the more the audit sees.
fn spawn_logged(mut command: Command, work: &Path, name: &str) -> Child {
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    command
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(logs.join(format!("{name}.out"))).unwrap())
        .stderr(std::fs::File::create(logs.join(format!("{name}.err"))).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

/// Runs `command` to its end with its output in `<work>/logs/<name>.out|err`; panics when it fails.
fn run_logged(command: Command, work: &Path, name: &str) {
    let mut child = spawn_logged(command, work, name);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{name} failed: {}", logs_of(work, name));
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn logs_of(work: &Path, name: &str) -> String {
    let read = |ext: &str| {
        std::fs::read_to_string(work.join("logs").join(format!("{name}.{ext}"))).unwrap_or_default()
    };
    let err = read("err");
    let tail = &err[err.len().saturating_sub(4000)..];
    format!("stdout:\n{}\nstderr (end):\n{tail}", read("out"))
}

fn events_counted(store: &Store, work: &Path) -> Option<u64> {
    let out = store
        .command(work, &["results", "--cluster", "--n", "1"])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["events_counted"].as_u64()
}

/// Every response of the API server on `port` that could carry data: all categories × windows, the category list,
/// the page, metrics, readiness, liveness. Written to `<work>/dumps/api-<name>.txt` for the scan.
fn dump_api(port: u16, work: &Path, name: &str) -> String {
    let get = |path: &str| {
        let r = http(port, "GET", path, &[], b"").unwrap_or_else(|e| panic!("GET {path}: {e}"));
        format!("GET {path}\n{}\n\n{}\n\n", r.headers, r.body)
    };
    let mut out = String::new();
    let categories = http(port, "GET", "/v1/categories", &[], b"").unwrap();
    let listed: Value = serde_json::from_str(&categories.body).unwrap();
    let mut paths = vec![String::new()];
    for c in listed["categories"].as_array().unwrap() {
        paths.push(c["path"].as_str().unwrap().to_string());
    }
    for category in &paths {
        for window in ["1h", "24h", "all"] {
            out.push_str(&get(&top_path(category, window, 100)));
        }
    }
    for path in [
        "/v1/top",
        "/v1/categories",
        "/",
        "/metrics",
        "/readyz",
        "/healthz",
    ] {
        out.push_str(&get(path));
    }
    std::fs::create_dir_all(work.join("dumps")).unwrap();
    std::fs::write(work.join("dumps").join(format!("api-{name}.txt")), &out).unwrap();
    out
}

/// `kcat` reading a whole topic: key, headers and value of every message.
fn dump_topic(bootstrap: &str, topic: &str) -> String {
    let kcat = std::env::var("TOPSELLERS_TEST_KCAT").unwrap_or_else(|_| "kcat".into());
    let out = Command::new(&kcat)
        .args([
            "-b",
            bootstrap,
            "-C",
            "-e",
            "-q",
            "-o",
            "beginning",
            "-f",
            "%p@%o key=%k headers=%h value=%s\n",
            "-t",
        ])
        .arg(topic)
        .output()
        .unwrap_or_else(|e| {
            panic!("{kcat} must be installed (scripts/services.sh install kcat): {e}")
        });
    assert!(
        out.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every value under the run's key prefix, whatever its type.
fn dump_redis(address: &str, key_prefix: &str) -> Vec<u8> {
    let client = redis::Client::open(format!("redis://{address}")).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("*{key_prefix}*"))
        .query(&mut con)
        .unwrap();
    assert!(!keys.is_empty(), "no Redis keys under {key_prefix}");
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut con).unwrap();
        let command = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).clone(),
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .clone(),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
            "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
            other => panic!("Redis key of type {other}: teach the audit to read it"),
        };
        let value: redis::Value = command.query(&mut con).unwrap();
        out.extend_from_slice(&key);
        out.push(b'\n');
        flatten_redis(&value, &mut out);
        out.push(b'\n');
    }
    out
}

/// Removes the run's keys: the server is shared with other tests and runs.
fn drop_redis_keys(address: &str, key_prefix: &str) {
    let client = redis::Client::open(format!("redis://{address}")).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("*{key_prefix}*"))
        .query(&mut con)
        .unwrap();
    for key in keys {
        let _: () = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
    }
}

fn flatten_redis(v: &redis::Value, out: &mut Vec<u8>) {
    match v {
        redis::Value::BulkString(b) => out.extend_from_slice(b),
        redis::Value::SimpleString(s) => out.extend_from_slice(s.as_bytes()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            for i in items {
                flatten_redis(i, out);
                out.push(b'\n');
            }
        }
        redis::Value::Map(pairs) => {
            for (k, v) in pairs {
                flatten_redis(k, out);
                out.push(b'=');
                flatten_redis(v, out);
                out.push(b'\n');
            }
        }
        other => out.extend_from_slice(format!("{other:?}").as_bytes()),
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What a file holds as text: its bytes, plus every row of a SQLite database (a value spilling over pages is split
/// in the file) and every text cell of a Parquet file (compressed in the file).
fn readable_content(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    if bytes.starts_with(b"SQLite format 3\0") {
        bytes.extend(sqlite_rows(path));
    }
    if path.extension().is_some_and(|e| e == "parquet") {
        bytes.extend(parquet_text(path));
    }
    bytes
}

fn sqlite_rows(path: &Path) -> Vec<u8> {
    let con =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = con
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = con.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        out.extend_from_slice(b)
                    }
                    other => out.extend_from_slice(format!("{other:?}").as_bytes()),
                }
                out.push(b'\t');
            }
            out.push(b'\n');
        }
    }
    out
}

fn parquet_text(path: &Path) -> Vec<u8> {
    use arrow_array::{Array, StringArray};
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        for column in batch.columns() {
            if let Some(strings) = column.as_any().downcast_ref::<StringArray>() {
                for i in 0..strings.len() {
                    if !strings.is_null(i) {
                        out.extend_from_slice(strings.value(i).as_bytes());
                        out.push(b'\n');
                    }
                }
            }
        }
    }
    out
}

#[test]
fn planted_personal_data_reaches_no_sink() {
    let Some(bootstrap) = kafka_from_env("TOPSELLERS_TEST_KAFKA") else {
        return;
    };
    // Redis is cheap to add beside SQLite; optional outside CI (service_from_env fails the test under CI).
    let redis_address = service_from_env("TOPSELLERS_TEST_REDIS");
    let started = Instant::now();
    let plants = Plants::new();
    let root = tempfile::tempdir().unwrap();
    // `input` holds the raw records (the only place they may be); `work` is everything the pipeline writes.
    let input_dir = root.path().join("input");
    let work = root.path().join("work");
    std::fs::create_dir_all(work.join("secret")).unwrap();
    std::fs::write(work.join("secret/customer-key"), format!("{SECRET}\n")).unwrap();
    let inputs = write_inputs(&input_dir, &plants);

    // The scanner proves itself: every planted value is found in the raw input, and in a copy with each value in
    // a normalized form (upper case, cards and phones without separators, the plain hash of the customer id).
    let raw = [
        std::fs::read(&inputs.json).unwrap(),
        std::fs::read(&inputs.kv).unwrap(),
    ]
    .concat();
    let mut expected_in_raw = plants.labels();
    expected_in_raw.remove("customer id (plain SHA-256)");
    assert_eq!(
        plants.scan(&raw),
        expected_in_raw,
        "the scanner misses planted values in the raw input"
    );
    let normalized = format!(
        "{} {} {} {} 442079460958 5550147731 {} {} {} {} {}",
        NAME.to_uppercase(),
        EMAIL.to_lowercase(),
        plants.card1,
        grouped(&plants.card2, "."),
        STREET.to_uppercase(),
        IP4,
        IP6.to_uppercase(),
        CUSTOMER_ID.to_lowercase(),
        plain_sha256(CUSTOMER_ID),
    );
    assert_eq!(
        plants.scan(normalized.as_bytes()),
        plants.labels(),
        "the scanner misses normalized forms"
    );

    let topic = unique("pii-audit");
    let intake_port = free_port();
    let base = base_config(&work, &bootstrap, &topic, &inputs, intake_port);
    let mut stores = vec![Store::new(
        &work,
        "sqlite",
        &base,
        &topic,
        StoreChoice::Sqlite,
    )];
    if let Some(address) = &redis_address {
        let first = address.split(',').next().unwrap().trim().to_string();
        stores.push(Store::new(
            &work,
            "redis",
            &base,
            &topic,
            StoreChoice::redis(&first, false, "pii_audit"),
        ));
    }

    let mut procs = Reaper::default();
    for s in &stores {
        procs.0.push(spawn_logged(
            s.command(&work, &["aggregate"]),
            &work,
            &format!("aggregate-{}", s.name),
        ));
    }
    procs.0.push(spawn_logged(
        stores[0].command(&work, &["agent"]),
        &work,
        "agent",
    ));
    post_to_agent(intake_port, &posted_body(&plants), &work);
    let counted = inputs.counted + POSTED as u64;

    // Every store counts every good event (and nothing else).
    for s in &stores {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let now_counted = events_counted(s, &work);
            if now_counted == Some(counted) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the {} store counts {now_counted:?} events, not {counted}; agent: {}\naggregator: {}",
                s.name,
                logs_of(&work, "agent"),
                logs_of(&work, &format!("aggregate-{}", s.name))
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    // An API server on each store; every response is kept for the scan.
    let mut api_bodies = String::new();
    for s in &stores {
        let port = free_port();
        let mut c = s.command(&work, &["api"]);
        c.args(["--listen", &format!("127.0.0.1:{port}")]);
        procs
            .0
            .push(spawn_logged(c, &work, &format!("api-{}", s.name)));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http(port, "GET", "/v1/top?window=all&n=100", &[], b"")
            .is_ok_and(|r| r.body.contains("SKU-"))
        {
            assert!(
                Instant::now() < deadline,
                "api on {} never served the results: {}",
                s.name,
                logs_of(&work, &format!("api-{}", s.name))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        api_bodies.push_str(&dump_api(port, &work, s.name));
    }
    // The purchases with personal data in their kept text were counted, with it redacted: the audit is not
    // passing because they were dropped.
    for marker in ["[email]", "[card]", "[phone]", "[ip]"] {
        assert!(
            api_bodies.contains(marker),
            "no {marker} in the API answers: the planted records were not served"
        );
    }

    // The archive of the JSON log (the log4j format is not an archive input).
    let mut archive = stores[0].command(&work, &["archive"]);
    archive.arg(&inputs.json);
    run_logged(archive, &work, "archive");

    // Stop everything gracefully, so final log lines and checkpoints are written before the scan.
    for child in procs.0.iter_mut().rev() {
        terminate(child);
    }
    let state = work.join("agent-state");
    let letters = std::fs::read_to_string(state.join("dead_letters.jsonl")).unwrap_or_default();
    assert_eq!(
        letters.lines().count(),
        4,
        "the agent's dead letters: {letters}"
    );

    // Kafka: the purchases topic and the dead-letter topic.
    let dumps = work.join("dumps");
    std::fs::create_dir_all(&dumps).unwrap();
    let purchases = dump_topic(&bootstrap, &topic);
    let dead_letters = dump_topic(&bootstrap, &format!("{topic}.dead-letters"));
    assert!(purchases.lines().count() as u64 >= counted, "{purchases}");
    assert!(
        dead_letters.contains("late"),
        "the late events are not on the dead-letter topic: {dead_letters}"
    );
    std::fs::write(dumps.join("topic.txt"), &purchases).unwrap();
    std::fs::write(dumps.join("dead-letter-topic.txt"), &dead_letters).unwrap();
    // The customer key travels, keyed with the secret: the same customer gives the same key.
    let key = CustomerKeyer::new(SECRET.as_bytes())
        .unwrap()
        .key(CUSTOMER_ID)
        .unwrap();
    let keyed = format!("\"customer_key\":\"{}\"", key.as_str());
    for message in purchases.lines().filter(|l| l.contains("\"item_id\"")) {
        assert!(
            message.contains(&keyed),
            "a purchase without the customer key: {message}"
        );
    }

    if let Some(StoreChoice::Redis {
        addresses,
        key_prefix,
        ..
    }) = stores.get(1).map(|s| s.choice.clone())
    {
        std::fs::write(dumps.join("redis.bin"), dump_redis(&addresses, &key_prefix)).unwrap();
        drop_redis_keys(&addresses, &key_prefix);
    }

    // The scan: every file the run wrote (logs, state, dead letters, stores, archive, dumps of topics, Redis and
    // API answers).
    let mut leaks = Vec::new();
    let mut scanned = 0;
    for f in files_under(&work) {
        let found = plants.scan(&readable_content(&f));
        scanned += 1;
        if !found.is_empty() {
            leaks.push(format!(
                "{}: {found:?}",
                f.strip_prefix(&work).unwrap().display()
            ));
        }
    }
    let parquet_rows = files_under(&work.join("archive"))
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
        .map(|f| parquet_text(f).iter().filter(|&&b| b == b'\n').count())
        .sum::<usize>();
    assert!(
        parquet_rows as u64 >= inputs.archived,
        "the archive holds too little: {parquet_rows} text cells"
    );
    eprintln!(
        "pii audit: {scanned} files scanned, {} stores, {} s",
        stores.len(),
        started.elapsed().as_secs()
    );
    assert!(
        leaks.is_empty(),
        "planted personal data found:\n{}",
        leaks.join("\n")
    );
}
