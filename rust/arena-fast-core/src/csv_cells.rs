//! Kaggle CSV cells too large to materialise (docs/dataset.md, "Sources",
//! kaggle). One streaming pass finds them (`find_big_cells`); only when there
//! are some, a second pass writes a copy of the file (`copy_clipping`) in
//! which each is replaced: a text cell by the same JSON list with its long
//! turns clipped while they are parsed (`turn_stream`), a cell of a column
//! the reader does not read by an empty one. A big cell in another column
//! the reader reads (id, model, winner) is an error. Every other byte is
//! copied as it is, so a CSV reader reads the copy as it would read the
//! file, in memory bounded by the clip instead of by the cell.
//!
//! The grammar is the one polars reads (`arena_fast.sources.kaggle`): fields
//! separated by `,`, records by `\n` or `\r\n`, a field that starts with `"`
//! quoted (`""` inside is one quote), a blank line a record of one empty
//! field. No I/O here: the callers hand in a reader and a writer.

use std::io::{self, Read, Write};

use memchr::{memchr, memchr2_iter, memchr3};
use thiserror::Error;

use crate::turn_stream::{count_chars, is_special, stream_turn_list, CellSource, Turn};
use crate::turns::MAX_TURN_BYTES;

/// The most text a streamed cell keeps once its turns are clipped: 16 whole
/// clipped turns. A cell of more (a gigabyte of short turns) is a bad cell,
/// so that what the CSV reader then holds is bounded by this, not by the
/// cell; no conversation the encoder can use comes near it.
pub const MAX_CELL_TEXT_BYTES: u64 = 16 * MAX_TURN_BYTES as u64;

/// Why a file could not be scanned or copied; `Cell` names the row and
/// column (the caller adds the file).
#[derive(Debug, Error)]
pub enum CellsError {
    #[error("cannot read: {0}")]
    Read(io::Error),
    #[error("cannot write the copy: {0}")]
    Write(io::Error),
    #[error("{0}")]
    Cell(String),
}

/// How a column is read, which decides what a big cell in it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A JSON list of turns: streamed and clipped.
    Text,
    /// Read as a value (id, model, winner): a big cell is an error.
    Other,
    /// Not read: a big cell is emptied.
    Unread,
}

/// Which columns are which, and from what size (raw bytes, quotes
/// included) a cell counts as big.
pub struct Limits<'a> {
    pub text_columns: &'a [String],
    pub read_columns: &'a [String],
    /// Text cells larger than this are streamed.
    pub text_bytes: u64,
    /// Any other cell larger than this is big.
    pub cell_bytes: u64,
}

/// What the first pass found: the header and the big cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigCells {
    /// Column names (a UTF-8 byte-order mark removed from the first).
    pub header: Vec<String>,
    pub kinds: Vec<ColumnKind>,
    pub text_bytes: u64,
    pub cell_bytes: u64,
    /// (data row, column index) of each big cell, in file order.
    pub cells: Vec<(u64, usize)>,
}

impl BigCells {
    fn kind(&self, col: usize) -> ColumnKind {
        self.kinds.get(col).copied().unwrap_or(ColumnKind::Unread)
    }

    fn name(&self, col: usize) -> String {
        self.header
            .get(col)
            .cloned()
            .unwrap_or_else(|| format!("#{}", col + 1))
    }
}

/// What the second pass did, by data row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Data records in the file.
    pub rows: u64,
    /// (row, repair flags) of each streamed text cell that was repaired
    /// (`NULL`, `SURROGATE`, `CLIPPED`; the copy keeps `null`, so the CSV
    /// reader's parse sets `NULL` again).
    pub repaired: Vec<(u64, u8)>,
    /// (row, column name, why) of each streamed text cell that is not a
    /// JSON list of strings (the turn list error), or whose clipped turns
    /// hold more than `MAX_CELL_TEXT_BYTES`; the row's cell in the copy is a
    /// list of the turns kept before that.
    pub bad: Vec<(u64, String, String)>,
    /// (row, line breaks) a replaced cell held and its replacement does not:
    /// line numbers in the copy are smaller by the sum of those before.
    pub lines_removed: Vec<(u64, u64)>,
}

