//! [`Generator`]: the event stream over a [`Catalog`].

use crate::catalog::Catalog;
use crate::popularity::ZipfTable;
use crate::rate::RateSchedule;
use crate::GenConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use topsellers_model::{PurchaseEvent, TimestampMs};

/// Leaves are skewed more mildly than items: a few busy categories, a long tail, none empty.
const LEAF_ZIPF_EXPONENT: f64 = 0.8;
/// Duplicates re-deliver one of this many most recent events (a producer retrying a recent batch).
const RECENT_EVENTS: usize = 256;
/// Sales remembered for refunds. When full, a random old one is forgotten, so refunds keep reaching
/// back over a long stretch of time, not only the last minutes.
const REFUNDABLE_SALES: usize = 50_000;
const LATE_MIN_MS: i64 = 60_000;
const LATE_MAX_MS: i64 = 20 * 60_000;
/// Units per sale line: mostly one.
const QUANTITY_WEIGHTS: &[(i64, u32)] = &[(1, 80), (2, 12), (3, 5), (4, 2), (5, 1)];
const COUNTRIES: &[(&str, u32)] = &[
    ("US", 40),
    ("GB", 12),
    ("DE", 12),
    ("FR", 9),
    ("CA", 8),
    ("AU", 6),
    ("NL", 5),
    ("JP", 5),
    ("SE", 3),
];

/// A sale that can still be refunded.
#[derive(Clone, Copy, Debug)]
struct Sale {
    item: usize,
    time_ms: TimestampMs,
    quantity: i64,
    country: &'static str,
}

/// What an original event was made of; enough to rebuild it exactly for a re-delivery.
#[derive(Clone, Copy, Debug)]
struct Emitted {
    event_no: u64,
    item: usize,
    country: &'static str,
    time_ms: TimestampMs,
    quantity: i64,
    original_time_ms: Option<TimestampMs>,
}

/// Generates purchase events: Zipf-popular items, occasional refunds of earlier sales, duplicates
/// and late events. Deterministic: one seed and one sequence of calls give the same events.
#[derive(Clone, Debug)]
pub struct Generator {
    config: GenConfig,
    catalog: Catalog,
    rng: StdRng,
    leaf_rank: ZipfTable,
    item_rank: ZipfTable,
    schedule: RateSchedule,
    next_event_no: u64,
    recent: VecDeque<Emitted>,
    refundable: Vec<Sale>,
}

impl Generator {
    /// Builds the catalog and the event stream for `config.seed`. Expects a config that passed
    /// [`GenConfig::validate`]; out-of-range values are clamped rather than panicking.
    pub fn new(config: GenConfig) -> Generator {
        let catalog = Catalog::build(&config);
        let item_exponent = if config.zipf_exponent.is_finite() {
            config.zipf_exponent.clamp(0.0, 10.0)
        } else {
            1.0
        };
        let leaf_rank = ZipfTable::new(catalog.leaves().len(), LEAF_ZIPF_EXPONENT);
        let item_rank =
            ZipfTable::new(catalog.leaves()[0].items_by_popularity.len(), item_exponent);
        let schedule = RateSchedule::new(config.seed, config.pattern, config.rate_per_sec);
        Generator {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            catalog,
            leaf_rank,
            item_rank,
            schedule,
            next_event_no: 1,
            recent: VecDeque::with_capacity(RECENT_EVENTS),
            refundable: Vec::new(),
        }
    }

