//! The compact encoding of a results [`Snapshot`], shared by every backend.
//!
//! Layout: one format byte ([`SNAPSHOT_FORMAT`]), then the snapshot in bincode (varint integers). As in
//! the log codec, the model types are not handed to bincode directly: `RankedItem` skips an absent name
//! when serializing (good for JSON), and a format without field names could not tell that it did, so
//! decoding would fail. The wire types below mirror the model field for field with every field present,
//! which also makes a change of a model type a compile error here instead of a silent format change.
//! Bytes with another format byte are refused, not guessed at: after a format change, an old build
//! reading new results says so instead of serving garbage.

use bincode::Options;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use topsellers_model::{RankedItem, Snapshot, TopList, WindowBounds, WindowSpec};

/// The format byte written in front of every encoded snapshot. Bumped when the layout changes.
pub const SNAPSHOT_FORMAT: u8 = 1;

// Field order is the format: keep each `…Ref` type in step with its owned twin.

#[derive(Serialize)]
struct WireSnapshotRef<'a> {
    version: u64,
    as_of_ms: i64,
    watermark_ms: i64,
    computed_at_ms: i64,
    currency: &'a str,
    top_k: u64,
    windows: Vec<WireWindowRef<'a>>,
    lists: Vec<(&'a str, Vec<WireTopListRef<'a>>)>,
    events_counted: u64,
}

#[derive(Deserialize)]
struct WireSnapshot {
    version: u64,
    as_of_ms: i64,
    watermark_ms: i64,
    computed_at_ms: i64,
    currency: String,
    top_k: u64,
    windows: Vec<WireWindow>,
    lists: Vec<(String, Vec<WireTopList>)>,
    events_counted: u64,
}

#[derive(Serialize)]
struct WireWindowRef<'a> {
    name: &'a str,
    length_secs: Option<u64>,
}

#[derive(Deserialize)]
struct WireWindow {
    name: String,
    length_secs: Option<u64>,
}

#[derive(Serialize)]
struct WireTopListRef<'a> {
    category: &'a str,
    window: &'a str,
    start_ms: Option<i64>,
    end_ms: i64,
    items: Vec<WireItemRef<'a>>,
}

#[derive(Deserialize)]
struct WireTopList {
    category: String,
    window: String,
    start_ms: Option<i64>,
    end_ms: i64,
    items: Vec<WireItem>,
}

#[derive(Serialize)]
struct WireItemRef<'a> {
    rank: u32,
    item_id: &'a str,
    item_name: Option<&'a str>,
    units: i64,
    revenue_minor: i64,
}

#[derive(Deserialize)]
struct WireItem {
    rank: u32,
    item_id: String,
    item_name: Option<String>,
    units: i64,
    revenue_minor: i64,
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// Encodes `snapshot` as [`SNAPSHOT_FORMAT`] bytes.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let wire = WireSnapshotRef {
        version: snapshot.version,
        as_of_ms: snapshot.as_of_ms,
        watermark_ms: snapshot.watermark_ms,
        computed_at_ms: snapshot.computed_at_ms,
        currency: &snapshot.currency,
        top_k: snapshot.top_k as u64,
        windows: snapshot
            .windows
            .iter()
            .map(|w| WireWindowRef {
                name: &w.name,
                length_secs: w.length_secs,
            })
            .collect(),
        lists: snapshot
            .lists
            .iter()
            .map(|(category, lists)| {
                let lists = lists
                    .iter()
                    .map(|l| WireTopListRef {
                        category: &l.category,
                        window: &l.window,
                        start_ms: l.bounds.start_ms,
                        end_ms: l.bounds.end_ms,
                        items: l
                            .items
                            .iter()
                            .map(|i| WireItemRef {
                                rank: i.rank,
                                item_id: &i.item_id,
                                item_name: i.item_name.as_deref(),
                                units: i.units,
                                revenue_minor: i.revenue_minor,
                            })
                            .collect(),
                    })
                    .collect();
                (category.as_str(), lists)
            })
            .collect(),
        events_counted: snapshot.events_counted,
    };
    let mut out = vec![SNAPSHOT_FORMAT];
    // Writing plain data into a Vec cannot fail: bincode's only errors here would be I/O errors of
    // the writer or sequences of unknown length, and every sequence above has a known length.
    options()
        .serialize_into(&mut out, &wire)
        .expect("encoding a snapshot into memory cannot fail");
    out
}

