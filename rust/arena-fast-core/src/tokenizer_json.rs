//! A tokenizer.json read in one pass: the `tokenizers::Tokenizer` it
//! describes, its JSON without the model's vocabulary and merges (the big
//! part, read from the loaded tokenizer instead), and when asked for, the
//! merges as ids (for the byte-level fast path: no copy of them as JSON).
//!
//! `tokenizers` parses a BPE model slowly (the whole model is buffered, its
//! vocabulary turned into a JSON map, then into the BPE: over a second for
//! Gemma's 262k entries). Here a BPE model's `vocab` and `merges` are read
//! straight into the types `BpeBuilder` takes and the model built with the
//! options of the JSON, exactly as `tokenizers`' own BPE deserializer does;
//! every other part (normalizer, pre-tokenizer, post-processor, decoder,
//! truncation, padding) is deserialized by `tokenizers` from the same JSON,
//! and the added tokens are added after the model, as `tokenizers` does. A
//! tokenizer this does not cover (another model, a JSON it cannot read) is
//! parsed by `tokenizers` as a whole, so its errors stay `tokenizers`' own.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::{AddedToken, Model, Tokenizer};

/// A tokenizer.json's parts as read in one pass.
#[derive(Deserialize)]
struct Document {
    model: ModelParts,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct ModelParts {
    vocab: Option<Vocab>,
    merges: Option<Vec<MergeItem>>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// One merge: a pair `["a", "b"]` or a legacy `"a b"` line.
enum MergeItem {
    Pair(String, String),
    Line(String),
}

impl<'de> Deserialize<'de> for MergeItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MergeVisitor;
        impl<'de> Visitor<'de> for MergeVisitor {
            type Value = MergeItem;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a merge: a pair of strings or a \"a b\" string")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<MergeItem, E> {
                Ok(MergeItem::Line(s.to_owned()))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<MergeItem, E> {
                Ok(MergeItem::Line(s))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MergeItem, A::Error> {
                let mut next = || {
                    seq.next_element::<String>()?
                        .ok_or_else(|| de::Error::custom("a merge pair has fewer than 2 parts"))
                };
                let (a, b) = (next()?, next()?);
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("a merge pair has more than 2 parts"));
                }
                Ok(MergeItem::Pair(a, b))
            }
        }
        deserializer.deserialize_any(MergeVisitor)
    }
}

/// The merges as `tokenizers` reads them: all pairs, or all lines (split at
/// their one space, `#version` lines skipped).
fn merge_pairs(items: Vec<MergeItem>) -> Option<Vec<(String, String)>> {
    let lines = items.iter().all(|m| matches!(m, MergeItem::Line(_)));
    let mut pairs = Vec::with_capacity(items.len());
    for item in items {
        match item {
            MergeItem::Pair(a, b) if !lines => pairs.push((a, b)),
            MergeItem::Line(line) if lines => {
                if line.starts_with("#version") {
                    continue;
                }
                let (a, b) = line.split_once(' ')?;
                if b.contains(' ') {
                    return None;
                }
                pairs.push((a.to_owned(), b.to_owned()));
            }
            // A mix of both: `tokenizers` refuses it (with its message).
            _ => return None,
        }
    }
    Some(pairs)
}

/// A BPE model's merges as ids, `[left, right, merged]`, in rank order.
pub type MergeIds = Vec<[u32; 3]>;

/// The ids of `pairs` by `id` (a vocabulary), the merged token being the
/// two parts' concatenation; None when a part or the merge has no id.
fn merge_ids(pairs: &[(String, String)], id: impl Fn(&str) -> Option<u32>) -> Option<MergeIds> {
    let mut merged = String::new();
    let ids = pairs.iter().map(|(a, b)| {
        merged.clear();
        merged.push_str(a);
        merged.push_str(b);
        Some([id(a)?, id(b)?, id(&merged)?])
    });
    ids.collect()
}

/// The value of an optional model option (`null` as absent), as
/// `tokenizers`' BPE deserializer reads it.
fn option<T: serde::de::DeserializeOwned>(
    model: &Map<String, Value>,
    key: &str,
) -> Option<Option<T>> {
    match model.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(v) => T::deserialize(v).ok().map(Some),
    }
}

