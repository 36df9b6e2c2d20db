//! BPE of one short byte-level pre-token by merge ranks, giving exactly the
//! ids of `tokenizers`' `BPE::tokenize` (which the byte-level fast path uses
//! for long pre-tokens and for vocabularies this module does not take).
//!
//! `tokenizers` merges, again and again, the adjacent pair of lowest rank,
//! the leftmost on a tie (its heap orders by rank, then position); with
//! `ignore_merges` a pre-token that is itself in the vocabulary is that one
//! token. Here the same order is kept with a priority per adjacent pair
//! (ordered as the ranks are: `PairTable`), recomputed only beside each
//! merge: quadratic in the pre-token's length, so only pre-tokens of up to
//! `MAX_BYTES` bytes are merged here.

use rustc_hash::FxHashMap;
use serde_json::Value;
use tokenizers::{Model, Tokenizer};

use crate::word_cache::hash_bytes;

/// Longer pre-tokens are left to `tokenizers`' own BPE.
pub const MAX_BYTES: usize = 128;
const NO_MERGE: (u32, u32) = (u32::MAX, 0);

pub struct Merges {
    /// The id of each byte's character.
    byte_ids: [u32; 256],
    /// (left id, right id) -> (priority, id of the merged token).
    ranks: PairTable,
    /// With `ignore_merges`: every vocabulary token by its bytes.
    whole: Option<VocabBytes>,
    /// `ranks` of every pair of single bytes (`a << 8 | b`): a pre-token's
    /// first pairs without a hash lookup.
    byte_pairs: Box<[(u32, u32)]>,
}

/// The merges by the ids of their two parts, in 8 bytes a merge where the
/// vocabulary allows (about 20 otherwise): an open-addressing table of
/// `u64` entries (the pair's ids and the merge's priority packed, `2 n + 1`
/// of them: a hash mapped onto that length by a multiply-shift, no power of
/// two), probed linearly. An empty entry is `u64::MAX`, which no pair packs
/// to (the ids' field is `id_bits` wide with every id below
/// `2^id_bits - 1`, so a pair's key is never all ones).
///
/// A merge's priority orders merges as their ranks do. Where the merged ids
/// never decrease with rank (GPT-2-style and tiktoken-derived vocabularies,
/// Llama 3 and Qwen 2 among them: a token's merges are listed when it is
/// made), it is the merged id, then the merge's place among those making the
/// same token: the merged id comes with the key, and a lookup is one memory
/// access (BPE of an uncached pre-token waits on these accesses). Otherwise
/// it is the rank, and the merged id is read from `merged` by rank.
struct PairTable {
    entries: Box<[u64]>,
    /// The id of the token each merge makes, by rank; empty when priorities
    /// hold it (`priority >> sub_bits`).
    merged: Box<[u32]>,
    /// Bits of each id in a key (the largest id of a merge's part fits).
    id_bits: u32,
    /// Bits of the priority below the key in an entry.
    prio_bits: u32,
    /// Bits of a merge's place among those making the same token.
    sub_bits: u32,
}

const EMPTY: u64 = u64::MAX;

/// The bits needed to write `n`.
fn bits(n: u64) -> u32 {
    64 - n.leading_zeros()
}

/// Each merge's priority (see `PairTable`) and the bits of its place among
/// the merges making the same token, when the merged ids never decrease
/// with rank.
fn merged_priorities(merges: &[[u32; 3]]) -> Option<(Vec<u32>, u32)> {
    let mut places = Vec::with_capacity(merges.len());
    let (mut place, mut most) = (0u32, 0u32);
    for (k, m) in merges.iter().enumerate() {
        match k.checked_sub(1).map(|j| merges[j][2]) {
            Some(prev) if prev > m[2] => return None,
            Some(prev) if prev == m[2] => place += 1,
            _ => place = 0,
        }
        most = most.max(place);
        places.push(place);
    }
    let sub_bits = bits(u64::from(most));
    let max_merged = merges.last().map_or(0, |m| m[2]);
    if bits(u64::from(max_merged)) + sub_bits >= 32 {
        return None;
    }
    let prios = merges.iter().zip(places).map(|(m, p)| m[2] << sub_bits | p);
    Some((prios.collect(), sub_bits))
}

