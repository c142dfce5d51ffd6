//! The `[input]` and `[limits]` sections of the product config: plain data, checked by `validate`.

use crate::time::{TimeFormat, TimeZoneSpec};
use serde::{Deserialize, Serialize};
use topsellers_model::CategoryPath;

/// The canonical JSON keys of a purchase, used by HTTP bodies and generated files.
///
/// `time` and `original_time` are RFC 3339 strings or integer epoch milliseconds; `unit_price` is a
/// decimal string or a JSON number; `quantity` is an integer.
pub const CANONICAL_FIELDS: [&str; 10] = [
    "event_id",
    "time",
    "original_time",
    "item_id",
    "item_name",
    "category",
    "quantity",
    "unit_price",
    "currency",
    "country",
];

/// `[input]`: how to read a purchase file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// `"csv"`, `"jsonl"`, or `"auto"` (the default): inferred from the file extension (`.csv`;
    /// `.jsonl`, `.ndjson`, `.json`).
    pub format: InputFormat,
    /// CSV field separator, one ASCII character. Default `','`.
    pub csv_delimiter: char,
    /// Whether the first CSV row names the columns. Default `true`. Without a header, the names in
    /// `[input.fields]` are 1-based column numbers (`"3"`).
    pub csv_has_header: bool,
    /// Whether a quoted CSV field may contain line breaks, so that one record spans several physical
    /// lines (RFC 4180). Default `false`: every physical line is one record, and a quote still open
    /// at the end of a line makes that line alone a dead letter (`malformed`, "unclosed quote"), so
    /// a stray quote can never swallow the good lines after it. A `"` inside an unquoted field
    /// (`Vinyl 12" record`) is a literal character either way. Set `true` only when fields really
    /// contain line breaks; a record that spans lines and then fails (wrong width, too long) still
    /// costs only its first line.
    pub csv_multiline_fields: bool,
    /// Which column (CSV) or key (JSON, dotted paths like `payload.item.sku` allowed) holds each field.
    /// Default: the canonical keys (see [`CANONICAL_FIELDS`]).
    #[serde(default = "FieldMapping::canonical")]
    pub fields: FieldMapping,
    /// `"rfc3339"` (default), `"unix_ms"`, `"unix_s"`, or a strftime format such as
    /// `"%Y-%m-%d %H:%M:%S"`.
    pub time_format: String,
    /// IANA time zone for times written without an offset. Default `"UTC"`.
    pub time_zone: String,
    /// The currency of every record when no currency field is mapped (or a record leaves it empty).
    /// Default: `[limits].currency`.
    pub currency: Option<String>,
    /// Item ids to drop, counted as excluded rather than rejected. `*` matches any run of characters
    /// (`"gift_0001_*"`). Matched after the id is trimmed and `item_id_case` applied (to the pattern too).
    pub exclude_items: Vec<String>,
    /// `"keep"` (default), `"upper"` or `"lower"`: how item ids are normalised, so that `15056BL` and
    /// `15056bl` are one item.
    pub item_id_case: ItemIdCase,
    /// When set, a negative quantity is a refund only if the marker field starts with the prefix; other
    /// negative rows are stock adjustments, skipped as `not_a_sale`, and a marked row with a positive
    /// quantity is rejected.
    pub refund_marker: Option<RefundMarker>,
    /// Prepended to every category (`"country/"` turns `France` into `country/france`).
    pub category_prefix: Option<String>,
    /// Longest accepted record in bytes; longer records are rejected as oversized without being
    /// held in memory. Default 1 MiB.
    pub max_record_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            format: InputFormat::Auto,
            csv_delimiter: ',',
            csv_has_header: true,
            csv_multiline_fields: false,
            fields: FieldMapping::canonical(),
            time_format: "rfc3339".into(),
            time_zone: "UTC".into(),
            currency: None,
            exclude_items: Vec::new(),
            item_id_case: ItemIdCase::Keep,
            refund_marker: None,
            category_prefix: None,
            max_record_bytes: 1 << 20,
        }
    }
}

