//! The engine: admission (dedup, lateness), event-time advance, and snapshots.

use crate::catalog::{item_hash, Catalog};
use crate::config::EngineConfig;
use crate::dedup::{legacy_id_key, line_key, Dedup};
use crate::error::EngineError;
use crate::topk::Rankings;
use crate::windows::WindowState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use topsellers_model::{
    LogRecord, PurchaseEvent, RankedItem, Snapshot, TopList, WindowBounds, WindowSpec,
};

/// What [`Engine::admit`] decided about an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Counted.
    Accepted,
    /// An event with the same `event_id` for the same `item_id` was accepted before (and is not yet
    /// behind the watermark).
    Duplicate,
    /// The event time is before the watermark; the event was not counted.
    Late { watermark_ms: i64 },
}

/// Counters and sizes, for metrics and for the bytes-per-entry figure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Events accepted (refunds included).
    pub events_counted: u64,
    /// Accepted events with a negative quantity.
    pub refunds_counted: u64,
    pub duplicates: u64,
    pub late: u64,
    /// Distinct item ids.
    pub items: u64,
    /// Category paths with a ranking, ancestors and the site-wide `""` included.
    pub categories: u64,
    /// Distinct (leaf category, item) pairs.
    pub series: u64,
    /// Buckets kept for the sliding windows.
    pub buckets: u64,
    /// (series, bucket) pairs kept: what bounds memory.
    pub bucket_entries: u64,
    /// (event id, item id) lines remembered for dedup.
    pub dedup_ids: u64,
    /// Rough heap footprint of the whole state.
    pub approx_state_bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub events_counted: u64,
    pub refunds_counted: u64,
    pub duplicates: u64,
    pub late: u64,
}

/// Exact sliding-window top-N per category over event time. Pure and deterministic: no I/O, no clock;
/// the same sequence of calls gives the same snapshots, also across [`Engine::checkpoint`] and
/// [`Engine::restore`].
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) specs: Vec<WindowSpec>,
    bucket_ms: i64,
    lateness_ms: i64,
    /// Newest event time over accepted events and ticks; `None` until the first of them.
    pub(crate) max_time: Option<i64>,
    pub(crate) catalog: Catalog,
    pub(crate) windows: WindowState,
    pub(crate) dedup: Dedup,
    /// Id-only keys from a format-1 checkpoint (written when a duplicate was the same id whatever the
    /// item), kept until the watermark passes them so that retries of events accepted before the
    /// upgrade stay duplicates; `None` once they have expired, and in every engine that never read one.
    pub(crate) legacy_dedup: Option<Dedup>,
    rankings: Rankings,
    pub(crate) counters: Counters,
}

/// Events per group in [`Engine::admit_batch`]: enough misses in flight to keep the memory system
/// busy, few enough that a stage's reads fit in the processor's reorder window.
const BATCH_GROUP: usize = 16;

/// The dedup key of an event: its (event id, item id) line, so two items under one id (two lines of
/// one order) are two events. An empty id identifies nothing; treating it as an id would make all such
/// events of an item duplicates.
#[inline]
fn event_key(ev: &PurchaseEvent) -> Option<u128> {
    ev.event_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| line_key(id, &ev.item_id))
}

/// Whether `ev`'s id alone is among the keys inherited from a format-1 checkpoint: the old rule, for
/// the ids accepted before the upgrade, until they expire.
#[cold]
fn is_legacy_duplicate(legacy: &Dedup, ev: &PurchaseEvent, watermark_ms: i64) -> bool {
    ev.event_id
        .as_deref()
        .is_some_and(|id| legacy.is_duplicate(legacy_id_key(id), watermark_ms))
}

