//! Added tokens matched on raw text exactly as `tokenizers` does before any
//! normalizing or splitting: leftmost-longest over the text, a special
//! token's match skipped (its text then encoded as plain text) when
//! special-token strings are plain text (`split_special`). Shared by the
//! cached encoders (`words`, `byte_level`).

use daachorse::{DoubleArrayAhoCorasick, DoubleArrayAhoCorasickBuilder, MatchKind};
use serde_json::Value;
use tokenizers::Tokenizer;

/// The added tokens of one tokenizer, all matched on the raw text.
pub struct AddedTokens {
    /// Valued by the token's index in `ids` / `special`.
    matcher: Option<DoubleArrayAhoCorasick<u32>>,
    ids: Vec<u32>,
    special: Vec<bool>,
    /// Some token is not special (with `split_special` only those match).
    any_plain: bool,
    /// The distinct first bytes of the tokens, when at most 3: the text is
    /// searched for them with `memchr` and the matcher run only there.
    firsts: Option<Vec<u8>>,
    /// The longest token, in bytes.
    longest: usize,
}

/// A part of a text: plain text to encode, or an added token's id.
pub enum Piece<'a> {
    Text(&'a str),
    Token(u32),
}

impl AddedTokens {
    /// The added tokens of a tokenizer.json, or why they cannot be matched
    /// this way (a token normalized or stripping spaces, or the loaded
    /// tokenizer disagreeing with the JSON).
    pub fn for_tokenizer(json: &Value, tok: &Tokenizer) -> Result<AddedTokens, String> {
        let mut added = Vec::new();
        let tokens = json
            .get("added_tokens")
            .and_then(Value::as_array)
            .ok_or("the tokenizer.json has no added_tokens list")?;
        for t in tokens {
            let flag = |k: &str| t[k].as_bool() == Some(true);
            let content = t["content"]
                .as_str()
                .ok_or("an added token has no content")?;
            if flag("normalized") || flag("lstrip") || flag("rstrip") || flag("single_word") {
                return Err(format!(
                    "added token {content:?} is normalized or strips spaces or matches single words"
                ));
            }
            let id = t["id"]
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| format!("added token {content:?} has no valid id"))?;
            if !content.is_empty() {
                added.push((content.to_owned(), id, flag("special")));
            }
        }
        // The tokenizer must agree with what the JSON says.
        for (content, id, _) in &added {
            if tok.token_to_id(content) != Some(*id) {
                return Err(format!(
                    "added token {content:?} is not id {id} once loaded"
                ));
            }
        }
        let matcher = if added.is_empty() {
            None
        } else {
            let patterns = added
                .iter()
                .enumerate()
                .map(|(k, (c, _, _))| (c.as_str(), k as u32));
            Some(
                DoubleArrayAhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build_with_values(patterns)
                    .map_err(|e| format!("added tokens: {e}"))?,
            )
        };
        let mut firsts: Vec<u8> = added.iter().map(|a| a.0.as_bytes()[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();
        Ok(AddedTokens {
            matcher,
            ids: added.iter().map(|a| a.1).collect(),
            special: added.iter().map(|a| a.2).collect(),
            any_plain: added.iter().any(|a| !a.2),
            firsts: (firsts.len() <= 3).then_some(firsts),
            longest: added.iter().map(|a| a.0.len()).max().unwrap_or(0),
        })
    }

    /// Call `f` on the parts of `text` in order: the texts between added
    /// tokens (never empty) and the added tokens' ids.
    pub fn split<E>(
        &self,
        text: &str,
        split_special: bool,
        mut f: impl FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut start = 0;
        // With special tokens as plain text and no other: nothing matches.
        let matcher = self
            .matcher
            .as_ref()
            .filter(|_| self.any_plain || !split_special);
        if let Some(matcher) = matcher {
            let mut emit = |k: usize, from: usize, to: usize, start: &mut usize| {
                // A special token's match is skipped (its text stays text).
                if split_special && self.special[k] {
                    return Ok(());
                }
                if *start < from {
                    f(Piece::Text(&text[*start..from]))?;
                }
                *start = to;
                f(Piece::Token(self.ids[k]))
            };
            match &self.firsts {
                Some(firsts) => {
                    let bytes = text.as_bytes();
                    let mut pos = 0;
                    while let Some(at) = find_first(firsts, &bytes[pos..]) {
                        let p = pos + at;
                        // The leftmost-longest match starting at `p`, if any:
                        // no token is longer than the window.
                        let window = &bytes[p..(p + self.longest).min(bytes.len())];
                        match matcher.leftmost_find_iter(window).next() {
                            Some(m) if m.start() == 0 => {
                                emit(m.value() as usize, p, p + m.end(), &mut start)?;
                                pos = p + m.end();
                            }
                            _ => pos = p + 1,
                        }
                    }
                }
                None => {
                    for m in matcher.leftmost_find_iter(text) {
                        emit(m.value() as usize, m.start(), m.end(), &mut start)?;
                    }
                }
            }
        }
        if start < text.len() {
            f(Piece::Text(&text[start..]))?;
        }
        Ok(())
    }
}

/// Where the first of the (1 to 3) bytes `firsts` is in `hay`.
fn find_first(firsts: &[u8], hay: &[u8]) -> Option<usize> {
    match *firsts {
        [a] => memchr::memchr(a, hay),
        [a, b] => memchr::memchr2(a, b, hay),
        [a, b, c] => memchr::memchr3(a, b, c, hay),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(added: &AddedTokens, text: &str, split_special: bool) -> Vec<String> {
        let mut out = Vec::new();
        added
            .split(text, split_special, |p| {
                out.push(match p {
                    Piece::Text(t) => format!("T{t}"),
                    Piece::Token(id) => format!("#{id}"),
                });
                Ok::<(), ()>(())
            })
            .unwrap();
        out
    }

    /// The search from each token's first byte (`memchr`) against the
    /// matcher run over the whole text, on every string of up to 7
    /// characters over the tokens' alphabet.
    #[test]
    fn first_byte_search_equals_the_full_matcher() {
        let json = r#"{"version": "1.0", "added_tokens": [
            {"id": 3, "content": "<x>", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
            {"id": 4, "content": "<y>", "special": false, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
            {"id": 5, "content": "<yy>", "special": false, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
            {"id": 6, "content": "é<", "special": false, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}],
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "<": 2}, "merges": []}}"#;
        let tok: Tokenizer = json.parse().unwrap();
        let value: Value = serde_json::from_str(json).unwrap();
        let fast = AddedTokens::for_tokenizer(&value, &tok).unwrap();
        assert_eq!(fast.firsts.as_deref(), Some(&[b'<', 0xC3][..]));
        let full = AddedTokens {
            firsts: None,
            ..AddedTokens::for_tokenizer(&value, &tok).unwrap()
        };
        let alphabet = ["<", "x", "y", ">", "a", "é"];
        let mut texts = vec![String::new()];
        for _ in 0..7 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            for text in &texts {
                for split_special in [false, true] {
                    assert_eq!(
                        parts(&fast, text, split_special),
                        parts(&full, text, split_special),
                        "{text:?} {split_special}"
                    );
                }
            }
        }
        assert_eq!(parts(&fast, "a<yy><x>", false), ["Ta", "#5", "#3"]);
        assert_eq!(parts(&fast, "a<yy><x>", true), ["Ta", "#5", "T<x>"]);
    }
}
