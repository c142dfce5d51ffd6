//! A member of the aggregators' consumer group.
//!
//! Each partition this process owns has its own [`Engine`]. The protocol that keeps results exact:
//!
//! 1. **Claim on assignment.** When the group hands this process a partition, it claims the partition in the
//!    [`PartitionStore`] (the partition's epoch goes up by one, fencing out any earlier owner that may still be
//!    running), restores the engine from the partition's last checkpoint and starts reading at the offset
//!    stored *with* that checkpoint, not at the group's committed offset. State and position can never
//!    disagree, so no event is lost or counted twice, however the partition moved.
//! 2. **Checkpoint = state + offset, atomically, fenced.** Every `checkpoint_interval` (or
//!    `checkpoint_every_records`), and when a partition is revoked or the process stops, the engine state is
//!    saved together with the next offset to read and the current results. A write from an owner whose epoch
//!    is no longer current is refused, and that owner drops the partition.
//! 3. **Results more often, never backwards.** Results (the partition's snapshot, tagged with its offset) are
//!    written every `results_interval` while they change. A new owner that resumes from an older checkpoint
//!    than the results the previous owner published stays silent until it has read past them, so servers
//!    never see counts go back.
//! 4. **Side outputs before checkpoints.** Dead letters and forwarded messages are produced to Kafka and
//!    flushed before any checkpoint that moves past them, so a crash re-sends them rather than losing them
//!    (a forwarded event keeps or is given a stable event id, so the re-send is dropped as a duplicate).
//!
//! A message whose item belongs to another partition (an outside producer that did not key by item id, or
//! keyed with another partitioner) is forwarded to the item's partition instead of being counted here: an
//! item counted in two partitions would make the merged top lists wrong.

use crate::admin::ensure_topics;
use crate::publisher::DeliveryTally;
use crate::settings::KafkaSettings;
use crate::wire::{encode_event, Decoded, Decoder, NEWEST_HEADER};
use crate::KafkaPathError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use topsellers_engine::{Admission, Engine, EngineConfig};
use topsellers_ingest::{Limits, Parsed};
use topsellers_model::home_partition;
use topsellers_model::{DeadLetter, PurchaseEvent, TimestampMs};
use topsellers_store::{
    PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding, StoreError,
};

/// How an aggregator paces its work.
#[derive(Clone, Debug)]
pub struct AggregatorOptions {
    pub engine: EngineConfig,
    pub limits: Limits,
    /// How often a partition whose results changed writes them.
    pub results_interval: Duration,
    /// A partition's state is checkpointed at least this often while it changes...
    pub checkpoint_interval: Duration,
    /// ... or after this many messages, whichever comes first.
    pub checkpoint_every_records: u64,
}

/// What the aggregator has done, for metrics and tests. Every field only grows, except `partitions_owned`.
#[derive(Debug, Default, Serialize)]
pub struct AggregatorStats {
    pub messages: AtomicU64,
    pub events_accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub late: AtomicU64,
    pub skipped: AtomicU64,
    pub dead_letters: AtomicU64,
    pub forwarded: AtomicU64,
    pub ticks: AtomicU64,
    pub checkpoints: AtomicU64,
    pub results_published: AtomicU64,
    pub fenced: AtomicU64,
    pub partitions_owned: AtomicU64,
    pub kafka_errors: AtomicU64,
    pub store_errors: AtomicU64,
    /// Messages in the owned partitions not read yet (high watermark minus position), from librdkafka's
    /// statistics every second.
    pub consumer_lag: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One owned partition.
struct PartitionTask {
    epoch: u64,
    engine: Engine,
    /// Offset of the next message to read.
    next_offset: i64,
    /// Results at or below this offset were published by an earlier owner: stay silent until past it.
    results_floor: i64,
    results_version: u64,
    results_dirty: bool,
    last_results: Instant,
    last_checkpoint: Instant,
    since_checkpoint: u64,
}

/// State shared between the poll loop and the rebalance callback (which librdkafka runs inside `poll`, on the
/// same thread: the lock is never contended, it only satisfies `Sync`).
struct Owned {
    tasks: BTreeMap<i32, PartitionTask>,
    /// A problem that must stop the process (a checkpoint that cannot be restored, a store that stays
    /// unreachable while a partition is claimed). The loop exits with it.
    fatal: Option<KafkaPathError>,
}

struct GroupContext {
    topic: String,
    partitions: u32,
    options: AggregatorOptions,
    store: Arc<dyn PartitionStore>,
    side: Arc<ThreadedProducer<DeliveryTally>>,
    stats: Arc<AggregatorStats>,
    owned: Mutex<Owned>,
}

impl GroupContext {
    fn owned(&self) -> MutexGuard<'_, Owned> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for GroupContext {
    /// librdkafka's statistics (every second; run inside `poll`, so `owned` is free): the lag of the owned
    /// partitions, measured from our own positions, which are where the state stands.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let owned = self.owned();
        let lag: i64 = owned
            .tasks
            .iter()
            .filter_map(|(p, task)| {
                let hi = topic.partitions.get(p)?.hi_offset;
                (hi >= 0).then(|| (hi - task.next_offset).max(0))
            })
            .sum();
        self.stats.consumer_lag.store(lag as u64, Ordering::Relaxed);
    }
}

