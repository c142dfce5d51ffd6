//! `topsellers demo`: the embedded pipeline on generated traffic, served on the web page.

use crate::config::Config;
use crate::node::{wall_clock_ms, NodeCore, Submission};
use crate::runner::{NodeHandle, SubmitFailure};
use crate::serve::{serve_until, shutdown_signal, RunningNode};
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;
use topsellers_gen::Generator;
use topsellers_ingest::Parsed;
use topsellers_server::{Metrics, Results};

pub struct DemoOptions {
    /// Minutes of history generated at start-up (only into an empty data directory), so the page is not empty.
    pub backfill_minutes: u64,
    /// Stop by itself after this long (for scripted runs); run until Ctrl-C when `None`.
    pub duration: Option<Duration>,
}

pub async fn run(config: Config, options: DemoOptions) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let results = Results::with_currency_decimals(config.limits.price_decimals);
    let mut core = NodeCore::open(&config, metrics.clone())?;
    let mut generator = Generator::new(config.demo.clone());
    if core.engine().stats().events_counted == 0 && options.backfill_minutes > 0 {
        backfill(
            &mut core,
            &mut generator,
            options.backfill_minutes,
            config.node.max_batch_records,
        )?;
    }
    let node = RunningNode::start(&config, core, results, metrics);
    let handle = node.handle();
    let traffic = tokio::spawn(generate_traffic(handle, generator));
    let duration = options.duration;
    let stop = async move {
        match duration {
            Some(d) => tokio::select! {
                _ = shutdown_signal() => {},
                _ = tokio::time::sleep(d) => {},
            },
            None => shutdown_signal().await,
        }
    };
    let served = serve_until(&config, node, stop).await;
    traffic.abort();
    served
}

fn backfill(
    core: &mut NodeCore,
    generator: &mut Generator,
    minutes: u64,
    batch: usize,
) -> Result<()> {
    let end = wall_clock_ms();
    let start = end - (minutes as i64) * 60_000;
    let step_ms = 1000u64;
    let mut items = Vec::with_capacity(batch);
    let mut t = start;
    let mut elapsed = 0u64;
    let mut total = 0u64;
    while t < end {
        let due = generator.events_due(elapsed, step_ms);
        for _ in 0..due {
            items.push(Parsed::Event(generator.next_event(t)));
        }
        if items.len() >= batch {
            total += items.len() as u64;
            core.ingest(Submission::new(std::mem::take(&mut items), "demo"), None)?;
        }
        t += step_ms as i64;
        elapsed += step_ms;
    }
    total += items.len() as u64;
    core.ingest(Submission::new(items, "demo"), None)?;
    eprintln!("topsellers: demo backfilled {total} events over the last {minutes} minutes");
    Ok(())
}

async fn generate_traffic(node: NodeHandle, mut generator: Generator) {
    let step = Duration::from_millis(100);
    let mut interval = tokio::time::interval(step);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut elapsed = 0u64;
    loop {
        interval.tick().await;
        let due = generator.events_due(elapsed, step.as_millis() as u64);
        elapsed += step.as_millis() as u64;
        if due == 0 {
            continue;
        }
        let now = wall_clock_ms();
        let items: Vec<Parsed> = (0..due)
            .map(|_| Parsed::Event(generator.next_event(now)))
            .collect();
        match node.submit(Submission::new(items, "demo")).await {
            Ok(_) => {}
            Err(SubmitFailure::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "demo traffic batch not accepted"),
        }
    }
}
