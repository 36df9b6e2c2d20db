//! Kaggle CSV cells too large to materialise (docs/dataset.md, "Sources",
//! kaggle). One streaming pass finds them (`find_big_cells`); only when there
//! are some, a second pass writes a copy of the file (`copy_clipping`) in
//! which each is replaced: a text cell by the same JSON list with its long
//! turns clipped while they are parsed (`turn_stream`), a cell of a column
//! the reader does not read by an empty one. A big cell in another column
//! the reader reads (id, model, winner) is an error. Every other byte is
//! copied as it is, so a CSV reader reads the copy as it would read the
//! file, in memory bounded by the clip instead of by the cell. The file is
//! read field by field by `csv_fields`. No I/O here: the callers hand in a
//! reader and a writer.

use std::io::{self, Read, Write};

use crate::csv_fields::{Content, Fields, Step};
use crate::error::CellsError;
use crate::turn_stream::{stream_turn_list, Turn};
use crate::turns::MAX_TURN_BYTES;

/// The most text a streamed cell keeps once its turns are clipped: 16 whole
/// clipped turns. A cell of more (a gigabyte of short turns) is a bad cell,
/// so that what the CSV reader then holds is bounded by this, not by the
/// cell; no conversation the encoder can use comes near it.
pub const MAX_CELL_TEXT_BYTES: u64 = 16 * MAX_TURN_BYTES as u64;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_fields::tests::{records, trickle};
    use crate::turns::{clip_long_turns, parse_turn_list, repair, MAX_TURN_BYTES};

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
}
