//! The one TOML config that drives every role: defaults, then the file, then environment variables, then one
//! validation pass that reports every mistake at once.

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};
use topsellers_agent::AgentConfig;
use topsellers_archive::ArchiveSettings;
use topsellers_batch::BatchSettings;
use topsellers_cassandra::CassandraSettings;
use topsellers_engine::EngineConfig;
use topsellers_gen::GenConfig;
use topsellers_ingest::{InputConfig, Limits};
use topsellers_kafka::KafkaSettings;
use topsellers_redis::RedisSettings;
use topsellers_server::ServerConfig;

/// Prefix of environment overrides: `TOPSELLERS_SERVER__LISTEN=127.0.0.1:9000` sets `server.listen`,
/// `TOPSELLERS_DATA_DIR=/var/lib/topsellers` sets `data_dir`.
pub const ENV_PREFIX: &str = "TOPSELLERS_";

/// `[node]`: how the embedded node paces its work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// How often new results are computed and published to the API, in milliseconds.
    pub snapshot_interval_ms: u64,
    /// A checkpoint of the aggregator state is written at least this often (seconds) while events arrive;
    /// the log behind it is then truncated.
    pub checkpoint_interval_secs: u64,
    /// ... or after this many logged records, whichever comes first.
    pub checkpoint_every_records: u64,
    /// When the input is idle, let event time advance with the wall clock so quiet categories age out.
    /// Turn off when serving results of old data (a replay of last year's files).
    pub idle_advance: bool,
    /// How often the wall clock is offered to the aggregator when `idle_advance` is on, in milliseconds.
    pub tick_interval_ms: u64,
    /// Largest number of records written to the log in one transaction (group commit).
    pub max_batch_records: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            snapshot_interval_ms: 250,
            checkpoint_interval_secs: 60,
            checkpoint_every_records: 2_000_000,
            idle_advance: true,
            tick_interval_ms: 1000,
            max_batch_records: 20_000,
        }
    }
}

impl NodeConfig {
    fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(10..=60_000).contains(&self.snapshot_interval_ms) {
            errors.push(format!(
                "node.snapshot_interval_ms is {}; use a value from 10 to 60000",
                self.snapshot_interval_ms
            ));
        }
        if !(1..=86_400).contains(&self.checkpoint_interval_secs) {
            errors.push(format!(
                "node.checkpoint_interval_secs is {}; use a value from 1 to 86400",
                self.checkpoint_interval_secs
            ));
        }
        if self.checkpoint_every_records == 0 {
            errors.push("node.checkpoint_every_records is 0; use a positive number".into());
        }
        if !(10..=60_000).contains(&self.tick_interval_ms) {
            errors.push(format!(
                "node.tick_interval_ms is {}; use a value from 10 to 60000",
                self.tick_interval_ms
            ));
        }
        if !(1..=1_000_000).contains(&self.max_batch_records) {
            errors.push(format!(
                "node.max_batch_records is {}; use a value from 1 to 1000000",
                self.max_batch_records
            ));
        }
        errors
    }
}

/// `[cluster]`: the cluster shape (Kafka aggregators, a shared results store, stateless API servers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Where aggregators keep each partition's checkpoint and results, and API servers read the results:
    /// `sqlite:<path>` (one host; the processes share the file), `cassandra` (the `[cassandra]` section) or
    /// `redis` (the `[redis]` section, standalone or Redis Cluster).
    pub results_store: String,
    /// How often an aggregator writes the results of a partition that changed, in milliseconds.
    pub results_interval_ms: u64,
    /// An aggregator checkpoints each changed partition at least this often (seconds)...
    pub checkpoint_interval_secs: u64,
    /// ... or after this many messages of the partition, whichever comes first.
    pub checkpoint_every_records: u64,
    /// How often an API server asks the results store what changed, in milliseconds.
    pub refresh_interval_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            results_store: "sqlite:data/cluster-results.db".into(),
            results_interval_ms: 500,
            checkpoint_interval_secs: 10,
            checkpoint_every_records: 500_000,
            refresh_interval_ms: 250,
        }
    }
}

