//! Errors that stop a whole input (a file that cannot be opened, a mapping that does not fit it).
//! Problems with single records are never errors: they become dead letters.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid configuration: {}", .problems.join("; "))]
    InvalidConfig { problems: Vec<String> },

    #[error("input file {} was not found; check the path", .path.display())]
    NotFound { path: PathBuf },

    #[error("cannot read input file {}: {source}; check that it is a readable file", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot tell the format of {} from its extension; set input.format to \"csv\" or \"jsonl\"", .path.display())]
    UnknownFormat { path: PathBuf },

    #[error("{} is empty but input.csv_has_header = true; add the header row or set csv_has_header = false", .path.display())]
    MissingHeader { path: PathBuf },

    #[error("the CSV header of {} is not valid UTF-8; save the file as UTF-8", .path.display())]
    HeaderNotUtf8 { path: PathBuf },

    #[error("the CSV header of {} is longer than input.max_record_bytes; raise it or check the delimiter", .path.display())]
    HeaderTooLong { path: PathBuf },

    #[error("the CSV header of {} has a quote that is not closed by the end of its line; close it, or set input.csv_multiline_fields = true if column names really contain line breaks", .path.display())]
    HeaderUnclosedQuote { path: PathBuf },

    /// `missing` holds every mapped column the header lacks, as `"StockCode" (input.fields.item_id)`.
    #[error("the CSV header of {} lacks the mapped column {}; the header has {}; fix the mapping or the file", .path.display(), .missing.join(", "), .columns.join(", "))]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        columns: Vec<String>,
    },

    #[error("reading {} failed after {bytes} bytes: {source}; the records before were delivered, fix the file or disk and read it again", .path.display())]
    ReadFailed {
        path: PathBuf,
        bytes: u64,
        #[source]
        source: std::io::Error,
    },
}
