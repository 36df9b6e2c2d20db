//! The word cache against whole-text `tokenizers` encoding, on the real Gemma
//! tokenizer from ../shared and on random texts built from hostile pieces.

use std::path::PathBuf;

use arena_fast_core::ArenaTokenizer;

fn shared_tokenizer(name: &str) -> Option<ArenaTokenizer> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../../shared/tokenizers/{name}/tokenizer.json"));
    if !path.is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have {}",
            path.display()
        );
        eprintln!("skipping: {} is missing", path.display());
        return None;
    }
    Some(ArenaTokenizer::from_file(path.to_str().unwrap()).unwrap())
}

const PIECES: &[&str] = &[
    " ",
    "  ",
    "   ",
    "\n",
    "\n\n",
    "\t",
    "a",
    "the",
    "word",
    "x",
    ">",
    "</",
    "<",
    "> </",
    ">  </",
    "<b>",
    "</b>",
    "<table>",
    "é",
    "中文",
    "😀",
    "▁",
    "▁▁",
    "<eos>",
    "<end_of_turn>",
    "<bos>",
    "<start_of_turn>user",
    "<unused0>",
    "[multimodal]",
    "123",
    "4.5",
    "!",
    "?",
    "```",
    "def f(x):",
    "    return x",
    "\u{fffd}",
    "\u{200b}",
    "ｆｕｌｌ",
    "\r\n",
];

fn random_texts(count: usize) -> Vec<String> {
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    (0..count)
        .map(|_| {
            let n = next(40);
            (0..n).map(|_| PIECES[next(PIECES.len())]).collect()
        })
        .collect()
}

#[test]
fn gemma_word_cache_is_exact() {
    let Some(tok) = shared_tokenizer("gemma3") else {
        return;
    };
    assert!(
        tok.word_split(),
        "the Gemma vocabulary qualifies for word splitting"
    );
    for text in random_texts(3000) {
        for split_special in [true, false] {
            let whole = tok.encode_whole(&text, split_special).unwrap();
            let cached = tok.encode(&text, split_special).unwrap();
            assert_eq!(
                whole, cached,
                "text {text:?}, split_special {split_special}"
            );
        }
    }
}

#[test]
fn llama_is_not_split() {
    let Some(tok) = shared_tokenizer("llama3") else {
        return;
    };
    assert!(
        !tok.word_split(),
        "a regex pre-tokenizer is not a plain Gemma layout"
    );
    for text in random_texts(200) {
        assert_eq!(
            tok.encode_whole(&text, true).unwrap(),
            tok.encode(&text, true).unwrap()
        );
    }
}
