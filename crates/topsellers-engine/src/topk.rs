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
    /// Candidate buffers per window, kept to avoid allocating on every snapshot.
    scratch: Vec<Vec<Ranked>>,
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

impl Rankings {
    /// Recomputes every dirty (category, window) ranking and clears its dirty flag.
    pub fn refresh(&mut self, catalog: &Catalog, windows: &mut WindowState, top_k: usize) {
        let w = windows.windows();
        self.lists
            .resize_with(catalog.categories.len() * w, Vec::new);
        self.scratch.resize_with(w, Vec::new);
        let mut stale = Vec::with_capacity(w);
        for (cat_id, cat) in catalog.categories.iter().enumerate() {
            stale.clear();
            stale.extend((0..w).filter(|&i| windows.take_dirty(cat_id as u32, i)));
            if stale.is_empty() {
                continue;
            }
            for &i in &stale {
                self.scratch[i].clear();
            }
            // One pass over the members fills every stale window: the sums of one aggregate sit together.
            for &agg in &cat.members {
                let sums = &windows.sums[agg as usize * w..(agg as usize + 1) * w];
                for &i in &stale {
                    let s = sums[i];
                    // Net counts of zero or below never rank.
                    if s.units > 0 {
                        self.scratch[i].push(Ranked {
                            item: catalog.agg_item[agg as usize],
                            units: s.units,
                            revenue: s.revenue,
                        });
                    }
                }
            }
            for &i in &stale {
                let candidates = &mut self.scratch[i];
                select_top(catalog, candidates, top_k);
                let list = &mut self.lists[cat_id * w + i];
                list.clear();
                list.extend_from_slice(candidates);
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
}
