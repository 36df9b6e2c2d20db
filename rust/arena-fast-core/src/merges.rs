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
    /// (left << 32 | right) -> (rank, id of the merged token).
    ranks: FxHashMap<u64, (u32, u32)>,
    /// With `ignore_merges`: every vocabulary token by its bytes.
    whole: Option<VocabBytes>,
    /// `ranks` of every pair of single bytes (`a << 8 | b`): a pre-token's
    /// first pairs without a hash lookup.
    byte_pairs: Box<[(u32, u32)]>,
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
    /// The vocabulary (token -> id) of `tok`'s model, as bytes; tokens with
    /// a character outside `chars` are left out (no pre-token maps to them).
    fn new(
        vocab: &serde_json::Map<String, Value>,
        tok: &Tokenizer,
        chars: &[char; 256],
    ) -> Option<VocabBytes> {
        let mut byte_of = FxHashMap::default();
        for (b, &c) in chars.iter().enumerate() {
            byte_of.insert(c, b as u8);
        }
        let bpe = tok.get_model();
        let mut v = VocabBytes {
            bytes: Vec::new(),
            ends: Vec::with_capacity(vocab.len()),
            ids: Vec::with_capacity(vocab.len()),
            table: vec![0; (vocab.len() * 4 / 3 + 1).next_power_of_two()],
        };
        'tokens: for (token, id) in vocab {
            let id = u32::try_from(id.as_u64()?).ok()?;
            // The loaded vocabulary must say the same (no duplicate keys).
            if bpe.token_to_id(token) != Some(id) {
                return None;
            }
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
    /// The merges of a byte-level BPE `model` (its JSON) as loaded in `tok`,
    /// each byte's character `chars[b]`; None when its BPE adds prefixes or
    /// suffixes, lacks a byte, or a merge is not in the vocabulary.
    pub fn for_model(model: &Value, tok: &Tokenizer, chars: &[char; 256]) -> Option<Merges> {
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
        let list = model["merges"].as_array()?;
        let mut ranks = FxHashMap::default();
        ranks.reserve(list.len());
        let mut merged = String::new();
        // "a b" strings (split at spaces, "#version" lines skipped, as
        // `tokenizers` reads them) or [a, b] pairs.
        let legacy_header = |m: &Value| m.as_str().is_some_and(|s| s.starts_with("#version"));
        for (rank, merge) in list.iter().filter(|m| !legacy_header(m)).enumerate() {
            let (a, b) = match merge {
                Value::String(s) => {
                    let mut parts = s.split(' ');
                    let pair = (parts.next()?, parts.next()?);
                    parts.next().is_none().then_some(pair)?
                }
                Value::Array(pair) if pair.len() == 2 => (pair[0].as_str()?, pair[1].as_str()?),
                _ => return None,
            };
            merged.clear();
            merged.push_str(a);
            merged.push_str(b);
            let key = u64::from(bpe.token_to_id(a)?) << 32 | u64::from(bpe.token_to_id(b)?);
            ranks.insert(key, (u32::try_from(rank).ok()?, bpe.token_to_id(&merged)?));
        }
        let whole = match model["ignore_merges"].as_bool() == Some(true) {
            true => Some(VocabBytes::new(model["vocab"].as_object()?, tok, chars)?),
            false => None,
        };
        let mut merges = Merges {
            byte_ids,
            ranks,
            whole,
            byte_pairs: Box::default(),
        };
        merges.byte_pairs = (0..1usize << 16)
            .map(|ab| merges.pair(byte_ids[ab >> 8], byte_ids[ab & 255]))
            .collect();
        Some(merges)
    }

    #[inline]
    fn pair(&self, a: u32, b: u32) -> (u32, u32) {
        let key = u64::from(a) << 32 | u64::from(b);
        self.ranks.get(&key).copied().unwrap_or(NO_MERGE)
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
