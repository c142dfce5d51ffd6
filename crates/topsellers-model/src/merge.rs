//! One snapshot out of the snapshots of a topic's partitions.
//!
//! In the cluster shape each Kafka partition is aggregated by its own engine, and an API server merges
//! their snapshots. Purchases are keyed by item id ([`crate::home_partition`]), so every item is counted
//! in exactly one partition: the top k of a category is the top k of the union of the partitions' top k
//! lists for it, exactly, and merging needs nothing but the lists themselves.

use crate::{rank_order, RankedItem, Snapshot, TimestampMs, TopList, WindowSpec};
use std::collections::{BTreeMap, HashSet};

/// Why partition snapshots cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// There is nothing to merge.
    #[error("there are no partition snapshots to merge; serve the previous results until an aggregator has published one")]
    NoParts,
    /// Two parts were computed with settings that make their lists incomparable.
    #[error("partition snapshot {part} has {setting} {found}, but partition snapshot 0 has {expected}; run every aggregator of the topic with the same engine settings and currency")]
    SettingsDiffer {
        part: usize,
        setting: &'static str,
        expected: String,
        found: String,
    },
    /// A part's lists do not line up with its own windows (it was not written by an engine).
    #[error("partition snapshot {part} is malformed: {reason}; republish it from its aggregator")]
    Malformed { part: usize, reason: String },
}

/// Merges the snapshots of all partitions of one topic into the snapshot a single engine over all the
/// purchases would give.
///
/// - Categories are the union of the parts' categories. Per (category, window), the items of every
///   part that has the category are ranked with [`rank_order`], cut to `top_k` and numbered from 1.
/// - `top_k`, `windows` and `currency` are the parts' own and must agree ([`MergeError::SettingsDiffer`]
///   otherwise). There is no `top_k` argument on purpose: a merged list is exact only up to the
///   parts' `top_k` (an item ranked below it in its partition is unknown here), and a shorter answer
///   is the API's `n`, cut at serving time.
/// - `as_of_ms` and `watermark_ms` are the largest of the parts (the furthest any partition got), and
///   each merged list takes its bounds from the part with the newest `as_of_ms` among those that have
///   the category. When the producer sends its final time to every partition (as the cluster path
///   does), all parts agree on these anyway. `events_counted` is the sum.
/// - `version` and `computed_at_ms` are the merger's, copied in as given.
///
/// An empty `parts` is [`MergeError::NoParts`] rather than an empty snapshot: a snapshot needs windows,
/// currency and `top_k`, and only the parts know them; an invented empty one would replace good
/// results with nothing.
///
/// **Precondition:** no item is in two parts. Partitioning by item id guarantees it; it can break only
/// through a bug or a mix of snapshots taken under two partition counts. A repeated item is caught by a
/// `debug_assert!`, and in release builds the better-ranked entry is kept, not the sum: if two
/// aggregators hold the same item they have (at least partly) counted the same purchases, so a sum
/// would count them twice (what must never happen), while either entry alone was counted exactly once
/// by its aggregator; taking the better-ranked one keeps the result independent of the parts' order.
pub fn merge_snapshots(
    parts: &[Snapshot],
    version: u64,
    computed_at_ms: TimestampMs,
) -> Result<Snapshot, MergeError> {
    let first = parts.first().ok_or(MergeError::NoParts)?;
    for (part, snapshot) in parts.iter().enumerate() {
        check_agrees(part, snapshot, first)?;
        check_shape(part, snapshot)?;
    }
    let top_k = first.top_k;
    let windows = &first.windows;

    // Category -> the parts that have it, in part order.
    let mut holders: BTreeMap<&str, Vec<&Snapshot>> = BTreeMap::new();
    for snapshot in parts {
        for category in snapshot.lists.keys() {
            holders.entry(category).or_default().push(snapshot);
        }
    }

    let mut lists = BTreeMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (category, holders) in holders {
        // The first of the newest: `max_by_key` would take the last of equals.
        let newest = holders
            .iter()
            .copied()
            .reduce(|a, b| if b.as_of_ms > a.as_of_ms { b } else { a })
            .expect("a category in the map has at least one holder");
        let per_window = (0..windows.len())
            .map(|w| {
                let mut items: Vec<&RankedItem> = holders
                    .iter()
                    .flat_map(|s| &s.lists[category][w].items)
                    .collect();
                items.sort_by(|a, b| {
                    rank_order(
                        a.units,
                        a.revenue_minor,
                        &a.item_id,
                        b.units,
                        b.revenue_minor,
                        &b.item_id,
                    )
                });
                seen.clear();
                let items = items
                    .into_iter()
                    .filter(|item| {
                        let first_sight = seen.insert(&item.item_id);
                        debug_assert!(
                            first_sight,
                            "item {:?} is in two partition snapshots of category {category:?}",
                            item.item_id
                        );
                        first_sight
                    })
                    .take(top_k)
                    .zip(1..)
                    .map(|(item, rank)| RankedItem {
                        rank,
                        ..item.clone()
                    })
                    .collect();
                TopList {
                    category: category.to_string(),
                    window: windows[w].name.clone(),
                    bounds: newest.lists[category][w].bounds,
                    items,
                }
            })
            .collect();
        lists.insert(category.to_string(), per_window);
    }

    Ok(Snapshot {
        version,
        as_of_ms: parts.iter().map(|s| s.as_of_ms).max().unwrap_or(0),
        watermark_ms: parts
            .iter()
            .map(|s| s.watermark_ms)
            .max()
            .unwrap_or(i64::MIN),
        computed_at_ms,
        currency: first.currency.clone(),
        top_k,
        windows: windows.clone(),
        lists,
        events_counted: parts
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.events_counted)),
    })
}

