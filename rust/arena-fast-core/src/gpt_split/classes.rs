//! The character classes of the split patterns, read from the engine itself
//! (Oniguruma, which `tokenizers` runs these patterns on) once per process,
//! so the Unicode version can never differ.

use std::sync::OnceLock;

use onig::Regex;

/// `\p{L}`, `\p{N}` and `\s`: no character is in two of them.
pub const LETTER: u8 = 1;
pub const NUMBER: u8 = 2;
pub const SPACE: u8 = 4;
/// Neither a letter, a number nor whitespace: `[^\s\p{L}\p{N}]`.
pub const BASE: u8 = LETTER | NUMBER | SPACE;
/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, the "upper" class of o200k's words
/// (only in the cased table).
pub const UPPER: u8 = 8;
/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`, the "lower" class of o200k's words.
pub const LOWER: u8 = 16;

/// Contraction letters, as bits: a character matching `(?i:x)`.
pub const FOLDS: [char; 8] = ['s', 't', 'r', 'e', 'v', 'm', 'l', 'd'];

/// The bit of the contraction letter `letter` (one of `FOLDS`).
pub const fn fold_bit(letter: char) -> u8 {
    let mut k = 0;
    while k < FOLDS.len() {
        if FOLDS[k] == letter {
            return 1 << k;
        }
        k += 1;
    }
    0
}

/// Code points per block of the class table.
const BLOCK: usize = 256;

/// Which characters the engine puts in each class, as bits.
pub struct Classes {
    ascii: [u8; 128],
    /// Per block of `BLOCK` code points, where its bits start in `blocks`
    /// (a two-level table: one lookup per character, no search).
    block_start: Vec<u32>,
    /// The bits of the distinct blocks, `BLOCK` per block.
    blocks: Vec<u8>,
    /// Per character matching `(?i:x)` for a letter of `FOLDS`: its bits.
    folds: Vec<(char, u8)>,
    /// The same for ASCII, by byte.
    ascii_folds: [u8; 128],
}

/// The two-level table of `bits` (one entry per code point).
fn blocks_of(bits: &[u8]) -> (Vec<u32>, Vec<u8>) {
    let mut start_of = std::collections::HashMap::new();
    let mut block_start = Vec::with_capacity(bits.len() / BLOCK);
    let mut blocks = Vec::new();
    for block in bits.chunks(BLOCK) {
        let start = *start_of.entry(block).or_insert_with(|| {
            blocks.extend_from_slice(block);
            (blocks.len() - BLOCK) as u32
        });
        block_start.push(start);
    }
    (block_start, blocks)
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

/// Per character, the bits of the patterns that match it.
fn bits_of(all: &str, patterns: &[(&str, u8)]) -> Option<Vec<u8>> {
    let mut bits = vec![0u8; 0x11_0000];
    for &(pattern, bit) in patterns {
        for (first, last) in matching(all, pattern)? {
            for b in &mut bits[first as usize..=last as usize] {
                *b |= bit;
            }
        }
    }
    Some(bits)
}

/// Which characters match each contraction letter case-insensitively.
fn folds_of(all: &str) -> Option<Vec<(char, u8)>> {
    // One pass for all letters, then each character found tried alone.
    let letters: Vec<Regex> = FOLDS
        .iter()
        .map(|l| Regex::new(&format!(r"\A(?i:{l})\z")).ok())
        .collect::<Option<_>>()?;
    let mut folds = Vec::new();
    for (first, last) in matching(all, "(?i:[stremvld])")? {
        for c in (first..=last).filter_map(char::from_u32) {
            let alone = c.to_string();
            let bits = (0..FOLDS.len())
                .filter(|&k| letters[k].is_match(&alone))
                .fold(0u8, |bits, k| bits | 1 << k);
            folds.push((c, bits));
        }
    }
    Some(folds)
}

impl Classes {
    fn from_engine(cased: bool) -> Option<Classes> {
        let all = all_chars();
        let mut patterns = vec![(r"\p{L}+", LETTER), (r"\p{N}+", NUMBER), (r"\s+", SPACE)];
        if cased {
            patterns.push((r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+", UPPER));
            patterns.push((r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]+", LOWER));
        }
        let bits = bits_of(&all, &patterns)?;
        // The scanners rely on: \p{L}, \p{N}, \s disjoint; every letter
        // upper or lower; a cased non-letter neither a number nor a space.
        let sound = |&b: &u8| {
            (b & BASE).count_ones() <= 1
                && (!cased || b & LETTER == 0 || b & (UPPER | LOWER) != 0)
                && (b & (NUMBER | SPACE) == 0 || b & (UPPER | LOWER) == 0)
        };
        if !bits.iter().all(sound) {
            return None;
        }
        let mut ascii = [0u8; 128];
        ascii.copy_from_slice(&bits[..128]);
        let (block_start, blocks) = blocks_of(&bits);
        let folds = folds_of(&all)?;
        let mut ascii_folds = [0u8; 128];
        for &(c, f) in folds.iter().filter(|f| f.0.is_ascii()) {
            ascii_folds[c as usize] = f;
        }
        let classes = Classes {
            ascii,
            block_start,
            blocks,
            folds,
            ascii_folds,
        };
        // The searches ran to the end: known characters from every part.
        let known = [
            ('a', LETTER | if cased { LOWER } else { 0 }),
            ('7', NUMBER),
            ('\n', SPACE),
            ('\u{3000}', SPACE),
            ('\u{4e2d}', LETTER | if cased { UPPER | LOWER } else { 0 }),
            ('\u{30000}', LETTER | if cased { UPPER | LOWER } else { 0 }),
            ('\u{1f600}', 0),
            ('\u{e01ef}', if cased { UPPER | LOWER } else { 0 }),
        ];
        known
            .iter()
            .all(|&(c, bits)| classes.of(c) == bits)
            .then_some(classes)
    }

    /// The classes `\p{L}`, `\p{N}`, `\s` (`cased`: with `UPPER` and
    /// `LOWER` too), or None when the engine could not be read.
    pub fn get(cased: bool) -> Option<&'static Classes> {
        static PLAIN: OnceLock<Option<Classes>> = OnceLock::new();
        static CASED: OnceLock<Option<Classes>> = OnceLock::new();
        // A search the engine failed (it panics) leaves no fast path.
        let derive = || {
            std::panic::catch_unwind(|| Classes::from_engine(cased))
                .ok()
                .flatten()
        };
        let cell = if cased { &CASED } else { &PLAIN };
        cell.get_or_init(derive).as_ref()
    }

    /// The bits of the ASCII character `b` (< 0x80).
    #[inline]
    pub fn ascii(&self, b: u8) -> u8 {
        self.ascii[usize::from(b & 0x7f)]
    }

    /// The bits of `c`.
    #[inline]
    pub fn of(&self, c: char) -> u8 {
        let c = c as u32;
        if c < 128 {
            return self.ascii[c as usize];
        }
        let c = c as usize;
        let start = self.block_start[c / BLOCK] as usize;
        self.blocks[start + c % BLOCK]
    }

    /// The bits (`fold_bit`) of the contraction letters `c` matches as
    /// `(?i:letter)`.
    #[inline]
    pub fn fold_bits(&self, c: char) -> u8 {
        if c.is_ascii() {
            return self.ascii_folds[c as usize];
        }
        self.folds.iter().find(|f| f.0 == c).map_or(0, |f| f.1)
    }
}
