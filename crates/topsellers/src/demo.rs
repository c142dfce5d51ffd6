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
use topsellers_model::PurchaseEvent;
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
    // Bound before the backfill, so the archive has the backfilled purchases too.
    let archive = core.bind_live_archive(&config)?;
    let mut generator = DemoTraffic::new(Generator::new(config.demo.clone()));
    if core.engine().stats().events_counted == 0 && options.backfill_minutes > 0 {
        backfill(
            &mut core,
            &mut generator,
            options.backfill_minutes,
            config.node.max_batch_records,
        )?;
    }
    let node = RunningNode::start(&config, core, archive, results, metrics)?;
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

/// The generator numbers its events from 1 for a given seed; a demo restarted on the same data directory would
/// replay those ids and see its new purchases dropped as duplicates. Each run gets its own id namespace (exact
/// duplicates the generator makes on purpose keep sharing an id).
struct DemoTraffic {
    generator: Generator,
    run_id: String,
}

impl DemoTraffic {
    fn new(generator: Generator) -> DemoTraffic {
        DemoTraffic {
            generator,
            run_id: format!("{:x}", wall_clock_ms()),
        }
    }

    fn events_due(&mut self, elapsed_ms: u64, step_ms: u64) -> usize {
        self.generator.events_due(elapsed_ms, step_ms)
    }

    fn next_event(&mut self, now_ms: i64) -> PurchaseEvent {
        let mut ev = self.generator.next_event(now_ms);
        if let Some(id) = &mut ev.event_id {
            *id = format!("{}-{id}", self.run_id);
        }
        ev
    }
}

fn backfill(
    core: &mut NodeCore,
    generator: &mut DemoTraffic,
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

async fn generate_traffic(node: NodeHandle, mut generator: DemoTraffic) {
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
