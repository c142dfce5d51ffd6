//! `POST /v1/purchases` on the agent: purchases from a program rather than a log file.
//!
//! A body is parsed and scrubbed at once (the canonical shape, [`HttpBodyParser`]); the accepted events are
//! appended to a **spool** segment in the state directory as canonical JSON lines and fsynced before the answer,
//! so a `200` means the events survive kill -9. The agent's main loop tails the spool like any log (same
//! positions, same ids from fingerprint and offset, same delivery) and deletes segments once every line in them
//! was acknowledged. The spool is bounded (`agent.http.max_spool_bytes`): when it is full, because the downstream
//! is down, requests get `503` with `Retry-After`, never a silent drop. Only scrubbed events are ever written.
//! With `[agent.customer_key]`, each event's customer key is made here from the record's customer id and spooled
//! as `customer_key` beside it; the id itself is never written.

use crate::config::HttpIntakeConfig;
use crate::customer_key::CustomerKeyConfig;
use crate::http_server;
use crate::parse::CustomerField;
use crate::sink::encode_canonical_keyed;
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
    /// `[agent.customer_key]`, when configured: where the customer id is in a record, and the keyer.
    customer: Option<CustomerField>,
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
    let mut parser =
        HttpBodyParser::new(&intake.limits, now).map_err(|e| io::Error::other(e.to_string()))?;
    let mut lines = Vec::new();
    let mut letters = Vec::new();
    let (mut accepted, mut skipped) = (0u64, 0u64);
    parser.parse_each(body, |item, record| match item {
        Parsed::Event(e) => {
            let key = match (&intake.customer, record) {
                (Some(customer), Some(record)) => customer.key_in(record),
                _ => None,
            };
            encode_canonical_keyed(&e, key.as_ref(), intake.price_decimals, &mut lines);
            accepted += 1;
        }
        Parsed::Skipped(_) => skipped += 1,
        Parsed::Rejected(mut d) => {
            d.source = "agent:http".into();
            letters.push(d);
        }
    });
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

/// Starts the intake on its own thread; it stops when `stop` is set. Fails at once when the address is taken or
/// the customer key's secret cannot be read.
pub fn start(
    config: &HttpIntakeConfig,
    limits: &Limits,
    customer_key: Option<&CustomerKeyConfig>,
    state_dir: &Path,
    stop: Arc<AtomicBool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let intake = Intake::new(config, limits, customer_key, state_dir)?;
    let listener = http_server::bind(&config.listen, "agent.http.listen")?;
    let router = Router::new()
        .route("/v1/purchases", post(purchases))
        .with_state(Arc::new(intake));
    http_server::spawn("agent-http", listener, router, stop)
}

impl Intake {
    fn new(
        config: &HttpIntakeConfig,
        limits: &Limits,
        customer_key: Option<&CustomerKeyConfig>,
        state_dir: &Path,
    ) -> io::Result<Intake> {
        Ok(Intake {
            token: config.auth_token.clone(),
            limits: limits.clone(),
            price_decimals: limits.price_decimals,
            max_body_bytes: config.max_body_bytes,
            customer: CustomerField::configured(customer_key)?,
            spool: Mutex::new(Spool::new(state_dir, SPOOL_PREFIX, config.max_spool_bytes)),
            dead_letters: Mutex::new(DeadLetters::new(state_dir)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_keys_delivered, customer_key, purchase, CUSTOMER_ID};
    use crate::{AgentConfig, CustomerKeyer};

    /// A body of each shape the intake takes (NDJSON, an array, one object), with and without a customer id, through
    /// the intake and the agent: the key arrives as a tailed file gives it, the id nowhere; off, nothing changes.
    #[test]
    fn customer_key_is_made_at_intake_and_carried_through_the_spool() {
        for configured in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let http = HttpIntakeConfig {
                listen: "127.0.0.1:8091".into(),
                auth_token: None,
                max_spool_bytes: 1 << 20,
                max_body_bytes: 1 << 20,
            };
            let config = AgentConfig {
                http: Some(http.clone()),
                customer_key: configured.then(|| customer_key(dir.path())),
                ..AgentConfig::default()
            };
            let intake = Intake::new(
                &http,
                &Limits::default(),
                config.customer_key.as_ref(),
                &state,
            )
            .unwrap();
            let anonymous = purchase("anonymous").replace(CUSTOMER_ID, "");
            let numeric = purchase("numeric").replace(&format!("\"{CUSTOMER_ID}\""), "4711");
            let bodies = [
                format!("{}\n{anonymous}\n", purchase("keyed-1")),
                format!("[{},{numeric}]", purchase("keyed-2")),
                purchase("keyed-3"),
            ];
            for body in &bodies {
                let response = accept(&intake, body.as_bytes()).unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
            let events = assert_keys_delivered(&config, &state, dir.path());
            assert_eq!(events.len(), 5);
            // A number as the id is keyed as its text, as in a file.
            let numeric = events
                .iter()
                .find(|e| e.event.item_id == "numeric")
                .unwrap();
            let keyer = config
                .customer_key
                .as_ref()
                .map(|c| CustomerKeyer::from_config(c).unwrap());
            assert_eq!(numeric.customer_key, keyer.and_then(|k| k.key("4711")));
        }
    }
}
