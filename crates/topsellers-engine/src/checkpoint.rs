//! The checkpoint format: the whole engine state as bytes.
//!
//! Layout: one format-version byte, then the xxh3-64 of the payload (8 bytes, little endian), then the
//! payload: [`StateV2`] encoded with bincode's default options (variable-length integers). The checksum
//! turns a torn or bit-flipped file into a clear error instead of silently wrong counts.
//!
//! Format 1 is still read. Its payload is a [`StateV1`] alone (bincode puts fields one after another,
//! so it is a prefix of format 2's), and its dedup keys are hashes of the event id alone, from when a
//! duplicate was the same id whatever the item. Those cannot be turned into (event id, item id) keys,
//! so they are kept apart, under the old rule, until the watermark passes them.
//!
//! Everything is written in id order (items, categories, series, aggregates) or sorted (buckets, their
//! entries, dedup ids), so the same state always gives the same bytes. Restoring replays the creation of
//! categories and series in id order, which reproduces every interned id exactly; the maps are rebuilt,
//! the rankings recomputed on the next snapshot.

use crate::catalog::Catalog;
use crate::dedup::Dedup;
use crate::engine::{Counters, Engine};
use crate::error::EngineError;
use crate::windows::Sum;
use bincode::Options;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use topsellers_model::{CategoryPath, WindowSpec};
use xxhash_rust::xxh3::xxh3_64;

/// Bump on any change to [`StateV2`], the meaning of its fields, or the layout.
pub const CHECKPOINT_FORMAT_VERSION: u8 = 2;

/// The format whose dedup keys are event ids alone; still read, never written.
const FORMAT_ID_ONLY_DEDUP: u8 = 1;

/// Format 2: format 1's fields, `state.dedup` now holding (event id, item id) line keys, then the
/// id-only keys inherited from a format-1 checkpoint that have not expired yet (usually none).
#[derive(Serialize, Deserialize)]
struct StateV2<'a> {
    state: StateV1<'a>,
    legacy_dedup: Vec<(u128, i64)>,
}

#[derive(Serialize, Deserialize)]
struct StateV1<'a> {
    bucket_secs: u64,
    windows: Vec<WindowSpec>,
    max_time_ms: Option<i64>,
    counters: Counters,
    /// Category paths by id.
    categories: Vec<Cow<'a, str>>,
    /// (item id, name) by item id.
    items: Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>,
    /// (leaf category id, item id) by series id.
    series: Vec<(u32, u32)>,
    /// Window sums, `aggregate * windows + window`.
    sums: Cow<'a, [Sum]>,
    /// Kept buckets, ascending, each with its (series id, sum) entries ascending by series id.
    buckets: Vec<(i64, Vec<(u32, Sum)>)>,
    /// Dedup keys that still count, with their event time, ascending: hashes of (event id, item id)
    /// in format 2, of the event id alone in format 1.
    dedup: Vec<(u128, i64)>,
}

fn options() -> impl Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

