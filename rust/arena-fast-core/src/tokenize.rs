//! The tokenizer as the encoder uses it: a `tokenizers::Tokenizer` loaded from
//! its JSON, plain-text handling of special-token strings, and (see `words`)
//! exact word-by-word encoding through a cache where the vocabulary allows it
//! (`words` for Gemma-style vocabularies, `byte_level` for byte-level BPE
//! after a GPT-4-style split); `fast_path` tells which and why.
//! Its regexes are checked at load (`regex_check`) and search under budgets
//! (`regex_budget`, `regex_stages`).

use std::sync::OnceLock;

use tokenizers::Tokenizer;

use crate::byte_level::ByteLevelBpe;
use crate::error::TokenizerError;
use crate::regex_budget;
use crate::regex_check;
use crate::regex_stages::RegexStages;
use crate::tokenizer_json::Loaded;
use crate::word_cache::{with_thread_cache, WordCache};
use crate::words::WordSplitter;

pub struct ArenaTokenizer {
    /// Special-token strings in text become special tokens (HF's default).
    special: Tokenizer,
    /// Special-token strings in text are encoded as plain text.
    plain: OnceLock<Tokenizer>,
    path: FastPath,
    /// The normalizer and pre-tokenizer with budgeted regexes, if they have any.
    stages: Option<RegexStages>,
    /// Unique per loaded tokenizer: keys the per-thread word caches.
    id: u64,
}

/// How texts are encoded: through a per-thread cache of words or
/// pre-tokens, or whole by `tokenizers`.
enum FastPath {
    Words(WordSplitter),
    ByteLevel(Box<ByteLevelBpe>),
    /// Why neither cached path is exact for this tokenizer.
    Whole(String),
}

impl FastPath {
    fn for_tokenizer(
        json: &serde_json::Value,
        tok: &Tokenizer,
        merges: Option<&[[u32; 3]]>,
    ) -> FastPath {
        if let Some(splitter) = WordSplitter::for_tokenizer(json, tok) {
            return FastPath::Words(splitter);
        }
        match ByteLevelBpe::for_tokenizer(json, tok, merges) {
            Ok(bpe) => FastPath::ByteLevel(Box::new(bpe)),
            Err(why) => FastPath::Whole(format!(
                "not a Gemma-style word vocabulary, and not byte-level BPE with a known \
                 split: {why}"
            )),
        }
    }
}

/// Ids handed to tokenizers as they load (0 is never used: an empty cache).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn load_error(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Load(e.to_string())
}

impl ArenaTokenizer {
    pub fn from_file(path: &str) -> Result<ArenaTokenizer, TokenizerError> {
        let json = std::fs::read_to_string(path)
            .map_err(|e| TokenizerError::Load(format!("{path}: {e}")))?;
        Self::from_json(&json).map_err(|e| match e {
            TokenizerError::Load(m) => TokenizerError::Load(format!("{path}: {m}")),
            other => other,
        })
    }

    pub fn from_json(json: &str) -> Result<ArenaTokenizer, TokenizerError> {
        Self::from_json_with(json, true)
    }

    /// Like `from_json`; without `fast_path` every text is encoded whole
    /// (what the fast paths are checked against).
    pub fn from_json_with(json: &str, fast_path: bool) -> Result<ArenaTokenizer, TokenizerError> {
        regex_budget::install();
        // The byte-level path takes the merges by ids from the loader; both
        // read the vocabulary from the tokenizer.
        let want_merges =
            |json: &serde_json::Value| fast_path && !WordSplitter::pipeline_fits(json);
        let Loaded {
            tokenizer: mut special,
            json: value,
            merges,
        } = Loaded::from_json(json, want_merges).map_err(TokenizerError::Load)?;
        special.set_encode_special_tokens(false);
        // Budgets are ours to apply: a tokenizer.json may carry its own.
        special.with_truncation(None).map_err(load_error)?;
        special.with_padding(None);
        regex_check::check_patterns(&value)?;
        let path = if fast_path {
            FastPath::for_tokenizer(&value, &special, merges.as_deref())
        } else {
            FastPath::Whole("the fast path was turned off when loading".into())
        };
        let stages = RegexStages::for_tokenizer(&value);
        Ok(ArenaTokenizer {
            special,
            plain: OnceLock::new(),
            path,
            stages,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    fn inner(&self, split_special: bool) -> &Tokenizer {
        if split_special {
            self.plain.get_or_init(|| {
                let mut plain = self.special.clone();
                plain.set_encode_special_tokens(true);
                plain
            })
        } else {
            &self.special
        }
    }

    /// This tokenizer's identity for word caches.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether texts are encoded word by word through a cache (the
    /// Gemma-style path).
    pub fn word_split(&self) -> bool {
        matches!(self.path, FastPath::Words(_))
    }

    /// How texts are encoded, and why: `"word-cache"` (Gemma-style
    /// vocabularies, word by word), `"byte-level"` (byte-level BPE, pre-token
    /// by pre-token) or `"whole-text"` (`tokenizers` on the whole text).
    pub fn fast_path(&self) -> (&'static str, String) {
        match &self.path {
            FastPath::Words(_) => (
                "word-cache",
                "BPE never merges across a word start in this vocabulary: words are \
                 tokenized once each, through a cache"
                    .into(),
            ),
            FastPath::ByteLevel(_) => (
                "byte-level",
                "byte-level BPE after a known regex split: pre-tokens are split by a \
                 hand-written scanner and tokenized once each, through a cache"
                    .into(),
            ),
            FastPath::Whole(why) => ("whole-text", why.clone()),
        }
    }

    /// Ids of `text` without special tokens added, exactly as
    /// `tokenizer.encode(text, add_special_tokens=False)` gives them; through
    /// this thread's word cache when the vocabulary allows it.
    pub fn encode(&self, text: &str, split_special: bool) -> Result<Vec<u32>, TokenizerError> {
        with_thread_cache(self.id, |cache| {
            self.encode_cached(text, split_special, cache)
        })
    }

    /// Like `encode`, always whole-text through `tokenizers` (no splitting).
    pub fn encode_whole(
        &self,
        text: &str,
        split_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let tok = self.inner(split_special);
        match &self.stages {
            Some(stages) => regex_budget::bounded(|| stages.encode(tok, text))?,
            None => Ok(regex_budget::bounded(|| tok.encode_fast(text, false))?
                .map_err(|e| TokenizerError::Encode(e.to_string()))?
                .get_ids()
                .to_vec()),
        }
    }

    /// Like `encode`, through the word cache when the vocabulary allows it.
    pub fn encode_cached(
        &self,
        text: &str,
        split_special: bool,
        cache: &mut WordCache,
    ) -> Result<Vec<u32>, TokenizerError> {
        match &self.path {
            // The cached paths match added tokens themselves and only use
            // the BPE model, which both variants share: no plain copy is made.
            FastPath::Words(splitter) => splitter.encode(&self.special, text, split_special, cache),
            FastPath::ByteLevel(bpe) => bpe.encode(&self.special, text, split_special, cache),
            FastPath::Whole(_) => self.encode_whole(text, split_special),
        }
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.special.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.special.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.special.get_vocab_size(true)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        regex_budget::bounded(|| self.special.decode(ids, false))?
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    pub fn to_json(&self) -> Result<String, TokenizerError> {
        self.special.to_string(false).map_err(load_error)
    }
}
