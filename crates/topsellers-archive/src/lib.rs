//! The Parquet archive: scrubbed purchase events as files that DuckDB, Spark and the like read directly.
//!
//! Files are partitioned by the event's UTC date and hour, Hive style:
//! `<dir>/dt=2011-01-31/hour=08/<prefix>-<n>.parquet`. Each (date, hour) collects events in memory and is
//! written out as one file when it holds `max_file_rows` rows or about `max_file_bytes` bytes, when its oldest
//! buffered event was added `max_file_age_secs` ago (so a quiet hour still reaches the archive), and at
//! [`ArchiveWriter::finish`].
//!
//! Publishing is atomic: a file is written under a hidden temporary name (`.<name>.parquet.tmp`, which no
//! `*.parquet` glob matches and Spark and DuckDB skip as hidden), synced, renamed to its final name, and the
//! directory synced. A reader sees a whole file or none; a crash leaves at most temporary files, which
//! [`ArchiveWriter::open`] removes.
//!
//! Only [`PurchaseEvent`] goes in, the type that exists only after scrubbing, so personal data has no column to
//! land in.
//!
//! ```
//! use topsellers_archive::{ArchiveSettings, ArchiveWriter};
//! use topsellers_model::{CategoryPath, PurchaseEvent};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let settings = ArchiveSettings { dir: dir.path().into(), ..ArchiveSettings::default() };
//! let mut archive = ArchiveWriter::open(&settings, "run1").unwrap();
//! let sale = PurchaseEvent {
//!     event_id: Some("e1".into()),
//!     event_time_ms: 1_296_462_360_000, // 2011-01-31T08:26:00Z
//!     original_time_ms: None,
//!     item_id: "85123A".into(),
//!     item_name: Some("WHITE HANGING HEART T-LIGHT HOLDER".into()),
//!     category: CategoryPath::parse("united kingdom").unwrap(),
//!     quantity: 6,
//!     unit_price_minor: 255,
//!     currency: "GBP".into(),
//!     country: None,
//! };
//! archive.write(&sale, 0).unwrap();
//! let stats = archive.finish().unwrap();
//! assert_eq!((stats.files, stats.events), (1, 1));
//! assert!(dir.path().join("dt=2011-01-31/hour=08/run1-000001.parquet").is_file());
//! ```

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use topsellers_model::{PurchaseEvent, TimestampMs};

mod position;
mod segment;
mod target;

pub use position::{PositionFile, StreamPosition};
pub use segment::Segment;
pub use target::ArchiveTarget;

/// The `[archive]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSettings {
    /// Local directory the `dt=.../hour=...` folders go under.
    pub dir: PathBuf,
    /// An object store instead of `dir`: `s3://bucket/prefix` (any S3-compatible server; credentials, region and
    /// endpoint from the standard AWS_* environment variables). For the live archives (`serve`, `demo`,
    /// `archive --from kafka`); `topsellers archive <files>` writes to `dir`.
    pub url: Option<String>,
    /// A file is written once its (date, hour) holds this many events.
    pub max_file_rows: usize,
    /// ... or about this many bytes of event data (before compression).
    pub max_file_bytes: u64,
    /// ... or when its oldest buffered event was added this long ago (wall clock).
    pub max_file_age_secs: u64,
    /// The consumer group of `topsellers archive --from kafka` (its own, apart from the aggregators').
    pub kafka_group_id: String,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            dir: PathBuf::from("archive"),
            url: None,
            max_file_rows: 1_000_000,
            max_file_bytes: 128 * 1024 * 1024,
            max_file_age_secs: 300,
            kafka_group_id: "topsellers-archive".into(),
        }
    }
}

