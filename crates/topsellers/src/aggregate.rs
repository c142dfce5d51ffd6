//! `topsellers aggregate`: a member of the aggregators' Kafka consumer group, writing each owned partition's
//! checkpoints and results to the results store of `[cluster]`.

use crate::config::Config;
use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use topsellers_kafka::aggregator::{self, AggregatorOptions, AggregatorStats};

pub fn run(config: &Config, stop: Arc<AtomicBool>) -> Result<()> {
    // A store that is down at start-up is waited for, as Kafka is: aggregators started together with
    // their store (or restarted while it restarts) come up by themselves.
    let Some(store) = crate::cluster::open_store_waiting(config, &stop)? else {
        return Ok(());
    };
    let options = AggregatorOptions {
        engine: config.engine.clone(),
        limits: config.limits.clone(),
        results_interval: Duration::from_millis(config.cluster.results_interval_ms),
        checkpoint_interval: Duration::from_secs(config.cluster.checkpoint_interval_secs),
        checkpoint_every_records: config.cluster.checkpoint_every_records,
    };
    eprintln!(
        "topsellers: aggregating topic {} at {} as a member of group {}; results to {}",
        config.kafka.topic,
        config.kafka.bootstrap_servers,
        config.kafka.group_id,
        store.describe()
    );
    let stats = Arc::new(AggregatorStats::default());
    let reporter = spawn_reporter(stats.clone(), stop.clone());
    let outcome = aggregator::run(&config.kafka, options, store, stats.clone(), stop.clone());
    stop.store(true, Ordering::SeqCst);
    let _ = reporter.join();
    eprintln!("topsellers: aggregator stopped; {}", line(&stats));
    outcome.context("the aggregator stopped")
}

/// One status line every 10 s: what a person watching the process wants to see moving.
fn spawn_reporter(
    stats: Arc<AggregatorStats>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut waited = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            waited += Duration::from_millis(200);
            if waited >= Duration::from_secs(10) {
                waited = Duration::ZERO;
                tracing::info!(target: "topsellers", "{}", line(&stats));
            }
        }
    })
}

fn line(s: &AggregatorStats) -> String {
    let g = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    format!(
        "partitions {} | lag {} | messages {} | accepted {} | duplicates {} | late {} | skipped {} | dead letters {} | \
         forwarded {} | checkpoints {} | results written {} | fenced {} | kafka errors {} | store errors {}",
        g(&s.partitions_owned),
        g(&s.consumer_lag),
        g(&s.messages),
        g(&s.events_accepted),
        g(&s.duplicates),
        g(&s.late),
        g(&s.skipped),
        g(&s.dead_letters),
        g(&s.forwarded),
        g(&s.checkpoints),
        g(&s.results_published),
        g(&s.fenced),
        g(&s.kafka_errors),
        g(&s.store_errors),
    )
}
