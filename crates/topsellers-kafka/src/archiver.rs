//! `topsellers archive --from kafka`: the purchases topic as Parquet, by a consumer group of its own
//! (`archive.kafka_group_id`), so archiving never slows the aggregators nor moves their offsets.
//!
//! Each owned partition collects a run of consecutive offsets and publishes it, when due by rows, bytes or age, as
//! one file per (date, hour) named `kafka-<topic>-p<partition>-<first offset>-<last offset>.parquet`, with the
//! record / publish / commit steps of `topsellers_archive::PositionFile` (position file
//! `_topsellers/kafka-<topic>-p<partition>.position`); the group's offset is committed after the position, for lag
//! monitoring and as the start of a partition whose position file is missing. On assignment a partition resumes
//! after its committed position; a run a crash interrupted is read again from its first offset to its last and
//! published under the same names (each file replaced by its twin). A revoked partition drops what it buffered:
//! its next owner reads it again from the committed position.
//!
//! What is archived: each purchase message on its item's home partition, once, decoded and scrubbed as the
//! aggregators decode it. A message on another partition is skipped: the aggregators forward it to its home
//! partition, where it is archived. Malformed messages are left to the aggregators' dead-letter topic. Unlike the
//! aggregators, the archive keeps no dedup state and no watermark: a purchase a producer sent twice (same event id)
//! is archived twice, and a late purchase is archived (it is a real purchase; the aggregators count it as late).

use crate::settings::KafkaSettings;
use crate::wire::{Decoded, Decoder};
use crate::KafkaPathError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use topsellers_archive::{ArchiveSettings, ArchiveTarget, PositionFile, Segment};
use topsellers_ingest::{Limits, Parsed};
use topsellers_model::{home_partition, TimestampMs};

/// Test hook: abort the process (like kill -9) after this many runs were published, before the last one's
/// position is committed.
const ABORT_AFTER_PUBLISHES_ENV: &str = "TOPSELLERS_TEST_KAFKA_ARCHIVE_ABORT_AFTER_PUBLISHES";

/// What the archiver has done, for its status line.
#[derive(Debug, Default)]
pub struct ArchiverStats {
    pub partitions_owned: AtomicU64,
    pub messages: AtomicU64,
    pub events: AtomicU64,
    pub files: AtomicU64,
    pub runs: AtomicU64,
    /// Purchases on another partition than their item's (archived where the aggregators forward them).
    pub not_home: AtomicU64,
    pub skipped: AtomicU64,
    pub kafka_errors: AtomicU64,
}

/// One owned partition: its position and the run being collected.
struct PartitionRun {
    stream: String,
    position: PositionFile,
    segment: Segment,
    /// A run a crash interrupted: collect exactly `[first, last]` again and publish it under the same names.
    redo: Option<(u64, u64)>,
}

struct ArchiveContext {
    topic: String,
    target: Arc<ArchiveTarget>,
    owned: Mutex<BTreeMap<i32, PartitionRun>>,
    fatal: Mutex<Option<KafkaPathError>>,
    stats: Arc<ArchiverStats>,
}

impl ClientContext for ArchiveContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition is news for the poll loop (`enable.partition.eof`), not an error.
        if matches!(error, KafkaError::PartitionEOF(_))
            || reason.contains("reached end of partition")
        {
            return;
        }
        self.stats.kafka_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "topsellers", "kafka: {error}: {reason}");
    }
}

impl ArchiveContext {
    fn owned(&self) -> MutexGuard<'_, BTreeMap<i32, PartitionRun>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the partition's position and says where to start reading.
    fn take(
        &self,
        partition: i32,
        now_ms: TimestampMs,
    ) -> Result<(PartitionRun, Offset), KafkaPathError> {
        let stream = stream_name(&self.topic, partition);
        let (position, stored) = PositionFile::open(&self.target, &stream).map_err(archive_err)?;
        let mut run = PartitionRun {
            segment: Segment::new(&stream),
            stream,
            position,
            redo: None,
        };
        let start = match run.position.current() {
            _ if !stored => Offset::Stored, // the group's committed offset, else the earliest
            p => match p.publishing {
                Some((first, last)) => {
                    run.redo = Some((first, last));
                    // The run's name starts at `first` even if that message is gone by now.
                    run.segment.extend_to(first, now_ms);
                    Offset::Offset(first as i64)
                }
                None => Offset::Offset(p.archived_through as i64 + 1),
            },
        };
        Ok((run, start))
    }
}