impl ArchiveSettings {
    /// Every problem at once, each naming its key (without the `archive.` prefix) and the fix.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.dir.as_os_str().is_empty() {
            problems.push("dir is empty; name the directory the Parquet files go to".to_string());
        }
        if self.max_file_rows == 0 {
            problems
                .push("max_file_rows is 0; use a positive number (1000000 is the default)".into());
        }
        if self.max_file_bytes < 1024 {
            problems.push(format!(
                "max_file_bytes is {}; use at least 1024 (134217728 is the default)",
                self.max_file_bytes
            ));
        }
        if let Some(url) = &self.url {
            if !url.starts_with("s3://") || url.len() <= "s3://".len() {
                problems.push(format!(
                    "url is {url:?}; use s3://<bucket>/<prefix> (credentials and endpoint from AWS_* variables), or \
                     leave it out to write to dir"
                ));
            }
        }
        if self.kafka_group_id.trim().is_empty() {
            problems.push(
                "kafka_group_id is empty; name the archive's own consumer group (topsellers-archive is the default)"
                    .into(),
            );
        }
        if self.max_file_age_secs == 0 {
            problems.push(
                "max_file_age_secs is 0; use a positive number of seconds (300 is the default)"
                    .into(),
            );
        }
        problems
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot write the archive at {path}: {source}; check that the directory is writable (archive.dir)")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode Parquet file {path}: {detail}")]
    Encode { path: PathBuf, detail: String },
    #[error("event time {0} ms is outside the years 0 to 9999")]
    BadTime(TimestampMs),
    #[error("archive.url {url} cannot be used: {detail}; use s3://<bucket>/<prefix> and set AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY, AWS_REGION (and AWS_ENDPOINT with AWS_ALLOW_HTTP=true for a local server)")]
    BadUrl { url: String, detail: String },
    #[error("the object store refused or failed {url}: {detail}; check that the bucket exists, the credentials \
             (AWS_* variables) and the endpoint")]
    Object { url: String, detail: String },
    #[error("the archive position file {path} cannot be read: {detail}; restore it, or delete it to archive from \
             the source's current end on (what arrived since the last archived position would be left out)")]
    BadPosition { path: PathBuf, detail: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`ArchiveWriter::finish`] reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    pub events: u64,
    pub files: u64,
    pub bytes: u64,
    /// Stale temporary files of an earlier crashed run removed at open.
    pub removed_temp_files: u64,
}

/// The columns of every file (the partition columns `dt` and `hour` come from the path).
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, true),
        Field::new("event_time", ts.clone(), false),
        Field::new("original_time", ts, true),
        Field::new("item_id", DataType::Utf8, false),
        Field::new("item_name", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, false),
        Field::new("quantity", DataType::Int64, false),
        Field::new("unit_price_minor", DataType::Int64, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, true),
    ]))
}

struct Pending {
    events: Vec<PurchaseEvent>,
    bytes: u64,
    since_ms: TimestampMs,
}

/// Buffers events per (date, hour) and publishes them as Parquet files; see the [crate documentation](crate).
pub struct ArchiveWriter {
    settings: ArchiveSettings,
    prefix: String,
    next_file: u64,
    pending: BTreeMap<(String, String), Pending>,
    stats: ArchiveStats,
}

impl ArchiveWriter {
    /// Prepares `settings.dir` and removes temporary files left by a crashed run. File names start with
    /// `prefix` (letters, digits, `-` and `_`): give each run its own, so runs never overwrite each other's files.
    pub fn open(settings: &ArchiveSettings, prefix: &str) -> Result<ArchiveWriter, ArchiveError> {
        std::fs::create_dir_all(&settings.dir).map_err(io_err(&settings.dir))?;
        let removed = remove_temp_files(&settings.dir)?;
        let prefix: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(ArchiveWriter {
            settings: settings.clone(),
            prefix,
            next_file: 1,
            pending: BTreeMap::new(),
            stats: ArchiveStats {
                removed_temp_files: removed,
                ..ArchiveStats::default()
            },
        })
    }

