//! The JSON bodies of `/v1/top` and `/v1/categories`.
//!
//! One function per body, used both when a snapshot is published (pre-rendering the hot answers)
//! and on demand, so the two paths cannot drift apart.

use serde::Serialize;
use topsellers_model::{CategoryPath, Snapshot, TimestampMs, TopList, WindowBounds};

/// `12345` with 2 decimals is `"123.45"`; exact, never through floats.
pub(crate) fn format_minor(minor: i64, decimals: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    if decimals == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = 10u64.pow(decimals);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = decimals as usize
    )
}

/// RFC 3339 UTC with millisecond precision, like `2024-05-01T12:00:00Z`. Out-of-range times (which
/// only a corrupt snapshot could hold) render as `null` rather than failing the request.
pub(crate) fn rfc3339(ms: TimestampMs) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_string())
}

/// True for a snapshot of a node that has never counted an event: its time fields are the zero
/// default, not a real time, so they are reported as `null` and the body says `"empty": true`.
pub(crate) fn is_empty(snapshot: &Snapshot) -> bool {
    // Not `as_of_ms == 0` too: with idle advance on, event time moves with the wall clock before any purchase.
    snapshot.events_counted == 0
}

/// `as_of` of a snapshot, `None` when it is [empty](is_empty).
pub(crate) fn as_of(snapshot: &Snapshot) -> Option<String> {
    if is_empty(snapshot) {
        None
    } else {
        rfc3339(snapshot.as_of_ms)
    }
}

#[derive(Serialize)]
struct TopBody<'a> {
    category: &'a str,
    window: &'a str,
    n: usize,
    currency: &'a str,
    window_start: Option<String>,
    window_end: Option<String>,
    as_of: Option<String>,
    computed_at: Option<String>,
    version: u64,
    items: Vec<ItemBody<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty: bool,
}

#[derive(Serialize)]
struct ItemBody<'a> {
    rank: u32,
    item_id: &'a str,
    item_name: Option<&'a str>,
    units: i64,
    revenue: String,
    revenue_minor: i64,
}

/// The body of `/v1/top` for one category and window of `snapshot`, at most `n` items.
///
/// `list` is `None` for a category without sales: the answer is then an empty list with the
/// window's bounds taken from `bounds` (the same window of any other category).
pub(crate) fn top_body(
    snapshot: &Snapshot,
    category: &str,
    window: &str,
    list: Option<&TopList>,
    bounds: Option<WindowBounds>,
    n: usize,
    decimals: u32,
) -> Vec<u8> {
    let empty = is_empty(snapshot);
    // Bounds computed from an as_of of 0 would be dates around 1970: not bounds of anything.
    let bounds = list.map(|l| l.bounds).or(bounds).filter(|_| !empty);
    let items = list
        .map(|l| {
            l.items
                .iter()
                .take(n)
                .map(|item| ItemBody {
                    rank: item.rank,
                    item_id: &item.item_id,
                    item_name: item.item_name.as_deref(),
                    units: item.units,
                    revenue: format_minor(item.revenue_minor, decimals),
                    revenue_minor: item.revenue_minor,
                })
                .collect()
        })
        .unwrap_or_default();
    let body = TopBody {
        category,
        window,
        n,
        currency: &snapshot.currency,
        window_start: bounds.and_then(|b| b.start_ms).and_then(rfc3339),
        window_end: bounds.and_then(|b| rfc3339(b.end_ms)),
        as_of: as_of(snapshot),
        computed_at: rfc3339(snapshot.computed_at_ms),
        version: snapshot.version,
        items,
        empty,
    };
    serde_json::to_vec(&body).expect("a body of strings and integers always serialises")
}

/// The body of `/v1/top` before the first snapshot: well-formed, empty, and saying why.
pub(crate) fn warming_up_top_body(category: &str, window: Option<&str>, n: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "category": category,
        "window": window,
        "n": n,
        "currency": null,
        "window_start": null,
        "window_end": null,
        "as_of": null,
        "computed_at": null,
        "version": null,
        "items": [],
        "warming_up": true,
    }))
    .expect("a json value always serialises")
}

#[derive(Serialize)]
struct CategoriesBody<'a> {
    categories: Vec<CategoryBody<'a>>,
    windows: Vec<WindowBody<'a>>,
    default_window: Option<&'a str>,
    top_k: usize,
    currency: &'a str,
    as_of: Option<String>,
    computed_at: Option<String>,
    version: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty: bool,
}

#[derive(Serialize)]
struct CategoryBody<'a> {
    path: &'a str,
    parent: Option<String>,
    depth: usize,
}

#[derive(Serialize)]
struct WindowBody<'a> {
    name: &'a str,
    length_secs: Option<u64>,
}

/// The body of `/v1/categories`: every category of the snapshot in path order (so a parent comes
/// right before its children), with the site-wide list `""` first.
pub(crate) fn categories_body(snapshot: &Snapshot) -> Vec<u8> {
    let categories = snapshot
        .lists
        .keys()
        .map(|path| {
            // Paths in a snapshot were normalised by the engine; parsing again only derives the
            // parent and depth, and a path that somehow fails is still listed as-is.
            let parsed = CategoryPath::parse(path).ok();
            CategoryBody {
                path,
                parent: parsed
                    .as_ref()
                    .and_then(CategoryPath::parent)
                    .map(|p| p.as_str().to_string()),
                depth: parsed.as_ref().map_or(0, CategoryPath::depth),
            }
        })
        .collect();
    let body = CategoriesBody {
        categories,
        windows: snapshot
            .windows
            .iter()
            .map(|w| WindowBody {
                name: &w.name,
                length_secs: w.length_secs,
            })
            .collect(),
        default_window: snapshot.windows.first().map(|w| w.name.as_str()),
        top_k: snapshot.top_k,
        currency: &snapshot.currency,
        as_of: as_of(snapshot),
        computed_at: rfc3339(snapshot.computed_at_ms),
        version: snapshot.version,
        empty: is_empty(snapshot),
    };
    serde_json::to_vec(&body).expect("a body of strings and integers always serialises")
}

/// The body of `/v1/categories` before the first snapshot.
pub(crate) fn warming_up_categories_body() -> Vec<u8> {
    br#"{"categories":[],"windows":[],"default_window":null,"top_k":null,"currency":null,"as_of":null,"computed_at":null,"version":null,"warming_up":true}"#.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact() {
        assert_eq!(format_minor(1234, 2), "12.34");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(0, 2), "0.00");
        assert_eq!(format_minor(1234, 0), "1234");
        assert_eq!(format_minor(1234, 3), "1.234");
        assert_eq!(format_minor(i64::MIN, 2), "-92233720368547758.08");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_714_564_800_123).as_deref(),
            Some("2024-05-01T12:00:00.123Z")
        );
        assert_eq!(rfc3339(i64::MAX), None);
    }
}
