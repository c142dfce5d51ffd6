//! The one place where extracted field values become a [`PurchaseEvent`] or a [`DeadLetter`]; the CSV,
//! JSON-lines and HTTP paths all end here, so a record is judged the same way whichever way it came.

use crate::config::{InputConfig, ItemIdCase, Limits};
use crate::exclude::{normalise_item_id, Exclusions};
use crate::fields::{mapped_names, Field, FieldValue, FieldValues, FIELD_COUNT};
use crate::scrub::{detect, scrub, Redactions};
use crate::time::{parse_rfc3339_utc, TimeFormat, TimeParser};
use crate::{IngestError, Parsed, SkipReason};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use topsellers_model::{
    parse_decimal_minor, CategoryPath, DeadLetter, MoneyError, PurchaseEvent, RejectReason,
    TimestampMs, MAX_EVENT_ID_LEN, MAX_ITEM_ID_LEN, MAX_ITEM_NAME_LEN,
};

/// Longest value kept in a dead letter's `record`.
const MAX_RECORD_VALUE_CHARS: usize = 200;
/// Longest value quoted inside a dead letter's message.
const MAX_MESSAGE_VALUE_CHARS: usize = 60;
/// Longest accepted country name; real names are far shorter, longer ones are a mapping mistake.
const MAX_COUNTRY_LEN: usize = 64;

