//! The GPT-4-style regex split of byte-level BPE tokenizers, by hand.
//!
//! Llama 3 (and GPT-4's cl100k) split text with
//! `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
//! Qwen 2 / 2.5 the same with single digits (`\p{N}`). Every character
//! starts a match of one alternative, so the pre-tokens are the matches in
//! order; `Scanner` finds them in one pass, trying the alternatives in
//! order as the backtracking engine does. What `\p{L}`, `\p{N}`, `\s` and
//! the case-insensitive contraction letters mean is read from the engine
//! itself (Oniguruma, which `tokenizers` runs these patterns on) once per
//! process, so the Unicode version can never differ.

use std::sync::OnceLock;

use onig::Regex;

/// The pattern of Llama 3 and GPT-4 (cl100k): runs of up to 3 digits.
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The pattern of Qwen 2 / 2.5: single digits.
pub const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const SPACE: u8 = 4;
/// Contraction letters, as bits: a character matching `(?i:x)`.
const FOLDS: [char; 8] = ['s', 't', 'r', 'e', 'v', 'm', 'l', 'd'];

/// The engine's `\p{L}`, `\p{N}` and `\s`, and which characters match each
/// contraction letter case-insensitively.
struct Classes {
    ascii: [u8; 128],
    /// Non-ASCII runs of one class: (first, last, class), sorted.
    ranges: Vec<(u32, u32, u8)>,
    /// Per character matching `(?i:x)` for a letter of `FOLDS`: its bits.
    folds: Vec<(char, u8)>,
}

/// Every Unicode scalar value, in order, as one string.
fn all_chars() -> String {
    (0..=0x10FFFFu32).filter_map(char::from_u32).collect()
}

/// The characters of `all` that `pattern` matches (as maximal runs).
fn matching(all: &str, pattern: &str) -> Option<Vec<(u32, u32)>> {
    let regex = Regex::new(pattern).ok()?;
    let mut runs = Vec::new();
    for (start, end) in regex.find_iter(all) {
        let first = all[start..].chars().next()? as u32;
        let last = all[..end].chars().next_back()? as u32;
        runs.push((first, last));
    }
    Some(runs)
}

impl Classes {
    fn from_engine() -> Option<Classes> {
        let all = all_chars();
        let mut ascii = [0u8; 128];
        let mut ranges = Vec::new();
        for (pattern, class) in [(r"\p{L}+", LETTER), (r"\p{N}+", NUMBER), (r"\s+", SPACE)] {
            for (first, last) in matching(&all, pattern)? {
                for c in first..=last.min(127) {
                    // The classes must not overlap for the scanner's logic.
                    if ascii[c as usize] != 0 {
                        return None;
                    }
                    ascii[c as usize] = class;
                }
                if last >= 128 {
                    ranges.push((first.max(128), last, class));
                }
            }
        }
        ranges.sort_unstable();
        if ranges.windows(2).any(|w| w[0].1 >= w[1].0) {
            return None;
        }
        // One pass for all letters, then each character found tried alone.
        let mut folds: Vec<(char, u8)> = Vec::new();
        let letters: Vec<Regex> = FOLDS
            .iter()
            .map(|l| Regex::new(&format!(r"\A(?i:{l})\z")).ok())
            .collect::<Option<_>>()?;
        for (first, last) in matching(&all, "(?i:[stremvld])")? {
            for c in (first..=last).filter_map(char::from_u32) {
                let alone = c.to_string();
                let bits = (0..FOLDS.len())
                    .filter(|&k| letters[k].is_match(&alone))
                    .fold(0u8, |bits, k| bits | 1 << k);
                folds.push((c, bits));
            }
        }
        let classes = Classes {
            ascii,
            ranges,
            folds,
        };
        // The searches ran to the end: known characters from every part.
        let known = [
            ('a', LETTER),
            ('7', NUMBER),
            ('\n', SPACE),
            ('\u{3000}', SPACE),
            ('\u{4e2d}', LETTER),
            ('\u{30000}', LETTER),
            ('\u{1f600}', 0),
        ];
        known
            .iter()
            .all(|&(c, class)| classes.of(c) == class)
            .then_some(classes)
    }

    fn get() -> Option<&'static Classes> {
        static CLASSES: OnceLock<Option<Classes>> = OnceLock::new();
        // A search the engine failed (it panics) leaves no fast path.
        let derive = || {
            std::panic::catch_unwind(Classes::from_engine)
                .ok()
                .flatten()
        };
        CLASSES.get_or_init(derive).as_ref()
    }

    #[inline]
    fn of(&self, c: char) -> u8 {
        let c = c as u32;
        if c < 128 {
            return self.ascii[c as usize];
        }
        match self.ranges.binary_search_by(|r| {
            if r.1 < c {
                std::cmp::Ordering::Less
            } else if r.0 > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }) {
            Ok(k) => self.ranges[k].2,
            Err(_) => 0,
        }
    }

    /// Whether `c` matches `(?i:letter)`.
    fn folds_to(&self, c: char, letter: char) -> bool {
        let Some(k) = FOLDS.iter().position(|&l| l == letter) else {
            return false;
        };
        self.folds.iter().any(|f| f.0 == c && f.1 & (1 << k) != 0)
    }
}

