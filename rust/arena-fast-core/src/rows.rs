//! Arena rows held in Rust between reading and encoding, and the per-row
//! facts that cleaning, de-duplication and folds decide on.
//!
//! Rows come from Arrow columns (the buffers of a `large_string` column of
//! JSON-list text, as in the Kaggle CSV, or of a `large_list<large_string>`
//! column of turns, validity bitmaps included), so text never becomes
//! Python objects. A row that cannot
//! be parsed is kept as an empty row with its error, so the caller can report
//! it and go on. The normalisation and keys are specified in docs/dataset.md;
//! `arena_fast.reference.rows` is the pure-Python oracle.

use xxhash_rust::xxh3::xxh3_64;

use crate::buffers::{check_offsets, Validity};
use crate::error::{Column, EncodeError};
use crate::pool::in_blocks;
use crate::turns::{parse_turn_list, repair, RowTurns};

/// One Arrow text column, borrowed from its buffers.
#[derive(Clone, Copy)]
pub enum TextColumn<'a> {
    /// One JSON list of turns per row: `data[offsets[i]..offsets[i + 1]]`.
    Json {
        valid: Option<Validity<'a>>,
        offsets: &'a [i64],
        data: &'a [u8],
    },
    /// Turns per row: row i holds strings `list_offsets[i]..list_offsets[i + 1]`,
    /// string j is `data[str_offsets[j]..str_offsets[j + 1]]`.
    Lists {
        valid: Option<Validity<'a>>,
        list_offsets: &'a [i64],
        str_valid: Option<Validity<'a>>,
        str_offsets: &'a [i64],
        data: &'a [u8],
    },
}

impl TextColumn<'_> {
    /// Rows in the column.
    pub fn len(&self) -> usize {
        let offsets = match self {
            TextColumn::Json { offsets, .. } => offsets,
            TextColumn::Lists { list_offsets, .. } => list_offsets,
        };
        offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check that every offset lies inside its buffer and never decreases,
    /// and that the bitmaps cover the rows and strings, so reading a row
    /// cannot go out of bounds.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.len();
        match *self {
            TextColumn::Json {
                valid,
                offsets,
                data,
            } => {
                check_offsets("offsets", offsets, data.len())?;
                if valid.is_some_and(|v| !v.fits(n)) {
                    return Err("validity length differs from the rows".into());
                }
            }
            TextColumn::Lists {
                valid,
                list_offsets,
                str_valid,
                str_offsets,
                data,
            } => {
                let strings = str_offsets.len().saturating_sub(1);
                check_offsets("list offsets", list_offsets, strings)?;
                check_offsets("string offsets", str_offsets, data.len())?;
                if valid.is_some_and(|v| !v.fits(n)) {
                    return Err("validity length differs from the rows".into());
                }
                if str_valid.is_some_and(|v| !v.fits(strings)) {
                    return Err("string validity length differs from the strings".into());
                }
            }
        }
        Ok(())
    }

    /// The turns of row `i` and the repairs made; `Err` for a cell that is
    /// not a JSON list of strings (message with the character position).
    fn turns(&self, i: usize, null_text: &str) -> Result<(Vec<String>, u8), String> {
        fn text<'d>(
            data: &'d [u8],
            start: i64,
            end: i64,
            flags: &mut u8,
        ) -> std::borrow::Cow<'d, str> {
            let bytes = &data[start as usize..end as usize];
            match std::str::from_utf8(bytes) {
                Ok(s) => std::borrow::Cow::Borrowed(s),
                Err(_) => {
                    // Arrow strings are UTF-8; anything else is repaired.
                    *flags |= repair::SURROGATE;
                    String::from_utf8_lossy(bytes)
                }
            }
        }
        let (TextColumn::Json { valid, .. } | TextColumn::Lists { valid, .. }) = *self;
        if valid.is_some_and(|v| !v.is_valid(i)) {
            // A null cell: no turns, flagged as repaired.
            return Ok((Vec::new(), repair::NULL));
        }
        match *self {
            TextColumn::Json { offsets, data, .. } => {
                let mut flags = 0;
                let cell = text(data, offsets[i], offsets[i + 1], &mut flags);
                let (turns, parsed) =
                    parse_turn_list(&cell, null_text).map_err(|e| e.to_string())?;
                Ok((turns, flags | parsed))
            }
            TextColumn::Lists {
                list_offsets,
                str_valid,
                str_offsets,
                data,
                ..
            } => {
                let mut flags = 0;
                let (lo, hi) = (list_offsets[i] as usize, list_offsets[i + 1] as usize);
                let turns = (lo..hi)
                    .map(|j| {
                        if str_valid.is_some_and(|v| !v.is_valid(j)) {
                            flags |= repair::NULL;
                            null_text.to_owned()
                        } else {
                            text(data, str_offsets[j], str_offsets[j + 1], &mut flags).into_owned()
                        }
                    })
                    .collect();
                Ok((turns, flags))
            }
        }
    }
}

