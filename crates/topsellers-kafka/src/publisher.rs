//! Writing scrubbed purchase events to the purchases topic.
//!
//! The producer is idempotent with `acks=all`: librdkafka retries a failed send without creating duplicates
//! or reordering, and a message counts as delivered only when every in-sync replica has it. A message that
//! still fails when `kafka.delivery_timeout_ms` runs out is reported by [`Publisher::finish`] (and
//! [`Publisher::failures`]), never dropped silently.

use crate::admin::ensure_topics;
use crate::settings::KafkaSettings;
use crate::wire::{encode_event_keyed, encode_tick, NEWEST_HEADER, RECORD_HEADER};
use crate::KafkaPathError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use topsellers_model::home_partition;
use topsellers_model::{PurchaseEvent, TimestampMs};

/// Counts what the broker acknowledged and what failed for good.
#[derive(Default)]
pub struct DeliveryTally {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl DeliveryTally {
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub(crate) fn first_failure(&self) -> Option<String> {
        self.first_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A message that could not even be queued counts as a failed delivery.
    pub(crate) fn record_failure(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_failure.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(error);
        }
    }
}

impl ClientContext for DeliveryTally {}

impl ProducerContext for DeliveryTally {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.record_failure(e.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishStats {
    pub events: u64,
    pub ticks: u64,
    pub delivered: u64,
    pub failed: u64,
}

pub struct Publisher {
    producer: ThreadedProducer<DeliveryTally>,
    topic: String,
    partitions: u32,
    price_decimals: u32,
    /// Newest event time published so far: the header of the next event, and the final tick.
    newest_ms: Option<TimestampMs>,
    events: u64,
    ticks: u64,
    value: Vec<u8>,
    delivery_timeout: Duration,
}

impl Publisher {
    /// Connects (retrying while the cluster is unreachable, up to `kafka.delivery_timeout_ms`), creates the
    /// topics if asked to, and learns the partition count.
    pub fn connect(
        settings: &KafkaSettings,
        price_decimals: u32,
    ) -> Result<Publisher, KafkaPathError> {
        let delivery_timeout = Duration::from_millis(settings.delivery_timeout_ms);
        let started = Instant::now();
        let mut pause = Duration::from_millis(200);
        let partitions = loop {
            match ensure_topics(settings) {
                Ok(n) => break n,
                Err(e @ KafkaPathError::Unreachable { .. })
                    if started.elapsed() + pause < delivery_timeout =>
                {
                    tracing::warn!(target: "topsellers", "{e}; retrying in {pause:?}");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        };
        let producer: ThreadedProducer<DeliveryTally> = settings
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                settings.delivery_timeout_ms.to_string(),
            )
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .create_with_context(DeliveryTally::default())
            .map_err(|e| KafkaPathError::Client {
                what: "create the Kafka producer".into(),
                detail: e.to_string(),
            })?;
        Ok(Publisher {
            producer,
            topic: settings.topic.clone(),
            partitions,
            price_decimals,
            newest_ms: None,
            events: 0,
            ticks: 0,
            value: Vec::with_capacity(256),
            delivery_timeout,
        })
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Queues one event for its item's partition. Blocks (serving delivery reports) while librdkafka's queue
    /// is full, so a slow cluster slows the publisher down instead of losing events.
    pub fn publish(&mut self, event: &PurchaseEvent) -> Result<(), KafkaPathError> {
        self.publish_keyed(event, None)
    }

    /// [`Publisher::publish`] with the agent's pseudonymous customer key in the message, when there is one.
    pub fn publish_keyed(
        &mut self,
        event: &PurchaseEvent,
        customer_key: Option<&str>,
    ) -> Result<(), KafkaPathError> {
        encode_event_keyed(event, customer_key, self.price_decimals, &mut self.value);
        let partition = home_partition(&event.item_id, self.partitions) as i32;
        let newest = self.newest_ms.map(|t| t.to_string());
        let headers = newest.as_deref().map(|t| {
            OwnedHeaders::new().insert(Header {
                key: NEWEST_HEADER,
                value: Some(t),
            })
        });
        let mut record = BaseRecord::to(&self.topic)
            .key(event.item_id.as_bytes())
            .payload(&self.value)
            .partition(partition);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        self.send(record)?;
        self.newest_ms = Some(
            self.newest_ms
                .map_or(event.event_time_ms, |t| t.max(event.event_time_ms)),
        );
        self.events += 1;
        Ok(())
    }

    /// Tells every partition that event time may advance to `now_ms` (an idle input, or the end of one).
    pub fn tick_all(&mut self, now_ms: TimestampMs) -> Result<(), KafkaPathError> {
        let value = encode_tick(now_ms);
        for partition in 0..self.partitions {
            let record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&self.topic)
                .payload(value.as_slice())
                .partition(partition as i32)
                .headers(OwnedHeaders::new().insert(Header {
                    key: RECORD_HEADER,
                    value: Some("tick"),
                }));
            self.send(record)?;
        }
        self.ticks += 1;
        Ok(())
    }

    fn send<K: rdkafka::message::ToBytes + ?Sized, P: rdkafka::message::ToBytes + ?Sized>(
        &self,
        mut record: BaseRecord<'_, K, P, ()>,
    ) -> Result<(), KafkaPathError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The producer's own thread serves delivery reports; just give it time.
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    return Err(KafkaPathError::Client {
                        what: format!("queue a message for topic {}", self.topic),
                        detail: e.to_string(),
                    })
                }
            }
        }
    }

    /// Ends the input: a tick with the newest event time to every partition (so all partitions close their
    /// windows at the same time), then waits until everything is acknowledged or has failed for good.
    pub fn finish(&mut self) -> Result<PublishStats, KafkaPathError> {
        if let Some(newest) = self.newest_ms {
            self.tick_all(newest)?;
        }
        self.flush()
    }

    /// Waits for every queued message to be acknowledged (or to fail for good); an error when any failed.
    pub fn flush(&self) -> Result<PublishStats, KafkaPathError> {
        // librdkafka gives up on a message after message.timeout.ms; wait a little longer than that. Short sleeps
        // until nothing is in flight (the producer's own thread serves the delivery reports), not
        // `producer.flush`: rdkafka's flush polls in 100 ms steps that run to their end even when the last
        // acknowledgement came at once, so every flush took at least 100 ms (the agent flushes once per batch:
        // ~9 K lines/s). Polling from this thread too, beside the producer's, tripled the agent's CPU.
        let deadline = std::time::Instant::now() + self.delivery_timeout + Duration::from_secs(5);
        // A zero-time flush sends what waits for linger.ms at once.
        let _ = self.producer.flush(Duration::ZERO);
        while self.producer.in_flight_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let stats = self.stats();
        let in_flight = self.producer.in_flight_count();
        if in_flight > 0 {
            return Err(KafkaPathError::Delivery {
                count: in_flight as u64,
                first: "still unacknowledged when kafka.delivery_timeout_ms ran out".into(),
            });
        }
        if stats.failed > 0 {
            return Err(self.failures());
        }
        Ok(stats)
    }

    pub fn stats(&self) -> PublishStats {
        let tally = self.producer.context();
        PublishStats {
            events: self.events,
            ticks: self.ticks,
            delivered: tally.delivered.load(Ordering::Relaxed),
            failed: tally.failed.load(Ordering::Relaxed),
        }
    }

    /// The failures so far as one error.
    pub fn failures(&self) -> KafkaPathError {
        let tally = self.producer.context();
        KafkaPathError::Delivery {
            count: tally.failed.load(Ordering::Relaxed),
            first: tally
                .first_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default(),
        }
    }
}
