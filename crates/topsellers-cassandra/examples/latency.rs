//! Latency of each partition store call against a running Cassandra, in a keyspace of its own that is
//! dropped at the end.
//!
//! ```sh
//! scripts/services.sh start cassandra
//! cargo run --release -p topsellers-cassandra --example latency [-- host:port[,host:port...]]
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use topsellers_cassandra::{CassandraPartitionStore, CassandraSettings};
use topsellers_model::{RankedItem, Snapshot, TopList, WindowBounds, WindowSpec};
use topsellers_store::{PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding};

const PARTITIONS: u32 = 12;

fn main() {
    let nodes: Vec<String> = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("TOPSELLERS_TEST_CASSANDRA").ok())
        .unwrap_or_else(|| "127.0.0.1:9042".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let settings = CassandraSettings {
        contact_points: nodes.clone(),
        keyspace: format!("topsellers_latency_{}", std::process::id()),
        ..CassandraSettings::default()
    };
    let started = Instant::now();
    let store = CassandraPartitionStore::open(&settings, "latency").expect("open");
    println!(
        "open (connect, create keyspace and tables): {:.0} ms",
        ms(started.elapsed())
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| measure(&store)));
    drop(store);
    drop_keyspace(&nodes, &settings.keyspace);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn measure(store: &CassandraPartitionStore) {
    store
        .bind(&StoreBinding {
            partitions: PARTITIONS,
            settings: "latency".into(),
        })
        .unwrap();
    println!("on {}", store.describe());
    println!(
        "{:<44} {:>6} {:>9} {:>9} {:>9}",
        "call", "n", "p50 ms", "p90 ms", "max ms"
    );

    let mut epochs = vec![0; PARTITIONS as usize];
    report(
        "claim (no checkpoint)",
        time(3 * PARTITIONS as usize, |i| {
            let p = i as u32 % PARTITIONS;
            epochs[p as usize] = store.claim(p).unwrap().epoch;
        }),
    );

    let small = results(1, 100, 50);
    let bytes = topsellers_store::partitions::encode_snapshot(&small.snapshot).len();
    let mut version = 0;
    report(
        &format!("save_results ({} KB snapshot)", bytes / 1024),
        time(100, |i| {
            let p = i as u32 % PARTITIONS;
            version += 1;
            store
                .save_results(
                    p,
                    epochs[p as usize],
                    &results(version, 100 + version as i64, 50),
                )
                .unwrap();
        }),
    );
    report(
        &format!("result_versions ({PARTITIONS} partitions)"),
        time(100, |_| {
            assert_eq!(store.result_versions().unwrap().len(), PARTITIONS as usize);
        }),
    );
    report(
        &format!("load_results ({} KB snapshot)", bytes / 1024),
        time(50, |i| {
            store.load_results(i as u32 % PARTITIONS).unwrap().unwrap();
        }),
    );

    let state = noise(20 * 1024 * 1024);
    let mut offset = 1_000_000;
    report(
        "save_checkpoint (20 MiB state + results)",
        time(5, |_| {
            version += 1;
            offset += 1;
            let checkpoint = PartitionCheckpoint {
                next_offset: offset,
                state: state.clone(),
            };
            store
                .save_checkpoint(0, epochs[0], &checkpoint, &results(version, offset, 50))
                .unwrap();
        }),
    );
    report(
        "claim (20 MiB checkpoint)",
        time(5, |_| {
            let claim = store.claim(0).unwrap();
            assert_eq!(claim.checkpoint.map(|c| c.state.len()), Some(state.len()));
            epochs[0] = claim.epoch;
        }),
    );
}

fn time(n: usize, mut call: impl FnMut(usize)) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let started = Instant::now();
            call(i);
            started.elapsed()
        })
        .collect()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    println!(
        "{name:<44} {:>6} {:>9.1} {:>9.1} {:>9.1}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn results(version: u64, next_offset: i64, categories: usize) -> PartitionResults {
    let windows = vec![WindowSpec::parse("1h").unwrap(), WindowSpec::all()];
    let lists = (0..categories)
        .map(|c| {
            let category = format!("category-{c}");
            let lists = windows
                .iter()
                .map(|w| TopList {
                    category: category.clone(),
                    window: w.name.clone(),
                    bounds: WindowBounds {
                        start_ms: None,
                        end_ms: 1_700_000_000_000,
                    },
                    items: (1..=10u32)
                        .map(|rank| RankedItem {
                            rank,
                            item_id: format!("SKU-{c:04}-{rank:02}"),
                            item_name: Some(format!("Item {c} {rank}")),
                            units: 1000 - i64::from(rank),
                            revenue_minor: 1999 * i64::from(rank),
                        })
                        .collect(),
                })
                .collect();
            (category, lists)
        })
        .collect::<BTreeMap<_, _>>();
    PartitionResults {
        next_offset,
        snapshot: Snapshot {
            version,
            as_of_ms: 1_700_000_000_000,
            watermark_ms: 1_700_000_000_000,
            computed_at_ms: 1_700_000_000_000,
            currency: "USD".into(),
            top_k: 10,
            windows,
            lists,
            events_counted: next_offset as u64,
        },
    }
}

fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn drop_keyspace(nodes: &[String], keyspace: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = scylla::client::session_builder::SessionBuilder::new()
            .known_nodes(nodes)
            .build()
            .await
            .expect("connect to drop the keyspace");
        session
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
            .await
            .expect("drop the keyspace");
    });
}
