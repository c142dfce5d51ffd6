//! Writing an event in the canonical shape that [`crate::HttpBodyParser`] reads: the body of `POST
//! /v1/purchases`, a Kafka purchase message, a line of the agent's spool. One writer for all of them, so the
//! shape cannot drift between them.

use serde::Serialize;
use topsellers_model::{PurchaseEvent, TimestampMs};

/// Appends `event` as one canonical JSON object (no newline): times in epoch milliseconds (exact, and cheap to
/// read back), the price as a decimal string with `price_decimals` digits (exact), and the agent's pseudonymous
/// `customer_key` when there is one (readers that do not know it ignore it, as they ignore any unknown key).
/// Serialized straight from the event's fields: a `serde_json::Map` per event cost a map node and a copied
/// string per field.
pub fn encode_canonical(
    event: &PurchaseEvent,
    customer_key: Option<&str>,
    price_decimals: u32,
    out: &mut Vec<u8>,
) {
    let value = Canonical {
        event_id: event.event_id.as_deref(),
        time: event.event_time_ms,
        original_time: event.original_time_ms,
        item_id: &event.item_id,
        item_name: event.item_name.as_deref(),
        category: event.category.as_str(),
        quantity: event.quantity,
        unit_price: decimal(event.unit_price_minor, price_decimals),
        currency: &event.currency,
        country: event.country.as_deref(),
        customer_key,
    };
    // Serializing plain strings and integers into a Vec cannot fail.
    serde_json::to_writer(out, &value).expect("writing to a Vec");
}

#[derive(Serialize)]
struct Canonical<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    time: TimestampMs,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_time: Option<TimestampMs>,
    item_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_name: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    category: &'a str,
    quantity: i64,
    unit_price: String,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_key: Option<&'a str>,
}

/// `1999, 2` -> `"19.99"`, `-5, 2` -> `"-0.05"`, `7, 0` -> `"7"`.
fn decimal(minor: i64, decimals: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if decimals == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u64.pow(decimals);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(1999, 2), "19.99");
        assert_eq!(decimal(999, 2), "9.99");
        assert_eq!(decimal(-5, 2), "-0.05");
        assert_eq!(decimal(7, 0), "7");
        assert_eq!(decimal(12, 0), "12");
        assert_eq!(decimal(1, 3), "0.001");
    }
}