impl ConsumerContext for ArchiveContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut owned = self.owned();
                let wanted: Vec<i32> = tpl
                    .elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                for partition in wanted {
                    match self.take(partition, wall_clock_ms()) {
                        Ok((run, start)) => {
                            let _ = tpl.set_partition_offset(&self.topic, partition, start);
                            owned.insert(partition, run);
                        }
                        Err(e) => {
                            tracing::error!(target: "topsellers", "cannot archive partition {partition}: {e}");
                            self.fatal
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
                self.stats
                    .partitions_owned
                    .store(owned.len() as u64, Ordering::Relaxed);
                tracing::info!(target: "topsellers", partitions = ?owned.keys().collect::<Vec<_>>(), "archiving partitions");
                drop(owned);
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(target: "topsellers", "assigning partitions failed: {e}");
                }
            }
            _ => {
                // Whatever was buffered is dropped, not published: the next owner starts from the committed
                // position, and two owners must never publish the same offsets.
                self.owned().clear();
                self.stats.partitions_owned.store(0, Ordering::Relaxed);
                let _ = consumer.unassign();
            }
        }
    }
}

/// Joins the archive group and archives until `stop` is raised; then publishes what every owned partition
/// buffered and leaves the group.
pub fn run(
    kafka: &KafkaSettings,
    archive: &ArchiveSettings,
    limits: &Limits,
    stats: Arc<ArchiverStats>,
    stop: Arc<AtomicBool>,
) -> Result<(), KafkaPathError> {
    let partitions = crate::admin::partition_count(kafka, &kafka.topic)?;
    let target = Arc::new(ArchiveTarget::open(archive).map_err(archive_err)?);
    let mut decoder = Decoder::new(limits).map_err(|e| KafkaPathError::Config(e.to_string()))?;
    let context = ArchiveContext {
        topic: kafka.topic.clone(),
        target: target.clone(),
        owned: Mutex::new(BTreeMap::new()),
        fatal: Mutex::new(None),
        stats: stats.clone(),
    };
    let consumer: BaseConsumer<ArchiveContext> = kafka
        .client_config()
        .set("group.id", &archive.kafka_group_id)
        // Offsets are committed by hand, after the files and the position they describe.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Tells when an interrupted run's last offsets will not come (see `finish_interrupted_run`).
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "roundrobin")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create_with_context(context)
        .map_err(|e| KafkaPathError::Client {
            what: "create the Kafka consumer of the archive".into(),
            detail: e.to_string(),
        })?;
    consumer
        .subscribe(&[&kafka.topic])
        .map_err(|e| KafkaPathError::Client {
            what: format!("subscribe to {}", kafka.topic),
            detail: e.to_string(),
        })?;
    tracing::info!(target: "topsellers", topic = %kafka.topic, partitions, group = %archive.kafka_group_id, "archive joined its group");
    let mut publisher = Publisher {
        settings: archive.clone(),
        target,
        abort_after: std::env::var(ABORT_AFTER_PUBLISHES_ENV)
            .ok()
            .and_then(|v| v.parse().ok()),
        stats: stats.clone(),
    };
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                stats.messages.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = handle(&consumer, &mut publisher, &mut decoder, &msg, partitions) {
                    break Err(e);
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                if let Err(e) = finish_interrupted_run(&consumer, &mut publisher, partition) {
                    break Err(e);
                }
            }
            None => {}
            Some(Err(e)) => {
                stats.kafka_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "topsellers", "kafka: {e}");
            }
        }
        if let Some(fatal) = consumer
            .context()
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            break Err(fatal);
        }
        if let Err(e) = publish_due(&consumer, &mut publisher, false) {
            break Err(e);
        }
    };
    // Leaving: publish what is buffered, so a quiet topic's last purchases do not wait for the next start.
    let flushed = publish_due(&consumer, &mut publisher, true);
    consumer.unsubscribe();
    result.and(flushed)
}