/// Decodes bytes written by [`encode_snapshot`]. The error says what is wrong; the caller adds which
/// partition and store.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, String> {
    let (&format, rest) = bytes.split_first().ok_or("it is empty")?;
    if format != SNAPSHOT_FORMAT {
        return Err(format!(
            "snapshot format {format}, this build reads format {SNAPSHOT_FORMAT}"
        ));
    }
    // The limit stops a damaged length prefix from asking for a huge allocation: no decoded value is
    // more than a small multiple of its encoded size.
    let wire: WireSnapshot = options()
        .with_limit(rest.len() as u64 * 8 + 64)
        .reject_trailing_bytes()
        .deserialize(rest)
        .map_err(|e| format!("undecodable snapshot: {e}"))?;
    let top_k =
        usize::try_from(wire.top_k).map_err(|_| format!("top_k {} too large", wire.top_k))?;
    Ok(Snapshot {
        version: wire.version,
        as_of_ms: wire.as_of_ms,
        watermark_ms: wire.watermark_ms,
        computed_at_ms: wire.computed_at_ms,
        currency: wire.currency,
        top_k,
        windows: wire
            .windows
            .into_iter()
            .map(|w| WindowSpec {
                name: w.name,
                length_secs: w.length_secs,
            })
            .collect(),
        lists: wire
            .lists
            .into_iter()
            .map(|(category, lists)| {
                let lists = lists
                    .into_iter()
                    .map(|l| TopList {
                        category: l.category,
                        window: l.window,
                        bounds: WindowBounds {
                            start_ms: l.start_ms,
                            end_ms: l.end_ms,
                        },
                        items: l
                            .items
                            .into_iter()
                            .map(|i| RankedItem {
                                rank: i.rank,
                                item_id: i.item_id,
                                item_name: i.item_name,
                                units: i.units,
                                revenue_minor: i.revenue_minor,
                            })
                            .collect(),
                    })
                    .collect();
                (category, lists)
            })
            .collect::<BTreeMap<_, _>>(),
        events_counted: wire.events_counted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(rank: u32, name: Option<&str>) -> RankedItem {
        RankedItem {
            rank,
            item_id: format!("SKU-{rank:06}"),
            item_name: name.map(str::to_string),
            units: 100 - i64::from(rank),
            revenue_minor: -5 + 1999 * i64::from(rank),
        }
    }

    fn snapshot() -> Snapshot {
        let windows = vec![WindowSpec::parse("1h").unwrap(), WindowSpec::all()];
        let lists = ["", "home & garden", "home & garden/kitchen"]
            .iter()
            .map(|&c| {
                let lists = windows
                    .iter()
                    .map(|w| TopList {
                        category: c.to_string(),
                        window: w.name.clone(),
                        bounds: WindowBounds {
                            start_ms: w.length_secs.map(|_| 1_699_996_400_000),
                            end_ms: 1_700_000_000_000,
                        },
                        items: (1..=10)
                            .map(|r| item(r, (r % 2 == 0).then_some("Blue Kettle K2")))
                            .collect(),
                    })
                    .collect();
                (c.to_string(), lists)
            })
            .collect();
        Snapshot {
            version: 7,
            as_of_ms: 1_700_000_000_000,
            watermark_ms: 1_699_999_940_000,
            computed_at_ms: 1_700_000_000_250,
            currency: "EUR".into(),
            top_k: 10,
            windows,
            lists,
            events_counted: 123_456,
        }
    }

    #[test]
    fn round_trips_with_names_present_and_absent() {
        let s = snapshot();
        assert_eq!(decode_snapshot(&encode_snapshot(&s)).unwrap(), s);
        let empty = Snapshot {
            lists: BTreeMap::new(),
            windows: Vec::new(),
            ..s
        };
        assert_eq!(decode_snapshot(&encode_snapshot(&empty)).unwrap(), empty);
    }

    #[test]
    fn is_much_smaller_than_json() {
        let s = snapshot();
        let json = serde_json::to_vec(&s).unwrap().len();
        let ours = encode_snapshot(&s).len();
        assert!(ours * 2 < json, "{ours} bytes encoded, {json} as JSON");
    }

    #[test]
    fn another_format_or_damage_is_refused_not_misread() {
        let mut bytes = encode_snapshot(&snapshot());
        bytes[0] = SNAPSHOT_FORMAT + 1;
        let err = decode_snapshot(&bytes).unwrap_err();
        assert!(err.contains("snapshot format 2"), "{err}");
        assert!(decode_snapshot(&[]).unwrap_err().contains("empty"));
        let whole = encode_snapshot(&snapshot());
        assert!(decode_snapshot(&whole[..whole.len() - 3]).is_err());
        let mut longer = whole.clone();
        longer.push(0);
        assert!(decode_snapshot(&longer).is_err(), "trailing bytes");
        // A huge length prefix must be refused, not allocated.
        let garbage = [
            SNAPSHOT_FORMAT,
            1,
            2,
            3,
            4,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
        ];
        assert!(decode_snapshot(&garbage).is_err());
    }
}
