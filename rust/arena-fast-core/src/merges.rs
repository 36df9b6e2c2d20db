//! BPE of one short byte-level pre-token by merge ranks, giving exactly the
//! ids of `tokenizers`' `BPE::tokenize` (which the byte-level fast path uses
//! for long pre-tokens and for vocabularies this module does not take).
//!
//! `tokenizers` merges, again and again, the adjacent pair of lowest rank,
//! the leftmost on a tie (its heap orders by rank, then position); with
//! `ignore_merges` a pre-token that is itself in the vocabulary is that one
//! token. Here the same order is kept with a rank per adjacent pair,
//! recomputed only beside each merge: quadratic in the pre-token's length,
//! so only pre-tokens of up to `MAX_BYTES` bytes are merged here.

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
    /// (left id, right id) -> (rank, id of the merged token).
    ranks: PairTable,
    /// With `ignore_merges`: every vocabulary token by its bytes.
    whole: Option<VocabBytes>,
    /// `ranks` of every pair of single bytes (`a << 8 | b`): a pre-token's
    /// first pairs without a hash lookup.
    byte_pairs: Box<[(u32, u32)]>,
}

/// The merges by the ids of their two parts, in about 20 bytes a merge:
/// an open-addressing table of 8-byte entries (the pair's ids and the
/// merge's rank packed into one `u64`, `2 n + 1` of them: a hash mapped onto
/// that length by a multiply-shift, no power of two), probed linearly, and
/// the merged id by rank. An empty entry is `u64::MAX`, which no pair
/// packs to (the ids' field is `id_bits` wide with every id below
/// `2^id_bits - 1`, so a pair's key is never all ones).
struct PairTable {
    entries: Box<[u64]>,
    /// The id of the token each merge makes, by rank.
    merged: Box<[u32]>,
    /// Bits of each id in a key (the largest id of a merge's part fits).
    id_bits: u32,
    /// Bits of the rank below the key in an entry.
    rank_bits: u32,
}

const EMPTY: u64 = u64::MAX;

/// The bits needed to write `n`.
fn bits(n: u64) -> u32 {
    64 - n.leading_zeros()
}

