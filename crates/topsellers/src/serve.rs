//! `topsellers serve` and the serving half of `topsellers demo`: the node thread plus the HTTP server.

use crate::config::Config;
use crate::http_sink::NodeSink;
use crate::live_archive::{Binding, LiveArchive};
use crate::node::NodeCore;
use crate::runner::{NodeHandle, NodeThread};
use anyhow::{Context, Result};
use std::sync::Arc;
use topsellers_server::{router, serve, AppState, Metrics, Results};

/// A running embedded node: the aggregator thread, the live archive when `[archive]` is configured, and what the
/// HTTP server needs.
pub struct RunningNode {
    pub thread: NodeThread,
    pub archive: Option<LiveArchive>,
    pub results: Results,
    pub metrics: Arc<Metrics>,
}

impl RunningNode {
    /// Starts the node thread, and the live archive of `archive` (from [`NodeCore::bind_live_archive`]).
    pub fn start(
        config: &Config,
        core: NodeCore,
        archive: Option<Binding>,
        results: Results,
        metrics: Arc<Metrics>,
    ) -> Result<RunningNode> {
        let archive = archive
            .map(|binding| binding.start(&config.data_dir, metrics.clone()))
            .transpose()?;
        let thread = NodeThread::start(
            core,
            results.clone(),
            config.node.clone(),
            config.node.idle_advance,
        );
        Ok(RunningNode {
            thread,
            archive,
            results,
            metrics,
        })
    }

    pub fn handle(&self) -> NodeHandle {
        self.thread.handle()
    }
}

/// Serves HTTP until `stop` resolves (SIGINT/SIGTERM for the commands), then stops the node with a final
/// checkpoint.
pub async fn serve_until(
    config: &Config,
    node: RunningNode,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let sink: Option<Arc<dyn topsellers_server::PurchaseSink>> =
        if config.server.auth_token.is_some() {
            Some(Arc::new(NodeSink {
                node: node.handle(),
                limits: config.limits.clone(),
                metrics: node.metrics.clone(),
            }))
        } else {
            None
        };
    let state = AppState {
        results: node.results.clone(),
        sink,
        metrics: node.metrics.clone(),
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
    tracing::info!(address = %addr, "serving");
    eprintln!(
        "topsellers: serving http://{addr}/  (API: http://{addr}/v1/top?window={}&n=10)",
        config.engine.windows.first().map_or("all", String::as_str)
    );
    if config.server.auth_token.is_none() {
        eprintln!("topsellers: POST /v1/purchases is off; set server.auth_token (or TOPSELLERS_SERVER__AUTH_TOKEN) to accept purchases over HTTP");
    }
    serve(listener, router(state), stop).await?;
    eprintln!("topsellers: stopping: writing a final checkpoint");
    let archive = node.archive;
    tokio::task::spawn_blocking(move || {
        node.thread.shutdown();
        // After the node: the log is complete now, and the archive publishes all of it.
        if let Some(archive) = archive {
            archive.shutdown();
        }
    })
    .await?;
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
