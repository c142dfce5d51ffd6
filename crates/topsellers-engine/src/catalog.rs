//! Interning: item ids, category paths and (category, item) pairs become dense `u32` ids, so that the
//! hot path hashes each string once and then indexes plain `Vec`s.
//!
//! Vocabulary:
//! - a *category* is any path that counts a sale: the event's own path and every ancestor up to `""`;
//! - a *series* is a (leaf category, item) pair: the unit the buckets count, one per category an item
//!   was sold in directly;
//! - an *aggregate* is a (category, item) pair for any category, leaf or ancestor: the unit the window
//!   sums and the rankings use. A series feeds one aggregate per ancestor of its leaf.

use rustc_hash::FxHashMap;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use topsellers_model::CategoryPath;
use xxhash_rust::xxh3::xxh3_64;

pub(crate) type ItemId = u32;
pub(crate) type CatId = u32;
pub(crate) type SeriesId = u32;
pub(crate) type AggId = u32;

/// Item ids up to this many bytes are stored inside the index's table slot.
const INLINE_KEY: usize = 22;

/// An item id as the index stores it. Short ids (SKUs usually are) live inline, so a lookup compares
/// bytes that sit in the same cache line as the slot instead of chasing a pointer to the heap: on a
/// million items that is one cache miss less per event.
#[derive(Clone, Debug)]
enum ItemKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl ItemKey {
    fn new(id: &str) -> Self {
        let raw = id.as_bytes();
        if raw.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..raw.len()].copy_from_slice(raw);
            ItemKey::Inline {
                len: raw.len() as u8,
                bytes,
            }
        } else {
            ItemKey::Heap(raw.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            ItemKey::Inline { len, bytes } => &bytes[..*len as usize],
            ItemKey::Heap(bytes) => bytes,
        }
    }
}

// Hash and equality are those of the bytes, as `Borrow<[u8]>` requires for lookups by `&[u8]`.
impl Hash for ItemKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}
impl PartialEq for ItemKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for ItemKey {}
impl Borrow<[u8]> for ItemKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub id: Box<str>,
    /// Name from the most recently accepted event for this item that carried a non-empty one.
    pub name: Option<Box<str>>,
    /// Series beyond the first, for items sold in more than one leaf category (rare).
    pub extra_series: Vec<SeriesId>,
}

/// Where an item's first series counts, as found ahead of admission (see [`Catalog::peek`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peeked {
    pub leaf: CatId,
    pub series: SeriesId,
    pub first_agg: AggId,
}

/// What the item index maps an item id to. Everything the hot path needs for the item's first series
/// is here, because almost every item is sold in exactly one category: one hash lookup then finds the
/// series, its aggregates and whether the name changed, without touching any other table.
#[derive(Clone, Copy, Debug)]
struct ItemSlot {
    item: ItemId,
    first_leaf: CatId,
    first_series: SeriesId,
    /// The first series' aggregates are `first_agg..` (one per ancestor of `first_leaf`).
    first_agg: AggId,
    /// xxh3-64 of the current name, 0 for none: a repeated name is recognised without reading it.
    name_hash: u64,
}

/// A slot of [`ItemTable`]: the key's hash (0 marks an empty slot), the key and what it maps to, in
/// one cache line.
#[derive(Clone, Debug)]
#[repr(align(64))]
struct ItemEntry {
    hash: u64,
    key: ItemKey,
    slot: ItemSlot,
}

const EMPTY_ENTRY: ItemEntry = ItemEntry {
    hash: 0,
    key: ItemKey::Inline {
        len: 0,
        bytes: [0; INLINE_KEY],
    },
    slot: ItemSlot {
        item: 0,
        first_leaf: 0,
        first_series: 0,
        first_agg: 0,
        name_hash: 0,
    },
};

/// The item index: open addressing with linear probing over cache-line slots that hold the key
/// inline, so a lookup of a short id reads one cache line (a general hash map reads a control byte
/// array and then the slot: two dependent misses on a million items), and the line can be read ahead
/// from the hash alone (see [`Catalog::touch_item`]). Items are never removed; the table doubles when
/// half full.
#[derive(Clone, Debug)]
struct ItemTable {
    /// Power-of-two many entries.
    entries: Vec<ItemEntry>,
    len: usize,
}

impl Default for ItemTable {
    fn default() -> Self {
        ItemTable {
            entries: vec![EMPTY_ENTRY; 16],
            len: 0,
        }
    }
}