impl PairTable {
    /// The table of `merges` (`[left, right, merged]` ids, by rank); a pair
    /// given twice takes its last rank, as `tokenizers`' map of merges
    /// does. None when ids and ranks do not pack into 64 bits (over 2^20
    /// ids with 2^24 merges, say).
    fn new(merges: &[[u32; 3]]) -> Option<PairTable> {
        let max_id = merges.iter().map(|m| m[0].max(m[1])).max().unwrap_or(0);
        let id_bits = bits(u64::from(max_id) + 1);
        let rank_bits = bits(merges.len() as u64);
        if 2 * id_bits + rank_bits > 64 {
            return None;
        }
        let mut table = PairTable {
            entries: vec![EMPTY; 2 * merges.len() + 1].into_boxed_slice(),
            merged: merges.iter().map(|m| m[2]).collect(),
            id_bits,
            rank_bits,
        };
        for (rank, &[a, b, _]) in merges.iter().enumerate() {
            let key = table.key(a, b)?;
            let i = table.find(key);
            table.entries[i] = key << rank_bits | rank as u64;
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
            // `checked_shr`: 64 rank bits only with no ids, never.
            if entry == EMPTY || entry.checked_shr(self.rank_bits) == Some(key) {
                return i;
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
    }

    /// (rank, merged id) of the pair (a, b), or `NO_MERGE`.
    #[inline]
    fn get(&self, a: u32, b: u32) -> (u32, u32) {
        let Some(key) = self.key(a, b) else {
            return NO_MERGE;
        };
        match self.entries[self.find(key)] {
            EMPTY => NO_MERGE,
            entry => {
                let rank = (entry & ((1u64 << self.rank_bits) - 1)) as u32;
                (rank, self.merged[rank as usize])
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
/// mapped back through `ByteLevel`'s table), with no string built: the
/// tokens' bytes back to back, and an open-addressing table of entries.
struct VocabBytes {
    bytes: Vec<u8>,
    /// Entry `k`'s bytes end at `ends[k]` (and start at `ends[k - 1]`).
    ends: Vec<u32>,
    ids: Vec<u32>,
    /// Entry index + 1 (0: empty); a power of two long, at most 3/4 full.
    table: Vec<u32>,
}

impl VocabBytes {
    /// The vocabulary of `tok`'s model, as bytes; tokens with a character
    /// outside `chars` are left out (no pre-token maps to them).
    fn new(tok: &Tokenizer, chars: &[char; 256]) -> Option<VocabBytes> {
        let mut byte_of = FxHashMap::default();
        for (b, &c) in chars.iter().enumerate() {
            byte_of.insert(c, b as u8);
        }
        let vocab = tok.get_model().get_vocab();
        let mut v = VocabBytes {
            bytes: Vec::new(),
            ends: Vec::with_capacity(vocab.len()),
            ids: Vec::with_capacity(vocab.len()),
            table: vec![0; (vocab.len() * 4 / 3 + 1).next_power_of_two()],
        };
        'tokens: for (token, id) in vocab {
            let start = v.bytes.len();
            for c in token.chars() {
                match byte_of.get(&c) {
                    Some(&b) => v.bytes.push(b),
                    None => {
                        v.bytes.truncate(start);
                        continue 'tokens;
                    }
                }
            }
            v.ends.push(u32::try_from(v.bytes.len()).ok()?);
            v.ids.push(id);
            let mask = v.table.len() - 1;
            let mut i = hash_bytes(&v.bytes[start..]) as usize & mask;
            while v.table[i] != 0 {
                i = (i + 1) & mask;
            }
            v.table[i] = v.ids.len() as u32;
        }
        v.bytes.shrink_to_fit();
        v.ends.shrink_to_fit();
        v.ids.shrink_to_fit();
        Some(v)
    }

    fn get(&self, bytes: &[u8]) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut i = hash_bytes(bytes) as usize & mask;
        loop {
            let k = self.table[i] as usize;
            if k == 0 {
                return None;
            }
            let start = if k == 1 { 0 } else { self.ends[k - 2] as usize };
            if &self.bytes[start..self.ends[k - 1] as usize] == bytes {
                return Some(self.ids[k - 1]);
            }
            i = (i + 1) & mask;
        }
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
        let whole = self.whole.as_ref().map_or(0, |w| {
            w.bytes.capacity() + 4 * (w.ends.capacity() + w.ids.capacity() + w.table.len())
        });
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
        // pairs[k]: (rank, merged id) of symbols k and k + 1.
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

    /// Every merge is found with its rank and merged id, and no other pair
    /// is, for tables of 0, 1 and many merges (ids near 0 and near the
    /// widest the table packs included); ids too wide to pack are refused.
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
        assert!(PairTable::new(&[[u32::MAX - 1, 0, 0]]).is_none());
        let tables = [vec![], vec![[0, 0, 5]], vec![[3, 4, 9]], many];
        for merges in tables {
            let table = PairTable::new(&merges).unwrap();
            assert!(table.entries.len() > merges.len());
            // A pair given twice keeps its last rank.
            let mut last = FxHashMap::default();
            for (rank, &[a, b, id]) in merges.iter().enumerate() {
                last.insert((a, b), (rank as u32, id));
            }
            for (&(a, b), &want) in &last {
                assert_eq!(table.get(a, b), want, "({a}, {b})");
            }
            for _ in 0..20_000 {
                let (a, b) = (next() as u32 % 400, next() as u32 % 400);
                let want = last.get(&(a, b)).copied().unwrap_or(NO_MERGE);
                assert_eq!(table.get(a, b), want, "({a}, {b})");
            }
            for (a, b) in [(u32::MAX, u32::MAX), (0, 1), (1, 0), (u32::MAX, 0)] {
                let want = last.get(&(a, b)).copied().unwrap_or(NO_MERGE);
                assert_eq!(table.get(a, b), want, "({a}, {b})");
            }
        }
    }
}
