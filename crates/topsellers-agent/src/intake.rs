//! `POST /v1/purchases` on the agent: purchases from a program rather than a log file.
//!
//! A body is parsed and scrubbed at once (the canonical shape, [`HttpBodyParser`]); the accepted events are
//! appended to a **spool** segment in the state directory as canonical JSON lines and fsynced before the answer,
//! so a `200` means the events survive kill -9. The agent's main loop tails the spool like any log (same
//! positions, same ids from fingerprint and offset, same delivery) and deletes segments once every line in them
//! was acknowledged. The spool is bounded (`agent.http.max_spool_bytes`): when it is full, because the downstream
//! is down, requests get `503` with `Retry-After`, never a silent drop. Only scrubbed events are ever written.

use crate::config::HttpIntakeConfig;
use crate::http_server;
use crate::sink::encode_canonical;
use crate::spool::Spool;
use crate::state::DeadLetters;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use topsellers_ingest::{HttpBodyParser, Limits, Parsed};

/// The names of this intake's spool segments (`spool/http-*.jsonl`).
pub const SPOOL_PREFIX: &str = "http";

/// Where spool segments live, under the state directory.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    crate::spool::spool_dir(state_dir)
}

/// The glob the main loop tails.
pub fn spool_glob(state_dir: &Path) -> String {
    crate::spool::spool_glob(state_dir, SPOOL_PREFIX)
}

struct Intake {
    token: Option<String>,
    limits: Limits,
    price_decimals: u32,
    max_body_bytes: usize,
    spool: Mutex<Spool>,
    dead_letters: Mutex<DeadLetters>,
}

impl Intake {
    fn dead_letter(&self, letters: &[topsellers_model::DeadLetter]) -> io::Result<()> {
        self.dead_letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(letters)
    }
}

async fn purchases(State(intake): State<Arc<Intake>>, headers: HeaderMap, body: Body) -> Response {
    if !http_server::authorized(&headers, intake.token.as_deref()) {
        return http_server::answer(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token; send Authorization: Bearer <agent.http.auth_token>",
        );
    }
    let body = match http_server::read_body(
        &headers,
        body,
        intake.max_body_bytes,
        "agent:http",
        "agent.http.max_body_bytes",
    )
    .await
    {
        Ok(body) => body,
        Err((letter, response)) => {
            if let Err(e) = intake.dead_letter(&[letter]) {
                tracing::error!(target: "topsellers", "cannot write a dead letter: {e}");
            }
            return response;
        }
    };
    let result = tokio::task::spawn_blocking(move || accept(&intake, &body)).await;
    match result {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => http_server::answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the agent cannot write its spool ({e}); retry later"),
        ),
        Err(_) => http_server::answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed inside the agent",
        ),
    }
}

fn accept(intake: &Intake, body: &[u8]) -> io::Result<Response> {
    let mut spool = intake.spool.lock().unwrap_or_else(|p| p.into_inner());
    if spool.is_full() {
        return Ok(http_server::spool_full());
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
    intake.dead_letter(&letters)?;
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
    let listener = http_server::bind(&config.listen, "agent.http.listen")?;
    let intake = Arc::new(Intake {
        token: config.auth_token.clone(),
        limits: limits.clone(),
        price_decimals: limits.price_decimals,
        max_body_bytes: config.max_body_bytes,
        spool: Mutex::new(Spool::new(state_dir, SPOOL_PREFIX, config.max_spool_bytes)),
        dead_letters: Mutex::new(DeadLetters::new(state_dir)),
    });
    let router = Router::new()
        .route("/v1/purchases", post(purchases))
        .with_state(intake);
    http_server::spawn("agent-http", listener, router, stop)
}
