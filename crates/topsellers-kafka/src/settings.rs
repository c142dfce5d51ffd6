//! `[kafka]`: where the cluster is, which topics, and client settings passed through to librdkafka.

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Client settings topsellers sets itself: a passed-through value would silently break a guarantee.
const RESERVED_CLIENT_KEYS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
    "isolation.level",
    "auto.offset.reset",
    "partitioner",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// The topic of scrubbed purchase events, keyed by item id.
    pub topic: String,
    /// Where messages that are not valid purchases go, with the reason and their topic, partition and offset.
    pub dead_letter_topic: String,
    /// The consumer group the aggregators form.
    pub group_id: String,
    /// Partitions of `topic` when topsellers creates it. Fixed for the life of the topic: an item's partition
    /// is a hash of its id modulo this number, so changing it would split items across partitions.
    pub partitions: u32,
    /// Replication factor of the topics topsellers creates.
    pub replication_factor: u32,
    /// `min.insync.replicas` of the topics topsellers creates (unset: the broker default).
    pub min_insync_replicas: Option<u32>,
    /// Create the topics when they do not exist (idempotent; an existing topic is never changed).
    pub create_topics: bool,
    /// How long a message may wait for an acknowledgement (librdkafka retries within it) before the producer
    /// reports it failed, in milliseconds.
    pub delivery_timeout_ms: u64,
    /// Any further librdkafka setting, passed through unchanged: TLS and SASL (`security.protocol`,
    /// `ssl.ca.location`, `sasl.mechanisms`, `sasl.username`, ...), timeouts, compression.
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic: "purchases".into(),
            dead_letter_topic: "purchases.dead-letters".into(),
            group_id: "topsellers-aggregators".into(),
            partitions: 6,
            replication_factor: 1,
            min_insync_replicas: None,
            create_topics: true,
            delivery_timeout_ms: 120_000,
            client: BTreeMap::new(),
        }
    }
}

impl KafkaSettings {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.bootstrap_servers.trim().is_empty() {
            errors.push("kafka.bootstrap_servers is empty; give host:port[,host:port...]".into());
        }
        for (key, value) in [
            ("topic", &self.topic),
            ("dead_letter_topic", &self.dead_letter_topic),
        ] {
            if let Some(problem) = topic_name_problem(value) {
                errors.push(format!("kafka.{key} {value:?} {problem}"));
            }
        }
        if self.topic == self.dead_letter_topic {
            errors.push("kafka.dead_letter_topic must differ from kafka.topic".into());
        }
        if self.group_id.trim().is_empty() {
            errors.push("kafka.group_id is empty; name the aggregators' consumer group".into());
        }
        if !(1..=10_000).contains(&self.partitions) {
            errors.push(format!(
                "kafka.partitions is {}; use a value from 1 to 10000",
                self.partitions
            ));
        }
        if !(1..=32).contains(&self.replication_factor) {
            errors.push(format!(
                "kafka.replication_factor is {}; use a value from 1 to 32",
                self.replication_factor
            ));
        }
        if let Some(m) = self.min_insync_replicas {
            if m == 0 || m > self.replication_factor {
                errors.push(format!(
                    "kafka.min_insync_replicas is {m}; use a value from 1 to kafka.replication_factor ({})",
                    self.replication_factor
                ));
            }
        }
        if !(1_000..=3_600_000).contains(&self.delivery_timeout_ms) {
            errors.push(format!(
                "kafka.delivery_timeout_ms is {}; use a value from 1000 to 3600000",
                self.delivery_timeout_ms
            ));
        }
        for key in self.client.keys() {
            if RESERVED_CLIENT_KEYS.contains(&key.as_str()) {
                errors.push(format!(
                    "kafka.client.{key:?} is set by topsellers itself (its guarantees depend on it); remove it{}",
                    if key == "bootstrap.servers" {
                        " and use kafka.bootstrap_servers"
                    } else {
                        ""
                    }
                ));
            }
        }
        errors
    }

    /// The common part of every client's configuration: brokers and the passed-through settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        // librdkafka would otherwise log through its own callback at a level we do not control.
        config.set("log_level", "4");
        for (key, value) in &self.client {
            config.set(key, value);
        }
        config
    }
}

/// Kafka's own rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn topic_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 249 {
        return Some("must be 1 to 249 characters long");
    }
    if name == "." || name == ".." {
        return Some("is not a valid topic name");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Some("may only contain letters, digits, '.', '_' and '-'");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(KafkaSettings::default().validate().is_empty());
    }

    #[test]
    fn names_every_problem() {
        let mut s = KafkaSettings {
            topic: "bad topic".into(),
            partitions: 0,
            min_insync_replicas: Some(3),
            ..KafkaSettings::default()
        };
        s.client.insert("enable.idempotence".into(), "false".into());
        let errors = s.validate().join("\n");
        for needle in [
            "kafka.topic",
            "kafka.partitions",
            "kafka.min_insync_replicas",
            "enable.idempotence",
        ] {
            assert!(errors.contains(needle), "{needle} missing in {errors}");
        }
    }
}
