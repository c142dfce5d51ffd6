//! Reader tests over real files in a temporary directory: every rejection kind, dirt mixed with
//! good rows, and the streaming guarantees.

mod csv_files;
mod http_bodies;
mod jsonl_files;
mod personal_data;

use crate::{FileReader, InputConfig, Limits, Parsed, SkipReason};
use std::path::{Path, PathBuf};
use topsellers_model::{DeadLetter, PurchaseEvent, RejectReason};

/// 2024-06-01T00:00:00Z: "now" for every test, so future-time checks do not depend on the clock.
pub(crate) const NOW_MS: i64 = 1_717_200_000_000;

pub(crate) fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

pub(crate) fn read_all(path: &Path, input: &InputConfig, limits: &Limits) -> Vec<Parsed> {
    let mut reader = FileReader::open(path, input, limits, NOW_MS).unwrap();
    let out: Vec<Parsed> = reader.by_ref().collect();
    assert!(reader.take_error().is_none());
    out
}

pub(crate) fn events(parsed: &[Parsed]) -> Vec<&PurchaseEvent> {
    parsed
        .iter()
        .filter_map(|p| match p {
            Parsed::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

pub(crate) fn letters(parsed: &[Parsed]) -> Vec<&DeadLetter> {
    parsed
        .iter()
        .filter_map(|p| match p {
            Parsed::Rejected(d) => Some(d),
            _ => None,
        })
        .collect()
}

pub(crate) fn skips(parsed: &[Parsed]) -> Vec<SkipReason> {
    parsed
        .iter()
        .filter_map(|p| match p {
            Parsed::Skipped(s) => Some(*s),
            _ => None,
        })
        .collect()
}

/// The dead letter of `line`, which must exist exactly once.
pub(crate) fn letter_at<'a>(parsed: &'a [Parsed], location: &str) -> &'a DeadLetter {
    let found: Vec<_> = letters(parsed)
        .into_iter()
        .filter(|d| d.location == location)
        .collect();
    assert_eq!(found.len(), 1, "dead letters at {location}: {found:#?}");
    found[0]
}

pub(crate) fn assert_letter(
    parsed: &[Parsed],
    location: &str,
    reason: RejectReason,
    field: Option<&str>,
) -> DeadLetter {
    let letter = letter_at(parsed, location).clone();
    assert_eq!(letter.reason, reason, "{letter:#?}");
    assert_eq!(letter.field.as_deref(), field, "{letter:#?}");
    assert_eq!(letter.at_ms, NOW_MS);
    assert!(
        !letter.message.ends_with('.') && letter.message.contains("; "),
        "a message says what is wrong, then the fix: {:?}",
        letter.message
    );
    letter
}

pub(crate) fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}