/// The layout of a purchase file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// Decide from the file extension.
    #[default]
    Auto,
    Csv,
    /// One JSON object per line (NDJSON).
    Jsonl,
}

impl InputFormat {
    /// The format of `path`: `self` unless `Auto`, else from the extension; `None` when unknown.
    pub fn resolve(self, path: &std::path::Path) -> Option<InputFormat> {
        match self {
            InputFormat::Auto => {
                let ext = path.extension()?.to_str()?.to_ascii_lowercase();
                match ext.as_str() {
                    "csv" => Some(InputFormat::Csv),
                    "jsonl" | "ndjson" | "json" => Some(InputFormat::Jsonl),
                    _ => None,
                }
            }
            known => Some(known),
        }
    }
}

/// How item ids are normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemIdCase {
    #[default]
    Keep,
    Upper,
    Lower,
}

/// Marks refund rows among negative quantities, e.g. `{ field = "InvoiceNo", prefix = "C" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundMarker {
    /// Column or key holding the marker.
    pub field: String,
    /// A row is a refund when the field starts with this text.
    pub prefix: String,
}

/// `[input.fields]`: names of CSV columns or JSON keys (dotted paths allowed) for each event field.
/// Optional fields left out are not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// The product id (required).
    pub item_id: String,
    /// The product name, shown next to the id.
    #[serde(default)]
    pub item_name: Option<String>,
    /// The category path (`electronics/phones`); without it every record counts site-wide only.
    #[serde(default)]
    pub category: Option<String>,
    /// Units, integer; negative for refunds (required).
    pub quantity: String,
    /// Price of one unit, decimal (required).
    pub unit_price: String,
    /// When the purchase happened (required), read with `time_format`.
    pub time: String,
    /// Producer-assigned id used to drop duplicates.
    #[serde(default)]
    pub event_id: Option<String>,
    /// ISO 4217 code of the price; else `input.currency`, else `[limits].currency`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The buyer's country.
    #[serde(default)]
    pub country: Option<String>,
    /// For refunds: when the refunded sale happened.
    #[serde(default)]
    pub original_time: Option<String>,
}

impl Default for FieldMapping {
    fn default() -> Self {
        Self::canonical()
    }
}

impl FieldMapping {
    /// The canonical shape: every key named as in [`CANONICAL_FIELDS`].
    pub fn canonical() -> Self {
        FieldMapping {
            item_id: "item_id".into(),
            item_name: Some("item_name".into()),
            category: Some("category".into()),
            quantity: "quantity".into(),
            unit_price: "unit_price".into(),
            time: "time".into(),
            event_id: Some("event_id".into()),
            currency: Some("currency".into()),
            country: Some("country".into()),
            original_time: Some("original_time".into()),
        }
    }

    /// `(config key, mapped name)` of every mapped field, required ones first.
    pub fn mapped(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("item_id", self.item_id.as_str()),
            ("quantity", self.quantity.as_str()),
            ("unit_price", self.unit_price.as_str()),
            ("time", self.time.as_str()),
        ];
        for (key, name) in [
            ("item_name", &self.item_name),
            ("category", &self.category),
            ("event_id", &self.event_id),
            ("currency", &self.currency),
            ("country", &self.country),
            ("original_time", &self.original_time),
        ] {
            if let Some(name) = name {
                out.push((key, name.as_str()));
            }
        }
        out
    }
}

/// `[limits]`: what counts as a sane record, for files and HTTP alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// ISO 4217 code revenue is summed in; records in other currencies are rejected. Default `"USD"`.
    pub currency: String,
    /// Decimal places of the currency's minor unit; prices with more are rejected. Default 2.
    pub price_decimals: u32,
    /// Largest accepted absolute quantity of one record. Default 100 000.
    pub max_quantity: i64,
    /// Largest accepted unit price in minor units. Default 100 000 000.
    pub max_unit_price_minor: i64,
    /// RFC 3339; earlier event times are rejected as decades off. Default `"2000-01-01T00:00:00Z"`.
    pub min_event_time: String,
    /// Event times later than now plus this many seconds are rejected. Default 60. Keep it at most half of
    /// `engine.allowed_lateness_secs`: event time advances with the newest event, so one producer whose clock
    /// runs ahead eats into everybody else's lateness allowance by that much.
    pub max_future_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            currency: "USD".into(),
            price_decimals: 2,
            max_quantity: 100_000,
            max_unit_price_minor: 100_000_000,
            min_event_time: "2000-01-01T00:00:00Z".into(),
            max_future_secs: 60,
        }
    }
}

