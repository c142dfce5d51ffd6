//! The `[agent]` section: plain data, checked by [`AgentConfig::validate`].

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use topsellers_ingest::FieldMapping;

/// `[agent]`: what to tail, how to read it, where the scrubbed events go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Where the agent keeps its file positions and dead letters. Default: `<data_dir>/agent`.
    pub state_dir: Option<PathBuf>,
    /// How often the files are looked at when there is nothing new. Default 250.
    pub poll_interval_ms: u64,
    /// Most events sent downstream in one batch (one request, one Kafka flush). Default 1000.
    pub batch_max_events: usize,
    /// Longest accepted line in bytes; longer lines become `oversized` dead letters without being held in
    /// memory. Default 1 MiB.
    pub max_line_bytes: usize,
    /// Longest pause between two attempts while the downstream is unavailable. Default 5000.
    pub retry_max_ms: u64,
    /// How long the last line of a rotated file (one that is not the newest of its glob) may stay without its
    /// newline, the file unchanged, before it counts as cut at rotation: a `malformed` dead letter, and the file is
    /// read past it. Default 60000.
    pub cut_line_timeout_ms: u64,
    /// Where scrubbed events go.
    pub downstream: DownstreamConfig,
    /// The purchase logs to tail, `[[agent.files]]`.
    pub files: Vec<FileSource>,
    /// `[agent.http]`: `POST /v1/purchases` on the agent itself; off when absent.
    pub http: Option<HttpIntakeConfig>,
    /// `[agent.log4j2]`: log4j2 SocketAppender and HttpAppender intakes; off when absent.
    pub log4j2: Option<crate::log4j2::Log4j2Config>,
    /// `[agent.customer_key]`: a keyed hash of the customer id beside each event; off when absent.
    pub customer_key: Option<crate::customer_key::CustomerKeyConfig>,
}

/// `[agent.http]`: the agent's own `POST /v1/purchases` (canonical JSON shape, as on the node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpIntakeConfig {
    /// Address to listen on, e.g. `127.0.0.1:8091`.
    pub listen: String,
    /// Bearer token requests must carry; none means open (bind to loopback then). Never printed.
    #[serde(default, serialize_with = "mask")]
    pub auth_token: Option<String>,
    /// Largest spool of accepted, not yet delivered events; beyond it requests get 503. Default 1 GiB.
    #[serde(default = "default_spool_bytes")]
    pub max_spool_bytes: u64,
    /// Largest request body. Default 8 MiB.
    #[serde(default = "default_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_spool_bytes() -> u64 {
    1 << 30
}

fn default_body_bytes() -> usize {
    8 << 20
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            state_dir: None,
            poll_interval_ms: 250,
            batch_max_events: 1000,
            max_line_bytes: 1 << 20,
            retry_max_ms: 5000,
            cut_line_timeout_ms: 60_000,
            downstream: DownstreamConfig::default(),
            files: Vec::new(),
            http: None,
            log4j2: None,
            customer_key: None,
        }
    }
}

/// `[agent.downstream]`, picked by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DownstreamConfig {
    /// An embedded node's `POST /v1/purchases` (a 200 answer means the events are durable there).
    Node {
        /// `http://host:port/v1/purchases`.
        url: String,
        /// The node's `server.auth_token`. Never printed.
        #[serde(default, serialize_with = "mask")]
        auth_token: Option<String>,
        /// Longest wait for one request's answer. Default 30000.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// The `[kafka]` topic, through the same idempotent, `acks=all` publisher as `replay --to kafka`.
    Kafka,
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn mask<S: serde::Serializer>(token: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match token {
        Some(_) => s.serialize_some("****"),
        None => s.serialize_none(),
    }
}

impl Default for DownstreamConfig {
    fn default() -> Self {
        DownstreamConfig::Node {
            url: "http://127.0.0.1:8080/v1/purchases".into(),
            auth_token: None,
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// How the lines of a file hold a purchase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// A JSON object, alone on the line or after a log layout's prefix (it starts at the first `{`).
    #[default]
    Json,
    /// `key=value` pairs anywhere in the line (a log4j pattern-layout message such as
    /// `2026-12-04 10:00:01,123 INFO [pool-1] Shop - purchase item_id=sku-1 qty=2 price=9.99 name="Red mug"`);
    /// values with spaces are double-quoted, `\"` and `\\` escaped inside quotes.
    Log4jKv,
}

/// `[[agent.files]]`: one glob of purchase logs and how to read its lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// A path whose file name may hold `*` and `?` (`/var/log/shop/purchases.log*`); the directory part is
    /// literal. Include the rotated names, so that lines written just before a rotation are still read.
    pub path: String,
    #[serde(default)]
    pub format: LineFormat,
    /// Which JSON key (dotted paths allowed) or `key=value` key holds each event field. Only these survive:
    /// every other key of the line is dropped unread. Default: the canonical keys.
    #[serde(default = "FieldMapping::canonical")]
    pub fields: FieldMapping,
    /// As `input.time_format`: `rfc3339` (default), `unix_ms`, `unix_s` or a strftime format.
    #[serde(default = "default_time_format")]
    pub time_format: String,
    /// As `input.time_zone`, for times written without an offset. Default `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The currency of every line when no currency key is mapped; default `[limits].currency`.
    #[serde(default)]
    pub currency: Option<String>,
}

fn default_time_format() -> String {
    "rfc3339".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

impl AgentConfig {
    /// Every problem, each naming its key and the fix.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.files.is_empty() && self.http.is_none() && self.log4j2.is_none() {
            errors.push(
                "the agent has no input; add a [[agent.files]] section with the path of the purchase logs, [agent.http] or [agent.log4j2]".into(),
            );
        }
        if let Some(l) = &self.log4j2 {
            errors.extend(l.validate());
        }
        if let Some(h) = &self.http {
            if h.listen.parse::<std::net::SocketAddr>().is_err() {
                errors.push(format!(
                    "agent.http.listen {:?} is not an address; write it as 127.0.0.1:8091",
                    h.listen
                ));
            }
            if h.max_spool_bytes < (64 << 10) || h.max_body_bytes < 1024 {
                errors.push("agent.http.max_spool_bytes must be at least 65536 and max_body_bytes at least 1024".into());
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            if let Err(e) = crate::tail::Glob::parse(&f.path) {
                errors.push(format!("agent.files[{i}].path: {e}"));
            }
        }
        if self.batch_max_events == 0 {
            errors.push("agent.batch_max_events is 0; use a positive number such as 1000".into());
        }
        if self.max_line_bytes < 64 {
            errors.push(format!(
                "agent.max_line_bytes ({}) leaves no room for a purchase; use at least 64, such as 1048576",
                self.max_line_bytes
            ));
        }
        if self.poll_interval_ms == 0 || self.retry_max_ms == 0 {
            errors.push("agent.poll_interval_ms and agent.retry_max_ms must be positive".into());
        }
        if let Some(c) = &self.customer_key {
            errors.extend(c.validate());
        }
        if let DownstreamConfig::Node { url, .. } = &self.downstream {
            if let Err(e) = crate::sink::HttpTarget::parse(url) {
                errors.push(format!("agent.downstream.url: {e}"));
            }
        }
        errors
    }
}
