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

/// Longer pre-tokens are left to `tokenizers`' own BPE.
pub const MAX_BYTES: usize = 128;
const NO_MERGE: (u32, u32) = (u32::MAX, 0);

pub struct Merges {
    /// The id of each byte's character.
    byte_ids: [u32; 256],
    /// (left, right) -> (rank, id of the merged token).
    ranks: FxHashMap<(u32, u32), (u32, u32)>,
    ignore_merges: bool,
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
            let key = (bpe.token_to_id(a)?, bpe.token_to_id(b)?);
            ranks.insert(key, (u32::try_from(rank).ok()?, bpe.token_to_id(&merged)?));
        }
        Some(Merges {
            byte_ids,
            ranks,
            ignore_merges: model["ignore_merges"].as_bool() == Some(true),
        })
    }

    fn pair(&self, a: u32, b: u32) -> (u32, u32) {
        self.ranks.get(&(a, b)).copied().unwrap_or(NO_MERGE)
    }

    /// Push the ids of the pre-token `bytes` (`mapped`: as `ByteLevel`
    /// writes it) onto `out`; at most `MAX_BYTES` bytes.
    pub fn tokenize(&self, tok: &Tokenizer, bytes: &[u8], mapped: &str, out: &mut Vec<u32>) {
        if self.ignore_merges {
            if let Some(id) = tok.get_model().token_to_id(mapped) {
                out.push(id);
                return;
            }
        }
        let mut symbols: Vec<u32> = bytes.iter().map(|&b| self.byte_ids[b as usize]).collect();
        // pairs[k]: (rank, merged id) of symbols k and k + 1.
        let mut pairs: Vec<(u32, u32)> =
            symbols.windows(2).map(|w| self.pair(w[0], w[1])).collect();
        loop {
            let mut best = NO_MERGE.0;
            let mut at = 0;
            for (k, p) in pairs.iter().enumerate() {
                if p.0 < best {
                    best = p.0;
                    at = k;
                }
            }
            if best == NO_MERGE.0 {
                break;
            }
            symbols[at] = pairs[at].1;
            symbols.remove(at + 1);
            pairs.remove(at);
            if at > 0 {
                pairs[at - 1] = self.pair(symbols[at - 1], symbols[at]);
            }
            if at < pairs.len() {
                pairs[at] = self.pair(symbols[at], symbols[at + 1]);
            }
        }
        out.extend_from_slice(&symbols);
    }
}
