//! `POST /v1/purchases` on the agent: purchases from a program rather than a log file.
//!
//! A body is parsed and scrubbed at once (the canonical shape, [`HttpBodyParser`]); the accepted events are
//! appended to a **spool** segment in the state directory as canonical JSON lines and fsynced before the answer,
//! so a `200` means the events survive kill -9. The agent's main loop tails the spool like any log (same
//! positions, same ids from fingerprint and offset, same delivery) and deletes segments once every line in them
//! was acknowledged. The spool is bounded (`agent.http.max_spool_bytes`): when it is full, because the downstream
//! is down, requests get `503` with `Retry-After`, never a silent drop. Only scrubbed events are ever written.

use crate::config::HttpIntakeConfig;
use crate::sink::encode_canonical;
use crate::state::DeadLetters;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use topsellers_ingest::{HttpBodyParser, Limits, Parsed};

/// Where spool segments live, under the state directory.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

/// The glob the main loop tails.
pub fn spool_glob(state_dir: &Path) -> String {
    format!("{}/http-*.jsonl", spool_dir(state_dir).display())
}

/// A segment is closed and a new one begun past this size (or an eighth of `max_spool_bytes`, when smaller), so
/// acknowledged data is deleted soon and a full spool means undelivered events, not delivered ones kept.
const SEGMENT_BYTES: u64 = 8 << 20;

struct Spool {
    dir: PathBuf,
    segment_bytes: u64,
    current: Option<(File, u64)>,
    sequence: u64,
}

impl Spool {
    fn total_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self
            .current
            .as_ref()
            .is_none_or(|(_, len)| *len >= self.segment_bytes)
        {
            std::fs::create_dir_all(&self.dir)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            self.sequence += 1;
            // Names sort in creation order: the main loop keeps the newest and deletes older, acknowledged ones.
            let path = self
                .dir
                .join(format!("http-{now:015}-{:06}.jsonl", self.sequence));
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            // A first line of its own gives every segment its own fingerprint, whatever the events; the main
            // loop skips it.
            let header = format!(
                "{{\"spool_segment\":\"{}\"}}\n",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            file.write_all(header.as_bytes())?;
            File::open(&self.dir)?.sync_all()?;
            self.current = Some((file, header.len() as u64));
        }
        let (file, len) = self.current.as_mut().expect("opened above");
        file.write_all(bytes)?;
        file.sync_data()?;
        *len += bytes.len() as u64;
        Ok(())
    }
}

struct Intake {
    token: Option<String>,
    limits: Limits,
    price_decimals: u32,
    max_spool_bytes: u64,
    spool: Mutex<Spool>,
    dead_letters: Mutex<DeadLetters>,
}

fn answer(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

async fn purchases(State(intake): State<Arc<Intake>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(token) = &intake.token {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return answer(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token; send Authorization: Bearer <agent.http.auth_token>",
            );
        }
    }
    let result = tokio::task::spawn_blocking(move || accept(&intake, &body)).await;
    match result {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the agent cannot write its spool ({e}); retry later"),
        ),
        Err(_) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed inside the agent",
        ),
    }
}

fn accept(intake: &Intake, body: &[u8]) -> io::Result<Response> {
    let mut spool = intake.spool.lock().unwrap_or_else(|p| p.into_inner());
    if spool.total_bytes() >= intake.max_spool_bytes {
        let mut r = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent's spool is full because the downstream is not taking events; retry later",
        );
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("5"));
        return Ok(r);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let parsed = match HttpBodyParser::new(&intake.limits, now) {
        Ok(mut p) => p.parse(body),
        Err(e) => return Err(io::Error::other(e.to_string())),
    };
    let mut lines = Vec::new();
    let mut letters = Vec::new();
    let (mut accepted, mut skipped) = (0u64, 0u64);
    for item in parsed {
        match item {
            Parsed::Event(e) => {
                encode_canonical(&e, intake.price_decimals, &mut lines);
                accepted += 1;
            }
            Parsed::Skipped(_) => skipped += 1,
            Parsed::Rejected(mut d) => {
                d.source = "agent:http".into();
                letters.push(d);
            }
        }
    }
    if !lines.is_empty() {
        spool.append(&lines)?;
    }
    drop(spool);
    let rejected: Vec<serde_json::Value> = letters
        .iter()
        .map(|d| serde_json::json!({"location": d.location, "field": d.field, "reason": d.reason, "message": d.message}))
        .collect();
    intake
        .dead_letters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .write(&letters)?;
    Ok((
        StatusCode::OK,
        [("content-type", "application/json")],
        serde_json::json!({"accepted": accepted, "skipped": skipped, "rejected": rejected})
            .to_string(),
    )
        .into_response())
}

/// Starts the intake on its own thread; it stops when `stop` is set. Fails at once when the address is taken.
pub fn start(
    config: &HttpIntakeConfig,
    limits: &Limits,
    state_dir: &Path,
    stop: Arc<AtomicBool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let listener = std::net::TcpListener::bind(&config.listen).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot listen on agent.http.listen {:?} ({e}); pick a free address",
                config.listen
            ),
        )
    })?;
    listener.set_nonblocking(true)?;
    let intake = Arc::new(Intake {
        token: config.auth_token.clone(),
        limits: limits.clone(),
        price_decimals: limits.price_decimals,
        max_spool_bytes: config.max_spool_bytes,
        spool: Mutex::new(Spool {
            dir: spool_dir(state_dir),
            segment_bytes: SEGMENT_BYTES.min(config.max_spool_bytes / 8),
            current: None,
            sequence: 0,
        }),
        dead_letters: Mutex::new(DeadLetters::new(state_dir)),
    });
    let router = Router::new()
        .route("/v1/purchases", post(purchases))
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(intake);
    std::thread::Builder::new()
        .name("agent-http".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let shutdown = async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(target: "topsellers", "the agent's HTTP intake stopped: {e}");
                }
            });
        })
}
