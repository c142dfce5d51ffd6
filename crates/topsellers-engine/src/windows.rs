//! Exact sliding-window sums over event-time buckets.
//!
//! Each (series, bucket) pair keeps the units and revenue applied to it. Each window keeps, for every
//! aggregate, the sum over the buckets it currently covers. When event time advances, the buckets that
//! leave a window are subtracted from that window's sums, and buckets no window covers any more are
//! dropped. A bucket leaves each window exactly once, so the cost of advancing is proportional to the
//! (series, bucket) pairs that exist, never to the time span crossed.
//!
//! Invariant: for a finite window of `len` buckets, `sums[agg][w]` is the sum of every contribution to
//! the aggregate whose bucket lies in `(cur - len, cur]`; for `all`, of every contribution ever.

use crate::catalog::{Aggs, CatId, Catalog, Peeked, SeriesId, Target};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Net units and revenue (minor units). Arithmetic wraps rather than panics: adding and later subtracting
/// the same contribution must restore the exact previous value, which saturation would not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sum {
    pub units: i64,
    pub revenue: i64,
}

impl Sum {
    #[inline]
    fn add(&mut self, units: i64, revenue: i64) {
        self.units = self.units.wrapping_add(units);
        self.revenue = self.revenue.wrapping_add(revenue);
    }
}

pub(crate) type Bucket = FxHashMap<SeriesId, Sum>;

