//! Counters and gauges of the whole node, rendered by `GET /metrics` in the Prometheus text format.
//!
//! Updates are relaxed atomic adds: no lock on any hot path. Label values come only from fixed
//! enums or `&'static str` chosen in code, never from input, so cardinality stays bounded and no
//! personal data can reach a label.

use crate::Freshness;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use topsellers_model::{RejectReason, Snapshot, TimestampMs};

/// Names for [`Metrics::set_gauge`] with a documented meaning. Other names work too (rendered as
/// `topsellers_<name>`), but these are the ones dashboards expect.
pub mod gauge {
    /// Aggregator: (category, window, item) series held.
    pub const SERIES: &str = "engine_series";
    /// Aggregator: time buckets held.
    pub const BUCKETS: &str = "engine_buckets";
    /// Aggregator: (item, bucket) entries held, the unit that memory grows with.
    pub const BUCKET_ENTRIES: &str = "engine_bucket_entries";
    /// Aggregator: event ids remembered for deduplication.
    pub const DEDUP_IDS: &str = "engine_dedup_ids";
    /// Aggregator: estimated bytes of state.
    pub const APPROX_STATE_BYTES: &str = "engine_approx_state_bytes";
    /// Freshness: wall-clock time from the newest counted event's arrival until it was visible in a
    /// published snapshot, in milliseconds.
    pub const LAST_EVENT_TO_VISIBLE_MS: &str = "last_event_to_visible_ms";

    pub(super) const KNOWN: [(&str, &str); 6] = [
        (
            SERIES,
            "Series (category, window, item) held by the aggregator.",
        ),
        (BUCKETS, "Time buckets held by the aggregator."),
        (
            BUCKET_ENTRIES,
            "Entries (item, bucket) held by the aggregator.",
        ),
        (DEDUP_IDS, "Event ids remembered for deduplication."),
        (APPROX_STATE_BYTES, "Estimated bytes of aggregator state."),
        (
            LAST_EVENT_TO_VISIBLE_MS,
            "Milliseconds from the newest counted event's arrival until it was visible in the API.",
        ),
    ];
}

/// The routes of the API, as the `route` label of `http_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Top,
    Categories,
    Purchases,
    Healthz,
    Readyz,
    Metrics,
    Page,
    Assets,
    Unmatched,
    /// A handler panicked, so the route it served is no longer known.
    Unknown,
}

impl Route {
    const ALL: [Route; 10] = [
        Route::Top,
        Route::Categories,
        Route::Purchases,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::Page,
        Route::Assets,
        Route::Unmatched,
        Route::Unknown,
    ];

    pub(crate) fn of_path(path: &str) -> Route {
        match path {
            "/v1/top" => Route::Top,
            "/v1/categories" => Route::Categories,
            "/v1/purchases" => Route::Purchases,
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/" => Route::Page,
            p if p.starts_with("/assets/") => Route::Assets,
            _ => Route::Unmatched,
        }
    }

    /// The path the route serves, for messages that must not echo the request.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Route::Top => "/v1/top",
            Route::Categories => "/v1/categories",
            Route::Purchases => "/v1/purchases",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Page => "/",
            Route::Assets => "/assets/",
            Route::Unmatched | Route::Unknown => "this path",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Route::Top => "top",
            Route::Categories => "categories",
            Route::Purchases => "purchases",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Page => "page",
            Route::Assets => "assets",
            Route::Unmatched => "unmatched",
            Route::Unknown => "unknown",
        }
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

const REJECT_REASONS: [RejectReason; 8] = [
    RejectReason::Malformed,
    RejectReason::InvalidUtf8,
    RejectReason::Oversized,
    RejectReason::MissingField,
    RejectReason::InvalidField,
    RejectReason::OutOfRange,
    RejectReason::CurrencyMismatch,
    RejectReason::Late,
];