/// Where a record sits in its input, for dead letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// 1-based physical line of a file where the record starts.
    Line(u64),
    /// 1-based position of a record in an HTTP body.
    Record(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// Why one record was refused, before it is dressed up as a dead letter.
struct Refusal {
    field: Field,
    reason: RejectReason,
    message: String,
}

/// Turns the values of one record into an event, a skip, or a dead letter.
///
/// Built once per input from the config; keeps small caches (time-zone offsets, the last category)
/// so that the per-record work stays close to the parsing itself.
pub struct RecordBuilder {
    source: String,
    names: [Option<String>; FIELD_COUNT],
    time: TimeParser,
    currency: String,
    default_currency: String,
    price_decimals: u32,
    max_quantity: i64,
    max_unit_price_minor: i64,
    min_time_ms: TimestampMs,
    min_time_text: String,
    max_future_secs: u64,
    max_time_ms: TimestampMs,
    now_ms: TimestampMs,
    item_case: ItemIdCase,
    exclusions: Exclusions,
    refund_prefix: Option<String>,
    category_prefix: String,
    /// Raw category text -> parsed (scrubbed) path and what scrubbing it removed. Files hold few
    /// distinct categories, and parsing one (normalising case and spaces) costs more than the rest
    /// of the record.
    categories: FxHashMap<String, (CategoryPath, Redactions)>,
    /// Personal data removed from events and dead letters so far.
    redactions: Cell<Redactions>,
    /// Where the record most recently given to [`RecordBuilder::build`] started (0 before the first).
    last_line: u64,
    /// Removed from the record being judged; counted only if it becomes an event (a dead letter's
    /// `record` is scrubbed, and counted, on its own).
    pending: Redactions,
    /// The canonical shape (HTTP, Kafka): fixed keys and no mapping, no configured zone, so times written
    /// as text must carry an offset or `Z`, and messages name the keys rather than `input.fields`.
    canonical: bool,
}

/// An optionally signed run of ASCII digits, surrounding whitespace allowed: an integer, however big.
fn is_integer_text(text: &str) -> bool {
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Bound on the category cache; beyond it the cache starts over rather than grow without limit.
const MAX_CACHED_CATEGORIES: usize = 100_000;

/// `str::trim`, skipped when the ends are plainly not whitespace: most values need no trimming,
/// and the Unicode-aware trim is a measurable share of the per-record cost.
fn trim(s: &str) -> &str {
    let plain = |b: u8| b.is_ascii() && !b.is_ascii_whitespace();
    match s.as_bytes() {
        [first, .., last] if plain(*first) && plain(*last) => s,
        [only] if plain(*only) => s,
        _ => s.trim(),
    }
}

/// A value quoted in a message: personal data replaced first (uncounted: the dead letter's
/// `record` holds, and counts, the same value), then clipped.
fn quote(s: &str) -> String {
    let mut ignored = Redactions::default();
    clip(&scrub(s, &mut ignored), MAX_MESSAGE_VALUE_CHARS).into_owned()
}

/// `name` cut to at most `max_bytes` bytes at a character boundary, ending in "…" when cut.
pub(crate) fn truncate_name(mut name: String, max_bytes: usize) -> String {
    const ELLIPSIS: &str = "…";
    if name.len() <= max_bytes {
        return name;
    }
    let mut at = max_bytes.saturating_sub(ELLIPSIS.len());
    while !name.is_char_boundary(at) {
        at -= 1;
    }
    name.truncate(at);
    // A cut after a space would leave "word …".
    let kept = name.trim_end().len();
    name.truncate(kept);
    name.push_str(ELLIPSIS);
    name
}

/// The `.` or `..` segment of a category path, if it has one: a category is also a name in URLs
/// and on disk, where such a segment means "here" or "up".
pub(crate) fn dot_segment(path: &str) -> Option<&str> {
    path.split('/')
        .map(str::trim)
        .find(|s| *s == "." || *s == "..")
}

fn clip(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => Cow::Owned(format!("{}…", &s[..at])),
        None => Cow::Borrowed(s),
    }
}

impl RecordBuilder {
    /// A builder for records read through `input`'s mapping. `source` names the input in dead
    /// letters (`file:<path>`, `http`); `now_ms` bounds future timestamps and stamps dead letters.
    pub fn new(
        source: impl Into<String>,
        input: &InputConfig,
        limits: &Limits,
        now_ms: TimestampMs,
    ) -> Result<RecordBuilder, IngestError> {
        let mut problems = input.validate();
        problems.extend(limits.validate());
        if let Some(c) = &input.currency {
            if *c != limits.currency && input.fields.currency.is_none() {
                problems.push(format!(
                    "input.currency {c:?} differs from limits.currency {:?}, so every record would be rejected; make them the same",
                    limits.currency
                ));
            }
        }
        if !problems.is_empty() {
            return Err(IngestError::InvalidConfig { problems });
        }
        let time = TimeParser::new(&input.time_format, &input.time_zone)
            .map_err(|p| IngestError::InvalidConfig { problems: vec![p] })?;
        let min_time_ms = parse_rfc3339_utc(&limits.min_event_time).ok_or_else(|| {
            IngestError::InvalidConfig {
                problems: vec!["limits.min_event_time is not an RFC 3339 time".into()],
            }
        })?;
        let max_future_ms = i64::try_from(limits.max_future_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let category_prefix = match &input.category_prefix {
            Some(p) if !p.trim().is_empty() => {
                // Validated above; the trailing '/' keeps "country" + "france" apart.
                let p = CategoryPath::parse(p).unwrap_or_default();
                format!("{}/", p.as_str())
            }
            _ => String::new(),
        };
        Ok(RecordBuilder {
            source: source.into(),
            names: mapped_names(input),
            time,
            currency: limits.currency.clone(),
            default_currency: input
                .currency
                .clone()
                .unwrap_or_else(|| limits.currency.clone()),
            price_decimals: limits.price_decimals,
            max_quantity: limits.max_quantity,
            max_unit_price_minor: limits.max_unit_price_minor,
            min_time_ms,
            min_time_text: limits.min_event_time.clone(),
            max_future_secs: limits.max_future_secs,
            max_time_ms: now_ms.saturating_add(max_future_ms),
            now_ms,
            item_case: input.item_id_case,
            exclusions: Exclusions::new(&input.exclude_items, input.item_id_case),
            refund_prefix: input.refund_marker.as_ref().map(|m| m.prefix.clone()),
            category_prefix,
            categories: FxHashMap::default(),
            redactions: Cell::new(Redactions::default()),
            last_line: 0,
            pending: Redactions::default(),
            canonical: false,
        })
    }

    /// The column or key `field` is mapped to.
    pub fn field_name(&self, field: Field) -> Option<&str> {
        self.names[field.index()].as_deref()
    }

    /// Personal data (by kind) replaced in kept text fields and dead-letter records, or found in
    /// an id (which refuses the record), since the builder was made.
    pub fn redactions(&self) -> Redactions {
        self.redactions.get()
    }

    /// The line where the record most recently built started: lets a caller that keeps an event name where it
    /// came from (a late event rejected downstream) without the event type carrying positions.
    pub fn last_line(&self) -> u64 {
        self.last_line
    }

    /// Reads records in the canonical (HTTP, Kafka) shape: text times without a UTC offset
    /// (`2026-11-10 11:35:00`) are refused instead of read in `input.time_zone`, since no zone was
    /// configured, and messages do not send the user to `input.fields`, since there is no mapping.
    pub(crate) fn canonical_shape(&mut self) {
        self.canonical = true;
        self.time.require_offset();
    }

    fn count(&self, found: &Redactions) {
        if found.total() > 0 {
            let mut all = self.redactions.get();
            all.merge(found);
            self.redactions.set(all);
        }
    }

    /// `text` with personal data replaced, counted towards the record being judged.
    fn scrubbed(&mut self, text: Cow<'_, str>) -> String {
        match scrub(&text, &mut self.pending) {
            Cow::Borrowed(_) => text.into_owned(),
            Cow::Owned(clean) => clean,
        }
    }

    /// Refuses an id that carries personal data: it cannot be redacted and still name the item.
    fn check_id(&self, field: Field, id: &str) -> Result<(), Refusal> {
        match detect(id) {
            None => Ok(()),
            Some(kind) => Err(self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{} looks like personal data ({}), which an id must not carry; {} a product code or order id and keep personal data out of ids",
                    self.name(field),
                    kind.description(),
                    if self.canonical {
                        format!("send {} as", field.config_key())
                    } else {
                        format!("map input.fields.{} to", field.config_key())
                    }
                ),
            )),
        }
    }

    /// Moves "now" (the bound on future timestamps, and the stamp of dead letters) to `now_ms`. A consumer
    /// of a log passes each record's log time, so that judging a record again after a restart gives the
    /// same verdict as the first time.
    pub fn set_now(&mut self, now_ms: TimestampMs) {
        let max_future_ms = self.max_time_ms.saturating_sub(self.now_ms);
        self.now_ms = now_ms;
        self.max_time_ms = now_ms.saturating_add(max_future_ms);
    }

    /// Names the input in the dead letters that follow (`kafka:purchases/3@1200`).
    pub fn set_source(&mut self, source: impl Into<String>) {
        self.source = source.into();
    }

    /// The `source` this builder stamps on dead letters.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Judges one record.
    pub fn build(&mut self, values: &FieldValues<'_>, location: Location) -> Parsed {
        if let Location::Line(line) = location {
            self.last_line = line;
        }
        self.pending = Redactions::default();
        match self.judge(values) {
            Ok(parsed) => {
                if matches!(parsed, Parsed::Event(_)) {
                    let pending = self.pending;
                    self.count(&pending);
                }
                parsed
            }
            Err(refusal) => Parsed::Rejected(self.dead_letter(
                location,
                Some(refusal.field),
                refusal.reason,
                refusal.message,
                Some(values),
            )),
        }
    }

    /// A dead letter from this input. `values`, when given, fills `record` with the mapped fields
    /// that could be read; readers pass `None` when the record's columns cannot be trusted (a row
    /// with the wrong number of fields may have an unmapped column, with personal data, in a mapped
    /// position).
    pub fn dead_letter(
        &self,
        location: Location,
        field: Option<Field>,
        reason: RejectReason,
        message: String,
        values: Option<&FieldValues<'_>>,
    ) -> DeadLetter {
        DeadLetter {
            source: self.source.clone(),
            location: location.to_string(),
            field: field.and_then(|f| self.field_name(f).map(str::to_string)),
            reason,
            message,
            record: values.map(|v| self.record_json(v)).unwrap_or_default(),
            at_ms: self.now_ms,
        }
    }

    /// The readable mapped fields as a JSON object, personal data replaced (and counted), values
    /// clipped; empty when none could be read.
    fn record_json(&self, values: &FieldValues<'_>) -> String {
        let mut found = Redactions::default();
        let mut object = serde_json::Map::new();
        for field in Field::ALL {
            let Some(name) = self.field_name(field) else {
                continue;
            };
            let value = match values.get(field) {
                FieldValue::Text(s) => serde_json::Value::String(
                    clip(&scrub(s, &mut found), MAX_RECORD_VALUE_CHARS).into_owned(),
                ),
                FieldValue::Number(n) => serde_json::Value::Number(n.clone()),
                _ => continue,
            };
            object.insert(name.to_string(), value);
        }
        self.count(&found);
        if object.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(object).to_string()
        }
    }

    /// Where a mapped input's user looks for a field; nothing for the canonical shape (HTTP, Kafka),
    /// whose keys are fixed and named in the message already.
    fn mapping_hint(&self, field: Field) -> String {
        if self.canonical {
            String::new()
        } else {
            format!(" (check input.fields.{})", field.config_key())
        }
    }

    fn name(&self, field: Field) -> &str {
        self.field_name(field).unwrap_or(field.config_key())
    }

    fn refuse(&self, field: Field, reason: RejectReason, message: String) -> Refusal {
        Refusal {
            field,
            reason,
            message,
        }
    }

    /// The value as text: JSON numbers are written out, other JSON types are refused.
    fn text<'v>(
        &self,
        values: &FieldValues<'v>,
        field: Field,
        expected: &str,
    ) -> Result<Option<Cow<'v, str>>, Refusal> {
        match values.get(field) {
            FieldValue::Absent => Ok(None),
            FieldValue::Text(s) => Ok(Some(Cow::Borrowed(s))),
            FieldValue::Number(n) => Ok(Some(Cow::Owned(n.to_string()))),
            FieldValue::WrongType(kind) => Err(self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{} is {kind}, not {expected}; write it as {expected}",
                    self.name(field)
                ),
            )),
            FieldValue::InvalidUtf8 => Err(self.refuse(
                field,
                RejectReason::InvalidUtf8,
                format!(
                    "{} is not valid UTF-8; save the input as UTF-8",
                    self.name(field)
                ),
            )),
        }
    }

    /// Trimmed, non-empty text, or `None`.
    fn present<'v>(
        &self,
        values: &FieldValues<'v>,
        field: Field,
        expected: &str,
    ) -> Result<Option<Cow<'v, str>>, Refusal> {
        Ok(match self.text(values, field, expected)? {
            None => None,
            Some(Cow::Borrowed(s)) => Some(trim(s)).filter(|s| !s.is_empty()).map(Cow::Borrowed),
            Some(Cow::Owned(s)) => Some(s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(Cow::Owned),
        })
    }

    fn required<'v>(
        &self,
        values: &FieldValues<'v>,
        field: Field,
        expected: &str,
    ) -> Result<Cow<'v, str>, Refusal> {
        self.present(values, field, expected)?.ok_or_else(|| {
            self.refuse(
                field,
                RejectReason::MissingField,
                format!(
                    "{} is missing or empty; every record needs {expected}{}",
                    self.name(field),
                    self.mapping_hint(field)
                ),
            )
        })
    }

    fn check_len(&self, field: Field, value: &str, max: usize) -> Result<(), Refusal> {
        if value.len() > max {
            return Err(self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{} is {} bytes long; at most {max} are allowed, check that the mapping points at the right column",
                    self.name(field),
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    fn judge(&mut self, values: &FieldValues<'_>) -> Result<Parsed, Refusal> {
        // Exclusion comes first: a postage line is not a sale, however odd its other fields are.
        let raw_id = self.required(values, Field::ItemId, "an item id")?;
        let item_id = normalise_item_id(self.item_case, &raw_id);
        if !self.exclusions.is_empty() && self.exclusions.excludes(&item_id) {
            return Ok(Parsed::Skipped(SkipReason::Excluded));
        }
        self.check_len(Field::ItemId, &item_id, MAX_ITEM_ID_LEN)?;
        self.check_id(Field::ItemId, &item_id)?;

        let quantity = self.quantity(values)?;
        if let Some(prefix) = &self.refund_prefix {
            let marked = match self.present(values, Field::RefundMarker, "text")? {
                Some(m) => m.starts_with(prefix.as_str()),
                None => false,
            };
            if quantity < 0 && !marked {
                return Ok(Parsed::Skipped(SkipReason::NotASale));
            }
            if quantity > 0 && marked {
                let marker = self.present(values, Field::RefundMarker, "text")?;
                return Err(self.refuse(
                    Field::RefundMarker,
                    RejectReason::InvalidField,
                    format!(
                        "{} {:?} marks a refund but {} {quantity} is positive; write the refunded units as a negative number",
                        self.name(Field::RefundMarker),
                        quote(marker.as_deref().unwrap_or("")),
                        self.name(Field::Quantity)
                    ),
                ));
            }
        }

        let unit_price_minor = self.unit_price(values)?;
        let event_time_ms = self.time(values, Field::Time)?.ok_or_else(|| {
            self.refuse(
                Field::Time,
                RejectReason::MissingField,
                format!(
                    "{} is missing or empty; every record needs the time of the purchase{}",
                    self.name(Field::Time),
                    self.mapping_hint(Field::Time)
                ),
            )
        })?;
        let original_time_ms = self.time(values, Field::OriginalTime)?;
        if let Some(original) = original_time_ms {
            if original > event_time_ms {
                return Err(self.refuse(
                    Field::OriginalTime,
                    RejectReason::InvalidField,
                    format!(
                        "{} is later than {}; a refund cannot come before the sale it undoes, fix or swap the two times",
                        self.name(Field::OriginalTime),
                        self.name(Field::Time)
                    ),
                ));
            }
        }

        let category = self.category(values)?;
        // The name is optional and only shown: an over-long one is cut, the sale kept.
        let item_name = self
            .present(values, Field::ItemName, "text")?
            .map(|name| truncate_name(self.scrubbed(name), MAX_ITEM_NAME_LEN));
        let event_id = match self.present(values, Field::EventId, "text")? {
            Some(id) => {
                self.check_len(Field::EventId, &id, MAX_EVENT_ID_LEN)?;
                self.check_id(Field::EventId, &id)?;
                Some(id.into_owned())
            }
            None => None,
        };
        let country = match self.present(values, Field::Country, "text")? {
            Some(c) => {
                let c = self.scrubbed(c);
                self.check_len(Field::Country, &c, MAX_COUNTRY_LEN)?;
                Some(c)
            }
            None => None,
        };
        self.check_currency(values)?;

        Ok(Parsed::Event(PurchaseEvent {
            event_id,
            event_time_ms,
            original_time_ms,
            item_id,
            item_name,
            category,
            quantity,
            unit_price_minor,
            currency: self.currency.clone(),
            country,
        }))
    }

    fn quantity(&self, values: &FieldValues<'_>) -> Result<i64, Refusal> {
        // 2^63 as a float: from here on a whole float no longer fits an i64.
        const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;
        let field = Field::Quantity;
        let not_integer = |shown: &str| {
            self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{} {:?} is not an integer; write a whole number of units, negative for a refund",
                    self.name(field),
                    quote(shown)
                ),
            )
        };
        let out_of_range = |shown: &str| {
            self.refuse(
                field,
                RejectReason::OutOfRange,
                format!(
                    "{} {:?} is beyond the limit of {} units per record; check the record, or raise limits.max_quantity",
                    self.name(field),
                    quote(shown),
                    self.max_quantity
                ),
            )
        };
        let quantity = match values.get(field) {
            FieldValue::Number(n) => match n.as_i64() {
                Some(q) => q,
                // A whole number too big for 64 bits (JSON gives those as u64 or as a huge float).
                None if n.is_u64()
                    || n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() >= I64_LIMIT) =>
                {
                    return Err(out_of_range(&n.to_string()))
                }
                // `1e3` or `2.0`: a whole value in float notation. Counts are exact integers, so say
                // how to write it rather than round it (a float may already have lost digits).
                None if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                    return Err(self.refuse(
                        field,
                        RejectReason::InvalidField,
                        format!(
                            "{} {} is written in floating-point notation (a decimal point or an exponent); \
                             write the units as a plain whole number such as {}",
                            self.name(field),
                            n,
                            n.as_f64().unwrap_or_default() as i64
                        ),
                    ))
                }
                None => return Err(not_integer(&n.to_string())),
            },
            _ => {
                let text = self.required(values, field, "a quantity")?;
                match crate::numbers::parse_int(&text) {
                    Some(q) => q,
                    None if is_integer_text(&text) => return Err(out_of_range(&text)),
                    None => return Err(not_integer(&text)),
                }
            }
        };
        if quantity == 0 {
            return Err(self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{} is 0, which counts nothing; write the units sold, or negative units for a refund",
                    self.name(field)
                ),
            ));
        }
        if quantity.unsigned_abs() > self.max_quantity.unsigned_abs() {
            return Err(self.refuse(
                field,
                RejectReason::OutOfRange,
                format!(
                    "{} {quantity} is beyond the limit of {} units per record; check the record, or raise limits.max_quantity",
                    self.name(field),
                    self.max_quantity
                ),
            ));
        }
        Ok(quantity)
    }

    fn unit_price(&self, values: &FieldValues<'_>) -> Result<i64, Refusal> {
        let field = Field::UnitPrice;
        let parsed = match values.get(field) {
            FieldValue::Number(n) if n.as_i64().is_some() => {
                let whole = n.as_i64().unwrap_or_default();
                10i64
                    .checked_pow(self.price_decimals)
                    .and_then(|scale| whole.checked_mul(scale))
                    .ok_or(MoneyError::TooLarge {
                        input: n.to_string(),
                    })
            }
            _ => {
                let text = self.required(values, field, "a unit price")?;
                parse_decimal_minor(&text, self.price_decimals)
            }
        };
        let name = self.name(field);
        let price = parsed.map_err(|e| match e {
            MoneyError::NotDecimal { input } => self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{name} {:?} is not a decimal number; write digits with an optional '.', like 2.55",
                    quote(&input)
                ),
            ),
            MoneyError::TooPrecise { input, decimals } => self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{name} {:?} has more than {decimals} decimal places; write whole minor units of {}, or raise limits.price_decimals",
                    quote(&input),
                    self.currency
                ),
            ),
            MoneyError::TooLarge { input } => self.refuse(
                field,
                RejectReason::OutOfRange,
                format!(
                    "{name} {:?} is too large; check the record, or raise limits.max_unit_price_minor",
                    quote(&input)
                ),
            ),
        })?;
        if price < 0 {
            return Err(self.refuse(
                field,
                RejectReason::OutOfRange,
                format!(
                    "{name} is negative ({price} minor units); write the price of one unit as a positive amount and mark refunds with a negative quantity"
                ),
            ));
        }
        if price > self.max_unit_price_minor {
            return Err(self.refuse(
                field,
                RejectReason::OutOfRange,
                format!(
                    "{name} is {price} minor units, above the limit of {}; check the record, or raise limits.max_unit_price_minor",
                    self.max_unit_price_minor
                ),
            ));
        }
        Ok(price)
    }

    /// A time field in range, `None` when absent or empty.
    fn time(
        &mut self,
        values: &FieldValues<'_>,
        field: Field,
    ) -> Result<Option<TimestampMs>, Refusal> {
        let (ms, shown, number) = match values.get(field) {
            FieldValue::Number(n) => (self.time.parse_number(n), Cow::Owned(n.to_string()), true),
            _ => match self.present(values, field, "a time")? {
                None => return Ok(None),
                Some(text) => (self.time.parse_text(&text), text, false),
            },
        };
        let name = self.name(field);
        let Some(ms) = ms else {
            if !number && self.canonical && self.time.lacks_offset(&shown) {
                return Err(self.refuse(
                    field,
                    RejectReason::InvalidField,
                    format!(
                        "{name} {:?} has no UTC offset, so the instant it names is unknown; write it in RFC 3339 with an offset or Z, like {:?}, or send epoch milliseconds",
                        quote(&shown),
                        with_utc_offset(&shown)
                    ),
                ));
            }
            return Err(self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{name} {:?} does not match input.time_format {:?}; write it like {}, or change input.time_format",
                    quote(&shown),
                    self.time.format().name(),
                    self.time.format().example()
                ),
            ));
        };
        // A number read as epoch milliseconds: a JSON number outside `unix_s`, or text in `unix_ms`.
        let read_as_ms = match self.time.format() {
            TimeFormat::UnixMs => true,
            TimeFormat::UnixS => false,
            _ => number,
        };
        if ms < self.min_time_ms {
            let message = match self.epoch_hint(ms, read_as_ms, number) {
                Some(hint) => format!(
                    "{name} {:?} is before limits.min_event_time {}; {hint}",
                    quote(&shown),
                    self.min_time_text
                ),
                None => format!(
                    "{name} {:?} is before limits.min_event_time {}; the producer's clock or the time format is likely wrong (for older data, lower limits.min_event_time)",
                    quote(&shown),
                    self.min_time_text
                ),
            };
            return Err(self.refuse(field, RejectReason::OutOfRange, message));
        }
        if ms > self.max_time_ms {
            let message = match self.epoch_hint(ms, read_as_ms, number) {
                Some(hint) => format!(
                    "{name} {:?} is more than {} s in the future; {hint}",
                    quote(&shown),
                    self.max_future_secs
                ),
                None => format!(
                    "{name} {:?} is more than {} s in the future; fix the producer's clock or input.time_zone",
                    quote(&shown),
                    self.max_future_secs
                ),
            };
            return Err(self.refuse(field, RejectReason::OutOfRange, message));
        }
        Ok(Some(ms))
    }

    /// For a number read as epoch milliseconds that is out of range: what it likely is instead
    /// (seconds or microseconds, when rescaling puts it in range) and the fix.
    fn epoch_hint(&self, ms: TimestampMs, read_as_ms: bool, number: bool) -> Option<String> {
        if !read_as_ms {
            return None;
        }
        let in_range = |t: TimestampMs| t >= self.min_time_ms && t <= self.max_time_ms;
        let how = if number {
            "numbers are read as epoch milliseconds"
        } else {
            "input.time_format = \"unix_ms\" reads epoch milliseconds"
        };
        let instant = |t: TimestampMs| {
            jiff::Timestamp::from_millisecond(t)
                .map(|t| t.to_string())
                .unwrap_or_default()
        };
        let seconds_fix = if number {
            "multiply it by 1000, or send an RFC 3339 string with an offset"
        } else {
            "multiply it by 1000, or set input.time_format = \"unix_s\""
        };
        Some(match ms.checked_mul(1000) {
            Some(as_secs) if in_range(as_secs) => format!(
                "{how}, and this one looks like epoch seconds ({}); {seconds_fix}",
                instant(as_secs)
            ),
            _ if in_range(ms / 1000) => format!(
                "{how}, and this one looks like epoch microseconds ({}); divide it by 1000",
                instant(ms / 1000)
            ),
            _ => format!(
                "{how} (this one is {}); check the producer's clock and the unit of the number",
                instant(ms)
            ),
        })
    }

    fn category(&mut self, values: &FieldValues<'_>) -> Result<CategoryPath, Refusal> {
        let Some(raw) = self.present(values, Field::Category, "text")? else {
            // An unmapped or empty category counts in the site-wide list only.
            return Ok(CategoryPath::site_wide());
        };
        if let Some((path, found)) = self.categories.get(raw.as_ref()) {
            if found.total() > 0 {
                self.pending.merge(found);
            }
            return Ok(path.clone());
        }
        let mut found = Redactions::default();
        let clean = scrub(&raw, &mut found);
        let parsed = if self.category_prefix.is_empty() {
            CategoryPath::parse(&clean)
        } else {
            CategoryPath::parse(&format!("{}{clean}", self.category_prefix))
        };
        if let Ok(path) = &parsed {
            if let Some(segment) = dot_segment(path.as_str()) {
                return Err(self.refuse(
                    Field::Category,
                    RejectReason::InvalidField,
                    format!(
                        "{} {:?} is not a usable category: it has a {segment:?} segment, which in a path means \"this level\" or \"one level up\"; name every level, like \"home/kitchen\"",
                        self.name(Field::Category),
                        quote(&raw)
                    ),
                ));
            }
        }
        match parsed {
            Ok(path) => {
                if self.categories.len() >= MAX_CACHED_CATEGORIES {
                    self.categories.clear();
                }
                self.pending.merge(&found);
                self.categories
                    .insert(raw.into_owned(), (path.clone(), found));
                Ok(path)
            }
            Err(e) => Err(self.refuse(
                Field::Category,
                RejectReason::InvalidField,
                format!(
                    "{} {:?} is not a usable category: {e}",
                    self.name(Field::Category),
                    quote(&raw)
                ),
            )),
        }
    }

    fn check_currency(&self, values: &FieldValues<'_>) -> Result<(), Refusal> {
        let field = Field::Currency;
        let code = self.present(values, field, "a currency code")?;
        let code = code.as_deref().unwrap_or(self.default_currency.as_str());
        if code == self.currency {
            return Ok(());
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(self.refuse(
                field,
                RejectReason::InvalidField,
                format!(
                    "{} {:?} is not an ISO 4217 currency code; write three letters like {}",
                    self.name(field),
                    quote(code),
                    self.currency
                ),
            ));
        }
        if code.eq_ignore_ascii_case(&self.currency) {
            return Ok(());
        }
        Err(self.refuse(
            field,
            RejectReason::CurrencyMismatch,
            format!(
                "{} {code:?} differs from limits.currency {:?}, the currency revenue is summed in; convert the price before sending, or change limits.currency",
                self.name(field),
                self.currency
            ),
        ))
    }
}

/// `2026-11-10 11:35:00` as `2026-11-10T11:35:00Z`, to show the shape an offset-less time should
/// take.
fn with_utc_offset(text: &str) -> String {
    let t = text.trim();
    match t.as_bytes().get(10) {
        Some(b' ' | b't' | b'T') if t.is_char_boundary(10) && t.len() <= 40 => {
            format!("{}T{}Z", &t[..10], &t[11..])
        }
        _ => "2024-01-31T08:26:00Z".to_string(),
    }
}