/// Adds a contribution at bucket `at` to the window sums of one aggregate, for each window that covers
/// `at` now (the current bucket being `cur`), and marks those rankings of its category dirty.
#[inline]
fn take(
    lengths: &[Option<i64>],
    cur: i64,
    at: i64,
    sums: &mut [Sum],
    dirty: &mut [bool],
    units: i64,
    revenue: i64,
) {
    for ((len, sum), dirty) in lengths.iter().zip(sums).zip(dirty) {
        if len.is_none_or(|len| at > cur - len) {
            sum.add(units, revenue);
            *dirty = true;
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct WindowState {
    /// Per window, in config order: its length in buckets, `None` for `all`.
    lengths: Box<[Option<i64>]>,
    /// Buckets kept: those the longest finite window still covers (0 when there is none).
    keep: i64,
    /// `sums[agg * windows + w]`: the window sums of each aggregate, one cache line for four windows.
    pub sums: Vec<Sum>,
    /// Kept buckets by index (`floor(time / bucket_ms)`).
    pub buckets: BTreeMap<i64, Bucket>,
    /// The current bucket, `None` until the first event or tick.
    pub cur: Option<i64>,
    /// `dirty[cat * windows + w]`: the ranking of (cat, w) may have changed since it was last computed.
    pub dirty: Vec<bool>,
}

impl WindowState {
    pub fn new(lengths: Vec<Option<i64>>) -> Self {
        let keep = lengths.iter().flatten().copied().max().unwrap_or(0);
        WindowState {
            lengths: lengths.into_boxed_slice(),
            keep,
            sums: Vec::new(),
            buckets: BTreeMap::new(),
            cur: None,
            dirty: Vec::new(),
        }
    }

    pub fn windows(&self) -> usize {
        self.lengths.len()
    }

    /// Grows the dense tables to cover every category and aggregate of the catalog.
    pub fn cover(&mut self, catalog: &Catalog) {
        let w = self.windows();
        let aggs = catalog.aggregates() * w;
        if self.sums.len() < aggs {
            self.sums.resize(aggs, Sum::default());
        }
        let cats = catalog.categories.len() * w;
        if self.dirty.len() < cats {
            // A new category has never been ranked: its (empty) lists must be computed once.
            self.dirty.resize(cats, true);
        }
    }

    /// Adds one contribution at bucket `at`, which must not be after the current bucket.
    #[inline]
    pub fn apply(&mut self, catalog: &Catalog, target: Target, at: i64, units: i64, revenue: i64) {
        let cur = self
            .cur
            .expect("time advances before the first contribution is applied");
        debug_assert!(at <= cur);
        let w = self.windows();
        let cats = &catalog.categories[target.leaf as usize].ancestors;
        match target.aggs {
            // The common case: the aggregates are adjacent, so are their window sums.
            Aggs::Run(first) => {
                let start = first as usize * w;
                let sums = &mut self.sums[start..start + cats.len() * w];
                for (&cat, sums) in cats.iter().zip(sums.chunks_exact_mut(w)) {
                    let dirty = &mut self.dirty[cat as usize * w..(cat as usize + 1) * w];
                    take(&self.lengths, cur, at, sums, dirty, units, revenue);
                }
            }
            Aggs::Listed(_) => {
                for (cat, agg) in catalog.feeds(target.leaf, target.aggs) {
                    let sums = &mut self.sums[agg as usize * w..(agg as usize + 1) * w];
                    let dirty = &mut self.dirty[cat as usize * w..(cat as usize + 1) * w];
                    take(&self.lengths, cur, at, sums, dirty, units, revenue);
                }
            }
        }
        if at > cur - self.keep {
            self.buckets
                .entry(at)
                .or_default()
                .entry(target.series)
                .or_default()
                .add(units, revenue);
        }
    }

    /// The current bucket's entries, if it has any.
    #[inline]
    pub fn current_bucket(&self) -> Option<&Bucket> {
        self.buckets.get(&self.cur?)
    }

    /// Where in `sums` the window sums of an item's first series' aggregates are.
    #[inline]
    pub fn sums_run(&self, catalog: &Catalog, at: Peeked) -> std::ops::Range<usize> {
        let w = self.windows();
        let n = catalog.categories[at.leaf as usize].ancestors.len();
        let start = at.first_agg as usize * w;
        start..start + n * w
    }

    /// Reads `sums[run]`, one read per cache line it spans (a `Sum` is 16 bytes), so that applying a
    /// contribution finds them cached; the value is meaningless. Reads only what exists.
    #[inline]
    pub fn touch_sums(&self, run: std::ops::Range<usize>) -> u64 {
        let mut sink = 0u64;
        if let Some(sums) = self.sums.get(run) {
            for sum in sums.iter().step_by(4) {
                sink = sink.wrapping_add(sum.units as u64);
            }
            if let Some(last) = sums.last() {
                sink = sink.wrapping_add(last.units as u64);
            }
        }
        sink
    }

    /// Moves the current bucket forward to `to` (never backwards): buckets that leave a window are
    /// subtracted from it, buckets no window covers are dropped.
    pub fn advance(&mut self, catalog: &Catalog, to: i64) {
        let from = match self.cur {
            Some(from) if from >= to => return,
            Some(from) => from,
            None => {
                // Nothing was applied yet, so no bucket exists that could leave a window.
                self.cur = Some(to);
                return;
            }
        };
        let w = self.windows();
        for (i, len) in self.lengths.iter().enumerate() {
            let Some(len) = *len else { continue };
            // Buckets in (from - len, to - len] were inside the window and are not any more.
            let leaving = from.saturating_sub(len).saturating_add(1)..=to.saturating_sub(len);
            for bucket in self.buckets.range(leaving).map(|(_, b)| b) {
                for (&series, sum) in bucket {
                    for (cat, agg) in catalog.series_feeds(series) {
                        self.sums[agg as usize * w + i]
                            .add(sum.units.wrapping_neg(), sum.revenue.wrapping_neg());
                        self.dirty[cat as usize * w + i] = true;
                    }
                }
            }
        }
        // Keep only buckets after `to - keep`: the ones the longest window still covers.
        let kept = self
            .buckets
            .split_off(&to.saturating_sub(self.keep).saturating_add(1));
        self.buckets = kept;
        self.cur = Some(to);
    }

    pub fn bucket_entries(&self) -> usize {
        self.buckets.values().map(|b| b.len()).sum()
    }

    /// Rough heap footprint of the buckets alone, for stats and the bytes-per-entry figure.
    pub fn approx_bucket_bytes(&self) -> u64 {
        use std::mem::size_of;
        let per_slot = size_of::<(SeriesId, Sum)>() + 1;
        let per_bucket = size_of::<(i64, Bucket)>() + 16;
        self.buckets
            .values()
            .map(|b| (b.capacity() * per_slot + per_bucket) as u64)
            .sum()
    }

    pub fn approx_bytes(&self) -> u64 {
        use std::mem::size_of;
        self.approx_bucket_bytes()
            + (self.sums.capacity() * size_of::<Sum>() + self.dirty.capacity()) as u64
    }

    /// Marks every ranking stale, e.g. after a restore or a change of `top_k`.
    pub fn mark_all_dirty(&mut self) {
        self.dirty.iter_mut().for_each(|d| *d = true);
    }

    pub fn take_dirty(&mut self, cat: CatId, window: usize) -> bool {
        let w = self.windows();
        std::mem::take(&mut self.dirty[cat as usize * w + window])
    }
}