    /// Adds one event; `now_ms` is the wall clock (for the age roll). Publishes the event's (date, hour) when it
    /// is full, and any (date, hour) whose oldest event is older than `max_file_age_secs`.
    pub fn write(
        &mut self,
        event: &PurchaseEvent,
        now_ms: TimestampMs,
    ) -> Result<(), ArchiveError> {
        let key = partition_of(event.event_time_ms)?;
        let pending = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            events: Vec::new(),
            bytes: 0,
            since_ms: now_ms,
        });
        pending.bytes += approx_bytes(event);
        pending.events.push(event.clone());
        if pending.events.len() >= self.settings.max_file_rows
            || pending.bytes >= self.settings.max_file_bytes
        {
            self.publish(&key)?;
        }
        self.publish_aged(now_ms)
    }

    /// Publishes every (date, hour) whose oldest buffered event was added `max_file_age_secs` before `now_ms`.
    /// Call it now and then when no events come, so a quiet hour still reaches the archive.
    pub fn publish_aged(&mut self, now_ms: TimestampMs) -> Result<(), ArchiveError> {
        let max_age_ms = (self.settings.max_file_age_secs * 1000) as i64;
        let due: Vec<(String, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ms - p.since_ms >= max_age_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.publish(&key)?;
        }
        Ok(())
    }

    /// Publishes everything still buffered and reports what was written.
    pub fn finish(mut self) -> Result<ArchiveStats, ArchiveError> {
        let keys: Vec<(String, String)> = self.pending.keys().cloned().collect();
        for key in keys {
            self.publish(&key)?;
        }
        Ok(self.stats)
    }

    fn publish(&mut self, key: &(String, String)) -> Result<(), ArchiveError> {
        let Some(pending) = self.pending.remove(key) else {
            return Ok(());
        };
        if pending.events.is_empty() {
            return Ok(());
        }
        let name = format!("{}-{:06}.parquet", self.prefix, self.next_file);
        self.next_file += 1;
        let bytes = publish_file(&self.settings.dir, key, &name, &pending.events)?;
        self.stats.files += 1;
        self.stats.events += pending.events.len() as u64;
        self.stats.bytes += bytes;
        Ok(())
    }
}

/// Writes `events` as `<root>/dt=<dt>/hour=<hour>/<name>` atomically: a hidden temporary file, synced, renamed over
/// the final name (replacing a file of that name whole), and the directory synced. Returns the file's size.
pub(crate) fn publish_file(
    root: &Path,
    (dt, hour): &(String, String),
    name: &str,
    events: &[PurchaseEvent],
) -> Result<u64, ArchiveError> {
    let dir = root.join(format!("dt={dt}")).join(format!("hour={hour}"));
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp"));
    let bytes = write_file(&temp, events).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    std::fs::rename(&temp, &path).map_err(io_err(&path))?;
    sync_dir(&dir)?;
    Ok(bytes)
}

/// Writes `events` as `dt=<dt>/hour=<hour>/<name>` of `target`, whole or not at all. Returns the file's size.
pub(crate) fn publish_to(
    target: &ArchiveTarget,
    hour: &(String, String),
    name: &str,
    events: &[PurchaseEvent],
) -> Result<u64, ArchiveError> {
    if let Some(dir) = target.local_dir() {
        return publish_file(dir, hour, name, events);
    }
    let rel = format!("dt={}/hour={}/{name}", hour.0, hour.1);
    let bytes = write_parquet(Vec::new(), events, Path::new(&rel))?;
    let len = bytes.len() as u64;
    target.put(&rel, bytes)?;
    Ok(len)
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The `(dt, hour)` of an event time, in UTC: `("2011-01-31", "08")`.
pub fn partition_of(time_ms: TimestampMs) -> Result<(String, String), ArchiveError> {
    let ts =
        jiff::Timestamp::from_millisecond(time_ms).map_err(|_| ArchiveError::BadTime(time_ms))?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC);
    Ok((
        format!("{:04}-{:02}-{:02}", dt.year(), dt.month(), dt.day()),
        format!("{:02}", dt.hour()),
    ))
}

