//! The GPT-style regex splits of byte-level BPE tokenizers, by hand.
//!
//! Two families of `Split` patterns are in real use, each in a few exact
//! spellings recognised from the tokenizer.json (`Scanner::for_pattern`):
//! - GPT-4 (cl100k) / Llama 3:
//!   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
//!   and Qwen 2 / 2.5 the same with single digits (`\p{N}`);
//! - GPT-4o (o200k, also Llama 4 and gpt-oss), case-aware words that carry
//!   their contraction (`o200k`), and Mistral's Tekken (Mistral-Nemo) the same
//!   without contractions and with single digits.
//!
//! Every character starts a match of one alternative, so the pre-tokens are
//! the matches in order; `Scanner` finds them in one pass, trying the
//! alternatives in order as the backtracking engine does. What the classes
//! (`\p{L}`, `\p{Lu}`, `\s`, the case-insensitive contraction letters...)
//! hold is read from the engine itself (`classes`).
//!
//! Most text is ASCII: `Scanner::ascii_end` tells a pre-token from its first
//! two bytes by a 256-byte class table and runs over ASCII bytes without
//! decoding; the full scanner (`cl100k_end`, `o200k_end`) takes over only at
//! a non-ASCII byte (and at a GPT-4 apostrophe). Non-ASCII classes are one
//! lookup in a two-level table.

mod classes;
mod o200k;
#[cfg(test)]
mod tests;

use classes::{fold_bit, Classes, BASE, LETTER, LOWER, NUMBER, SPACE, UPPER};

/// In `Scanner::table`, a byte that starts or continues a non-ASCII
/// character (no class bit of its own).
const HIGH: u8 = 128;

/// The pattern of Llama 3 and GPT-4 (cl100k): runs of up to 3 digits.
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The pattern of Qwen 2 / 2.5: single digits.
pub const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The pattern of GPT-4o (o200k), Llama 4 and gpt-oss.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);
/// The pattern of Mistral's Tekken (Mistral-Nemo): o200k's without
/// contractions, single digits.
pub const TEKKEN_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*",
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);

/// Every pattern with a hand-written scanner.
pub const PATTERNS: [&str; 4] = [LLAMA3_PATTERN, QWEN2_PATTERN, O200K_PATTERN, TEKKEN_PATTERN];

/// Which family a pattern is of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    /// Contractions alone, then `\p{L}+` words.
    Cl100k,
    /// Case-aware words, with their contraction when `contractions`.
    O200k { contractions: bool },
}

/// The split of one recognised pattern.
pub struct Scanner {
    classes: &'static Classes,
    /// Per byte, the classes of an ASCII character, or `HIGH`.
    table: [u8; 256],
    family: Family,
    /// How many digits a number pre-token holds at most.
    digits: usize,
}

/// The character at byte `i` of `s` and the byte after it.
#[inline]
fn char_at(s: &str, i: usize) -> Option<(char, usize)> {
    let b = *s.as_bytes().get(i)?;
    if b < 0x80 {
        return Some((char::from(b), i + 1));
    }
    let c = s[i..].chars().next()?;
    Some((c, i + c.len_utf8()))
}

impl Scanner {
    /// The scanner for a Split pattern, or None when it is not one this
    /// module knows (or the engine's classes could not be read).
    pub fn for_pattern(pattern: &str) -> Option<Scanner> {
        let (family, digits) = match pattern {
            LLAMA3_PATTERN => (Family::Cl100k, 3),
            QWEN2_PATTERN => (Family::Cl100k, 1),
            O200K_PATTERN => (Family::O200k { contractions: true }, 3),
            TEKKEN_PATTERN => (
                Family::O200k {
                    contractions: false,
                },
                1,
            ),
            _ => return None,
        };
        let classes = Classes::get(family != Family::Cl100k)?;
        let mut table = [HIGH; 256];
        for b in 0..0x80u8 {
            table[usize::from(b)] = classes.ascii(b);
        }
        // The ASCII fast path of cased words relies on: an ASCII letter is
        // upper or lower, not both; no other ASCII character is either.
        let cased_ok = table[..0x80].iter().all(|&k| {
            let cased = k & (UPPER | LOWER);
            if k & LETTER != 0 {
                cased == UPPER || cased == LOWER
            } else {
                cased == 0
            }
        });
        if family != Family::Cl100k && !cased_ok {
            return None;
        }
        Some(Scanner {
            classes,
            table,
            family,
            digits,
        })
    }

    #[inline]
    fn class(&self, c: char) -> u8 {
        self.classes.of(c)
    }

