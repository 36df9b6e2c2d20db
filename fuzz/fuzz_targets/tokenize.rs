//! Encoding through a cache (word by word, `words::WordSplitter`, or pre-token
//! by pre-token, `byte_level::ByteLevelBpe`) against whole-text `tokenizers`
//! encoding, with the demo tokenizer (or the tokenizer.json named by
//! `ARENA_FUZZ_TOKENIZER`, e.g. Gemma's, Llama 3's or Qwen 2.5's): the ids must be
//! the same, id for id, with special-token strings as plain text or not, and
//! again from a warm cache. `ARENA_FUZZ_SPLIT` (`llama3`, `qwen2`, `o200k` or
//! `tekken`) replaces a byte-level tokenizer's Split regex with that known
//! pattern (e.g. Llama 3's vocabulary split as GPT-4o). Every input is also
//! split by each hand-written scanner (`gpt_split`) and by the regex engine:
//! the pre-tokens must be the same.

#![no_main]

use std::sync::OnceLock;

use arena_fast_core::gpt_split::{self, Scanner};
use arena_fast_core::ArenaTokenizer;
use libfuzzer_sys::fuzz_target;
use onig::Regex;

const DEMO_TOKENIZER: &str =
    include_str!("../../python/arena_fast/data/demo_tokenizer/tokenizer.json");

/// `json` with its Split regex replaced by the pattern `ARENA_FUZZ_SPLIT` names.
fn with_split(json: String) -> String {
    let Ok(name) = std::env::var("ARENA_FUZZ_SPLIT") else {
        return json;
    };
    let pattern = match name.as_str() {
        "llama3" => gpt_split::LLAMA3_PATTERN,
        "qwen2" => gpt_split::QWEN2_PATTERN,
        "o200k" => gpt_split::O200K_PATTERN,
        "tekken" => gpt_split::TEKKEN_PATTERN,
        other => panic!("ARENA_FUZZ_SPLIT={other:?}: not llama3, qwen2, o200k or tekken"),
    };
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("the JSON parses");
    let regex = value
        .pointer_mut("/pre_tokenizer/pretokenizers/0/pattern/Regex")
        .expect("ARENA_FUZZ_SPLIT needs a tokenizer with a Split regex (Llama 3's, Qwen 2.5's)");
    *regex = pattern.into();
    value.to_string()
}

/// The demo tokenizer, or the tokenizer.json named by `ARENA_FUZZ_TOKENIZER`.
fn load() -> ArenaTokenizer {
    let json = match std::env::var("ARENA_FUZZ_TOKENIZER") {
        Ok(path) => std::fs::read_to_string(&path).expect("ARENA_FUZZ_TOKENIZER reads"),
        Err(_) => DEMO_TOKENIZER.to_owned(),
    };
    ArenaTokenizer::from_json(&with_split(json)).expect("the tokenizer loads")
}

fn tokenizer() -> &'static ArenaTokenizer {
    static TOK: OnceLock<ArenaTokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let tok = load();
        let (path, why) = tok.fast_path();
        assert!(
            path != "whole-text",
            "the tokenizer has no fast path: {why}"
        );
        tok
    })
}

/// Each known pattern as the regex engine and as its scanner.
fn splitters() -> &'static [(Regex, Scanner)] {
    static SPLITTERS: OnceLock<Vec<(Regex, Scanner)>> = OnceLock::new();
    SPLITTERS.get_or_init(|| {
        gpt_split::PATTERNS
            .iter()
            .map(|p| {
                let regex = Regex::new(p).expect("the pattern compiles");
                (regex, Scanner::for_pattern(p).expect("a known pattern"))
            })
            .collect()
    })
}

fn check_splits(text: &str) {
    for (regex, scanner) in splitters() {
        let by_regex: Vec<&str> = regex.find_iter(text).map(|(a, b)| &text[a..b]).collect();
        let mut by_scanner = Vec::new();
        scanner
            .split(text, |t| {
                by_scanner.push(t);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(by_scanner, by_regex, "split of {text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_splits(&text);
    let tok = tokenizer();
    for split_special in [true, false] {
        let whole = tok
            .encode_whole(&text, split_special)
            .expect("tokenizers encodes any text");
        let words = tok
            .encode(&text, split_special)
            .expect("the splitter encodes any text");
        assert_eq!(
            words, whole,
            "split_special={split_special}: word split differs on {text:?}"
        );
        // Again, now that the words are cached.
        let cached = tok.encode(&text, split_special).unwrap();
        assert_eq!(cached, whole, "split_special={split_special}: warm cache");
    }
});
