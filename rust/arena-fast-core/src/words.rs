//! Exact word-by-word encoding (filled in below).

use std::collections::HashMap;

use tokenizers::Tokenizer;

use crate::error::TokenizerError;

/// Ids of words already encoded, per thread.
#[derive(Default)]
pub struct WordCache {
    pub(crate) words: HashMap<String, Vec<u32>>,
}

pub struct WordSplitter {}

impl WordSplitter {
    pub fn for_tokenizer(_tok: &Tokenizer) -> Option<WordSplitter> {
        None
    }

    pub fn encode(
        &self,
        tok: &Tokenizer,
        text: &str,
        _split_special: bool,
        _cache: &mut WordCache,
    ) -> Result<Vec<u32>, TokenizerError> {
        let enc = tok
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }
}
