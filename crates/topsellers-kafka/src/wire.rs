//! What a message on the purchases topic looks like.
//!
//! - **Purchase:** the value is one purchase in the canonical JSON shape that `POST /v1/purchases` takes (so
//!   `kcat` or any producer can write it by hand), the key is the item id. Our publisher adds the header
//!   [`NEWEST_HEADER`]: the newest event time it had published *before* this event. The aggregator advances
//!   the partition's event time to it before admitting the event, so every partition judges lateness and
//!   slides its windows as one aggregator reading the publisher's sequence would.
//! - **Tick:** header [`RECORD_HEADER`] = `tick`, value `{"tick_ms": <ms>}`: event time may advance to that
//!   time. The publisher sends one to every partition at the end of its input and when its input is idle,
//!   so partitions that got no recent events still close their windows at the same time as the others.

use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde::{Deserialize, Serialize};
use topsellers_ingest::{HttpBodyParser, IngestError, Limits, Parsed};
use topsellers_model::{PurchaseEvent, TimestampMs};

/// Header holding the publisher's newest event time before the message (decimal milliseconds).
pub const NEWEST_HEADER: &str = "topsellers-newest-ms";
/// Header naming a message that is not a purchase (`tick`).
pub const RECORD_HEADER: &str = "topsellers-record";

#[derive(Serialize, Deserialize)]
struct TickValue {
    tick_ms: TimestampMs,
}

/// The value of a tick message.
pub fn encode_tick(now_ms: TimestampMs) -> Vec<u8> {
    serde_json::to_vec(&TickValue { tick_ms: now_ms }).unwrap_or_default()
}

/// The value of a purchase message: canonical JSON, times as epoch milliseconds (exact, and cheap to read
/// back), the price as a decimal string with `price_decimals` digits (exact).
pub fn encode_event(event: &PurchaseEvent, price_decimals: u32, out: &mut Vec<u8>) {
    encode_event_keyed(event, None, price_decimals, out);
}

/// [`encode_event`] with the agent's customer key, when there is one, as `customer_key`.
pub fn encode_event_keyed(
    event: &PurchaseEvent,
    customer_key: Option<&str>,
    price_decimals: u32,
    out: &mut Vec<u8>,
) {
    out.clear();
    topsellers_ingest::encode_canonical(event, customer_key, price_decimals, out);
}

/// One message, read.
#[derive(Debug)]
pub enum Decoded {
    /// Purchases (normally one), each with what the message says about event time before it.
    Records {
        newest_before_ms: Option<TimestampMs>,
        records: Vec<Parsed>,
    },
    Tick(TimestampMs),
    /// Not a purchase nor a tick: why, for the dead-letter topic.
    Malformed(String),
}

/// Reads messages of one topic with the ingest layer's validation and scrubbing: a message from an outside
/// producer is judged exactly like a `POST /v1/purchases` body.
pub struct Decoder {
    parser: HttpBodyParser,
}

impl Decoder {
    pub fn new(limits: &Limits) -> Result<Decoder, IngestError> {
        Ok(Decoder {
            parser: HttpBodyParser::new(limits, 0)?,
        })
    }

    pub fn redactions(&self) -> topsellers_ingest::Redactions {
        self.parser.redactions()
    }

    pub fn decode(&mut self, msg: &BorrowedMessage<'_>) -> Decoded {
        let mut newest_before_ms = None;
        let mut is_tick = false;
        if let Some(headers) = msg.headers() {
            for h in headers.iter() {
                match h.key {
                    NEWEST_HEADER => {
                        newest_before_ms = h
                            .value
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.parse::<TimestampMs>().ok())
                    }
                    RECORD_HEADER => is_tick = h.value == Some(b"tick".as_slice()),
                    _ => {}
                }
            }
        }
        let payload = msg.payload().unwrap_or_default();
        if is_tick {
            return match serde_json::from_slice::<TickValue>(payload) {
                Ok(t) => Decoded::Tick(t.tick_ms),
                Err(e) => Decoded::Malformed(format!(
                    "a tick message must hold {{\"tick_ms\": <epoch milliseconds>}}: {e}"
                )),
            };
        }
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Decoded::Malformed(
                "empty message: a purchase message holds one purchase as a JSON object".into(),
            );
        }
        // The message's log time stands in for "now" when bounding future event times: judging the same
        // message again after a restart must give the same verdict.
        let log_time = msg.timestamp().to_millis().unwrap_or(0);
        self.parser.set_now(log_time);
        self.parser.set_source(format!(
            "kafka:{}/{}@{}",
            msg.topic(),
            msg.partition(),
            msg.offset()
        ));
        Decoded::Records {
            newest_before_ms,
            records: self.parser.parse(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topsellers_ingest::parse_http_body;
    use topsellers_model::CategoryPath;

    #[test]
    fn an_encoded_event_reads_back_unchanged() {
        let event = PurchaseEvent {
            event_id: Some("e-1".into()),
            event_time_ms: 1_700_000_000_123,
            original_time_ms: Some(1_699_999_000_000),
            item_id: "SKU-9".into(),
            item_name: Some("Red \"mug\"".into()),
            category: CategoryPath::parse("home/kitchen").unwrap(),
            quantity: -2,
            unit_price_minor: 1250,
            currency: "GBP".into(),
            country: Some("France".into()),
        };
        let mut out = Vec::new();
        encode_event(&event, 2, &mut out);
        let limits = Limits {
            currency: "GBP".into(),
            ..Limits::default()
        };
        let parsed = parse_http_body(&out, &limits, 1_700_000_000_123);
        match &parsed[..] {
            [Parsed::Event(back)] => assert_eq!(back, &event),
            other => panic!("{other:?} from {}", String::from_utf8_lossy(&out)),
        }
    }
}