fn reject_index(reason: RejectReason) -> usize {
    match reason {
        RejectReason::Malformed => 0,
        RejectReason::InvalidUtf8 => 1,
        RejectReason::Oversized => 2,
        RejectReason::MissingField => 3,
        RejectReason::InvalidField => 4,
        RejectReason::OutOfRange => 5,
        RejectReason::CurrencyMismatch => 6,
        RejectReason::Late => 7,
    }
}

/// Distinct labels a labelled family holds; more are folded into `other`. Labels are chosen in
/// code, so this is only a guard against a bug that would otherwise grow the family forever.
const MAX_LABELS: usize = 16;
const OVERFLOW_LABEL: &str = "other";

/// A family of values keyed by `&'static str` labels, claimed on first use. Lookups are a scan of
/// at most [`MAX_LABELS`] atomically published labels: lock-free once a label exists.
struct Labelled<V> {
    slots: [(OnceLock<&'static str>, V); MAX_LABELS],
    overflow: V,
}

impl<V: Default> Labelled<V> {
    fn new() -> Self {
        Labelled {
            slots: std::array::from_fn(|_| (OnceLock::new(), V::default())),
            overflow: V::default(),
        }
    }

    fn get(&self, label: &'static str) -> &V {
        for (slot_label, value) in &self.slots {
            let current = match slot_label.get() {
                Some(l) => *l,
                None => {
                    // Losing a race to claim this slot is fine: the winner's label is compared next.
                    let _ = slot_label.set(label);
                    *slot_label.get().unwrap_or(&"")
                }
            };
            if current == label {
                return value;
            }
        }
        &self.overflow
    }

    fn each(&self) -> impl Iterator<Item = (&'static str, &V)> {
        self.slots
            .iter()
            .filter_map(|(label, value)| label.get().map(|l| (*l, value)))
            .chain(std::iter::once((OVERFLOW_LABEL, &self.overflow)))
    }
}

/// Counters and gauges the whole node updates; `GET /metrics` renders them.
///
/// The server itself counts only HTTP requests. Whoever parses, logs, aggregates and checkpoints
/// calls the other methods, because only it knows the outcome of each event.
///
/// ```
/// use topsellers_server::{metrics::gauge, Metrics};
/// use topsellers_model::RejectReason;
/// let metrics = Metrics::new();
/// metrics.inc_received("http", 3);
/// metrics.inc_accepted(2);
/// metrics.inc_rejected(RejectReason::MissingField, 1);
/// metrics.set_gauge(gauge::SERIES, 1200);
/// let text = metrics.render(None, 0);
/// assert!(text.contains("topsellers_events_received_total{source=\"http\"} 3"));
/// ```
pub struct Metrics {
    received: Labelled<AtomicU64>,
    accepted: AtomicU64,
    refunds_accepted: AtomicU64,
    duplicates_dropped: AtomicU64,
    skipped: Labelled<AtomicU64>,
    redactions: Labelled<AtomicU64>,
    rejected: [AtomicU64; REJECT_REASONS.len()],
    http_requests: [[AtomicU64; STATUS_CLASSES.len()]; Route::ALL.len()],
    log_appends: AtomicU64,
    log_append_errors: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_errors: AtomicU64,
    gauges: Labelled<AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            received: Labelled::new(),
            accepted: AtomicU64::new(0),
            refunds_accepted: AtomicU64::new(0),
            duplicates_dropped: AtomicU64::new(0),
            skipped: Labelled::new(),
            redactions: Labelled::new(),
            rejected: Default::default(),
            http_requests: Default::default(),
            log_appends: AtomicU64::new(0),
            log_append_errors: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_errors: AtomicU64::new(0),
            gauges: Labelled::new(),
        }
    }

    /// Records read from an input, before validation. `source` names the input kind (`http`,
    /// `file`, `tail`, `kafka`, `batch`), never a path or anything from the data.
    pub fn inc_received(&self, source: &'static str, n: u64) {
        self.received.get(source).fetch_add(n, Relaxed);
    }

    /// Events accepted into the log (sales and refunds, not duplicates).
    pub fn inc_accepted(&self, n: u64) {
        self.accepted.fetch_add(n, Relaxed);
    }

