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
use topsellers_model::CategoryPath;

pub(crate) type ItemId = u32;
pub(crate) type CatId = u32;
pub(crate) type SeriesId = u32;
pub(crate) type AggId = u32;

#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub id: Box<str>,
    /// Name from the most recently accepted event for this item that carried a non-empty one.
    pub name: Option<Box<str>>,
    /// Series beyond the first, for items sold in more than one leaf category (rare).
    pub extra_series: Vec<SeriesId>,
}

/// What the item index maps an item id to. The item's first series is kept inline because almost every
/// item is sold in exactly one category: one hash lookup then finds the series too.
#[derive(Clone, Copy, Debug)]
struct ItemSlot {
    item: ItemId,
    first_leaf: CatId,
    first_series: SeriesId,
}

#[derive(Clone, Debug)]
pub(crate) struct Category {
    pub path: Box<str>,
    /// The category itself first, then each parent, ending with the site-wide `""`.
    pub ancestors: Box<[CatId]>,
    /// Every aggregate of this category: the candidates of its rankings.
    pub members: Vec<AggId>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Series {
    pub item: ItemId,
    pub leaf: CatId,
    /// Start of this series' aggregates in `series_aggs`; there is one per ancestor of `leaf`, in the
    /// same order as `Category::ancestors`.
    aggs_at: u32,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    item_index: FxHashMap<Box<str>, ItemSlot>,
    pub items: Vec<Item>,
    category_index: FxHashMap<Box<str>, CatId>,
    pub categories: Vec<Category>,
    extra_series_index: FxHashMap<(CatId, ItemId), SeriesId>,
    pub series: Vec<Series>,
    series_aggs: Vec<AggId>,
    /// Which item each aggregate counts.
    pub agg_item: Vec<ItemId>,
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
                        members: Vec::new(),
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

    /// The series of `item_id` sold in `leaf`, creating the item, the series and its aggregates on
    /// first sight.
    pub fn series(&mut self, leaf: CatId, item_id: &str) -> SeriesId {
        let item = match self.item_index.get(item_id) {
            Some(slot) if slot.first_leaf == leaf => return slot.first_series,
            Some(slot) => slot.item,
            None => {
                let item = self.items.len() as ItemId;
                self.items.push(Item {
                    id: item_id.into(),
                    name: None,
                    extra_series: Vec::new(),
                });
                let series = self.new_series(leaf, item);
                self.item_index.insert(
                    item_id.into(),
                    ItemSlot {
                        item,
                        first_leaf: leaf,
                        first_series: series,
                    },
                );
                return series;
            }
        };
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
        let aggs_at = self.series_aggs.len() as u32;
        let ancestors = self.categories[leaf as usize].ancestors.clone();
        for &cat in ancestors.iter() {
            let agg = self
                .existing_agg(cat, item)
                .unwrap_or_else(|| self.new_agg(cat, item));
            self.series_aggs.push(agg);
        }
        self.series.push(Series {
            item,
            leaf,
            aggs_at,
        });
        id
    }

    /// The aggregate of (`cat`, `item`) if another series of the item already feeds it. Only items sold
    /// in several leaves have other series, so this is a short scan rather than another hash map.
    fn existing_agg(&self, cat: CatId, item: ItemId) -> Option<AggId> {
        let item_rec = &self.items[item as usize];
        let first = self
            .item_index
            .get(&*item_rec.id)
            .map(|slot| slot.first_series);
        first
            .into_iter()
            .chain(item_rec.extra_series.iter().copied())
            .find_map(|s| {
                let series = self.series[s as usize];
                let ancestors = &self.categories[series.leaf as usize].ancestors;
                ancestors
                    .iter()
                    .position(|&c| c == cat)
                    .map(|i| self.series_aggs[series.aggs_at as usize + i])
            })
    }

    fn new_agg(&mut self, cat: CatId, item: ItemId) -> AggId {
        let agg = self.agg_item.len() as AggId;
        self.agg_item.push(item);
        self.categories[cat as usize].members.push(agg);
        agg
    }

    /// The aggregates a series feeds, paired with their categories: leaf first, site-wide last.
    pub fn feeds(&self, series: SeriesId) -> impl Iterator<Item = (CatId, AggId)> + '_ {
        let s = self.series[series as usize];
        let cats = &self.categories[s.leaf as usize].ancestors;
        let aggs = &self.series_aggs[s.aggs_at as usize..s.aggs_at as usize + cats.len()];
        cats.iter().copied().zip(aggs.iter().copied())
    }

    pub fn item_of_series(&self, series: SeriesId) -> ItemId {
        self.series[series as usize].item
    }

    /// Records the item's display name: the latest non-empty one wins.
    pub fn set_name(&mut self, item: ItemId, name: &str) {
        let slot = &mut self.items[item as usize].name;
        if slot.as_deref() != Some(name) {
            *slot = Some(name.into());
        }
    }

    pub fn aggregates(&self) -> usize {
        self.agg_item.len()
    }

    /// Rough heap footprint, for `EngineStats::approx_state_bytes`.
    pub fn approx_bytes(&self) -> u64 {
        use std::mem::size_of;
        let strings: usize = self
            .items
            .iter()
            .map(|i| {
                2 * i.id.len()
                    + i.name.as_ref().map_or(0, |n| n.len())
                    + i.extra_series.capacity() * 4
            })
            .sum::<usize>()
            + self
                .categories
                .iter()
                .map(|c| 2 * c.path.len() + c.ancestors.len() * 4 + c.members.capacity() * 4)
                .sum::<usize>();
        let tables = self.item_index.capacity() * (size_of::<(Box<str>, ItemSlot)>() + 1)
            + self.items.capacity() * size_of::<Item>()
            + self.category_index.capacity() * (size_of::<(Box<str>, CatId)>() + 1)
            + self.categories.capacity() * size_of::<Category>()
            + self.extra_series_index.capacity() * (size_of::<((CatId, ItemId), SeriesId)>() + 1)
            + self.series.capacity() * size_of::<Series>()
            + self.series_aggs.capacity() * 4
            + self.agg_item.capacity() * 4;
        (strings + tables) as u64
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
        let f1: Vec<_> = c.feeds(s1).collect();
        let f2: Vec<_> = c.feeds(s2).collect();
        // a/b and a/x differ, `a` and `""` are shared.
        assert_ne!(f1[0].1, f2[0].1);
        assert_eq!(f1[1..], f2[1..]);
        assert_eq!(c.aggregates(), 4);
        assert_eq!(c.item_of_series(s2), c.item_of_series(s1));
    }

    #[test]
    fn latest_non_empty_name_wins() {
        let mut c = Catalog::new();
        let s = c.series(0, "i");
        let item = c.item_of_series(s);
        c.set_name(item, "old");
        c.set_name(item, "new");
        assert_eq!(c.items[item as usize].name.as_deref(), Some("new"));
    }
}
