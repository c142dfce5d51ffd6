//! The latest snapshot, with the answers hot requests need rendered ahead of time.

use crate::freshness::{wall_clock_ms, Freshness, FreshnessState};
use crate::render;
use arc_swap::ArcSwapOption;
use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use topsellers_model::{Snapshot, TimestampMs, WindowBounds};

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
    freshness: FreshnessState,
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
                freshness: FreshnessState::new(),
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
        self.shared.freshness.published();
    }

    /// Reports a successful read of the results store at `now_ms` (Unix milliseconds, wall
    /// clock), whether or not it brought anything new: the results are confirmed current.
    ///
    /// For servers that follow a results store. Call it after every successful refresh, and after
    /// [`publish`](Results::publish) when the refresh brought a new snapshot, so that the age never
    /// counts from before the results being served. The first report (this or
    /// [`refresh_failed`](Results::refresh_failed)) turns staleness tracking on; until then (and
    /// forever on a server whose node publishes in-process) the results are never stale.
    ///
    /// ```
    /// use topsellers_server::Results;
    /// # let (snapshot, now_ms) = (None::<topsellers_model::Snapshot>, 1_714_564_800_000);
    /// let results = Results::new();
    /// // In the follower's loop:
    /// match Ok::<_, std::io::Error>(snapshot) {
    ///     Ok(Some(new)) => { results.publish(new); results.refreshed(now_ms) }
    ///     Ok(None) => results.refreshed(now_ms),
    ///     Err(e) => results.refresh_failed(now_ms, &e.to_string()),
    /// }
    /// assert!(!results.freshness(now_ms, 5000).stale);
    /// ```
    pub fn refreshed(&self, now_ms: TimestampMs) {
        self.shared.freshness.refreshed(now_ms);
    }

    /// Reports that the results store could not be read at `now_ms`, because of `reason` (one
    /// line; credentials in `scheme://user:password@host` URLs are masked, and it is cut at 300
    /// characters, since `/readyz` shows it to anyone). The results stay served, now marked stale,
    /// until the next [`refreshed`](Results::refreshed).
    pub fn refresh_failed(&self, now_ms: TimestampMs, reason: &str) {
        self.shared.freshness.refresh_failed(now_ms, reason);
    }

    /// How current the results are at `now_ms`, with `stale_after_ms` the age beyond which a
    /// successful refresh no longer counts as current (`server.stale_after_ms`).
    pub fn freshness(&self, now_ms: TimestampMs, stale_after_ms: u64) -> Freshness {
        self.shared.freshness.snapshot(now_ms, stale_after_ms)
    }

    /// The hot-path form of [`freshness`](Results::freshness) at the wall clock: `Some(seconds)`
    /// when stale. Reads no clock for results nobody reports refreshes to.
    pub(crate) fn stale_seconds(&self, stale_after_ms: u64) -> Option<u64> {
        let freshness = &self.shared.freshness;
        if !freshness.is_followed() {
            return None;
        }
        freshness.stale_seconds(wall_clock_ms(), stale_after_ms)
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

/// The `Cache-Control` of answers before the first snapshot, which have no tag: a second, and no
/// serving them stale (an empty "warming up" list is nothing to fall back on). Tagged answers get
/// the configured one, [`ServerConfig::cache_control`](crate::ServerConfig::cache_control).
pub(crate) const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=1");
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub(crate) const AS_OF: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-topsellers-as-of");

/// `X-Results-Stale: <seconds>`: present only on answers whose results are stale (see
/// [`Results::freshness`]), with the whole seconds since the last successful refresh.
///
/// Why a header of our own, and not `Age` or `Warning`: `Warning` is obsolete (RFC 9111 dropped
/// it). `Age` means the time since the *response* was generated or validated by the origin, and
/// shared caches add their own residence time to it and compare it with `max-age`: an origin that
/// put the data's staleness there would make every CDN treat each answer as expired on arrival and
/// forward every request to the API servers, a thundering herd at the very moment the store is
/// down. So caching stays governed by `Cache-Control` alone (whose `stale-if-error` is what lets a
/// CDN keep answering when the API servers themselves fail), and clients and monitors that want to
/// know how old the results are read this header, or `stale` and `stale_seconds` in the body.
pub const X_RESULTS_STALE: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-results-stale");

impl Rendered {
    pub fn new(body: Bytes, etag: HeaderValue, as_of: Option<&HeaderValue>) -> Rendered {
        // Room for `X-Results-Stale` too, so that marking an answer stale never regrows the map.
        let mut headers = HeaderMap::with_capacity(6);
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

    /// This answer with its results marked stale for `seconds`: the body gains
    /// `"stale":true,"stale_seconds":N` as its last keys, the headers `X-Results-Stale: N`, and the
    /// tag a `.stale-N` suffix.
    ///
    /// The body is the pre-rendered one with the keys spliced in before its closing brace (one
    /// copy, no serialising), so the fresh answer stays exactly as pre-rendered and only stale
    /// answers pay. The tag changes with `N` because the bytes do: a strong tag names one exact
    /// body, and a client revalidating a fresh answer must get the stale one (and learn that it is
    /// stale), not a 304.
    pub fn stale(&self, seconds: u64) -> Rendered {
        let mut headers = self.headers.clone();
        headers.insert(X_RESULTS_STALE, HeaderValue::from(seconds));
        let Some(open) = self.body.strip_suffix(b"}") else {
            // Every body is a JSON object; were one not, the header alone still says it.
            debug_assert!(false, "a body that is not a JSON object");
            return Rendered {
                body: self.body.clone(),
                etag: self.etag.clone(),
                headers,
            };
        };
        let suffix = format!(",\"stale\":true,\"stale_seconds\":{seconds}}}");
        let mut body = bytes::BytesMut::with_capacity(open.len() + suffix.len());
        body.extend_from_slice(open);
        body.extend_from_slice(suffix.as_bytes());
        let tag = self.etag.as_bytes();
        let etag = tag
            .strip_suffix(b"\"")
            .and_then(|inner| {
                let mut stale = inner.to_vec();
                stale.extend_from_slice(format!(".stale-{seconds}\"").as_bytes());
                HeaderValue::from_bytes(&stale).ok()
            })
            .unwrap_or_else(|| HeaderValue::from_static("\"untagged.stale\""));
        headers.insert(header::ETAG, etag.clone());
        Rendered {
            body: body.freeze(),
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
    fn the_stale_variant_adds_keys_header_and_tag() {
        let results = Results::new();
        results.publish(snapshot());
        results.with_prepared(|p| {
            let p = p.unwrap();
            for fresh in [p.pre_rendered("electronics", 0).unwrap(), &p.categories] {
                let stale = fresh.stale(42);
                let mut expected: serde_json::Value = serde_json::from_slice(&fresh.body).unwrap();
                expected["stale"] = true.into();
                expected["stale_seconds"] = 42.into();
                let got: serde_json::Value = serde_json::from_slice(&stale.body).unwrap();
                assert_eq!(got, expected);
                assert!(stale
                    .body
                    .ends_with(br#","stale":true,"stale_seconds":42}"#));
                assert_eq!(stale.headers[X_RESULTS_STALE], "42");
                assert_eq!(stale.headers[header::ETAG], stale.etag);
                let tag = stale.etag.to_str().unwrap();
                assert!(
                    tag.starts_with('"') && tag.ends_with(".stale-42\""),
                    "{tag}"
                );
                assert_ne!(stale.etag, fresh.stale(43).etag);
                assert!(!fresh.headers.contains_key(X_RESULTS_STALE));
                assert!(!fresh.body.windows(7).any(|w| w == b"\"stale\""));
            }
        });
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
