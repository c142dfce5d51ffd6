//! `[agent.log4j2]`: events from Java purchase servers' log4j2 appenders, straight to the agent.
//!
//! - **SocketAppender** (TCP, `socket.rs`): one JSON event per line (JsonTemplateLayout, whose event delimiter is a
//!   newline; JsonLayout with `compact="true" eventEol="true"`).
//! - **HttpAppender** (`http.rs`): `POST /v1/log4j2`, one JSON layout event per request (several, one per line, are
//!   taken too), with `Authorization: Bearer <auth_token>` set as a `<Property>` of the appender.
//!
//! Both parse and scrub each event at once ([`Log4j2Parser`]: only the mapped fields survive) and append the
//! accepted events, canonical JSON, to their own spool segments (`spool/log4j2-*.jsonl`), fsynced before the
//! HTTP `200` and before the socket is read further; the main loop delivers them like log lines, with the same
//! positions and ids. When the spool reaches `max_spool_bytes` (the downstream is down) the HTTP intake answers
//! `503` with `Retry-After` and the socket intake stops reading, so TCP pushes back on the appender: nothing
//! is dropped. An event that cannot be a purchase is a dead letter (reason, where; never its content) and the
//! connection stays up. With `[agent.customer_key]`, an event's customer key is made here and spooled as
//! `customer_key` beside it; the customer id itself is never written.

mod event;
mod http;
mod socket;

pub use event::{Keyed, Log4j2Parser};

use crate::customer_key::CustomerKeyConfig;
use crate::parse::CustomerField;
use crate::sink::encode_canonical_keyed;
use crate::spool::Spool;
use crate::state::DeadLetters;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use topsellers_ingest::{FieldMapping, Limits, Parsed};
use topsellers_model::DeadLetter;

/// The names of this intake's spool segments (`spool/log4j2-*.jsonl`).
pub const SPOOL_PREFIX: &str = "log4j2";

/// `[agent.log4j2]`: the addresses the appenders send to and where the purchase is in their events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log4j2Config {
    /// Address for SocketAppenders (TCP), e.g. `127.0.0.1:4560`; off when absent. The socket has no
    /// authentication (the appender cannot send any): bind it to loopback or a private interface.
    #[serde(default)]
    pub socket_listen: Option<String>,
    /// Address for HttpAppenders (`POST /v1/log4j2`), e.g. `127.0.0.1:8092`; off when absent.
    #[serde(default)]
    pub http_listen: Option<String>,
    /// Bearer token HTTP requests must carry; required unless `http_listen` is a loopback address. Never printed.
    #[serde(default, serialize_with = "mask")]
    pub auth_token: Option<String>,
    /// Which key holds each event field: looked up in the message (a JSON object, or key=value text), then in
    /// JsonLayout's `contextMap`, then in the event itself (dotted paths allowed). Only these are read.
    #[serde(default = "FieldMapping::canonical")]
    pub fields: FieldMapping,
    /// As `input.time_format`: `rfc3339` (default; `@timestamp` of the ECS template), `unix_ms` (JsonLayout's
    /// `timeMillis`), `unix_s` or a strftime format.
    #[serde(default = "default_time_format")]
    pub time_format: String,
    /// As `input.time_zone`, for times written without an offset. Default `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The currency of every event when no currency key is mapped; default `[limits].currency`.
    #[serde(default)]
    pub currency: Option<String>,
    /// Longest event (socket line or request body); a longer one is an `oversized` dead letter, skipped without
    /// being held in memory. Default 1 MiB.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Largest spool of accepted, not yet delivered events; beyond it the intakes push back. Default 1 GiB.
    #[serde(default = "default_spool_bytes")]
    pub max_spool_bytes: u64,
    /// Most SocketAppender connections at once; more are closed at once (the appender reconnects). Default 64.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_time_format() -> String {
    "rfc3339".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

fn default_max_event_bytes() -> usize {
    1 << 20
}

fn default_spool_bytes() -> u64 {
    1 << 30
}

fn default_max_connections() -> usize {
    64
}

fn mask<S: serde::Serializer>(token: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match token {
        Some(_) => s.serialize_some("****"),
        None => s.serialize_none(),
    }
}

impl Default for Log4j2Config {
    fn default() -> Self {
        Log4j2Config {
            socket_listen: None,
            http_listen: None,
            auth_token: None,
            fields: FieldMapping::canonical(),
            time_format: default_time_format(),
            time_zone: default_time_zone(),
            currency: None,
            max_event_bytes: default_max_event_bytes(),
            max_spool_bytes: default_spool_bytes(),
            max_connections: default_max_connections(),
        }
    }
}

