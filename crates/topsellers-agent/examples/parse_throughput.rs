//! Lines per CPU-second through the agent's parse and scrub ([`LineParser`]) and the canonical JSON a node or
//! Kafka receives (`encode_canonical_keyed`), on one thread, without I/O: the file is read into memory first.
//!
//! ```text
//! cargo run --release -p topsellers-agent --example parse_throughput -- FILE json|log4j_kv [--customer-key] [--repeat N]
//! ```
//!
//! The mapping is the one `bench/agent.sh` generates lines for: `sku`, `product.name`, `product.category`, `qty`,
//! `price`, `ts`, `shipping.country` (JSON) or `sku`, `name`, `cat`, `qty`, `price`, `ts` (`key=value`), and
//! `customer_id` for the customer key. CPU time is the thread's own (`/proc/thread-self/stat`), so other load on
//! the machine does not count.

use std::time::Instant;
use topsellers_agent::{
    encode_canonical_keyed, CustomerKeyer, FileSource, LineFormat, LineParser, RawLine,
};
use topsellers_ingest::{FieldMapping, Limits, Parsed};

/// User + system CPU seconds of the calling thread.
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(format)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: parse_throughput FILE json|log4j_kv [--customer-key] [--repeat N]");
        std::process::exit(2);
    };
    let keyed = args.iter().any(|a| a == "--customer-key");
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let (format, fields) = match format.as_str() {
        "json" => (
            LineFormat::Json,
            FieldMapping {
                item_id: "sku".into(),
                item_name: Some("product.name".into()),
                category: Some("product.category".into()),
                quantity: "qty".into(),
                unit_price: "price".into(),
                time: "ts".into(),
                event_id: None,
                currency: None,
                country: Some("shipping.country".into()),
                original_time: None,
            },
        ),
        "log4j_kv" => (
            LineFormat::Log4jKv,
            FieldMapping {
                item_id: "sku".into(),
                item_name: Some("name".into()),
                category: Some("cat".into()),
                quantity: "qty".into(),
                unit_price: "price".into(),
                time: "ts".into(),
                event_id: None,
                currency: None,
                country: None,
                original_time: None,
            },
        ),
        other => panic!("unknown format {other}"),
    };
    let source = FileSource {
        path: path.clone(),
        format,
        fields,
        time_format: "rfc3339".into(),
        time_zone: "UTC".into(),
        currency: None,
    };
    let limits = Limits::default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut parser = LineParser::new(&source, &limits, now_ms).expect("mapping");
    if keyed {
        let keyer = CustomerKeyer::new(b"bench-secret-0123456789abcdef").unwrap();
        parser = parser.with_customer_key("customer_id", keyer);
    }
    let text = std::fs::read(path).expect("reading the file");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();

    let (mut events, mut rejected, mut bytes_out) = (0u64, 0u64, 0u64);
    let mut out = Vec::with_capacity(1 << 20);
    let cpu0 = thread_cpu_secs();
    let wall0 = Instant::now();
    for _ in 0..repeat {
        let mut offset = 0u64;
        for line in &lines {
            match parser.parse_keyed(&RawLine::new(line, offset)) {
                (Parsed::Event(e), key) => {
                    events += 1;
                    encode_canonical_keyed(&e, key.as_ref(), limits.price_decimals, &mut out);
                    if out.len() > (1 << 20) {
                        bytes_out += out.len() as u64;
                        out.clear();
                    }
                }
                _ => rejected += 1,
            }
            offset += line.len() as u64 + 1;
        }
    }
    bytes_out += out.len() as u64;
    let cpu = thread_cpu_secs() - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    let total = (lines.len() * repeat) as f64;
    println!(
        "{format:?}{}: {} lines ({:.0} MB) in {wall:.2} s wall, {cpu:.2} s CPU: {:.0} lines/s per core ({:.0} MB/s), {events} events, {rejected} rejected, {:.0} MB canonical JSON out, {} redactions",
        if keyed { " + customer key" } else { "" },
        total,
        (text.len() * repeat) as f64 / 1e6,
        total / cpu.max(0.01),
        (text.len() * repeat) as f64 / 1e6 / cpu.max(0.01),
        bytes_out as f64 / 1e6,
        parser.redactions().total()
    );
}