/// Why a row could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub column: Column,
    pub message: String,
}

/// Parsed rows; a row with an error is empty and carries the error.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    pub rows: Vec<RowTurns>,
    pub errors: Vec<Option<RowError>>,
}

impl Rows {
    /// Read the three text columns (prompt, response A, response B).
    /// `threads` > 1 parses blocks of rows on that many threads (the result
    /// is the same for any count).
    pub fn from_columns(
        cols: [TextColumn<'_>; 3],
        null_text: &str,
        threads: usize,
    ) -> Result<Rows, String> {
        for (c, col) in cols.iter().enumerate() {
            col.validate()
                .map_err(|e| format!("column {}: {e}", Column::ALL[c].name()))?;
        }
        let n = cols[0].len();
        if cols[1].len() != n || cols[2].len() != n {
            let (prompt, a, b) = (n, cols[1].len(), cols[2].len());
            return Err(EncodeError::ColumnLengths { prompt, a, b }.to_string());
        }
        let parts = in_blocks(n, BLOCK, threads, |range| {
            let mut part = Rows {
                rows: Vec::with_capacity(range.len()),
                errors: Vec::with_capacity(range.len()),
            };
            for i in range {
                part.push_row(i, &cols, null_text);
            }
            part
        });
        let mut out = Rows {
            rows: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
        };
        for part in parts {
            out.rows.extend(part.rows);
            out.errors.extend(part.errors);
        }
        Ok(out)
    }

    fn push_row(&mut self, i: usize, cols: &[TextColumn<'_>; 3], null_text: &str) {
        let mut fields: [Vec<String>; 3] = Default::default();
        let mut repairs = 0;
        for (c, col) in cols.iter().enumerate() {
            match col.turns(i, null_text) {
                Ok((turns, flags)) => {
                    fields[c] = turns;
                    repairs |= flags;
                }
                Err(message) => {
                    self.rows.push(RowTurns::default());
                    self.errors.push(Some(RowError {
                        column: Column::ALL[c],
                        message,
                    }));
                    return;
                }
            }
        }
        let [p, a, b] = fields;
        self.rows.push(RowTurns::new(p, a, b, repairs));
        self.errors.push(None);
    }

    /// Check that every entry of `idx` is one of these rows.
    pub fn check_index(&self, idx: &[i64]) -> Result<(), EncodeError> {
        let rows = self.len();
        match idx.iter().find(|&&i| i < 0 || i as usize >= rows) {
            Some(&index) => Err(EncodeError::Index { index, rows }),
            None => Ok(()),
        }
    }

    pub fn from_turns(rows: Vec<RowTurns>) -> Rows {
        let errors = vec![None; rows.len()];
        Rows { rows, errors }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The facts cleaning and de-duplication decide on, per row.
    /// On `threads` threads when > 1 (the same result for any count).
    pub fn features(&self, threads: usize) -> Features {
        let parts = in_blocks(self.len(), BLOCK, threads, |range| self.features_of(range));
        let mut f = Features::with_capacity(self.len());
        for part in parts {
            f.extend(part);
        }
        f
    }

    fn features_of(&self, range: std::ops::Range<usize>) -> Features {
        let mut f = Features::with_capacity(range.len());
        let mut buf = Vec::new();
        for (row, err) in self.rows[range.clone()].iter().zip(&self.errors[range]) {
            let mut chars = 0i64;
            let mut empty = [true; 3];
            let keys: [u64; 3] = [0, 1, 2].map(|c| {
                let stats = normalize_turns(&row.fields[c], &mut buf);
                chars += stats.chars as i64;
                empty[c] = stats.blank;
                xxh3_64(&buf)
            });
            f.turns.push(row.n_turns() as i32);
            f.repairs.push(row.repairs);
            f.empty_prompt.push(empty[0]);
            f.empty_a.push(empty[1]);
            f.empty_b.push(empty[2]);
            f.identical.push(keys[1] == keys[2]);
            f.prompt_key.push(keys[0]);
            f.a_key.push(keys[1]);
            f.b_key.push(keys[2]);
            f.pair_key.push(pair_key(keys[0], keys[1], keys[2]));
            f.chars.push(chars);
            f.error.push(err.is_some());
        }
        f
    }
}

/// Per-row facts, one vector per field (handed to numpy as they are).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Features {
    pub turns: Vec<i32>,
    pub repairs: Vec<u8>,
    pub empty_prompt: Vec<bool>,
    pub empty_a: Vec<bool>,
    pub empty_b: Vec<bool>,
    pub identical: Vec<bool>,
    pub prompt_key: Vec<u64>,
    pub a_key: Vec<u64>,
    pub b_key: Vec<u64>,
    pub pair_key: Vec<u64>,
    pub chars: Vec<i64>,
    pub error: Vec<bool>,
}

impl Features {
    fn extend(&mut self, other: Features) {
        self.turns.extend(other.turns);
        self.repairs.extend(other.repairs);
        self.empty_prompt.extend(other.empty_prompt);
        self.empty_a.extend(other.empty_a);
        self.empty_b.extend(other.empty_b);
        self.identical.extend(other.identical);
        self.prompt_key.extend(other.prompt_key);
        self.a_key.extend(other.a_key);
        self.b_key.extend(other.b_key);
        self.pair_key.extend(other.pair_key);
        self.chars.extend(other.chars);
        self.error.extend(other.error);
    }

    fn with_capacity(n: usize) -> Features {
        Features {
            turns: Vec::with_capacity(n),
            repairs: Vec::with_capacity(n),
            empty_prompt: Vec::with_capacity(n),
            empty_a: Vec::with_capacity(n),
            empty_b: Vec::with_capacity(n),
            identical: Vec::with_capacity(n),
            prompt_key: Vec::with_capacity(n),
            a_key: Vec::with_capacity(n),
            b_key: Vec::with_capacity(n),
            pair_key: Vec::with_capacity(n),
            chars: Vec::with_capacity(n),
            error: Vec::with_capacity(n),
        }
    }
}

/// Rows per parallel block.
const BLOCK: usize = 256;

/// What one pass over a field's turns saw besides the normalised text.
pub struct TextStats {
    /// Characters in the original turns.
    pub chars: usize,
    /// Every turn is blank (only White_Space), or there are none.
    pub blank: bool,
}

/// One text normalised and appended to `out`: runs of Unicode White_Space
/// (`char::is_whitespace`) become one space, the ends are trimmed, and each
/// character is lower-cased on its own (`char::to_lowercase`, no context).
/// ASCII takes a byte-wise path. Returns the characters read and whether the
/// text was blank.
pub fn normalize_into(text: &str, out: &mut Vec<u8>) -> (usize, bool) {
    if text.is_ascii() {
        return normalize_ascii(text.as_bytes(), out);
    }
    let bytes = text.as_bytes();
    let mut runs = Collapse::default();
    let mut chars = 0;
    let mut i = 0;
    out.reserve(bytes.len());
    while i < bytes.len() {
        chars += 1;
        let b = bytes[i];
        if b < 0x80 {
            i += 1;
            if is_ascii_space(b) {
                runs.space();
            } else {
                runs.text(out, &[b.to_ascii_lowercase()]);
            }
            continue;
        }
        // A multi-byte character: `i` is on a char boundary of a valid str.
        let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
        i += c.len_utf8();
        if c.is_whitespace() {
            runs.space();
            continue;
        }
        let mut tmp = [0u8; 4];
        for lc in c.to_lowercase() {
            runs.text(out, lc.encode_utf8(&mut tmp).as_bytes());
        }
    }
    (chars, !runs.any)
}

/// Whitespace collapsing: a space is written only between two pieces of text.
#[derive(Default)]
struct Collapse {
    /// Whitespace was seen since the last text, after some text.
    pending: bool,
    /// Some text was written.
    any: bool,
}

impl Collapse {
    fn space(&mut self) {
        self.pending = self.any;
    }

    fn text(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        if self.pending {
            out.push(b' ');
            self.pending = false;
        }
        self.any = true;
        out.extend_from_slice(bytes);
    }
}

/// `normalize_into` for ASCII text (most of it): one table lookup per byte
/// and no branch on the character class beyond "space or not".
fn normalize_ascii(bytes: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
    // The text starts after `out.len()`; `written` counts what this text added.
    let base = out.len();
    out.resize(base + bytes.len(), 0);
    let dst = &mut out[base..];
    let mut w = 0;
    // `space` is true right after a whitespace byte that followed text.
    let mut last_space = true;
    for &b in bytes {
        let c = LOWER_OR_SPACE[b as usize];
        if c == b' ' {
            if !last_space {
                dst[w] = b' ';
                w += 1;
                last_space = true;
            }
        } else {
            dst[w] = c;
            w += 1;
            last_space = false;
        }
    }
    // A trailing space from the last run is trimmed.
    if w > 0 && dst[w - 1] == b' ' && last_space {
        w -= 1;
    }
    out.truncate(base + w);
    (bytes.len(), w == 0)
}

/// ASCII bytes lower-cased, with every ASCII White_Space byte as b' '.
const LOWER_OR_SPACE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if is_ascii_space(b) {
            b' '
        } else {
            b.to_ascii_lowercase()
        };
        i += 1;
    }
    t
};

