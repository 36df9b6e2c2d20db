//! Exact word-by-word encoding for vocabularies where BPE never merges across
//! a word start, so each distinct word is tokenized once, through a cache.
//!
//! Gemma-style tokenizers (normalizer `" " -> "▁"`, no splitting
//! pre-tokenizer, byte-fallback BPE) see a whole text as one word; their BPE
//! costs grow with the text and nothing is reused. But a merge across a
//! position `i` (where a `▁` run starts) produces a vocabulary entry with a
//! `▁` right after a non-`▁` character. If the vocabulary has few such
//! "crossing" entries, cutting the text at every word start that no occurrence
//! of a crossing entry covers gives the same ids as encoding it whole: BPE
//! applies merges by rank inside each part independently. Added tokens are
//! matched first exactly as `tokenizers` does (leftmost-longest over the raw
//! text, special ones skipped when special-token strings are plain text).
//!
//! Whether a tokenizer qualifies is decided at load time from its JSON; the
//! property tests compare against whole-text `tokenizers` encoding.

use std::borrow::Cow;

use serde_json::Value;
use tokenizers::{Model, Tokenizer};

use crate::added::{AddedTokens, Piece};
use crate::error::TokenizerError;
use crate::word_cache::WordCache;

const WORD_START: &str = "\u{2581}";
/// More crossing entries than this and splitting is not worth checking.
const MAX_CROSSING: usize = 64;

/// A vocabulary entry that spans a word start, and the byte offsets of the
/// word starts inside it.
struct Crossing {
    text: Vec<u8>,
    cuts: Vec<usize>,
}

pub struct WordSplitter {
    added: AddedTokens,
    crossing: Vec<Crossing>,
}

/// Byte offsets `k > 0` where a `▁` run starts inside `token`.
fn word_starts(token: &str) -> Vec<usize> {
    token
        .match_indices(WORD_START)
        .map(|(k, _)| k)
        .filter(|&k| k > 0 && !token[..k].ends_with(WORD_START))
        .collect()
}

fn is_str(v: &Value, s: &str) -> bool {
    v.as_str() == Some(s)
}

fn null_or_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

impl WordSplitter {
    /// Whether the pipeline of a tokenizer.json (`json`: its model's
    /// vocabulary is not read) is one splitting could be exact for: spaces
    /// replaced by `▁`, no other splitting, plain BPE.
    pub fn pipeline_fits(json: &Value) -> bool {
        // Normalizer: exactly Replace(" " -> "▁").
        let Some(norm) = json.get("normalizer") else {
            return false;
        };
        if !(is_str(&norm["type"], "Replace")
            && is_str(&norm["pattern"]["String"], " ")
            && is_str(&norm["content"], WORD_START))
        {
            return false;
        }
        // Pre-tokenizer: none, or a split on " " (a no-op once spaces are "▁").
        match json.get("pre_tokenizer") {
            None | Some(Value::Null) => {}
            Some(pre)
                if is_str(&pre["type"], "Split") && is_str(&pre["pattern"]["String"], " ") => {}
            Some(_) => return false,
        }
        let model = &json["model"];
        is_str(&model["type"], "BPE")
            && model["dropout"].is_null()
            && null_or_empty(model.get("continuing_subword_prefix"))
            && null_or_empty(model.get("end_of_word_suffix"))
            && model["ignore_merges"].as_bool() != Some(true)
    }

    /// A splitter when splitting is exact for this tokenizer (`json` its
    /// tokenizer.json, whose model vocabulary is read from `tok`), else None.
    pub fn for_tokenizer(json: &Value, tok: &Tokenizer) -> Option<WordSplitter> {
        if !Self::pipeline_fits(json) {
            return None;
        }
        let model = &json["model"];
        let bpe = tok.get_model();
        bpe.token_to_id(WORD_START)?;
        // Unknown characters must not fuse across parts: byte fallback with
        // every byte in the vocabulary, or no fusing.
        let all_bytes = (0..=255u8).all(|b| bpe.token_to_id(&format!("<0x{b:02X}>")).is_some());
        let byte_fallback = model["byte_fallback"].as_bool() == Some(true);
        if model["fuse_unk"].as_bool() == Some(true) && !(byte_fallback && all_bytes) {
            return None;
        }
        let mut crossing = Vec::new();
        for token in bpe.get_vocab().keys() {
            // Most entries hold no `▁` past their first byte (its lead byte 0xE2).
            if memchr::memchr(0xE2, token.as_bytes().get(1..).unwrap_or_default()).is_none() {
                continue;
            }
            let cuts = word_starts(token);
            if !cuts.is_empty() {
                // A merged byte-fallback piece would not show as text.
                if token.contains("<0x") || crossing.len() == MAX_CROSSING {
                    return None;
                }
                crossing.push(Crossing {
                    text: token.as_bytes().to_vec(),
                    cuts,
                });
            }
        }
        crossing.sort_by(|a, b| a.text.cmp(&b.text));
        // Added tokens: all matched on the raw text, none stripping spaces.
        let added = AddedTokens::for_tokenizer(json, tok).ok()?;
        Some(WordSplitter { added, crossing })
    }

    pub fn encode(
        &self,
        tok: &Tokenizer,
        text: &str,
        split_special: bool,
        cache: &mut WordCache,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.added.split(text, split_special, |piece| match piece {
            Piece::Text(part) => self.encode_piece(tok, part, cache, &mut out),
            Piece::Token(id) => {
                out.push(id);
                Ok(())
            }
        })?;
        Ok(out)
    }

    /// Whether an occurrence of a crossing entry covers the word start at `i`.
    fn covered(&self, bytes: &[u8], i: usize) -> bool {
        self.crossing.iter().any(|c| {
            c.cuts
                .iter()
                .any(|&k| i >= k && bytes.get(i - k..i - k + c.text.len()) == Some(&c.text[..]))
        })
    }

    fn encode_piece(
        &self,
        tok: &Tokenizer,
        piece: &str,
        cache: &mut WordCache,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let normalized: Cow<str> = if piece.contains(' ') {
            Cow::Owned(piece.replace(' ', WORD_START))
        } else {
            Cow::Borrowed(piece)
        };
        let s: &str = &normalized;
        let bytes = s.as_bytes();
        let mut word_start = 0;
        for (i, _) in s.match_indices(WORD_START) {
            if i == 0 || s[..i].ends_with(WORD_START) || self.covered(bytes, i) {
                continue;
            }
            self.encode_word(tok, &s[word_start..i], cache, out)?;
            word_start = i;
        }
        self.encode_word(tok, &s[word_start..], cache, out)
    }

    fn encode_word(
        &self,
        tok: &Tokenizer,
        word: &str,
        cache: &mut WordCache,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        cache.extend_with(word, out, |word, out| model_ids(tok, word, out))
    }
}

/// The ids the tokenizer's model (its BPE alone: no normalizer, no
/// pre-tokenizer) gives `piece`, pushed onto `out`.
pub(crate) fn model_ids(
    tok: &Tokenizer,
    piece: &str,
    out: &mut Vec<u32>,
) -> Result<(), TokenizerError> {
    let tokens = tok
        .get_model()
        .tokenize(piece)
        .map_err(|e| TokenizerError::Encode(e.to_string()))?;
    out.extend(tokens.iter().map(|t| t.id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_starts_inside_tokens() {
        assert_eq!(word_starts("▁hello"), Vec::<usize>::new());
        assert_eq!(word_starts("▁▁▁"), Vec::<usize>::new());
        assert_eq!(word_starts(">▁</"), vec![1]);
        assert_eq!(word_starts("a▁▁b▁c"), vec![1, 8]);
    }
}
