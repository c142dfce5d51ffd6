//! Finding the purchase logs and reading their complete lines from a position.
//!
//! A file is known by its **fingerprint**, a hash of its first line, not by its name or inode: a file renamed by
//! rotation keeps its fingerprint (and so its position), and the copy made by copy-truncate rotation has the
//! fingerprint of the original, so the lines written between the agent's last read and the copy are read from
//! the copy, at the same offsets. Event ids are made from (fingerprint, byte offset), so a line sent again after
//! a restart carries the id it had the first time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes of a first line that make the fingerprint; a longer first line is cut there.
const FINGERPRINT_BYTES: usize = 4096;

/// `dir/name-pattern`, where the name may hold `*` (any run) and `?` (any one character).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    dir: PathBuf,
    name: String,
}

impl Glob {
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        let path = Path::new(pattern);
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            format!("{pattern:?} names no file; write a path such as /var/log/shop/purchases.log*")
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.to_string_lossy().contains(['*', '?']) {
            return Err(format!(
                "{pattern:?} has a wildcard in a directory; only the file name may hold * and ?, so list each directory in its own [[agent.files]]"
            ));
        }
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Ok(Glob {
            dir,
            name: name.to_string(),
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        wildcard(self.name.as_bytes(), name.as_bytes())
    }

    /// The regular files that match now, oldest modification first (rotated files before the live one).
    pub fn expand(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(|n| self.matches(n)))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                meta.is_file()
                    .then(|| (meta.modified().unwrap_or(std::time::UNIX_EPOCH), e.path()))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, p)| p).collect()
    }
}

fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The file's fingerprint, or `None` while it has no complete first line yet (empty, just truncated, or
/// being written).
pub fn fingerprint(file: &mut File) -> io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(256);
    file.by_ref()
        .take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut head)?;
    match memchr::memchr(b'\n', &head) {
        Some(end) => Ok(Some(xxhash_rust::xxh3::xxh3_64(&head[..=end]))),
        None if head.len() == FINGERPRINT_BYTES => Ok(Some(xxhash_rust::xxh3::xxh3_64(&head))),
        None => Ok(None),
    }
}

/// One complete line read from a file.
pub enum Line {
    /// The line without its `\n`, starting at `offset`.
    Text { offset: u64, bytes: Vec<u8> },
    /// A line longer than the limit, skipped: `len` bytes without the `\n`.
    Oversized { offset: u64, len: u64 },
}

/// Reads at most `max_lines` complete lines from `offset`; a last line without its `\n` is left for later.
/// Returns the lines and the offset after the last one.
pub fn read_lines(
    file: &mut File,
    offset: u64,
    max_lines: usize,
    max_line_bytes: usize,
) -> io::Result<(Vec<Line>, u64)> {
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut lines = Vec::new();
    let mut at = offset;
    let mut current: Vec<u8> = Vec::new();
    let mut skipped: u64 = 0;
    let mut oversized = false;
    while lines.len() < max_lines {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break; // a partial line (or none): wait for its end
        }
        let (take, complete) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if !oversized && current.len() + take > max_line_bytes {
            oversized = true;
            skipped = current.len() as u64;
            current = Vec::new();
        }
        if oversized {
            skipped += take as u64;
        } else {
            current.extend_from_slice(&buf[..take]);
        }
        let consumed = take + usize::from(complete);
        reader.consume(consumed);
        if complete {
            let line_offset = at;
            let len = if oversized {
                skipped
            } else {
                current.len() as u64
            };
            at += len + 1;
            lines.push(if oversized {
                Line::Oversized {
                    offset: line_offset,
                    len,
                }
            } else {
                Line::Text {
                    offset: line_offset,
                    bytes: std::mem::take(&mut current),
                }
            });
            oversized = false;
            skipped = 0;
        }
    }
    Ok((lines, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn globs() {
        let g = Glob::parse("/var/log/p.log*").unwrap();
        assert!(g.matches("p.log") && g.matches("p.log.1") && !g.matches("q.log"));
        assert!(Glob::parse("/var/*/p.log").is_err());
        assert!(wildcard(b"a?c*", b"abcdef") && !wildcard(b"a?c", b"ac"));
    }

    #[test]
    fn lines_partial_and_oversized() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        let mut f = File::create(&path).unwrap();
        let long = "x".repeat(300);
        write!(f, "first\n{long}\nthird\npart").unwrap();
        let mut f = File::open(&path).unwrap();
        assert!(fingerprint(&mut f).unwrap().is_some());
        let (lines, end) = read_lines(&mut f, 0, 10, 100).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(matches!(&lines[0], Line::Text { offset: 0, bytes } if bytes == b"first"));
        assert!(matches!(
            lines[1],
            Line::Oversized {
                offset: 6,
                len: 300
            }
        ));
        assert!(matches!(&lines[2], Line::Text { offset: 307, bytes } if bytes == b"third"));
        assert_eq!(end, 313);
        let (lines, end2) = read_lines(&mut f, end, 10, 100).unwrap();
        assert!(lines.is_empty() && end2 == end);
        let (lines, _) = read_lines(&mut f, 0, 1, 100).unwrap();
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn fingerprint_waits_for_a_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        std::fs::write(&path, "no newline yet").unwrap();
        assert_eq!(fingerprint(&mut File::open(&path).unwrap()).unwrap(), None);
    }
}
