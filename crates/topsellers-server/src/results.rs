//! The latest snapshot, with the answers hot requests need rendered ahead of time.

use crate::render;
use arc_swap::ArcSwapOption;
use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use topsellers_model::{Snapshot, WindowBounds};

/// The `n` a request gets when it names none, and the one pre-rendered for every list.
pub(crate) const DEFAULT_N: usize = 10;

/// Decimal places of the revenue strings when nothing else is said; right for most currencies.
const DEFAULT_CURRENCY_DECIMALS: u32 = 2;

/// The latest results, shared by every request and swapped atomically by [`Results::publish`].
///
/// Publishing renders the JSON body of every (category, window) at the default `n` and the
/// categories list once, so that a read is a lock-free pointer load, a map lookup and a refcounted
/// [`Bytes`] clone. Other values of `n` are rendered on demand. Cloning a `Results` is cheap and
/// every clone sees the same snapshot.
///
/// ```
/// use topsellers_server::Results;
/// let results = Results::new();
/// assert!(results.current().is_none()); // warming up until the first publish
/// ```
#[derive(Clone)]
pub struct Results {
    shared: Arc<Shared>,
}

struct Shared {
    current: ArcSwapOption<Prepared>,
    currency_decimals: u32,
}

impl Default for Results {
    fn default() -> Self {
        Self::new()
    }
}

impl Results {
    /// Empty results (the API answers "warming up") with revenue rendered at 2 decimals.
    pub fn new() -> Results {
        Self::with_currency_decimals(DEFAULT_CURRENCY_DECIMALS)
    }

    /// Empty results whose revenue strings use `decimals` places, the minor-unit precision of the
    /// configured currency (0 for JPY, 3 for KWD).
    pub fn with_currency_decimals(decimals: u32) -> Results {
        // i64 minor units have at most 19 digits; more decimals would be meaningless.
        let decimals = decimals.min(18);
        Results {
            shared: Arc::new(Shared {
                current: ArcSwapOption::empty(),
                currency_decimals: decimals,
            }),
        }
    }

    /// Makes `snapshot` the answer of every following request.
    ///
    /// Renders the hot answers first (work proportional to categories x windows), so call it from
    /// the thread that refreshes results, not from a request. Readers never wait: they keep using
    /// the previous snapshot until the new one is swapped in.
    pub fn publish(&self, snapshot: Snapshot) {
        let prepared = Prepared::new(Arc::new(snapshot), self.shared.currency_decimals);
        self.shared.current.store(Some(Arc::new(prepared)));
    }

    /// The snapshot being served, `None` before the first publish.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.shared
            .current
            .load()
            .as_ref()
            .map(|p| Arc::clone(&p.snapshot))
    }

    /// Runs `f` on the prepared snapshot without taking a reference count: the fast read path.
    pub(crate) fn with_prepared<R>(&self, f: impl FnOnce(Option<&Prepared>) -> R) -> R {
        let guard = self.shared.current.load();
        f(guard.as_deref())
    }
}

/// A body, its entity tag, and the response headers that go with it.
#[derive(Clone)]
pub(crate) struct Rendered {
    pub body: Bytes,
    pub etag: HeaderValue,
    /// Content type, cache control, tag, `X-Topsellers-As-Of`, and a placeholder
    /// `X-Request-Id` that the edge layer overwrites in place: built once at publish, so a hot
    /// request clones one map (two small copies) instead of hashing and inserting five headers,
    /// and never grows it.
    pub headers: HeaderMap,
}

/// Results change at most about once a second; a one-second cache lets CDNs and browsers absorb
/// bursts without serving anything noticeably older.
pub(crate) const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=1");
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub(crate) const AS_OF: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-topsellers-as-of");

impl Rendered {
    pub fn new(body: Bytes, etag: HeaderValue, as_of: Option<&HeaderValue>) -> Rendered {
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(header::CONTENT_TYPE, JSON);
        headers.insert(header::CACHE_CONTROL, CACHE_CONTROL);
        headers.insert(header::ETAG, etag.clone());
        if let Some(as_of) = as_of {
            headers.insert(AS_OF, as_of.clone());
        }
        headers.insert(crate::edge::X_REQUEST_ID, HeaderValue::from_static("-"));
        Rendered {
            body,
            etag,
            headers,
        }
    }
}

/// A published snapshot and everything derived from it once.
pub(crate) struct Prepared {
    pub snapshot: Arc<Snapshot>,
    pub currency_decimals: u32,
    /// `min(DEFAULT_N, top_k)`: the default never exceeds what the lists hold.
    pub default_n: usize,
    /// Category -> the default-`n` answer of each window, in the order of `snapshot.windows`.
    top: HashMap<Box<str>, Box<[Rendered]>>,
    /// Per window, the bounds to report for a category without sales.
    fallback_bounds: Box<[Option<WindowBounds>]>,
    pub categories: Rendered,
    /// `X-Topsellers-As-Of`.
    pub as_of_header: Option<HeaderValue>,
}

