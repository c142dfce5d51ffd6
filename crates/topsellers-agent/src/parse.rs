//! From a [`RawLine`] to a scrubbed event or a dead letter: only the mapped fields are read (the allow-list),
//! and they go through the same [`RecordBuilder`] as files and HTTP bodies, which scrubs personal data out of
//! the kept free text and counts it.

use crate::config::{FileSource, LineFormat};
use crate::customer_key::{CustomerKey, CustomerKeyConfig, CustomerKeyer};
use crate::raw::RawLine;
use json_select::Wanted;
use serde_json::{Map, Value};
use std::borrow::Cow;
use topsellers_ingest::{
    Field, FieldValue, FieldValues, IngestError, InputConfig, Limits, Location, Parsed,
    RecordBuilder, Redactions,
};
use topsellers_model::{DeadLetter, RejectReason, TimestampMs};

mod json_select;

/// Parses the lines of one [`FileSource`]; build once per source and reuse.
pub struct LineParser {
    format: LineFormat,
    builder: RecordBuilder,
    /// `(field, mapped name, name split at dots)` of every mapped field.
    keys: Vec<(Field, String, Vec<String>)>,
    /// `[agent.customer_key]`, when configured: where the customer id (or, in a spool, its key) is.
    customer: Option<CustomerField>,
    /// The JSON keys kept while parsing (every mapped name, the customer id's): the rest is skipped unread.
    wanted: Wanted,
}

/// Where a record's customer key comes from: the key (dotted paths allowed) and what its value is.
#[derive(Clone, Debug)]
pub(crate) struct CustomerField {
    name: String,
    segments: Vec<String>,
    from: KeyFrom,
}

#[derive(Clone, Debug)]
enum KeyFrom {
    /// The raw customer id, hashed with the secret: files, and the pushed intakes before they spool an event.
    Id(CustomerKeyer),
    /// A key an intake already made (the spool's `customer_key`): passed on unchanged, never hashed again.
    Spooled,
}

impl CustomerField {
    /// The customer id is under `field` (`[agent.customer_key] field`).
    pub(crate) fn id(field: &str, keyer: CustomerKeyer) -> CustomerField {
        CustomerField::new(field, KeyFrom::Id(keyer))
    }

    /// `[agent.customer_key]` as a pushed intake uses it: `None` when it is off; fails when the secret cannot be
    /// read.
    pub(crate) fn configured(
        config: Option<&CustomerKeyConfig>,
    ) -> std::io::Result<Option<CustomerField>> {
        let Some(config) = config else {
            return Ok(None);
        };
        let keyer = CustomerKeyer::from_config(config)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Some(CustomerField::id(&config.field, keyer)))
    }

    /// The spool's `customer_key` (as [`crate::encode_canonical_keyed`] writes it), made by an intake with
    /// [`CustomerField::id`].
    fn spooled() -> CustomerField {
        CustomerField::new("customer_key", KeyFrom::Spooled)
    }

    fn new(field: &str, from: KeyFrom) -> CustomerField {
        CustomerField {
            name: field.to_string(),
            segments: field.split('.').map(str::to_string).collect(),
            from,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The value under this field in `object`, if any.
    pub(crate) fn find<'v>(&self, object: &'v Map<String, Value>) -> Option<&'v Value> {
        lookup(object, &self.name, &self.segments)
    }

    /// The key of a JSON record (an object) holding this field.
    pub(crate) fn key_in(&self, record: &Value) -> Option<CustomerKey> {
        self.key_of_value(self.find(record.as_object()?)?)
    }

    /// The key of a JSON value found under this field (a string, or a number as id).
    pub(crate) fn key_of_value(&self, value: &Value) -> Option<CustomerKey> {
        match (value, &self.from) {
            (Value::String(text), _) => self.key_of_text(text),
            (Value::Number(id), KeyFrom::Id(keyer)) => keyer.key(&id.to_string()),
            _ => None,
        }
    }

    /// The key of a text value found under this field (a `key=value` pair).
    pub(crate) fn key_of_text(&self, text: &str) -> Option<CustomerKey> {
        match &self.from {
            KeyFrom::Id(keyer) => keyer.key(text),
            KeyFrom::Spooled => CustomerKey::from_hex(text),
        }
    }
}