impl Engine {
    /// An empty engine; fails with every configuration problem at once.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(EngineError::InvalidConfig(problems));
        }
        let specs = config.window_specs();
        let bucket_secs = config.bucket_secs;
        let lengths = specs
            .iter()
            .map(|s| s.length_secs.map(|l| (l / bucket_secs) as i64))
            .collect();
        let catalog = Catalog::new();
        let mut windows = WindowState::new(lengths);
        windows.cover(&catalog);
        Ok(Engine {
            bucket_ms: config.bucket_ms(),
            lateness_ms: config.lateness_ms(),
            config,
            specs,
            max_time: None,
            catalog,
            windows,
            dedup: Dedup::default(),
            legacy_dedup: None,
            rankings: Rankings::default(),
            counters: Counters::default(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Decides and, when accepted, applies. Duplicates are checked first, then lateness; an accepted
    /// event counts at its applied time (a refund's original sale time), never after its own time.
    pub fn admit(&mut self, ev: &PurchaseEvent) -> Admission {
        self.admit_keyed(ev, event_key(ev))
    }

    /// Admits `events` in order, pushing one [`Admission`] per event onto `out`: exactly what calling
    /// [`Engine::admit`] on each would do, only faster on large state.
    ///
    /// With a million items and an id on every event, admission waits on memory: the event's dedup
    /// slot, its item's index slot, window sums and bucket entry are usually not cached, and one event
    /// at a time the processor meets those misses one after another. Here the events go in groups of
    /// 16, through a pipeline of plain loads whose values are only folded into a checksum (no unsafe
    /// prefetch instruction is needed): before group `g` is admitted, the dedup slots of group `g + 3`,
    /// the window sums and bucket entries of group `g + 1` (whose item-index slots were read one step
    /// earlier) and the item-index slots of group `g + 2` are read. Each stage hashes first and reads
    /// after, in a tight loop, so its misses are in flight together, and by the time an event is
    /// admitted its data is cached. The reads are hints only: an event may create an item or start a
    /// new bucket after a later event's data was read, and the sequential admission handles that as
    /// usual. Dedup, lateness and the watermark stay strictly in order.
    pub fn admit_batch(&mut self, events: &[PurchaseEvent], out: &mut Vec<Admission>) {
        const G: usize = BATCH_GROUP;
        // How many groups ahead of the one being admitted each stage reads.
        const IDS: usize = 3;
        const ITEMS: usize = 2;
        const SUMS: usize = 1;
        out.reserve(events.len());
        let groups = events.len().div_ceil(G);
        let group = |g: usize| &events[g * G..events.len().min((g + 1) * G)];
        // Keys of group g in keys[g % (IDS + 1)], item hashes in hashes[g % (ITEMS - SUMS + 1)].
        let mut keys = [[None; G]; IDS + 1];
        let mut hashes = [[0; G]; ITEMS - SUMS + 1];
        let mut sink = 0u64;
        // Fill the pipeline: the stages for the first groups, as if admission started at group -IDS.
        for g in 0..groups.min(IDS) {
            sink = sink.wrapping_add(self.hash_and_touch_ids(group(g), &mut keys[g % (IDS + 1)]));
        }
        for g in 0..groups.min(ITEMS) {
            let hashes = &mut hashes[g % (ITEMS - SUMS + 1)];
            sink = sink.wrapping_add(self.hash_and_touch_items(group(g), hashes));
        }
        for g in 0..groups.min(SUMS) {
            sink = sink.wrapping_add(self.touch_sums(group(g), &hashes[g % (ITEMS - SUMS + 1)]));
        }
        for g in 0..groups {
            if g + IDS < groups {
                let (g, keys) = (g + IDS, &mut keys[(g + IDS) % (IDS + 1)]);
                sink = sink.wrapping_add(self.hash_and_touch_ids(group(g), keys));
            }
            if g + SUMS < groups {
                let (g, hashes) = (g + SUMS, &hashes[(g + SUMS) % (ITEMS - SUMS + 1)]);
                sink = sink.wrapping_add(self.touch_sums(group(g), hashes));
            }
            if g + ITEMS < groups {
                let (g, hashes) = (g + ITEMS, &mut hashes[(g + ITEMS) % (ITEMS - SUMS + 1)]);
                sink = sink.wrapping_add(self.hash_and_touch_items(group(g), hashes));
            }
            for (ev, key) in group(g).iter().zip(keys[g % (IDS + 1)]) {
                out.push(self.admit_keyed(ev, key));
            }
        }
        std::hint::black_box(sink);
    }

    /// Reads the window sums and current bucket entries of the items of `group` that exist, their
    /// index slots being cached by now. Where to read is worked out first and the reads come after, in
    /// tight loops, so that many are in flight at once.
    #[inline]
    fn touch_sums(&self, group: &[PurchaseEvent], hashes: &[u64; BATCH_GROUP]) -> u64 {
        let mut runs = [(0, 0); BATCH_GROUP];
        let mut series = [None; BATCH_GROUP];
        for ((ev, &hash), (run, series)) in group
            .iter()
            .zip(hashes)
            .zip(runs.iter_mut().zip(series.iter_mut()))
        {
            if let Some(at) = self.catalog.peek(hash, &ev.item_id) {
                let r = self.windows.sums_run(&self.catalog, at);
                *run = (r.start, r.end);
                *series = Some(at.series);
            }
        }
        let mut sink = 0u64;
        for run in &runs[..group.len()] {
            sink = sink.wrapping_add(self.windows.touch_sums(run.0..run.1));
        }
        if let Some(bucket) = self.windows.current_bucket() {
            for series in series[..group.len()].iter().flatten() {
                sink = sink.wrapping_add(bucket.get(series).map_or(0, |s| s.units as u64));
            }
        }
        sink
    }

    /// The item-index hashes of `group` into `hashes`, then a read of each one's index slot.
    #[inline]
    fn hash_and_touch_items(
        &self,
        group: &[PurchaseEvent],
        hashes: &mut [u64; BATCH_GROUP],
    ) -> u64 {
        for (ev, hash) in group.iter().zip(hashes.iter_mut()) {
            *hash = item_hash(ev.item_id.as_bytes());
        }
        let mut sink = 0u64;
        for &hash in &hashes[..group.len()] {
            sink = sink.wrapping_add(self.catalog.touch_item(hash));
        }
        sink
    }

    /// The dedup keys of `group` into `keys`, then a read of each key's dedup slot. Hashing first and
    /// reading after keeps the reads close together, so the processor has them in flight at once.
    #[inline]
    fn hash_and_touch_ids(
        &self,
        group: &[PurchaseEvent],
        keys: &mut [Option<u128>; BATCH_GROUP],
    ) -> u64 {
        for (ev, key) in group.iter().zip(keys.iter_mut()) {
            *key = event_key(ev);
        }
        let mut sink = 0u64;
        for key in keys[..group.len()].iter().flatten() {
            sink = sink.wrapping_add(self.dedup.touch(*key));
        }
        sink
    }

    #[inline]
    fn admit_keyed(&mut self, ev: &PurchaseEvent, key: Option<u128>) -> Admission {
        let watermark_ms = self.watermark_ms();
        let duplicate = key.is_some_and(|k| {
            self.dedup.is_duplicate(k, watermark_ms)
                || self
                    .legacy_dedup
                    .as_ref()
                    .is_some_and(|legacy| is_legacy_duplicate(legacy, ev, watermark_ms))
        });
        if duplicate {
            self.counters.duplicates += 1;
            return Admission::Duplicate;
        }
        if ev.event_time_ms < watermark_ms {
            self.counters.late += 1;
            return Admission::Late { watermark_ms };
        }
        self.advance_to(ev.event_time_ms);
        if let Some(k) = key {
            self.dedup
                .remember(k, ev.event_time_ms, self.watermark_ms());
        }
        let leaf = self.catalog.category(&ev.category);
        let name = ev.item_name.as_deref().filter(|n| !n.is_empty());
        let target = self.catalog.resolve(leaf, &ev.item_id, name);
        self.windows.cover(&self.catalog);
        let applied = ev.applied_time_ms().min(ev.event_time_ms);
        let at = self.bucket_of(applied);
        self.windows
            .apply(&self.catalog, target, at, ev.quantity, ev.revenue_minor());
        self.counters.events_counted += 1;
        if ev.is_refund() {
            self.counters.refunds_counted += 1;
        }
        Admission::Accepted
    }

    /// The input is idle: event time moves forward to `now_ms` (never backwards), so windows slide and
    /// quiet categories age out.
    pub fn tick(&mut self, now_ms: i64) {
        self.advance_to(now_ms);
    }

    /// Replays one log record: an event is admitted, a tick advances time (and is always `Accepted`).
    pub fn apply(&mut self, rec: &LogRecord) -> Admission {
        match rec {
            LogRecord::Event(ev) => self.admit(ev),
            LogRecord::Tick { now_ms } => {
                self.tick(*now_ms);
                Admission::Accepted
            }
        }
    }

    /// Events before this time are late: the newest event time minus the allowed lateness, `i64::MIN`
    /// before anything was seen.
    pub fn watermark_ms(&self) -> i64 {
        self.max_time
            .map_or(i64::MIN, |t| t.saturating_sub(self.lateness_ms))
    }

    /// Exclusive end of the current bucket: the event time results are complete up to (0 before anything
    /// was seen).
    pub fn as_of_ms(&self) -> i64 {
        self.windows
            .cur
            .map_or(0, |cur| (cur + 1).saturating_mul(self.bucket_ms))
    }

    /// Every top list now; `version`, `computed_at_ms` and `currency` are copied in as given.
    pub fn snapshot(&mut self, version: u64, computed_at_ms: i64, currency: &str) -> Snapshot {
        self.rankings
            .refresh(&self.catalog, &mut self.windows, self.config.top_k);
        let as_of_ms = self.as_of_ms();
        let bounds: Vec<WindowBounds> = self
            .specs
            .iter()
            .map(|spec| WindowBounds {
                start_ms: spec
                    .length_secs
                    .map(|secs| as_of_ms.saturating_sub((secs as i64).saturating_mul(1000))),
                end_ms: as_of_ms,
            })
            .collect();
        let w = self.specs.len();
        let mut lists = BTreeMap::new();
        for (cat_id, cat) in self.catalog.categories.iter().enumerate() {
            let per_window = self
                .specs
                .iter()
                .zip(&bounds)
                .enumerate()
                .map(|(i, (spec, bounds))| TopList {
                    category: cat.path.to_string(),
                    window: spec.name.clone(),
                    bounds: *bounds,
                    items: self.rankings.lists[cat_id * w + i]
                        .iter()
                        .zip(1..)
                        .map(|(r, rank)| {
                            let item = &self.catalog.items[r.item as usize];
                            RankedItem {
                                rank,
                                item_id: item.id.to_string(),
                                item_name: item.name.as_deref().map(str::to_string),
                                units: r.units,
                                revenue_minor: r.revenue,
                            }
                        })
                        .collect(),
                })
                .collect();
            lists.insert(cat.path.to_string(), per_window);
        }
        Snapshot {
            version,
            as_of_ms,
            watermark_ms: self.watermark_ms(),
            computed_at_ms,
            currency: currency.to_string(),
            top_k: self.config.top_k,
            windows: self.specs.clone(),
            lists,
            events_counted: self.counters.events_counted,
        }
    }

    pub fn stats(&self) -> EngineStats {
        let c = self.counters;
        EngineStats {
            events_counted: c.events_counted,
            refunds_counted: c.refunds_counted,
            duplicates: c.duplicates,
            late: c.late,
            items: self.catalog.items.len() as u64,
            categories: self.catalog.categories.len() as u64,
            series: self.catalog.series.len() as u64,
            buckets: self.windows.buckets.len() as u64,
            bucket_entries: self.windows.bucket_entries() as u64,
            dedup_ids: (self.dedup.len() + self.legacy_dedup.as_ref().map_or(0, Dedup::len)) as u64,
            approx_state_bytes: self.catalog.approx_bytes()
                + self.windows.approx_bytes()
                + self.dedup.approx_bytes()
                + self.legacy_dedup.as_ref().map_or(0, Dedup::approx_bytes),
        }
    }

    /// Rough heap bytes per kept (series, bucket) pair, hash-table slack included.
    pub fn approx_bytes_per_bucket_entry(&self) -> f64 {
        let entries = self.windows.bucket_entries();
        if entries == 0 {
            return 0.0;
        }
        self.windows.approx_bucket_bytes() as f64 / entries as f64
    }

    /// Serialized full state; see the `checkpoint` module for the format.
    pub fn checkpoint(&self) -> Vec<u8> {
        crate::checkpoint::encode(self)
    }

    /// An engine in exactly the state `bytes` were taken from. Fails if the bytes are corrupt or were
    /// written with another `bucket_secs` or `windows`; `allowed_lateness_secs` and `top_k` may change.
    pub fn restore(config: EngineConfig, bytes: &[u8]) -> Result<Engine, EngineError> {
        crate::checkpoint::decode(Engine::new(config)?, bytes)
    }

    pub(crate) fn bucket_of(&self, time_ms: i64) -> i64 {
        time_ms.div_euclid(self.bucket_ms)
    }

    #[inline]
    fn advance_to(&mut self, time_ms: i64) {
        if self.max_time.is_some_and(|t| t >= time_ms) {
            return;
        }
        self.max_time = Some(time_ms);
        let bucket = self.bucket_of(time_ms);
        // Within the current bucket nothing leaves a window; only a new bucket needs work.
        if self.windows.cur != Some(bucket) {
            self.new_bucket(bucket);
        }
    }

    #[cold]
    fn new_bucket(&mut self, bucket: i64) {
        self.windows.advance(&self.catalog, bucket);
        let watermark = self.watermark_ms();
        self.dedup.forget_before(watermark);
        if let Some(legacy) = &mut self.legacy_dedup {
            legacy.forget_before(watermark);
            if legacy.len() == 0 {
                self.legacy_dedup = None;
            }
        }
    }

    /// After a restore: state is in place, rankings are recomputed on the next snapshot.
    pub(crate) fn after_restore(&mut self) {
        self.windows.cover(&self.catalog);
        self.windows.mark_all_dirty();
        self.rankings = Rankings::default();
    }
}