/// Pass one: the header, and every cell larger than its column's limit.
pub fn find_big_cells<R: Read>(src: R, limits: &Limits<'_>) -> Result<BigCells, CellsError> {
    let mut fields = Fields::new(src, false);
    let mut found = BigCells {
        header: Vec::new(),
        kinds: Vec::new(),
        text_bytes: limits.text_bytes,
        cell_bytes: limits.cell_bytes,
        cells: Vec::new(),
    };
    let mut size = 0u64;
    let mut name = Vec::new();
    loop {
        let (record, col) = (fields.record, fields.col);
        let Some(step) = fields.step().map_err(CellsError::Read)? else {
            break;
        };
        match step {
            Step::Bytes { raw, content } => {
                size += raw.len() as u64;
                if record == 0 {
                    if size > limits.cell_bytes {
                        return Err(CellsError::Cell(format!(
                            "the header: a cell of more than {} bytes (not a CSV header)",
                            limits.cell_bytes
                        )));
                    }
                    name.extend_from_slice(content);
                }
            }
            Step::End { record_end, .. } => {
                if record == 0 {
                    let text = if col == 0 {
                        name.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&name)
                    } else {
                        &name
                    };
                    found
                        .header
                        .push(String::from_utf8_lossy(text).into_owned());
                    name.clear();
                    if record_end {
                        found.kinds = column_kinds(&found.header, limits);
                    }
                } else {
                    let limit = match found.kind(col) {
                        ColumnKind::Text => limits.text_bytes,
                        _ => limits.cell_bytes,
                    };
                    if size > limit {
                        found.cells.push((record - 1, col));
                    }
                }
                size = 0;
            }
        }
    }
    Ok(found)
}

/// Each header column's kind; a repeated name counts once, at its first
/// place (polars renames the later ones).
fn column_kinds(header: &[String], limits: &Limits<'_>) -> Vec<ColumnKind> {
    header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if header[..i].contains(name) {
                ColumnKind::Unread
            } else if limits.text_columns.contains(name) {
                ColumnKind::Text
            } else if limits.read_columns.contains(name) {
                ColumnKind::Other
            } else {
                ColumnKind::Unread
            }
        })
        .collect()
}

/// Pass two: copy `src` to `out`, the cells of `big` replaced (see the
/// module doc). `big` comes from `find_big_cells` on the same bytes.
pub fn copy_clipping<R: Read, W: Write>(
    src: R,
    mut out: W,
    big: &BigCells,
) -> Result<Copied, CellsError> {
    let mut fields = Fields::new(src, true);
    let mut copied = Copied::default();
    let mut next = big.cells.iter().peekable();
    let write = |out: &mut W, bytes: &[u8]| out.write_all(bytes).map_err(CellsError::Write);
    loop {
        let (record, col) = (fields.record, fields.col);
        if record == 0 || next.peek() != Some(&&(record - 1, col)) {
            match fields.step().map_err(CellsError::Read)? {
                None => break,
                Some(Step::Bytes { raw, .. } | Step::End { raw, .. }) => write(&mut out, raw)?,
            }
            continue;
        }
        next.next();
        let row = record - 1;
        let lines_before = fields.lines;
        let end = match big.kind(col) {
            ColumnKind::Other => {
                let what = format!(
                    "a cell of more than {} bytes (only the text columns may be longer)",
                    big.cell_bytes
                );
                return Err(fields.cell_error(row, &big.name(col), &what));
            }
            ColumnKind::Unread => fields.skip_field().map_err(CellsError::Read)?,
            ColumnKind::Text => {
                write(&mut out, b"\"[")?;
                let mut turns = TurnWriter {
                    out: &mut out,
                    first: true,
                    error: None,
                    kept: 0,
                    over: false,
                };
                let mut cell = Content::new(&mut fields);
                let parsed = stream_turn_list(&mut cell, &mut |t| turns.turn(t));
                let end = cell.finish().map_err(CellsError::Read)?;
                if let Some(e) = turns.error {
                    return Err(CellsError::Write(e));
                }
                let over = turns.over;
                write(&mut out, b"]\"")?;
                if let Some(byte) = end.bad_utf8 {
                    let what = format!("invalid utf-8 (byte 0x{byte:02x})");
                    return Err(fields.record_error(row, &big.name(col), &what, &end));
                }
                if end.malformed {
                    let what = "a quoted cell with text after its closing quote, or never closed";
                    return Err(fields.record_error(row, &big.name(col), what, &end));
                }
                match parsed {
                    Err(e) => copied.bad.push((row, big.name(col), e.to_string())),
                    Ok(_) if over => {
                        let why = format!(
                            "turns of more than {} MiB once clipped (a text cell keeps at most that)",
                            MAX_CELL_TEXT_BYTES >> 20
                        );
                        copied.bad.push((row, big.name(col), why));
                    }
                    Ok(0) => {}
                    Ok(flags) => copied.repaired.push((row, flags)),
                }
                end
            }
        };
        write(&mut out, &end.delimiter)?;
        let removed = fields.lines - lines_before - end.delimiter_lines();
        if removed > 0 {
            copied.lines_removed.push((row, removed));
        }
    }
    out.flush().map_err(CellsError::Write)?;
    copied.rows = fields.record.saturating_sub(1);
    Ok(copied)
}