/// Smallest `max_record_bytes` that leaves room for a real record.
const MIN_RECORD_BYTES: usize = 64;
/// More decimals than this would overflow prices of everyday size in an i64.
const MAX_PRICE_DECIMALS: u32 = 9;
/// Ten years: a larger allowance would accept timestamps decades off.
const MAX_FUTURE_SECS: u64 = 10 * 365 * 86_400;

fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

impl InputConfig {
    /// Every problem of this section at once, each a sentence naming the key and the fix.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let d = self.csv_delimiter;
        if !d.is_ascii() || d == '"' || d == '\n' || d == '\r' {
            problems.push(format!(
                "input.csv_delimiter {d:?} cannot separate CSV fields; use one ASCII character other than a quote or a line break, like ',' or ';'"
            ));
        }
        for (key, name) in self.fields.mapped() {
            if name.trim().is_empty() {
                problems.push(format!(
                    "input.fields.{key} is empty; name the column or JSON key that holds the {key}, or remove the key if it is optional"
                ));
            } else if !self.csv_has_header
                && self.format != InputFormat::Jsonl
                && name.parse::<usize>().map_or(true, |n| n == 0)
            {
                problems.push(format!(
                    "input.fields.{key} = {name:?} is not a column number, which is how columns are named when input.csv_has_header = false; write \"1\" for the first column"
                ));
            }
        }
        if let Err(e) = TimeFormat::parse(&self.time_format) {
            problems.push(format!("input.time_format: {e}"));
        }
        if let Err(e) = TimeZoneSpec::parse(&self.time_zone) {
            problems.push(format!("input.time_zone: {e}"));
        }
        if let Some(c) = &self.currency {
            if !is_currency_code(c) {
                problems.push(format!(
                    "input.currency {c:?} is not an ISO 4217 code; write three capital letters like GBP"
                ));
            }
        }
        for pattern in &self.exclude_items {
            if pattern.trim().is_empty() {
                problems.push(
                    "input.exclude_items holds an empty pattern, which matches nothing; remove it"
                        .into(),
                );
            }
        }
        if let Some(marker) = &self.refund_marker {
            if marker.field.trim().is_empty() || marker.prefix.is_empty() {
                problems.push(
                    "input.refund_marker needs a non-empty field and prefix, like { field = \"InvoiceNo\", prefix = \"C\" }"
                        .into(),
                );
            } else if !self.csv_has_header
                && self.format != InputFormat::Jsonl
                && marker.field.parse::<usize>().map_or(true, |n| n == 0)
            {
                problems.push(format!(
                    "input.refund_marker.field = {:?} is not a column number, which is how columns are named when input.csv_has_header = false; write \"1\" for the first column",
                    marker.field
                ));
            }
        }
        if let Some(prefix) = &self.category_prefix {
            match CategoryPath::parse(prefix) {
                Err(e) => problems.push(format!(
                    "input.category_prefix {prefix:?} is not a valid category path ({e}); write segments separated by '/', like \"country/\""
                )),
                Ok(path) => {
                    if let Some(segment) = crate::builder::dot_segment(path.as_str()) {
                        problems.push(format!(
                            "input.category_prefix {prefix:?} has a {segment:?} segment; write segments separated by '/' that name a level, like \"country/\""
                        ));
                    }
                }
            }
        }
        if self.max_record_bytes < MIN_RECORD_BYTES {
            problems.push(format!(
                "input.max_record_bytes = {} is too small for any record; use at least {MIN_RECORD_BYTES} (the default is 1048576)",
                self.max_record_bytes
            ));
        }
        problems
    }
}

