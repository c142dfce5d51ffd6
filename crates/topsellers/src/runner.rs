//! Runs a [`NodeCore`] on its own thread: submissions from HTTP and the demo generator arrive over a bounded
//! channel, are written to the log together (group commit: one fsync for everything that queued up meanwhile),
//! and each submitter hears back once its events are durable. The thread also publishes snapshots, offers the
//! wall clock to the aggregator when idle advance is on, and writes checkpoints.

use crate::config::NodeConfig;
use crate::node::{wall_clock_ms, BatchOutcome, NodeCore, Submission};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use topsellers_server::Results;

/// Longest time between two published snapshots while the node is alive, even when nothing changed.
const HEARTBEAT: Duration = Duration::from_secs(5);

pub type Reply = oneshot::Sender<Result<BatchOutcome, String>>;

enum Command {
    Ingest {
        submission: Submission,
        reply: Reply,
    },
    Shutdown,
}

/// A cheap handle to submit work to the node thread.
#[derive(Clone)]
pub struct NodeHandle {
    tx: SyncSender<Command>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitFailure {
    #[error("the node is busy: its queue is full; retry shortly")]
    Busy,
    #[error("the node is shutting down")]
    Closed,
    #[error("{0}")]
    Failed(String),
}

impl NodeHandle {
    /// Submits a batch and waits (asynchronously) until it is durable.
    pub async fn submit(&self, submission: Submission) -> Result<BatchOutcome, SubmitFailure> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Command::Ingest { submission, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(SubmitFailure::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(SubmitFailure::Closed),
        }
        match rx.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(SubmitFailure::Failed(e)),
            Err(_) => Err(SubmitFailure::Closed),
        }
    }
}

pub struct NodeThread {
    handle: NodeHandle,
    join: JoinHandle<()>,
}

impl NodeThread {
    pub fn start(core: NodeCore, results: Results, config: NodeConfig, tick: bool) -> NodeThread {
        let (tx, rx) = mpsc::sync_channel::<Command>(1024);
        let join = std::thread::Builder::new()
            .name("topsellers-node".into())
            .spawn(move || run(core, rx, results, config, tick))
            .expect("spawning the node thread");
        NodeThread {
            handle: NodeHandle { tx },
            join,
        }
    }

    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops after the work already queued, with a final snapshot and checkpoint.
    pub fn shutdown(self) {
        let _ = self.handle.tx.send(Command::Shutdown);
        let _ = self.join.join();
    }
}

fn run(
    mut core: NodeCore,
    rx: mpsc::Receiver<Command>,
    results: Results,
    config: NodeConfig,
    tick: bool,
) {
    let snapshot_every = Duration::from_millis(config.snapshot_interval_ms);
    let tick_every = Duration::from_millis(config.tick_interval_ms);
    let mut next_snapshot = Instant::now();
    let mut last_publish = Instant::now();
    let mut next_tick = Instant::now();
    core.publish_snapshot(&results, true);
    let mut shutting_down = false;
    while !shutting_down {
        let now = Instant::now();
        let deadline = if tick {
            next_snapshot.min(next_tick)
        } else {
            next_snapshot
        };
        let first = match rx.recv_timeout(deadline.saturating_duration_since(now)) {
            Ok(cmd) => Some(cmd),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Group commit: take everything that is already waiting, up to the batch limit.
        let mut submissions: Vec<Submission> = Vec::new();
        let mut replies: Vec<Reply> = Vec::new();
        let mut queued_items = 0;
        let mut pending = first;
        while let Some(cmd) = pending.take() {
            match cmd {
                Command::Shutdown => shutting_down = true,
                Command::Ingest { submission, reply } => {
                    queued_items += submission.items.len();
                    submissions.push(submission);
                    replies.push(reply);
                }
            }
            if queued_items < config.max_batch_records && !shutting_down {
                pending = rx.try_recv().ok();
            }
        }
        let tick_ms = if tick && Instant::now() >= next_tick {
            next_tick = Instant::now() + tick_every;
            Some(wall_clock_ms())
        } else {
            None
        };
        if !submissions.is_empty() || tick_ms.is_some() {
            process(&mut core, submissions, replies, tick_ms);
        }
        if Instant::now() >= next_snapshot || shutting_down {
            // Even with nothing new, republish now and then: computed_at is how servers and the page tell
            // "up to date, just quiet" from "the aggregator stopped".
            let heartbeat_due = last_publish.elapsed() >= HEARTBEAT;
            let started = Instant::now();
            if core.publish_snapshot(&results, heartbeat_due).is_some() {
                last_publish = Instant::now();
            }
            // With a large state a snapshot costs real time (a scan of every dirty list); never spend more than
            // about a fifth of the node's time on them, so ingestion keeps up under load.
            next_snapshot = Instant::now() + snapshot_every.max(started.elapsed() * 4);
        }
        if core.checkpoint_due() || shutting_down {
            if let Err(e) = core.checkpoint(&results) {
                tracing::error!(error = format!("{e:#}"), "checkpoint failed; will retry");
            }
        }
    }
}

/// Ingests everything that queued up with one log append and answers each submitter with its own outcome.
fn process(
    core: &mut NodeCore,
    submissions: Vec<Submission>,
    replies: Vec<Reply>,
    tick_ms: Option<i64>,
) {
    match core.ingest_groups(submissions, tick_ms) {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!(error = msg, "batch not accepted");
            for reply in replies {
                let _ = reply.send(Err(msg.clone()));
            }
        }
    }
}