impl ClusterConfig {
    fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if crate::cluster::StoreLocation::parse(&self.results_store).is_err() {
            errors.push(format!(
                "cluster.results_store {:?} is not a store location; use {}",
                self.results_store,
                crate::cluster::STORE_LOCATIONS
            ));
        }
        for (key, value, range) in [
            ("results_interval_ms", self.results_interval_ms, 10..=60_000),
            (
                "checkpoint_interval_secs",
                self.checkpoint_interval_secs,
                1..=86_400,
            ),
            ("refresh_interval_ms", self.refresh_interval_ms, 10..=60_000),
        ] {
            if !range.contains(&value) {
                errors.push(format!(
                    "cluster.{key} is {value}; use a value from {} to {}",
                    range.start(),
                    range.end()
                ));
            }
        }
        if self.checkpoint_every_records == 0 {
            errors.push("cluster.checkpoint_every_records is 0; use a positive number".into());
        }
        errors
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Config {
    /// Where the embedded node keeps its log, checkpoints, results and dead letters.
    pub data_dir: PathBuf,
    pub engine: EngineConfig,
    pub limits: Limits,
    pub input: Option<InputConfig>,
    pub server: ServerConfig,
    pub node: NodeConfig,
    pub demo: GenConfig,
    pub kafka: KafkaSettings,
    pub cluster: ClusterConfig,
    pub cassandra: CassandraSettings,
    pub redis: RedisSettings,
    /// `topsellers batch`: the PostgreSQL purchase table (checked only when the section is present).
    pub batch: BatchSettings,
    /// The Parquet archive: `topsellers archive` writes files to it (defaults without the section), and with the
    /// section `serve` and `demo` also archive every event they accept.
    pub archive: Option<ArchiveSettings>,
    /// `topsellers agent`: what to tail and where to send it (checked only when the section is present).
    pub agent: AgentConfig,
}

const SECTIONS: &[&str] = &[
    "engine",
    "limits",
    "input",
    "server",
    "node",
    "demo",
    "kafka",
    "cluster",
    "cassandra",
    "redis",
    "batch",
    "archive",
    "agent",
];

/// All the mistakes found in a config, reported together.
#[derive(Debug)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<String>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} has {} problem{}:",
            self.source,
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Loads `path` (or only defaults when `None`), applies `TOPSELLERS_*` environment overrides from `env`, and
    /// validates. Every problem is in the error, not just the first.
    pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
        let (source, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?,
            ),
            None => ("the default config".to_string(), String::new()),
        };
        Self::from_toml_str(&source, &text, env)
    }

    pub fn from_toml_str(source: &str, text: &str, env: &[(String, String)]) -> Result<Config> {
        let fail = |errors: Vec<String>| ConfigErrors {
            source: source.to_string(),
            errors,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| {
            fail(vec![format!(
                "is not valid TOML: {}",
                e.to_string().trim_end()
            )])
        })?;
        let mut errors = Vec::new();
        apply_env_overrides(&mut table, env, &mut errors);

        let mut config = Config {
            data_dir: PathBuf::from("data"),
            ..Config::default()
        };
        for (key, value) in &table {
            match key.as_str() {
                "data_dir" => match value.as_str() {
                    Some(s) if !s.trim().is_empty() => config.data_dir = PathBuf::from(s),
                    _ => errors.push("data_dir must be a non-empty string path".into()),
                },
                k if SECTIONS.contains(&k) => {
                    if !value.is_table() {
                        errors.push(format!(
                            "{k} must be a table: write it as a [{k}] section"
                        ));
                    }
                }
                other => errors.push(format!(
                    "unknown key {other:?} at the top level; known keys are data_dir and the sections [{}]",
                    SECTIONS.join("], [")
                )),
            }
        }
        config.engine = section(&table, "engine", &mut errors);
        config.limits = section(&table, "limits", &mut errors);
        config.server = section(&table, "server", &mut errors);
        config.node = section(&table, "node", &mut errors);
        config.demo = section(&table, "demo", &mut errors);
        config.kafka = section(&table, "kafka", &mut errors);
        config.cluster = section(&table, "cluster", &mut errors);
        config.cassandra = section(&table, "cassandra", &mut errors);
        config.redis = section(&table, "redis", &mut errors);
        config.batch = section(&table, "batch", &mut errors);
        config.archive = table
            .get("archive")
            .map(|_| section::<ArchiveSettings>(&table, "archive", &mut errors));
        config.agent = section(&table, "agent", &mut errors);
        config.input = table
            .get("input")
            .map(|_| section::<InputConfig>(&table, "input", &mut errors));

        prefixed(&mut errors, "engine", config.engine.validate());
        prefixed(&mut errors, "limits", config.limits.validate());
        prefixed(&mut errors, "server", config.server.validate());
        errors.extend(config.node.validate());
        prefixed(&mut errors, "demo", config.demo.validate());
        prefixed(&mut errors, "kafka", config.kafka.validate());
        errors.extend(config.cluster.validate());
        // The store sections are checked only when used, so a config for the embedded node or SQLite never
        // fails over a [cassandra] or [redis] section it does not use.
        match crate::cluster::StoreLocation::parse(&config.cluster.results_store) {
            Ok(crate::cluster::StoreLocation::Cassandra) => {
                errors.extend(config.cassandra.validate());
            }
            Ok(crate::cluster::StoreLocation::Redis) => {
                if let Err(problems) = config.redis.validate() {
                    prefixed(&mut errors, "redis", problems);
                }
            }
            _ => {}
        }
        if table.contains_key("batch") {
            prefixed(&mut errors, "batch", config.batch.validate());
        }
        if let Some(archive) = &config.archive {
            prefixed(&mut errors, "archive", archive.validate());
        }
        if table.contains_key("agent") {
            errors.extend(config.agent.validate());
        }
        if config.server.stale_after_ms <= config.cluster.refresh_interval_ms {
            errors.push(format!(
                "server.stale_after_ms ({}) is not more than cluster.refresh_interval_ms ({}): an API server would \
                 call its results stale between two refreshes; make it a few times the refresh interval",
                config.server.stale_after_ms, config.cluster.refresh_interval_ms
            ));
        }
        if let Some(input) = &config.input {
            prefixed(&mut errors, "input", input.validate());
        }
        if config.limits.max_future_secs.saturating_mul(2) > config.engine.allowed_lateness_secs {
            errors.push(format!(
                "limits.max_future_secs ({}) is more than half of engine.allowed_lateness_secs ({}): event time \
                 follows the newest event, so a producer whose clock runs that far ahead takes that much of the \
                 lateness allowance away from everyone else's on-time purchases; lower limits.max_future_secs or \
                 raise engine.allowed_lateness_secs",
                config.limits.max_future_secs, config.engine.allowed_lateness_secs
            ));
        }
        name_env_sources(&mut errors, env);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(fail(errors).into())
        }
    }

    /// Environment variables of this process that look like overrides.
    ///
    /// Not overrides: `TOPSELLERS_CONFIG` (the `--config` flag's variable) and `TOPSELLERS_TEST_*` (addresses of
    /// the services the test suite started, read by the tests).
    pub fn process_env() -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(k, _)| {
                k.starts_with(ENV_PREFIX)
                    && k != "TOPSELLERS_CONFIG"
                    && !k.starts_with("TOPSELLERS_TEST_")
            })
            .collect()
    }
}