impl Limits {
    /// Every problem of this section at once, each a sentence naming the key and the fix.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_currency_code(&self.currency) {
            problems.push(format!(
                "limits.currency {:?} is not an ISO 4217 code; write three capital letters like USD",
                self.currency
            ));
        }
        if self.price_decimals > MAX_PRICE_DECIMALS {
            problems.push(format!(
                "limits.price_decimals = {} is more than {MAX_PRICE_DECIMALS}; use the minor unit of the currency, 2 for most",
                self.price_decimals
            ));
        }
        if self.max_quantity <= 0 {
            problems.push(format!(
                "limits.max_quantity = {} accepts no record; use a positive number like 100000",
                self.max_quantity
            ));
        }
        if self.max_unit_price_minor <= 0 {
            problems.push(format!(
                "limits.max_unit_price_minor = {} accepts no price; use a positive number like 100000000",
                self.max_unit_price_minor
            ));
        }
        // The engine multiplies quantity by price; the bounds must make that product fit.
        if self.max_quantity > 0
            && self.max_unit_price_minor > 0
            && self
                .max_quantity
                .checked_mul(self.max_unit_price_minor)
                .is_none()
        {
            problems.push(
                "limits.max_quantity times limits.max_unit_price_minor overflows a 64-bit revenue; lower one of them"
                    .into(),
            );
        }
        if crate::time::parse_rfc3339_utc(&self.min_event_time).is_none() {
            problems.push(format!(
                "limits.min_event_time {:?} is not an RFC 3339 time; write it like 2000-01-01T00:00:00Z",
                self.min_event_time
            ));
        }
        if self.max_future_secs > MAX_FUTURE_SECS {
            problems.push(format!(
                "limits.max_future_secs = {} would accept timestamps years ahead; use at most {MAX_FUTURE_SECS} (the default is 60)",
                self.max_future_secs
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(InputConfig::default().validate(), Vec::<String>::new());
        assert_eq!(Limits::default().validate(), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key() {
        let input = InputConfig {
            csv_delimiter: '"',
            time_format: "when".into(),
            time_zone: "Mars/Olympus".into(),
            currency: Some("pounds".into()),
            max_record_bytes: 3,
            exclude_items: vec![" ".into()],
            ..InputConfig::default()
        };
        let problems = input.validate();
        assert_eq!(problems.len(), 6, "{problems:#?}");
        for key in [
            "input.csv_delimiter",
            "input.time_format",
            "input.time_zone",
            "input.currency",
            "input.max_record_bytes",
            "input.exclude_items",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(key)), "{key}");
        }
        let limits = Limits {
            currency: "usd".into(),
            max_quantity: i64::MAX,
            min_event_time: "yesterday".into(),
            ..Limits::default()
        };
        let problems = limits.validate();
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }

    #[test]
    fn headerless_csv_needs_column_numbers() {
        let input = InputConfig {
            csv_has_header: false,
            ..InputConfig::default()
        };
        let problems = input.validate();
        assert!(problems
            .iter()
            .any(|p| p.starts_with("input.fields.item_id = \"item_id\" is not a column number")));
    }

    #[test]
    fn toml_section_reads_with_defaults_and_rejects_unknown_keys() {
        let input: InputConfig = toml::from_str(
            r#"
            time_format = "%Y-%m-%d %H:%M:%S"
            refund_marker = { field = "InvoiceNo", prefix = "C" }
            [fields]
            item_id = "StockCode"
            quantity = "Quantity"
            unit_price = "UnitPrice"
            time = "InvoiceDate"
            "#,
        )
        .unwrap();
        assert_eq!(input.fields.category, None);
        assert_eq!(input.csv_delimiter, ',');
        assert!(toml::from_str::<InputConfig>("colour = 1").is_err());
        assert!(toml::from_str::<Limits>("currency = \"GBP\"\nmax_qty = 5").is_err());
        assert_eq!(
            InputFormat::Auto.resolve(std::path::Path::new("a.NDJSON")),
            Some(InputFormat::Jsonl)
        );
    }
}
