//! `topsellers api`: a stateless API server. It holds the merged results of every partition in memory, asks the
//! results store what changed every `cluster.refresh_interval_ms` (loading only partitions whose results
//! version moved), and answers every request from memory: when the store is unreachable it keeps serving the
//! last results.

use crate::cluster::{open_store_waiting, ResultsFollower};
use crate::config::Config;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use topsellers_server::{router, serve, AppState, Metrics, Results};

pub async fn run(config: Config) -> Result<()> {
    // Waits while the store is unreachable (the aggregators do the same); until then there is nothing to serve.
    let opening = config.clone();
    let store = tokio::task::spawn_blocking(move || {
        open_store_waiting(&opening, &std::sync::atomic::AtomicBool::new(false))
    })
    .await
    .context("opening the results store failed")??
    .context("opening the results store was stopped")?;
    let results = Results::with_currency_decimals(config.limits.price_decimals);
    let metrics = Arc::new(Metrics::new());
    let follower = ResultsFollower::new(store);
    eprintln!(
        "topsellers: API server following {} every {} ms",
        follower.describe(),
        config.cluster.refresh_interval_ms
    );
    let refresher = tokio::spawn(refresh_loop(
        follower,
        results.clone(),
        Duration::from_millis(config.cluster.refresh_interval_ms),
    ));
    let state = AppState {
        results,
        sink: None,
        metrics,
        config: Arc::new(config.server.clone()),
    };
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.listen); is another process using that port? choose another with --listen",
                config.server.listen
            )
        })?;
    let addr = listener.local_addr()?;
    eprintln!("topsellers: serving http://{addr}/ (read-only: purchases go to Kafka)");
    serve(listener, router(state), crate::serve::shutdown_signal()).await?;
    refresher.abort();
    Ok(())
}

async fn refresh_loop(follower: ResultsFollower, results: Results, every: Duration) {
    let follower = Arc::new(std::sync::Mutex::new(follower));
    let mut last_error_log: Option<Instant> = None;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let f = follower.clone();
        let refreshed = tokio::task::spawn_blocking(move || {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            f.refresh(crate::node::wall_clock_ms())
        })
        .await;
        let now = crate::node::wall_clock_ms();
        match refreshed {
            Ok(Ok(Some(snapshot))) => {
                results.publish(snapshot);
                results.refreshed(now);
            }
            Ok(Ok(None)) => results.refreshed(now),
            Ok(Err(e)) => {
                // The results stay served, marked stale (X-Results-Stale, /readyz) until a refresh succeeds.
                let reason = crate::error_chain(&e);
                results.refresh_failed(now, &reason);
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!("results store: {reason} (serving the last results meanwhile)");
                    last_error_log = Some(Instant::now());
                }
            }
            Err(e) => {
                results.refresh_failed(now, "the refresh task failed");
                tracing::error!("refresh task failed: {e}");
            }
        }
    }
}
