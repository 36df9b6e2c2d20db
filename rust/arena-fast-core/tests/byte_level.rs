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

/// Random byte strings of 1 to `MAX_BYTES` bytes: letters, pieces of
/// text and any byte, so that long chains of merges happen.
fn random_words(n: usize) -> Vec<Vec<u8>> {
    use arena_fast_core::merges::MAX_BYTES;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = 1 + next() as usize % MAX_BYTES;
            let mut word = Vec::with_capacity(len + 8);
            while word.len() < len {
                match next() % 4 {
                    0 => word.push(next() as u8),
                    1 => word.push(b'a' + (next() % 26) as u8),
                    _ => word.extend_from_slice(PIECES[next() as usize % PIECES.len()].as_bytes()),
                }
            }
            word.truncate(len);
            word
        })
        .collect()
}

/// Short pre-tokens merged by ranks (`merges`) against `tokenizers`' own BPE
/// model, on the byte-level tokenizers: every byte alone, every pair of
/// bytes, and the pre-tokens of real-looking text.
#[test]
fn merges_equal_the_bpe_model() {
    use arena_fast_core::byte_level::byte_chars;
    use arena_fast_core::merges::Merges;
    use arena_fast_core::tokenizer_json::Loaded;
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
        // Merges as the loader hands them over, against the BPE of the
        // tokenizer as `tokenizers` reads it.
        let loaded = Loaded::from_json(&text, |_| true).unwrap();
        let tok: Tokenizer = text.parse().unwrap();
        let chars = byte_chars();
        let ids = loaded.merges.as_deref().unwrap();
        let merges =
            Merges::for_model(&loaded.json["model"], &loaded.tokenizer, &chars, ids).unwrap();
        // Compact: about 20 bytes a merge, 24 a token of the vocabulary by
        // bytes, and the 512 KiB table of single-byte pairs (hash maps of
        // the merges alone took 8.7 MB for llama3).
        let heap = merges.heap_bytes();
        let bound = 21 * ids.len() + 24 * tok.get_vocab_size(false) + (600 << 10);
        eprintln!("{name}: {} merges, {heap} bytes", ids.len());
        assert!(heap < bound, "{name}: {heap} bytes");
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
        words.extend(random_words(4000));
        for word in words {
            let mapped: String = word.iter().map(|&b| chars[b as usize]).collect();
            let mut got = Vec::new();
            merges.tokenize(&word, &mut got);
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
