//! Exact pre-token-by-pre-token encoding of byte-level BPE tokenizers
//! (Llama 3, Qwen 2 / 2.5, GPT-4 style) through a per-thread cache.
//!
//! Their pipeline is (an optional NFC normalizer) -> a regex `Split`
//! (`gpt_split`) -> `ByteLevel` (each byte as one of 256 printable
//! characters) -> BPE, and BPE never merges across pre-tokens: each distinct
//! pre-token is tokenized once (by ranks, `merges`, or for long ones by the
//! tokenizer's own BPE model) and its ids reused. Added tokens are matched first on the raw text (`added`), and NFC
//! is applied to the text between them, as `tokenizers` does.
//!
//! Whether a tokenizer qualifies is decided at load time from its JSON;
//! anything else keeps whole-text encoding, with the reason.

use std::borrow::Cow;

use serde_json::Value;
use tokenizers::{NormalizedString, Tokenizer};
use unicode_normalization_alignments::{is_nfc_quick, IsNormalized};

use crate::added::{AddedTokens, Piece};
use crate::error::TokenizerError;
use crate::gpt_split::Scanner;
use crate::merges::{Merges, MAX_BYTES};
use crate::word_cache::WordCache;
use crate::words::model_ids;

pub struct ByteLevelBpe {
    added: AddedTokens,
    scanner: Scanner,
    /// An NFC normalizer applies to the text between added tokens.
    nfc: bool,
    /// Each byte as `ByteLevel` writes it.
    bytes: Box<[char; 256]>,
    /// BPE of short pre-tokens by ranks; else (and for long ones) the
    /// tokenizer's own BPE model.
    merges: Option<Merges>,
}

/// GPT-2's map of bytes to printable characters, as `tokenizers`'
/// `ByteLevel` has it: printable Latin-1 bytes stand for themselves, the
/// others for U+0100 onwards in byte order.
pub fn byte_chars() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut chars = ['\0'; 256];
    let mut n = 0;
    for b in 0..=255u8 {
        chars[b as usize] = if printable(b) {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    chars
}

fn kind(node: &Value) -> &str {
    node["type"].as_str().unwrap_or("?")
}

/// The Split pattern of a `Sequence[Split(Regex, Isolated), ByteLevel]`
/// pre-tokenizer (ByteLevel without its own regex or a prefix space).
fn split_pattern(pre: &Value) -> Result<&str, String> {
    let parts = match (kind(pre), pre["pretokenizers"].as_array()) {
        ("Sequence", Some(parts)) if parts.len() == 2 => parts,
        _ => {
            return Err(format!(
                "its pre-tokenizer is {}, not a regex Split then ByteLevel",
                kind(pre)
            ))
        }
    };
    let (split, level) = (&parts[0], &parts[1]);
    let pattern = split["pattern"]["Regex"].as_str();
    let isolated = split["behavior"].as_str() == Some("Isolated");
    if kind(split) != "Split" || pattern.is_none() || !isolated || split["invert"] != false {
        return Err("its pre-tokenizer does not start with an isolating regex Split".into());
    }
    if kind(level) != "ByteLevel"
        || level["add_prefix_space"] != false
        || level["use_regex"] != false
    {
        return Err("its pre-tokenizer's ByteLevel step adds a prefix space or a regex".into());
    }
    pattern.ok_or_else(String::new)
}

impl ByteLevelBpe {
    /// The fast path for this tokenizer (its JSON, as loaded in `tok`, its
    /// merges by ids as `tokenizer_json` gives them, if it could), or why it has none.
    pub fn for_tokenizer(
        json: &Value,
        tok: &Tokenizer,
        merges: Option<&[[u32; 3]]>,
    ) -> Result<ByteLevelBpe, String> {
        let nfc = match json.get("normalizer") {
            None | Some(Value::Null) => false,
            Some(n) if kind(n) == "NFC" => true,
            Some(n) => return Err(format!("its normalizer is {}, not none or NFC", kind(n))),
        };
        let pre = json
            .get("pre_tokenizer")
            .filter(|p| !p.is_null())
            .ok_or("it has no pre-tokenizer")?;
        let pattern = split_pattern(pre)?;
        let scanner = Scanner::for_pattern(pattern).ok_or_else(|| {
            format!("its split pattern {pattern:?} is not one with a hand-written scanner")
        })?;
        let model = json.get("model").ok_or("it has no model")?;
        if kind(model) != "BPE" || !model["dropout"].is_null() {
            return Err(format!(
                "its model is {} with dropout {}, not BPE without dropout",
                kind(model),
                model["dropout"]
            ));
        }
        let added = AddedTokens::for_tokenizer(json, tok)?;
        let bytes = Box::new(byte_chars());
        Ok(ByteLevelBpe {
            added,
            scanner,
            nfc,
            merges: merges.and_then(|m| Merges::for_model(model, tok, &bytes, m)),
            bytes,
        })
    }

    /// Ids of `text` as `tok.encode_fast(text, false)` gives them.
    pub fn encode(
        &self,
        tok: &Tokenizer,
        text: &str,
        split_special: bool,
        cache: &mut WordCache,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 4 + 1);
        self.added.split(text, split_special, |piece| match piece {
            Piece::Token(id) => {
                out.push(id);
                Ok(())
            }
            Piece::Text(part) => {
                let part = self.normalize(part);
                self.scanner.split(&part, |pre| {
                    cache.extend_with(pre, &mut out, |pre, out| self.tokenize(tok, pre, out))
                })
            }
        })?;
        Ok(out)
    }

    /// The text as the normalizer leaves it.
    fn normalize<'a>(&self, part: &'a str) -> Cow<'a, str> {
        // No character below U+0300 changes under NFC (lead bytes < 0xCC).
        if !self.nfc
            || part.bytes().all(|b| b < 0xCC)
            || is_nfc_quick(part.chars()) == IsNormalized::Yes
        {
            return Cow::Borrowed(part);
        }
        let mut normalized = NormalizedString::from(part);
        normalized.nfc();
        Cow::Owned(normalized.get().to_owned())
    }

    /// The BPE ids of one pre-token, pushed onto `out`.
    fn tokenize(
        &self,
        tok: &Tokenizer,
        pre: &str,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        if let Some(merges) = self.merges.as_ref().filter(|_| pre.len() <= MAX_BYTES) {
            merges.tokenize(pre.as_bytes(), out);
            return Ok(());
        }
        let mapped: String = pre.bytes().map(|b| self.bytes[b as usize]).collect();
        model_ids(tok, &mapped, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_map_as_gpt2() {
        let chars = byte_chars();
        assert_eq!(chars[b' ' as usize], 'Ġ');
        assert_eq!(chars[b'\n' as usize], 'Ċ');
        assert_eq!(chars[b'a' as usize], 'a');
        assert_eq!(chars[0xAD], '\u{143}');
        let mut distinct = chars.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 256);
    }
}
