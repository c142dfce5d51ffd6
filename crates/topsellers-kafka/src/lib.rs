//! The Kafka path of topsellers.
//!
//! - [`Publisher`]: writes scrubbed purchase events to the purchases topic, keyed (and partitioned) by item id,
//!   with the idempotent producer and `acks=all`, and reports every failed delivery instead of dropping it.
//! - [`aggregator`]: a member of the aggregators' consumer group. Each partition it owns has its own engine,
//!   checkpointed together with the partition's offset in a [`PartitionStore`](topsellers_store::PartitionStore);
//!   a partition that moves resumes exactly where its results stand.
//! - [`archiver`]: `topsellers archive --from kafka`, the topic as Parquet files, by a consumer group of its own.
//! - [`wire`]: what a message looks like (canonical JSON, so outside producers such as `kcat` can write it).
//!
//! Why item id is the key: every item lives in exactly one partition, so the per-partition top lists merge
//! into exact global top lists (see `topsellers_model::merge`), duplicates of an event (same id, same item)
//! meet in one partition's dedup, and a hot category is spread over all partitions by its many items.

pub mod admin;
pub mod aggregator;
pub mod archiver;
mod publisher;
pub mod settings;
pub mod wire;

pub use publisher::{PublishStats, Publisher};
pub use settings::KafkaSettings;

/// What can go wrong on the Kafka path, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KafkaPathError {
    #[error("cannot reach Kafka at {bootstrap} ({detail}); is it running, and is kafka.bootstrap_servers right?")]
    Unreachable { bootstrap: String, detail: String },
    #[error(
        "the Kafka topic {topic} does not exist; create it, or set kafka.create_topics = true"
    )]
    MissingTopic { topic: String },
    #[error("could not {what}: {detail}")]
    Client { what: String, detail: String },
    #[error("{count} message(s) could not be delivered to Kafka; first failure: {first}")]
    Delivery { count: u64, first: String },
    #[error("results store: {0}")]
    Store(#[from] topsellers_store::StoreError),
    #[error("{0}")]
    Config(String),
    #[error("archive: {0}")]
    Archive(String),
}
