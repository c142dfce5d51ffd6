//! How current the served results are: what a results follower reports, and what every answer
//! derives from it.
//!
//! A server that follows a results store (`topsellers api`) reports each refresh to its
//! [`Results`](crate::Results): [`refreshed`](crate::Results::refreshed) after every successful read
//! of the store, whether or not anything changed, and
//! [`refresh_failed`](crate::Results::refresh_failed) when the store could not be read. The results
//! are **stale** when the last refresh failed, or when the last successful one is older than
//! `server.stale_after_ms` (a refresh that hangs reports nothing, and must still turn the results
//! stale). A server that never reports (the embedded `serve`, whose node publishes in-process) is
//! never stale: it has no store to lose.
//!
//! Stale results are still served, with 200s: a stale list is fine, an error page is not. They say
//! so in the `X-Results-Stale` header, in the JSON bodies and in `/readyz` and `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use topsellers_model::TimestampMs;

/// "Never happened" for the time atomics.
const NEVER: i64 = i64::MIN;

/// Longest store error kept for `/readyz`; a longer one is cut (at a character boundary) and marked.
const MAX_REASON_CHARS: usize = 300;

/// The wall clock in Unix milliseconds, the clock refresh reports use too.
pub(crate) fn wall_clock_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How current the served results are at one moment, as [`Results::freshness`] reports it.
///
/// [`Results::freshness`]: crate::Results::freshness
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// A follower reports refreshes to these results. False for a server without a results store,
    /// which is never stale.
    pub followed: bool,
    /// The results may be out of date: the last refresh failed, or the last successful one is
    /// older than the threshold.
    pub stale: bool,
    /// Whole seconds since the last successful refresh (since the first publish when there was
    /// none), at least 1 when stale; 0 when fresh.
    pub stale_seconds: u64,
    /// When the store was last read successfully, Unix milliseconds.
    pub last_refresh_ms: Option<TimestampMs>,
    /// Why the last refresh failed; `None` when it succeeded.
    pub store_error: Option<String>,
    /// Refreshes reported successful since start.
    pub refreshes: u64,
    /// Refreshes reported failed since start.
    pub refresh_failures: u64,
}

/// The mutable side: atomics read on every request, and the error text read only by `/readyz`.
pub(crate) struct FreshnessState {
    followed: AtomicBool,
    last_ok_ms: AtomicI64,
    /// Wall clock of the first publish: the age of results that no successful refresh confirmed.
    first_publish_ms: AtomicI64,
    failing: AtomicBool,
    refreshes: AtomicU64,
    failures: AtomicU64,
    reason: Mutex<Option<Box<str>>>,
}

impl FreshnessState {
    pub(crate) fn new() -> FreshnessState {
        FreshnessState {
            followed: AtomicBool::new(false),
            last_ok_ms: AtomicI64::new(NEVER),
            first_publish_ms: AtomicI64::new(NEVER),
            failing: AtomicBool::new(false),
            refreshes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            reason: Mutex::new(None),
        }
    }

    pub(crate) fn published(&self) {
        let _ = self
            .first_publish_ms
            .compare_exchange(NEVER, wall_clock_ms(), Relaxed, Relaxed);
    }

    pub(crate) fn refreshed(&self, now_ms: TimestampMs) {
        self.last_ok_ms.fetch_max(now_ms, Relaxed);
        self.refreshes.fetch_add(1, Relaxed);
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.failing.store(false, Relaxed);
        self.followed.store(true, Relaxed);
    }

    pub(crate) fn refresh_failed(&self, now_ms: TimestampMs, reason: &str) {
        let _ = now_ms; // The failure's time adds nothing: the age counts from the last success.
        self.failures.fetch_add(1, Relaxed);
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(clean_reason(reason).into());
        self.failing.store(true, Relaxed);
        self.followed.store(true, Relaxed);
    }

    /// True once a follower reported a refresh; until then nothing is ever stale.
    pub(crate) fn is_followed(&self) -> bool {
        self.followed.load(Relaxed)
    }

