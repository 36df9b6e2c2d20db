//! Encoding through a cache (word by word, `words::WordSplitter`, or pre-token
//! by pre-token, `byte_level::ByteLevelBpe`) against whole-text `tokenizers`
//! encoding, with the demo tokenizer (or the tokenizer.json named by
//! `ARENA_FUZZ_TOKENIZER`, e.g. Gemma's, Llama 3's or Qwen 2.5's): the ids must be
//! the same, id for id, with special-token strings as plain text or not, and
//! again from a warm cache.

#![no_main]

use std::sync::OnceLock;

use arena_fast_core::ArenaTokenizer;
use libfuzzer_sys::fuzz_target;

const DEMO_TOKENIZER: &str =
    include_str!("../../python/arena_fast/data/demo_tokenizer/tokenizer.json");

/// The demo tokenizer, or the tokenizer.json named by `ARENA_FUZZ_TOKENIZER`.
fn load() -> ArenaTokenizer {
    match std::env::var("ARENA_FUZZ_TOKENIZER") {
        Ok(path) => ArenaTokenizer::from_file(&path).expect("ARENA_FUZZ_TOKENIZER loads"),
        Err(_) => ArenaTokenizer::from_json(DEMO_TOKENIZER).expect("the demo tokenizer loads"),
    }
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

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
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