pub(crate) fn approx_bytes(e: &PurchaseEvent) -> u64 {
    let text = e.event_id.as_ref().map_or(0, String::len)
        + e.item_id.len()
        + e.item_name.as_ref().map_or(0, String::len)
        + e.category.as_str().len()
        + e.currency.len()
        + e.country.as_ref().map_or(0, String::len);
    (text + 40) as u64
}

fn write_file(path: &Path, events: &[PurchaseEvent]) -> Result<u64, ArchiveError> {
    let file = File::create(path).map_err(io_err(path))?;
    let file = write_parquet(file, events, path)?;
    file.sync_all().map_err(io_err(path))?;
    Ok(file.metadata().map_err(io_err(path))?.len())
}

/// Encodes `events` as one Parquet file into `out` (`path` names it in errors).
fn write_parquet<W: std::io::Write + Send>(
    out: W,
    events: &[PurchaseEvent],
    path: &Path,
) -> Result<W, ArchiveError> {
    let schema = schema();
    let n = events.len();
    let mut event_id = StringBuilder::with_capacity(n, n * 16);
    let mut event_time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut original_time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut item_id = StringBuilder::with_capacity(n, n * 8);
    let mut item_name = StringBuilder::with_capacity(n, n * 24);
    let mut category = StringBuilder::with_capacity(n, n * 12);
    let mut quantity = Int64Builder::with_capacity(n);
    let mut price = Int64Builder::with_capacity(n);
    let mut currency = StringBuilder::with_capacity(n, n * 3);
    let mut country = StringBuilder::with_capacity(n, n * 4);
    for e in events {
        event_id.append_option(e.event_id.as_deref());
        event_time.append_value(e.event_time_ms);
        original_time.append_option(e.original_time_ms);
        item_id.append_value(&e.item_id);
        item_name.append_option(e.item_name.as_deref());
        category.append_value(e.category.as_str());
        quantity.append_value(e.quantity);
        price.append_value(e.unit_price_minor);
        currency.append_value(&e.currency);
        country.append_option(e.country.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(event_time.finish()),
        Arc::new(original_time.finish()),
        Arc::new(item_id.finish()),
        Arc::new(item_name.finish()),
        Arc::new(category.finish()),
        Arc::new(quantity.finish()),
        Arc::new(price.finish()),
        Arc::new(currency.finish()),
        Arc::new(country.finish()),
    ];
    let encode = |detail: String| ArchiveError::Encode {
        path: path.to_path_buf(),
        detail,
    };
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| encode(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(out, schema, Some(props)).map_err(|e| encode(e.to_string()))?;
    writer.write(&batch).map_err(|e| encode(e.to_string()))?;
    writer.into_inner().map_err(|e| encode(e.to_string()))
}

/// Removes `.*.parquet.tmp` files under `dir` (two levels: `dt=`, `hour=`), left by a crashed run; returns how
/// many. Only while no other writer publishes into `dir` (their temporary files would go too).
pub fn remove_temp_files(dir: &Path) -> Result<u64, ArchiveError> {
    remove_temp_files_of(dir, "")
}

/// [`remove_temp_files`] for the files whose final name starts with `prefix` (one writer's own).
pub fn remove_temp_files_of(dir: &Path, prefix: &str) -> Result<u64, ArchiveError> {
    let temp_prefix = format!(".{prefix}");
    let mut removed = 0;
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io_err(&d))? {
            let entry = entry.map_err(io_err(&d))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() && depth < 2 {
                stack.push((path, depth + 1));
            } else if name.starts_with(&temp_prefix) && name.ends_with(".parquet.tmp") {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use topsellers_model::CategoryPath;

    fn event(i: i64, time_ms: i64) -> PurchaseEvent {
        PurchaseEvent {
            event_id: Some(format!("e{i}")),
            event_time_ms: time_ms,
            original_time_ms: None,
            item_id: format!("item-{}", i % 7),
            item_name: None,
            category: CategoryPath::parse("a/b").unwrap(),
            quantity: 1,
            unit_price_minor: 100,
            currency: "GBP".into(),
            country: None,
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    const HOUR: i64 = 3_600_000;
    const T0: i64 = 1_296_432_000_000; // 2011-01-31T00:00:00Z

    #[test]
    fn partitions_by_utc_date_and_hour() {
        assert_eq!(
            partition_of(T0).unwrap(),
            ("2011-01-31".into(), "00".into())
        );
        assert_eq!(
            partition_of(T0 + 23 * HOUR + 59 * 60_000).unwrap(),
            ("2011-01-31".into(), "23".into())
        );
        assert_eq!(
            partition_of(T0 + 24 * HOUR).unwrap(),
            ("2011-02-01".into(), "00".into())
        );
    }

    #[test]
    fn rolls_by_rows_and_publishes_the_rest_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ArchiveSettings {
            dir: dir.path().into(),
            max_file_rows: 10,
            ..ArchiveSettings::default()
        };
        let mut w = ArchiveWriter::open(&settings, "r").unwrap();
        for i in 0..25 {
            w.write(&event(i, T0 + (i % 2) * HOUR), 0).unwrap();
        }
        // Hour 00 and hour 01 get 13 and 12 events: one full file each so far.
        assert_eq!(files(dir.path()).len(), 2);
        let stats = w.finish().unwrap();
        assert_eq!((stats.events, stats.files), (25, 4));
        assert_eq!(
            files(dir.path()),
            [
                "dt=2011-01-31/hour=00/r-000001.parquet",
                "dt=2011-01-31/hour=00/r-000003.parquet",
                "dt=2011-01-31/hour=01/r-000002.parquet",
                "dt=2011-01-31/hour=01/r-000004.parquet",
            ]
        );
    }

    #[test]
    fn rolls_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ArchiveSettings {
            dir: dir.path().into(),
            max_file_bytes: 1024,
            ..ArchiveSettings::default()
        };
        let mut w = ArchiveWriter::open(&settings, "r").unwrap();
        for i in 0..100 {
            w.write(&event(i, T0), 0).unwrap();
        }
        let stats = w.finish().unwrap();
        assert_eq!(stats.events, 100);
        assert!(stats.files >= 5, "{stats:?}");
    }

    #[test]
    fn rolls_by_age_on_the_wall_clock() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ArchiveSettings {
            dir: dir.path().into(),
            max_file_age_secs: 60,
            ..ArchiveSettings::default()
        };
        let mut w = ArchiveWriter::open(&settings, "r").unwrap();
        w.write(&event(1, T0), 1_000).unwrap();
        w.write(&event(2, T0 + HOUR), 30_000).unwrap();
        assert!(files(dir.path()).is_empty());
        w.publish_aged(61_000).unwrap();
        assert_eq!(
            files(dir.path()),
            ["dt=2011-01-31/hour=00/r-000001.parquet"]
        );
        w.publish_aged(90_000).unwrap();
        assert_eq!(files(dir.path()).len(), 2);
        assert_eq!(w.finish().unwrap().files, 2);
    }

    #[test]
    fn temporary_files_of_a_crashed_run_are_removed_and_never_look_published() {
        let dir = tempfile::tempdir().unwrap();
        let hour = dir.path().join("dt=2011-01-31/hour=00");
        std::fs::create_dir_all(&hour).unwrap();
        std::fs::write(hour.join(".r-000001.parquet.tmp"), b"half a file").unwrap();
        std::fs::write(hour.join("keep.parquet"), b"published").unwrap();
        let settings = ArchiveSettings {
            dir: dir.path().into(),
            ..ArchiveSettings::default()
        };
        let w = ArchiveWriter::open(&settings, "r").unwrap();
        assert_eq!(w.finish().unwrap().removed_temp_files, 1);
        assert_eq!(files(dir.path()), ["dt=2011-01-31/hour=00/keep.parquet"]);
    }
}
