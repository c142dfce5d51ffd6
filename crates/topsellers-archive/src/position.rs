//! How far the archive has got through one stream of positions (the embedded log's entries, a Kafka partition's
//! offsets), kept beside the files it describes: `<dir>/_topsellers/<stream>.position`, JSON, replaced atomically.
//!
//! The protocol that makes every event land exactly once, whatever moment a crash picks:
//! 1. [`PositionFile::begin`]: record the run about to be published (`publishing: [first, last]`);
//! 2. publish the run's files, each atomically, named after the stream and the run ([`crate::Segment`]);
//! 3. [`PositionFile::commit`]: `archived_through = last`, nothing publishing.
//!
//! A crash before 1 leaves no trace of the run. A crash after 1 leaves `publishing` set, and the next start must
//! publish exactly that run again before anything else: same events, same file names, so each file is replaced by
//! its twin and no event appears twice (a run rebuilt freely could end elsewhere, and its files would sit beside
//! the first attempt's).

use crate::{ArchiveError, ArchiveTarget};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Folder of the archive's own bookkeeping; readers glob `**/*.parquet` and never see it.
pub const STATE_DIR: &str = "_topsellers";

/// The stored position of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamPosition {
    /// Every position up to and including this one is in published files.
    pub archived_through: u64,
    /// A run `[first, last]` that may be partly published: publish exactly it again before anything else.
    pub publishing: Option<(u64, u64)>,
}

/// The position file of one stream.
pub struct PositionFile {
    target: Arc<ArchiveTarget>,
    rel: String,
    current: StreamPosition,
}

impl PositionFile {
    /// Reads `<dir>/_topsellers/<stream>.position`; when there is none, starts one at `start` (written at once, so
    /// the start survives a crash before the first run is published).
    pub fn open_or_start(
        target: &Arc<ArchiveTarget>,
        stream: &str,
        start: u64,
    ) -> Result<PositionFile, ArchiveError> {
        let (mut file, stored) = Self::open(target, stream)?;
        match stored {
            true => Ok(file),
            false => {
                file.save(StreamPosition {
                    archived_through: start,
                    publishing: None,
                })?;
                Ok(file)
            }
        }
    }

    /// The stored position of `stream`, or a position file not yet written when there is none (its first save is the
    /// first [`PositionFile::begin`]): for a stream whose start comes from elsewhere (a Kafka group's offsets).
    pub fn open(
        target: &Arc<ArchiveTarget>,
        stream: &str,
    ) -> Result<(PositionFile, bool), ArchiveError> {
        let stored = Self::read(target, stream)?;
        let file = PositionFile {
            target: target.clone(),
            rel: Self::rel_of(stream),
            current: stored.unwrap_or_default(),
        };
        Ok((file, stored.is_some()))
    }

    /// The stored position of `stream`, or `None` when the archive has none.
    pub fn read(
        target: &ArchiveTarget,
        stream: &str,
    ) -> Result<Option<StreamPosition>, ArchiveError> {
        let rel = Self::rel_of(stream);
        let Some(bytes) = target.get(&rel)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ArchiveError::BadPosition {
                path: PathBuf::from(format!("{}/{rel}", target.describe())),
                detail: e.to_string(),
            })
    }

    fn rel_of(stream: &str) -> String {
        format!("{STATE_DIR}/{stream}.position")
    }

    pub fn current(&self) -> StreamPosition {
        self.current
    }

    /// Where the file is, for messages.
    pub fn path(&self) -> String {
        format!("{}/{}", self.target.describe(), self.rel)
    }

    /// Step 1: the run `[first, last]` is about to be published.
    pub fn begin(&mut self, first: u64, last: u64) -> Result<(), ArchiveError> {
        debug_assert!(last >= first);
        self.save(StreamPosition {
            archived_through: self.current.archived_through,
            publishing: Some((first, last)),
        })
    }

    /// Step 3: everything up to `through` is published.
    pub fn commit(&mut self, through: u64) -> Result<(), ArchiveError> {
        self.save(StreamPosition {
            archived_through: through.max(self.current.archived_through),
            publishing: None,
        })
    }

    fn save(&mut self, position: StreamPosition) -> Result<(), ArchiveError> {
        let json = serde_json::to_vec(&position).expect("a position serializes");
        self.target.put(&self.rel, json)?;
        self.current = position;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_once_then_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let target = Arc::new(ArchiveTarget::Local(dir.path().into()));
        let mut file = PositionFile::open_or_start(&target, "s", 7).unwrap();
        assert_eq!(file.current().archived_through, 7);
        file.begin(8, 12).unwrap();
        let reopened = PositionFile::open_or_start(&target, "s", 100).unwrap();
        assert_eq!(
            reopened.current(),
            StreamPosition {
                archived_through: 7,
                publishing: Some((8, 12))
            }
        );
        file.commit(12).unwrap();
        assert_eq!(
            PositionFile::read(&target, "s").unwrap(),
            Some(StreamPosition {
                archived_through: 12,
                publishing: None
            })
        );
        assert_eq!(PositionFile::read(&target, "other").unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(dir.path().join(STATE_DIR).join("s.position"), "{").unwrap();
        let target = ArchiveTarget::Local(dir.path().into());
        let err = PositionFile::read(&target, "s").unwrap_err().to_string();
        assert!(err.contains("s.position"), "{err}");
    }
}
