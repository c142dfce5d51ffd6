//! The compact on-disk encoding of one log entry (a batch of [`LogRecord`]s).
//!
//! Layout: one format byte, then the records in bincode (varint integers). The model types cannot be
//! handed to bincode directly: `PurchaseEvent` skips absent optional fields when serializing (good for
//! JSON), and a format without field names cannot tell which field was skipped, so decoding would fail.
//! The wire types below mirror the model field for field with every field always present; a round-trip
//! test covers every optional field being set and unset.
//!
//! Each entry also gets an xxh3 checksum, stored beside it, so a damaged entry is reported by its seq
//! instead of being decoded into wrong counts.

use bincode::Options;
use serde::{Deserialize, Serialize};
use topsellers_model::{CategoryPath, LogRecord, PurchaseEvent};

/// Bumped when the layout changes; older bytes keep their version and stay readable.
const FORMAT_V1: u8 = 1;

#[derive(Serialize)]
enum WireRecordRef<'a> {
    Event(WireEventRef<'a>),
    Tick { now_ms: i64 },
}

#[derive(Deserialize)]
enum WireRecord {
    Event(WireEvent),
    Tick { now_ms: i64 },
}

/// Field order is the format: keep it in step with [`WireEvent`].
#[derive(Serialize)]
struct WireEventRef<'a> {
    event_id: Option<&'a str>,
    event_time_ms: i64,
    original_time_ms: Option<i64>,
    item_id: &'a str,
    item_name: Option<&'a str>,
    category: &'a CategoryPath,
    quantity: i64,
    unit_price_minor: i64,
    currency: &'a str,
    country: Option<&'a str>,
}

#[derive(Deserialize)]
struct WireEvent {
    event_id: Option<String>,
    event_time_ms: i64,
    original_time_ms: Option<i64>,
    item_id: String,
    item_name: Option<String>,
    category: CategoryPath,
    quantity: i64,
    unit_price_minor: i64,
    currency: String,
    country: Option<String>,
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// Encodes one batch; returns the bytes and their checksum.
pub(crate) fn encode(records: &[LogRecord]) -> Result<(Vec<u8>, u64), bincode::Error> {
    let wire: Vec<WireRecordRef<'_>> = records
        .iter()
        .map(|r| match r {
            LogRecord::Event(e) => WireRecordRef::Event(WireEventRef {
                event_id: e.event_id.as_deref(),
                event_time_ms: e.event_time_ms,
                original_time_ms: e.original_time_ms,
                item_id: &e.item_id,
                item_name: e.item_name.as_deref(),
                category: &e.category,
                quantity: e.quantity,
                unit_price_minor: e.unit_price_minor,
                currency: &e.currency,
                country: e.country.as_deref(),
            }),
            LogRecord::Tick { now_ms } => WireRecordRef::Tick { now_ms: *now_ms },
        })
        .collect();
    let mut body = Vec::with_capacity(1 + 64 * records.len());
    body.push(FORMAT_V1);
    options().serialize_into(&mut body, &wire)?;
    let sum = checksum(&body);
    Ok((body, sum))
}

pub(crate) fn checksum(body: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(body)
}

/// Decodes one entry, checking its checksum and record count first. The error text says what is wrong;
/// the caller adds the seq and path.
pub(crate) fn decode(
    body: &[u8],
    stored_checksum: u64,
    stored_count: u64,
) -> Result<Vec<LogRecord>, String> {
    let actual = checksum(body);
    if actual != stored_checksum {
        return Err(format!(
            "checksum mismatch: stored {stored_checksum:016x}, computed {actual:016x}"
        ));
    }
    let (&version, rest) = body.split_first().ok_or("empty entry")?;
    if version != FORMAT_V1 {
        return Err(format!("unknown entry format {version}"));
    }
    // The limit stops a damaged length prefix from asking for a huge allocation.
    let wire: Vec<WireRecord> = options()
        .with_limit(rest.len() as u64 * 8 + 64)
        .deserialize(rest)
        .map_err(|e| format!("undecodable records: {e}"))?;
    if wire.len() as u64 != stored_count {
        return Err(format!(
            "holds {} records, the index says {stored_count}",
            wire.len()
        ));
    }
    Ok(wire
        .into_iter()
        .map(|w| match w {
            WireRecord::Event(e) => LogRecord::Event(PurchaseEvent {
                event_id: e.event_id,
                event_time_ms: e.event_time_ms,
                original_time_ms: e.original_time_ms,
                item_id: e.item_id,
                item_name: e.item_name,
                category: e.category,
                quantity: e.quantity,
                unit_price_minor: e.unit_price_minor,
                currency: e.currency,
                country: e.country,
            }),
            WireRecord::Tick { now_ms } => LogRecord::Tick { now_ms },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(full: bool) -> LogRecord {
        LogRecord::Event(PurchaseEvent {
            event_id: full.then(|| "e-1".to_string()),
            event_time_ms: 1_700_000_000_123,
            original_time_ms: full.then_some(1_600_000_000_000),
            item_id: "SKU-000001".into(),
            item_name: full.then(|| "Blue Kettle K2".to_string()),
            category: CategoryPath::parse("home & garden/kitchen").unwrap(),
            quantity: if full { -2 } else { 3 },
            unit_price_minor: 1999,
            currency: "USD".into(),
            country: full.then(|| "GB".to_string()),
        })
    }

    #[test]
    fn round_trips_every_optional_field_present_and_absent() {
        let records = vec![
            event(true),
            event(false),
            LogRecord::Tick { now_ms: -5 },
            event(true),
        ];
        let (body, sum) = encode(&records).unwrap();
        assert_eq!(decode(&body, sum, 4).unwrap(), records);
        let (empty, sum) = encode(&[]).unwrap();
        assert_eq!(decode(&empty, sum, 0).unwrap(), vec![]);
    }

    #[test]
    fn damage_is_detected() {
        let (mut body, sum) = encode(&[event(true)]).unwrap();
        assert!(decode(&body, sum, 2).unwrap_err().contains("index says 2"));
        let last = body.len() - 1;
        body[last] ^= 0xff;
        assert!(decode(&body, sum, 1).unwrap_err().contains("checksum"));
        // Consistent checksum but garbage inside: the decoder itself must refuse, not panic.
        let garbage = vec![
            FORMAT_V1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(decode(&garbage, checksum(&garbage), 1).is_err());
    }

    #[test]
    fn encoding_is_compact() {
        let records: Vec<LogRecord> = (0..100).map(|_| event(false)).collect();
        let (body, _) = encode(&records).unwrap();
        // Strings dominate: item id, category and currency are ~35 bytes; integers are varints.
        assert!(body.len() < 100 * 60, "{} bytes", body.len());
    }
}
