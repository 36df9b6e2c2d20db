//! The fields of a CSV stream, read in steps of at most one buffer, with
//! their raw bytes (to copy them as they are) and their content (quotes
//! removed), for `csv_cells`. A field's content can be parsed as it streams
//! (`Content`, a `turn_stream::CellSource` checked to be UTF-8).
//!
//! The grammar is the one polars reads (`arena_fast.sources.kaggle`): fields
//! separated by `,`, records by `\n` or `\r\n`, a field that starts with `"`
//! quoted (`""` inside is one quote), a blank line a record of one empty
//! field.

use std::io::{self, Read};

use memchr::{memchr, memchr2_iter, memchr3};

use crate::error::CellsError;
use crate::turn_stream::{count_chars, is_special, CellSource};

/// How a field ended.
#[derive(Debug, Default)]
pub(crate) struct FieldEnd {
    /// The bytes that ended it (`,`, `\n`, `\r\n`; none at the end of the file).
    pub delimiter: Vec<u8>,
    pub record_end: bool,
    /// Bytes after the closing quote, or a quote never closed.
    pub malformed: bool,
    /// The first byte of the first sequence that is not UTF-8.
    pub bad_utf8: Option<u8>,
}

impl FieldEnd {
    pub fn delimiter_lines(&self) -> u64 {
        u64::from(self.delimiter.contains(&b'\n'))
    }
}

const BUF_BYTES: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    AfterQuote,
}

/// One step through the file.
pub(crate) enum Step<'a> {
    /// Bytes of the current field: as in the file, and what they hold
    /// (quotes removed, `""` as `"`).
    Bytes { raw: &'a [u8], content: &'a [u8] },
    /// The current field ended (`raw`: what ended it).
    End {
        raw: &'a [u8],
        record_end: bool,
        malformed: bool,
    },
}

/// What a `Step::Bytes` holds of its raw bytes.
#[derive(Clone, Copy)]
enum Holds {
    All,
    Nothing,
    OneQuote,
}

/// The fields of a CSV stream, in steps of at most one buffer.
pub(crate) struct Fields<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    state: State,
    /// Index of the current record (0: the header) and field.
    pub record: u64,
    pub col: usize,
    at_record_start: bool,
    malformed: bool,
    /// Line breaks (`\n`, `\r\n`, a lone `\r`: Python's csv module's lines)
    /// passed so far, counted only when asked for.
    count_lines: bool,
    pub lines: u64,
    last_cr: bool,
}

impl<R: Read> Fields<R> {
    pub fn new(src: R, count_lines: bool) -> Fields<R> {
        Fields {
            src,
            buf: vec![0; BUF_BYTES],
            pos: 0,
            end: 0,
            eof: false,
            state: State::FieldStart,
            record: 0,
            col: 0,
            at_record_start: true,
            malformed: false,
            count_lines,
            lines: 0,
            last_cr: false,
        }
    }