impl Prepared {
    fn new(snapshot: Arc<Snapshot>, currency_decimals: u32) -> Prepared {
        let default_n = DEFAULT_N.min(snapshot.top_k).max(1);
        let fallback_bounds: Box<[Option<WindowBounds>]> = snapshot
            .windows
            .iter()
            .map(|w| {
                snapshot
                    .lists
                    .values()
                    .find_map(|lists| lists.iter().find(|l| l.window == w.name))
                    .map(|l| l.bounds)
            })
            .collect();
        let as_of_header = render::as_of(&snapshot).and_then(|s| HeaderValue::from_str(&s).ok());
        let mut prepared = Prepared {
            categories: Rendered::new(
                Bytes::from(render::categories_body(&snapshot)),
                HeaderValue::from_str(&format!(
                    "\"{}.{}.categories\"",
                    snapshot.version, snapshot.computed_at_ms
                ))
                .expect("digits and dots are a valid header"),
                as_of_header.as_ref(),
            ),
            as_of_header,
            top: HashMap::with_capacity(snapshot.lists.len()),
            fallback_bounds,
            default_n,
            currency_decimals,
            snapshot: Arc::clone(&snapshot),
        };
        for category in snapshot.lists.keys() {
            let per_window: Box<[Rendered]> = (0..snapshot.windows.len())
                .map(|w| prepared.render(category, w, default_n))
                .collect();
            prepared.top.insert(category.as_str().into(), per_window);
        }
        prepared
    }

    /// Index of the window called `name`.
    pub fn window_index(&self, name: &str) -> Option<usize> {
        self.snapshot.windows.iter().position(|w| w.name == name)
    }

    /// The pre-rendered default-`n` answer, if the category had sales.
    pub fn pre_rendered(&self, category: &str, window: usize) -> Option<&Rendered> {
        self.top.get(category)?.get(window)
    }

    /// Renders an answer from the snapshot itself: for a non-default `n` or an unknown category.
    pub fn render(&self, category: &str, window: usize, n: usize) -> Rendered {
        let window_name = &self.snapshot.windows[window].name;
        let list = self
            .snapshot
            .lists
            .get(category)
            .and_then(|lists| lists.iter().find(|l| &l.window == window_name));
        let body = render::top_body(
            &self.snapshot,
            category,
            window_name,
            list,
            self.fallback_bounds[window],
            n,
            self.currency_decimals,
        );
        Rendered::new(
            Bytes::from(body),
            self.etag(category, window_name, n),
            self.as_of_header.as_ref(),
        )
    }

    /// A strong tag for (snapshot, category, window, n). The snapshot is named by version and
    /// computation time, so an aggregator that restarts its version count cannot revive old tags;
    /// the category enters as a hash because it may hold characters a header cannot.
    fn etag(&self, category: &str, window: &str, n: usize) -> HeaderValue {
        let tag = format!(
            "\"{}.{}.{}.{}.{:016x}\"",
            self.snapshot.version,
            self.snapshot.computed_at_ms,
            window,
            n,
            fnv1a(category.as_bytes())
        );
        HeaderValue::from_str(&tag).unwrap_or_else(|_| {
            // Window names are parsed `WindowSpec` names (digits, a unit letter or `all`), so this
            // cannot happen; a missing tag would only cost revalidation.
            HeaderValue::from_static("\"untagged\"")
        })
    }
}

/// FNV-1a, 64 bit: stable across processes and releases, unlike `DefaultHasher`, which matters
/// because several servers must give the same tag for the same answer.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::snapshot;

    #[test]
    fn pre_rendered_bodies_equal_on_demand_rendering() {
        let results = Results::new();
        results.publish(snapshot());
        results.with_prepared(|p| {
            let p = p.expect("published");
            let mut checked = 0;
            for category in p.snapshot.lists.keys() {
                for w in 0..p.snapshot.windows.len() {
                    let hot = p
                        .pre_rendered(category, w)
                        .expect("every list is pre-rendered");
                    let cold = p.render(category, w, p.default_n);
                    assert_eq!(hot.body, cold.body, "{category:?} window {w}");
                    assert_eq!(hot.etag, cold.etag);
                    checked += 1;
                }
            }
            assert!(checked >= 4, "fixture too small: {checked}");
        });
    }

    #[test]
    fn etags_differ_by_category_window_n_and_snapshot() {
        let results = Results::new();
        results.publish(snapshot());
        let first = results.with_prepared(|p| {
            let p = p.unwrap();
            let a = p.render("electronics", 0, 10).etag;
            assert_ne!(a, p.render("electronics/phones", 0, 10).etag);
            assert_ne!(a, p.render("electronics", 1, 10).etag);
            assert_ne!(a, p.render("electronics", 0, 3).etag);
            a
        });
        let mut next = snapshot();
        next.version += 1;
        results.publish(next);
        results.with_prepared(|p| assert_ne!(first, p.unwrap().render("electronics", 0, 10).etag));
    }

    #[test]
    fn current_is_none_until_published() {
        let results = Results::new();
        assert!(results.current().is_none());
        let clone = results.clone();
        clone.publish(snapshot());
        assert_eq!(results.current().unwrap().version, snapshot().version);
    }
}