/// Writes turns into the copy as a JSON list inside a quoted CSV field,
/// until their text passes `MAX_CELL_TEXT_BYTES` (`over`; the rest of the
/// cell is parsed, not written).
struct TurnWriter<'w, W> {
    out: &'w mut W,
    first: bool,
    error: Option<io::Error>,
    /// Text bytes of the turns written.
    kept: u64,
    over: bool,
}

impl<W: Write> TurnWriter<'_, W> {
    fn turn(&mut self, turn: Turn<'_>) {
        self.kept += turn.map_or(0, |t| t.len() as u64);
        self.over |= self.kept > MAX_CELL_TEXT_BYTES;
        if self.error.is_none() && !self.over {
            if let Err(e) = self.write(turn) {
                self.error = Some(e);
            }
        }
    }

    fn write(&mut self, turn: Turn<'_>) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        let Some(text) = turn else {
            return self.out.write_all(b"null");
        };
        // JSON escapes, then every quote doubled for CSV.
        self.out.write_all(b"\"\"")?;
        let bytes = text.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b != b'"' && b != b'\\' && b >= 0x20 {
                continue;
            }
            self.out.write_all(&bytes[start..i])?;
            match b {
                b'"' => self.out.write_all(b"\\\"\"")?,
                b'\\' => self.out.write_all(b"\\\\")?,
                _ => write!(self.out, "\\u{b:04x}")?,
            }
            start = i + 1;
        }
        self.out.write_all(&bytes[start..])?;
        self.out.write_all(b"\"\"")
    }
}

/// How a field ended.
#[derive(Debug, Default)]
struct FieldEnd {
    /// The bytes that ended it (`,`, `\n`, `\r\n`; none at the end of the file).
    delimiter: Vec<u8>,
    record_end: bool,
    /// Bytes after the closing quote, or a quote never closed.
    malformed: bool,
    /// The first byte of the first sequence that is not UTF-8.
    bad_utf8: Option<u8>,
}

