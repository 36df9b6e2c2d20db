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
        Ok(AddedTokens {
            matcher,
            ids: added.iter().map(|a| a.1).collect(),
            special: added.iter().map(|a| a.2).collect(),
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
        if let Some(matcher) = &self.matcher {
            for m in matcher.leftmost_find_iter(text) {
                let k = m.value() as usize;
                if split_special && self.special[k] {
                    continue;
                }
                if start < m.start() {
                    f(Piece::Text(&text[start..m.start()]))?;
                }
                f(Piece::Token(self.ids[k]))?;
                start = m.end();
            }
        }
        if start < text.len() {
            f(Piece::Text(&text[start..]))?;
        }
        Ok(())
    }
}
