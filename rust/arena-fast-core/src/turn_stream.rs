//! The turns of a JSON-list cell too large to hold in memory, parsed from a
//! stream of bytes and clipped while they are read (docs/dataset.md, "Sources",
//! kaggle). The result is the one `turns::parse_turn_list` followed by
//! `turns::clip_long_turns` gives on the whole cell: the same turns, flags
//! and errors (message and character position), in memory bounded by the
//! clip (`MAX_TURN_BYTES` and a little per turn), not by the cell.

use crate::error::TurnsError;
use crate::turns::{clip_long_turns, hex_value, repair, CLIP_KEEP_BYTES, MAX_TURN_BYTES};

/// The bytes of one cell, read front to back with a little lookahead.
pub trait CellSource {
    /// The byte `k` places ahead (0: the next one); None past the cell's end.
    /// `k` is at most 5.
    fn peek_at(&mut self, k: usize) -> Option<u8>;
    /// Move past the next `n` bytes (all peeked before).
    fn bump(&mut self, n: usize);
    /// Characters moved past so far (error positions count characters).
    fn chars(&self) -> usize;
    /// Move past the string bytes at hand that need no parsing (no `"`,
    /// `\\` or control character) and return them; empty when the next
    /// byte is one of those or the cell ended.
    fn plain(&mut self) -> &[u8];
}

/// Whether a byte ends a run of plain string bytes.
pub fn is_special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// Characters in UTF-8 `bytes` (those that are not continuation bytes).
pub fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| !is_continuation(b)).count()
}

/// One parsed turn: its (clipped) text, or `None` for a JSON `null`.
pub type Turn<'a> = Option<&'a str>;

