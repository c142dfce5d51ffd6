//! The benchmark workload, shared by `benches/engine.rs` and `examples/admit_loop.rs` (included with
//! `#[path]`; kept in a subfolder so cargo does not take it for a benchmark of its own): 1 M distinct items in 100 leaf categories of depth 2, Zipf-ish item choice, an event id and a
//! name on every event.

use rand::{rngs::StdRng, Rng, SeedableRng};
use topsellers_engine::{Engine, EngineConfig};
use topsellers_model::{CategoryPath, PurchaseEvent};

pub const ITEMS: usize = 1_000_000;
pub const STREAM: usize = 1_000_000;
pub const T0: i64 = 1_700_006_400_000;
pub const MIN: i64 = 60_000;

pub struct Catalog {
    categories: Vec<CategoryPath>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalog {
    pub fn new() -> Self {
        let categories = (0..100)
            .map(|i| CategoryPath::parse(&format!("dept{}/shelf{}", i / 10, i % 10)).unwrap())
            .collect();
        Catalog { categories }
    }

    /// One purchase of `item`; every item lives in one category and has a fixed price and name.
    pub fn event(&self, n: usize, item: usize, time: i64, rng: &mut StdRng) -> PurchaseEvent {
        // About 1% refunds, half of them of a sale a few minutes earlier.
        let refund = rng.gen_ratio(1, 100);
        PurchaseEvent {
            event_id: Some(format!("order-{n}")),
            event_time_ms: time,
            original_time_ms: (refund && n.is_multiple_of(2)).then(|| time - 3 * MIN),
            item_id: format!("sku-{item:07}"),
            item_name: Some(format!("Item number {item}")),
            category: self.categories[item % 100].clone(),
            quantity: if refund { -1 } else { 1 + (n % 3) as i64 },
            unit_price_minor: 100 + (item % 5000) as i64,
            currency: "GBP".into(),
            country: None,
        }
    }
}

/// Zipf-ish (s = 1) item choice: log-uniform over `1..=ITEMS`, so a few items sell a lot and most sell
/// rarely, as on a real shop.
pub fn zipf_item(rng: &mut StdRng) -> usize {
    let x = (ITEMS as f64).powf(rng.gen::<f64>());
    (x as usize).clamp(1, ITEMS) - 1
}

/// An engine that has seen every item once (5 minutes of event time), and the next `STREAM` events
/// (10 more minutes) drawn Zipf-ish.
pub fn setup() -> (Engine, Vec<PurchaseEvent>) {
    let catalog = Catalog::new();
    let mut rng = StdRng::seed_from_u64(7);
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    for item in 0..ITEMS {
        let time = T0 + (item as i64 * 5 * MIN) / ITEMS as i64;
        engine.admit(&catalog.event(item, item, time, &mut rng));
    }
    let stream = (0..STREAM)
        .map(|n| {
            let time = T0 + 5 * MIN + (n as i64 * 10 * MIN) / STREAM as i64;
            let item = zipf_item(&mut rng);
            catalog.event(ITEMS + n, item, time, &mut rng)
        })
        .collect();
    (engine, stream)
}
