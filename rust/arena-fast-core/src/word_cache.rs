//! The per-thread cache of word (or pre-token) -> ids that the cached
//! encoders (`words` for Gemma-style vocabularies, `byte_level` for
//! byte-level BPE) share.
//!
//! Arena texts repeat words heavily, so most lookups hit: a hit must be a
//! hash, one probe and a short compare. Words and ids live in two arenas (no
//! allocation per entry); an open-addressing table (linear probing) holds,
//! per word, the top bits of its hash, where its bytes and ids are and how
//! long they are. A probe compares the stored hash and length before any
//! byte. The cache is bounded in words and bytes: past either bound it is
//! emptied before the next word is added.

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::error::TokenizerError;

/// The cache is emptied past this many words or bytes (arenas and table).
const CACHE_WORDS: usize = 1 << 18;
const CACHE_BYTES: usize = 128 << 20;
/// Longer words (a run of text with no word start: code, a URL, Chinese) are
/// encoded but not cached: they rarely repeat and would crowd the cache.
pub(crate) const MAX_CACHED_WORD: usize = 4096;
/// Slots of a fresh table (16 bytes each); it doubles past 5/8 full.
const FIRST_SLOTS: usize = 1 << 14;

/// One cached word: `key_len == 0` marks an empty slot. A short word (at
/// most 8 bytes, most of them) is compared in the slot itself, and a single
/// id is kept there too: a hit on one is one memory access.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// A short word: `short_key`; a longer one: its hash's top 32 bits, then
    /// where its bytes start in `keys`.
    key: u64,
    /// One id: the id; more: where they start in `ids`.
    ids: u32,
    key_len: u16,
    ids_len: u16,
}

/// Ids of words already encoded, per thread, for one tokenizer (`owner`):
/// the same word has other ids in another vocabulary.
#[derive(Default)]
pub struct WordCache {
    slots: Vec<Slot>,
    keys: Vec<u8>,
    ids: Vec<u32>,
    len: usize,
    owner: u64,
}

thread_local! {
    static WORDS: std::cell::RefCell<WordCache> = std::cell::RefCell::new(WordCache::default());
}

/// Forget the words this thread has cached, freeing their memory
/// (benchmarks measure cold starts).
pub fn clear_thread_cache() {
    WORDS.with(|words| {
        let mut cache = words.borrow_mut();
        let owner = cache.owner;
        *cache = WordCache {
            owner,
            ..WordCache::default()
        };
    });
}

/// Run `f` with this thread's word cache for the tokenizer `owner` (its
/// `ArenaTokenizer::id`); the cache is emptied when another tokenizer used it.
pub fn with_thread_cache<R>(owner: u64, f: impl FnOnce(&mut WordCache) -> R) -> R {
    WORDS.with(|words| {
        let mut cache = words.borrow_mut();
        if cache.owner != owner {
            *cache = WordCache {
                owner,
                ..WordCache::default()
            };
        }
        f(&mut cache)
    })
}

/// The hash of a byte string (also `merges`' vocabulary by bytes).
pub(crate) fn hash_bytes(word: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(word);
    h.finish()
}

/// A word of 1 to 8 bytes as one number; with its length, it is the word.
#[inline]
fn short_key(w: &[u8]) -> u64 {
    let n = w.len();
    let u32_at = |k: usize| u64::from(u32::from_le_bytes([w[k], w[k + 1], w[k + 2], w[k + 3]]));
    if n >= 4 {
        u32_at(0) | u32_at(n - 4) << 32
    } else {
        u64::from(w[0]) | u64::from(w[n / 2]) << 8 | u64::from(w[n - 1]) << 16
    }
}

#[inline]
fn short_hash(key: u64, len: usize) -> u64 {
    let m = u128::from(key ^ (len as u64) << 59) * 0x9E37_79B9_7F4A_7C15;
    m as u64 ^ (m >> 64) as u64
}

/// The table's hash of a word: its short key mixed, or `hash_bytes`
/// (computed once per word: `extend_with` looks up and inserts with it).
#[inline]
fn word_hash(w: &[u8]) -> u64 {
    if w.len() <= 8 {
        short_hash(short_key(w), w.len())
    } else {
        hash_bytes(w)
    }
}