/// The BPE model of `model` (its options) with this vocabulary and merges.
fn bpe(model: &Map<String, Value>, vocab: Vocab, merges: Vec<(String, String)>) -> Option<BPE> {
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        return None;
    }
    let mut builder = BPE::builder();
    if let Some(dropout) = option::<f32>(model, "dropout")? {
        builder = builder.dropout(dropout);
    }
    if let Some(unk) = option::<String>(model, "unk_token")? {
        builder = builder.unk_token(unk);
    }
    if let Some(prefix) = option::<String>(model, "continuing_subword_prefix")? {
        builder = builder.continuing_subword_prefix(prefix);
    }
    if let Some(suffix) = option::<String>(model, "end_of_word_suffix")? {
        builder = builder.end_of_word_suffix(suffix);
    }
    if let Some(fuse) = option::<bool>(model, "fuse_unk")? {
        builder = builder.fuse_unk(fuse);
    }
    if let Some(fallback) = option::<bool>(model, "byte_fallback")? {
        builder = builder.byte_fallback(fallback);
    }
    if let Some(ignore) = option::<bool>(model, "ignore_merges")? {
        builder = builder.ignore_merges(ignore);
    }
    builder.vocab_and_merges(vocab, merges).build().ok()
}

/// A loaded tokenizer and its JSON, which lacks `model.vocab` and
/// `model.merges` when it was read in one pass (read them from
/// `tokenizer`).
pub struct Loaded {
    pub tokenizer: Tokenizer,
    pub json: Value,
    /// The merges of a BPE model by ids, when asked for (and readable).
    pub merges: Option<MergeIds>,
}

impl Loaded {
    /// Load `text`; `want_merges(json)` says whether to give back the
    /// model's merges by ids (e.g. for a byte-level fast path).
    pub fn from_json(text: &str, want_merges: impl Fn(&Value) -> bool) -> Result<Loaded, String> {
        if let Some(loaded) = Self::one_pass(text, &want_merges) {
            return Ok(loaded);
        }
        // `tokenizers` reads it whole, or says why not.
        let tokenizer: Tokenizer = text.parse().map_err(|e| format!("{e}"))?;
        let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let merges = want_merges(&json)
            .then(|| {
                let items = Vec::<MergeItem>::deserialize(json["model"].get("merges")?).ok()?;
                let model = tokenizer.get_model();
                merge_ids(&merge_pairs(items)?, |t| model.token_to_id(t))
            })
            .flatten();
        Ok(Loaded {
            tokenizer,
            json,
            merges,
        })
    }

