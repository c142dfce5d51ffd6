//! Generated events written to a file in the canonical input shape, for benchmarks and replays.

use crate::{GenConfig, Timeline};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use topsellers_model::{PurchaseEvent, TimestampMs};

/// Header of the CSV form.
pub const CSV_HEADER: &str =
    "event_id,time,original_time,item_id,item_name,category,quantity,unit_price,currency";

/// One line of the JSON form. Absent optional values are left out rather than written as `null`.
#[derive(Serialize)]
struct CanonicalJson<'a> {
    event_id: Option<&'a str>,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_time: Option<String>,
    item_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_name: Option<&'a str>,
    category: &'a str,
    quantity: i64,
    unit_price: String,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
}

/// Writes the `n` events of [`Timeline`] (times from `start_ms` on, following the configured rate
/// pattern, so the mean rate is `rate_per_sec`) to `path`: JSON lines when the name ends in `.jsonl` or `.ndjson`,
/// else CSV with [`CSV_HEADER`]. Returns the number of events written.
pub fn write_events(
    config: &GenConfig,
    n: u64,
    start_ms: i64,
    path: &Path,
) -> Result<u64, io::Error> {
    let json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"));
    let file = File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
    let mut sink = if json {
        Sink::Json(BufWriter::with_capacity(1 << 20, file))
    } else {
        let mut w = csv::WriterBuilder::new()
            .buffer_capacity(1 << 20)
            .from_writer(file);
        w.write_record(CSV_HEADER.split(','))?;
        Sink::Csv(Box::new(w))
    };
    let mut written = 0u64;
    for event in Timeline::new(config, n, start_ms) {
        match &mut sink {
            Sink::Json(out) => {
                serde_json::to_writer(&mut *out, &canonical_json(&event))?;
                out.write_all(b"\n")?;
            }
            Sink::Csv(w) => write_csv_row(w, &event)?,
        }
        written += 1;
    }
    let file = match sink {
        Sink::Json(out) => out.into_inner().map_err(|e| e.into_error())?,
        Sink::Csv(w) => w.into_inner().map_err(|e| e.into_error())?,
    };
    file.sync_all()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot sync {}: {e}", path.display())))?;
    Ok(written)
}

enum Sink {
    Json(BufWriter<File>),
    // Boxed: the csv writer carries its state inline and would make every Sink that large.
    Csv(Box<csv::Writer<File>>),
}

fn canonical_json(e: &PurchaseEvent) -> CanonicalJson<'_> {
    CanonicalJson {
        event_id: e.event_id.as_deref(),
        time: rfc3339_millis(e.event_time_ms),
        original_time: e.original_time_ms.map(rfc3339_millis),
        item_id: &e.item_id,
        item_name: e.item_name.as_deref(),
        category: e.category.as_str(),
        quantity: e.quantity,
        unit_price: decimal(e.unit_price_minor),
        currency: &e.currency,
        country: e.country.as_deref(),
    }
}

fn write_csv_row(w: &mut csv::Writer<File>, e: &PurchaseEvent) -> io::Result<()> {
    let time = rfc3339_millis(e.event_time_ms);
    let original = e.original_time_ms.map(rfc3339_millis).unwrap_or_default();
    let quantity = e.quantity.to_string();
    let price = decimal(e.unit_price_minor);
    w.write_record([
        e.event_id.as_deref().unwrap_or(""),
        &time,
        &original,
        &e.item_id,
        e.item_name.as_deref().unwrap_or(""),
        e.category.as_str(),
        &quantity,
        &price,
        &e.currency,
    ])?;
    Ok(())
}

/// `2024-03-01T12:00:00.250Z`.
pub fn rfc3339_millis(ms: TimestampMs) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        // Outside jiff's range (years -9999..=9999): the generator never makes such times.
        Err(_) => ms.to_string(),
    }
}

/// Minor units with two decimals: `1999` -> `"19.99"`, `-5` -> `"-0.05"`.
fn decimal(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_prices_are_formatted_exactly() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_294_400_250),
            "2024-03-01T12:00:00.250Z"
        );
        assert_eq!(decimal(1999), "19.99");
        assert_eq!(decimal(5), "0.05");
        assert_eq!(decimal(-105), "-1.05");
    }
}