/// An error about a key that an environment variable set says so: the file is not where to look for it.
fn name_env_sources(errors: &mut [String], env: &[(String, String)]) {
    for (var, _) in env {
        let Some(path) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = path.to_ascii_lowercase().replace("__", ".");
        // `TOPSELLERS_ENGIN__WINDOWS` makes a top-level key `engin`, reported on its own.
        let top = key.split('.').next().unwrap_or_default();
        for e in errors.iter_mut() {
            let mentions = e.starts_with(&format!("{key}:"))
                || e.starts_with(&format!("{key} "))
                || e.contains(&format!(" {key} "))
                || e.starts_with(&format!("unknown key {top:?} at the top level"));
            if mentions && !e.contains(var.as_str()) {
                e.push_str(&format!(
                    " (the value comes from the environment variable {var})"
                ));
            }
        }
    }
}

/// Section validators are written to name their keys; add the section name where one did not.
fn prefixed(errors: &mut Vec<String>, section: &str, found: Vec<String>) {
    for e in found {
        if e.starts_with(&format!("{section}.")) || e.contains(&format!("{section}.")) {
            errors.push(e);
        } else {
            errors.push(format!("[{section}] {e}"));
        }
    }
}

/// Deserializes one section, collecting every unknown key and every key of the wrong type (not only the first).
fn section<T: DeserializeOwned + Default>(
    table: &toml::Table,
    name: &str,
    errors: &mut Vec<String>,
) -> T {
    let Some(toml::Value::Table(original)) = table.get(name) else {
        return T::default();
    };
    let mut value = original.clone();
    // Each pass finds one problem; removing the offending key lets the next pass find the next one.
    for _ in 0..64 {
        let msg = match T::deserialize(toml::Value::Table(value.clone())) {
            Ok(v) => return v,
            Err(e) => e.message().trim_end().to_string(),
        };
        let culprit = unknown_field_name(&msg)
            .filter(|f| value.contains_key(f))
            .or_else(|| key_failing_alone::<T>(&value));
        match culprit {
            Some(f) if msg.starts_with("unknown field") => {
                errors.push(format!(
                    "{name}.{f} is not a known key: {}",
                    msg.split_once(", expected").map_or_else(
                        || "check the spelling".to_string(),
                        |(_, rest)| format!("expected{rest}")
                    )
                ));
                value.remove(&f);
            }
            Some(f) => {
                let alone = single_key_error::<T>(&value, &f).unwrap_or(msg);
                errors.push(format!("{name}.{f}: {alone}"));
                value.remove(&f);
            }
            None => {
                errors.push(format!("[{name}] {msg}"));
                return T::default();
            }
        }
    }
    T::default()
}