    /// The next event at event time `now_ms`. Usually a sale at `now_ms`; with the configured shares a
    /// late sale (1-20 minutes earlier), a refund of an earlier sale (negative quantity, the sale's item,
    /// category, price and `original_time_ms`), or an exact copy of a recent event.
    pub fn next_event(&mut self, now_ms: i64) -> PurchaseEvent {
        let c = &self.config;
        let (dup, refund, late) = (c.duplicate_fraction, c.refund_fraction, c.late_fraction);
        let draw: f64 = self.rng.gen();
        let emitted = if draw < dup && !self.recent.is_empty() {
            let i = self.rng.gen_range(0..self.recent.len());
            return self.event(self.recent[i]);
        } else if draw >= dup && draw < dup + refund {
            // Falls back to a sale while there is nothing to refund yet.
            self.refund(now_ms).unwrap_or_else(|| self.sale(now_ms))
        } else if draw >= dup + refund && draw < dup + refund + late {
            let back = self.rng.gen_range(LATE_MIN_MS..=LATE_MAX_MS);
            self.sale(now_ms - back)
        } else {
            self.sale(now_ms)
        };
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(emitted);
        self.event(emitted)
    }

    /// How many events are due in `(elapsed_ms, elapsed_ms + step_ms]` per the rate pattern. A function
    /// of the seed and the time range only: slicing time differently gives the same total.
    pub fn events_due(&mut self, elapsed_ms: u64, step_ms: u64) -> usize {
        self.schedule.due(elapsed_ms, step_ms)
    }

    /// The categories and items sold.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn config(&self) -> &GenConfig {
        &self.config
    }

    fn take_event_no(&mut self) -> u64 {
        let no = self.next_event_no;
        self.next_event_no += 1;
        no
    }

    fn sale(&mut self, time_ms: TimestampMs) -> Emitted {
        let leaf_rank = self.leaf_rank.sample(&mut self.rng);
        let item_rank = self.item_rank.sample(&mut self.rng);
        let item = self
            .catalog
            .leaf_by_popularity(leaf_rank)
            .items_by_popularity[item_rank];
        let quantity = weighted(&mut self.rng, QUANTITY_WEIGHTS);
        let country = weighted(&mut self.rng, COUNTRIES);
        let sale = Sale {
            item,
            time_ms,
            quantity,
            country,
        };
        if self.refundable.len() < REFUNDABLE_SALES {
            self.refundable.push(sale);
        } else {
            let slot = self.rng.gen_range(0..REFUNDABLE_SALES);
            self.refundable[slot] = sale;
        }
        Emitted {
            event_no: self.take_event_no(),
            item,
            country,
            time_ms,
            quantity,
            original_time_ms: None,
        }
    }

    /// Refunds part or all of a remembered sale, at most once per sale so net units never go negative.
    fn refund(&mut self, now_ms: TimestampMs) -> Option<Emitted> {
        if self.refundable.is_empty() {
            return None;
        }
        let slot = self.rng.gen_range(0..self.refundable.len());
        let sale = self.refundable[slot];
        // A caller whose clock went backwards could make the sale look later than its refund.
        if sale.time_ms > now_ms {
            return None;
        }
        self.refundable.swap_remove(slot);
        let units = self.rng.gen_range(1..=sale.quantity);
        Some(Emitted {
            event_no: self.take_event_no(),
            item: sale.item,
            country: sale.country,
            time_ms: now_ms,
            quantity: -units,
            original_time_ms: Some(sale.time_ms),
        })
    }

    fn event(&self, e: Emitted) -> PurchaseEvent {
        let item = &self.catalog.items()[e.item];
        PurchaseEvent {
            event_id: Some(format!("g-{}-{}", self.config.seed, e.event_no)),
            event_time_ms: e.time_ms,
            original_time_ms: e.original_time_ms,
            item_id: item.id.clone(),
            item_name: Some(item.name.clone()),
            category: item.category.clone(),
            quantity: e.quantity,
            unit_price_minor: item.unit_price_minor,
            currency: self.config.currency.clone(),
            country: Some(e.country.to_string()),
        }
    }
}

fn weighted<T: Copy>(rng: &mut StdRng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut pick = rng.gen_range(0..total);
    for &(value, weight) in choices {
        if pick < weight {
            return value;
        }
        pick -= weight;
    }
    choices[choices.len() - 1].0
}