/// Parse the cell of `src` as a JSON list of strings and nulls, handing
/// each turn to `sink` as soon as it is read, long ones already clipped.
/// Returns the repair flags: `NULL` for a null (given as `None`, the caller
/// substitutes), `SURROGATE`, `CLIPPED`. On error the turns handed so far
/// are a prefix of the list.
pub fn stream_turn_list<S: CellSource>(
    src: &mut S,
    sink: &mut impl FnMut(Turn<'_>),
) -> Result<u8, TurnsError> {
    let mut parser = Parser { src, flags: 0 };
    parser.list(sink)?;
    Ok(parser.flags)
}

/// A turn's text while it is read: whole up to the clip, then its head and
/// the latest bytes only.
struct ClipBuffer {
    head: Vec<u8>,
    tail: Vec<u8>,
    /// Whether `tail` lost bytes at its front (the text is past the clip).
    trimmed: bool,
}

/// What `ClipBuffer` keeps at the end: `CLIP_KEEP_BYTES` and room to find a
/// character boundary before them (a character is at most 4 bytes).
const TAIL_KEEP: usize = CLIP_KEEP_BYTES + 4;

impl ClipBuffer {
    fn new() -> ClipBuffer {
        ClipBuffer {
            head: Vec::new(),
            tail: Vec::new(),
            trimmed: false,
        }
    }

    /// More bytes of the text (the text is UTF-8 as a whole, not each piece).
    fn push(&mut self, mut bytes: &[u8]) {
        if self.tail.is_empty() {
            // The head ends at the first character boundary past CLIP_KEEP_BYTES.
            let mut n = (CLIP_KEEP_BYTES + 1)
                .saturating_sub(self.head.len())
                .min(bytes.len());
            while n < bytes.len()
                && self.head.len() + n > CLIP_KEEP_BYTES
                && is_continuation(bytes[n])
            {
                n += 1;
            }
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() >= 2 * TAIL_KEEP {
            self.tail.drain(..self.tail.len() - TAIL_KEEP);
            self.trimmed = true;
        }
    }

    /// The text as `clip_long_turns` leaves it, and its flag. A trimmed
    /// text is longer than the clip: the head and the last whole characters
    /// of `tail` (at least `CLIP_KEEP_BYTES`) clip to the same text.
    fn finish(mut self) -> (String, u8) {
        if self.trimmed {
            let mut start = self.tail.len() - (CLIP_KEEP_BYTES + 3);
            while self.tail.get(start).is_some_and(|&b| is_continuation(b)) {
                start += 1;
            }
            self.head.extend_from_slice(&self.tail[start..]);
            debug_assert!(self.head.len() > MAX_TURN_BYTES);
        } else {
            self.head.extend_from_slice(&self.tail);
        }
        // Whole characters only reach here; never panic on the odd case.
        let text = String::from_utf8(self.head)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let mut turns = [text];
        let flags = clip_long_turns(&mut turns);
        let [text] = turns;
        (text, flags)
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// `turns::Parser` over a stream: the same grammar, repairs and messages.
struct Parser<'s, S> {
    src: &'s mut S,
    flags: u8,
}

impl<S: CellSource> Parser<'_, S> {
    fn fail<T>(&self, message: &str) -> Result<T, TurnsError> {
        Err(TurnsError {
            position: self.src.chars(),
            message: message.to_owned(),
        })
    }

    fn peek(&mut self) -> Option<u8> {
        self.src.peek_at(0)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.src.bump(1);
        }
    }

    fn is_null(&mut self) -> bool {
        (0..4).all(|k| self.src.peek_at(k) == Some(b"null"[k]))
    }

    fn list(&mut self, sink: &mut impl FnMut(Turn<'_>)) -> Result<(), TurnsError> {
        self.skip_ws();
        match self.peek() {
            None => return self.fail("empty cell, expected a JSON list"),
            Some(b'[') => self.src.bump(1),
            Some(_) => return self.fail("expected '[' (a JSON list of strings)"),
        }
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.src.bump(1);
        } else {
            loop {
                self.skip_ws();
                match self.peek() {
                    Some(b'"') => {
                        self.src.bump(1);
                        let (text, flags) = self.string()?;
                        self.flags |= flags;
                        sink(Some(&text));
                    }
                    Some(b'n') if self.is_null() => {
                        self.src.bump(4);
                        self.flags |= repair::NULL;
                        sink(None);
                    }
                    None => return self.fail("unexpected end of cell inside the list"),
                    Some(_) => return self.fail("expected a string or null as list element"),
                }
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.src.bump(1),
                    Some(b']') => {
                        self.src.bump(1);
                        break;
                    }
                    None => return self.fail("unexpected end of cell, expected ',' or ']'"),
                    Some(_) => return self.fail("expected ',' or ']'"),
                }
            }
        }
        self.skip_ws();
        if self.peek().is_some() {
            return self.fail("unexpected text after the closing ']'");
        }
        Ok(())
    }

    /// A string body (just after the opening quote), clipped, and its flag.
    fn string(&mut self) -> Result<(String, u8), TurnsError> {
        let mut text = ClipBuffer::new();
        loop {
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.src.bump(1);
                    return Ok(text.finish());
                }
                Some(b'\\') => {
                    self.src.bump(1);
                    self.escape(&mut text)?;
                }
                Some(c) if c < 0x20 => return self.fail("raw control character inside a string"),
                Some(_) => text.push(self.src.plain()),
            }
        }
    }

    fn escape(&mut self, text: &mut ClipBuffer) -> Result<(), TurnsError> {
        let Some(c) = self.peek() else {
            return self.fail("unterminated escape");
        };
        let plain = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                self.src.bump(1);
                let unit = self.hex4()?;
                return self.code_unit(unit, text);
            }
            _ => return self.fail("invalid escape"),
        };
        self.src.bump(1);
        text.push(&[plain as u8]);
        Ok(())
    }

    /// The 4 bytes ahead, when the cell has them.
    fn ahead4(&mut self, from: usize) -> Option<[u8; 4]> {
        let mut digits = [0u8; 4];
        for (k, d) in digits.iter_mut().enumerate() {
            *d = self.src.peek_at(from + k)?;
        }
        Some(digits)
    }

    fn hex4(&mut self) -> Result<u16, TurnsError> {
        let Some(digits) = self.ahead4(0) else {
            return self.fail("truncated \\u escape");
        };
        let Some(value) = hex_value(&digits) else {
            return self.fail("invalid hex digit in \\u escape");
        };
        self.src.bump(4);
        Ok(value)
    }

    /// `turns::Parser::code_unit`: a high surrogate pairs with an
    /// immediately following `\uDC00..\uDFFF`; anything unpaired is U+FFFD.
    fn code_unit(&mut self, unit: u16, text: &mut ClipBuffer) -> Result<(), TurnsError> {
        match unit {
            0xD800..=0xDBFF => {
                let next_is_low = self.src.peek_at(0) == Some(b'\\')
                    && self.src.peek_at(1) == Some(b'u')
                    && self
                        .ahead4(2)
                        .and_then(|h| {
                            let h = std::str::from_utf8(&h).ok()?;
                            u16::from_str_radix(h, 16).ok()
                        })
                        .is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                if next_is_low {
                    self.src.bump(2);
                    let low = self.hex4()?;
                    let code = 0x10000 + (((unit as u32) - 0xD800) << 10) + ((low as u32) - 0xDC00);
                    push_char(text, char::from_u32(code).unwrap_or('\u{FFFD}'));
                } else {
                    self.flags |= repair::SURROGATE;
                    push_char(text, '\u{FFFD}');
                }
            }
            0xDC00..=0xDFFF => {
                self.flags |= repair::SURROGATE;
                push_char(text, '\u{FFFD}');
            }
            _ => push_char(text, char::from_u32(unit as u32).unwrap_or('\u{FFFD}')),
        }
        Ok(())
    }
}

