//! [`Generator`]: the event stream over a [`Catalog`].

use crate::catalog::Catalog;
use crate::rate::RateSchedule;
use crate::GenConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
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

/// Generates purchase events: Zipf-popular items, occasional refunds of earlier sales, duplicates
/// and late events. Deterministic: one seed and one sequence of calls give the same events.
#[derive(Clone, Debug)]
pub struct Generator {
    config: GenConfig,
    catalog: Catalog,
    rng: StdRng,
    leaf_rank: Zipf<f64>,
    item_rank: Zipf<f64>,
    schedule: RateSchedule,
    next_event_no: u64,
    recent: VecDeque<PurchaseEvent>,
    refundable: Vec<Sale>,
}

impl Generator {
    /// Builds the catalog and the event stream for `config.seed`. Expects a config that passed
    /// [`GenConfig::validate`]; out-of-range values are clamped rather than panicking.
    pub fn new(config: GenConfig) -> Generator {
        let catalog = Catalog::build(&config);
        let zipf = |n: usize, exponent: f64| {
            let exponent = if exponent.is_finite() {
                exponent.clamp(0.0, 10.0)
            } else {
                1.0
            };
            Zipf::new(n.max(1) as u64, exponent).expect("n >= 1 and exponent >= 0 are valid")
        };
        let leaf_rank = zipf(catalog.leaves().len(), LEAF_ZIPF_EXPONENT);
        let item_rank = zipf(
            catalog.leaves()[0].items_by_popularity.len(),
            config.zipf_exponent,
        );
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
        if draw < dup {
            if let Some(copy) = self.duplicate() {
                return copy;
            }
        } else if draw < dup + refund {
            if let Some(refund) = self.refund(now_ms) {
                return self.remember(refund);
            }
        } else if draw < dup + refund + late {
            let back = self.rng.gen_range(LATE_MIN_MS..=LATE_MAX_MS);
            let sale = self.sale(now_ms - back);
            return self.remember(sale);
        }
        // Also the fallback when there is nothing to duplicate or refund yet.
        let sale = self.sale(now_ms);
        self.remember(sale)
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

    fn new_event_id(&mut self) -> String {
        let id = format!("g-{}-{}", self.config.seed, self.next_event_no);
        self.next_event_no += 1;
        id
    }

    fn sale(&mut self, time_ms: TimestampMs) -> PurchaseEvent {
        let leaf_rank = self.leaf_rank.sample(&mut self.rng) as usize - 1;
        let item_rank = self.item_rank.sample(&mut self.rng) as usize - 1;
        let leaf = self.catalog.leaf_by_popularity(leaf_rank);
        let item = leaf.items_by_popularity[item_rank];
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
        let event_id = self.new_event_id();
        self.event(event_id, sale, time_ms, quantity, None)
    }

    /// Refunds part or all of a remembered sale, at most once per sale so net units never go negative.
    fn refund(&mut self, now_ms: TimestampMs) -> Option<PurchaseEvent> {
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
        let event_id = self.new_event_id();
        Some(self.event(event_id, sale, now_ms, -units, Some(sale.time_ms)))
    }

    fn duplicate(&mut self) -> Option<PurchaseEvent> {
        if self.recent.is_empty() {
            return None;
        }
        let i = self.rng.gen_range(0..self.recent.len());
        Some(self.recent[i].clone())
    }

    /// Keeps an original (never a duplicate) for later re-delivery, and hands it back.
    fn remember(&mut self, event: PurchaseEvent) -> PurchaseEvent {
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(event.clone());
        event
    }

    fn event(
        &self,
        event_id: String,
        sale: Sale,
        time_ms: TimestampMs,
        quantity: i64,
        original_time_ms: Option<TimestampMs>,
    ) -> PurchaseEvent {
        let item = &self.catalog.items()[sale.item];
        PurchaseEvent {
            event_id: Some(event_id),
            event_time_ms: time_ms,
            original_time_ms,
            item_id: item.id.clone(),
            item_name: Some(item.name.clone()),
            category: item.category.clone(),
            quantity,
            unit_price_minor: item.unit_price_minor,
            currency: self.config.currency.clone(),
            country: Some(sale.country.to_string()),
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
