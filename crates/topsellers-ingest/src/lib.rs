//! The ingest layer of topsellers: purchase files (CSV, JSON lines) and HTTP request bodies become
//! validated [`PurchaseEvent`]s through a field mapping, and everything that cannot be accepted
//! becomes a [`DeadLetter`] naming the input, the line, the field, the reason and the fix.
//!
//! It never panics on input, and a bad record never stops the stream or loses the good records
//! around it. Dead letters carry only the mapped fields, so unmapped columns (a `CustomerID`, an
//! email) cannot leak through them. Every path ends in one [`RecordBuilder`], so a record is judged
//! the same way whether it came from a file or a request.
//!
//! Personal data typed into the kept free-text fields (item name, category, country) is replaced by
//! a marker (`[email]`, `[card]` (also for IBANs), `[phone]`, `[ip]`, see [`scrub()`]) in events and dead letters
//! alike, and counted ([`Redactions`]); an id carrying such data refuses the record, since it
//! cannot be redacted and still name the item.
//!
//! ```
//! use topsellers_ingest::{parse_http_body, Limits, Parsed};
//! use topsellers_model::RejectReason;
//!
//! let body = br#"{"item_id": "sku-1", "category": "Toys", "quantity": 2, "unit_price": "2.55", "time": "2024-01-31T08:26:00Z"}
//! {"item_id": "sku-2", "quantity": "lots", "unit_price": 1, "time": 1706689560000}"#;
//! let now_ms = 1_706_700_000_000;
//! let parsed = parse_http_body(body, &Limits::default(), now_ms);
//! let Parsed::Event(event) = &parsed[0] else { panic!("{:?}", parsed[0]) };
//! assert_eq!((event.category.as_str(), event.quantity, event.unit_price_minor), ("toys", 2, 255));
//! let Parsed::Rejected(letter) = &parsed[1] else { panic!("{:?}", parsed[1]) };
//! assert_eq!((letter.location.as_str(), letter.reason), ("record 2", RejectReason::InvalidField));
//! assert_eq!(letter.field.as_deref(), Some("quantity"));
//! ```
//!
//! Files go through [`FileReader`], an iterator of [`Parsed`] configured by [`InputConfig`] (the
//! `[input]` section of the product config) and [`Limits`] (`[limits]`).

mod builder;
mod canonical;
mod config;
mod csv_source;
mod error;
mod exclude;
mod fields;
mod http;
mod json;
mod jsonl_source;
mod late;
mod numbers;
mod reader;
mod scrub;
mod time;

pub use builder::{Location, RecordBuilder};
pub use canonical::encode_canonical;
pub use config::{
    FieldMapping, InputConfig, InputFormat, ItemIdCase, Limits, RefundMarker, CANONICAL_FIELDS,
};
pub use error::IngestError;
pub use fields::{Field, FieldValue, FieldValues, FIELD_COUNT};
pub use http::{parse_http_body, parse_http_body_with_redactions, HttpBodyParser};
pub use late::late_letter;
pub use reader::FileReader;
pub use scrub::{detect as detect_personal_data, scrub, PiiKind, Redactions};

use topsellers_model::{DeadLetter, PurchaseEvent};

/// What became of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Event(PurchaseEvent),
    /// Deliberately not counted, and not an error.
    Skipped(SkipReason),
    Rejected(DeadLetter),
}

/// Why a record was skipped rather than counted or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The item id is on `input.exclude_items` (postage, fees).
    Excluded,
    /// A negative quantity without the refund marker: a stock adjustment, not a refund.
    NotASale,
    /// An empty line of a JSON-lines file.
    BlankLine,
}

impl SkipReason {
    /// The metric label: `excluded`, `not_a_sale`, `blank_line`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Excluded => "excluded",
            SkipReason::NotASale => "not_a_sale",
            SkipReason::BlankLine => "blank_line",
        }
    }
}

#[cfg(test)]
mod tests;
