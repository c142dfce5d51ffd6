//! The shared vocabulary of topsellers.
//!
//! Every other crate speaks in these types: a [`PurchaseEvent`] is a purchase *after* the personal data
//! was stripped (there is no type for the raw record here on purpose: nothing downstream of the agent can
//! even name one), a [`CategoryPath`] is where it rolls up, a [`WindowSpec`] is a sliding window over
//! event time, and a [`TopList`] is one ranked answer as the API serves it.
//!
//! ```
//! use topsellers_model::{CategoryPath, WindowSpec};
//! let cat = CategoryPath::parse("Electronics/Phones").unwrap();
//! assert_eq!(cat.as_str(), "electronics/phones");
//! assert_eq!(cat.ancestors().collect::<Vec<_>>(), ["electronics/phones", "electronics", ""]);
//! assert_eq!(WindowSpec::parse("24h").unwrap().length_secs, Some(86_400));
//! ```

mod category;
mod dead_letter;
mod event;
mod log;
mod merge;
mod money;
mod partition;
mod ranking;
mod window;

pub use category::{CategoryError, CategoryPath, SITE_WIDE};
pub use dead_letter::{DeadLetter, RejectReason};
pub use event::{PurchaseEvent, MAX_EVENT_ID_LEN, MAX_ITEM_ID_LEN, MAX_ITEM_NAME_LEN};
pub use log::LogRecord;
pub use merge::{merge_snapshots, MergeError};
pub use money::{parse_decimal_minor, MoneyError};
pub use partition::{home_partition, murmur2};
pub use ranking::{rank_order, RankedItem, Snapshot, TopList, WindowBounds};
pub use window::{WindowError, WindowSpec};

/// Milliseconds since the Unix epoch, UTC. Event time is always carried in this unit.
pub type TimestampMs = i64;
