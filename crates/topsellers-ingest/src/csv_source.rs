//! CSV records straight from a byte stream with `csv-core`, so that the reader decides what is held in
//! memory: a record longer than `max_record_bytes` is streamed past into a small scratch buffer, never
//! collected (the `csv` crate's `ByteRecord` would grow to hold a 10 MB line whole).
//!
//! By default (`input.csv_multiline_fields = false`) a record never spans physical lines: the
//! parser is fed one line at a time, and a quote still open at the end of a line makes that line
//! (only) a dead letter; reading goes on at the next line, with no seek. At the end of the input a
//! last line without a line break is checked the same way.
//!
//! With `csv_multiline_fields = true` (RFC 4180), an unclosed quote makes a quoted field run on over the lines after it, swallowing the good
//! records there. When a record that spans several lines fails (wrong width, too long), only its
//! first physical line is dead-lettered and reading seeks back to the next line, so the records
//! after it come out; a legitimate multi-line field in a record of the right width is untouched.
//! The seek goes back at most `max_record_bytes`: a record is abandoned as soon as it is both too
//! long and known to span lines.

use crate::builder::{Location, RecordBuilder};
use crate::config::{FieldMapping, InputConfig};
use crate::fields::{Field, FieldValue, FieldValues, FIELD_COUNT};
use crate::{IngestError, Parsed};
use csv_core::{ReadRecordResult, Reader as CoreReader, ReaderBuilder as CoreReaderBuilder};
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;
use topsellers_model::RejectReason;

const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Field bytes of a typical record fit without growing.
const INITIAL_RECORD_BYTES: usize = 4 * 1024;
/// Without a header there is no expected width; this many fields is surely not a purchase.
const MAX_FIELDS_WITHOUT_HEADER: usize = 4096;

/// What reading one record gave, before the record is judged.
#[derive(Clone, Debug)]
enum RawRecord {
    /// Field bytes in `out`, field ends in `ends[..fields]`.
    Complete {
        line: u64,
        fields: usize,
        /// Where the line after the record's first line starts, when the record spans lines.
        next_line_at: Option<u64>,
    },
    /// Longer than the limit; streamed past, counting its fields.
    Oversized {
        line: u64,
        fields: usize,
        /// As for `Complete`.
        next_line_at: Option<u64>,
    },
    /// More fields than the header; streamed past.
    TooManyFields {
        line: u64,
    },
    /// A quote still open at the end of the physical line `line`, when records may not span lines.
    /// Reading already stands at the next line.
    OpenQuote {
        line: u64,
    },
    /// Too wide and spanning lines: an unclosed quote, most likely. Reading stopped inside the
    /// record; it must resume at `next_line_at`.
    Unclosed {
        line: u64,
        next_line_at: u64,
        problem: Box<RawRecord>,
    },
    End,
}

pub(crate) struct CsvSource<R> {
    input: BufReader<R>,
    core: CoreReader,
    max_record_bytes: usize,
    max_fields: usize,
    /// Field bytes of the current record, and where each field ends.
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Where the parts of an oversized record go to be forgotten.
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
    /// Column of each mapped field.
    columns: [Option<usize>; FIELD_COUNT],
    /// The header's width; every record must have it (RFC 4180), else a shifted row could put an
    /// unmapped column, possibly personal data, where a mapped one is expected.
    expected_fields: Option<usize>,
    /// Without a header: the highest mapped column number.
    min_fields: usize,
    delimiter: u8,
    /// `input.csv_multiline_fields`: quoted fields may contain line breaks.
    multiline: bool,
    /// 1-based line of the next unread byte.
    line: u64,
    /// Offset of the next unread byte (reading starts at offset 0).
    bytes_read: u64,
    /// The input can seek, so a record can be abandoned midway and reading resumed earlier.
    seekable: bool,
}