    /// Accepted events that were refunds (negative quantity); also counted by `inc_accepted`.
    pub fn inc_refunds_accepted(&self, n: u64) {
        self.refunds_accepted.fetch_add(n, Relaxed);
    }

    /// Events dropped because their `event_id` was seen before.
    pub fn inc_duplicates(&self, n: u64) {
        self.duplicates_dropped.fetch_add(n, Relaxed);
    }

    /// Records deliberately ignored, such as `blank_line` or `header`; `reason` is fixed in code.
    /// Personal data found in kept free-text fields and redacted at parsing, by kind (`email`, `card`, `phone`,
    /// `ip`): the kind is the label, never the data.
    pub fn inc_redactions(&self, kind: &'static str, n: u64) {
        if n > 0 {
            self.redactions.get(kind).fetch_add(n, Relaxed);
        }
    }

    pub fn inc_skipped(&self, reason: &'static str, n: u64) {
        self.skipped.get(reason).fetch_add(n, Relaxed);
    }

    /// Records rejected (and dead-lettered), by reason.
    pub fn inc_rejected(&self, reason: RejectReason, n: u64) {
        self.rejected[reject_index(reason)].fetch_add(n, Relaxed);
    }

    /// Records appended to the accepted-event log.
    pub fn inc_log_appends(&self, n: u64) {
        self.log_appends.fetch_add(n, Relaxed);
    }

    /// Failed log appends (each one a batch that was not acknowledged).
    pub fn inc_log_append_errors(&self, n: u64) {
        self.log_append_errors.fetch_add(n, Relaxed);
    }

    /// Checkpoints written.
    pub fn inc_checkpoints(&self) {
        self.checkpoints.fetch_add(1, Relaxed);
    }

    /// Checkpoints that failed.
    pub fn inc_checkpoint_errors(&self) {
        self.checkpoint_errors.fetch_add(1, Relaxed);
    }

    /// Sets a gauge, rendered as `topsellers_<name>`; see [`gauge`] for the documented names.
    /// `name` must be a Prometheus name (`[a-z_][a-z0-9_]*`); others are not rendered.
    pub fn set_gauge(&self, name: &'static str, value: i64) {
        debug_assert!(
            is_metric_name(name),
            "gauge name {name:?} is not a valid metric name"
        );
        self.gauges.get(name).store(value, Relaxed);
    }

    /// Counts one answered HTTP request.
    pub(crate) fn record_http(&self, route: Route, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        let route = Route::ALL
            .iter()
            .position(|r| *r == route)
            .unwrap_or(Route::ALL.len() - 1);
        self.http_requests[route][class].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4). `snapshot` is the one being served, for the
    /// version and age gauges; `now_ms` is the wall clock, so the age is current at every scrape.
    pub fn render(&self, snapshot: Option<&Snapshot>, now_ms: TimestampMs) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let load = |c: &AtomicU64| c.load(Relaxed);

