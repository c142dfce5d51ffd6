//! One log4j2 JSON layout event (JsonTemplateLayout, JsonLayout) to a scrubbed purchase or a dead letter.
//!
//! The purchase's fields are looked up by the names of `[agent.log4j2.fields]`, in this order:
//! 1. the event's **message**: a JSON object (a `MapMessage` through a template that does not stringify it), text
//!    that is a JSON object (`logger.info("{\"sku\":...}")`), or any other text read as `key=value` pairs
//!    (`logger.info("purchase sku={} qty={}", ...)`, or a `MapMessage` that JsonLayout wrote as `k="v"` pairs);
//! 2. the event's `contextMap` (JsonLayout's ThreadContext);
//! 3. the event itself, dotted paths allowed: `@timestamp`, `timeMillis`, ThreadContext keys a template flattened
//!    into the event (JsonTemplateLayout's ECS template does), `labels.sku`.
//!
//! Only the named keys are read (the allow-list): the customer's name, e-mail or card in other keys of the message
//! or the ThreadContext are never copied anywhere, and the kept text goes through the same [`RecordBuilder`] as
//! every other input, which redacts personal data in it.
//!
//! With `[agent.customer_key]`, its `field` is looked up in the same places, in the same order, and only its keyed
//! hash is kept ([`Log4j2Parser::parse_keyed`]).

use super::Log4j2Config;
use crate::customer_key::CustomerKey;
use crate::parse::{field_value, lookup, CustomerField, KvPairs};
use crate::raw::RawLine;
use serde_json::{Map, Value};
use std::borrow::Cow;
use topsellers_ingest::{
    Field, FieldValue, FieldValues, IngestError, InputConfig, Limits, Location, Parsed,
    RecordBuilder, Redactions,
};
use topsellers_model::{DeadLetter, RejectReason, TimestampMs};

/// Parses the events of one connection or request; cheap to build.
pub struct Log4j2Parser {
    builder: RecordBuilder,
    /// `(field, mapped name, name split at dots)` of every mapped field.
    keys: Vec<(Field, String, Vec<String>)>,
    /// `[agent.customer_key]`, when configured.
    customer: Option<CustomerField>,
}

/// A judged event and, when it is accepted and a customer key is configured and found, its customer key.
pub type Keyed = (Parsed, Option<CustomerKey>);