impl LineParser {
    pub fn new(
        source: &FileSource,
        limits: &Limits,
        now_ms: TimestampMs,
    ) -> Result<LineParser, IngestError> {
        let input = InputConfig {
            fields: source.fields.clone(),
            time_format: source.time_format.clone(),
            time_zone: source.time_zone.clone(),
            currency: source.currency.clone(),
            ..InputConfig::default()
        };
        let builder = RecordBuilder::new(format!("agent:{}", source.path), &input, limits, now_ms)?;
        let keys: Vec<(Field, String, Vec<String>)> = Field::ALL
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
        let wanted = Wanted::new(keys.iter().map(|(_, name, _)| name.as_str()));
        Ok(LineParser {
            format: source.format,
            builder,
            keys,
            customer: None,
            wanted,
        })
    }

    /// Also reads the customer id from `field` (one more allow-listed key) and turns it into a
    /// [`CustomerKey`]; the id itself is never kept.
    pub fn with_customer_key(self, field: &str, keyer: CustomerKeyer) -> LineParser {
        self.with_customer(CustomerField::id(field, keyer))
    }

    /// For a spool: also reads the `customer_key` the intake wrote and passes it on as it is (never hashed again;
    /// a value that is not a key is ignored).
    pub fn with_spooled_customer_key(self) -> LineParser {
        self.with_customer(CustomerField::spooled())
    }

    fn with_customer(mut self, customer: CustomerField) -> LineParser {
        self.wanted = Wanted::new(
            self.keys
                .iter()
                .map(|(_, name, _)| name.as_str())
                .chain([customer.name()]),
        );
        self.customer = Some(customer);
        self
    }

    /// Personal data replaced (or refused in ids) so far.
    pub fn redactions(&self) -> Redactions {
        self.builder.redactions()
    }

    /// Moves "now" (the bound on future times, the stamp of dead letters).
    pub fn set_now(&mut self, now_ms: TimestampMs) {
        self.builder.set_now(now_ms);
    }

    /// Names the file in the dead letters that follow.
    pub fn set_source(&mut self, source: impl Into<String>) {
        self.builder.set_source(source);
    }

    /// A dead letter for a line too long to read: it was skipped, never held in memory.
    pub fn oversized(&self, offset: u64, len: u64, max: usize) -> DeadLetter {
        let mut letter = self.builder.dead_letter(
            Location::Record(0),
            None,
            RejectReason::Oversized,
            format!(
                "the line is {len} bytes, more than agent.max_line_bytes ({max}); raise the limit or log shorter lines"
            ),
            None,
        );
        letter.location = format!("byte {offset}");
        letter
    }

    /// Judges one line. Dead letters name the line by its byte offset in the file.
    pub fn parse(&mut self, line: &RawLine<'_>) -> Parsed {
        self.parse_keyed(line).0
    }

    /// [`LineParser::parse`], with the customer key of an accepted event (when configured and the line has a
    /// customer id).
    pub fn parse_keyed(&mut self, line: &RawLine<'_>) -> (Parsed, Option<CustomerKey>) {
        let (mut parsed, key) = self.judge(line.bytes());
        if let Parsed::Rejected(letter) = &mut parsed {
            letter.location = format!("byte {}", line.offset);
        }
        match parsed {
            Parsed::Event(_) => (parsed, key),
            _ => (parsed, None),
        }
    }

    fn reject(&self, reason: RejectReason, message: String) -> Parsed {
        Parsed::Rejected(
            self.builder
                .dead_letter(Location::Record(0), None, reason, message, None),
        )
    }

