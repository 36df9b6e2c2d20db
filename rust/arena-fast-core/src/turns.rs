//! A row of an arena file as turns (`RowTurns`): parsing the JSON-list cells
//! of the Kaggle CSV and the repairs every reader must make (nulls, lone
//! surrogates, ragged turn lists, overlong turns), each recorded as a flag
//! rather than done silently.

use crate::error::{Column, EncodeError, TurnsError};

/// Repairs applied to a row; a bit set so rows can carry several.
pub mod repair {
    /// A `null` / `None` turn was replaced by the encoder's `null_text`.
    pub const NULL: u8 = 1;
    /// A lone UTF-16 surrogate escape was replaced by U+FFFD.
    pub const SURROGATE: u8 = 2;
    /// Turn lists of different lengths were padded with empty turns.
    pub const RAGGED: u8 = 4;
    /// A turn longer than `MAX_TURN_BYTES` kept only its head and tail.
    pub const CLIPPED: u8 = 8;
}

/// The longest turn text tokenized whole. A longer one (a pasted log, a
/// file, garbage) keeps its first and last `CLIP_KEEP_BYTES`: tokenizing
/// 100 MB takes gigabytes (BPE holds ~100 bytes per character of a word) and
/// no budget keeps more than a few thousand tokens of it anyway. Head and
/// tail each hold far more than any `max_length` of tokens, so head/tail
/// truncation keeps the same tokens as without the clip (except across
/// the seam).
pub const MAX_TURN_BYTES: usize = 1 << 20;
/// What a clipped turn keeps at each end (rounded to char boundaries).
pub const CLIP_KEEP_BYTES: usize = MAX_TURN_BYTES / 2;

/// Clip every turn longer than `MAX_TURN_BYTES` to its head and tail.
/// Returns `repair::CLIPPED` when anything was clipped.
pub fn clip_long_turns(turns: &mut [String]) -> u8 {
    let mut flags = 0;
    for text in turns.iter_mut().filter(|t| t.len() > MAX_TURN_BYTES) {
        let mut head = CLIP_KEEP_BYTES;
        while !text.is_char_boundary(head) {
            head -= 1;
        }
        let mut tail = text.len() - CLIP_KEEP_BYTES;
        while !text.is_char_boundary(tail) {
            tail += 1;
        }
        let mut clipped = String::with_capacity(head + text.len() - tail);
        clipped.push_str(&text[..head]);
        clipped.push_str(&text[tail..]);
        *text = clipped;
        flags = repair::CLIPPED;
    }
    flags
}

/// Parse one cell holding a JSON list of strings and nulls, e.g.
/// `["Hi", null, "\ud83d\ude00"]`. Nulls become `null_text`; lone surrogate
/// escapes become U+FFFD. Returns the turns and the repair flags.
pub fn parse_turn_list(cell: &str, null_text: &str) -> Result<(Vec<String>, u8), TurnsError> {
    let mut parser = Parser {
        src: cell.as_bytes(),
        cell,
        pos: 0,
        flags: 0,
    };
    let turns = parser.list(null_text)?;
    Ok((turns, parser.flags))
}

/// Pad the three turn lists of a row to one length with empty turns.
/// Returns `repair::RAGGED` when anything was padded.
pub fn pad_ragged(prompt: &mut Vec<String>, a: &mut Vec<String>, b: &mut Vec<String>) -> u8 {
    let n = prompt.len().max(a.len()).max(b.len());
    if prompt.len() == n && a.len() == n && b.len() == n {
        return 0;
    }
    for list in [prompt, a, b] {
        list.resize(n, String::new());
    }
    repair::RAGGED
}

/// One arena row: the prompt, response A and response B turn lists, padded to
/// one length, with the repairs made so far (`turns::repair`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowTurns {
    pub fields: [Vec<String>; 3],
    pub repairs: u8,
}

impl RowTurns {
    pub fn new(prompt: Vec<String>, a: Vec<String>, b: Vec<String>, repairs: u8) -> RowTurns {
        let (mut prompt, mut a, mut b) = (prompt, a, b);
        let ragged = pad_ragged(&mut prompt, &mut a, &mut b);
        let clipped =
            clip_long_turns(&mut prompt) | clip_long_turns(&mut a) | clip_long_turns(&mut b);
        RowTurns {
            fields: [prompt, a, b],
            repairs: repairs | ragged | clipped,
        }
    }