/// The split of one recognised pattern.
pub struct Scanner {
    classes: &'static Classes,
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
        let digits = match pattern {
            LLAMA3_PATTERN => 3,
            QWEN2_PATTERN => 1,
            _ => return None,
        };
        Some(Scanner {
            classes: Classes::get()?,
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

    /// The end of a contraction `'x` starting at `i` (the `'`), if any.
    fn contraction(&self, s: &str, i: usize) -> Option<usize> {
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

    /// The end of the pre-token starting at byte `i` (< `s.len()`).
    fn token_end(&self, s: &str, i: usize) -> usize {
        let Some((c, after)) = char_at(s, i) else {
            return s.len();
        };
        let class = self.class(c);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if c == '\'' {
            if let Some(end) = self.contraction(s, i) {
                return end;
            }
        }
        let letters = |from: usize| self.run_end(s, from, |_, k| k == LETTER);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if class == LETTER {
            return letters(after);
        }
        let next = char_at(s, after).map(|(n, _)| (n, self.class(n)));
        if c != '\r' && c != '\n' && class != NUMBER && next.is_some_and(|n| n.1 == LETTER) {
            return letters(after);
        }
        // \p{N}{1,3} or \p{N}
        if class == NUMBER {
            let mut end = after;
            for _ in 1..self.digits {
                match char_at(s, end) {
                    Some((d, e)) if self.class(d) == NUMBER => end = e,
                    _ => break,
                }
            }
            return end;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let other_from = if class == 0 {
            Some(i)
        } else if c == ' ' && next.is_some_and(|n| n.1 == 0) {
            Some(after)
        } else {
            None
        };
        if let Some(from) = other_from {
            let end = self.run_end(s, from, |_, k| k == 0);
            return self.run_end(s, end, |c, _| c == '\r' || c == '\n');
        }
        // A run of whitespace, [i, j).
        let j = self.run_end(s, i, |_, k| k == SPACE);
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

    /// Call `f` on each pre-token of `s`, in order.
    pub fn split<E>(&self, s: &str, mut f: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        let mut i = 0;
        while i < s.len() {
            let end = self.token_end(s, i);
            f(&s[i..end])?;
            i = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_regex(pattern: &str, s: &str) -> Vec<String> {
        let regex = Regex::new(pattern).unwrap();
        regex
            .find_iter(s)
            .map(|(a, b)| s[a..b].to_owned())
            .collect()
    }

    fn by_scanner(pattern: &str, s: &str) -> Vec<String> {
        let scanner = Scanner::for_pattern(pattern).unwrap();
        let mut out = Vec::new();
        scanner
            .split(s, |t| {
                out.push(t.to_owned());
                Ok::<(), ()>(())
            })
            .unwrap();
        out
    }

    #[test]
    fn split_equals_the_regex() {
        let texts = [
            "Hello world, it's 12345 o'clock!  \n\n  x\r\n\ty  ",
            "I'M HERE'S 'LL 'Ve 're'd 'ſ ’s don’t",
            "  \u{3000}abc \u{a0}d\u{85}e 1\u{0661}\u{0662}\u{0663}\u{0664} ½⅓",
            "e\u{301}\u{302} 👍🏽 👨‍👩‍👧 \r \r\r\n x \n \t.,;\r\n",
            "   ",
            " .x",
            "\t.x\u{2028}a\u{2029}",
            "a  1  .  \t\tz'",
        ];
        for pattern in [LLAMA3_PATTERN, QWEN2_PATTERN] {
            for text in texts {
                assert_eq!(
                    by_scanner(pattern, text),
                    by_regex(pattern, text),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn every_character_in_context_splits_as_the_regex() {
        // Each character between each pair of neighbours that matters.
        let around = ["a", "1", " ", "\n", ".", "'"];
        for pattern in [LLAMA3_PATTERN, QWEN2_PATTERN] {
            let mut text = String::new();
            for c in (0..=0x10FFFFu32).step_by(7).filter_map(char::from_u32) {
                for l in around {
                    text.push_str(l);
                    text.push(c);
                    text.push_str(l);
                    text.push(c);
                    text.push(c);
                }
            }
            assert_eq!(by_scanner(pattern, &text), by_regex(pattern, &text));
        }
    }
}