/// `a == b` for slices of equal length, without a call for short ones.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() <= 16 {
        a.iter().zip(b).all(|(x, y)| x == y)
    } else {
        a == b
    }
}

impl WordCache {
    /// Words cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the cache holds: words, ids and table.
    pub fn bytes(&self) -> usize {
        self.keys.len() + 4 * self.ids.len() + std::mem::size_of::<Slot>() * self.slots.len()
    }

    /// The cached ids of `word`, if any.
    #[inline]
    pub fn get(&self, word: &[u8]) -> Option<&[u32]> {
        if word.is_empty() {
            return None; // no hash
        }
        self.get_hashed(word, word_hash(word))
    }

    /// `get`, with `h = word_hash(word)`.
    #[inline]
    fn get_hashed(&self, word: &[u8], h: u64) -> Option<&[u32]> {
        if self.slots.is_empty() || word.is_empty() || word.len() > MAX_CACHED_WORD {
            return None;
        }
        let key = self.key_of(word, h);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let s = &self.slots[i];
            if s.key_len == 0 {
                return None;
            }
            if s.key_len as usize == word.len() && (s.key >> 32) == (key >> 32) {
                let hit = if word.len() <= 8 {
                    s.key == key
                } else {
                    let at = s.key as u32 as usize;
                    same(&self.keys[at..at + word.len()], word)
                };
                if hit {
                    return Some(match s.ids_len {
                        1 => std::slice::from_ref(&s.ids),
                        n => &self.ids[s.ids as usize..s.ids as usize + n as usize],
                    });
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// A slot's `key` for `word` (hash `h`), its bytes stored at `keys.len()`.
    #[inline]
    fn key_of(&self, word: &[u8], h: u64) -> u64 {
        if word.len() <= 8 {
            short_key(word)
        } else {
            (h >> 32) << 32 | self.keys.len() as u64
        }
    }

    /// Push the ids of `word` onto `out`: cached ones, or those `encode`
    /// pushes (then cached unless the word is long). Nothing for "".
    pub(crate) fn extend_with(
        &mut self,
        word: &str,
        out: &mut Vec<u32>,
        encode: impl FnOnce(&str, &mut Vec<u32>) -> Result<(), TokenizerError>,
    ) -> Result<(), TokenizerError> {
        if word.is_empty() {
            return Ok(());
        }
        let h = word_hash(word.as_bytes());
        if let Some(ids) = self.get_hashed(word.as_bytes(), h) {
            // Most words are one token: no copy call for those.
            match ids {
                [id] => out.push(*id),
                _ => out.extend_from_slice(ids),
            }
            return Ok(());
        }
        let start = out.len();
        encode(word, out)?;
        self.insert_hashed(word.as_bytes(), h, &out[start..]);
        Ok(())
    }

    /// Cache `ids` for `word` (not cached: ""; one longer than
    /// `MAX_CACHED_WORD`; more than 65,535 ids). The word must not be
    /// cached yet.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, word: &[u8], ids: &[u32]) {
        if !word.is_empty() {
            self.insert_hashed(word, word_hash(word), ids);
        }
    }

    /// `insert`, with `h = word_hash(word)`.
    fn insert_hashed(&mut self, word: &[u8], h: u64, ids: &[u32]) {
        if word.is_empty() || word.len() > MAX_CACHED_WORD || ids.len() > usize::from(u16::MAX) {
            return;
        }
        if self.len >= CACHE_WORDS || self.bytes() + word.len() + 4 * ids.len() > CACHE_BYTES {
            let owner = self.owner;
            *self = WordCache {
                owner,
                ..WordCache::default()
            };
        }
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); FIRST_SLOTS];
        } else if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let slot = Slot {
            key: self.key_of(word, h),
            ids: match ids {
                [id] => *id,
                _ => self.ids.len() as u32,
            },
            key_len: word.len() as u16,
            ids_len: ids.len() as u16,
        };
        if word.len() > 8 {
            self.keys.extend_from_slice(word);
        }
        if ids.len() != 1 {
            self.ids.extend_from_slice(ids);
        }
        self.place(h, slot);
        self.len += 1;
    }

    fn place(&mut self, h: u64, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        while self.slots[i].key_len != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let bigger = vec![Slot::default(); self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        for s in old.into_iter().filter(|s| s.key_len != 0) {
            let n = s.key_len as usize;
            let h = if n <= 8 {
                short_hash(s.key, n)
            } else {
                let at = s.key as u32 as usize;
                hash_bytes(&self.keys[at..at + n])
            };
            self.place(h, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(k: usize) -> String {
        format!("w{k}")
    }

    #[test]
    fn hits_what_was_inserted_and_misses_the_rest() {
        let mut cache = WordCache::default();
        assert_eq!(cache.get(b"a"), None);
        for k in 0..50_000 {
            cache.insert(word(k).as_bytes(), &[k as u32, 7]);
        }
        assert_eq!(cache.len(), 50_000);
        for k in 0..50_000 {
            assert_eq!(cache.get(word(k).as_bytes()), Some(&[k as u32, 7][..]));
        }
        assert_eq!(cache.get(b"w50000"), None);
        assert_eq!(cache.get(b"w"), None);
        // Long words with a shared prefix compare by bytes, past 16.
        let long = "x".repeat(40);
        cache.insert(format!("{long}a").as_bytes(), &[1]);
        cache.insert(format!("{long}b").as_bytes(), &[2]);
        assert_eq!(cache.get(format!("{long}b").as_bytes()), Some(&[2][..]));
        assert_eq!(cache.get(format!("{long}c").as_bytes()), None);
    }

    #[test]
    fn short_words_are_told_apart_by_every_byte() {
        // Every word of 1 to 8 bytes over a small alphabet: the in-slot
        // keys must differ wherever the words do.
        let mut words = vec![Vec::new()];
        let mut all = Vec::new();
        for n in 1..=8 {
            let alphabet: &[u8] = if n <= 3 { b"abc" } else { b"ab" };
            words = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |&c| [&w[..], &[c]].concat()))
                .collect();
            all.extend(words.iter().cloned());
        }
        let mut cache = WordCache::default();
        for (k, w) in all.iter().enumerate() {
            assert_eq!(cache.get(w), None);
            let ids: Vec<u32> = (0..=(k % 3) as u32).map(|j| k as u32 * 10 + j).collect();
            cache.insert(w, &ids);
        }
        for (k, w) in all.iter().enumerate() {
            let ids: Vec<u32> = (0..=(k % 3) as u32).map(|j| k as u32 * 10 + j).collect();
            assert_eq!(cache.get(w), Some(&ids[..]), "{w:?}");
        }
        assert_eq!(cache.get(b"abcd"), None);
    }

    #[test]
    fn extend_with_encodes_once_and_skips_long_and_empty_words() {
        let mut cache = WordCache::default();
        let mut calls = 0;
        let mut out = Vec::new();
        for _ in 0..3 {
            cache
                .extend_with("hello", &mut out, |_, out| {
                    calls += 1;
                    out.extend([1, 2]);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!((calls, out), (1, vec![1, 2, 1, 2, 1, 2]));
        let long = "y".repeat(MAX_CACHED_WORD + 1);
        cache.insert(long.as_bytes(), &[3]);
        cache.insert(b"", &[4]);
        assert_eq!(cache.get(long.as_bytes()), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn bounded_in_words_and_bytes() {
        let mut cache = WordCache::default();
        for k in 0..CACHE_WORDS + 10 {
            cache.insert(word(k).as_bytes(), &[1]);
            assert!(cache.len() <= CACHE_WORDS);
        }
        assert_eq!(cache.len(), 10);
        assert!(cache.get(word(CACHE_WORDS + 9).as_bytes()).is_some());
        assert!(cache.get(word(0).as_bytes()).is_none());
        // Long words with many ids: the bytes bound empties it first.
        let mut cache = WordCache::default();
        let ids = vec![9u32; 4000];
        let mut most = 0;
        for k in 0..12_000 {
            let w = format!("{k:04000}");
            cache.insert(w.as_bytes(), &ids);
            most = most.max(cache.bytes());
        }
        assert!(most <= CACHE_BYTES, "{most}");
        assert!(cache.len() < 12_000);
    }
}
