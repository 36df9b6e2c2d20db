//! The normalizer and pre-tokenizer of a tokenizer.json rebuilt so that
//! their `Regex` patterns search under each text's budget (`regex_budget`),
//! and the encoding steps of `tokenizers`' `encode_fast` run with them.
//!
//! Only `Replace` normalizers and `Split` pre-tokenizers take a `Regex`
//! pattern; they (inside `Sequence`s too) become `Budgeted` searches of the
//! same `onig::Regex`, giving the same matches. Every other stage is the
//! `tokenizers` one, deserialized from the same JSON. A tokenizer without a
//! `Regex` pattern in those two places has no stages and is encoded by
//! `tokenizers` directly.

use onig::Regex;
use serde_json::Value;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{
    Model, NormalizedString, Normalizer, OffsetType, PreTokenizedString, PreTokenizer,
    SplitDelimiterBehavior, Tokenizer,
};

use crate::error::TokenizerError;
use crate::regex_budget::{Budgeted, TextBudget};

enum Normalize {
    Replace { regex: Regex, content: String },
    Sequence(Vec<Normalize>),
    Other(NormalizerWrapper),
}

enum PreTokenize {
    Split {
        regex: Regex,
        behavior: SplitDelimiterBehavior,
        invert: bool,
    },
    Sequence(Vec<PreTokenize>),
    Other(PreTokenizerWrapper),
}

/// The budgeted stages of one tokenizer.
pub struct RegexStages {
    normalizer: Option<Normalize>,
    pre_tokenizer: Option<PreTokenize>,
}

fn regex_of(node: &Value) -> Option<&str> {
    node.get("pattern")?.get("Regex")?.as_str()
}

fn has_regex(node: &Value) -> bool {
    match node {
        Value::Object(map) => regex_of(node).is_some() || map.values().any(has_regex),
        Value::Array(items) => items.iter().any(has_regex),
        _ => false,
    }
}

fn normalize_of(node: &Value) -> Option<Normalize> {
    match (node["type"].as_str(), regex_of(node)) {
        (Some("Replace"), Some(pattern)) => Some(Normalize::Replace {
            regex: Regex::new(pattern).ok()?,
            content: node["content"].as_str()?.to_owned(),
        }),
        (Some("Sequence"), _) => node["normalizers"]
            .as_array()?
            .iter()
            .map(normalize_of)
            .collect::<Option<_>>()
            .map(Normalize::Sequence),
        _ => serde_json::from_value(node.clone())
            .ok()
            .map(Normalize::Other),
    }
}

fn pre_tokenize_of(node: &Value) -> Option<PreTokenize> {
    match (node["type"].as_str(), regex_of(node)) {
        (Some("Split"), Some(pattern)) => Some(PreTokenize::Split {
            regex: Regex::new(pattern).ok()?,
            behavior: serde_json::from_value(node["behavior"].clone()).ok()?,
            invert: node["invert"].as_bool()?,
        }),
        (Some("Sequence"), _) => node["pretokenizers"]
            .as_array()?
            .iter()
            .map(pre_tokenize_of)
            .collect::<Option<_>>()
            .map(PreTokenize::Sequence),
        _ => serde_json::from_value(node.clone())
            .ok()
            .map(PreTokenize::Other),
    }
}

fn present(node: Option<&Value>) -> Option<&Value> {
    node.filter(|v| !v.is_null())
}

impl RegexStages {
    /// The stages of a tokenizer.json with a `Regex` pattern in its
    /// normalizer or pre-tokenizer; None without one, or when a stage is not
    /// one this module can rebuild (`tokenizers` then runs it, each search
    /// bounded by `regex_budget::RETRY_LIMIT`).
    pub fn for_tokenizer(json: &Value) -> Option<RegexStages> {
        let normalizer = present(json.get("normalizer"));
        let pre_tokenizer = present(json.get("pre_tokenizer"));
        if !normalizer.is_some_and(has_regex) && !pre_tokenizer.is_some_and(has_regex) {
            return None;
        }
        Some(RegexStages {
            normalizer: match normalizer {
                Some(node) => Some(normalize_of(node)?),
                None => None,
            },
            pre_tokenizer: match pre_tokenizer {
                Some(node) => Some(pre_tokenize_of(node)?),
                None => None,
            },
        })
    }

    /// The ids of `text` as `tok.encode_fast(text, false)` gives them, its
    /// regex searches within its budget.
    pub fn encode(&self, tok: &Tokenizer, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let budget = TextBudget::for_text(text);
        let normalizer = self.normalizer.as_ref().map(|stage| Stage {
            stage,
            budget: &budget,
        });
        let encode_error = |e: tokenizers::Error| match budget.check() {
            Err(regex) => regex,
            Ok(()) => TokenizerError::Encode(e.to_string()),
        };
        // As `TokenizerImpl::encode_single_sequence`, then `post_process`.
        let mut pieces = tok
            .get_added_vocabulary()
            .extract_and_normalize(normalizer.as_ref(), text);
        budget.check()?;
        if let Some(stage) = &self.pre_tokenizer {
            Stage {
                stage,
                budget: &budget,
            }
            .pre_tokenize(&mut pieces)
            .map_err(encode_error)?;
        }
        tok.get_model()
            .tokenize_in_pretokenized(&mut pieces, None)
            .map_err(encode_error)?;
        let encoding = pieces
            .into_encoding(None, 0, OffsetType::None)
            .and_then(|e| tok.post_process(e, None, false))
            .map_err(encode_error)?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// A stage run for one text, under its budget.
struct Stage<'a, S> {
    stage: &'a S,
    budget: &'a TextBudget,
}

impl Normalizer for Stage<'_, Normalize> {
    fn normalize(&self, normalized: &mut NormalizedString) -> tokenizers::Result<()> {
        match self.stage {
            Normalize::Replace { regex, content } => {
                let pattern = Budgeted {
                    regex,
                    budget: self.budget,
                };
                normalized.replace(pattern, content)
            }
            Normalize::Sequence(stages) => stages.iter().try_for_each(|stage| {
                Stage {
                    stage,
                    budget: self.budget,
                }
                .normalize(normalized)
            }),
            Normalize::Other(n) => n.normalize(normalized),
        }
    }
}

impl PreTokenizer for Stage<'_, PreTokenize> {
    fn pre_tokenize(&self, pieces: &mut PreTokenizedString) -> tokenizers::Result<()> {
        match self.stage {
            PreTokenize::Split {
                regex,
                behavior,
                invert,
            } => {
                let pattern = Budgeted {
                    regex,
                    budget: self.budget,
                };
                // As `tokenizers::pre_tokenizers::split::Split`.
                if *invert {
                    let inverted = || tokenizers::tokenizer::pattern::Invert(pattern);
                    pieces.split(|_, piece| piece.split(inverted(), *behavior))
                } else {
                    pieces.split(|_, piece| piece.split(pattern, *behavior))
                }
            }
            PreTokenize::Sequence(stages) => stages.iter().try_for_each(|stage| {
                Stage {
                    stage,
                    budget: self.budget,
                }
                .pre_tokenize(pieces)
            }),
            PreTokenize::Other(p) => p.pre_tokenize(pieces),
        }
    }
}
