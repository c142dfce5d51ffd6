//! Pulling mapped fields out of JSON objects, shared by JSON-lines files and HTTP bodies.

use crate::builder::{Location, RecordBuilder};
use crate::fields::{Field, FieldValue, FieldValues, FIELD_COUNT};
use crate::Parsed;
use serde_json::{Map, Value};
use topsellers_model::RejectReason;

/// The key path of every mapped field: `payload.item.sku` is `["payload", "item", "sku"]`.
pub(crate) struct JsonPaths {
    paths: [Option<(String, Vec<String>)>; FIELD_COUNT],
}

impl JsonPaths {
    pub(crate) fn new(builder: &RecordBuilder) -> Self {
        let mut paths: [Option<(String, Vec<String>)>; FIELD_COUNT] = Default::default();
        for field in Field::ALL {
            if let Some(name) = builder.field_name(field) {
                let segments = name.split('.').map(str::to_string).collect();
                paths[field.index()] = Some((name.to_string(), segments));
            }
        }
        JsonPaths { paths }
    }

    /// The mapped values of one object. A key that itself contains dots is found first; the
    /// dotted path is only walked when there is no such key.
    pub(crate) fn extract<'v>(&self, object: &'v Map<String, Value>) -> FieldValues<'v> {
        let mut values = FieldValues::new();
        for field in Field::ALL {
            let Some((name, segments)) = &self.paths[field.index()] else {
                continue;
            };
            let found = object.get(name.as_str()).or_else(|| {
                if segments.len() < 2 {
                    return None;
                }
                let mut current = object.get(segments[0].as_str())?;
                for segment in &segments[1..] {
                    current = current.as_object()?.get(segment.as_str())?;
                }
                Some(current)
            });
            values.set(field, found.map_or(FieldValue::Absent, field_value));
        }
        values
    }
}

fn field_value(value: &Value) -> FieldValue<'_> {
    match value {
        Value::Null => FieldValue::Absent,
        Value::String(s) => FieldValue::Text(s),
        Value::Number(n) => FieldValue::Number(n),
        Value::Bool(_) => FieldValue::WrongType("a boolean"),
        Value::Array(_) => FieldValue::WrongType("an array"),
        Value::Object(_) => FieldValue::WrongType("an object"),
    }
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

/// Judges one JSON text holding one record (a line of a JSON-lines file or of an NDJSON body).
pub(crate) fn judge_json_text(
    bytes: &[u8],
    location: Location,
    paths: &JsonPaths,
    builder: &mut RecordBuilder,
) -> Parsed {
    judge_json_text_value(bytes, location, paths, builder).0
}

/// [`judge_json_text`], also giving back the record's JSON value when the text is JSON.
pub(crate) fn judge_json_text_value(
    bytes: &[u8],
    location: Location,
    paths: &JsonPaths,
    builder: &mut RecordBuilder,
) -> (Parsed, Option<Value>) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        let letter = builder.dead_letter(
            location,
            None,
            RejectReason::InvalidUtf8,
            "the record is not valid UTF-8; send JSON encoded as UTF-8".into(),
            None,
        );
        return (Parsed::Rejected(letter), None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(value) => (
            judge_json_value(&value, location, paths, builder),
            Some(value),
        ),
        Err(e) => {
            let letter = builder.dead_letter(
                location,
                None,
                RejectReason::Malformed,
                format!("the record is not valid JSON ({e}); write one JSON object per line"),
                None,
            );
            (Parsed::Rejected(letter), None)
        }
    }
}

/// Judges one parsed JSON value, which must be an object.
pub(crate) fn judge_json_value(
    value: &Value,
    location: Location,
    paths: &JsonPaths,
    builder: &mut RecordBuilder,
) -> Parsed {
    match value {
        Value::Object(object) => builder.build(&paths.extract(object), location),
        other => Parsed::Rejected(builder.dead_letter(
            location,
            None,
            RejectReason::Malformed,
            format!(
                "the record is {}, not a JSON object; write each purchase as an object like {{\"item_id\": \"sku-1\", ...}}",
                kind(other)
            ),
            None,
        )),
    }
}