impl ConsumerContext for GroupContext {
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
                    match self.claim(partition) {
                        Ok(task) => {
                            let _ = tpl.set_partition_offset(
                                &self.topic,
                                partition,
                                Offset::Offset(task.next_offset),
                            );
                            owned.tasks.insert(partition, task);
                        }
                        Err(e) => {
                            tracing::error!(target: "topsellers", "cannot take partition {partition}: {e}");
                            owned.fatal.get_or_insert(e);
                        }
                    }
                }
                self.stats
                    .partitions_owned
                    .store(owned.tasks.len() as u64, Ordering::Relaxed);
                tracing::info!(target: "topsellers", partitions = ?owned.tasks.keys().collect::<Vec<_>>(), "partitions assigned");
                drop(owned);
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(target: "topsellers", "assigning partitions failed: {e}");
                }
            }
            _ => {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::warn!(target: "topsellers", "rebalance error {err:?}: giving up all partitions");
                }
                let mut owned = self.owned();
                let tasks = std::mem::take(&mut owned.tasks);
                // Best effort: a partition whose final checkpoint fails resumes from its previous one.
                if let Err(e) = self.checkpoint_all(tasks) {
                    owned.fatal.get_or_insert(e);
                }
                self.stats.partitions_owned.store(0, Ordering::Relaxed);
                drop(owned);
                let _ = consumer.unassign();
            }
        }
    }
}

impl GroupContext {
    /// Claims `partition` in the store and rebuilds its engine, retrying a store that does not answer for a
    /// while (every partition of the group waits on it anyway).
    fn claim(&self, partition: i32) -> Result<PartitionTask, KafkaPathError> {
        let mut pause = Duration::from_millis(100);
        let started = Instant::now();
        let claim = loop {
            match self.store.claim(partition as u32) {
                Ok(c) => break c,
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    bump(&self.stats.store_errors);
                    tracing::warn!(target: "topsellers", "claiming partition {partition} failed ({e}); retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let (engine, next_offset) = match &claim.checkpoint {
            Some(cp) => {
                let engine =
                    Engine::restore(self.options.engine.clone(), &cp.state).map_err(|e| {
                        KafkaPathError::Config(format!(
                            "the checkpoint of partition {partition} in {} cannot be restored ({e}); it was \
                             written by other engine settings or another version",
                            self.store.describe()
                        ))
                    })?;
                (engine, cp.next_offset)
            }
            None => (
                Engine::new(self.options.engine.clone())
                    .map_err(|e| KafkaPathError::Config(e.to_string()))?,
                0,
            ),
        };
        let (results_floor, results_version) =
            claim.results.map_or((0, 0), |r| (r.next_offset, r.version));
        tracing::info!(target: "topsellers", partition, epoch = claim.epoch, next_offset, results_floor, "claimed partition");
        Ok(PartitionTask {
            epoch: claim.epoch,
            engine,
            next_offset,
            results_floor,
            results_version,
            results_dirty: true,
            last_results: Instant::now(),
            last_checkpoint: Instant::now(),
            since_checkpoint: 0,
        })
    }

    /// Final checkpoints of partitions being given up.
    fn checkpoint_all(&self, tasks: BTreeMap<i32, PartitionTask>) -> Result<(), KafkaPathError> {
        if tasks.is_empty() {
            return Ok(());
        }
        self.flush_side()?;
        for (partition, mut task) in tasks {
            match self.save_checkpoint(partition, &mut task) {
                Ok(()) | Err(KafkaPathError::Store(StoreError::Fenced { .. })) => {}
                Err(e) => {
                    tracing::warn!(target: "topsellers", "final checkpoint of partition {partition} failed ({e}); the next owner resumes from the one before")
                }
            }
        }
        Ok(())
    }

    /// Dead letters and forwarded events must be in Kafka before a checkpoint moves past their messages.
    fn flush_side(&self) -> Result<(), KafkaPathError> {
        let _ = self.side.flush(Duration::from_secs(30));
        let tally = self.side.context();
        if tally.failed() > 0 || self.side.in_flight_count() > 0 {
            return Err(KafkaPathError::Delivery {
                count: tally.failed().max(self.side.in_flight_count() as u64),
                first: tally.first_failure().unwrap_or_else(|| {
                    "dead letters or forwarded events still unacknowledged after 30 s".into()
                }),
            });
        }
        Ok(())
    }

    /// Saves state, offset and results together. Skipped (Ok) while the partition is still below the results an
    /// earlier owner published: those results must not be overwritten by older ones, and the checkpoint the
    /// partition was restored from is still a valid place to resume from.
    fn save_checkpoint(
        &self,
        partition: i32,
        task: &mut PartitionTask,
    ) -> Result<(), KafkaPathError> {
        if task.next_offset < task.results_floor {
            return Ok(());
        }
        let checkpoint = PartitionCheckpoint {
            next_offset: task.next_offset,
            state: task.engine.checkpoint(),
        };
        let results = self.results(task);
        match self
            .store
            .save_checkpoint(partition as u32, task.epoch, &checkpoint, &results)
        {
            Ok(()) => {
                bump(&self.stats.checkpoints);
                task.results_version = results.snapshot.version;
                task.results_dirty = false;
                task.last_results = Instant::now();
                task.last_checkpoint = Instant::now();
                task.since_checkpoint = 0;
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::Fenced { .. }) {
                    bump(&self.stats.fenced);
                } else {
                    bump(&self.stats.store_errors);
                }
                Err(e.into())
            }
        }
    }

    fn results(&self, task: &mut PartitionTask) -> PartitionResults {
        PartitionResults {
            next_offset: task.next_offset,
            snapshot: task.engine.snapshot(
                task.results_version + 1,
                wall_clock_ms(),
                &self.options.limits.currency,
            ),
        }
    }
}

fn wall_clock_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimestampMs)
}