impl FieldEnd {
    fn delimiter_lines(&self) -> u64 {
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
enum Step<'a> {
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
struct Fields<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    state: State,
    /// Index of the current record (0: the header) and field.
    record: u64,
    col: usize,
    at_record_start: bool,
    malformed: bool,
    /// Line breaks (`\n`, `\r\n`, a lone `\r`: Python's csv module's lines)
    /// passed so far, counted only when asked for.
    count_lines: bool,
    lines: u64,
    last_cr: bool,
}

impl<R: Read> Fields<R> {
    fn new(src: R, count_lines: bool) -> Fields<R> {
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
    fn step(&mut self) -> io::Result<Option<Step<'_>>> {
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
    fn skip_field(&mut self) -> io::Result<FieldEnd> {
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
    fn cell_error(&mut self, row: u64, column: &str, what: &str) -> CellsError {
        match self.skip_field() {
            Ok(end) => self.record_error(row, column, what, &end),
            Err(e) => CellsError::Read(e),
        }
    }

    /// `cell_error` once the field is passed (`end`: how it ended).
    fn record_error(&mut self, row: u64, column: &str, what: &str, end: &FieldEnd) -> CellsError {
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
struct Content<'f, R> {
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
    fn new(fields: &'f mut Fields<R>) -> Content<'f, R> {
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
    fn finish(mut self) -> io::Result<FieldEnd> {
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
mod tests {
    use super::*;
    use crate::turns::{clip_long_turns, parse_turn_list, repair, MAX_TURN_BYTES};

    /// A reader that hands out at most `chunk` bytes per read.
    struct Trickle<'a> {
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

    fn trickle(bytes: &[u8], chunk: usize) -> Trickle<'_> {
        Trickle { bytes, chunk }
    }

    type Field = (Vec<u8>, Vec<u8>);

    /// Records as (raw, content) fields; the raw bytes with delimiters.
    fn records(bytes: &[u8], chunk: usize) -> (Vec<Vec<Field>>, Vec<u8>) {
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

    fn limits<'a>(text: &'a [String], read: &'a [String], text_bytes: u64) -> Limits<'a> {
        Limits {
            text_columns: text,
            read_columns: read,
            text_bytes,
            cell_bytes: 12,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// (found, copy, report) with every text cell longer than `text_bytes` streamed.
    fn copy(file: &[u8], text_bytes: u64) -> Result<(BigCells, Vec<u8>, Copied), CellsError> {
        let (text, read) = (names(&["prompt", "response_a"]), names(&["id"]));
        let big = find_big_cells(trickle(file, 3), &limits(&text, &read, text_bytes))?;
        let mut out = Vec::new();
        let copied = copy_clipping(trickle(file, 5), &mut out, &big)?;
        Ok((big, out, copied))
    }

    #[test]
    fn the_copy_holds_the_same_turns_and_every_other_byte() {
        let file = "\u{feff}id,prompt,extra,response_a,prompt\n\
            1,\"[\"\"a\"\", null, \"\"\\ud83d x\"\"]\",\"a very long extra cell\",\"[\"\"q\\\"\"\\\\\\n\\u0001\"\"]\",dup-long-cell\r\n\
            2,\"[\"\"é\"\",\n 3]\",x,\"[]  \n\",y\n\
            3,short,,[],z";
        let (big, out, copied) = copy(file.as_bytes(), 0).unwrap();
        assert_eq!(
            big.header,
            names(&["id", "prompt", "extra", "response_a", "prompt"])
        );
        use ColumnKind::*;
        assert_eq!(big.kinds, vec![Other, Text, Unread, Text, Unread]);
        assert_eq!(
            big.cells,
            vec![
                (0, 1),
                (0, 2),
                (0, 3),
                (0, 4),
                (1, 1),
                (1, 3),
                (2, 1),
                (2, 3)
            ]
        );
        assert_eq!(copied.rows, 3);
        let (orig, _) = records(file.as_bytes(), 7);
        let (recs, _) = records(&out, 7);
        assert_eq!(recs.len(), orig.len());
        for (r, (a, b)) in orig.iter().zip(&recs).enumerate() {
            assert_eq!(a.len(), b.len());
            for (c, (fa, fb)) in a.iter().zip(b).enumerate() {
                let (ta, tb) = (
                    std::str::from_utf8(&fa.1).unwrap(),
                    std::str::from_utf8(&fb.1).unwrap(),
                );
                let is_big = r > 0 && big.cells.contains(&(r as u64 - 1, c));
                match (is_big, big.kinds[c]) {
                    (false, _) => assert_eq!(fa, fb),
                    (true, Other) => unreachable!("an error"),
                    (true, Unread) => assert_eq!(tb, ""),
                    (true, Text) => match parse_turn_list(ta, "<n>") {
                        Ok(want) => assert_eq!(parse_turn_list(tb, "<n>").unwrap().0, want.0),
                        Err(_) => assert!(parse_turn_list(tb, "").is_ok()),
                    },
                }
            }
        }
        assert_eq!(copied.repaired, vec![(0, repair::NULL | repair::SURROGATE)]);
        let bad: Vec<_> = copied
            .bad
            .iter()
            .map(|(r, c, e)| (*r, c.as_str(), e.to_string()))
            .collect();
        let expected = parse_turn_list("[\"é\",\n 3]", "").unwrap_err().to_string();
        let short = parse_turn_list("short", "").unwrap_err().to_string();
        assert_eq!(bad, vec![(1, "prompt", expected), (2, "prompt", short)]);
        // Row 1's prompt held a line break, its response_a another.
        assert_eq!(copied.lines_removed, vec![(1, 1), (1, 1)]);
        // Long text cells only: the long cells of columns not read.
        assert_eq!(
            copy(file.as_bytes(), 1 << 20).unwrap().0.cells,
            vec![(0, 2), (0, 4)]
        );
    }

    #[test]
    fn long_turns_are_clipped_in_the_copy() {
        let long = "€".repeat(MAX_TURN_BYTES / 2) + &"x".repeat(7);
        let cell = format!("[\"{long}\", \"b\"]");
        let file = format!("prompt\n\"{}\"\n", cell.replace('"', "\"\""));
        let (_, out, copied) = copy(file.as_bytes(), 1024).unwrap();
        let (recs, _) = records(&out, 1 << 16);
        let got = parse_turn_list(std::str::from_utf8(&recs[1][0].1).unwrap(), "")
            .unwrap()
            .0;
        let mut want = parse_turn_list(&cell, "").unwrap().0;
        assert_eq!(clip_long_turns(&mut want), repair::CLIPPED);
        assert_eq!(got, want);
        assert_eq!(copied.repaired, vec![(0, repair::CLIPPED)]);
    }

    #[test]
    fn a_cell_past_the_kept_text_is_bad_and_written_no_further() {
        // Short turns adding up to just over MAX_CELL_TEXT_BYTES: none is
        // clipped, the cell is bad, and the copy holds the turns up to it.
        let turn = "t".repeat(64 << 10);
        let n = (MAX_CELL_TEXT_BYTES / turn.len() as u64) as usize + 1;
        let cell = format!("[{}]", vec![format!("\"{turn}\""); n].join(","));
        let file = format!(
            "prompt,response_a\n\"{}\",\"[]\"\n",
            cell.replace('"', "\"\"")
        );
        let (_, out, copied) = copy(file.as_bytes(), 1024).unwrap();
        assert_eq!(copied.bad.len(), 1);
        let (row, column, why) = &copied.bad[0];
        assert_eq!((*row, column.as_str()), (0, "prompt"));
        assert!(
            why.starts_with("turns of more than 16 MiB once clipped"),
            "{why}"
        );
        assert!(copied.repaired.is_empty());
        let (recs, _) = records(&out, 1 << 16);
        let kept = parse_turn_list(std::str::from_utf8(&recs[1][0].1).unwrap(), "")
            .unwrap()
            .0;
        assert_eq!(kept.len(), n - 1);
        assert_eq!(recs[1][1].1, b"[]");
        // One turn fewer fits, and is copied whole.
        let cell = format!("[{}]", vec![format!("\"{turn}\""); n - 1].join(","));
        let file = format!("prompt\n\"{}\"\n", cell.replace('"', "\"\""));
        let (_, _, copied) = copy(file.as_bytes(), 1024).unwrap();
        assert!(copied.bad.is_empty());
    }

    #[test]
    fn errors_name_row_line_and_column() {
        let err = |file: &[u8]| copy(file, 4).unwrap_err().to_string();
        assert_eq!(
            err(b"id,prompt\n1,[]\n\"long\nlong id\",[]\n"),
            "row 1 (line 4), column id: a cell of more than 12 bytes (only the text columns may be longer)"
        );
        assert_eq!(
            err(b"prompt,id\n\"[\"\"ok\xe2\x82\"\"]\",1\n"),
            "row 0 (line 2), column prompt: invalid utf-8 (byte 0xe2)"
        );
        assert_eq!(
            err(b"prompt\n\"[\"\"a\"\"]\n\xff\"\"]\""),
            "row 0 (line 3), column prompt: invalid utf-8 (byte 0xff)"
        );
        assert!(err(b"prompt\n\"[\"\"abc\"\"]\"x\n").contains("after its closing quote"));
        assert!(err(b"prompt\n\"[\"\"abc\"\"]\n").contains("never closed"));
        assert!(err(b"\"a long header\"\n").starts_with("the header: a cell of more than 12"));
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