/// Every section has defaults for all keys, so a table holding only one key deserializes unless that key is wrong.
fn key_failing_alone<T: DeserializeOwned>(table: &toml::Table) -> Option<String> {
    table
        .keys()
        .find(|k| single_key_error::<T>(table, k).is_some())
        .cloned()
}

fn single_key_error<T: DeserializeOwned>(table: &toml::Table, key: &str) -> Option<String> {
    let mut alone = toml::Table::new();
    alone.insert(key.to_string(), table.get(key)?.clone());
    T::deserialize(toml::Value::Table(alone))
        .err()
        .map(|e| e.message().trim_end().to_string())
}

fn unknown_field_name(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// `TOPSELLERS_SERVER__LISTEN=x` -> `server.listen = x`. The value is read as a TOML value when it parses as one
/// (numbers, booleans, arrays), else as a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: &[(String, String)],
    errors: &mut Vec<String>,
) {
    for (key, raw) in env {
        let Some(path) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if parts.iter().any(String::is_empty) || parts.len() > 2 {
            errors.push(format!(
                "environment variable {key} does not name a key; use {ENV_PREFIX}<SECTION>__<KEY> or {ENV_PREFIX}DATA_DIR"
            ));
            continue;
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        if parts.len() == 1 {
            table.insert(parts[0].clone(), value);
        } else {
            let section = table
                .entry(parts[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match section.as_table_mut() {
                Some(t) => {
                    t.insert(parts[1].clone(), value);
                }
                None => errors.push(format!(
                    "environment variable {key} overrides a key of {}, which is not a section",
                    parts[0]
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml_str("t", "", &[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert!(c.input.is_none());
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let text = r#"
            datadir = "x"
            [engine]
            bucket_secs = 0
            windowz = ["1h"]
            [server]
            listen = 5
            [node]
            snapshot_interval_ms = 1
            colour = "red"
            [serverr]
        "#;
        let err = Config::from_toml_str("bad.toml", text, &[]).unwrap_err();
        let msg = err.to_string();
        for needle in [
            "datadir",
            "engine.windowz",
            "engine.bucket_secs",
            "server.listen",
            "node.snapshot_interval_ms",
            "node.colour",
            "serverr",
        ] {
            assert!(msg.contains(needle), "missing {needle} in:\n{msg}");
        }
    }

    #[test]
    fn env_overrides_win_over_the_file() {
        let env = vec![
            (
                "TOPSELLERS_SERVER__LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            (
                "TOPSELLERS_NODE__IDLE_ADVANCE".to_string(),
                "false".to_string(),
            ),
            ("TOPSELLERS_DATA_DIR".to_string(), "/tmp/x".to_string()),
        ];
        let c = Config::from_toml_str("t", "[server]\nlisten = \"127.0.0.1:1\"\n", &env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9999");
        assert!(!c.node.idle_advance);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    /// QA: a misspelt section in an override was reported as a top-level key with no word of where it came from.
    #[test]
    fn errors_name_the_environment_variable_they_come_from() {
        let env = vec![
            (
                "TOPSELLERS_ENGIN__WINDOWS".to_string(),
                "[\"1h\"]".to_string(),
            ),
            (
                "TOPSELLERS_ENGINE__WINDOWZ".to_string(),
                "[\"1h\"]".to_string(),
            ),
        ];
        let msg = Config::from_toml_str("t", "", &env)
            .unwrap_err()
            .to_string();
        for needle in [
            "unknown key \"engin\" at the top level",
            "environment variable TOPSELLERS_ENGIN__WINDOWS",
            "engine.windowz is not a known key",
            "environment variable TOPSELLERS_ENGINE__WINDOWZ",
        ] {
            assert!(msg.contains(needle), "missing {needle} in:\n{msg}");
        }
    }
}