fn check_agrees(part: usize, snapshot: &Snapshot, first: &Snapshot) -> Result<(), MergeError> {
    let differ = |setting, expected: String, found: String| MergeError::SettingsDiffer {
        part,
        setting,
        expected,
        found,
    };
    if snapshot.windows != first.windows {
        return Err(differ(
            "windows",
            window_names(&first.windows),
            window_names(&snapshot.windows),
        ));
    }
    if snapshot.currency != first.currency {
        return Err(differ(
            "currency",
            format!("{:?}", first.currency),
            format!("{:?}", snapshot.currency),
        ));
    }
    if snapshot.top_k != first.top_k {
        return Err(differ(
            "top_k",
            first.top_k.to_string(),
            snapshot.top_k.to_string(),
        ));
    }
    Ok(())
}

fn window_names(windows: &[WindowSpec]) -> String {
    format!(
        "{:?}",
        windows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>()
    )
}

/// Every category has one list per window, in the order of `windows`: the merge pairs lists by
/// position, so a part that breaks this would mix windows up silently.
fn check_shape(part: usize, snapshot: &Snapshot) -> Result<(), MergeError> {
    for (category, per_window) in &snapshot.lists {
        if per_window.len() != snapshot.windows.len() {
            return Err(MergeError::Malformed {
                part,
                reason: format!(
                    "category {category:?} has {} lists for {} windows",
                    per_window.len(),
                    snapshot.windows.len()
                ),
            });
        }
        if let Some((list, spec)) = per_window
            .iter()
            .zip(&snapshot.windows)
            .find(|(list, spec)| list.window != spec.name)
        {
            return Err(MergeError::Malformed {
                part,
                reason: format!(
                    "category {category:?} has a {:?} list where window {:?} belongs",
                    list.window, spec.name
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WindowBounds;

    fn item(id: &str, units: i64, revenue: i64) -> RankedItem {
        RankedItem {
            rank: 0,
            item_id: id.into(),
            item_name: Some(format!("name of {id}")),
            units,
            revenue_minor: revenue,
        }
    }

    /// A snapshot with windows `1h` and `all`, as of `as_of`; `lists` gives per category the items of
    /// the `1h` list (the `all` list gets the same items with ten times the units).
    fn part(as_of: i64, counted: u64, lists: &[(&str, Vec<RankedItem>)]) -> Snapshot {
        let windows = vec![WindowSpec::parse("1h").unwrap(), WindowSpec::all()];
        let ranked = |items: &[RankedItem]| {
            items
                .iter()
                .zip(1..)
                .map(|(i, rank)| RankedItem { rank, ..i.clone() })
                .collect()
        };
        Snapshot {
            version: 7,
            as_of_ms: as_of,
            watermark_ms: as_of - 1000,
            computed_at_ms: 5,
            currency: "GBP".into(),
            top_k: 3,
            windows,
            lists: lists
                .iter()
                .map(|(cat, items)| {
                    let all: Vec<RankedItem> = items
                        .iter()
                        .map(|i| RankedItem {
                            units: i.units * 10,
                            ..i.clone()
                        })
                        .collect();
                    let list = |window: &str, start_ms, items| TopList {
                        category: cat.to_string(),
                        window: window.into(),
                        bounds: WindowBounds {
                            start_ms,
                            end_ms: as_of,
                        },
                        items,
                    };
                    (
                        cat.to_string(),
                        vec![
                            list("1h", Some(as_of - 3_600_000), ranked(items)),
                            list("all", None, ranked(&all)),
                        ],
                    )
                })
                .collect(),
            events_counted: counted,
        }
    }

    fn ids(list: &TopList) -> Vec<(u32, &str, i64)> {
        list.items
            .iter()
            .map(|i| (i.rank, i.item_id.as_str(), i.units))
            .collect()
    }

    #[test]
    fn lists_are_re_ranked_cut_and_numbered() {
        let a = part(
            10_000_000,
            4,
            &[
                (
                    "",
                    vec![item("a1", 5, 0), item("a2", 3, 90), item("a3", 1, 0)],
                ),
                ("x", vec![item("a1", 5, 0)]),
            ],
        );
        let b = part(
            10_000_000,
            6,
            &[
                (
                    "",
                    vec![item("b1", 4, 0), item("b2", 3, 100), item("b3", 3, 90)],
                ),
                ("y", vec![item("b1", 4, 0)]),
            ],
        );
        let merged = merge_snapshots(&[a, b], 9, 42).unwrap();
        assert_eq!(
            ids(merged.list("", "1h").unwrap()),
            [(1, "a1", 5), (2, "b1", 4), (3, "b2", 3)],
            "revenue breaks the tie between b2 and a2, then item id between a2 and b3"
        );
        assert_eq!(
            ids(merged.list("", "all").unwrap()),
            [(1, "a1", 50), (2, "b1", 40), (3, "b2", 30)]
        );
        assert_eq!(
            merged.lists.keys().collect::<Vec<_>>(),
            ["", "x", "y"],
            "categories are the union"
        );
        assert_eq!(ids(merged.list("y", "1h").unwrap()), [(1, "b1", 4)]);
        assert_eq!(
            merged.list("x", "1h").unwrap().items[0]
                .item_name
                .as_deref(),
            Some("name of a1")
        );
        assert_eq!(
            (merged.version, merged.computed_at_ms, merged.events_counted),
            (9, 42, 10)
        );
        assert_eq!((merged.top_k, merged.currency.as_str()), (3, "GBP"));
    }

    #[test]
    fn time_is_the_furthest_part_and_bounds_follow_the_newest_holder() {
        let old = part(1_000_000, 1, &[("", vec![]), ("x", vec![item("a", 1, 0)])]);
        let new = part(2_000_000, 1, &[("", vec![])]);
        let merged = merge_snapshots(&[old, new], 1, 0).unwrap();
        assert_eq!(merged.as_of_ms, 2_000_000);
        assert_eq!(merged.watermark_ms, 2_000_000 - 1000);
        assert_eq!(merged.list("", "1h").unwrap().bounds.end_ms, 2_000_000);
        // Only the older part has `x`, so its bounds are the newest there are for that list.
        assert_eq!(merged.list("x", "1h").unwrap().bounds.end_ms, 1_000_000);
        assert_eq!(
            merged.list("x", "1h").unwrap().bounds.start_ms,
            Some(1_000_000 - 3_600_000)
        );
    }

    #[test]
    fn one_part_merges_to_itself() {
        let a = part(
            3_600_000,
            2,
            &[("", vec![item("b", 2, 0), item("a", 1, 0)])],
        );
        let merged = merge_snapshots(std::slice::from_ref(&a), a.version, a.computed_at_ms);
        assert_eq!(merged, Ok(a));
    }

    #[test]
    fn no_parts_is_an_error() {
        assert_eq!(merge_snapshots(&[], 1, 0), Err(MergeError::NoParts));
    }

    #[test]
    fn settings_must_agree() {
        let a = part(0, 0, &[("", vec![])]);
        let mut b = a.clone();
        b.currency = "EUR".into();
        let err = merge_snapshots(&[a.clone(), b], 1, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition snapshot 1 has currency \"EUR\", but partition snapshot 0 has \"GBP\"; run every aggregator of the topic with the same engine settings and currency"
        );
        let mut c = a.clone();
        c.top_k = 10;
        assert!(matches!(
            merge_snapshots(&[a.clone(), c], 1, 0),
            Err(MergeError::SettingsDiffer {
                setting: "top_k",
                part: 1,
                ..
            })
        ));
        let mut d = a.clone();
        d.windows.reverse();
        let err = merge_snapshots(&[a, d], 1, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"windows ["all", "1h"], but partition snapshot 0 has ["1h", "all"]"#),
            "{err}"
        );
    }

    #[test]
    fn lists_that_do_not_line_up_with_the_windows_are_refused() {
        let a = part(0, 0, &[("", vec![])]);
        let mut short = a.clone();
        short.lists.get_mut("").unwrap().pop();
        assert!(matches!(
            merge_snapshots(&[a.clone(), short], 1, 0),
            Err(MergeError::Malformed { part: 1, .. })
        ));
        let mut swapped = a.clone();
        swapped.lists.get_mut("").unwrap().reverse();
        let err = merge_snapshots(&[swapped], 1, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("has a \"all\" list where window \"1h\" belongs"),
            "{err}"
        );
    }

    /// In release builds (no debug assertions) an item in two parts keeps its better entry, whichever
    /// part comes first.
    #[test]
    #[cfg(not(debug_assertions))]
    fn an_item_in_two_parts_keeps_the_better_entry() {
        let a = part(0, 1, &[("", vec![item("dup", 2, 0), item("a", 1, 0)])]);
        let b = part(0, 1, &[("", vec![item("dup", 5, 0)])]);
        for parts in [[a.clone(), b.clone()], [b, a]] {
            let merged = merge_snapshots(&parts, 1, 0).unwrap();
            assert_eq!(
                ids(merged.list("", "1h").unwrap()),
                [(1, "dup", 5), (2, "a", 1)]
            );
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is in two partition snapshots")]
    fn an_item_in_two_parts_is_a_violated_precondition() {
        let a = part(0, 1, &[("", vec![item("dup", 2, 0)])]);
        let b = part(0, 1, &[("", vec![item("dup", 5, 0)])]);
        let _ = merge_snapshots(&[a, b], 1, 0);
    }
}