/// ASCII White_Space: tab, line feed, vertical tab, form feed, carriage
/// return, space.
#[inline]
const fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// A field's turns, each normalised, joined by U+001F, into `out` (cleared).
pub fn normalize_turns(turns: &[String], out: &mut Vec<u8>) -> TextStats {
    out.clear();
    let mut stats = TextStats {
        chars: 0,
        blank: true,
    };
    for (t, text) in turns.iter().enumerate() {
        if t > 0 {
            out.push(0x1f);
        }
        let (chars, blank) = normalize_into(text, out);
        stats.chars += chars;
        stats.blank &= blank;
    }
    stats
}

/// The key of a (prompt, {A, B}) pair: the same for a row and its swap.
pub fn pair_key(prompt: u64, a: u64, b: u64) -> u64 {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&prompt.to_le_bytes());
    bytes[8..16].copy_from_slice(&a.min(b).to_le_bytes());
    bytes[16..].copy_from_slice(&a.max(b).to_le_bytes());
    xxh3_64(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_col<'a>(offsets: &'a [i64], data: &'a [u8]) -> TextColumn<'a> {
        TextColumn::Json {
            valid: None,
            offsets,
            data,
        }
    }

    fn offsets_of(cells: &[&str]) -> (Vec<i64>, Vec<u8>) {
        let mut offsets = vec![0i64];
        let mut data = Vec::new();
        for c in cells {
            data.extend_from_slice(c.as_bytes());
            offsets.push(data.len() as i64);
        }
        (offsets, data)
    }

    #[test]
    fn normalisation_collapses_space_and_case() {
        let mut s = Vec::new();
        let stats = normalize_turns(&["  Hello\n\tWORLD  ".into(), "ΣÉ x".into()], &mut s);
        assert_eq!(s, "hello world\u{1f}σé x".as_bytes());
        assert_eq!((stats.chars, stats.blank), (20, false));
        let stats = normalize_turns(&[" \u{3000} ".into(), "".into()], &mut s);
        assert_eq!(s, b"\x1f");
        assert!(stats.blank);
    }

    #[test]
    fn features_flag_empty_identical_and_swap_invariant_pairs() {
        let (po, pd) = offsets_of(&[r#"["Hi"]"#, r#"["Hi"]"#, r#"["q"]"#, "not json"]);
        let (ao, ad) = offsets_of(&[r#"["x"]"#, r#"["  "]"#, r#"["Same"]"#, r#"["a"]"#]);
        let (bo, bd) = offsets_of(&[r#"["y"]"#, r#"[null]"#, r#"["same "]"#, r#"["b"]"#]);
        let rows = Rows::from_columns(
            [json_col(&po, &pd), json_col(&ao, &ad), json_col(&bo, &bd)],
            "",
            1,
        )
        .unwrap();
        let f = rows.features(1);
        assert_eq!(f.error, [false, false, false, true]);
        assert_eq!(rows.errors[3].as_ref().unwrap().column, Column::Prompt);
        assert_eq!(f.empty_a, [false, true, false, true]);
        assert_eq!(f.empty_b, [false, true, false, true]);
        assert_eq!(f.repairs[1], repair::NULL);
        assert_eq!(f.identical, [false, true, true, true]);
        assert_eq!(f.prompt_key[0], f.prompt_key[1]);
        // Swapping A and B keeps the pair key.
        assert_eq!(
            pair_key(f.prompt_key[0], f.b_key[0], f.a_key[0]),
            f.pair_key[0]
        );
        assert_ne!(f.pair_key[0], f.pair_key[1]);
    }

    #[test]
    fn list_columns_with_nulls_and_bad_offsets() {
        let data = b"helloworld";
        let str_offsets = [0i64, 5, 10, 10];
        // Strings 0 and 1 valid, string 2 null.
        let str_bits = [0b011u8];
        let str_valid = Validity::new(&str_bits, 0, 3);
        let list_offsets = [0i64, 2, 3];
        let col = TextColumn::Lists {
            valid: None,
            list_offsets: &list_offsets,
            str_valid,
            str_offsets: &str_offsets,
            data,
        };
        let rows = Rows::from_columns([col, col, col], "<null>", 1).unwrap();
        assert_eq!(rows.rows[0].fields[0], vec!["hello", "world"]);
        assert_eq!(rows.rows[1].fields[1], vec!["<null>"]);
        assert_eq!(rows.rows[1].repairs, repair::NULL);
        let bad = [0i64, 2, 9];
        let col = TextColumn::Lists {
            valid: None,
            list_offsets: &bad,
            str_valid: None,
            str_offsets: &str_offsets,
            data,
        };
        assert!(Rows::from_columns([col, col, col], "", 1).is_err());
    }

    #[test]
    fn null_cells_follow_the_bitmap_from_its_offset() {
        let (offsets, data) = offsets_of(&[r#"["a"]"#, r#"["b"]"#, r#"["c"]"#]);
        // Bits 3, 4, 5 of the byte: rows 0 and 2 valid, row 1 null.
        let bits = [0b0010_1000u8];
        let col = TextColumn::Json {
            valid: Validity::new(&bits, 3, 3),
            offsets: &offsets,
            data: &data,
        };
        let rows = Rows::from_columns([col, col, col], "", 1).unwrap();
        let firsts: Vec<_> = rows.rows.iter().map(|r| r.fields[0].clone()).collect();
        assert_eq!(firsts, [vec!["a"], vec![], vec!["c"]]);
        assert_eq!(rows.rows[1].repairs, repair::NULL);
        // A bitmap that does not reach the last row is refused.
        let short = TextColumn::Json {
            valid: Some(Validity {
                bits: &bits,
                offset: 6,
                len: 3,
            }),
            offsets: &offsets,
            data: &data,
        };
        let err = Rows::from_columns([short, col, col], "", 1).unwrap_err();
        assert!(err.starts_with("column prompt: validity"), "{err}");
    }
}
