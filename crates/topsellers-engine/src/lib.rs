//! Exact sliding-window top-N per category over event time: the aggregator at the heart of topsellers.
//!
//! Purchase events go in through [`Engine::admit`] (or [`Engine::apply`] for log records, or
//! [`Engine::admit_batch`] for a slice of events: same results, with memory reads overlapped); the engine
//! drops duplicates (the same event id for the same item) and late events, counts every accepted one
//! exactly in event-time buckets, rolls each sale up to every ancestor category and the site-wide list
//! `""`, slides the windows as event time advances, and hands out every ranking at once with [`Engine::snapshot`]. It is pure: no I/O and no
//! clock (the wall clock enters as [`Engine::tick`]), so replaying the same log from the same
//! [`Engine::checkpoint`] always gives the same results.
//!
//! ```
//! use topsellers_engine::{Admission, Engine, EngineConfig};
//! use topsellers_model::{CategoryPath, PurchaseEvent};
//!
//! let mut engine = Engine::new(EngineConfig::default()).unwrap();
//! let sale = |id: &str, item: &str, quantity: i64| PurchaseEvent {
//!     event_id: Some(id.into()),
//!     event_time_ms: 1_700_000_000_000,
//!     original_time_ms: None,
//!     item_id: item.into(),
//!     item_name: None,
//!     category: CategoryPath::parse("electronics/phones").unwrap(),
//!     quantity,
//!     unit_price_minor: 19_900,
//!     currency: "GBP".into(),
//!     country: None,
//! };
//! assert_eq!(engine.admit(&sale("e1", "phone-a", 2)), Admission::Accepted);
//! assert_eq!(engine.admit(&sale("e2", "phone-b", 1)), Admission::Accepted);
//! assert_eq!(engine.admit(&sale("e1", "phone-a", 2)), Admission::Duplicate);
//!
//! let snapshot = engine.snapshot(1, 0, "GBP");
//! let top = snapshot.list("electronics", "1h").unwrap();
//! assert_eq!(top.items[0].item_id, "phone-a");
//! assert_eq!(top.items[0].units, 2);
//! assert_eq!(snapshot.list("", "all").unwrap().items.len(), 2);
//! ```
//!
//! How it works, module by module: `catalog` interns items and categories to dense
//! ids, `windows` keeps per-bucket counts and per-window sums, `dedup` remembers (event id, item id)
//! lines until the watermark passes them, `topk` selects the rankings at snapshot time, and
//! `checkpoint` defines the byte format of the saved state.

mod catalog;
mod checkpoint;
mod config;
mod dedup;
mod engine;
mod error;
mod topk;
mod windows;

pub use checkpoint::CHECKPOINT_FORMAT_VERSION;
pub use config::EngineConfig;
pub use engine::{Admission, Engine, EngineStats};
pub use error::EngineError;

#[cfg(test)]
mod tests;