/// Where a purchase's fields are in the message.
enum Message<'a> {
    None,
    Object(&'a Map<String, Value>),
    Pairs(&'a str),
}

impl Log4j2Parser {
    pub fn new(
        config: &Log4j2Config,
        limits: &Limits,
        now_ms: TimestampMs,
    ) -> Result<Log4j2Parser, IngestError> {
        let input = InputConfig {
            fields: config.fields.clone(),
            time_format: config.time_format.clone(),
            time_zone: config.time_zone.clone(),
            currency: config.currency.clone(),
            ..InputConfig::default()
        };
        let builder = RecordBuilder::new("agent:log4j2", &input, limits, now_ms)?;
        let keys = Field::ALL
            .iter()
            .filter_map(|&f| {
                let name = builder.field_name(f)?;
                Some((
                    f,
                    name.to_string(),
                    name.split('.').map(str::to_string).collect(),
                ))
            })
            .collect();
        Ok(Log4j2Parser {
            builder,
            keys,
            customer: None,
        })
    }

    /// Also reads the customer id (looked up like every field) and keeps only its [`CustomerKey`].
    pub(crate) fn with_customer(mut self, customer: Option<CustomerField>) -> Log4j2Parser {
        self.customer = customer;
        self
    }

    /// Personal data replaced (or refused in ids) so far.
    pub fn redactions(&self) -> Redactions {
        self.builder.redactions()
    }

    /// Names the connection or request in the dead letters that follow.
    pub fn set_source(&mut self, source: impl Into<String>) {
        self.builder.set_source(source);
    }

    /// A dead letter of this intake at `location` (`byte 120`, `event 2`).
    pub fn letter(&self, location: &str, reason: RejectReason, message: String) -> DeadLetter {
        let mut letter = self
            .builder
            .dead_letter(Location::Record(0), None, reason, message, None);
        letter.location = location.to_string();
        letter
    }

    /// Judges one event as it came off the wire (a line of the socket).
    pub fn parse(&mut self, raw: &RawLine<'_>, location: &str) -> Parsed {
        self.parse_keyed(raw, location).0
    }

    /// [`Log4j2Parser::parse`], with the customer key of an accepted event.
    pub fn parse_keyed(&mut self, raw: &RawLine<'_>, location: &str) -> Keyed {
        self.builder.set_now(wall_clock_ms());
        let Ok(text) = std::str::from_utf8(raw.bytes().trim_ascii_end()) else {
            let letter = self.letter(
                location,
                RejectReason::InvalidUtf8,
                "the event is not valid UTF-8; log4j2's JSON layouts write UTF-8 unless the layout's charset says otherwise".into(),
            );
            return (Parsed::Rejected(letter), None);
        };
        let judged = match serde_json::from_str::<Value>(text) {
            Ok(event) => self.judge(&event),
            // serde_json's messages name the position and the kind of mistake, never the content.
            Err(e) => (self.reject(format!(
                "the event is not valid JSON ({e}); use JsonTemplateLayout, or JsonLayout with compact=\"true\" eventEol=\"true\""
            )), None),
        };
        located(judged, location)
    }

    /// Judges one event already parsed as JSON (one of a request body's events).
    pub fn parse_value(&mut self, event: &Value, location: &str) -> Parsed {
        self.parse_value_keyed(event, location).0
    }

    /// [`Log4j2Parser::parse_value`], with the customer key of an accepted event.
    pub fn parse_value_keyed(&mut self, event: &Value, location: &str) -> Keyed {
        self.builder.set_now(wall_clock_ms());
        located(self.judge(event), location)
    }

    fn reject(&self, message: String) -> Parsed {
        Parsed::Rejected(self.letter("", RejectReason::Malformed, message))
    }

    fn judge(&mut self, event: &Value) -> Keyed {
        let Value::Object(event) = event else {
            let message = format!(
                "the event is {}, not a JSON object; use JsonTemplateLayout or JsonLayout",
                kind(event)
            );
            return (self.reject(message), None);
        };
        let parsed_message: Map<String, Value>;
        let message = match event.get("message") {
            Some(Value::Object(m)) => Message::Object(m),
            Some(Value::String(s)) if s.trim_start().starts_with('{') => {
                match serde_json::from_str::<Value>(s) {
                    Ok(Value::Object(m)) => {
                        parsed_message = m;
                        Message::Object(&parsed_message)
                    }
                    Ok(other) => return (self.reject(format!("the event's message starts with '{{' but is {}, not one JSON object; log the purchase as one JSON object or as key=value pairs", kind(&other))), None),
                    Err(e) => return (self.reject(format!("the event's message starts with '{{' but is not valid JSON ({e}); log the purchase as one JSON object or as key=value pairs")), None),
                }
            }
            Some(Value::String(s)) => Message::Pairs(s),
            _ => Message::None,
        };
        // The allow-list for key=value text: only mapped keys are kept, the first of each.
        let mut pairs: Vec<(Field, Cow<'_, str>)> = Vec::new();
        let mut customer_pair: Option<Cow<'_, str>> = None;
        if let Message::Pairs(text) = message {
            for (key, value) in KvPairs::new(text) {
                if let Some(c) = &self.customer {
                    if customer_pair.is_none() && c.name() == key {
                        customer_pair = Some(value);
                        continue;
                    }
                }
                if let Some((field, ..)) = self.keys.iter().find(|(_, name, _)| name == key) {
                    if !pairs.iter().any(|(f, _)| f == field) {
                        pairs.push((*field, value));
                    }
                }
            }
        }
        let context = match event.get("contextMap") {
            Some(Value::Object(c)) => Some(c),
            _ => None,
        };
        let mut values = FieldValues::new();
        for (field, name, segments) in &self.keys {
            let in_message = match message {
                Message::Object(m) => lookup(m, name, segments).map(field_value),
                Message::Pairs(_) => pairs
                    .iter()
                    .find(|(f, _)| f == field)
                    .map(|(_, v)| FieldValue::Text(v)),
                Message::None => None,
            };
            let value = in_message
                .or_else(|| {
                    context
                        .and_then(|c| lookup(c, name, segments))
                        .map(field_value)
                })
                .or_else(|| lookup(event, name, segments).map(field_value))
                .unwrap_or(FieldValue::Absent);
            values.set(*field, value);
        }
        let parsed = self.builder.build(&values, Location::Record(0));
        let Some(c) = self
            .customer
            .as_ref()
            .filter(|_| matches!(parsed, Parsed::Event(_)))
        else {
            return (parsed, None);
        };
        // The customer id, from the first place that has it, in the order of the fields.
        let key = match message {
            Message::Object(m) => c.find(m).map(|v| c.key_of_value(v)),
            Message::Pairs(_) => customer_pair.map(|v| c.key_of_text(&v)),
            Message::None => None,
        }
        .or_else(|| {
            context
                .and_then(|ctx| c.find(ctx))
                .map(|v| c.key_of_value(v))
        })
        .or_else(|| c.find(event).map(|v| c.key_of_value(v)))
        .flatten();
        (parsed, key)
    }
}

fn located(mut judged: Keyed, location: &str) -> Keyed {
    if let Parsed::Rejected(letter) = &mut judged.0 {
        letter.location = location.to_string();
    }
    judged
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wall_clock_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimestampMs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use topsellers_ingest::FieldMapping;

    const PII: [&str; 4] = [
        "Zelda",
        "zelda@example.com",
        "4111 1111 1111 1111",
        "203.0.113.7",
    ];

    fn parser() -> Log4j2Parser {
        let config = Log4j2Config {
            fields: FieldMapping {
                event_id: Some("order_line".into()),
                item_id: "sku".into(),
                item_name: Some("product".into()),
                category: Some("category".into()),
                quantity: "qty".into(),
                unit_price: "price".into(),
                time: "ts".into(),
                currency: None,
                country: None,
                original_time: None,
            },
            ..Log4j2Config::default()
        };
        Log4j2Parser::new(&config, &Limits::default(), wall_clock_ms()).unwrap()
    }

    fn event(p: &mut Log4j2Parser, line: &str) -> topsellers_model::PurchaseEvent {
        match p.parse(&RawLine::new(line.as_bytes(), 0), "byte 0") {
            Parsed::Event(e) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn the_three_shapes_keep_only_mapped_fields() {
        let mut p = parser();
        // ECS template, key=value text, ThreadContext flattened into the event.
        let kv = r#"{"@timestamp":"2026-01-01T00:00:09.000Z","message":"purchase order_line=o-1 sku=A1 product=\"Mug for zelda@example.com\" category=home qty=2 price=9.99 ts=2026-01-01T00:00:00Z customer=\"Zelda\" card=\"4111 1111 1111 1111\"","customer.email":"zelda@example.com","client_ip":"203.0.113.7"}"#;
        // ECS template, the message JSON text.
        let json = r#"{"message":"{\"order_line\":\"o-2\",\"sku\":\"A2\",\"qty\":1,\"price\":\"1.50\",\"ts\":\"2026-01-01T00:00:00Z\",\"customer\":{\"name\":\"Zelda\"}}","customer.name":"Zelda"}"#;
        // JsonLayout: a MapMessage as k="v" pairs; the purchase time in the ThreadContext.
        let map = r#"{"timeMillis":1,"message":"order_line=\"o-3\" price=\"2.00\" qty=\"3\" sku=\"A3\" email=\"zelda@example.com\"","contextMap":{"ts":"2026-01-01T00:00:00Z","customer.name":"Zelda"}}"#;
        // A template that writes a MapMessage as a JSON object.
        let object = r#"{"message":{"order_line":"o-4","sku":"A4","qty":4,"price":"1.00","ts":"2026-01-01T00:00:00Z","ip":"203.0.113.7"}}"#;
        let got: Vec<_> = [kv, json, map, object]
            .into_iter()
            .map(|l| event(&mut p, l))
            .collect();
        let ids: Vec<_> = got
            .iter()
            .map(|e| (e.event_id.clone().unwrap(), e.item_id.clone(), e.quantity))
            .collect();
        assert_eq!(
            ids,
            [
                ("o-1".into(), "A1".into(), 2),
                ("o-2".into(), "A2".into(), 1),
                ("o-3".into(), "A3".into(), 3),
                ("o-4".into(), "A4".into(), 4)
            ]
        );
        assert_eq!(got[0].item_name.as_deref(), Some("Mug for [email]"));
        let shown = format!("{got:?}");
        for pii in PII {
            assert!(!shown.contains(pii), "{shown}");
        }
    }

    #[test]
    fn bad_events_are_dead_letters_without_their_content() {
        let mut p = parser();
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_message = format!(
            "{{\"message\":\"{}\",\"email\":\"zelda@example.com\"}}",
            "{\\\"a\\\":".repeat(1000)
        );
        let cases: Vec<(Vec<u8>, RejectReason)> = vec![
            (b"\x00\x9f\x92\x96 zelda@example.com".to_vec(), RejectReason::InvalidUtf8),
            (b"not json zelda@example.com".to_vec(), RejectReason::Malformed),
            (deep.into_bytes(), RejectReason::Malformed),
            (deep_message.into_bytes(), RejectReason::Malformed),
            (b"[\"zelda@example.com\"]".to_vec(), RejectReason::Malformed),
            (
                br#"{"message":"sku=A1 qty=lots price=1.00 ts=2026-01-01T00:00:00Z product=\"for zelda@example.com\""}"#.to_vec(),
                RejectReason::InvalidField,
            ),
        ];
        for (bytes, reason) in cases {
            let Parsed::Rejected(letter) = p.parse(&RawLine::new(&bytes, 0), "byte 7") else {
                panic!("{}", String::from_utf8_lossy(&bytes))
            };
            assert_eq!(
                (letter.reason, letter.location.as_str()),
                (reason, "byte 7")
            );
            let shown = serde_json::to_string(&letter).unwrap();
            for pii in PII {
                assert!(!shown.contains(pii), "{shown}");
            }
        }
    }
}
