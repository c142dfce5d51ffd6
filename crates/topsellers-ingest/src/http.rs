//! HTTP request bodies in the canonical shape: NDJSON, one JSON array, or a single object.

use crate::builder::{Location, RecordBuilder};
use crate::config::{InputConfig, Limits};
use crate::json::{judge_json_text_value, judge_json_value, JsonPaths};
use crate::scrub::Redactions;
use crate::{IngestError, Parsed};
use serde_json::Value;
use topsellers_model::{DeadLetter, RejectReason, TimestampMs};

/// Parses bodies of `POST` requests; build once per `Limits` and reuse.
pub struct HttpBodyParser {
    builder: RecordBuilder,
    paths: JsonPaths,
}

impl HttpBodyParser {
    /// Canonical keys; times are RFC 3339 with an offset or `Z`, or epoch milliseconds. A time
    /// without an offset is refused: over HTTP there is no configured zone to read it in.
    pub fn new(limits: &Limits, now_ms: TimestampMs) -> Result<HttpBodyParser, IngestError> {
        let mut builder = RecordBuilder::new("http", &InputConfig::default(), limits, now_ms)?;
        builder.canonical_shape();
        let paths = JsonPaths::new(&builder);
        Ok(HttpBodyParser { builder, paths })
    }

    /// See [`RecordBuilder::set_now`].
    pub fn set_now(&mut self, now_ms: TimestampMs) {
        self.builder.set_now(now_ms);
    }

    /// See [`RecordBuilder::set_source`].
    pub fn set_source(&mut self, source: impl Into<String>) {
        self.builder.set_source(source);
    }

    /// Personal data (by kind) replaced in, or refused with, the records parsed so far.
    pub fn redactions(&self) -> Redactions {
        self.builder.redactions()
    }

    /// One result per record, in body order; record numbers start at 1. A body that is not JSON at
    /// all gives one dead letter for the whole body.
    pub fn parse(&mut self, body: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        self.parse_each(body, |parsed, _| out.push(parsed));
        out
    }

    /// [`HttpBodyParser::parse`], handing each result to `each` together with the record's JSON value (`None`
    /// when the record is not JSON), so a caller can read one more key of its own from the raw record, such as
    /// the agent's customer id, without splitting the body a second time.
    pub fn parse_each(&mut self, body: &[u8], mut each: impl FnMut(Parsed, Option<&Value>)) {
        let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
        let trimmed = body.trim_ascii_start();
        match trimmed.first() {
            None => {}
            Some(b'[') => self.parse_array(trimmed, &mut each),
            Some(b'{') => match serde_json::from_slice::<Value>(trimmed) {
                // A single (possibly pretty-printed) object.
                Ok(value) => each(
                    judge_json_value(&value, Location::Record(1), &self.paths, &mut self.builder),
                    Some(&value),
                ),
                Err(_) => self.parse_lines(body, &mut each),
            },
            Some(_) => self.parse_lines(body, &mut each),
        }
    }

    fn parse_array(&mut self, body: &[u8], each: &mut impl FnMut(Parsed, Option<&Value>)) {
        match serde_json::from_slice::<Vec<Value>>(body) {
            Ok(records) => {
                for (i, value) in records.iter().enumerate() {
                    let parsed = judge_json_value(
                        value,
                        Location::Record(i as u64 + 1),
                        &self.paths,
                        &mut self.builder,
                    );
                    each(parsed, Some(value));
                }
            }
            Err(e) => {
                let mut letter: DeadLetter = self.builder.dead_letter(
                    Location::Record(1),
                    None,
                    RejectReason::Malformed,
                    format!(
                        "the body is not a valid JSON array ({e}); send an array of purchase objects, or one object per line"
                    ),
                    None,
                );
                // No record boundary can be trusted in a broken array: the whole body is at fault.
                letter.location = "body".into();
                each(Parsed::Rejected(letter), None);
            }
        }
    }

    fn parse_lines(&mut self, body: &[u8], each: &mut impl FnMut(Parsed, Option<&Value>)) {
        let mut number = 0u64;
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            number += 1;
            let (parsed, value) = judge_json_text_value(
                line,
                Location::Record(number),
                &self.paths,
                &mut self.builder,
            );
            each(parsed, value.as_ref());
        }
    }
}

/// HTTP bodies in the canonical shape: NDJSON or one JSON array (or a single object). Location =
/// `record <i>`, 1-based.
///
/// `limits` should have passed [`Limits::validate`] at startup; if it has not, every body yields a
/// single dead letter saying so instead of a panic.
pub fn parse_http_body(body: &[u8], limits: &Limits, now_ms: TimestampMs) -> Vec<Parsed> {
    parse_http_body_with_redactions(body, limits, now_ms).0
}

/// [`parse_http_body`], also telling how much personal data (by kind) was redacted from the
/// records or refused in their ids.
pub fn parse_http_body_with_redactions(
    body: &[u8],
    limits: &Limits,
    now_ms: TimestampMs,
) -> (Vec<Parsed>, Redactions) {
    match HttpBodyParser::new(limits, now_ms) {
        Ok(mut parser) => {
            let parsed = parser.parse(body);
            (parsed, parser.redactions())
        }
        Err(e) => (
            vec![Parsed::Rejected(DeadLetter {
                source: "http".into(),
                location: "body".into(),
                field: None,
                reason: RejectReason::Malformed,
                message: format!("the server cannot judge records: {e}"),
                record: String::new(),
                at_ms: now_ms,
            })],
            Redactions::default(),
        ),
    }
}