    /// The end of the run from `i` of characters whose class satisfies `keep`.
    #[inline]
    fn run_end(&self, s: &str, mut i: usize, keep: impl Fn(char, u8) -> bool) -> usize {
        let bytes = s.as_bytes();
        while let Some(&b) = bytes.get(i) {
            // ASCII by the table alone, no decoding.
            if b < 0x80 {
                if !keep(char::from(b), self.classes.ascii(b)) {
                    break;
                }
                i += 1;
                continue;
            }
            let Some((c, next)) = char_at(s, i) else {
                break;
            };
            if !keep(c, self.class(c)) {
                break;
            }
            i = next;
        }
        i
    }

    /// The end of a contraction `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `i`, if any.
    fn contraction(&self, s: &str, i: usize) -> Option<usize> {
        const ONE: u8 = fold_bit('s') | fold_bit('t') | fold_bit('m') | fold_bit('d');
        const R_V: u8 = fold_bit('r') | fold_bit('v');
        const E: u8 = fold_bit('e');
        const L: u8 = fold_bit('l');
        if s.as_bytes().get(i) != Some(&b'\'') {
            return None;
        }
        let (c1, e1) = char_at(s, i + 1)?;
        let f1 = self.classes.fold_bits(c1);
        if f1 & ONE != 0 {
            return Some(e1);
        }
        if f1 & (R_V | L) == 0 {
            return None;
        }
        let (c2, e2) = char_at(s, e1)?;
        let f2 = self.classes.fold_bits(c2);
        let pair = (f1 & R_V != 0 && f2 & E != 0) || (f1 & L != 0 && f2 & L != 0);
        pair.then_some(e2)
    }

    /// `\p{L}+` from `i`: ASCII letters by the table, the rest (from a
    /// non-ASCII character on) by `run_end`.
    #[inline(always)]
    fn letters_end(&self, s: &str, mut i: usize) -> usize {
        let bytes = s.as_bytes();
        while let Some(&b) = bytes.get(i) {
            let k = self.table[usize::from(b)];
            if k & LETTER == 0 {
                if k & HIGH != 0 {
                    return self.run_end(s, i, |_, k| k & LETTER != 0);
                }
                break;
            }
            i += 1;
        }
        i
    }

    /// An o200k word's letters from `i` when all are ASCII: the greedy
    /// runs `[A-Z]*[a-z]*`, which is what both word alternatives take there
    /// (an ASCII letter is upper or lower, never both). None where the
    /// letters go on into a non-ASCII character.
    #[inline(always)]
    fn ascii_cased_end(&self, s: &str, mut i: usize) -> Option<usize> {
        let bytes = s.as_bytes();
        while bytes
            .get(i)
            .is_some_and(|&b| self.table[usize::from(b)] & UPPER != 0)
        {
            i += 1;
        }
        while bytes
            .get(i)
            .is_some_and(|&b| self.table[usize::from(b)] & LOWER != 0)
        {
            i += 1;
        }
        match bytes.get(i) {
            Some(&b) if b >= 0x80 => None,
            _ => Some(i),
        }
    }

    /// The word of the family from `j` (the first letter, after any
    /// prefix), when the fast path can tell it.
    #[inline(always)]
    fn ascii_word_end(&self, s: &str, j: usize) -> Option<usize> {
        match self.family {
            Family::Cl100k => Some(self.letters_end(s, j)),
            Family::O200k { contractions } => {
                let end = self.ascii_cased_end(s, j)?;
                let contraction = contractions.then(|| self.contraction(s, end)).flatten();
                Some(contraction.unwrap_or(end))
            }
        }
    }

    /// `[^\s\p{L}\p{N}]+` from `from` (a character of that class), then
    /// line breaks (and `/` when `slash`).
    #[inline]
    fn symbol_run_end(&self, s: &str, from: usize, slash: bool) -> usize {
        let end = self.run_end(s, from, |_, k| k & BASE == 0);
        self.run_end(s, end, |c, _| c == '\r' || c == '\n' || (slash && c == '/'))
    }

    /// The pre-token at `i` when it starts with an ASCII byte and the next
    /// byte (if any) is ASCII too, for what these two bytes tell (words
    /// whose ASCII letters end the word or the text, numbers, symbols,
    /// whitespace): `None` sends the rest (a non-ASCII character next,
    /// contractions of GPT-4) to the family's full scanner.
    #[inline(always)]
    fn ascii_end(&self, s: &str, i: usize) -> Option<usize> {
        let bytes = s.as_bytes();
        let b = bytes[i];
        let k = self.table[usize::from(b)];
        if k & HIGH != 0 {
            return None;
        }
        if k & LETTER != 0 {
            return self.ascii_word_end(s, i);
        }
        if k & NUMBER != 0 {
            return Some(self.number_end(s, i + 1));
        }
        if b == b'\'' {
            return None;
        }
        let Some(&n) = bytes.get(i + 1) else {
            // The last character: a symbol or whitespace alone.
            return Some(i + 1);
        };
        if n >= 0x80 {
            return None;
        }
        let kn = self.table[usize::from(n)];
        if kn & LETTER != 0 && b != b'\r' && b != b'\n' {
            return self.ascii_word_end(s, i + 1);
        }
        let slash = self.family != Family::Cl100k;
        if k & SPACE == 0 {
            return Some(self.symbol_run_end(s, i, slash));
        }
        if b == b' ' && kn & BASE == 0 {
            return Some(self.symbol_run_end(s, i + 1, slash));
        }
        Some(self.whitespace_end(s, i))
    }

