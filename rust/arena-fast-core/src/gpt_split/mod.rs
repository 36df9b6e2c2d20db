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

mod classes;
mod o200k;
#[cfg(test)]
mod tests;

use classes::{Classes, BASE, LETTER, NUMBER, SPACE};

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
    family: Family,
    /// How many digits a number pre-token holds at most.
    digits: usize,
}

/// The character at byte `i` of `s` and the byte after it.
#[inline]
fn char_at(s: &str, i: usize) -> Option<(char, usize)> {
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
        Some(Scanner {
            classes: Classes::get(family != Family::Cl100k)?,
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
        while let Some((c, next)) = char_at(s, i) {
            if !keep(c, self.class(c)) {
                break;
            }
            i = next;
        }
        i
    }

    /// The end of a contraction `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `i`, if any.
    fn contraction(&self, s: &str, i: usize) -> Option<usize> {
        if !s[i..].starts_with('\'') {
            return None;
        }
        let (c1, e1) = char_at(s, i + 1)?;
        let folds = |c: char, l: char| self.classes.folds_to(c, l);
        if ['s', 't', 'm', 'd'].iter().any(|&l| folds(c1, l)) {
            return Some(e1);
        }
        let (c2, e2) = char_at(s, e1)?;
        let pair = (folds(c1, 'r') && folds(c2, 'e'))
            || (folds(c1, 'v') && folds(c2, 'e'))
            || (folds(c1, 'l') && folds(c2, 'l'));
        pair.then_some(e2)
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
        let end = self.run_end(s, from, |_, k| other(k));
        Some(self.run_end(s, end, |c, _| c == '\r' || c == '\n' || (slash && c == '/')))
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+` at `i`, a whitespace character.
    fn whitespace_end(&self, s: &str, i: usize) -> usize {
        // A run of whitespace, [i, j).
        let j = self.run_end(s, i, |_, k| k & SPACE != 0);
        // \s*[\r\n]+ : up to the run's last line break.
        if let Some(p) = s[i..j].rfind(['\r', '\n']) {
            return i + p + 1;
        }
        // \s+(?!\S) : the run at the end, else all but its last character.
        if j == s.len() {
            return j;
        }
        let last = s[i..j].chars().next_back().map_or(0, char::len_utf8);
        if j - i > last {
            return j - last;
        }
        // \s+
        j
    }

    /// The end of the pre-token starting at byte `i` (< `s.len()`) of the
    /// GPT-4 / Llama 3 family.
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
        mut f: impl FnMut(&'s str) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        while i < s.len() {
            let end = match self.family {
                Family::Cl100k => self.cl100k_end(s, i),
                Family::O200k { contractions } => self.o200k_end(s, i, contractions),
            };
            f(&s[i..end])?;
            i = end;
        }
        Ok(())
    }
}