pub(crate) fn encode(engine: &Engine) -> Vec<u8> {
    let catalog = &engine.catalog;
    let mut buckets: Vec<(i64, Vec<(u32, Sum)>)> = engine
        .windows
        .buckets
        .iter()
        .map(|(&at, bucket)| {
            let mut entries: Vec<(u32, Sum)> = bucket.iter().map(|(&s, &sum)| (s, sum)).collect();
            entries.sort_unstable_by_key(|&(s, _)| s);
            (at, entries)
        })
        .collect();
    buckets.sort_unstable_by_key(|&(at, _)| at);
    let watermark = engine.watermark_ms();
    let dedup = engine.dedup.live_entries(watermark);
    let legacy_dedup = engine
        .legacy_dedup
        .as_ref()
        .map_or_else(Vec::new, |legacy| legacy.live_entries(watermark));
    let state = StateV1 {
        bucket_secs: engine.config.bucket_secs,
        windows: engine.specs.clone(),
        max_time_ms: engine.max_time,
        counters: engine.counters,
        categories: catalog
            .categories
            .iter()
            .map(|c| Cow::Borrowed(&*c.path))
            .collect(),
        items: catalog
            .items
            .iter()
            .map(|i| (Cow::Borrowed(&*i.id), i.name.as_deref().map(Cow::Borrowed)))
            .collect(),
        series: catalog.series.iter().map(|s| (s.leaf, s.item)).collect(),
        sums: Cow::Borrowed(&engine.windows.sums[..catalog.aggregates() * engine.specs.len()]),
        buckets,
        dedup,
    };
    let payload = options()
        .serialize(&StateV2 {
            state,
            legacy_dedup,
        })
        .expect("engine state is plain data and always serializes");
    let mut out = Vec::with_capacity(payload.len() + 9);
    out.push(CHECKPOINT_FORMAT_VERSION);
    out.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn corrupt(reason: impl Into<String>) -> EngineError {
    EngineError::CorruptCheckpoint {
        reason: reason.into(),
    }
}

/// Loads `bytes` into `engine`, a fresh engine built from the new config.
pub(crate) fn decode(mut engine: Engine, bytes: &[u8]) -> Result<Engine, EngineError> {
    let (&version, rest) = bytes.split_first().ok_or_else(|| corrupt("it is empty"))?;
    if version != CHECKPOINT_FORMAT_VERSION && version != FORMAT_ID_ONLY_DEDUP {
        return Err(EngineError::UnsupportedCheckpointVersion {
            found: version,
            expected: CHECKPOINT_FORMAT_VERSION,
        });
    }
    if rest.len() < 8 {
        return Err(corrupt("it is truncated"));
    }
    let (sum, payload) = rest.split_at(8);
    if xxh3_64(payload).to_le_bytes() != sum {
        return Err(corrupt("checksum mismatch"));
    }
    let options = options().with_limit(payload.len() as u64);
    let decoded = if version == FORMAT_ID_ONLY_DEDUP {
        options
            .deserialize(payload)
            .map(|mut state: StateV1| StateV2 {
                legacy_dedup: std::mem::take(&mut state.dedup),
                state,
            })
    } else {
        options.deserialize(payload)
    };
    let StateV2 {
        state,
        legacy_dedup,
    } = decoded.map_err(|e| corrupt(format!("cannot decode: {e}")))?;
    check_settings(&engine, &state)?;
    engine.max_time = state.max_time_ms;
    engine.counters = state.counters;
    engine.catalog = rebuild_catalog(&state)?;
    let w = engine.specs.len();
    if state.sums.len() != engine.catalog.aggregates() * w {
        return Err(corrupt(format!(
            "{} window sums for {} aggregates and {w} windows",
            state.sums.len(),
            engine.catalog.aggregates()
        )));
    }
    engine.windows.sums = state.sums.into_owned();
    engine.windows.cur = state.max_time_ms.map(|t| engine.bucket_of(t));
    let series_count = engine.catalog.series.len();
    for (at, entries) in state.buckets {
        let bucket = engine.windows.buckets.entry(at).or_default();
        for (series, sum) in entries {
            if series as usize >= series_count {
                return Err(corrupt(format!(
                    "bucket {at} names unknown series {series}"
                )));
            }
            bucket.insert(series, sum);
        }
    }
    let watermark = engine.watermark_ms();
    remember_all(&mut engine.dedup, state.dedup, watermark)?;
    if !legacy_dedup.is_empty() {
        let mut legacy = Dedup::default();
        remember_all(&mut legacy, legacy_dedup, watermark)?;
        engine.legacy_dedup = Some(legacy);
    }
    engine.after_restore();
    Ok(engine)
}

fn remember_all(
    dedup: &mut Dedup,
    entries: Vec<(u128, i64)>,
    watermark: i64,
) -> Result<(), EngineError> {
    for (key, time) in entries {
        if key == 0 {
            return Err(corrupt("a dedup entry has the reserved id hash 0"));
        }
        dedup.remember(key, time, watermark);
    }
    Ok(())
}

fn check_settings(engine: &Engine, state: &StateV1) -> Result<(), EngineError> {
    if state.bucket_secs != engine.config.bucket_secs {
        return Err(EngineError::CheckpointSettingsMismatch {
            setting: "engine.bucket_secs",
            written: state.bucket_secs.to_string(),
            configured: engine.config.bucket_secs.to_string(),
        });
    }
    if state.windows != engine.specs {
        let names = |ws: &[WindowSpec]| {
            format!(
                "{:?}",
                ws.iter().map(|w| w.name.as_str()).collect::<Vec<_>>()
            )
        };
        return Err(EngineError::CheckpointSettingsMismatch {
            setting: "engine.windows",
            written: names(&state.windows),
            configured: names(&engine.specs),
        });
    }
    Ok(())
}

/// Replays category and series creation in id order; any id that comes out different means the bytes
/// do not describe a state this engine could have reached.
fn rebuild_catalog(state: &StateV1) -> Result<Catalog, EngineError> {
    let mut catalog = Catalog::new();
    for (id, raw) in state.categories.iter().enumerate() {
        let path =
            CategoryPath::parse(raw).map_err(|e| corrupt(format!("category {raw:?}: {e}")))?;
        if path.as_str() != raw || catalog.category(&path) as usize != id {
            return Err(corrupt(format!(
                "category {raw:?} is out of order or not normalised"
            )));
        }
    }
    if catalog.categories.len() != state.categories.len() {
        return Err(corrupt("category list misses an ancestor"));
    }
    for (id, &(leaf, item)) in state.series.iter().enumerate() {
        let (Some((item_id, _)), true) = (
            state.items.get(item as usize),
            (leaf as usize) < catalog.categories.len(),
        ) else {
            return Err(corrupt(format!(
                "series {id} names unknown item {item} or category {leaf}"
            )));
        };
        let series = catalog.series(leaf, item_id);
        if series as usize != id || catalog.item_of_series(series) != item {
            return Err(corrupt(format!("series {id} is out of order")));
        }
    }
    if catalog.items.len() != state.items.len() {
        return Err(corrupt("an item has no series"));
    }
    for (item, (_, name)) in state.items.iter().enumerate() {
        if let Some(name) = name {
            catalog.set_name(item as u32, name);
        }
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::legacy_id_key;
    use crate::{Admission, EngineConfig};
    use topsellers_model::PurchaseEvent;

    const T0: i64 = 1_000 * 86_400_000;
    const MIN: i64 = 60_000;

    fn sale(id: &str, item: &str, time: i64) -> PurchaseEvent {
        PurchaseEvent {
            event_id: Some(id.into()),
            event_time_ms: time,
            original_time_ms: None,
            item_id: item.into(),
            item_name: None,
            category: CategoryPath::parse("a").unwrap(),
            quantity: 1,
            unit_price_minor: 100,
            currency: "GBP".into(),
            country: None,
        }
    }

    /// The bytes a format-1 build wrote for `engine`'s state, with `ids` (event id, time) as its dedup
    /// entries: keys of the id alone, as that build computed them.
    fn format_1(engine: &Engine, ids: &[(&str, i64)]) -> Vec<u8> {
        let bytes = encode(engine);
        let StateV2 { mut state, .. } = options().deserialize(&bytes[9..]).unwrap();
        state.dedup = ids
            .iter()
            .map(|&(id, time)| (legacy_id_key(id), time))
            .collect();
        state.dedup.sort_unstable();
        let payload = options().serialize(&state).unwrap();
        let mut out = vec![FORMAT_ID_ONLY_DEDUP];
        out.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    #[test]
    fn a_format_1_checkpoint_keeps_its_ids_under_the_old_rule_until_they_expire() {
        let config = EngineConfig::default();
        let lateness = config.lateness_ms();
        let mut before = Engine::new(config.clone()).unwrap();
        before.admit(&sale("e1", "x", T0));
        before.admit(&sale("e2", "y", T0 + MIN));
        let v1 = format_1(&before, &[("e1", T0), ("e2", T0 + MIN)]);

        let mut e = Engine::restore(config.clone(), &v1).unwrap();
        assert_eq!(e.stats().dedup_ids, 2);
        // Retries of events accepted before the upgrade: duplicates, whatever the item (the old rule
        // cannot tell, and dropping a line beats counting a retry twice).
        assert_eq!(e.admit(&sale("e1", "x", T0)), Admission::Duplicate);
        assert_eq!(e.admit(&sale("e2", "z", T0 + MIN)), Admission::Duplicate);
        // New ids follow the new rule.
        assert_eq!(e.admit(&sale("e3", "x", T0 + MIN)), Admission::Accepted);
        assert_eq!(e.admit(&sale("e3", "y", T0 + MIN)), Admission::Accepted);
        assert_eq!(e.admit(&sale("e3", "y", T0 + MIN)), Admission::Duplicate);

        // Written again, the inherited keys are carried along, and the bytes are stable.
        let v2 = e.checkpoint();
        assert_eq!(v2[0], CHECKPOINT_FORMAT_VERSION);
        let mut again = Engine::restore(config.clone(), &v2).unwrap();
        assert_eq!(again.checkpoint(), v2);
        assert_eq!(
            again.admit(&sale("e2", "z", T0 + MIN)),
            Admission::Duplicate
        );

        // Once the watermark passes them, the inherited keys are dropped for good.
        again.tick(T0 + MIN + lateness + 2 * MIN);
        assert!(again.legacy_dedup.is_none());
        assert_eq!(again.stats().dedup_ids, 0);
        let expired = Engine::restore(config, &again.checkpoint()).unwrap();
        assert!(expired.legacy_dedup.is_none());
    }
}