/// The index's hash of an item id: xxh3-64, never 0 (which marks empty slots).
#[inline]
pub(crate) fn item_hash(id: &[u8]) -> u64 {
    xxh3_64(id) | 1
}

impl ItemTable {
    #[inline]
    fn find(&self, hash: u64, id: &[u8]) -> Result<usize, usize> {
        let mask = self.entries.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let e = &self.entries[i];
            if e.hash == hash && e.key.as_bytes() == id {
                return Ok(i);
            }
            if e.hash == 0 {
                return Err(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn get_hashed(&self, hash: u64, id: &[u8]) -> Option<&ItemSlot> {
        let i = self.find(hash, id).ok()?;
        Some(&self.entries[i].slot)
    }

    #[inline]
    fn get(&self, id: &[u8]) -> Option<&ItemSlot> {
        let i = self.find(item_hash(id), id).ok()?;
        Some(&self.entries[i].slot)
    }

    #[inline]
    fn get_mut(&mut self, id: &[u8]) -> Option<&mut ItemSlot> {
        let i = self.find(item_hash(id), id).ok()?;
        Some(&mut self.entries[i].slot)
    }

    /// Adds an id that is not in the table.
    fn insert(&mut self, key: ItemKey, slot: ItemSlot) {
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let hash = item_hash(key.as_bytes());
        let Err(i) = self.find(hash, key.as_bytes()) else {
            unreachable!("inserted ids are new")
        };
        self.entries[i] = ItemEntry { hash, key, slot };
        self.len += 1;
    }

    fn grow(&mut self) {
        let size = self.entries.len() * 2;
        let old = std::mem::replace(&mut self.entries, vec![EMPTY_ENTRY; size]);
        let mask = self.entries.len() - 1;
        for e in old.into_iter().filter(|e| e.hash != 0) {
            let mut i = e.hash as usize & mask;
            while self.entries[i].hash != 0 {
                i = (i + 1) & mask;
            }
            self.entries[i] = e;
        }
    }

    /// Reads the first slot of `hash`'s probe run; the value is meaningless.
    #[inline]
    fn touch(&self, hash: u64) -> u64 {
        self.entries[hash as usize & (self.entries.len() - 1)].hash
    }

    fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Category {
    pub path: Box<str>,
    /// The category itself first, then each parent, ending with the site-wide `""`.
    pub ancestors: Box<[CatId]>,
}

/// Where a series' aggregates are, one per ancestor of its leaf, in the order of
/// `Category::ancestors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aggs {
    /// `first..first + n`: always the case for an item's first series, whose aggregates are all
    /// created together, so the hot path reads one contiguous run of window sums.
    Run(AggId),
    /// `series_aggs[at..at + n]`: a later series of the item shares some ancestors' aggregates.
    Listed(u32),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Series {
    pub item: ItemId,
    pub leaf: CatId,
    pub aggs: Aggs,
}

/// What an accepted event counts in: its series (for the buckets) and the aggregates it feeds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub series: SeriesId,
    pub leaf: CatId,
    pub aggs: Aggs,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    item_index: ItemTable,
    pub items: Vec<Item>,
    category_index: FxHashMap<Box<str>, CatId>,
    pub categories: Vec<Category>,
    extra_series_index: FxHashMap<(CatId, ItemId), SeriesId>,
    pub series: Vec<Series>,
    series_aggs: Vec<AggId>,
    /// Which item each aggregate counts.
    pub agg_item: Vec<ItemId>,
    /// Which category each aggregate counts in: the aggregates of a category are the candidates of
    /// its rankings.
    pub agg_cat: Vec<CatId>,
}

impl Catalog {
    pub fn new() -> Self {
        let mut catalog = Catalog::default();
        // The site-wide list exists from the start, so a snapshot of an idle engine still has it.
        catalog.category(&CategoryPath::site_wide());
        catalog
    }

    /// The id of `path`, creating it and its ancestors on first sight.
    ///
    /// A path that is not in normal form (deserialized from JSON written without
    /// [`CategoryPath::parse`], e.g. `Electronics/Phones`) counts in its normal form: the spelling is
    /// remembered as an alias, so the check runs once per distinct spelling, not per event.
    pub fn category(&mut self, path: &CategoryPath) -> CatId {
        if let Some(&id) = self.category_index.get(path.as_str()) {
            return id;
        }
        if let Ok(normal) = CategoryPath::parse(path.as_str()) {
            if normal != *path {
                let id = self.canonical_category(&normal);
                self.category_index.insert(path.as_str().into(), id);
                return id;
            }
        }
        self.canonical_category(path)
    }

    fn canonical_category(&mut self, path: &CategoryPath) -> CatId {
        if let Some(&id) = self.category_index.get(path.as_str()) {
            return id;
        }
        let ancestors: Vec<&str> = path.ancestors().collect();
        // Create from the root down, so every parent exists before its child.
        let mut ids = Vec::with_capacity(ancestors.len());
        for (i, p) in ancestors.iter().enumerate().rev() {
            let id = match self.category_index.get(*p) {
                Some(&id) => id,
                None => {
                    let id = self.categories.len() as CatId;
                    let mut chain = vec![id];
                    chain.extend(ids.iter().rev());
                    self.categories.push(Category {
                        path: (*p).into(),
                        ancestors: chain.into_boxed_slice(),
                    });
                    self.category_index.insert((*p).into(), id);
                    id
                }
            };
            debug_assert_eq!(
                self.categories[id as usize].ancestors.len(),
                ancestors.len() - i
            );
            ids.push(id);
        }
        *ids.last().expect("a path has at least itself as ancestor")
    }

    /// What an event for `item_id` in `leaf` counts in, creating item, series and aggregates on first
    /// sight; records `name` (already known to be non-empty) as the item's latest name.
    ///
    /// Names are compared by 64-bit hash: a new name whose hash equals the old one's (odds 2^-64) would
    /// keep the old text. Only the display name can be affected, never a count.
    #[inline]
    pub fn resolve(&mut self, leaf: CatId, item_id: &str, name: Option<&str>) -> Target {
        let name_hash = name.map_or(0, |n| xxh3_64(n.as_bytes()).max(1));
        let (item, target) = match self.item_index.get_mut(item_id.as_bytes()) {
            Some(slot) => {
                if name_hash != 0 && slot.name_hash != name_hash {
                    slot.name_hash = name_hash;
                    let item = slot.item;
                    self.items[item as usize].name = name.map(Into::into);
                }
                if slot.first_leaf == leaf {
                    return Target {
                        series: slot.first_series,
                        leaf,
                        aggs: Aggs::Run(slot.first_agg),
                    };
                }
                (slot.item, None)
            }
            None => {
                let item = self.items.len() as ItemId;
                self.items.push(Item {
                    id: item_id.into(),
                    name: name.map(Into::into),
                    extra_series: Vec::new(),
                });
                let series = self.new_series(leaf, item);
                let Aggs::Run(first_agg) = self.series[series as usize].aggs else {
                    unreachable!("an item's first series creates all its aggregates at once")
                };
                self.item_index.insert(
                    ItemKey::new(item_id),
                    ItemSlot {
                        item,
                        first_leaf: leaf,
                        first_series: series,
                        first_agg,
                        name_hash,
                    },
                );
                (item, Some(series))
            }
        };
        let series = target.unwrap_or_else(|| self.extra_series(leaf, item));
        let s = self.series[series as usize];
        Target {
            series,
            leaf,
            aggs: s.aggs,
        }
    }

    /// Where `item_id` (whose [`item_hash`] is `hash`) has its first series counted, if the item is
    /// known; changes nothing. Used to read an
    /// event's data ahead of admitting it.
    #[inline]
    pub fn peek(&self, hash: u64, item_id: &str) -> Option<Peeked> {
        self.item_index
            .get_hashed(hash, item_id.as_bytes())
            .map(|slot| Peeked {
                leaf: slot.first_leaf,
                series: slot.first_series,
                first_agg: slot.first_agg,
            })
    }

    /// Reads the index slot an item id with this [`item_hash`] starts its lookup at, so that the
    /// lookup finds it cached; the value is meaningless.
    #[inline]
    pub fn touch_item(&self, hash: u64) -> u64 {
        self.item_index.touch(hash)
    }

    /// The series of `item_id` sold in `leaf`, created on first sight.
    pub fn series(&mut self, leaf: CatId, item_id: &str) -> SeriesId {
        self.resolve(leaf, item_id, None).series
    }

    fn extra_series(&mut self, leaf: CatId, item: ItemId) -> SeriesId {
        if let Some(&series) = self.extra_series_index.get(&(leaf, item)) {
            return series;
        }
        let series = self.new_series(leaf, item);
        self.extra_series_index.insert((leaf, item), series);
        self.items[item as usize].extra_series.push(series);
        series
    }

    fn new_series(&mut self, leaf: CatId, item: ItemId) -> SeriesId {
        let id = self.series.len() as SeriesId;
        let ancestors = self.categories[leaf as usize].ancestors.clone();
        let found: Vec<Option<AggId>> = ancestors
            .iter()
            .map(|&cat| self.existing_agg(cat, item))
            .collect();
        let aggs = if found.iter().all(Option::is_none) {
            let first = self.agg_item.len() as AggId;
            for &cat in ancestors.iter() {
                self.new_agg(cat, item);
            }
            Aggs::Run(first)
        } else {
            let at = self.series_aggs.len() as u32;
            for (&cat, found) in ancestors.iter().zip(found) {
                let agg = found.unwrap_or_else(|| self.new_agg(cat, item));
                self.series_aggs.push(agg);
            }
            Aggs::Listed(at)
        };
        self.series.push(Series { item, leaf, aggs });
        id
    }

    /// The aggregate of (`cat`, `item`) if another series of the item already feeds it. Only items sold
    /// in several leaves have other series, so this is a short scan rather than another hash map.
    fn existing_agg(&self, cat: CatId, item: ItemId) -> Option<AggId> {
        let item_rec = &self.items[item as usize];
        let first = self
            .item_index
            .get(item_rec.id.as_bytes())
            .map(|slot| slot.first_series);
        first
            .into_iter()
            .chain(item_rec.extra_series.iter().copied())
            .find_map(|s| {
                let series = self.series[s as usize];
                let ancestors = &self.categories[series.leaf as usize].ancestors;
                let i = ancestors.iter().position(|&c| c == cat)?;
                Some(self.agg_at(series.aggs, i))
            })
    }

    fn new_agg(&mut self, cat: CatId, item: ItemId) -> AggId {
        let agg = self.agg_item.len() as AggId;
        self.agg_item.push(item);
        self.agg_cat.push(cat);
        agg
    }

    #[inline]
    fn agg_at(&self, aggs: Aggs, i: usize) -> AggId {
        match aggs {
            Aggs::Run(first) => first + i as AggId,
            Aggs::Listed(at) => self.series_aggs[at as usize + i],
        }
    }

    /// The (category, aggregate) pairs a target feeds: leaf first, site-wide last.
    #[inline]
    pub fn feeds(&self, leaf: CatId, aggs: Aggs) -> impl Iterator<Item = (CatId, AggId)> + '_ {
        let cats = &self.categories[leaf as usize].ancestors;
        cats.iter()
            .enumerate()
            .map(move |(i, &cat)| (cat, self.agg_at(aggs, i)))
    }

    /// The (category, aggregate) pairs a series feeds.
    pub fn series_feeds(&self, series: SeriesId) -> impl Iterator<Item = (CatId, AggId)> + '_ {
        let s = self.series[series as usize];
        self.feeds(s.leaf, s.aggs)
    }

    /// Sets an item's name outright (restoring a checkpoint).
    pub fn set_name(&mut self, item: ItemId, name: &str) {
        let rec = &mut self.items[item as usize];
        rec.name = Some(name.into());
        if let Some(slot) = self.item_index.get_mut(rec.id.as_bytes()) {
            slot.name_hash = xxh3_64(name.as_bytes()).max(1);
        }
    }

    pub fn item_of_series(&self, series: SeriesId) -> ItemId {
        self.series[series as usize].item
    }

    pub fn aggregates(&self) -> usize {
        self.agg_item.len()
    }

    /// Rough heap footprint, for `EngineStats::approx_state_bytes`.
    pub fn approx_bytes(&self) -> u64 {
        use std::mem::size_of;
        let item_heap: usize = self
            .items
            .iter()
            .map(|i| {
                i.id.len()
                    + i.name.as_ref().map_or(0, |n| n.len())
                    + i.extra_series.capacity() * 4
                    + if i.id.len() > INLINE_KEY {
                        i.id.len()
                    } else {
                        0
                    }
            })
            .sum();
        let category_heap: usize = self
            .categories
            .iter()
            .map(|c| 2 * c.path.len() + c.ancestors.len() * 4)
            .sum();
        let tables = self.item_index.capacity() * size_of::<ItemEntry>()
            + self.items.capacity() * size_of::<Item>()
            + self.category_index.capacity() * (size_of::<(Box<str>, CatId)>() + 1)
            + self.categories.capacity() * size_of::<Category>()
            + self.extra_series_index.capacity() * (size_of::<((CatId, ItemId), SeriesId)>() + 1)
            + self.series.capacity() * size_of::<Series>()
            + self.series_aggs.capacity() * 4
            + self.agg_item.capacity() * 4
            + self.agg_cat.capacity() * 4;
        (item_heap + category_heap + tables) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> CategoryPath {
        CategoryPath::parse(p).unwrap()
    }

    #[test]
    fn categories_are_created_with_their_ancestors() {
        let mut c = Catalog::new();
        let abc = c.category(&path("a/b/c"));
        let chain: Vec<&str> = c.categories[abc as usize]
            .ancestors
            .iter()
            .map(|&id| &*c.categories[id as usize].path)
            .collect();
        assert_eq!(chain, ["a/b/c", "a/b", "a", ""]);
        assert_eq!(
            c.category(&path("a/b")),
            c.categories[abc as usize].ancestors[1]
        );
        assert_eq!(c.categories.len(), 4);
    }

    #[test]
    fn unnormalised_spellings_count_in_the_normal_form() {
        let mut c = Catalog::new();
        let normal = c.category(&path("a/b"));
        let raw: CategoryPath = serde_json::from_str("\" A//B \"").unwrap();
        assert_eq!(c.category(&raw), normal);
        assert_eq!(c.category(&raw), normal);
        assert_eq!(c.categories.len(), 3);
    }

    #[test]
    fn an_item_in_two_leaves_shares_the_common_ancestors() {
        let mut c = Catalog::new();
        let ab = c.category(&path("a/b"));
        let ax = c.category(&path("a/x"));
        let s1 = c.series(ab, "i");
        let s2 = c.series(ax, "i");
        assert_ne!(s1, s2);
        assert_eq!(c.series(ab, "i"), s1);
        assert_eq!(c.series(ax, "i"), s2);
        let f1: Vec<_> = c.series_feeds(s1).collect();
        let f2: Vec<_> = c.series_feeds(s2).collect();
        assert!(matches!(c.series[s1 as usize].aggs, Aggs::Run(_)));
        assert!(matches!(c.series[s2 as usize].aggs, Aggs::Listed(_)));
        // a/b and a/x differ, `a` and `""` are shared.
        assert_ne!(f1[0].1, f2[0].1);
        assert_eq!(f1[1..], f2[1..]);
        assert_eq!(c.aggregates(), 4);
        assert_eq!(c.item_of_series(s2), c.item_of_series(s1));
    }

    #[test]
    fn latest_name_wins() {
        let mut c = Catalog::new();
        let t = c.resolve(0, "i", Some("old"));
        let item = c.item_of_series(t.series);
        assert_eq!(c.items[item as usize].name.as_deref(), Some("old"));
        c.resolve(0, "i", None);
        c.resolve(0, "i", Some("new"));
        assert_eq!(c.items[item as usize].name.as_deref(), Some("new"));
    }

    #[test]
    fn the_item_index_grows_and_finds_every_item() {
        let mut c = Catalog::new();
        let id = |n: usize| {
            if n.is_multiple_of(7) {
                format!("a-long-item-id-that-lives-on-the-heap-{n}")
            } else {
                format!("sku-{n}")
            }
        };
        let series: Vec<SeriesId> = (0..10_000).map(|n| c.series(0, &id(n))).collect();
        assert_eq!(c.items.len(), 10_000);
        for (n, &s) in series.iter().enumerate() {
            assert_eq!(c.series(0, &id(n)), s, "{}", id(n));
            assert_eq!(&*c.items[c.item_of_series(s) as usize].id, id(n));
        }
        assert!(c.item_index.len * 2 <= c.item_index.entries.len());
        assert_eq!(c.items.len(), 10_000, "no item was created twice");
    }

    #[test]
    fn long_and_short_item_ids_are_both_found() {
        let mut c = Catalog::new();
        let long = "an-item-id-longer-than-twenty-two-bytes";
        let a = c.series(0, long);
        let b = c.series(0, "short");
        let exactly = "x".repeat(INLINE_KEY);
        let e = c.series(0, &exactly);
        assert_eq!(
            (
                c.series(0, long),
                c.series(0, "short"),
                c.series(0, &exactly)
            ),
            (a, b, e)
        );
        assert_eq!(c.items.len(), 3);
    }
}
