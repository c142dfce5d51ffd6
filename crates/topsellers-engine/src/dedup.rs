//! Remembering event ids long enough to drop producer retries.
//!
//! An id is remembered, as a 128-bit hash (fixed memory per id whatever its length), together with the
//! event time of the accepted event that carried it. It counts as seen while that time is at or after
//! the watermark: a retry of an older event would be late anyway, so its id may be forgotten.
//!
//! Ids are kept in two tables, `newer` (where every insert goes) and `older`. Once the watermark has
//! passed the newest time in `older`, every id there is expired: `older` is dropped whole and `newer`
//! takes its place. Each table so holds about one lateness worth of ids, forgetting never scans a
//! table, and a lookup costs two probes. The rule above is applied exactly at every lookup, so when a
//! table is dropped is never observable.

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_128;

type Table = FxHashMap<u128, i64>;

#[derive(Clone, Debug)]
pub(crate) struct Dedup {
    /// Hash of the event id -> event time of the accepted event that carried it.
    newer: Table,
    /// Newest event time in `newer` (`i64::MIN` when empty).
    newer_max: i64,
    older: Table,
    older_max: i64,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            newer: Table::default(),
            newer_max: i64::MIN,
            older: Table::default(),
            older_max: i64::MIN,
        }
    }
}

pub(crate) fn id_key(event_id: &str) -> u128 {
    xxh3_128(event_id.as_bytes())
}

impl Dedup {
    #[inline]
    pub fn is_duplicate(&self, key: u128, watermark: i64) -> bool {
        let seen = |table: &Table| table.get(&key).is_some_and(|&t| t >= watermark);
        seen(&self.newer) || (!self.older.is_empty() && seen(&self.older))
    }

    #[inline]
    pub fn remember(&mut self, key: u128, event_time_ms: i64) {
        self.newer.insert(key, event_time_ms);
        self.newer_max = self.newer_max.max(event_time_ms);
    }

    /// Drops what the watermark has passed: `older` once all of it is behind, both when `newer` is too.
    pub fn forget_before(&mut self, watermark: i64) {
        if self.older_max >= watermark {
            return;
        }
        if self.newer_max < watermark {
            self.newer.clear();
            self.older.clear();
            self.newer_max = i64::MIN;
            self.older_max = i64::MIN;
            return;
        }
        // The next `newer` will likely see as many ids as this one did: start it at that size.
        let expected = self.newer.len();
        self.older = std::mem::replace(
            &mut self.newer,
            Table::with_capacity_and_hasher(expected, Default::default()),
        );
        self.older_max = std::mem::replace(&mut self.newer_max, i64::MIN);
    }

    pub fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    /// The ids that still count (event time at or after the watermark) with their times, sorted: the
    /// checkpoint's form. Expired entries are left out, so the bytes depend only on observable state,
    /// not on when a table was last dropped.
    pub fn live_entries(&self, watermark: i64) -> Vec<(u128, i64)> {
        let mut all: Vec<(u128, i64)> = self
            .older
            .iter()
            .chain(&self.newer)
            .filter(|(_, &t)| t >= watermark)
            .map(|(&k, &t)| (k, t))
            .collect();
        all.sort_unstable();
        all
    }

    pub fn approx_bytes(&self) -> u64 {
        let per_slot = std::mem::size_of::<(u128, i64)>() + 1;
        ((self.newer.capacity() + self.older.capacity()) * per_slot) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_while_their_time_is_not_late() {
        let mut d = Dedup::default();
        let k = id_key("e1");
        d.remember(k, 1000);
        assert!(d.is_duplicate(k, 1000));
        assert!(!d.is_duplicate(k, 1001));
        assert!(!d.is_duplicate(id_key("e2"), 0));
    }

    #[test]
    fn an_id_seen_again_after_expiry_counts_from_its_new_time() {
        let mut d = Dedup::default();
        let k = id_key("e1");
        d.remember(k, 10);
        d.forget_before(5);
        d.remember(k, 500);
        assert!(d.is_duplicate(k, 400));
        assert_eq!(d.live_entries(400), vec![(k, 500)]);
        assert_eq!(d.live_entries(0), vec![(k, 10), (k, 500)]);
    }

    #[test]
    fn tables_are_dropped_once_the_watermark_passes_them() {
        let mut d = Dedup::default();
        d.remember(id_key("old"), 10);
        d.forget_before(5);
        d.remember(id_key("new"), 500);
        d.forget_before(10);
        assert_eq!(d.len(), 2, "`old` is still at the watermark");
        assert!(d.is_duplicate(id_key("old"), 10));
        d.forget_before(11);
        assert_eq!(
            d.len(),
            1,
            "everything in the older table is behind the watermark"
        );
        assert!(d.is_duplicate(id_key("new"), 11));
        assert_eq!(d.live_entries(11), vec![(id_key("new"), 500)]);
        d.forget_before(501);
        assert_eq!(d.len(), 0);
    }
}
