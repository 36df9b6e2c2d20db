//! The GPT-4o (o200k) family of splits: words are an optional leading
//! non-letter, then upper-case then lower-case letters (marks and
//! case-less letters count as both), then optionally a contraction:
//! `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?`
//! or `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?`;
//! then numbers, ` ?[^\s\p{L}\p{N}]+[\r\n/]*` and whitespace as in GPT-4.

use super::classes::{LETTER, LOWER, NUMBER, UPPER};
use super::{char_at, Scanner};

impl Scanner {
    /// The end of a word's letters from `j`, if one starts there: `[U]*[W]+`
    /// (`upper_first` false) or `[U]+[W]*`, with U the upper and W the
    /// lower class, as the backtracking engine takes them.
    fn cased_letters(&self, s: &str, j: usize, upper_first: bool) -> Option<usize> {
        // The greedy [U]* / [U]+ run, and where its last W character ends.
        let mut upper_end = j;
        let mut last_lower_end = None;
        while let Some((c, next)) = char_at(s, upper_end) {
            let k = self.class(c);
            if k & UPPER == 0 {
                break;
            }
            if k & LOWER != 0 {
                last_lower_end = Some(next);
            }
            upper_end = next;
        }
        let lower_end = self.run_end(s, upper_end, |_, k| k & LOWER != 0);
        if upper_first {
            // [U]+[W]*: the greedy runs, if [U]+ took one.
            return (upper_end > j).then_some(lower_end);
        }
        // [U]*[W]+: a W run after the U run; else [U]* gives back characters
        // until one is W, which [W]+ takes alone (the next one is U only or
        // ended the run).
        if lower_end > upper_end {
            Some(lower_end)
        } else {
            last_lower_end
        }
    }

    /// The end of the pre-token starting at byte `i` (< `s.len()`) of the
    /// o200k family, with or without contractions after words.
    #[inline(never)]
    pub(super) fn o200k_end(&self, s: &str, i: usize, contractions: bool) -> usize {
        let Some((c, after)) = char_at(s, i) else {
            return s.len();
        };
        let class = self.class(c);
        // [^\r\n\p{L}\p{N}]? : with the character first, then without.
        let prefix = c != '\r' && c != '\n' && class & (LETTER | NUMBER) == 0;
        for upper_first in [false, true] {
            let word = prefix
                .then(|| self.cased_letters(s, after, upper_first))
                .flatten()
                .or_else(|| self.cased_letters(s, i, upper_first));
            if let Some(end) = word {
                let contraction = contractions.then(|| self.contraction(s, end)).flatten();
                return contraction.unwrap_or(end);
            }
        }
        // \p{N}{1,3} or \p{N}
        if class & NUMBER != 0 {
            return self.number_end(s, after);
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n/]*
        if let Some(end) = self.symbols_end(s, i, c, after, true) {
            return end;
        }
        self.whitespace_end(s, i)
    }
}