fn handle(
    consumer: &BaseConsumer<ArchiveContext>,
    publisher: &mut Publisher,
    decoder: &mut Decoder,
    msg: &BorrowedMessage<'_>,
    partitions: u32,
) -> Result<(), KafkaPathError> {
    let ctx = consumer.context();
    let partition = msg.partition();
    let offset = msg.offset() as u64;
    let now = wall_clock_ms();
    let mut owned = ctx.owned();
    let Some(run) = owned.get_mut(&partition) else {
        return Ok(()); // revoked meanwhile
    };
    if let Some((_, last)) = run.redo {
        if offset > last {
            // The interrupted run ends before this message (its last offsets were not messages): finish it first.
            run.segment.extend_to(last, now);
            publisher.publish(consumer, partition, run)?;
        }
    }
    run.segment.extend_to(offset, now);
    match decoder.decode(msg) {
        Decoded::Records { records, .. } => {
            for (index, record) in records.into_iter().enumerate() {
                match record {
                    Parsed::Event(mut event) => {
                        if home_partition(&event.item_id, partitions) as i32 != partition {
                            ctx.stats.not_home.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        if event.event_id.as_deref().is_none_or(str::is_empty) {
                            event.event_id = Some(format!("{}:{offset}:{index}", run.stream));
                        }
                        run.segment.push(offset, event, now).map_err(archive_err)?;
                    }
                    Parsed::Skipped(_) | Parsed::Rejected(_) => {
                        ctx.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Decoded::Tick(_) => {}
        Decoded::Malformed(_) => {
            ctx.stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
    let redo_done = run.redo.is_some_and(|(_, last)| offset >= last);
    if redo_done || (run.redo.is_none() && run.segment.is_full(&publisher.settings)) {
        publisher.publish(consumer, partition, run)?;
    }
    Ok(())
}

/// Publishes every owned partition's run that is due by age (or, when `all`, every non-empty one). An interrupted
/// run is never published here: only whole, once its last offset (or the partition's end) is read, since publishing
/// it short would replace its files by smaller ones and commit past the rest.
fn publish_due(
    consumer: &BaseConsumer<ArchiveContext>,
    publisher: &mut Publisher,
    all: bool,
) -> Result<(), KafkaPathError> {
    let now = wall_clock_ms();
    let mut owned = consumer.context().owned();
    for (&partition, run) in owned.iter_mut() {
        if run.redo.is_some() {
            continue;
        }
        if run.segment.is_due(&publisher.settings, now) || (all && run.segment.range().is_some()) {
            publisher.publish(consumer, partition, run)?;
        }
    }
    Ok(())
}

/// The end of `partition` was reached: an interrupted run still waiting for its last offsets will not get them
/// (they were not messages), so it is complete.
fn finish_interrupted_run(
    consumer: &BaseConsumer<ArchiveContext>,
    publisher: &mut Publisher,
    partition: i32,
) -> Result<(), KafkaPathError> {
    let mut owned = consumer.context().owned();
    let Some(run) = owned.get_mut(&partition) else {
        return Ok(());
    };
    if let Some((_, last)) = run.redo {
        run.segment.extend_to(last, wall_clock_ms());
        publisher.publish(consumer, partition, run)?;
    }
    Ok(())
}

struct Publisher {
    settings: ArchiveSettings,
    target: Arc<ArchiveTarget>,
    abort_after: Option<u64>,
    stats: Arc<ArchiverStats>,
}

impl Publisher {
    /// Record, publish, commit the position; then the group's offset (best effort: the position is the truth).
    fn publish(
        &mut self,
        consumer: &BaseConsumer<ArchiveContext>,
        partition: i32,
        run: &mut PartitionRun,
    ) -> Result<(), KafkaPathError> {
        let segment = std::mem::replace(&mut run.segment, Segment::new(&run.stream));
        run.redo = None;
        let Some((first, last)) = segment.range() else {
            return Ok(());
        };
        if segment.rows() > 0 {
            run.position.begin(first, last).map_err(archive_err)?;
            let stats = segment.publish(&self.target).map_err(archive_err)?;
            self.stats.events.fetch_add(stats.events, Ordering::Relaxed);
            self.stats.files.fetch_add(stats.files, Ordering::Relaxed);
            let runs = self.stats.runs.fetch_add(1, Ordering::Relaxed) + 1;
            if self.abort_after == Some(runs) {
                std::process::abort();
            }
        }
        run.position.commit(last).map_err(archive_err)?;
        let mut tpl = TopicPartitionList::new();
        let topic = consumer.context().topic.clone();
        if tpl
            .add_partition_offset(&topic, partition, Offset::Offset(last as i64 + 1))
            .is_ok()
        {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                tracing::warn!(target: "topsellers", "committing the archive group's offset failed ({e}); the position file has it");
            }
        }
        Ok(())
    }
}

/// `kafka-<topic>-p<partition>`, the topic's characters outside `[A-Za-z0-9_-]` replaced by `_`.
pub fn stream_name(topic: &str, partition: i32) -> String {
    let topic: String = topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("kafka-{topic}-p{partition}")
}

fn archive_err(e: topsellers_archive::ArchiveError) -> KafkaPathError {
    KafkaPathError::Archive(e.to_string())
}

fn wall_clock_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