    fn one_pass(text: &str, want_merges: &impl Fn(&Value) -> bool) -> Option<Loaded> {
        let Document { model, mut rest } = serde_json::from_str(text).ok()?;
        let ModelParts {
            vocab,
            merges,
            rest: model_rest,
        } = model;
        let merges = merge_pairs(merges?)?;
        // Every part but the model and the added tokens, by `tokenizers`.
        let added = rest.insert("added_tokens".into(), Value::Array(Vec::new()));
        let stub = serde_json::json!({"type": "BPE", "vocab": {}, "merges": []});
        rest.insert("model".into(), stub);
        let mut tokenizer = Tokenizer::deserialize(&Value::Object(rest.clone())).ok()?;
        let added = added?;
        let added_tokens = Vec::<AddedToken>::deserialize(&added).ok()?;
        rest.insert("added_tokens".into(), added);
        rest.insert("model".into(), Value::Object(model_rest.clone()));
        let json = Value::Object(rest);
        let vocab = vocab?;
        let ids = match want_merges(&json) {
            true => merge_ids(&merges, |t| vocab.get(t).copied()),
            false => None,
        };
        tokenizer.with_model(bpe(&model_rest, vocab, merges)?);
        tokenizer.add_tokens(added_tokens).ok()?;
        Some(Loaded {
            tokenizer,
            json,
            merges: ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer as `tokenizers` loads the JSON, serialized.
    fn by_tokenizers(text: &str) -> Result<String, String> {
        let tok: Tokenizer = text.parse().map_err(|e| format!("{e}"))?;
        Ok(tok.to_string(false).unwrap())
    }

    fn loaded(text: &str) -> Result<String, String> {
        Ok(Loaded::from_json(text, |_| false)?
            .tokenizer
            .to_string(false)
            .unwrap())
    }

    fn small(model: Value) -> String {
        serde_json::json!({
            "version": "1.0",
            "truncation": {"direction": "Right", "max_length": 7, "strategy": "LongestFirst", "stride": 0},
            "padding": null,
            "added_tokens": [
                {"id": 9, "content": "<s>", "single_word": false, "lstrip": false,
                 "rstrip": false, "normalized": false, "special": true},
                {"id": 10, "content": "xy", "single_word": true, "lstrip": true,
                 "rstrip": false, "normalized": true, "special": false},
            ],
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": model,
        })
        .to_string()
    }

    #[test]
    fn small_tokenizers_load_as_tokenizers_loads_them() {
        let vocab =
            serde_json::json!({"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "<unk>": 5, "a b": 6});
        let models = [
            serde_json::json!({"type": "BPE", "dropout": null, "unk_token": "<unk>",
                "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
                "byte_fallback": false, "ignore_merges": true, "vocab": vocab,
                "merges": [["a", "b"], ["ab", "c"]]}),
            // Legacy merges, a version line, options set or left out.
            serde_json::json!({"type": "BPE", "dropout": 0.25, "continuing_subword_prefix": "",
                "end_of_word_suffix": "</w>", "vocab": vocab,
                "merges": ["#version: 0.2", "a b", "ab c"]}),
            // Read by `tokenizers` whole: another model, broken merges.
            serde_json::json!({"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}),
            serde_json::json!({"type": "BPE", "vocab": vocab, "merges": ["a b", ["ab", "c"]]}),
            serde_json::json!({"type": "BPE", "vocab": vocab, "merges": ["a b c"]}),
            serde_json::json!({"type": "BPE", "vocab": vocab, "merges": [["a", "b", "c"]]}),
            serde_json::json!({"type": "BPE", "vocab": vocab, "merges": [["a", "x"]]}),
            serde_json::json!({"type": "BPE", "vocab": vocab}),
            serde_json::json!({"type": "BPE", "vocab": vocab, "merges": [], "fuse_unk": "yes"}),
        ];
        for (k, model) in models.into_iter().enumerate() {
            let text = small(model.clone());
            assert_eq!(loaded(&text), by_tokenizers(&text), "{model}");
            // The first two in one pass, the others by `tokenizers`.
            assert_eq!(
                Loaded::one_pass(&text, &|_| false).is_some(),
                k < 2,
                "{model}"
            );
        }
        let broken = small(serde_json::json!({"type": "BPE"}))
            .replace("\"version\":\"1.0\"", "\"version\":\"2\"");
        assert_eq!(loaded(&broken), by_tokenizers(&broken));
        assert!(loaded("{").is_err());
    }

    /// The JSON keeps every part but the model's vocabulary and merges,
    /// which are given back as ids when asked for (not copied into it).
    #[test]
    fn the_json_keeps_all_but_the_vocabulary() {
        let model = serde_json::json!({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "ba": 3},
            "merges": ["#version: 0.2", "a b", "b a"], "byte_fallback": true});
        let text = small(model.clone());
        let full: Value = serde_json::from_str(&text).unwrap();
        let without = Loaded::from_json(&text, |_| false).unwrap();
        let with = Loaded::from_json(&text, |_| true).unwrap();
        let mut expected = full.clone();
        let model_json = expected["model"].as_object_mut().unwrap();
        model_json.remove("vocab");
        model_json.remove("merges");
        assert_eq!(without.json, expected);
        assert_eq!(with.json, expected);
        assert_eq!(without.merges, None);
        assert_eq!(with.merges, Some(vec![[0, 1, 2], [1, 0, 3]]));
        // A mix of pairs and lines: refused (by `tokenizers`, read whole).
        let mut mixed = model;
        mixed["merges"] = serde_json::json!(["a b", ["b", "a"]]);
        assert!(Loaded::from_json(&small(mixed), |_| true).is_err());
    }

    #[test]
    fn shared_tokenizers_load_as_tokenizers_loads_them() {
        for name in ["gemma3", "llama3", "qwen2_5"] {
            let path = format!(
                "{}/../../../shared/tokenizers/{name}/tokenizer.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            assert_eq!(
                loaded(&text).unwrap(),
                by_tokenizers(&text).unwrap(),
                "{name}"
            );
            assert!(Loaded::one_pass(&text, &|_| false).is_some(), "{name}");
        }
    }
}
