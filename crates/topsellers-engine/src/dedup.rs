//! Remembering event ids long enough to drop producer retries.
//!
//! An id is remembered, as a 128-bit hash (fixed memory per id whatever its length), together with the
//! event time of the accepted event that carried it. It counts as seen while that time is at or after
//! the watermark: a retry of an older event would be late anyway, so its id may be forgotten. Forgetting
//! is lazy and in batches, but the rule above is applied exactly at every lookup, so when the batch runs
//! is never observable.

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_128;

#[derive(Clone, Debug, Default)]
pub(crate) struct Dedup {
    /// Hash of the event id -> event time of the accepted event.
    pub seen: FxHashMap<u128, i64>,
    /// Watermark at the last sweep; the next sweep waits until it moved on by `sweep_every_ms`.
    swept_at: i64,
}

pub(crate) fn id_key(event_id: &str) -> u128 {
    xxh3_128(event_id.as_bytes())
}

impl Dedup {
    pub fn is_duplicate(&self, key: u128, watermark: i64) -> bool {
        self.seen.get(&key).is_some_and(|&t| t >= watermark)
    }

    pub fn remember(&mut self, key: u128, event_time_ms: i64) {
        self.seen.insert(key, event_time_ms);
    }

    /// Forgets ids the watermark has passed, at most once per `sweep_every_ms` of watermark progress so
    /// that each id is scanned a bounded number of times.
    pub fn sweep(&mut self, watermark: i64, sweep_every_ms: i64) {
        if self.seen.is_empty() {
            self.swept_at = watermark;
            return;
        }
        if watermark.saturating_sub(self.swept_at) < sweep_every_ms {
            return;
        }
        self.seen.retain(|_, t| *t >= watermark);
        self.swept_at = watermark;
    }

    pub fn restore(entries: impl IntoIterator<Item = (u128, i64)>, watermark: i64) -> Self {
        Dedup {
            seen: entries.into_iter().collect(),
            swept_at: watermark,
        }
    }

    pub fn approx_bytes(&self) -> u64 {
        (self.seen.capacity() * (std::mem::size_of::<(u128, i64)>() + 1)) as u64
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
    fn sweeps_forget_only_passed_ids_and_wait_for_progress() {
        let mut d = Dedup::default();
        d.sweep(0, 100);
        d.remember(id_key("old"), 10);
        d.remember(id_key("new"), 500);
        d.sweep(50, 100);
        assert_eq!(d.seen.len(), 2, "too little progress: no sweep yet");
        d.sweep(200, 100);
        assert_eq!(d.seen.len(), 1);
        assert!(d.is_duplicate(id_key("new"), 200));
    }
}