impl PairTable {
    /// The table of `merges` (`[left, right, merged]` ids, by rank); a pair
    /// given twice takes its last rank, as `tokenizers`' map of merges
    /// does. None when ids and priorities do not pack into 64 bits (over
    /// 2^20 ids with 2^24 merges, say), or an id needs 32 bits.
    fn new(merges: &[[u32; 3]]) -> Option<PairTable> {
        let max_id = merges.iter().map(|m| m[0].max(m[1])).max().unwrap_or(0);
        let id_bits = bits(u64::from(max_id) + 1);
        let (prios, sub_bits, merged) = match merged_priorities(merges) {
            Some((prios, sub_bits)) => (prios, sub_bits, Box::default()),
            None => {
                let ranks = (0..u32::try_from(merges.len()).ok()?).collect();
                (ranks, 0, merges.iter().map(|m| m[2]).collect())
            }
        };
        let prio_bits = bits(prios.iter().copied().max().map_or(0, u64::from));
        // Ids of 32 bits are refused (no vocabulary comes near 2^31 tokens),
        // so `key`'s shift is always narrower than a u32.
        if id_bits >= 32 || 2 * id_bits + prio_bits > 64 {
            return None;
        }
        let mut table = PairTable {
            entries: vec![EMPTY; 2 * merges.len() + 1].into_boxed_slice(),
            merged,
            id_bits,
            prio_bits,
            sub_bits,
        };
        for (&[a, b, _], prio) in merges.iter().zip(prios) {
            let key = table.key(a, b)?;
            let i = table.find(key);
            table.entries[i] = key << prio_bits | u64::from(prio);
        }
        Some(table)
    }

    /// The key of the pair (a, b); None when an id is too wide for any.
    #[inline]
    fn key(&self, a: u32, b: u32) -> Option<u64> {
        ((a | b) >> self.id_bits == 0).then_some(u64::from(a) << self.id_bits | u64::from(b))
    }

