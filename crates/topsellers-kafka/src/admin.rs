//! Topics: created when missing (idempotently), and checked for the partition count the data depends on.

use crate::settings::KafkaSettings;
use crate::KafkaPathError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use std::time::Duration;

const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the purchases and dead-letter topics if they do not exist (when `create_topics` is on), then
/// returns the purchases topic's partition count as the cluster reports it.
pub fn ensure_topics(settings: &KafkaSettings) -> Result<u32, KafkaPathError> {
    // Metadata first: it answers within METADATA_TIMEOUT whether the cluster is reachable at all, while an
    // admin request to an unreachable cluster waits out librdkafka's much longer request timeouts.
    match partition_count(settings, &settings.topic) {
        Err(KafkaPathError::MissingTopic { .. }) if settings.create_topics => {
            create_missing(settings)?;
            partition_count(settings, &settings.topic)
        }
        Ok(n) if settings.create_topics => {
            // The dead-letter topic may still be missing (created by hand, or deleted since).
            if partition_count(settings, &settings.dead_letter_topic).is_err() {
                create_missing(settings)?;
            }
            Ok(n)
        }
        other => other,
    }
}

fn create_missing(settings: &KafkaSettings) -> Result<(), KafkaPathError> {
    let admin: AdminClient<DefaultClientContext> =
        settings
            .client_config()
            .create()
            .map_err(|e| KafkaPathError::Client {
                what: "create the Kafka admin client".into(),
                detail: e.to_string(),
            })?;
    let min_isr = settings.min_insync_replicas.map(|m| m.to_string());
    let mut purchases = NewTopic::new(
        &settings.topic,
        settings.partitions as i32,
        TopicReplication::Fixed(settings.replication_factor as i32),
    );
    // One partition is plenty for dead letters, and keeps them in the order they were found.
    let mut dead_letters = NewTopic::new(
        &settings.dead_letter_topic,
        1,
        TopicReplication::Fixed(settings.replication_factor as i32),
    );
    if let Some(m) = &min_isr {
        purchases = purchases.set("min.insync.replicas", m);
        dead_letters = dead_letters.set("min.insync.replicas", m);
    }
    let topics = [purchases, dead_letters];
    let opts = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .request_timeout(Some(METADATA_TIMEOUT * 2));
    let results = futures_executor::block_on(admin.create_topics(topics.iter(), &opts))
        .map_err(|e| unreachable_error(settings, &e.to_string()))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(target: "topsellers", "created a Kafka topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            // A cluster that is starting or partly down answers with timeouts: worth retrying, like no answer.
            Err((
                _,
                code @ (RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::NotController
                | RDKafkaErrorCode::BrokerNotAvailable
                | RDKafkaErrorCode::LeaderNotAvailable),
            )) => return Err(unreachable_error(settings, &code.to_string())),
            Err((topic, code)) => {
                return Err(KafkaPathError::Client {
                    what: format!("create the Kafka topic {topic}"),
                    detail: format!(
                        "{code}; create it by hand or fix kafka.partitions / kafka.replication_factor (a \
                         replication factor above the number of brokers is refused)"
                    ),
                })
            }
        }
    }
    Ok(())
}

/// Partitions of `topic` according to the cluster's metadata.
pub fn partition_count(settings: &KafkaSettings, topic: &str) -> Result<u32, KafkaPathError> {
    let client: BaseConsumer =
        settings
            .client_config()
            .create()
            .map_err(|e| KafkaPathError::Client {
                what: "create a Kafka client".into(),
                detail: e.to_string(),
            })?;
    let metadata = client
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| unreachable_error(settings, &e.to_string()))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(KafkaPathError::MissingTopic {
            topic: topic.to_string(),
        });
    };
    if let Some(err) = t.error() {
        let code = RDKafkaErrorCode::from(err);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Err(KafkaPathError::MissingTopic {
                topic: topic.to_string(),
            });
        }
        return Err(KafkaPathError::Client {
            what: format!("read the metadata of topic {topic}"),
            detail: code.to_string(),
        });
    }
    if t.partitions().is_empty() {
        return Err(KafkaPathError::MissingTopic {
            topic: topic.to_string(),
        });
    }
    Ok(t.partitions().len() as u32)
}

fn unreachable_error(settings: &KafkaSettings, detail: &str) -> KafkaPathError {
    KafkaPathError::Unreachable {
        bootstrap: settings.bootstrap_servers.clone(),
        detail: detail.to_string(),
    }
}