    /// Parse the three JSON-list cells of a Kaggle row.
    pub fn from_json(
        row: usize,
        cells: [&str; 3],
        null_text: &str,
    ) -> Result<RowTurns, EncodeError> {
        let mut repairs = 0;
        let mut fields: [Vec<String>; 3] = Default::default();
        for (f, column) in Column::ALL.into_iter().enumerate() {
            let (turns, flags) =
                parse_turn_list(cells[f], null_text).map_err(|source| EncodeError::Turns {
                    row,
                    column,
                    source,
                })?;
            fields[f] = turns;
            repairs |= flags;
        }
        let [p, a, b] = fields;
        Ok(RowTurns::new(p, a, b, repairs))
    }

    pub fn n_turns(&self) -> usize {
        self.fields[0].len()
    }
}

struct Parser<'a> {
    src: &'a [u8],
    cell: &'a str,
    pos: usize,
    flags: u8,
}

impl Parser<'_> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, TurnsError> {
        let end = self.pos.min(self.cell.len());
        // `pos` is always on a char boundary when we fail, except inside a
        // multi-byte char, which only a well-formed &str can contain; round down.
        let mut boundary = end;
        while !self.cell.is_char_boundary(boundary) {
            boundary -= 1;
        }
        Err(TurnsError {
            position: self.cell[..boundary].chars().count(),
            message: message.into(),
        })
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.src.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn list(&mut self, null_text: &str) -> Result<Vec<String>, TurnsError> {
        self.skip_ws();
        match self.peek() {
            None => return self.fail("empty cell, expected a JSON list"),
            Some(b'[') => self.pos += 1,
            Some(_) => return self.fail("expected '[' (a JSON list of strings)"),
        }
        let mut turns = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                match self.peek() {
                    Some(b'"') => {
                        self.pos += 1;
                        let text = self.string()?;
                        turns.push(text);
                    }
                    Some(b'n') if self.src[self.pos..].starts_with(b"null") => {
                        self.pos += 4;
                        self.flags |= crate::turns::repair::NULL;
                        turns.push(null_text.to_owned());
                    }
                    None => return self.fail("unexpected end of cell inside the list"),
                    Some(_) => return self.fail("expected a string or null as list element"),
                }
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    None => return self.fail("unexpected end of cell, expected ',' or ']'"),
                    Some(_) => return self.fail("expected ',' or ']'"),
                }
            }
        }
        self.skip_ws();
        if self.pos != self.src.len() {
            return self.fail("unexpected text after the closing ']'");
        }
        Ok(turns)
    }

    /// Parse a string body; `pos` is just after the opening quote.
    fn string(&mut self) -> Result<String, TurnsError> {
        let mut out = String::new();
        loop {
            // Copy the longest run of plain bytes at once.
            let start = self.pos;
            while let Some(&c) = self.src.get(self.pos) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The run ends at an ASCII byte or the end, so it is valid UTF-8.
            out.push_str(&self.cell[start..self.pos]);
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return self.fail("raw control character inside a string"),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), TurnsError> {
        let Some(c) = self.peek() else {
            return self.fail("unterminated escape");
        };
        self.pos += 1;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let unit = self.hex4()?;
                self.code_unit(unit, out)?;
            }
            _ => {
                self.pos -= 1;
                return self.fail("invalid escape");
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, TurnsError> {
        let Some(digits) = self.src.get(self.pos..self.pos + 4) else {
            return self.fail("truncated \\u escape");
        };
        let Some(value) = hex_value(digits) else {
            return self.fail("invalid hex digit in \\u escape");
        };
        self.pos += 4;
        Ok(value)
    }

    /// Push one UTF-16 code unit, pairing a high surrogate with an immediately
    /// following `\uDC00..\uDFFF` escape; anything unpaired becomes U+FFFD.
    fn code_unit(&mut self, unit: u16, out: &mut String) -> Result<(), TurnsError> {
        match unit {
            0xD800..=0xDBFF => {
                let next_is_low = self.src.get(self.pos..self.pos + 2) == Some(b"\\u")
                    && self
                        .src
                        .get(self.pos + 2..self.pos + 6)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u16::from_str_radix(h, 16).ok())
                        .is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                if next_is_low {
                    self.pos += 2;
                    let low = self.hex4()?;
                    let code = 0x10000 + (((unit as u32) - 0xD800) << 10) + ((low as u32) - 0xDC00);
                    // Always a valid scalar value: 0x10000..=0x10FFFF.
                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                } else {
                    self.flags |= repair::SURROGATE;
                    out.push('\u{FFFD}');
                }
            }
            0xDC00..=0xDFFF => {
                self.flags |= repair::SURROGATE;
                out.push('\u{FFFD}');
            }
            _ => out.push(char::from_u32(unit as u32).unwrap_or('\u{FFFD}')),
        }
        Ok(())
    }
}