    /// The index of the entry of `key`, or of the empty one it would take.
    #[inline]
    fn find(&self, key: u64) -> usize {
        let len = self.entries.len();
        let mut i = fastrange(mix(key), len);
        loop {
            let entry = self.entries[i];
            // `checked_shr`: 64 priority bits only with no ids, never.
            if entry == EMPTY || entry.checked_shr(self.prio_bits) == Some(key) {
                return i;
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
    }

    /// (priority, merged id) of the pair (a, b), or `NO_MERGE`.
    #[inline]
    fn get(&self, a: u32, b: u32) -> (u32, u32) {
        let Some(key) = self.key(a, b) else {
            return NO_MERGE;
        };
        match self.entries[self.find(key)] {
            EMPTY => NO_MERGE,
            entry => {
                let prio = (entry & ((1u64 << self.prio_bits) - 1)) as u32;
                match self.merged.is_empty() {
                    true => (prio, prio >> self.sub_bits),
                    false => (prio, self.merged[prio as usize]),
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        self.entries.len() * 8 + self.merged.len() * 4
    }
}

/// A 64-bit mix of all the key's bits into the high ones (the finalizer of
/// MurmurHash3), for `fastrange`.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// `h` mapped onto `0..len` by its high bits (Lemire's multiply-shift).
#[inline]
fn fastrange(h: u64, len: usize) -> usize {
    ((u128::from(h) * len as u128) >> 64) as usize
}

/// A vocabulary looked up by the bytes a token stands for (its characters
/// mapped back through `ByteLevel`'s table), with no string built: an
/// open-addressing table of 16-byte entries, each a token's length and id
/// and, for a token of up to 8 bytes (most), its bytes themselves, so that
/// finding one (or finding that a pre-token is no token) is one memory
/// access; a longer token's entry holds a tag of its hash, and its bytes lie
/// in `bytes`, back to back in id order.
struct VocabBytes {
    /// Zero-padded bytes (up to 8) or hash tag (longer), length, id; length
    /// 0: an empty entry. At most 3/5 full; a hash is mixed and mapped onto
    /// its length by `fastrange`.
    table: Vec<VocabEntry>,
    bytes: Vec<u8>,
    /// Token `id`'s bytes are `bytes[starts[id]..starts[id + 1]]` (tokens
    /// over 8 bytes; empty for the others).
    starts: Vec<u32>,
}

#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct VocabEntry {
    word: u64,
    len: u32,
    id: u32,
}

/// A byte string of up to 8 bytes as one number (zero-padded; with its
/// length, it is the string), or the low half of its hash.
#[inline]
fn vocab_word(bytes: &[u8], h: u64) -> u64 {
    if bytes.len() <= 8 {
        let mut padded = [0u8; 8];
        padded[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(padded)
    } else {
        h & 0xFFFF_FFFF
    }
}

impl VocabBytes {
    /// The vocabulary of `tok`'s model, as bytes; tokens with a character
    /// outside `chars` are left out (no pre-token maps to them). None when
    /// its ids are far sparser than its tokens.
    fn new(tok: &Tokenizer, chars: &[char; 256]) -> Option<VocabBytes> {
        let mut byte_of = FxHashMap::default();
        for (b, &c) in chars.iter().enumerate() {
            byte_of.insert(c, b as u8);
        }
        let mut by_id: Vec<(u32, String)> = tok
            .get_model()
            .get_vocab()
            .into_iter()
            .map(|(t, id)| (id, t))
            .collect();
        by_id.sort_unstable_by_key(|&(id, _)| id);
        let ids = by_id.last().map_or(0, |&(id, _)| id as usize + 1);
        if ids > 2 * by_id.len() + 1024 {
            return None;
        }
        let mut v = VocabBytes {
            table: vec![VocabEntry::default(); by_id.len() * 5 / 3 + 1],
            bytes: Vec::new(),
            starts: Vec::with_capacity(ids + 1),
        };
        let len = v.table.len();
        let mut token_bytes = Vec::new();
        for (id, token) in by_id {
            while v.starts.len() <= id as usize {
                v.starts.push(u32::try_from(v.bytes.len()).ok()?);
            }
            token_bytes.clear();
            let mapped = token.chars().map(|c| byte_of.get(&c).copied());
            if mapped
                .map(|b| b.map(|b| token_bytes.push(b)))
                .any(|b| b.is_none())
                || token_bytes.is_empty()
            {
                continue;
            }
            if token_bytes.len() > 8 {
                v.bytes.extend_from_slice(&token_bytes);
            }
            let h = hash_bytes(&token_bytes);
            let mut i = fastrange(mix(h), len);
            while v.table[i].len != 0 {
                i = if i + 1 == len { 0 } else { i + 1 };
            }
            v.table[i] = VocabEntry {
                word: vocab_word(&token_bytes, h),
                len: u32::try_from(token_bytes.len()).ok()?,
                id,
            };
        }
        v.starts.push(u32::try_from(v.bytes.len()).ok()?);
        v.bytes.shrink_to_fit();
        v.starts.shrink_to_fit();
        Some(v)
    }

    fn get(&self, bytes: &[u8]) -> Option<u32> {
        let len = self.table.len();
        let h = hash_bytes(bytes);
        let word = vocab_word(bytes, h);
        let mut i = fastrange(mix(h), len);
        loop {
            let e = self.table[i];
            if e.len == 0 {
                return None;
            }
            if e.len as usize == bytes.len() && e.word == word {
                if bytes.len() <= 8 {
                    return Some(e.id);
                }
                let id = e.id as usize;
                let token = &self.bytes[self.starts[id] as usize..self.starts[id + 1] as usize];
                if token == bytes {
                    return Some(e.id);
                }
            }
            i = if i + 1 == len { 0 } else { i + 1 };
        }
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + 4 * self.starts.capacity() + 16 * self.table.len()
    }
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

impl Merges {
    /// The merges of a byte-level BPE model as loaded in `tok`: its
    /// options from `model` (its JSON), and its merges as ids
    /// (`[left, right, merged]`, by rank: `tokenizer_json::MergeIds`), each
    /// byte's character `chars[b]`; None when its BPE adds prefixes or
    /// suffixes, or lacks a byte.
    pub fn for_model(
        model: &Value,
        tok: &Tokenizer,
        chars: &[char; 256],
        merges: &[[u32; 3]],
    ) -> Option<Merges> {
        if !empty(model.get("continuing_subword_prefix"))
            || !empty(model.get("end_of_word_suffix"))
            || !model["dropout"].is_null()
        {
            return None;
        }
        let bpe = tok.get_model();
        let mut byte_ids = [0u32; 256];
        for (b, c) in chars.iter().enumerate() {
            byte_ids[b] = bpe.token_to_id(&c.to_string())?;
        }
        let whole = match model["ignore_merges"].as_bool() == Some(true) {
            true => Some(VocabBytes::new(tok, chars)?),
            false => None,
        };
        let mut merges = Merges {
            byte_ids,
            ranks: PairTable::new(merges)?,
            whole,
            byte_pairs: Box::default(),
        };
        merges.byte_pairs = (0..1usize << 16)
            .map(|ab| merges.pair(byte_ids[ab >> 8], byte_ids[ab & 255]))
            .collect();
        Some(merges)
    }

    /// The bytes this holds on the heap (its tables).
    pub fn heap_bytes(&self) -> usize {
        let whole = self.whole.as_ref().map_or(0, VocabBytes::heap_bytes);
        self.ranks.heap_bytes() + whole + self.byte_pairs.len() * 8
    }

    #[inline]
    fn pair(&self, a: u32, b: u32) -> (u32, u32) {
        self.ranks.get(a, b)
    }

    /// Push the ids of the pre-token `bytes` onto `out` (at most
    /// `MAX_BYTES` bytes; none for none).
    pub fn tokenize(&self, bytes: &[u8], out: &mut Vec<u32>) {
        assert!(
            bytes.len() <= MAX_BYTES,
            "a pre-token too long to merge here"
        );
        if let Some(id) = self.whole.as_ref().and_then(|w| w.get(bytes)) {
            out.push(id);
            return;
        }
        let mut n = bytes.len();
        let mut symbols = [0u32; MAX_BYTES];
        for (s, &b) in symbols.iter_mut().zip(bytes) {
            *s = self.byte_ids[b as usize];
        }
        // pairs[k]: (priority, merged id) of symbols k and k + 1.
        let mut pairs = [NO_MERGE; MAX_BYTES];
        for k in 1..n {
            pairs[k - 1] = self.byte_pairs[usize::from(bytes[k - 1]) << 8 | usize::from(bytes[k])];
        }
        while n > 1 {
            let mut best = NO_MERGE.0;
            let mut at = 0;
            for (k, p) in pairs[..n - 1].iter().enumerate() {
                if p.0 < best {
                    best = p.0;
                    at = k;
                }
            }
            if best == NO_MERGE.0 {
                break;
            }
            symbols[at] = pairs[at].1;
            symbols.copy_within(at + 2..n, at + 1);
            pairs.copy_within(at + 1..n - 1, at);
            n -= 1;
            if at > 0 {
                pairs[at - 1] = self.pair(symbols[at - 1], symbols[at]);
            }
            if at + 1 < n {
                pairs[at] = self.pair(symbols[at], symbols[at + 1]);
            }
        }
        out.extend_from_slice(&symbols[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every merge is found with its merged id and a priority that orders
    /// merges as their ranks do, and no other pair is, for tables of 0, 1
    /// and many merges (ids near 0 and near the widest the table packs
    /// included; merged ids in rank order, with repeats, and not); ids too
    /// wide to pack are refused.
    #[test]
    fn the_pair_table_finds_every_merge_and_nothing_else() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = mix(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        };
        let many: Vec<[u32; 3]> = (0..5000)
            .map(|k| match k % 3 {
                0 => [k, k + 1, 7 * k],
                1 => [next() as u32 % 300, next() as u32 % 300, k],
                _ => [
                    (1 << 18) - 2 - (next() as u32 % 100),
                    next() as u32 % 400,
                    k,
                ],
            })
            .collect();
        // Merged ids that never decrease (some made by up to 9 merges).
        let mut sorted = many.clone();
        for (k, m) in sorted.iter_mut().enumerate() {
            m[2] = 300 + k as u32 / (1 + k as u32 % 9);
        }
        sorted.sort_by_key(|m| m[2]);
        assert!(PairTable::new(&[[u32::MAX - 1, 0, 0]]).is_none());
        let tables = [
            (vec![], true),
            (vec![[0, 0, 5]], true),
            (vec![[3, 4, 9], [1, 2, 3]], false),
            (many, false),
            (sorted, true),
        ];
        for (merges, by_merged) in tables {
            let table = PairTable::new(&merges).unwrap();
            assert!(table.entries.len() > merges.len());
            assert_eq!(table.merged.is_empty(), by_merged);
            // A pair given twice keeps its last rank.
            let mut last = FxHashMap::default();
            for (rank, &[a, b, id]) in merges.iter().enumerate() {
                last.insert((a, b), (rank, id));
            }
            let mut order = Vec::new();
            for (&(a, b), &(rank, id)) in &last {
                let (prio, merged) = table.get(a, b);
                assert_eq!(merged, id, "({a}, {b})");
                assert_ne!(prio, NO_MERGE.0);
                order.push((prio, rank));
            }
            order.sort_unstable();
            assert!(order.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
            let mut misses: Vec<(u32, u32)> = (0..20_000)
                .map(|_| (next() as u32 % 400, next() as u32 % 400))
                .collect();
            misses.extend([(u32::MAX, u32::MAX), (0, 1), (1, 0), (u32::MAX, 0)]);
            for (a, b) in misses.into_iter().filter(|p| !last.contains_key(p)) {
                assert_eq!(table.get(a, b), NO_MERGE, "({a}, {b})");
            }
        }
    }
}
