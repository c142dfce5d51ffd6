//! Remembering purchase lines long enough to drop producer retries.
//!
//! A duplicate is the same event id *for the same item*: one order (one id) may hold several items,
//! and those are different lines. The rule is also the only one a topic keyed by item id can keep, as
//! two items with one id may live in two partitions whose engines never meet. So the key is the pair
//! (event id, item id), remembered as a 128-bit hash (fixed memory per line whatever the lengths of
//! the ids) together with the event time of the accepted event that carried it. It counts as seen while
//! that time is at or after the watermark: a retry of an older event would be late anyway, so its key
//! may be forgotten.
//!
//! The ids live in one open-addressing table built for this job: the keys are already uniformly random
//! (hashes), so a key's slot is its low bits, and a slot holds the key and the time together, so a
//! lookup is one cache line (a general hash map reads a control byte array and then the slot: two
//! misses on a table of a million ids). An expired entry is a reusable slot: an insert takes the
//! first expired or empty slot of its probe run, and lookups pass over expired entries. When half
//! the slots are in use, the table is rebuilt with only the live ids, at four times their number, so
//! each insert moves at most about one entry in rebuilds.

use topsellers_model::{MAX_EVENT_ID_LEN, MAX_ITEM_ID_LEN};
use xxhash_rust::xxh3::xxh3_128;

/// A remembered id: the two halves of its 128-bit hash (never both zero; all-zero marks an empty slot)
/// and the event time of the accepted event that carried it. Two `u64`s rather than a `u128` keep the
/// slot at 24 bytes (a `u128` would align it to 32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    lo: u64,
    hi: u64,
    time: i64,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.lo == 0 && self.hi == 0
    }
}

const MIN_SLOTS: usize = 1024;

#[derive(Clone, Debug)]
pub(crate) struct Dedup {
    /// Power-of-two many slots.
    slots: Vec<Slot>,
    /// Slots that are not empty (live or expired).
    used: usize,
    /// Newest event time in the table: once behind the watermark, the whole table is expired.
    newest: i64,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            slots: vec![Slot::default(); MIN_SLOTS],
            used: 0,
            newest: i64::MIN,
        }
    }
}

/// Separates the event id from the item id in the hashed bytes. 0xFF never occurs in UTF-8, so
/// ("ab", "c") and ("a", "bc") hash different bytes: no two pairs of strings share an encoding.
const SEPARATOR: u8 = 0xFF;

/// Ids up to the lengths ingest allows are joined on the stack; longer ones (an engine fed without
/// ingest's limits) take the heap, with the same bytes and so the same key.
const JOINED_ON_STACK: usize = MAX_EVENT_ID_LEN + 1 + MAX_ITEM_ID_LEN;

/// The key of a purchase line: the xxh3-128 hash of its event id, [`SEPARATOR`] and its item id, with
/// the all-zero value (which marks empty slots) moved to 1.
pub(crate) fn line_key(event_id: &str, item_id: &str) -> u128 {
    let (id, item) = (event_id.as_bytes(), item_id.as_bytes());
    let len = id.len() + 1 + item.len();
    let hash = if len <= JOINED_ON_STACK {
        let mut joined = [0u8; JOINED_ON_STACK];
        joined[..id.len()].copy_from_slice(id);
        joined[id.len()] = SEPARATOR;
        joined[id.len() + 1..len].copy_from_slice(item);
        xxh3_128(&joined[..len])
    } else {
        xxh3_128(&[id, &[SEPARATOR], item].concat())
    };
    hash.max(1)
}

/// The key of an event id alone, as checkpoints of format 1 hold them (when a duplicate was the same
/// id whatever the item): an engine restored from one keeps those keys until they expire, so a retry of
/// an event accepted before the upgrade is still a duplicate.
pub(crate) fn legacy_id_key(event_id: &str) -> u128 {
    xxh3_128(event_id.as_bytes()).max(1)
}

fn halves(key: u128) -> (u64, u64) {
    (key as u64, (key >> 64) as u64)
}

