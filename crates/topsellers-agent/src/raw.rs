//! The raw, pre-scrub record: the only place the agent holds a purchase line as it was written.
//!
//! [`RawLine`] has no `Serialize` and a `Debug` that prints only its length and position, so no log line,
//! error or sink can carry its content by accident; the only way out is [`crate::LineParser::parse`], which
//! keeps the mapped event fields and scrubs them.

use std::fmt;

/// One line of a purchase log, unread. Deliberately not `Clone`, `Serialize` or `Display`.
pub struct RawLine<'a> {
    bytes: &'a [u8],
    /// Byte offset of the line's first byte in its file.
    pub offset: u64,
}

impl<'a> RawLine<'a> {
    pub fn new(bytes: &'a [u8], offset: u64) -> Self {
        RawLine { bytes, offset }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The content, for the parser only.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl fmt::Debug for RawLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RawLine {{ offset: {}, len: {}, content: <redacted> }}",
            self.offset,
            self.bytes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_content() {
        let line = RawLine::new(b"{\"email\":\"jane@example.com\"}", 7);
        let shown = format!("{line:?}");
        assert!(!shown.contains("jane"), "{shown}");
        assert!(shown.contains("offset: 7"), "{shown}");
    }
}