    fn judge(&mut self, bytes: &[u8]) -> (Parsed, Option<CustomerKey>) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let Ok(text) = std::str::from_utf8(bytes) else {
            return (
                self.reject(
                    RejectReason::InvalidUtf8,
                    "the line is not valid UTF-8; write the purchase log as UTF-8".into(),
                ),
                None,
            );
        };
        match self.format {
            LineFormat::Json => self.judge_json(text),
            LineFormat::Log4jKv => self.judge_kv(text),
        }
    }

    fn judge_json(&mut self, text: &str) -> (Parsed, Option<CustomerKey>) {
        let Some(start) = text.find('{') else {
            return (self.reject(
                RejectReason::Malformed,
                "the line holds no JSON object; log each purchase as a JSON object (after the layout's prefix, if any)".into(),
            ), None);
        };
        let object = match self.wanted.parse(text[start..].trim_end()) {
            Ok(o) => o,
            // serde_json's messages name the position and the kind of mistake, never the content.
            Err(e) => {
                return (self.reject(
                    RejectReason::Malformed,
                    format!("the JSON object on the line is not valid ({e}); log one complete JSON object per line"),
                ), None)
            }
        };
        let mut values = FieldValues::new();
        for (field, name, segments) in &self.keys {
            let found = lookup(&object, name, segments);
            values.set(*field, found.map_or(FieldValue::Absent, field_value));
        }
        let key = self
            .customer
            .as_ref()
            .and_then(|c| c.key_of_value(c.find(&object)?));
        (self.builder.build(&values, Location::Record(0)), key)
    }

    fn judge_kv(&mut self, text: &str) -> (Parsed, Option<CustomerKey>) {
        let mut found: Vec<(Field, Cow<'_, str>)> = Vec::new();
        let mut customer_key = None;
        for (key, value) in KvPairs::new(text) {
            if let Some(c) = &self.customer {
                if customer_key.is_none() && c.name == key {
                    customer_key = c.key_of_text(&value);
                    continue;
                }
            }
            // The allow-list: a key that is not mapped is skipped unread.
            if let Some((field, ..)) = self.keys.iter().find(|(_, name, _)| name == key) {
                if !found.iter().any(|(f, _)| f == field) {
                    found.push((*field, value));
                }
            }
        }
        let mut values = FieldValues::new();
        for (field, value) in &found {
            values.set(*field, FieldValue::Text(value));
        }
        (
            self.builder.build(&values, Location::Record(0)),
            customer_key,
        )
    }
}

pub(crate) fn lookup<'v>(
    object: &'v Map<String, Value>,
    name: &str,
    segments: &[String],
) -> Option<&'v Value> {
    object.get(name).or_else(|| {
        if segments.len() < 2 {
            return None;
        }
        let mut current = object.get(segments[0].as_str())?;
        for s in &segments[1..] {
            current = current.as_object()?.get(s.as_str())?;
        }
        Some(current)
    })
}

pub(crate) fn field_value(value: &Value) -> FieldValue<'_> {
    match value {
        Value::Null => FieldValue::Absent,
        Value::String(s) => FieldValue::Text(s),
        Value::Number(n) => FieldValue::Number(n),
        Value::Bool(_) => FieldValue::WrongType("a boolean"),
        Value::Array(_) => FieldValue::WrongType("an array"),
        Value::Object(_) => FieldValue::WrongType("an object"),
    }
}

/// The `key=value` pairs of a line, in order. A key is a run of letters, digits, `_`, `-` and `.` right
/// before `=`; a value is a double-quoted string (with `\"` and `\\` escapes) or runs to the next space,
/// `,` or `;`.
pub(crate) struct KvPairs<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> KvPairs<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        KvPairs { text, at: 0 }
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