impl Dedup {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    pub fn is_duplicate(&self, key: u128, watermark: i64) -> bool {
        let (lo, hi) = halves(key);
        let mask = self.mask();
        let mut i = lo as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.lo == lo && slot.hi == hi {
                return slot.time >= watermark;
            }
            if slot.is_empty() {
                return false;
            }
            i = (i + 1) & mask;
        }
    }

    /// Reads the slots a lookup of `key` starts at, so that the lookup that follows finds them cached;
    /// the value is meaningless, for the caller to fold into something it keeps. A slot is 24 bytes,
    /// so the first slot may straddle two cache lines and a probe of two or three slots (the usual
    /// run at this table's load) often spans two: the first field of the first slot and the last of
    /// the third are read.
    #[inline]
    pub fn touch(&self, key: u128) -> u64 {
        let (lo, _) = halves(key);
        let mask = self.mask();
        let i = lo as usize & mask;
        self.slots[i].lo ^ self.slots[(i + 2) & mask].time as u64
    }

    /// Remembers `key` (which is not a live duplicate) with its event time. Expired entries, older than
    /// `watermark`, may be overwritten.
    #[inline]
    pub fn remember(&mut self, key: u128, event_time_ms: i64, watermark: i64) {
        let (lo, hi) = halves(key);
        let mask = self.mask();
        let mut i = lo as usize & mask;
        let mut reusable = None;
        let target = loop {
            let slot = self.slots[i];
            if slot.lo == lo && slot.hi == hi {
                break i;
            }
            if slot.is_empty() {
                break reusable.unwrap_or_else(|| {
                    self.used += 1;
                    i
                });
            }
            if reusable.is_none() && slot.time < watermark {
                reusable = Some(i);
            }
            i = (i + 1) & mask;
        };
        self.slots[target] = Slot {
            lo,
            hi,
            time: event_time_ms,
        };
        self.newest = self.newest.max(event_time_ms);
        if self.used * 2 >= self.slots.len() {
            self.rebuild(watermark);
        }
    }

    /// A fresh table holding only the live ids, with four slots per id (at least `MIN_SLOTS`).
    fn rebuild(&mut self, watermark: i64) {
        let live: Vec<Slot> = self
            .slots
            .iter()
            .filter(|s| !s.is_empty() && s.time >= watermark)
            .copied()
            .collect();
        let size = (live.len() * 4).next_power_of_two().max(MIN_SLOTS);
        self.slots = vec![Slot::default(); size];
        self.used = 0;
        let mask = size - 1;
        for slot in live {
            let mut i = slot.lo as usize & mask;
            while !self.slots[i].is_empty() {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
            self.used += 1;
        }
    }

    /// Releases the memory once every remembered id is behind the watermark (e.g. after an idle gap).
    pub fn forget_before(&mut self, watermark: i64) {
        if self.used > 0 && self.newest < watermark {
            *self = Dedup::default();
        }
    }

    /// Slots in use, live or expired but not yet reused.
    pub fn len(&self) -> usize {
        self.used
    }

    /// The ids that still count (event time at or after the watermark) with their times, sorted: the
    /// checkpoint's form. Expired entries are left out, so the bytes depend only on observable state.
    pub fn live_entries(&self, watermark: i64) -> Vec<(u128, i64)> {
        let mut all: Vec<(u128, i64)> = self
            .slots
            .iter()
            .filter(|s| !s.is_empty() && s.time >= watermark)
            .map(|s| ((u128::from(s.hi) << 64) | u128::from(s.lo), s.time))
            .collect();
        all.sort_unstable();
        all
    }

    pub fn approx_bytes(&self) -> u64 {
        (self.slots.capacity() * std::mem::size_of::<Slot>()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_key(event_id: &str) -> u128 {
        line_key(event_id, "item")
    }

    #[test]
    fn the_key_is_the_pair_of_event_id_and_item_id() {
        assert_eq!(line_key("e1", "a"), line_key("e1", "a"));
        assert_ne!(line_key("e1", "a"), line_key("e1", "b"));
        assert_ne!(line_key("e1", "a"), line_key("e2", "a"));
        // The separator keeps the boundary: the same concatenation split elsewhere is another line.
        assert_ne!(line_key("ab", "c"), line_key("a", "bc"));
        assert_ne!(line_key("", "ab"), line_key("ab", ""));
        assert_eq!(line_key("e1", "a"), xxh3_128(b"e1\xffa").max(1));
    }

    #[test]
    fn long_ids_hash_the_same_bytes_on_the_heap() {
        let id = "i".repeat(MAX_EVENT_ID_LEN);
        let item = "x".repeat(MAX_ITEM_ID_LEN);
        let joined = |id: &str, item: &str| [id.as_bytes(), &[0xFF], item.as_bytes()].concat();
        // Exactly the stack buffer, and one byte past it.
        assert_eq!(line_key(&id, &item), xxh3_128(&joined(&id, &item)).max(1));
        let longer = format!("{item}y");
        assert_eq!(
            line_key(&id, &longer),
            xxh3_128(&joined(&id, &longer)).max(1)
        );
        assert_ne!(line_key(&id, &item), line_key(&id, &longer));
    }

    #[test]
    fn ids_count_while_their_time_is_not_late() {
        let mut d = Dedup::default();
        let k = id_key("e1");
        d.remember(k, 1000, 0);
        assert!(d.is_duplicate(k, 1000));
        assert!(!d.is_duplicate(k, 1001));
        assert!(!d.is_duplicate(id_key("e2"), 0));
    }

    #[test]
    fn an_id_seen_again_after_expiry_counts_from_its_new_time() {
        let mut d = Dedup::default();
        let k = id_key("e1");
        d.remember(k, 10, 0);
        d.remember(k, 500, 400);
        assert!(d.is_duplicate(k, 400));
        assert_eq!(d.len(), 1, "the entry was updated in place");
        assert_eq!(d.live_entries(0), vec![(k, 500)]);
    }

    #[test]
    fn expired_slots_are_reused_and_rebuilds_keep_live_ids() {
        let mut d = Dedup::default();
        // Far more ids than the initial table holds, each expiring 100 ms after it arrives.
        for n in 0..50_000i64 {
            d.remember(id_key(&n.to_string()), n, n - 100);
        }
        assert!(
            d.slots.len() <= 4096,
            "expired ids made room: {} slots",
            d.slots.len()
        );
        for n in 49_900..50_000i64 {
            assert!(d.is_duplicate(id_key(&n.to_string()), 49_900), "{n}");
        }
        assert!(!d.is_duplicate(id_key("49899"), 49_900));
        assert_eq!(d.live_entries(49_900).len(), 100);
    }

    #[test]
    fn live_ids_grow_the_table() {
        let mut d = Dedup::default();
        for n in 0..10_000i64 {
            d.remember(id_key(&n.to_string()), 0, 0);
        }
        assert!((0..10_000i64).all(|n| d.is_duplicate(id_key(&n.to_string()), 0)));
        assert_eq!(d.len(), 10_000);
        assert!(d.slots.len() >= 20_000);
    }

    #[test]
    fn everything_is_released_once_behind_the_watermark() {
        let mut d = Dedup::default();
        d.remember(id_key("a"), 10, 0);
        d.forget_before(10);
        assert_eq!(d.len(), 1);
        d.forget_before(11);
        assert_eq!(d.len(), 0);
        assert!(!d.is_duplicate(id_key("a"), 0));
    }
}