fn push_char(text: &mut ClipBuffer, c: char) {
    text.push(c.encode_utf8(&mut [0; 4]).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turns::parse_turn_list;

    /// A whole cell in memory as a `CellSource`.
    struct SliceSource<'a> {
        bytes: &'a [u8],
        pos: usize,
        chars: usize,
    }

    impl<'a> SliceSource<'a> {
        fn new(cell: &'a str) -> SliceSource<'a> {
            SliceSource {
                bytes: cell.as_bytes(),
                pos: 0,
                chars: 0,
            }
        }
    }

    impl CellSource for SliceSource<'_> {
        fn peek_at(&mut self, k: usize) -> Option<u8> {
            self.bytes.get(self.pos + k).copied()
        }

        fn bump(&mut self, n: usize) {
            let end = (self.pos + n).min(self.bytes.len());
            self.chars += count_chars(&self.bytes[self.pos..end]);
            self.pos = end;
        }

        fn chars(&self) -> usize {
            self.chars
        }

        fn plain(&mut self) -> &[u8] {
            // Short runs, to meet every way a turn can be cut.
            let rest = &self.bytes[self.pos..];
            let n = rest.iter().take(7).take_while(|&&b| !is_special(b)).count();
            self.chars += count_chars(&rest[..n]);
            self.pos += n;
            &rest[..n]
        }
    }

    /// Turns and flags by streaming (nulls as `null_text`).
    fn streamed(cell: &str, null_text: &str) -> Result<(Vec<String>, u8), TurnsError> {
        let mut turns = Vec::new();
        let flags = stream_turn_list(&mut SliceSource::new(cell), &mut |t: Turn<'_>| {
            turns.push(t.unwrap_or(null_text).to_owned())
        })?;
        Ok((turns, flags))
    }

    /// What the whole-cell path gives: parse, then clip.
    fn whole(cell: &str, null_text: &str) -> Result<(Vec<String>, u8), TurnsError> {
        let (mut turns, flags) = parse_turn_list(cell, null_text)?;
        let clipped = clip_long_turns(&mut turns);
        Ok((turns, flags | clipped))
    }

    fn same(cell: &str) {
        assert_eq!(streamed(cell, "<n>"), whole(cell, "<n>"), "cell {cell:?}");
    }

    #[test]
    fn small_cells_match_the_whole_cell_parser() {
        let cells = [
            r#"["a","b"]"#,
            " [ ] ",
            r#"["x\/y\n\"q\"\t\b\f\r\\"]"#,
            r#"[null, "b", null]"#,
            r#"["\ud83d\ude00", "a\ud83db", "\ude00\ud83d", "\ud83d\u0041", "\ud83d"]"#,
            r#"["\ud83d\u+dc0"]"#,
            r#"["é€😀", "\u00e9"]"#,
            r#"["ok", 3]"#,
            "[\"é\", x]",
            "",
            "   ",
            "[\"a\"",
            "[\"a\"] x",
            "[\"a\\q\"]",
            "[\"a\nb\"]",
            "[\"a\",]",
            "[\"a\" \"b\"]",
            "[nul]",
            "[nul",
            "[\"\\u12\"]",
            "[\"\\u12",
            "[\"\\ud83d\\u12",
            "[\"\\",
            "[\"abc",
            "{}",
            "[\"é\"] é",
        ];
        for cell in cells {
            same(cell);
        }
    }

    #[test]
    fn long_turns_are_clipped_exactly_as_clip_long_turns() {
        let k = CLIP_KEEP_BYTES;
        // Around the clip, with 1-, 2-, 3- and 4-byte characters straddling
        // both cuts, escaped and not.
        let texts = [
            "x".repeat(MAX_TURN_BYTES),
            "x".repeat(MAX_TURN_BYTES + 1),
            format!("{}{}z", "a".repeat(k - 1), "€".repeat(k)),
            format!("{}{}", "é".repeat(k / 2 + 1), "😀".repeat(k / 3)),
            "😀".repeat(3 * k / 4 + 7),
            format!("{}{}", "b".repeat(3 * k + 11), "€".repeat(5)),
            format!("{}{}", "€".repeat(k), "b".repeat(2 * k + 9)),
            // A long, trimmed turn whose 4-byte character ends exactly at
            // the tail's cut (the head's boundary off by one breaks it).
            format!("{}😀{}", "a".repeat(3 * k), "a".repeat(k)),
        ];
        for text in &texts {
            for escaped in [false, true] {
                let body = if escaped {
                    serde_json::to_string(text).unwrap()
                } else {
                    format!("\"{text}\"")
                };
                let cell = format!("[\"short\", {body}, null, {body}]");
                let got = streamed(&cell, "").unwrap();
                assert_eq!(got, whole(&cell, "").unwrap());
                assert_eq!(got.1 & repair::CLIPPED != 0, text.len() > MAX_TURN_BYTES);
            }
        }
        // Escapes that decode across the cuts: \u escapes and surrogate pairs.
        let unit = r#"\u20ac\ud83d\ude00\n"#; // 3 + 4 + 1 bytes decoded
        let cell = format!("[\"{}\"]", unit.repeat(k / 4));
        assert_eq!(streamed(&cell, "").unwrap(), whole(&cell, "").unwrap());
    }

    #[test]
    fn random_cells_match_the_whole_cell_parser() {
        // Cells from pieces that meet at every parser state.
        let pieces = [
            "[", "]", ",", " ", "\n", "\"", "\\", "\\u", "d83d", "dc00", "\\ud83d", "\\ude00",
            "\\u00e9", "null", "nul", "x", "é", "😀", "\\n", "\\q", "\u{1}", "0", "+dc0",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let n = (next() % 12) as usize;
            let mut cell = String::from(if next() % 4 == 0 { "" } else { "[\"" });
            for _ in 0..n {
                cell.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            same(&cell);
        }
    }
}
