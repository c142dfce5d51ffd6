//! Realistic generated purchase traffic, for `topsellers demo` and for benchmark input files.
//!
//! A [`Catalog`] of departments, subcategories and groups (leaves at depth 2 and 3) with named, priced
//! items; a [`Generator`] that sells them with Zipf-skewed popularity at a steady or bursty rate, mixed
//! with refunds of earlier sales, duplicate re-deliveries and late events, in the shares the
//! [`GenConfig`] asks for; and [`write_events`] to put a stream into a CSV or JSON-lines file.
//! Everything follows from the seed: the same config gives the same catalog and the same events.
//!
//! ```
//! use topsellers_gen::{GenConfig, Generator};
//!
//! let mut generator = Generator::new(GenConfig::default());
//! let start_ms = 1_700_000_000_000;
//! let mut events = Vec::new();
//! // One simulated second, in 100 ms steps, as the demo drives it.
//! for step in 0..10u64 {
//!     for _ in 0..generator.events_due(step * 100, 100) {
//!         events.push(generator.next_event(start_ms + (step as i64 + 1) * 100));
//!     }
//! }
//! assert!(!events.is_empty());
//! let first = &events[0];
//! assert!(first.item_id.starts_with("SKU-"));
//! assert!(generator.catalog().item(&first.item_id).is_some());
//! assert_eq!(first.category.depth(), generator.catalog().item(&first.item_id).unwrap().category.depth());
//! ```

mod catalog;
mod config;
mod generator;
mod popularity;
mod rate;
mod timeline;
mod words;
mod write;

pub use catalog::{Catalog, Item, Leaf};
pub use config::{GenConfig, RatePattern, MAX_CATALOG_ITEMS};
pub use generator::Generator;
pub use timeline::Timeline;
pub use write::{rfc3339_millis, write_events, CSV_HEADER};