    /// Make at least `n` bytes available (fewer only at the end of the
    /// file); returns how many are.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        while self.end - self.pos < n && !self.eof {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// The next step; None past the last record.
    pub fn step(&mut self) -> io::Result<Option<Step<'_>>> {
        loop {
            let available = self.fill(1)?;
            match self.state {
                State::FieldStart => {
                    if available == 0 {
                        if self.at_record_start {
                            return Ok(None);
                        }
                        // A ',' ended the last field: one more, empty.
                        return Ok(Some(self.end_field(0, true)));
                    }
                    if self.buf[self.pos] == b'"' {
                        self.state = State::Quoted;
                        return Ok(Some(self.bytes(1, Holds::Nothing)));
                    }
                    self.state = State::Unquoted;
                }
                State::Unquoted | State::AfterQuote => {
                    if available == 0 {
                        return Ok(Some(self.end_field(0, true)));
                    }
                    let next = memchr3(b',', b'\n', b'\r', &self.buf[self.pos..self.end]);
                    let first = self.buf[self.pos];
                    // (bytes, Some(record end) when they end the field)
                    let (n, ends) = match next {
                        Some(0) => match first {
                            b',' => (1, Some(false)),
                            b'\n' => (1, Some(true)),
                            _ if self.fill(2)? >= 2 && self.buf[self.pos + 1] == b'\n' => {
                                (2, Some(true))
                            }
                            // A lone CR is text.
                            _ => (1, None),
                        },
                        Some(k) => (k, None),
                        None => (available, None),
                    };
                    return Ok(Some(match ends {
                        Some(record_end) => self.end_field(n, record_end),
                        None => self.bytes(n, Holds::All),
                    }));
                }
                State::Quoted => {
                    if available == 0 {
                        self.malformed = true;
                        return Ok(Some(self.end_field(0, true)));
                    }
                    let next = memchr(b'"', &self.buf[self.pos..self.end]);
                    let (n, holds) = match next {
                        Some(0) if self.fill(2)? >= 2 && self.buf[self.pos + 1] == b'"' => {
                            (2, Holds::OneQuote)
                        }
                        Some(0) => {
                            self.state = State::AfterQuote;
                            (1, Holds::Nothing)
                        }
                        Some(k) => (k, Holds::All),
                        None => (available, Holds::All),
                    };
                    return Ok(Some(self.bytes(n, holds)));
                }
            }
        }
    }

    fn advance(&mut self, n: usize) -> usize {
        let start = self.pos;
        self.pos += n;
        if self.count_lines {
            let raw = &self.buf[start..self.pos];
            for i in memchr2_iter(b'\r', b'\n', raw) {
                let after_cr = if i == 0 {
                    self.last_cr
                } else {
                    raw[i - 1] == b'\r'
                };
                if raw[i] == b'\r' || !after_cr {
                    self.lines += 1;
                }
            }
            if let Some(&last) = raw.last() {
                self.last_cr = last == b'\r';
            }
        }
        start
    }

    fn bytes(&mut self, n: usize, holds: Holds) -> Step<'_> {
        if self.state == State::AfterQuote && matches!(holds, Holds::All) {
            self.malformed = true;
        }
        let start = self.advance(n);
        let raw = &self.buf[start..self.pos];
        let content = match holds {
            Holds::All => raw,
            Holds::Nothing => &raw[..0],
            Holds::OneQuote => &raw[..1],
        };
        Step::Bytes { raw, content }
    }

    fn end_field(&mut self, n: usize, record_end: bool) -> Step<'_> {
        let start = self.advance(n);
        self.state = State::FieldStart;
        self.at_record_start = record_end;
        if record_end {
            self.record += 1;
            self.col = 0;
        } else {
            self.col += 1;
        }
        let malformed = std::mem::take(&mut self.malformed);
        Step::End {
            raw: &self.buf[start..self.pos],
            record_end,
            malformed,
        }
    }

    /// Pass the rest of the current field.
    pub fn skip_field(&mut self) -> io::Result<FieldEnd> {
        loop {
            if let Some(Step::End {
                raw,
                record_end,
                malformed,
            }) = self.step()?
            {
                return Ok(FieldEnd {
                    delimiter: raw.to_vec(),
                    record_end,
                    malformed,
                    bad_utf8: None,
                });
            }
        }
    }

    /// An error naming `row` and `column` with the line where the record
    /// ends (Python's csv module's `line_num`, as the reader's other errors).
    pub fn cell_error(&mut self, row: u64, column: &str, what: &str) -> CellsError {
        match self.skip_field() {
            Ok(end) => self.record_error(row, column, what, &end),
            Err(e) => CellsError::Read(e),
        }
    }

    /// `cell_error` once the field is passed (`end`: how it ended).
    pub fn record_error(
        &mut self,
        row: u64,
        column: &str,
        what: &str,
        end: &FieldEnd,
    ) -> CellsError {
        let (mut record_end, mut last_line_open) = (end.record_end, end.delimiter.is_empty());
        while !record_end {
            match self.skip_field() {
                Ok(end) => {
                    (record_end, last_line_open) = (end.record_end, end.delimiter.is_empty())
                }
                Err(e) => return CellsError::Read(e),
            }
        }
        // A record that ends the file without a line break still is a line.
        let line = self.lines + u64::from(last_line_open);
        CellsError::Cell(format!("row {row} (line {line}), column {column}: {what}"))
    }
}

