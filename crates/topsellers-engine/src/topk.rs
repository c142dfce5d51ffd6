//! Top-k selection per (category, window), recomputed only where counts changed.
//!
//! Rankings are computed at snapshot time rather than maintained per event: an exact incremental top-k
//! would have to handle counts that fall (refunds, expiry), while a selection over the category's
//! aggregates is linear and only runs for the (category, window) pairs marked dirty since the last
//! snapshot; the others reuse their cached list.

use crate::catalog::{Catalog, ItemId};
use crate::windows::WindowState;
use std::cmp::Ordering;
use topsellers_model::rank_order;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ranked {
    pub item: ItemId,
    pub units: i64,
    pub revenue: i64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Rankings {
    /// `lists[cat * windows + w]`, best first, at most `top_k` long.
    pub lists: Vec<Vec<Ranked>>,
}

fn order(catalog: &Catalog, a: &Ranked, b: &Ranked) -> Ordering {
    rank_order(
        a.units,
        a.revenue,
        &catalog.items[a.item as usize].id,
        b.units,
        b.revenue,
        &catalog.items[b.item as usize].id,
    )
}

/// Keeps the best `k` of `candidates`, sorted best first.
fn select_top(catalog: &Catalog, candidates: &mut Vec<Ranked>, k: usize) {
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k - 1, |a, b| order(catalog, a, b));
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(|a, b| order(catalog, a, b));
}

/// Collects the top `k` of a stream of candidates without holding them all: once `k` are known, a
/// candidate worse than the k-th in (units, revenue) can never rank and is dropped with two integer
/// comparisons, so a category with a million items costs a scan, not a million-element selection.
/// Candidates equal to the k-th on both are kept, because the item id decides between them.
struct TopCollector {
    k: usize,
    buf: Vec<Ranked>,
    /// (units, revenue) of the k-th best seen so far, once `k` were seen.
    floor: Option<(i64, i64)>,
}

impl TopCollector {
    fn new(k: usize, mut buf: Vec<Ranked>) -> Self {
        buf.clear();
        TopCollector {
            k,
            buf,
            floor: None,
        }
    }

    #[inline]
    fn offer(&mut self, catalog: &Catalog, r: Ranked) {
        if self.floor.is_some_and(|floor| (r.units, r.revenue) < floor) {
            return;
        }
        self.buf.push(r);
        // Compact at 2k (at least 64): each compaction is linear and halves the buffer.
        if self.buf.len() >= (2 * self.k).max(64) {
            select_top(catalog, &mut self.buf, self.k);
            let kth = self.buf[self.k - 1];
            self.floor = Some((kth.units, kth.revenue));
        }
    }

    fn finish(mut self, catalog: &Catalog) -> Vec<Ranked> {
        select_top(catalog, &mut self.buf, self.k);
        self.buf
    }
}

impl Rankings {
    /// Recomputes every dirty (category, window) ranking and clears its dirty flag.
    ///
    /// One pass over all aggregates in id order, handing each to the collectors of its category's
    /// stale windows. An item's aggregates (one per ancestor of its leaf) are adjacent, so walking one
    /// category's aggregates alone would jump across the window sums with a stride of the catalog's
    /// size over the category's, a cache and TLB miss per aggregate; the pass in id order reads the
    /// sums front to back instead. The site-wide list is stale after any change and holds an
    /// aggregate of every item, so a pass over everything costs little more than that list alone. The
    /// result does not depend on the order candidates are offered in (see [`TopCollector`]).
    pub fn refresh(&mut self, catalog: &Catalog, windows: &mut WindowState, top_k: usize) {
        let w = windows.windows();
        let cats = catalog.categories.len();
        self.lists.resize_with(cats * w, Vec::new);
        let mut collectors: Vec<Option<TopCollector>> = Vec::with_capacity(cats * w);
        let mut cat_stale = vec![false; cats];
        for (cat, stale) in cat_stale.iter_mut().enumerate() {
            for i in 0..w {
                let dirty = windows.take_dirty(cat as u32, i);
                *stale |= dirty;
                collectors.push(dirty.then(|| {
                    TopCollector::new(top_k, std::mem::take(&mut self.lists[cat * w + i]))
                }));
            }
        }
        if !cat_stale.contains(&true) {
            return;
        }
        let aggs = catalog.agg_cat.iter().zip(&catalog.agg_item);
        for ((&cat, &item), sums) in aggs.zip(windows.sums.chunks_exact(w)) {
            if !cat_stale[cat as usize] {
                continue;
            }
            let at = cat as usize * w;
            for (s, collector) in sums.iter().zip(&mut collectors[at..at + w]) {
                // Net counts of zero or below never rank.
                if let (Some(collector), true) = (collector, s.units > 0) {
                    collector.offer(
                        catalog,
                        Ranked {
                            item,
                            units: s.units,
                            revenue: s.revenue,
                        },
                    );
                }
            }
        }
        for (list, collector) in self.lists.iter_mut().zip(collectors) {
            if let Some(collector) = collector {
                *list = collector.finish(catalog);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topsellers_model::CategoryPath;

    #[test]
    fn selection_keeps_the_best_k_in_rank_order() {
        let mut catalog = Catalog::new();
        let cat = catalog.category(&CategoryPath::parse("a").unwrap());
        let ids: Vec<ItemId> = ["d", "c", "b", "a", "e"]
            .iter()
            .map(|id| {
                let series = catalog.series(cat, id);
                catalog.item_of_series(series)
            })
            .collect();
        let mut candidates = vec![
            Ranked {
                item: ids[0],
                units: 5,
                revenue: 10,
            },
            Ranked {
                item: ids[1],
                units: 5,
                revenue: 10,
            },
            Ranked {
                item: ids[2],
                units: 5,
                revenue: 20,
            },
            Ranked {
                item: ids[3],
                units: 1,
                revenue: 99,
            },
            Ranked {
                item: ids[4],
                units: 9,
                revenue: 0,
            },
        ];
        select_top(&catalog, &mut candidates, 3);
        let got: Vec<&str> = candidates
            .iter()
            .map(|r| &*catalog.items[r.item as usize].id)
            .collect();
        assert_eq!(got, ["e", "b", "c"]);
    }

    #[test]
    fn the_collector_matches_a_full_selection() {
        let mut catalog = Catalog::new();
        let cat = catalog.category(&CategoryPath::parse("a").unwrap());
        // Many ties on (units, revenue) around the cut, offered in a scrambled order.
        let all: Vec<Ranked> = (0..500u32)
            .map(|i| {
                let id = format!("item{:03}", (i * 7919) % 500);
                let series = catalog.series(cat, &id);
                let n = i64::from((i * 31) % 13);
                Ranked {
                    item: catalog.item_of_series(series),
                    units: n % 5,
                    revenue: n % 3,
                }
            })
            .collect();
        for k in [1, 7, 100, 600] {
            let mut collector = TopCollector::new(k, Vec::new());
            for &r in &all {
                collector.offer(&catalog, r);
            }
            let mut expected = all.clone();
            select_top(&catalog, &mut expected, k);
            assert_eq!(collector.finish(&catalog), expected, "k = {k}");
        }
    }
}