impl Log4j2Config {
    /// Every problem, each naming its key and the fix.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.socket_listen.is_none() && self.http_listen.is_none() {
            errors.push("[agent.log4j2] has neither socket_listen nor http_listen; add socket_listen = \"127.0.0.1:4560\" (SocketAppender) or http_listen = \"127.0.0.1:8092\" (HttpAppender)".into());
        }
        for (key, address) in [
            ("socket_listen", &self.socket_listen),
            ("http_listen", &self.http_listen),
        ] {
            let Some(address) = address else { continue };
            match address.parse::<std::net::SocketAddr>() {
                Err(_) => errors.push(format!(
                    "agent.log4j2.{key} {address:?} is not an address; write it as 127.0.0.1:4560"
                )),
                Ok(a) if key == "http_listen" && !a.ip().is_loopback() && self.auth_token.is_none() => {
                    errors.push(format!("agent.log4j2.http_listen {address:?} is reachable from other hosts but there is no agent.log4j2.auth_token; set one (16 or more characters) and send it from the HttpAppender as <Property name=\"Authorization\" value=\"Bearer ...\"/>"))
                }
                Ok(_) => {}
            }
        }
        if self.auth_token.as_ref().is_some_and(|t| t.len() < 16) {
            errors.push("agent.log4j2.auth_token is shorter than 16 characters; use a longer random token (openssl rand -hex 24)".into());
        }
        if self.max_event_bytes < 1024 || self.max_spool_bytes < (64 << 10) {
            errors.push("agent.log4j2.max_event_bytes must be at least 1024 and max_spool_bytes at least 65536".into());
        }
        if self.max_connections == 0 {
            errors
                .push("agent.log4j2.max_connections is 0; use a positive number such as 64".into());
        }
        errors
    }
}

/// What both intakes share: the config, the spool and the dead letters.
struct Shared {
    config: Log4j2Config,
    limits: Limits,
    /// `[agent.customer_key]`, when configured.
    customer: Option<CustomerField>,
    spool: Mutex<Spool>,
    dead_letters: Mutex<DeadLetters>,
}

impl Shared {
    /// Fails when the field mapping, time format or zone is wrong, or the customer key's secret cannot be read.
    fn new(
        config: &Log4j2Config,
        limits: &Limits,
        customer_key: Option<&CustomerKeyConfig>,
        state_dir: &Path,
    ) -> io::Result<Arc<Shared>> {
        let shared = Shared {
            config: config.clone(),
            limits: limits.clone(),
            customer: CustomerField::configured(customer_key)?,
            spool: Mutex::new(Spool::new(state_dir, SPOOL_PREFIX, config.max_spool_bytes)),
            dead_letters: Mutex::new(DeadLetters::new(state_dir)),
        };
        shared.parser(String::new())?; // checked before anything listens
        Ok(Arc::new(shared))
    }

    fn parser(&self, source: String) -> io::Result<Log4j2Parser> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut parser = Log4j2Parser::new(&self.config, &self.limits, now)
            .map_err(|e| io::Error::other(format!("agent.log4j2: {e}")))?
            .with_customer(self.customer.clone());
        parser.set_source(source);
        Ok(parser)
    }

    fn is_full(&self) -> bool {
        self.spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_full()
    }

    /// Appends the accepted events to the spool (fsynced) and writes the dead letters: when this returns `Ok`
    /// both are durable. Returns the number of events and the dead letters.
    fn keep(&self, parsed: &[Keyed]) -> io::Result<(u64, Vec<DeadLetter>)> {
        let mut lines = Vec::new();
        let mut letters = Vec::new();
        let mut accepted = 0;
        for (p, key) in parsed {
            match p {
                Parsed::Event(e) => {
                    encode_canonical_keyed(e, key.as_ref(), self.limits.price_decimals, &mut lines);
                    accepted += 1;
                }
                Parsed::Skipped(_) => {}
                Parsed::Rejected(d) => letters.push(d.clone()),
            }
        }
        if !lines.is_empty() {
            self.spool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&lines)?;
        }
        self.dead_letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(&letters)?;
        Ok((accepted, letters))
    }
}

/// Starts the configured intakes, each on its own thread; they stop when `stop` is set. Fails at once when an
/// address is taken, the field mapping is wrong or the customer key's secret cannot be read.
pub fn start(
    config: &Log4j2Config,
    limits: &Limits,
    customer_key: Option<&CustomerKeyConfig>,
    state_dir: &Path,
    stop: Arc<AtomicBool>,
) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
    let shared = Shared::new(config, limits, customer_key, state_dir)?;
    let mut threads = Vec::new();
    if let Some(address) = &config.socket_listen {
        let listener = crate::http_server::bind(address, "agent.log4j2.socket_listen")?;
        threads.push(socket::spawn(listener, shared.clone(), stop.clone())?);
    }
    if let Some(address) = &config.http_listen {
        let listener = crate::http_server::bind(address, "agent.log4j2.http_listen")?;
        threads.push(http::spawn(listener, shared, stop)?);
    }
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key_and_the_fix() {
        let ok = Log4j2Config {
            socket_listen: Some("127.0.0.1:4560".into()),
            ..Log4j2Config::default()
        };
        assert!(ok.validate().is_empty(), "{:?}", ok.validate());
        let open = Log4j2Config {
            http_listen: Some("0.0.0.0:8092".into()),
            ..Log4j2Config::default()
        };
        let e = open.validate().join("; ");
        assert!(
            e.contains("agent.log4j2.http_listen") && e.contains("auth_token"),
            "{e}"
        );
        let bad = Log4j2Config {
            socket_listen: Some("localhost".into()),
            auth_token: Some("short".into()),
            max_connections: 0,
            ..Log4j2Config::default()
        };
        let e = bad.validate();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("127.0.0.1:4560"), "{e:?}");
        assert_eq!(
            Log4j2Config::default().validate().len(),
            1,
            "neither address is an error"
        );
        let shown = toml_like(&Log4j2Config {
            auth_token: Some("a-secret-token-of-24-chars".into()),
            ..ok
        });
        assert!(
            !shown.contains("a-secret") && shown.contains("****"),
            "{shown}"
        );
    }

    fn toml_like(c: &Log4j2Config) -> String {
        serde_json::to_string(c).unwrap()
    }
}
