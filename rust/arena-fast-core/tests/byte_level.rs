//! Merges by rank (`merges`) against `tokenizers`' own BPE model on the real
//! byte-level tokenizers from ../shared.

use std::path::PathBuf;

const PIECES: &[&str] = &[
    " ",
    "  ",
    "\n",
    "\t",
    "a",
    "the",
    "Hello",
    "world",
    "1234",
    "'s",
    "...",
    "==",
    "é",
    "中文",
    "😀",
    "\u{301}",
    "<|im_end|>",
    "x\r\n",
];

/// Short pre-tokens merged by ranks (`merges`) against `tokenizers`' own BPE
/// model, on the byte-level tokenizers: every byte alone, every pair of
/// bytes, and the pre-tokens of real-looking text.
#[test]
fn merges_equal_the_bpe_model() {
    use arena_fast_core::byte_level::byte_chars;
    use arena_fast_core::merges::Merges;
    use tokenizers::{Model, Tokenizer};
    for name in ["llama3", "qwen2_5"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../../shared/tokenizers/{name}/tokenizer.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must have {}",
                path.display()
            );
            eprintln!("skipping: {} is missing", path.display());
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let tok: Tokenizer = text.parse().unwrap();
        let chars = byte_chars();
        let merges = Merges::for_model(&json["model"], &tok, &chars).unwrap();
        let mut words: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        for a in (0..=255u8).step_by(3) {
            for b in 0..=255u8 {
                words.push(vec![a, b, b' ', a]);
            }
        }
        for piece in PIECES {
            for other in PIECES {
                words.push(format!(" {piece}{other}{piece}").into_bytes());
            }
        }
        for word in words {
            let mapped: String = word.iter().map(|&b| chars[b as usize]).collect();
            let mut got = Vec::new();
            merges.tokenize(&tok, &word, &mapped, &mut got);
            let want: Vec<u32> = tok
                .get_model()
                .tokenize(&mapped)
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect();
            assert_eq!(got, want, "{name} {word:?}");
        }
    }
}