        family(
            &mut out,
            "events_received_total",
            "counter",
            "Records read from an input, before validation.",
        );
        for (source, value) in self.received.each() {
            sample(
                &mut out,
                "events_received_total",
                &[("source", source)],
                load(value),
            );
        }
        counter(
            &mut out,
            "events_accepted_total",
            "Events accepted into the log.",
            load(&self.accepted),
        );
        counter(
            &mut out,
            "refunds_accepted_total",
            "Accepted events that were refunds.",
            load(&self.refunds_accepted),
        );
        counter(
            &mut out,
            "duplicates_dropped_total",
            "Events dropped as duplicates of an earlier event_id.",
            load(&self.duplicates_dropped),
        );
        family(
            &mut out,
            "events_skipped_total",
            "counter",
            "Records deliberately ignored, by reason.",
        );
        for (reason, value) in self.skipped.each() {
            sample(
                &mut out,
                "events_skipped_total",
                &[("reason", reason)],
                load(value),
            );
        }
        family(
            &mut out,
            "pii_redactions_total",
            "counter",
            "Personal data found in kept free-text fields and redacted at parsing, by kind.",
        );
        for (kind, value) in self.redactions.each() {
            sample(
                &mut out,
                "pii_redactions_total",
                &[("kind", kind)],
                load(value),
            );
        }
        family(
            &mut out,
            "events_rejected_total",
            "counter",
            "Records rejected and dead-lettered, by reason.",
        );
        for (reason, value) in REJECT_REASONS.iter().zip(&self.rejected) {
            sample(
                &mut out,
                "events_rejected_total",
                &[("reason", reason.as_str())],
                load(value),
            );
        }
        family(
            &mut out,
            "http_requests_total",
            "counter",
            "HTTP requests answered, by route and status class.",
        );
        for (route, classes) in Route::ALL.iter().zip(&self.http_requests) {
            for (class, value) in STATUS_CLASSES.iter().zip(classes) {
                let value = load(value);
                // Unused combinations (a 1xx answer, a 5xx from /healthz) would only be noise.
                if value > 0 {
                    sample(
                        &mut out,
                        "http_requests_total",
                        &[("route", route.as_str()), ("status", class)],
                        value,
                    );
                }
            }
        }
        counter(
            &mut out,
            "log_appends_total",
            "Records appended to the accepted-event log.",
            load(&self.log_appends),
        );
        counter(
            &mut out,
            "log_append_errors_total",
            "Failed appends to the accepted-event log.",
            load(&self.log_append_errors),
        );
        counter(
            &mut out,
            "checkpoints_total",
            "Checkpoints written.",
            load(&self.checkpoints),
        );
        counter(
            &mut out,
            "checkpoint_errors_total",
            "Checkpoints that failed.",
            load(&self.checkpoint_errors),
        );

        family(
            &mut out,
            "snapshot_version",
            "gauge",
            "Version of the snapshot being served; 0 before the first.",
        );
        sample(
            &mut out,
            "snapshot_version",
            &[],
            snapshot.map_or(0, |s| s.version),
        );
        family(
            &mut out,
            "snapshot_age_seconds",
            "gauge",
            "Seconds since the served snapshot was computed; -1 before the first.",
        );
        let age = snapshot.map_or(-1.0, |s| (now_ms - s.computed_at_ms).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "topsellers_snapshot_age_seconds {age}");

        for (name, help) in gauge::KNOWN {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(
                out,
                "topsellers_{name} {}",
                self.gauges.get(name).load(Relaxed)
            );
        }
        for (name, value) in self.gauges.each() {
            let known = gauge::KNOWN.iter().any(|(k, _)| *k == name);
            if known || name == OVERFLOW_LABEL || !is_metric_name(name) {
                continue;
            }
            family(&mut out, name, "gauge", "Gauge set by the node.");
            let _ = writeln!(out, "topsellers_{name} {}", value.load(Relaxed));
        }
        out
    }
}