/// The settings that give stored checkpoints and results their meaning: engine, currency, topic, partitions.
pub fn store_binding(
    settings: &KafkaSettings,
    options: &AggregatorOptions,
    partitions: u32,
) -> StoreBinding {
    #[derive(Serialize)]
    struct Meaning<'a> {
        topic: &'a str,
        engine: &'a EngineConfig,
        currency: &'a str,
        price_decimals: u32,
    }
    let meaning = Meaning {
        topic: &settings.topic,
        engine: &options.engine,
        currency: &options.limits.currency,
        price_decimals: options.limits.price_decimals,
    };
    StoreBinding {
        partitions,
        settings: serde_json::to_string(&meaning).unwrap_or_default(),
    }
}

/// Joins the group and aggregates until `stop` is raised (then checkpoints every owned partition and leaves the
/// group) or a fatal error. Kafka being unreachable is not fatal: it is reported and retried.
pub fn run(
    settings: &KafkaSettings,
    options: AggregatorOptions,
    store: Arc<dyn PartitionStore>,
    stats: Arc<AggregatorStats>,
    stop: Arc<AtomicBool>,
) -> Result<(), KafkaPathError> {
    let mut pause = Duration::from_millis(250);
    let partitions = loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        match ensure_topics(settings) {
            Ok(n) => break n,
            Err(e @ KafkaPathError::Unreachable { .. }) => {
                bump(&stats.kafka_errors);
                tracing::warn!(target: "topsellers", "{e}; retrying in {pause:?}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    };
    store.bind(&store_binding(settings, &options, partitions))?;
    let mut decoder =
        Decoder::new(&options.limits).map_err(|e| KafkaPathError::Config(e.to_string()))?;
    let side: ThreadedProducer<DeliveryTally> = settings
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.delivery_timeout_ms.to_string(),
        )
        .set("linger.ms", "5")
        .create_with_context(DeliveryTally::default())
        .map_err(|e| KafkaPathError::Client {
            what: "create the Kafka producer for dead letters".into(),
            detail: e.to_string(),
        })?;
    let context = GroupContext {
        topic: settings.topic.clone(),
        partitions,
        options,
        store,
        side: Arc::new(side),
        stats: stats.clone(),
        owned: Mutex::new(Owned {
            tasks: BTreeMap::new(),
            fatal: None,
        }),
    };
    let consumer: BaseConsumer<GroupContext> = settings
        .client_config()
        .set("group.id", &settings.group_id)
        // Offsets live with the checkpoints; the group's committed offsets are only written for monitoring
        // (consumer lag in the usual tools).
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Only messages of committed transactions, should any producer use them.
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "roundrobin")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("statistics.interval.ms", "1000")
        .create_with_context(context)
        .map_err(|e| KafkaPathError::Client {
            what: "create the Kafka consumer".into(),
            detail: e.to_string(),
        })?;
    consumer
        .subscribe(&[&settings.topic])
        .map_err(|e| KafkaPathError::Client {
            what: format!("subscribe to {}", settings.topic),
            detail: e.to_string(),
        })?;
    tracing::info!(target: "topsellers", topic = %settings.topic, partitions, group = %settings.group_id, "aggregator joined the group");
    let mut loop_state = LoopState {
        next_pace: Instant::now(),
        dead_letter_topic: settings.dead_letter_topic.clone(),
        value: Vec::new(),
        last_error_log: None,
    };
    let mut topic_watch = TopicWatch::new();
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => loop_state.handle(consumer.context(), &mut decoder, &msg),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => {
                bump(&stats.kafka_errors);
                loop_state.log_kafka_error(&e);
            }
        }
        let ctx = consumer.context();
        if let Some(fatal) = ctx.owned().fatal.take() {
            break Err(fatal);
        }
        // Pacing looks at every owned partition's clocks: once per 10 ms is plenty (per message, reading the
        // clock alone cost several percent of the loop). Store writes (an fsync each, on SQLite) block this
        // loop, so under load the next pacing waits three times as long as the last one took: at most about a
        // quarter of the time goes to writing results, and results come a little less often instead of the
        // partition falling behind.
        if Instant::now() >= loop_state.next_pace {
            let started = Instant::now();
            if let Err(e) = loop_state.pace(&consumer) {
                break Err(e);
            }
            loop_state.next_pace = Instant::now() + PACE_EVERY.max(started.elapsed() * 3);
        }
        topic_watch.check(&consumer, &settings.topic, &stats);
    };
    // Leaving: checkpoint everything owned, so the next owner starts exactly here.
    let ctx = consumer.context();
    let tasks = std::mem::take(&mut ctx.owned().tasks);
    let final_checkpoints = ctx.checkpoint_all(tasks);
    consumer.unsubscribe();
    result.and(final_checkpoints)
}

