//! Latency of each partition store call on a real Redis and Redis Cluster, as the aggregators and API
//! servers make them.
//!
//! ```text
//! scripts/services.sh start redis && scripts/services.sh start redis-cluster
//! eval "$(scripts/services.sh env)"
//! cargo run --release -p topsellers-redis --example latency
//! ```
//!
//! Uses a fresh namespace per shape and deletes it at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use topsellers_model::{RankedItem, Snapshot, TopList, WindowBounds, WindowSpec};
use topsellers_redis::{RedisPartitionStore, RedisSettings};
use topsellers_store::partitions::encode_snapshot;
use topsellers_store::{PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding};

const PARTITIONS: u32 = 24;
const BIG_STATE: usize = 20 * 1024 * 1024;

fn main() {
    let mut ran = false;
    for (var, cluster) in [
        ("TOPSELLERS_TEST_REDIS", false),
        ("TOPSELLERS_TEST_REDIS_CLUSTER", true),
    ] {
        let Ok(addrs) = std::env::var(var) else {
            eprintln!("{var} is not set: skipping that shape");
            continue;
        };
        let urls: Vec<String> = addrs
            .split(',')
            .map(|a| format!("redis://{}", a.trim()))
            .collect();
        let settings = RedisSettings {
            urls,
            cluster,
            ..RedisSettings::default()
        };
        measure(&settings);
        ran = true;
    }
    if !ran {
        eprintln!("nothing measured: start Redis with scripts/services.sh and eval \"$(scripts/services.sh env)\"");
    }
}

fn measure(settings: &RedisSettings) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let namespace = format!("latency-{}-{nanos:x}", std::process::id());
    let store = RedisPartitionStore::open(settings, &namespace).unwrap();
    println!("\n{}", store.describe());
    store
        .bind(&StoreBinding {
            partitions: PARTITIONS,
            settings: "bucket_secs=60 windows=1h,24h,all top_k=10".into(),
        })
        .unwrap();

    let small = snapshot(1, 50);
    let big = snapshot(1, 2_000);
    println!(
        "snapshots: 50 categories {} bytes, 2000 categories {} bytes encoded",
        encode_snapshot(&small).len(),
        encode_snapshot(&big).len()
    );

    let mut epochs = vec![0; PARTITIONS as usize];
    let claims = time(200, |i| {
        let p = (i % PARTITIONS as usize) as u32;
        epochs[p as usize] = store.claim(p).unwrap().epoch;
    });
    report("claim (no checkpoint)", &claims);

    // Each call saves results one version further; the snapshots are built once, outside the timing.
    let mut version = 0u64;
    let mut small = PartitionResults {
        next_offset: 0,
        snapshot: small,
    };
    let mut big = PartitionResults {
        next_offset: 0,
        snapshot: big,
    };
    let mut forward = |r: &mut PartitionResults| {
        version += 1;
        r.snapshot.version = version;
        r.next_offset = version as i64;
    };
    let saves = time(500, |i| {
        let p = (i % PARTITIONS as usize) as u32;
        forward(&mut small);
        store.save_results(p, epochs[p as usize], &small).unwrap();
    });
    report("save_results, 50 categories", &saves);
    let saves = time(100, |i| {
        let p = (i % PARTITIONS as usize) as u32;
        forward(&mut big);
        store.save_results(p, epochs[p as usize], &big).unwrap();
    });
    report("save_results, 2000 categories", &saves);
    report(
        "result_versions, 24 partitions",
        &time(1_000, |_| {
            assert_eq!(store.result_versions().unwrap().len(), PARTITIONS as usize);
        }),
    );
    report(
        "load_results, 2000 categories",
        &time(100, |i| {
            let p = (i % PARTITIONS as usize) as u32;
            store.load_results(p).unwrap().unwrap();
        }),
    );

    let mut checkpoint = PartitionCheckpoint {
        next_offset: 0,
        state: noise(BIG_STATE),
    };
    let checkpoints = time(20, |_| {
        forward(&mut small);
        checkpoint.next_offset = small.next_offset;
        store
            .save_checkpoint(0, epochs[0], &checkpoint, &small)
            .unwrap();
    });
    report("save_checkpoint, 20 MB + 50 categories", &checkpoints);
    let claims = time(20, |_| {
        let claim = store.claim(0).unwrap();
        assert_eq!(claim.checkpoint.unwrap().state.len(), BIG_STATE);
        epochs[0] = claim.epoch;
    });
    report("claim with a 20 MB checkpoint", &claims);
    store.delete_namespace().unwrap();
}

fn time(n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect()
}

fn report(what: &str, samples: &[Duration]) {
    let mut s = samples.to_vec();
    s.sort();
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<42} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
        s.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

fn snapshot(version: u64, categories: usize) -> Snapshot {
    let windows = vec![
        WindowSpec::parse("1h").unwrap(),
        WindowSpec::parse("24h").unwrap(),
        WindowSpec::all(),
    ];
    let lists = (0..categories)
        .map(|c| {
            let category = format!("department-{}/category-{c}", c % 20);
            let lists = windows
                .iter()
                .map(|w| TopList {
                    category: category.clone(),
                    window: w.name.clone(),
                    bounds: WindowBounds {
                        start_ms: w.length_secs.map(|_| 1_700_000_000_000),
                        end_ms: 1_700_003_600_000,
                    },
                    items: (1..=10u32)
                        .map(|rank| RankedItem {
                            rank,
                            item_id: format!("SKU-{c:05}-{rank:02}"),
                            item_name: Some(format!("Item {c} {rank}")),
                            units: 10_000 - i64::from(rank),
                            revenue_minor: 1999 * i64::from(rank),
                        })
                        .collect(),
                })
                .collect();
            (category, lists)
        })
        .collect::<BTreeMap<_, _>>();
    Snapshot {
        version,
        as_of_ms: 1_700_003_600_000,
        watermark_ms: 1_700_003_300_000,
        computed_at_ms: 1_700_003_600_250,
        currency: "USD".into(),
        top_k: 10,
        windows,
        lists,
        events_counted: 1_000_000,
    }
}

/// Bytes no one can compress away (xorshift64*).
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
