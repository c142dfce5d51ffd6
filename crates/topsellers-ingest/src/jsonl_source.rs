//! JSON-lines files: one object per line, read with a line buffer that never grows past
//! `max_record_bytes` (longer lines are streamed past and reported).

use crate::builder::{Location, RecordBuilder};
use crate::json::{judge_json_text, JsonPaths};
use crate::{Parsed, SkipReason};
use std::io::{self, BufRead, BufReader, Read};
use topsellers_model::RejectReason;

const READ_BUFFER_BYTES: usize = 256 * 1024;

pub(crate) struct JsonlSource<R> {
    input: BufReader<R>,
    paths: JsonPaths,
    line: Vec<u8>,
    max_record_bytes: usize,
    /// 1-based number of the next line.
    next_line: u64,
    bytes_read: u64,
}

enum RawLine {
    /// The line is in `self.line`, without its terminator.
    Complete(u64),
    Oversized(u64),
    End,
}

impl<R: Read> JsonlSource<R> {
    pub(crate) fn new(inner: R, max_record_bytes: usize, builder: &RecordBuilder) -> Self {
        JsonlSource {
            input: BufReader::with_capacity(READ_BUFFER_BYTES, inner),
            paths: JsonPaths::new(builder),
            line: Vec::new(),
            max_record_bytes,
            next_line: 1,
            bytes_read: 0,
        }
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    #[cfg(test)]
    pub(crate) fn buffered_capacity(&self) -> usize {
        self.line.capacity() + self.input.capacity()
    }

    pub(crate) fn next(&mut self, builder: &mut RecordBuilder) -> io::Result<Option<Parsed>> {
        let parsed = match self.read_line()? {
            RawLine::End => return Ok(None),
            RawLine::Oversized(n) => Parsed::Rejected(builder.dead_letter(
                Location::Line(n),
                None,
                RejectReason::Oversized,
                format!(
                    "the line is longer than input.max_record_bytes = {}; it was skipped unread, split it or raise the limit",
                    self.max_record_bytes
                ),
                None,
            )),
            RawLine::Complete(n) => {
                let mut bytes = self.line.as_slice();
                if n == 1 {
                    bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
                }
                if let Some(stripped) = bytes.strip_suffix(b"\r") {
                    bytes = stripped;
                }
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    Parsed::Skipped(SkipReason::BlankLine)
                } else {
                    judge_json_text(bytes, Location::Line(n), &self.paths, builder)
                }
            }
        };
        Ok(Some(parsed))
    }

    fn read_line(&mut self) -> io::Result<RawLine> {
        self.line.clear();
        let number = self.next_line;
        let mut oversized = false;
        let mut seen_any = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(match (seen_any, oversized) {
                    (false, _) => RawLine::End,
                    (true, true) => RawLine::Oversized(number),
                    (true, false) => RawLine::Complete(number),
                });
            }
            seen_any = true;
            let (take, found_end) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if !oversized {
                if self.line.len() + take > self.max_record_bytes {
                    oversized = true;
                    self.line.clear();
                    self.line.shrink_to(self.max_record_bytes.min(64 * 1024));
                } else {
                    self.line.extend_from_slice(&buf[..take]);
                }
            }
            let consumed = take + usize::from(found_end);
            self.input.consume(consumed);
            self.bytes_read += consumed as u64;
            if found_end {
                self.next_line += 1;
                return Ok(if oversized {
                    RawLine::Oversized(number)
                } else {
                    RawLine::Complete(number)
                });
            }
        }
    }
}