const PACE_EVERY: Duration = Duration::from_millis(10);

/// An aggregator that owns no partition counts nothing, and nothing else would say so: librdkafka just
/// revokes everything when the topic is deleted. While none is owned, look at the topic's metadata now and
/// then and say loudly why.
struct TopicWatch {
    next_check: Instant,
}

impl TopicWatch {
    /// Long enough for a first assignment or a rebalance to finish quietly.
    const EVERY: Duration = Duration::from_secs(20);

    fn new() -> Self {
        TopicWatch {
            next_check: Instant::now() + Self::EVERY,
        }
    }

    fn check(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        topic: &str,
        stats: &AggregatorStats,
    ) {
        if Instant::now() < self.next_check {
            return;
        }
        self.next_check = Instant::now() + Self::EVERY;
        if stats.partitions_owned.load(Ordering::Relaxed) > 0 {
            return;
        }
        // Assigned by Kafka but not held: every claim was fenced off since.
        let assigned = consumer.assignment().map_or(0, |list| list.count());
        if assigned > 0 {
            tracing::error!(
                target: "topsellers",
                "Kafka assigned {assigned} partition(s) of topic {topic} to this aggregator but it holds none: its \
                 claims were fenced off in the results store (another aggregator claimed them, or the store lost its \
                 data); it counts nothing until it is restarted, which claims them again"
            );
            return;
        }
        let metadata = match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(metadata) => metadata,
            // Unreachable brokers are reported by the poll loop already.
            Err(_) => return,
        };
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        match found {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                tracing::warn!(
                    target: "topsellers",
                    "this aggregator owns none of the {} partitions of topic {topic} and counts nothing; \
                     more aggregators run in the group than the topic has partitions (stop this one, or add \
                     partitions)",
                    t.partitions().len()
                );
            }
            _ => {
                bump(&stats.kafka_errors);
                tracing::error!(
                    target: "topsellers",
                    "topic {topic} does not exist on the Kafka cluster any more (deleted?): this aggregator \
                     owns no partitions and counts nothing; restart the aggregators to create it again, or \
                     fix kafka.topic"
                );
            }
        }
    }
}

