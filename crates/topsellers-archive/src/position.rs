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

use crate::{io_err, sync_dir, ArchiveError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
#[derive(Debug)]
pub struct PositionFile {
    path: PathBuf,
    current: StreamPosition,
}

impl PositionFile {
    /// Reads `<dir>/_topsellers/<stream>.position`; when there is none, starts one at `start` (written at once, so
    /// the start survives a crash before the first run is published).
    pub fn open_or_start(
        dir: &Path,
        stream: &str,
        start: u64,
    ) -> Result<PositionFile, ArchiveError> {
        let path = Self::path_of(dir, stream);
        match Self::read(dir, stream)? {
            Some(current) => Ok(PositionFile { path, current }),
            None => {
                let mut file = PositionFile {
                    path,
                    current: StreamPosition::default(),
                };
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
    pub fn open(dir: &Path, stream: &str) -> Result<(PositionFile, bool), ArchiveError> {
        let path = Self::path_of(dir, stream);
        Ok(match Self::read(dir, stream)? {
            Some(current) => (PositionFile { path, current }, true),
            None => (
                PositionFile {
                    path,
                    current: StreamPosition::default(),
                },
                false,
            ),
        })
    }

    /// The stored position of `stream`, or `None` when the archive has none.
    pub fn read(dir: &Path, stream: &str) -> Result<Option<StreamPosition>, ArchiveError> {
        let path = Self::path_of(dir, stream);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ArchiveError::BadPosition {
                path: path.clone(),
                detail: e.to_string(),
            })
    }

    fn path_of(dir: &Path, stream: &str) -> PathBuf {
        dir.join(STATE_DIR).join(format!("{stream}.position"))
    }

    pub fn current(&self) -> StreamPosition {
        self.current
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let dir = self.path.parent().expect("position files live in a folder");
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let temp = self.path.with_extension("position.tmp");
        let json = serde_json::to_vec(&position).expect("a position serializes");
        write_synced(&temp, &json)?;
        std::fs::rename(&temp, &self.path).map_err(io_err(&self.path))?;
        sync_dir(dir)?;
        self.current = position;
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(io_err(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_once_then_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = PositionFile::open_or_start(dir.path(), "s", 7).unwrap();
        assert_eq!(file.current().archived_through, 7);
        file.begin(8, 12).unwrap();
        let reopened = PositionFile::open_or_start(dir.path(), "s", 100).unwrap();
        assert_eq!(
            reopened.current(),
            StreamPosition {
                archived_through: 7,
                publishing: Some((8, 12))
            }
        );
        file.commit(12).unwrap();
        assert_eq!(
            PositionFile::read(dir.path(), "s").unwrap(),
            Some(StreamPosition {
                archived_through: 12,
                publishing: None
            })
        );
        assert_eq!(PositionFile::read(dir.path(), "other").unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(dir.path().join(STATE_DIR).join("s.position"), "{").unwrap();
        let err = PositionFile::read(dir.path(), "s").unwrap_err().to_string();
        assert!(err.contains("s.position"), "{err}");
    }
}