impl<'a> Iterator for KvPairs<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        loop {
            let eq = self.at + memchr::memchr(b'=', &bytes[self.at..])?;
            let mut key_start = eq;
            while key_start > self.at && is_key_byte(bytes[key_start - 1]) {
                key_start -= 1;
            }
            let key = &self.text[key_start..eq];
            let value_start = eq + 1;
            if bytes.get(value_start) == Some(&b'"') {
                // Quoted: up to the closing quote, unescaping as we go.
                let mut out = String::new();
                let mut i = value_start + 1;
                let mut closed = false;
                let mut plain = true;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if i + 1 < bytes.len() => {
                            plain = false;
                            out.push(bytes[i + 1] as char);
                            i += 2;
                            continue;
                        }
                        b'"' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                    let ch = self.text[i..].chars().next().unwrap_or('\u{fffd}');
                    out.push(ch);
                    i += ch.len_utf8();
                }
                self.at = (i + 1).min(bytes.len());
                if key.is_empty() || !closed {
                    if !closed {
                        return None;
                    }
                    continue;
                }
                let value = if plain {
                    Cow::Borrowed(&self.text[value_start + 1..i])
                } else {
                    Cow::Owned(out)
                };
                return Some((key, value));
            }
            let end = bytes[value_start..]
                .iter()
                .position(|b| matches!(b, b' ' | b'\t' | b',' | b';'))
                .map_or(bytes.len(), |p| value_start + p);
            self.at = end;
            if key.is_empty() {
                self.at = value_start;
                continue;
            }
            return Some((key, Cow::Borrowed(&self.text[value_start..end])));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topsellers_ingest::FieldMapping;

    const NOW: TimestampMs = 1_800_000_000_000;

    fn source(format: LineFormat, fields: FieldMapping) -> FileSource {
        FileSource {
            path: "/tmp/x.log".into(),
            format,
            fields,
            time_format: "rfc3339".into(),
            time_zone: "UTC".into(),
            currency: None,
        }
    }

    fn parse(p: &mut LineParser, text: &str) -> Parsed {
        p.parse(&RawLine::new(text.as_bytes(), 0))
    }

    #[test]
    fn kv_pairs_quoted_and_plain() {
        let pairs: Vec<_> = KvPairs::new(r#"2026-01-01 10:00:00,123 INFO [x] a - buy sku=A1 name="Red \"mug\"" q=2, p=1.5;tail = x=="#)
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("sku".into(), "A1".into()),
                ("name".into(), "Red \"mug\"".into()),
                ("q".into(), "2".into()),
                ("p".into(), "1.5".into()),
                ("x".into(), "=".into()),
            ]
        );
    }

    #[test]
    fn log4j_line_keeps_only_mapped_fields_scrubbed() {
        let fields = FieldMapping {
            item_id: "sku".into(),
            item_name: Some("name".into()),
            category: Some("cat".into()),
            quantity: "qty".into(),
            unit_price: "price".into(),
            time: "ts".into(),
            event_id: None,
            currency: None,
            country: None,
            original_time: None,
        };
        let mut p = LineParser::new(
            &source(LineFormat::Log4jKv, fields),
            &Limits::default(),
            NOW,
        )
        .unwrap();
        let line = r#"2026-01-01 10:00:00,123 INFO [http-7] PurchaseLog - sale customer="Jane Doe" email=jane@example.com sku=A1 name="Mug for jane@example.com" cat=home/kitchen qty=2 price=9.99 ts=2026-01-01T10:00:00Z card=4111111111111111"#;
        let Parsed::Event(e) = parse(&mut p, line) else {
            panic!()
        };
        assert_eq!(
            (e.item_id.as_str(), e.quantity, e.unit_price_minor),
            ("A1", 2, 999)
        );
        assert_eq!(e.item_name.as_deref(), Some("Mug for [email]"));
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("Jane") && !shown.contains("4111"),
            "{shown}"
        );
        assert_eq!(p.redactions().total(), 1);
    }

    #[test]
    fn customer_key_only_when_configured_never_the_id() {
        let keyer = CustomerKeyer::new(b"a-secret-of-enough-bytes").unwrap();
        let json = r#"{"item_id":"A","quantity":1,"unit_price":"2.50","time":"2026-01-01T00:00:00Z","customer":{"id":"C-991","name":"Jane"}}"#;
        let mut plain = LineParser::new(
            &source(LineFormat::Json, FieldMapping::canonical()),
            &Limits::default(),
            NOW,
        )
        .unwrap();
        let (parsed, key) = plain.parse_keyed(&RawLine::new(json.as_bytes(), 0));
        assert!(matches!(parsed, Parsed::Event(_)) && key.is_none());

        let mut keyed = LineParser::new(
            &source(LineFormat::Json, FieldMapping::canonical()),
            &Limits::default(),
            NOW,
        )
        .unwrap()
        .with_customer_key("customer.id", keyer.clone());
        let (parsed, key) = keyed.parse_keyed(&RawLine::new(json.as_bytes(), 0));
        let Parsed::Event(e) = parsed else { panic!() };
        assert_eq!(key, keyer.key("C-991"));
        assert!(!format!("{e:?}").contains("C-991"));
        // A number as the id, and a rejected line gets no key.
        let numeric = json.replace(r#""C-991""#, "991");
        let (_, key) = keyed.parse_keyed(&RawLine::new(numeric.as_bytes(), 0));
        assert_eq!(key, keyer.key("991"));
        let bad = json.replace(r#""quantity":1"#, r#""quantity":"x""#);
        assert_eq!(keyed.parse_keyed(&RawLine::new(bad.as_bytes(), 0)).1, None);

        let fields = FieldMapping {
            item_id: "sku".into(),
            quantity: "qty".into(),
            unit_price: "price".into(),
            time: "ts".into(),
            ..FieldMapping::canonical()
        };
        let mut kv = LineParser::new(
            &source(LineFormat::Log4jKv, fields),
            &Limits::default(),
            NOW,
        )
        .unwrap()
        .with_customer_key("customer_id", keyer.clone());
        let line = "INFO sale customer_id=C-991 sku=A1 qty=2 price=9.99 ts=2026-01-01T10:00:00Z";
        let (parsed, key) = kv.parse_keyed(&RawLine::new(line.as_bytes(), 0));
        assert!(matches!(parsed, Parsed::Event(_)));
        assert_eq!(key, keyer.key("C-991"));
    }

    /// A spool line's `customer_key` is passed on as it is (made once, at the intake), and only when it is a key.
    #[test]
    fn spooled_customer_key_is_carried_not_hashed_again() {
        let key = CustomerKeyer::new(b"a-secret-of-enough-bytes")
            .unwrap()
            .key("C-991")
            .unwrap();
        let spooled = |customer_key: &str| {
            format!(
                r#"{{"time":1767225600000,"item_id":"A","quantity":1,"unit_price":"2.50","currency":"USD","customer_key":"{customer_key}"}}"#
            )
        };
        let mut carried = LineParser::new(
            &source(LineFormat::Json, FieldMapping::canonical()),
            &Limits::default(),
            NOW,
        )
        .unwrap()
        .with_spooled_customer_key();
        let line = spooled(key.as_str());
        let (parsed, got) = carried.parse_keyed(&RawLine::new(line.as_bytes(), 0));
        assert!(matches!(parsed, Parsed::Event(_)), "{parsed:?}");
        assert_eq!(got, Some(key));
        for not_a_key in ["C-991", "ABCDEF0123456789ABCDEF0123456789", "abc"] {
            let line = spooled(not_a_key);
            let (parsed, got) = carried.parse_keyed(&RawLine::new(line.as_bytes(), 0));
            assert!(
                matches!(parsed, Parsed::Event(_)) && got.is_none(),
                "{not_a_key}"
            );
        }
    }

    #[test]
    fn json_after_a_prefix_and_bad_lines() {
        let mut p = LineParser::new(
            &source(LineFormat::Json, FieldMapping::canonical()),
            &Limits::default(),
            NOW,
        )
        .unwrap();
        let ok = r#"2026-01-01 INFO - {"item_id":"A","quantity":1,"unit_price":"2.50","time":"2026-01-01T00:00:00Z","customer":{"name":"Jane"}}"#;
        assert!(matches!(parse(&mut p, ok), Parsed::Event(_)));
        let deep = format!("{}{}", "{\"a\":[".repeat(200), "]}".repeat(200));
        for (bad, reason) in [
            ("no json here", RejectReason::Malformed),
            ("{\"item_id\":", RejectReason::Malformed),
            (deep.as_str(), RejectReason::Malformed),
        ] {
            let Parsed::Rejected(d) = parse(&mut p, bad) else {
                panic!("{bad}")
            };
            assert_eq!(d.reason, reason);
            assert_eq!(d.location, "byte 0");
        }
        let Parsed::Rejected(d) = p.parse(&RawLine::new(b"{\"item_id\":\"\xff\"}", 9)) else {
            panic!()
        };
        assert_eq!(
            (d.reason, d.location.as_str()),
            (RejectReason::InvalidUtf8, "byte 9")
        );
    }
}