struct LoopState {
    next_pace: Instant,
    dead_letter_topic: String,
    value: Vec<u8>,
    last_error_log: Option<Instant>,
}

impl LoopState {
    fn log_kafka_error(&mut self, e: &KafkaError) {
        // librdkafka reconnects by itself with back-off; say so once in a while, not for every retry.
        if self
            .last_error_log
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            tracing::warn!(target: "topsellers", "Kafka: {e} (retrying; results keep their last values meanwhile)");
            self.last_error_log = Some(Instant::now());
        }
    }

    fn handle(&mut self, ctx: &GroupContext, decoder: &mut Decoder, msg: &BorrowedMessage<'_>) {
        let partition = msg.partition();
        let offset = msg.offset();
        let mut owned = ctx.owned();
        let Some(task) = owned.tasks.get_mut(&partition) else {
            return; // fenced out and dropped; the new owner reads it
        };
        if offset < task.next_offset {
            return; // already in the state (a re-delivery after a seek)
        }
        bump(&ctx.stats.messages);
        match decoder.decode(msg) {
            Decoded::Tick(now_ms) => {
                task.engine.tick(now_ms);
                bump(&ctx.stats.ticks);
            }
            Decoded::Malformed(reason) => {
                self.dead_letter(ctx, msg, &reason);
            }
            Decoded::Records {
                newest_before_ms,
                records,
            } => {
                if let Some(t) = newest_before_ms {
                    task.engine.tick(t);
                }
                for (i, record) in records.into_iter().enumerate() {
                    match record {
                        Parsed::Event(event) => {
                            let home = home_partition(&event.item_id, ctx.partitions) as i32;
                            if home != partition {
                                self.forward(ctx, msg, i, event, home, newest_before_ms);
                                continue;
                            }
                            match task.engine.admit(&event) {
                                Admission::Accepted => bump(&ctx.stats.events_accepted),
                                Admission::Duplicate => bump(&ctx.stats.duplicates),
                                Admission::Late { watermark_ms } => {
                                    bump(&ctx.stats.late);
                                    let location = format!(
                                        "partition {partition} offset {offset} record {}",
                                        i + 1
                                    );
                                    let letter = topsellers_ingest::late_letter(
                                        &event,
                                        watermark_ms,
                                        format!("kafka:{}", msg.topic()),
                                        location,
                                        wall_clock_ms(),
                                    );
                                    self.dead_letter_record(ctx, msg, letter);
                                }
                            }
                        }
                        Parsed::Skipped(_) => bump(&ctx.stats.skipped),
                        Parsed::Rejected(letter) => self.dead_letter_record(ctx, msg, letter),
                    }
                }
            }
        }
        task.next_offset = offset + 1;
        task.since_checkpoint += 1;
        task.results_dirty = true;
    }

    /// Sends an event to the partition of its item, with a stable id so a re-send after a crash is a duplicate.
    fn forward(
        &mut self,
        ctx: &GroupContext,
        msg: &BorrowedMessage<'_>,
        index: usize,
        mut event: PurchaseEvent,
        home: i32,
        newest_before_ms: Option<TimestampMs>,
    ) {
        if event.event_id.as_deref().is_none_or(str::is_empty) {
            event.event_id = Some(format!(
                "kafka:{}/{}@{}#{index}",
                msg.topic(),
                msg.partition(),
                msg.offset()
            ));
        }
        encode_event(&event, ctx.options.limits.price_decimals, &mut self.value);
        let newest = newest_before_ms.map(|t| t.to_string());
        let mut record = BaseRecord::to(&ctx.topic)
            .key(event.item_id.as_bytes())
            .payload(&self.value)
            .partition(home);
        if let Some(t) = newest.as_deref() {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: NEWEST_HEADER,
                value: Some(t),
            }));
        }
        send_side(&ctx.side, record);
        bump(&ctx.stats.forwarded);
    }

    fn dead_letter(&mut self, ctx: &GroupContext, msg: &BorrowedMessage<'_>, reason: &str) {
        #[derive(Serialize)]
        struct KafkaDeadLetter<'a> {
            topic: &'a str,
            partition: i32,
            offset: i64,
            reason: &'a str,
            at_ms: TimestampMs,
        }
        let letter = KafkaDeadLetter {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            reason,
            at_ms: wall_clock_ms(),
        };
        self.send_dead_letter(ctx, &letter);
    }

    fn dead_letter_record(
        &mut self,
        ctx: &GroupContext,
        msg: &BorrowedMessage<'_>,
        letter: DeadLetter,
    ) {
        // The letter names the reason, field and fix itself; the message's position is added.
        #[derive(Serialize)]
        struct KafkaDeadLetter<'a> {
            topic: &'a str,
            partition: i32,
            offset: i64,
            #[serde(flatten)]
            letter: &'a DeadLetter,
        }
        let letter = KafkaDeadLetter {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            letter: &letter,
        };
        self.send_dead_letter(ctx, &letter);
    }

    fn send_dead_letter<T: Serialize>(&mut self, ctx: &GroupContext, letter: &T) {
        self.value.clear();
        let _ = serde_json::to_writer(&mut self.value, letter);
        let record: BaseRecord<'_, [u8], [u8], ()> =
            BaseRecord::to(&self.dead_letter_topic).payload(self.value.as_slice());
        send_side(&ctx.side, record);
        bump(&ctx.stats.dead_letters);
    }

    /// Publishes results and writes checkpoints that are due.
    fn pace(&mut self, consumer: &BaseConsumer<GroupContext>) -> Result<(), KafkaPathError> {
        let ctx = consumer.context();
        let options = &ctx.options;
        let mut owned = ctx.owned();
        let mut lost = Vec::new();
        let due_checkpoint = owned.tasks.values().any(|t| {
            t.since_checkpoint > 0
                && (t.last_checkpoint.elapsed() >= options.checkpoint_interval
                    || t.since_checkpoint >= options.checkpoint_every_records)
        });
        if due_checkpoint {
            ctx.flush_side()?;
        }
        let mut committed = TopicPartitionList::new();
        for (&partition, task) in owned.tasks.iter_mut() {
            let checkpoint_now = task.since_checkpoint > 0
                && task.next_offset >= task.results_floor
                && (task.last_checkpoint.elapsed() >= options.checkpoint_interval
                    || task.since_checkpoint >= options.checkpoint_every_records);
            let outcome = if checkpoint_now {
                let r = ctx.save_checkpoint(partition, task);
                if r.is_ok() {
                    let _ = committed.add_partition_offset(
                        &ctx.topic,
                        partition,
                        Offset::Offset(task.next_offset),
                    );
                }
                r
            } else if task.results_dirty
                && task.last_results.elapsed() >= options.results_interval
                && task.next_offset >= task.results_floor
            {
                let results = ctx.results(task);
                match ctx
                    .store
                    .save_results(partition as u32, task.epoch, &results)
                {
                    Ok(()) => {
                        bump(&ctx.stats.results_published);
                        task.results_version = results.snapshot.version;
                        task.results_dirty = false;
                        task.last_results = Instant::now();
                        Ok(())
                    }
                    Err(e) => {
                        if matches!(e, StoreError::Fenced { .. }) {
                            bump(&ctx.stats.fenced);
                        } else {
                            bump(&ctx.stats.store_errors);
                        }
                        // Try again at the next interval, not on every poll.
                        task.last_results = Instant::now();
                        Err(e.into())
                    }
                }
            } else {
                Ok(())
            };
            match outcome {
                Ok(()) => {}
                Err(KafkaPathError::Store(StoreError::Fenced { .. })) => {
                    tracing::warn!(target: "topsellers", partition, "another aggregator has claimed this partition; dropping it");
                    lost.push(partition);
                }
                Err(e) => {
                    tracing::warn!(target: "topsellers", partition, "writing to the results store failed: {e} (retrying)");
                }
            }
        }
        for p in lost {
            owned.tasks.remove(&p);
        }
        ctx.stats
            .partitions_owned
            .store(owned.tasks.len() as u64, Ordering::Relaxed);
        drop(owned);
        if committed.count() > 0 {
            // For monitoring only (lag in kafka-consumer-groups); correctness rests on the checkpoints.
            let _ = consumer.commit(&committed, CommitMode::Async);
        }
        Ok(())
    }
}

fn send_side<K: rdkafka::message::ToBytes + ?Sized, P: rdkafka::message::ToBytes + ?Sized>(
    side: &ThreadedProducer<DeliveryTally>,
    mut record: BaseRecord<'_, K, P, ()>,
) {
    loop {
        match side.send(record) {
            Ok(()) => return,
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                back,
            )) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => {
                // Counted as a failed delivery: the next checkpoint refuses to move past it.
                side.context().record_failure(e.to_string());
                return;
            }
        }
    }
}