impl<R: Read + Seek> CsvSource<R> {
    /// Reads the header (when configured) and resolves the mapping to column positions.
    /// The CSV keys of `input` apply (delimiter, header, multi-line fields, record limit).
    pub(crate) fn open(
        inner: R,
        path: &Path,
        input: &InputConfig,
        builder: &RecordBuilder,
    ) -> Result<Self, IngestError> {
        // Validated to be ASCII.
        let delimiter = input.csv_delimiter as u8;
        let has_header = input.csv_has_header;
        let multiline = input.csv_multiline_fields;
        let max_record_bytes = input.max_record_bytes;
        // With the default (canonical) mapping, files need only the required columns: a file
        // without event ids, names or original times is normal. A mapping the user wrote is held
        // to the letter.
        let optional_columns_may_be_absent = input.fields == FieldMapping::canonical();
        let mut source = CsvSource {
            input: BufReader::with_capacity(READ_BUFFER_BYTES, inner),
            core: CoreReaderBuilder::new().delimiter(delimiter).build(),
            max_record_bytes,
            max_fields: MAX_FIELDS_WITHOUT_HEADER,
            out: vec![0; INITIAL_RECORD_BYTES.min(max_record_bytes + 1)],
            ends: vec![0; 64],
            scratch: vec![0; 64 * 1024],
            scratch_ends: vec![0; 256],
            columns: [None; FIELD_COUNT],
            expected_fields: None,
            min_fields: 0,
            delimiter,
            multiline,
            line: 1,
            bytes_read: 0,
            seekable: false,
        };
        // A pipe cannot seek; there, a record spanning lines is only cut back when its start is
        // still in the read buffer.
        source.seekable = source.input.stream_position().is_ok();
        let unreadable = |source: io::Error| IngestError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        if has_header {
            let header: Vec<String> = match source.read_raw().map_err(unreadable)? {
                RawRecord::Complete { fields, .. } => {
                    let mut names = Vec::with_capacity(fields);
                    let mut start = 0;
                    for &end in &source.ends[..fields] {
                        let name = std::str::from_utf8(&source.out[start..end]).map_err(|_| {
                            IngestError::HeaderNotUtf8 {
                                path: path.to_path_buf(),
                            }
                        })?;
                        // A BOM the parser did not see (split read) must not hide the first name.
                        names.push(name.trim_start_matches('\u{feff}').trim().to_string());
                        start = end;
                    }
                    names
                }
                RawRecord::End => {
                    return Err(IngestError::MissingHeader {
                        path: path.to_path_buf(),
                    })
                }
                RawRecord::OpenQuote { .. } => {
                    return Err(IngestError::HeaderUnclosedQuote {
                        path: path.to_path_buf(),
                    })
                }
                RawRecord::Oversized { .. }
                | RawRecord::TooManyFields { .. }
                | RawRecord::Unclosed { .. } => {
                    return Err(IngestError::HeaderTooLong {
                        path: path.to_path_buf(),
                    })
                }
            };
            let mut missing = Vec::new();
            for field in Field::ALL {
                let Some(name) = builder.field_name(field) else {
                    continue;
                };
                match header.iter().position(|h| h == name.trim()) {
                    Some(i) => source.columns[field.index()] = Some(i),
                    None if optional_columns_may_be_absent && !field.is_required() => {}
                    None => {
                        let key = match field {
                            Field::RefundMarker => "input.refund_marker.field".to_string(),
                            f => format!("input.fields.{}", f.config_key()),
                        };
                        missing.push(format!("{name:?} ({key})"));
                    }
                }
            }
            if !missing.is_empty() {
                return Err(IngestError::MissingColumns {
                    path: path.to_path_buf(),
                    missing,
                    columns: header,
                });
            }
            source.expected_fields = Some(header.len());
            // One more than expected is enough to know a record is too wide.
            source.max_fields = header.len() + 1;
        } else {
            for field in Field::ALL {
                // Validated as 1-based column numbers when there is no header.
                if let Some(n) = builder
                    .field_name(field)
                    .and_then(|n| n.trim().parse::<usize>().ok())
                {
                    source.columns[field.index()] = Some(n - 1);
                    source.min_fields = source.min_fields.max(n);
                }
            }
        }
        if source.ends.len() < source.max_fields {
            source.ends.resize(source.max_fields, 0);
        }
        Ok(source)
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    #[cfg(test)]
    pub(crate) fn buffered_capacity(&self) -> usize {
        self.out.capacity() + self.scratch.capacity() + self.input.capacity()
    }

    /// The next record, judged by `builder`; `None` at the end of the input.
    pub(crate) fn next(&mut self, builder: &mut RecordBuilder) -> io::Result<Option<Parsed>> {
        let parsed = match self.read_raw()? {
            RawRecord::End => return Ok(None),
            RawRecord::OpenQuote { line } => Parsed::Rejected(builder.dead_letter(
                Location::Line(line),
                None,
                RejectReason::Malformed,
                format!(
                    "unclosed quote at line {line}: a quoted field opened on this line is not closed by its end; only line {line} was skipped and reading resumed at line {}; close the quote (write a quote inside a quoted field as two, \"\"), or set input.csv_multiline_fields = true if fields really contain line breaks",
                    line + 1
                ),
                None,
            )),
            RawRecord::Unclosed {
                line,
                next_line_at,
                problem,
            } => {
                if !self.resume_at(line, next_line_at) {
                    return Err(io::Error::other(format!(
                        "cannot seek back to line {} after an unclosed quote at line {line}",
                        line + 1
                    )));
                }
                let detail = self.problem_detail(&problem);
                self.unclosed_letter(builder, line, &detail)
            }
            RawRecord::Oversized {
                line,
                fields,
                next_line_at,
            } => {
                // A long quoted field over many lines in a record of the right width is just too
                // long; only a record that also came out the wrong width had a quote left open.
                let unclosed = match (self.width_problem(fields), next_line_at) {
                    (Some(_), Some(at)) => self.resume_at(line, at),
                    _ => false,
                };
                if unclosed {
                    let detail = format!(
                        "past input.max_record_bytes = {}, to {fields} fields{}",
                        self.max_record_bytes,
                        match self.expected_fields {
                            Some(expected) => format!(" where the header has {expected}"),
                            None => String::new(),
                        }
                    );
                    self.unclosed_letter(builder, line, &detail)
                } else {
                    self.problem_letter(
                        builder,
                        &RawRecord::Oversized {
                            line,
                            fields,
                            next_line_at,
                        },
                    )
                }
            }
            problem @ RawRecord::TooManyFields { .. } => self.problem_letter(builder, &problem),
            RawRecord::Complete {
                line,
                fields,
                next_line_at,
            } => match (self.width_problem(fields), next_line_at) {
                (Some(problem), Some(at)) if self.resume_at(line, at) => {
                    self.unclosed_letter(builder, line, &problem)
                }
                (Some(problem), _) => Parsed::Rejected(builder.dead_letter(
                    Location::Line(line),
                    None,
                    RejectReason::Malformed,
                    problem,
                    None,
                )),
                (None, _) => self.judge(builder, line, fields),
            },
        };
        Ok(Some(parsed))
    }

    /// Goes back to `at`, the start of the line after `line`, with a fresh parser. False when the
    /// input cannot seek there.
    fn resume_at(&mut self, line: u64, at: u64) -> bool {
        debug_assert!(at <= self.bytes_read);
        let back = -i64::try_from(self.bytes_read - at).unwrap_or(i64::MAX);
        if self.input.seek_relative(back).is_err() {
            return false;
        }
        self.bytes_read = at;
        self.line = line + 1;
        self.core.reset();
        true
    }

    fn unclosed_letter(&self, builder: &RecordBuilder, line: u64, detail: &str) -> Parsed {
        Parsed::Rejected(builder.dead_letter(
            Location::Line(line),
            None,
            RejectReason::Malformed,
            format!(
                "line {line} has an unclosed quote: the quoted field it opens runs on over the following lines ({detail}); only line {line} was skipped and reading resumed at line {}; close the quote, and write a quote inside a quoted field as two (\"\")",
                line + 1
            ),
            None,
        ))
    }

    /// What was wrong with a record that ran on over several lines.
    fn problem_detail(&self, problem: &RawRecord) -> String {
        match problem {
            RawRecord::TooManyFields { .. } => {
                format!("to more than {} fields", self.max_fields - 1)
            }
            _ => "to the wrong number of fields".to_string(),
        }
    }

    fn problem_letter(&self, builder: &RecordBuilder, problem: &RawRecord) -> Parsed {
        match *problem {
            RawRecord::Oversized { line, .. } => Parsed::Rejected(builder.dead_letter(
                Location::Line(line),
                None,
                RejectReason::Oversized,
                format!(
                    "the record is longer than input.max_record_bytes = {}; it was skipped unread, split it or raise the limit",
                    self.max_record_bytes
                ),
                None,
            )),
            RawRecord::TooManyFields { line } => Parsed::Rejected(builder.dead_letter(
                Location::Line(line),
                None,
                RejectReason::Malformed,
                format!(
                    "the record has more than {} fields{}; quote fields that contain the delimiter {:?}",
                    self.max_fields - 1,
                    if self.expected_fields.is_some() { ", the width of the header" } else { "" },
                    char::from(self.delimiter)
                ),
                None,
            )),
            _ => unreachable!("only oversized and too-wide records are problems"),
        }
    }

    /// Why a record of `fields` fields cannot be read through the mapping, if it cannot.
    fn width_problem(&self, fields: usize) -> Option<String> {
        match self.expected_fields {
            Some(expected) if fields != expected => Some(format!(
                "the record has {fields} fields but the header has {expected}; quote fields that contain the delimiter {:?} or a line break, and double quotes inside quoted fields",
                char::from(self.delimiter)
            )),
            None if fields < self.min_fields => Some(format!(
                "the record has {fields} fields but the mapping reads column {}; check the delimiter and the column numbers in input.fields",
                self.min_fields
            )),
            _ => None,
        }
    }

    /// Judges a record of the right width.
    fn judge(&self, builder: &mut RecordBuilder, line: u64, fields: usize) -> Parsed {
        let mut values = FieldValues::new();
        let record_len = if fields == 0 {
            0
        } else {
            self.ends[fields - 1]
        };
        // One UTF-8 check per record is much cheaper than one per field; only when it fails are
        // fields checked one by one, so that just the bad (mapped) field is blamed.
        let whole = std::str::from_utf8(&self.out[..record_len]).ok();
        for field in Field::ALL {
            let Some(column) = self.columns[field.index()] else {
                continue;
            };
            let start = if column == 0 {
                0
            } else {
                self.ends[column - 1]
            };
            let end = self.ends[column];
            // `get` refuses a range that splits a character across two fields.
            let text = match whole {
                Some(record) => record.get(start..end),
                None => std::str::from_utf8(&self.out[start..end]).ok(),
            };
            values.set(
                field,
                text.map_or(FieldValue::InvalidUtf8, FieldValue::Text),
            );
        }
        builder.build(&values, Location::Line(line))
    }

    /// What a record that ended is, given what went wrong while reading it.
    fn finish_record(
        &self,
        skipping: Option<RawRecord>,
        start_line: u64,
        fields: usize,
        next_line_at: Option<u64>,
    ) -> RawRecord {
        match (skipping, next_line_at) {
            (Some(RawRecord::Oversized { line, .. }), next_line_at) => RawRecord::Oversized {
                line,
                fields,
                next_line_at,
            },
            (Some(problem), Some(at)) => RawRecord::Unclosed {
                line: start_line,
                next_line_at: at,
                problem: Box::new(problem),
            },
            (Some(problem), None) => problem,
            (None, next_line_at) => RawRecord::Complete {
                line: start_line,
                fields,
                next_line_at,
            },
        }
    }

    /// Reads one record's fields into `out`/`ends`, or streams past it when it is too long.
    fn read_raw(&mut self) -> io::Result<RawRecord> {
        // Skip line breaks between records ourselves, so that the record's line is the line of its
        // first byte even after blank lines.
        let start_line = loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                break self.line;
            }
            let skip = buf
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            if skip == 0 {
                break self.line;
            }
            self.line += buf[..skip].iter().filter(|&&b| b == b'\n').count() as u64;
            self.input.consume(skip);
            self.bytes_read += skip as u64;
        };
        // The terminator counts, so a record of exactly the limit fits.
        let allowance = self.max_record_bytes + 1;
        let record_start = self.bytes_read;
        // Offset (in the record) of the first line break read, the terminator or one in a field.
        let mut first_break: Option<usize> = None;
        let mut raw_len = 0usize;
        let mut out_len = 0usize;
        let mut ends_len = 0usize;
        let mut skipping: Option<RawRecord> = None;
        // Single-line records: whether the last byte fed was a line break (the record is over or
        // its quote is open), and whether the line break standing in for a missing one at the end
        // of the input was fed.
        let mut ended_line = false;
        let mut fed_final_break = false;
        loop {
            let buf = self.input.fill_buf()?;
            let at_eof = buf.is_empty();
            let mut input = buf;
            let mut synthetic = false;
            if at_eof && !self.multiline && raw_len > 0 && !ended_line && !fed_final_break {
                // The last line has no line break: feed one, so that a quote left open on it is
                // caught like on any other line (the parser would close it silently at the end).
                input = b"\n";
                synthetic = true;
                fed_final_break = true;
            }
            if skipping.is_none() && !at_eof {
                let left = allowance - raw_len;
                if left == 0 {
                    skipping = Some(RawRecord::Oversized {
                        line: start_line,
                        fields: 0,
                        next_line_at: None,
                    });
                } else if input.len() > left {
                    input = &input[..left];
                }
            }
            if !self.multiline && !synthetic {
                // Never feed the parser past the end of the physical line (a lone `\r` ends one
                // too, as the parser's record terminator).
                if let Some(i) = memchr::memchr2(b'\n', b'\r', input) {
                    input = &input[..=i];
                }
            }
            let line_before = self.core.line();
            let (result, nin, nout, nend) = if skipping.is_some() {
                self.core
                    .read_record(input, &mut self.scratch, &mut self.scratch_ends)
            } else {
                self.core
                    .read_record(input, &mut self.out[out_len..], &mut self.ends[ends_len..])
            };
            if synthetic {
                // Nothing of the input is consumed; only the parser's state moves.
                match result {
                    ReadRecordResult::Record => {
                        return Ok(self.finish_record(skipping, start_line, ends_len + nend, None));
                    }
                    ReadRecordResult::InputEmpty => {
                        self.core.reset();
                        return Ok(RawRecord::OpenQuote { line: start_line });
                    }
                    // No room for the last field: grow below (nothing was read), then try again.
                    _ => fed_final_break = false,
                }
            }
            let nin = if synthetic { 0 } else { nin };
            let breaks = self.core.line() - line_before;
            self.line += breaks;
            if breaks > 0 && first_break.is_none() {
                first_break = memchr::memchr(b'\n', &input[..nin]).map(|i| raw_len + i);
            }
            // The whole line, line break included, went in and the record did not end: the line
            // break is inside a quoted field.
            ended_line = !self.multiline && nin > 0 && matches!(input[nin - 1], b'\n' | b'\r');
            self.input.consume(nin);
            self.bytes_read += nin as u64;
            raw_len += nin;
            if ended_line && !matches!(result, ReadRecordResult::Record) {
                self.core.reset();
                return Ok(RawRecord::OpenQuote { line: start_line });
            }
            if skipping.is_none() {
                out_len += nout;
            }
            // Fields are counted even when streamed past: an oversized record's width tells a long
            // field from an unclosed quote.
            ends_len += nend;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    if skipping.is_none() {
                        // Field bytes never outnumber raw bytes, which are bounded by the allowance.
                        let grown = (self.out.len() * 2).min(allowance).max(self.out.len() + 1);
                        // Exact, so that the limit bounds the capacity, not just the length.
                        self.out.reserve_exact(grown - self.out.len());
                        self.out.resize(grown, 0);
                    }
                }
                ReadRecordResult::OutputEndsFull => {
                    if skipping.is_none() {
                        if self.ends.len() >= self.max_fields {
                            skipping = Some(RawRecord::TooManyFields { line: start_line });
                        } else {
                            let grown = (self.ends.len() * 2).min(self.max_fields);
                            self.ends.resize(grown, 0);
                        }
                    }
                }
                ReadRecordResult::Record => {
                    // A break before the record's last byte is inside a quoted field.
                    let next_line_at = first_break
                        .filter(|&i| i + 1 < raw_len)
                        .map(|i| record_start + i as u64 + 1);
                    return Ok(self.finish_record(skipping, start_line, ends_len, next_line_at));
                }
                ReadRecordResult::End => return Ok(RawRecord::End),
            }
            // Too wide and spanning lines (the record has not ended, so the break was inside a
            // field): stop here rather than stream on, possibly to the end of the file.
            if let (Some(problem @ RawRecord::TooManyFields { .. }), Some(i), true) =
                (&skipping, first_break, self.seekable)
            {
                return Ok(RawRecord::Unclosed {
                    line: start_line,
                    next_line_at: record_start + i as u64 + 1,
                    problem: Box::new(problem.clone()),
                });
            }
        }
    }
}
