//! The values of one record, already pulled out of CSV columns or JSON keys, keyed by event field.

use crate::config::InputConfig;

/// An event field the mapping can point at, plus the refund marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    EventId,
    Time,
    OriginalTime,
    ItemId,
    ItemName,
    Category,
    Quantity,
    UnitPrice,
    Currency,
    Country,
    /// The column `input.refund_marker.field` names.
    RefundMarker,
}

/// Number of [`Field`] variants.
pub const FIELD_COUNT: usize = 11;

impl Field {
    /// Every field, in the order of the canonical shape.
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::EventId,
        Field::Time,
        Field::OriginalTime,
        Field::ItemId,
        Field::ItemName,
        Field::Category,
        Field::Quantity,
        Field::UnitPrice,
        Field::Currency,
        Field::Country,
        Field::RefundMarker,
    ];

    /// Fields every record must have; the others are optional.
    pub fn is_required(self) -> bool {
        matches!(
            self,
            Field::Time | Field::ItemId | Field::Quantity | Field::UnitPrice
        )
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The key of `[input.fields]` that maps this field (`refund_marker.field` for the marker).
    pub fn config_key(self) -> &'static str {
        match self {
            Field::EventId => "event_id",
            Field::Time => "time",
            Field::OriginalTime => "original_time",
            Field::ItemId => "item_id",
            Field::ItemName => "item_name",
            Field::Category => "category",
            Field::Quantity => "quantity",
            Field::UnitPrice => "unit_price",
            Field::Currency => "currency",
            Field::Country => "country",
            Field::RefundMarker => "refund_marker.field",
        }
    }
}

/// One field's value as the reader found it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum FieldValue<'a> {
    /// Not mapped, not present, or JSON `null`.
    #[default]
    Absent,
    Text(&'a str),
    /// A JSON number.
    Number(&'a serde_json::Number),
    /// A JSON value of a type no field accepts; holds the type's name ("a boolean").
    WrongType(&'static str),
    /// The bytes were not UTF-8.
    InvalidUtf8,
}

/// The mapped values of one record.
#[derive(Clone, Debug, Default)]
pub struct FieldValues<'a> {
    values: [FieldValue<'a>; FIELD_COUNT],
}

impl<'a> FieldValues<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, field: Field, value: FieldValue<'a>) {
        self.values[field.index()] = value;
    }

    pub fn get(&self, field: Field) -> FieldValue<'a> {
        self.values[field.index()]
    }
}

/// The column or key name each field is mapped to, `None` when unmapped.
pub(crate) fn mapped_names(input: &InputConfig) -> [Option<String>; FIELD_COUNT] {
    let f = &input.fields;
    let mut names: [Option<String>; FIELD_COUNT] = Default::default();
    names[Field::EventId.index()] = f.event_id.clone();
    names[Field::Time.index()] = Some(f.time.clone());
    names[Field::OriginalTime.index()] = f.original_time.clone();
    names[Field::ItemId.index()] = Some(f.item_id.clone());
    names[Field::ItemName.index()] = f.item_name.clone();
    names[Field::Category.index()] = f.category.clone();
    names[Field::Quantity.index()] = Some(f.quantity.clone());
    names[Field::UnitPrice.index()] = Some(f.unit_price.clone());
    names[Field::Currency.index()] = f.currency.clone();
    names[Field::Country.index()] = f.country.clone();
    names[Field::RefundMarker.index()] = input.refund_marker.as_ref().map(|m| m.field.clone());
    names
}