/// The content of one field as a `CellSource`, checked to be UTF-8.
pub(crate) struct Content<'f, R> {
    fields: &'f mut Fields<R>,
    buf: Vec<u8>,
    pos: usize,
    chars: usize,
    utf8: Utf8,
    end: Option<FieldEnd>,
    bad_utf8: Option<u8>,
    error: Option<io::Error>,
}

impl<'f, R: Read> Content<'f, R> {
    pub fn new(fields: &'f mut Fields<R>) -> Content<'f, R> {
        Content {
            fields,
            buf: Vec::new(),
            pos: 0,
            chars: 0,
            utf8: Utf8::default(),
            end: None,
            bad_utf8: None,
            error: None,
        }
    }

    /// Read one more step of the field; false when there is no more to
    /// parse (its end, a read error, or bytes that are not UTF-8).
    fn more(&mut self) -> bool {
        if self.end.is_some() || self.error.is_some() || self.bad_utf8.is_some() {
            return false;
        }
        if self.pos >= BUF_BYTES {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        match self.fields.step() {
            Err(e) => self.error = Some(e),
            Ok(None) => {
                self.end = Some(FieldEnd {
                    record_end: true,
                    ..FieldEnd::default()
                })
            }
            Ok(Some(Step::Bytes { content, .. })) => match self.utf8.feed(content) {
                Ok(()) => {
                    self.buf.extend_from_slice(content);
                    return true;
                }
                Err(byte) => self.bad_utf8 = Some(byte),
            },
            Ok(Some(Step::End {
                raw,
                record_end,
                malformed,
            })) => {
                self.bad_utf8 = self.utf8.finish().err();
                self.end = Some(FieldEnd {
                    delimiter: raw.to_vec(),
                    record_end,
                    malformed,
                    bad_utf8: None,
                });
            }
        }
        false
    }

    /// Read to the end of the field (still checking UTF-8) and say how it ended.
    pub fn finish(mut self) -> io::Result<FieldEnd> {
        while self.end.is_none() && self.error.is_none() {
            if self.bad_utf8.is_some() {
                let mut end = self.fields.skip_field()?;
                end.bad_utf8 = self.bad_utf8;
                return Ok(end);
            }
            self.buf.clear();
            self.pos = 0;
            self.more();
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut end = self.end.unwrap_or_default();
        end.bad_utf8 = self.bad_utf8;
        Ok(end)
    }
}

impl<R: Read> CellSource for Content<'_, R> {
    fn peek_at(&mut self, k: usize) -> Option<u8> {
        while self.buf.len() - self.pos <= k && self.more() {}
        self.buf.get(self.pos + k).copied()
    }

    fn bump(&mut self, n: usize) {
        let end = (self.pos + n).min(self.buf.len());
        self.chars += count_chars(&self.buf[self.pos..end]);
        self.pos = end;
    }

    fn chars(&self) -> usize {
        self.chars
    }

    fn plain(&mut self) -> &[u8] {
        if self.pos == self.buf.len() {
            self.more();
        }
        let start = self.pos;
        let n = self.buf[start..]
            .iter()
            .position(|&b| is_special(b))
            .unwrap_or(self.buf.len() - start);
        self.bump(n);
        &self.buf[start..start + n]
    }
}

/// A UTF-8 check over a stream of pieces; an error gives the first byte of
/// the first bad sequence (the byte Python's decoder reports).
#[derive(Debug, Default)]
struct Utf8 {
    /// Continuation bytes still expected, the sequence's first byte, and
    /// the range the next one must be in.
    need: u8,
    lead: u8,
    low: u8,
    high: u8,
}

impl Utf8 {
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), u8> {
        while self.need > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return Ok(());
            };
            if b < self.low || b > self.high {
                return Err(self.lead);
            }
            self.need -= 1;
            (self.low, self.high) = (0x80, 0xBF);
            bytes = rest;
        }
        let tail = match std::str::from_utf8(bytes) {
            Ok(_) => return Ok(()),
            Err(e) if e.error_len().is_some() => return Err(bytes[e.valid_up_to()]),
            Err(e) => &bytes[e.valid_up_to()..],
        };
        // An incomplete sequence at the end: what the next piece must bring.
        let lead = tail[0];
        let (need, low, high) = match lead {
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xE1..=0xEF => (2, 0x80, 0xBF),
            0xF0 => (3, 0x90, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => (3, 0x80, 0xBF),
        };
        (self.need, self.lead, self.low, self.high) = (need, lead, low, high);
        // `from_utf8` accepted the bytes after the first as a valid prefix.
        for _ in 1..tail.len() {
            self.need -= 1;
            (self.low, self.high) = (0x80, 0xBF);
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), u8> {
        if self.need > 0 {
            Err(self.lead)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per read.
    pub(crate) struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    pub(crate) fn trickle(bytes: &[u8], chunk: usize) -> Trickle<'_> {
        Trickle { bytes, chunk }
    }

    pub(crate) type Field = (Vec<u8>, Vec<u8>);

    /// Records as (raw, content) fields; the raw bytes with delimiters.
    pub(crate) fn records(bytes: &[u8], chunk: usize) -> (Vec<Vec<Field>>, Vec<u8>) {
        let mut fields = Fields::new(trickle(bytes, chunk), true);
        let (mut out, mut record, mut field, mut all) = (vec![], vec![], Field::default(), vec![]);
        while let Some(step) = fields.step().unwrap() {
            match step {
                Step::Bytes { raw, content } => {
                    field.0.extend_from_slice(raw);
                    field.1.extend_from_slice(content);
                    all.extend_from_slice(raw);
                }
                Step::End {
                    raw, record_end, ..
                } => {
                    all.extend_from_slice(raw);
                    record.push(std::mem::take(&mut field));
                    if record_end {
                        out.push(std::mem::take(&mut record));
                    }
                }
            }
        }
        (out, all)
    }

    fn contents(records: &[Vec<Field>]) -> Vec<Vec<String>> {
        records
            .iter()
            .map(|r| {
                r.iter()
                    .map(|f| String::from_utf8(f.1.clone()).unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn fields_as_polars_reads_them_for_any_read_size() {
        let file = b"a,\"b\"\"c\",d\r\n\"x\ny\",,\"\"\n\nlone\rcr,\"q\"\r\nend,\"open";
        let expected = vec![
            vec!["a", "b\"c", "d"],
            vec!["x\ny", "", ""],
            vec![""],
            vec!["lone\rcr", "q"],
            vec!["end", "open"],
        ];
        for chunk in [1, 2, 3, 5, 64, 1 << 20] {
            let (recs, all) = records(file, chunk);
            assert_eq!(all, file.to_vec(), "lossless, chunk {chunk}");
            assert_eq!(contents(&recs), expected, "chunk {chunk}");
        }
        // A trailing comma: one more empty field; a final line break ends it.
        let (recs, _) = records(b"a,\nb,c\n", 1);
        assert_eq!(contents(&recs), vec![vec!["a", ""], vec!["b", "c"]]);
        assert!(records(b"", 4).0.is_empty());
    }

    #[test]
    fn utf8_check_reports_the_first_byte_of_a_bad_sequence() {
        let check = |pieces: &[&[u8]]| {
            let mut u = Utf8::default();
            for p in pieces {
                u.feed(p)?;
            }
            u.finish()
        };
        assert_eq!(
            check(&[b"ok \xe2\x82\xac", b"\xf0\x9f", b"\x98\x80"]),
            Ok(())
        );
        assert_eq!(check(&[b"a\xe2", b"\x82A"]), Err(0xe2));
        assert_eq!(check(&[b"a\xed", b"\xa0\x80"]), Err(0xed));
        assert_eq!(check(&[b"\xc0\x80"]), Err(0xc0));
        assert_eq!(check(&[b"x\x80"]), Err(0x80));
        assert_eq!(check(&[b"\xf0\x9f\x98"]), Err(0xf0));
    }
}