    /// The hot-path question: `Some(stale_seconds)` when stale at `now_ms`, else `None`. One
    /// atomic load for a server nobody reports to; a handful more, and no lock, otherwise.
    pub(crate) fn stale_seconds(&self, now_ms: TimestampMs, stale_after_ms: u64) -> Option<u64> {
        if !self.followed.load(Relaxed) {
            return None;
        }
        let failing = self.failing.load(Relaxed);
        let base = match self.last_ok_ms.load(Relaxed) {
            NEVER => self.first_publish_ms.load(Relaxed),
            ok => ok,
        };
        let age_ms = if base == NEVER {
            0
        } else {
            u64::try_from(now_ms.saturating_sub(base)).unwrap_or(0)
        };
        (failing || age_ms > stale_after_ms).then(|| (age_ms / 1000).max(1))
    }

    pub(crate) fn snapshot(&self, now_ms: TimestampMs, stale_after_ms: u64) -> Freshness {
        let stale_seconds = self.stale_seconds(now_ms, stale_after_ms);
        Freshness {
            followed: self.followed.load(Relaxed),
            stale: stale_seconds.is_some(),
            stale_seconds: stale_seconds.unwrap_or(0),
            last_refresh_ms: Some(self.last_ok_ms.load(Relaxed)).filter(|&t| t != NEVER),
            store_error: if self.failing.load(Relaxed) {
                self.reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_deref()
                    .map(str::to_string)
            } else {
                None
            },
            refreshes: self.refreshes.load(Relaxed),
            refresh_failures: self.failures.load(Relaxed),
        }
    }
}

/// One line, bounded, and without the credentials a connection URL may carry
/// (`redis://user:secret@host` becomes `redis://***@host`): the reason is shown to anyone who
/// can read `/readyz`.
fn clean_reason(reason: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = String::with_capacity(one_line.len());
    let mut rest = one_line.as_str();
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    let out = out.trim();
    if out.chars().count() > MAX_REASON_CHARS {
        let cut: String = out.chars().take(MAX_REASON_CHARS).collect();
        format!("{cut}…")
    } else if out.is_empty() {
        "unknown error".to_string()
    } else {
        out.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreported_results_are_never_stale() {
        let s = FreshnessState::new();
        s.published();
        assert_eq!(s.stale_seconds(i64::MAX, 0), None);
        let f = s.snapshot(wall_clock_ms() + 3_600_000, 5000);
        assert!(!f.followed && !f.stale);
        assert_eq!(f.stale_seconds, 0);
    }

    #[test]
    fn stale_after_the_threshold_or_a_failure() {
        let s = FreshnessState::new();
        s.refreshed(10_000);
        assert_eq!(s.stale_seconds(15_000, 5000), None, "at the threshold");
        assert_eq!(s.stale_seconds(15_001, 5000), Some(5));
        assert_eq!(s.stale_seconds(27_900, 5000), Some(17));
        // A failure right after a success is stale at once, and says at least 1 s.
        s.refresh_failed(10_200, "connection refused");
        assert_eq!(s.stale_seconds(10_300, 5000), Some(1));
        let f = s.snapshot(12_000, 5000);
        assert!(f.stale);
        assert_eq!(f.store_error.as_deref(), Some("connection refused"));
        assert_eq!((f.refreshes, f.refresh_failures), (1, 1));
        assert_eq!(f.last_refresh_ms, Some(10_000));
        // Success clears the failure; an out-of-order older report does not move time back.
        s.refreshed(20_000);
        s.refreshed(19_000);
        let f = s.snapshot(21_000, 5000);
        assert!(!f.stale);
        assert_eq!(f.store_error, None);
        assert_eq!(f.last_refresh_ms, Some(20_000));
        assert_eq!(f.refresh_failures, 1);
    }

    #[test]
    fn failure_before_any_success_counts_from_the_first_publish() {
        let s = FreshnessState::new();
        s.refresh_failed(0, "down");
        let now = wall_clock_ms();
        assert_eq!(s.stale_seconds(now, 5000), Some(1), "nothing published yet");
        s.published();
        assert_eq!(s.stale_seconds(now + 42_000, 5000), Some(42));
    }

    #[test]
    fn reasons_are_one_bounded_line_without_credentials() {
        assert_eq!(
            clean_reason("cannot reach redis://app:s3cret@10.0.0.1:6379/0\nretrying"),
            "cannot reach redis://***@10.0.0.1:6379/0 retrying"
        );
        assert_eq!(
            clean_reason("a http://h/x@y and cassandra://u:p@h"),
            "a http://h/x@y and cassandra://***@h"
        );
        assert_eq!(clean_reason("  \n "), "unknown error");
        let long = clean_reason(&"é".repeat(1000));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
        assert!(!clean_reason("x\u{1b}[31m").contains('\u{1b}'));
    }
}
