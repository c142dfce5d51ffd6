//! [`Segment`]: the events of one run of consecutive positions `[first, last]` of a stream (the embedded log's
//! entries, a Kafka partition's offsets), published as one file per (date, hour) it touches, every file named
//! `<stream>-<first>-<last>.parquet`. The name depends only on the stream and the run, so publishing the same run
//! again (after a crash between publishing and committing, see [`crate::PositionFile`]) replaces each file by its
//! twin instead of adding a second copy.
//!
//! A segment is due when it holds `max_file_rows` events or about `max_file_bytes` (across its hours, so no file
//! is larger), or `max_file_age_secs` after its first position was added; the caller checks between positions, so
//! a run never ends inside one position (one log entry is one group commit).

use crate::{
    approx_bytes, partition_of, publish_to, ArchiveError, ArchiveSettings, ArchiveStats,
    ArchiveTarget,
};
use std::collections::BTreeMap;
use topsellers_model::{PurchaseEvent, TimestampMs};

#[derive(Debug)]
pub struct Segment {
    stream: String,
    range: Option<(u64, u64)>,
    hours: BTreeMap<(String, String), Vec<PurchaseEvent>>,
    rows: usize,
    bytes: u64,
    opened_ms: TimestampMs,
}

impl Segment {
    /// An empty segment of `stream` (letters, digits, `-`, `_`: it starts every file name).
    pub fn new(stream: &str) -> Segment {
        debug_assert!(stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        Segment {
            stream: stream.to_string(),
            range: None,
            hours: BTreeMap::new(),
            rows: 0,
            bytes: 0,
            opened_ms: 0,
        }
    }

    /// Extends the run to `position` (not below the last one), also for positions without events (a log entry
    /// holding only a clock tick), so committing the run moves past them. `now_ms` is the wall clock.
    pub fn extend_to(&mut self, position: u64, now_ms: TimestampMs) {
        match &mut self.range {
            Some((_, last)) => {
                debug_assert!(position >= *last, "positions go forward");
                *last = position.max(*last);
            }
            None => {
                self.range = Some((position, position));
                self.opened_ms = now_ms;
            }
        }
    }

    /// Adds an event found at `position`.
    pub fn push(
        &mut self,
        position: u64,
        event: PurchaseEvent,
        now_ms: TimestampMs,
    ) -> Result<(), ArchiveError> {
        let hour = partition_of(event.event_time_ms)?;
        self.extend_to(position, now_ms);
        self.rows += 1;
        self.bytes += approx_bytes(&event);
        self.hours.entry(hour).or_default().push(event);
        Ok(())
    }

    /// `[first, last]`, or `None` before anything was added.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.range
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Holds `max_file_rows` events or about `max_file_bytes`.
    pub fn is_full(&self, settings: &ArchiveSettings) -> bool {
        self.rows >= settings.max_file_rows || self.bytes >= settings.max_file_bytes
    }

    /// Full, or its first position was added `max_file_age_secs` before `now_ms`.
    pub fn is_due(&self, settings: &ArchiveSettings, now_ms: TimestampMs) -> bool {
        self.range.is_some()
            && (self.is_full(settings)
                || now_ms - self.opened_ms >= (settings.max_file_age_secs * 1000) as i64)
    }

    /// The name every file of this run gets, `<stream>-<first>-<last>.parquet` (zero-padded, so names sort by
    /// position).
    pub fn file_name(&self) -> Option<String> {
        self.range
            .map(|(first, last)| format!("{}-{first:012}-{last:012}.parquet", self.stream))
    }

    /// Writes one file per (date, hour) to `target`, each whole or not at all; an empty run writes nothing.
    pub fn publish(&self, target: &ArchiveTarget) -> Result<ArchiveStats, ArchiveError> {
        let mut stats = ArchiveStats::default();
        let Some(name) = self.file_name() else {
            return Ok(stats);
        };
        for (hour, events) in &self.hours {
            stats.bytes += publish_to(target, hour, &name, events)?;
            stats.files += 1;
            stats.events += events.len() as u64;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use topsellers_model::CategoryPath;

    const T0: i64 = 1_296_432_000_000; // 2011-01-31T00:00:00Z
    const HOUR: i64 = 3_600_000;

    fn event(id: &str, time_ms: i64) -> PurchaseEvent {
        PurchaseEvent {
            event_id: Some(id.into()),
            event_time_ms: time_ms,
            original_time_ms: None,
            item_id: "i".into(),
            item_name: None,
            category: CategoryPath::parse("a").unwrap(),
            quantity: 1,
            unit_price_minor: 100,
            currency: "GBP".into(),
            country: None,
        }
    }

    fn parquet_files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for dt in std::fs::read_dir(dir).unwrap() {
            for hour in std::fs::read_dir(dt.unwrap().path()).unwrap() {
                for f in std::fs::read_dir(hour.unwrap().path()).unwrap() {
                    let p = f.unwrap().path();
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn one_file_per_hour_named_after_the_run_and_the_same_names_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::new("log-x");
        segment.push(3, event("a", T0), 0).unwrap();
        segment.extend_to(4, 0);
        segment.push(5, event("b", T0 + HOUR), 0).unwrap();
        segment.push(5, event("c", T0 + HOUR), 0).unwrap();
        segment.extend_to(6, 0);
        assert_eq!(segment.range(), Some((3, 6)));
        let target = ArchiveTarget::Local(dir.path().into());
        let stats = segment.publish(&target).unwrap();
        assert_eq!((stats.files, stats.events), (2, 3));
        let expected = [
            "dt=2011-01-31/hour=00/log-x-000000000003-000000000006.parquet",
            "dt=2011-01-31/hour=01/log-x-000000000003-000000000006.parquet",
        ];
        assert_eq!(parquet_files(dir.path()), expected);
        // Publishing the run again (a crash before its commit) replaces the files, adds none.
        segment.publish(&target).unwrap();
        assert_eq!(parquet_files(dir.path()), expected);
    }

    #[test]
    fn due_by_rows_bytes_or_age() {
        let settings = ArchiveSettings {
            max_file_rows: 2,
            max_file_age_secs: 10,
            ..ArchiveSettings::default()
        };
        let mut segment = Segment::new("s");
        assert!(!segment.is_due(&settings, i64::MAX));
        segment.extend_to(1, 1_000);
        assert!(!segment.is_due(&settings, 10_999));
        assert!(segment.is_due(&settings, 11_000));
        segment.push(2, event("a", T0), 1_000).unwrap();
        segment.push(2, event("b", T0), 1_000).unwrap();
        assert!(segment.is_full(&settings));
        let by_bytes = ArchiveSettings {
            max_file_bytes: 1024,
            ..ArchiveSettings::default()
        };
        let mut segment = Segment::new("s");
        for i in 0..100 {
            segment.push(i, event("x", T0), 0).unwrap();
        }
        assert!(segment.is_full(&by_bytes));
    }
}
