//! [`FileReader`]: a purchase file as an iterator of judged records.

use crate::builder::RecordBuilder;
use crate::config::{InputConfig, InputFormat, Limits};
use crate::csv_source::CsvSource;
use crate::jsonl_source::JsonlSource;
use crate::{IngestError, Parsed};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use topsellers_model::TimestampMs;

enum Source {
    Csv(CsvSource<File>),
    Jsonl(JsonlSource<File>),
}

/// Reads one purchase file (CSV or JSON lines) and yields every record as an event, a skip or a
/// dead letter, in file order. Bad records never end the iteration; only an I/O failure does, and
/// [`FileReader::take_error`] then tells what happened.
pub struct FileReader {
    source: Source,
    builder: RecordBuilder,
    path: PathBuf,
    total_bytes: Option<u64>,
    error: Option<IngestError>,
    finished: bool,
}

impl FileReader {
    /// Opens `path`, reads the CSV header (when there is one) and checks the mapping against it.
    /// `now_ms` bounds future timestamps and stamps dead letters.
    pub fn open(
        path: &Path,
        input: &InputConfig,
        limits: &Limits,
        now_ms: TimestampMs,
    ) -> Result<FileReader, IngestError> {
        let builder =
            RecordBuilder::new(format!("file:{}", path.display()), input, limits, now_ms)?;
        let format = input
            .format
            .resolve(path)
            .ok_or_else(|| IngestError::UnknownFormat {
                path: path.to_path_buf(),
            })?;
        let file = File::open(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => IngestError::NotFound {
                path: path.to_path_buf(),
            },
            _ => IngestError::Unreadable {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let metadata = file.metadata().map_err(|source| IngestError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        if metadata.is_dir() {
            return Err(IngestError::Unreadable {
                path: path.to_path_buf(),
                source: io::Error::other("it is a directory"),
            });
        }
        let source = match format {
            InputFormat::Jsonl => {
                Source::Jsonl(JsonlSource::new(file, input.max_record_bytes, &builder))
            }
            // `resolve` never answers Auto.
            InputFormat::Csv | InputFormat::Auto => {
                Source::Csv(CsvSource::open(file, path, input, &builder)?)
            }
        };
        Ok(FileReader {
            source,
            builder,
            path: path.to_path_buf(),
            total_bytes: metadata.is_file().then_some(metadata.len()),
            error: None,
            finished: false,
        })
    }

    /// Bytes consumed so far, for a progress bar.
    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Csv(s) => s.bytes_read(),
            Source::Jsonl(s) => s.bytes_read(),
        }
    }

    /// Personal data (by kind) replaced in kept text fields and dead-letter records, or found in
    /// an id (which refuses the record), so far.
    pub fn redactions(&self) -> crate::Redactions {
        self.builder.redactions()
    }

    /// The file's size when it is a regular file.
    pub fn total_bytes(&self) -> Option<u64> {
        self.total_bytes
    }

    /// The I/O error that ended the iteration early, if any. Records before it were delivered.
    pub fn take_error(&mut self) -> Option<IngestError> {
        self.error.take()
    }

    #[cfg(test)]
    pub(crate) fn buffered_capacity(&self) -> usize {
        match &self.source {
            Source::Csv(s) => s.buffered_capacity(),
            Source::Jsonl(s) => s.buffered_capacity(),
        }
    }
}

impl FileReader {
    /// The 1-based line where the record most recently returned as an event started (for files; 0 before
    /// the first event).
    pub fn last_event_line(&self) -> u64 {
        self.builder.last_line()
    }
}

impl Iterator for FileReader {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        if self.finished {
            return None;
        }
        let next = match &mut self.source {
            Source::Csv(s) => s.next(&mut self.builder),
            Source::Jsonl(s) => s.next(&mut self.builder),
        };
        match next {
            Ok(Some(parsed)) => Some(parsed),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(source) => {
                self.finished = true;
                self.error = Some(IngestError::ReadFailed {
                    path: self.path.clone(),
                    bytes: self.bytes_read(),
                    source,
                });
                None
            }
        }
    }
}