/// Appends the freshness of the served results to a [`Metrics::render`] output: how stale they are
/// (0 while fresh, and always on a server without a results store) and how many refreshes of the
/// results store succeeded and failed. Kept apart from `Metrics` because the follower reports to
/// [`Results`](crate::Results), which the metrics do not know.
pub(crate) fn render_freshness(out: &mut String, freshness: &Freshness) {
    family(
        out,
        "results_stale_seconds",
        "gauge",
        "Seconds since the last successful refresh from the results store while the results are stale; 0 when fresh.",
    );
    sample(out, "results_stale_seconds", &[], freshness.stale_seconds);
    counter(
        out,
        "results_refreshes_total",
        "Successful refreshes from the results store (changed or not).",
        freshness.refreshes,
    );
    counter(
        out,
        "results_refresh_failures_total",
        "Refreshes that could not read the results store.",
        freshness.refresh_failures,
    );
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP topsellers_{name} {help}");
    let _ = writeln!(out, "# TYPE topsellers_{name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    sample(out, name, &[], value);
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = write!(out, "topsellers_{name}");
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"");
            escape_label(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample belongs to a family announced by HELP and TYPE lines before it, counters end in
    /// `_total`, and every family is announced once.
    fn assert_well_formed(text: &str) {
        let mut announced: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    !announced.iter().any(|(n, _)| n == name),
                    "{name} announced twice"
                );
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counter {name} lacks _total");
                }
                announced.push((name.to_string(), kind.to_string()));
            } else if line.starts_with("# HELP ") {
                continue;
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(name.starts_with("topsellers_"), "{line}");
                assert_eq!(
                    announced.last().map(|(n, _)| n.as_str()),
                    Some(name),
                    "{line}"
                );
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }

    #[test]
    fn counts_render_with_labels() {
        let m = Metrics::new();
        m.inc_received("http", 5);
        m.inc_received("file", 2);
        m.inc_received("http", 1);
        m.inc_accepted(4);
        m.inc_refunds_accepted(1);
        m.inc_duplicates(1);
        m.inc_skipped("blank_line", 3);
        m.inc_rejected(RejectReason::Late, 2);
        m.inc_log_appends(4);
        m.inc_checkpoints();
        m.set_gauge(gauge::SERIES, 77);
        m.set_gauge("custom_thing", -3);
        m.record_http(Route::Top, 200);
        m.record_http(Route::Top, 304);
        m.record_http(Route::Unmatched, 404);
        let text = m.render(None, 0);
        assert_well_formed(&text);
        for expected in [
            "topsellers_events_received_total{source=\"http\"} 6",
            "topsellers_events_received_total{source=\"file\"} 2",
            "topsellers_events_accepted_total 4",
            "topsellers_refunds_accepted_total 1",
            "topsellers_duplicates_dropped_total 1",
            "topsellers_events_skipped_total{reason=\"blank_line\"} 3",
            "topsellers_events_rejected_total{reason=\"late\"} 2",
            "topsellers_events_rejected_total{reason=\"malformed\"} 0",
            "topsellers_http_requests_total{route=\"top\",status=\"2xx\"} 1",
            "topsellers_http_requests_total{route=\"top\",status=\"3xx\"} 1",
            "topsellers_http_requests_total{route=\"unmatched\",status=\"4xx\"} 1",
            "topsellers_log_appends_total 4",
            "topsellers_checkpoints_total 1",
            "topsellers_engine_series 77",
            "topsellers_custom_thing -3",
            "topsellers_snapshot_version 0",
            "topsellers_snapshot_age_seconds -1",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
    }

    #[test]
    fn labels_beyond_the_limit_fold_into_other() {
        const NAMES: [&str; 20] = [
            "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
            "s14", "s15", "s16", "s17", "s18", "s19",
        ];
        let m = Metrics::new();
        for name in NAMES {
            m.inc_received(name, 1);
        }
        let text = m.render(None, 0);
        assert!(
            text.contains("topsellers_events_received_total{source=\"other\"} 4"),
            "{text}"
        );
        assert_well_formed(&text);
    }

    #[test]
    fn snapshot_age_is_computed_at_render() {
        let mut s = crate::testdata::snapshot();
        s.computed_at_ms = 10_000;
        let text = Metrics::new().render(Some(&s), 12_500);
        assert!(
            text.contains("topsellers_snapshot_age_seconds 2.5"),
            "{text}"
        );
        assert!(text.contains("topsellers_snapshot_version 42"), "{text}");
    }

    #[test]
    fn freshness_renders_well_formed() {
        let mut text = Metrics::new().render(None, 0);
        render_freshness(
            &mut text,
            &Freshness {
                followed: true,
                stale: true,
                stale_seconds: 17,
                refreshes: 3,
                refresh_failures: 2,
                ..Freshness::default()
            },
        );
        assert_well_formed(&text);
        for expected in [
            "topsellers_results_stale_seconds 17",
            "topsellers_results_refreshes_total 3",
            "topsellers_results_refresh_failures_total 2",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }
}