    /// `\p{N}{1,digits}` at `i`, after its first digit ending at `after`.
    fn number_end(&self, s: &str, after: usize) -> usize {
        let mut end = after;
        for _ in 1..self.digits {
            match char_at(s, end) {
                Some((d, e)) if self.class(d) & NUMBER != 0 => end = e,
                _ => break,
            }
        }
        end
    }

    /// ` ?[^\s\p{L}\p{N}]+` then line breaks (and `/` when `slash`), at `i`.
    fn symbols_end(&self, s: &str, i: usize, c: char, after: usize, slash: bool) -> Option<usize> {
        let other = |k: u8| k & BASE == 0;
        let from = if other(self.class(c)) {
            i
        } else if c == ' ' && char_at(s, after).is_some_and(|(n, _)| other(self.class(n))) {
            after
        } else {
            return None;
        };
        Some(self.symbol_run_end(s, from, slash))
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+` at `i`, a whitespace character.
    fn whitespace_end(&self, s: &str, i: usize) -> usize {
        // A run of whitespace, [i, j): where its last character starts and
        // where its last line break ends.
        let bytes = s.as_bytes();
        let (mut j, mut last, mut line_end) = (i, i, None);
        while let Some(&b) = bytes.get(j) {
            let next = if b < 0x80 {
                if self.classes.ascii(b) & SPACE == 0 {
                    break;
                }
                if b == b'\r' || b == b'\n' {
                    line_end = Some(j + 1);
                }
                j + 1
            } else {
                match char_at(s, j) {
                    Some((c, next)) if self.class(c) & SPACE != 0 => next,
                    _ => break,
                }
            };
            last = j;
            j = next;
        }
        // \s*[\r\n]+ : up to the run's last line break.
        if let Some(end) = line_end {
            return end;
        }
        // \s+(?!\S) : the run at the end, else all but its last character;
        // \s+ : a run of one character.
        if j == s.len() || last == i {
            return j;
        }
        last
    }

    /// The end of the pre-token starting at byte `i` (< `s.len()`) of the
    /// GPT-4 / Llama 3 family.
    #[inline(never)]
    fn cl100k_end(&self, s: &str, i: usize) -> usize {
        let Some((c, after)) = char_at(s, i) else {
            return s.len();
        };
        let class = self.class(c);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if let Some(end) = self.contraction(s, i) {
            return end;
        }
        let letters = |from: usize| self.run_end(s, from, |_, k| k & LETTER != 0);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if class & LETTER != 0 {
            return letters(after);
        }
        let next_letter = char_at(s, after).is_some_and(|(n, _)| self.class(n) & LETTER != 0);
        if c != '\r' && c != '\n' && class & NUMBER == 0 && next_letter {
            return letters(after);
        }
        // \p{N}{1,3} or \p{N}
        if class & NUMBER != 0 {
            return self.number_end(s, after);
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        if let Some(end) = self.symbols_end(s, i, c, after, false) {
            return end;
        }
        self.whitespace_end(s, i)
    }

    /// Call `f` on each pre-token of `s`, in order.
    pub fn split<'s, E>(
        &self,
        s: &'s str,
        f: impl FnMut(&'s str) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.family {
            Family::Cl100k => self.each(s, f, |i| self.cl100k_end(s, i)),
            Family::O200k { contractions } => {
                self.each(s, f, |i| self.o200k_end(s, i, contractions))
            }
        }
    }

    /// `split`, with `full` the family's whole scanner for what the ASCII
    /// fast path leaves.
    #[inline(always)]
    fn each<'s, E>(
        &self,
        s: &'s str,
        mut f: impl FnMut(&'s str) -> Result<(), E>,
        full: impl Fn(usize) -> usize,
    ) -> Result<(), E> {
        let mut i = 0;
        while i < s.len() {
            let end = self.ascii_end(s, i).unwrap_or_else(|| full(i));
            f(&s[i..end])?;
            i = end;
        }
        Ok(())
    }
}