/// The value of the four hex digits of a `\\uXXXX` escape (either case);
/// None when one is not a hex digit.
pub(crate) fn hex_value(digits: &[u8]) -> Option<u16> {
    digits.iter().try_fold(0u16, |value, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        Some(value * 16 + v as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(cell: &str) -> (Vec<String>, u8) {
        parse_turn_list(cell, "").unwrap()
    }

    #[test]
    fn plain_lists() {
        assert_eq!(parse(r#"["a","b"]"#).0, vec!["a", "b"]);
        assert_eq!(parse(" [ ] ").0, Vec::<String>::new());
        assert_eq!(parse(r#"["x\/y\n\"q\""]"#).0, vec!["x/y\n\"q\""]);
    }

    #[test]
    fn long_turns_keep_head_and_tail_on_char_boundaries() {
        let short = "x".repeat(MAX_TURN_BYTES);
        // A 3-byte char straddles both cut points.
        let long = format!(
            "{}{}z",
            "a".repeat(CLIP_KEEP_BYTES - 1),
            "€".repeat(CLIP_KEEP_BYTES)
        );
        let mut turns = vec![short.clone(), long.clone(), String::new()];
        assert_eq!(clip_long_turns(&mut turns), repair::CLIPPED);
        assert_eq!(turns[0], short);
        assert_eq!(turns[2], "");
        // K - 1 bytes of `a` then the first `€` would be cut: the head keeps
        // the `a`s; byte 3K (the tail start) is inside a `€` too: round up.
        let k = CLIP_KEEP_BYTES;
        let expected = format!("{}{}", "a".repeat(k - 1), &long[3 * k + 1..]);
        assert_eq!(turns[1], expected);
        assert!(turns[1].ends_with("€z"));
        let mut fine = vec![short];
        assert_eq!(clip_long_turns(&mut fine), 0);
    }

    #[test]
    fn nulls_are_repaired_and_flagged() {
        let (turns, flags) = parse_turn_list(r#"[null, "b"]"#, "<none>").unwrap();
        assert_eq!(turns, vec!["<none>", "b"]);
        assert_eq!(flags, repair::NULL);
    }

    #[test]
    fn surrogates() {
        let (t, f) = parse(r#"["\ud83d\ude00"]"#);
        assert_eq!(t, vec!["😀"]);
        assert_eq!(f, 0);
        let (t, f) = parse(r#"["a\ud83db"]"#);
        assert_eq!(t, vec!["a\u{FFFD}b"]);
        assert_eq!(f, repair::SURROGATE);
        // Reversed pair: two lone surrogates.
        let (t, _) = parse(r#"["\ude00\ud83d"]"#);
        assert_eq!(t, vec!["\u{FFFD}\u{FFFD}"]);
        // High surrogate followed by a non-surrogate escape.
        let (t, _) = parse(r#"["\ud83d\u0041"]"#);
        assert_eq!(t, vec!["\u{FFFD}A"]);
    }

    #[test]
    fn errors_name_the_character() {
        let err = parse_turn_list(r#"["ok", 3]"#, "").unwrap_err();
        assert_eq!(err.position, 7);
        let err = parse_turn_list("[\"é\", x]", "").unwrap_err();
        assert_eq!(err.position, 6);
        assert!(parse_turn_list("", "").is_err());
        assert!(parse_turn_list("[\"a\"", "").is_err());
        assert!(parse_turn_list("[\"a\"] x", "").is_err());
        assert!(parse_turn_list("[\"a\\q\"]", "").is_err());
        assert!(parse_turn_list("[\"a\nb\"]", "").is_err());
        assert!(parse_turn_list("[\"a\",]", "").is_err());
    }

    #[test]
    fn ragged_rows_are_padded() {
        let mut p = vec!["p1".to_string(), "p2".to_string()];
        let mut a = vec!["a1".to_string()];
        let mut b = vec![];
        assert_eq!(pad_ragged(&mut p, &mut a, &mut b), repair::RAGGED);
        assert_eq!(a, vec!["a1", ""]);
        assert_eq!(b, vec!["", ""]);
        assert_eq!(pad_ragged(&mut p, &mut a, &mut b), 0);
    }
}
