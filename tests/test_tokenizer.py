"""`af.Tokenizer` (the Rust loader of tokenizer.json) against the Hugging Face
`tokenizers` package: the same ids for any text, word cache or not."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from conftest import TOKENIZER_NAMES
from strategies import SPECIAL_STRINGS, texts


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
@given(text=texts(surrogates=False), split_special_tokens=st.booleans())
def test_encode_equals_hf(tokenizer_cases, name, text, split_special_tokens):
    case = tokenizer_cases[name]
    expected = case.hf(split_special_tokens).encode(text, add_special_tokens=False).ids
    got = case.tok.encode(text, split_special_tokens=split_special_tokens)
    if got != expected:
        first = next((k for k, (x, y) in enumerate(zip(got, expected)) if x != y), None)
        raise AssertionError(
            f"{name} split_special_tokens={split_special_tokens} text={text!r}: "
            f"{len(got)} ids vs {len(expected)} from HF, first difference at {first}"
        )


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
@given(text=texts(surrogates=False))
def test_decode_round_trip(tokenizer_cases, name, text):
    case = tokenizer_cases[name]
    ids = case.tok.encode(text, split_special_tokens=True)
    assert case.tok.decode(ids) == case.hf_plain.decode(ids, skip_special_tokens=False)
    if "\u2581" not in text:  # SentencePiece's space symbol decodes as a space
        assert case.tok.decode(ids) == text


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_special_strings(tokenizer_cases, name):
    case = tokenizer_cases[name]
    for special in SPECIAL_STRINGS:
        text = f"a {special} b"
        for split in (True, False):
            expected = case.hf(split).encode(text, add_special_tokens=False).ids
            assert case.tok.encode(text, split_special_tokens=split) == expected, (special, split)
        tid = case.tok.token_to_id(special)
        added = case.hf_plain.get_added_tokens_decoder().get(tid)
        if added is not None and added.special:
            # A special token in text is plain text unless asked otherwise.
            assert tid not in case.tok.encode(text, split_special_tokens=True), special
            assert tid in case.tok.encode(text, split_special_tokens=False), special


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_default_splits_special_tokens(tokenizer_cases, name):
    case = tokenizer_cases[name]
    text = "x <eos> <|begin_of_text|> y"
    assert case.tok.encode(text) == case.tok.encode(text, split_special_tokens=True)


def test_word_split_decision(gemma, llama):
    # Gemma's vocabulary allows exact word-by-word encoding (`word_split`);
    # Llama-3 splits by its regex and takes the byte-level path instead.
    assert gemma.tok.word_split is True and gemma.tok.fast_path == "word-cache"
    assert llama.tok.word_split is False and llama.tok.fast_path == "byte-level"


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_vocab_and_token_lookup(tokenizer_cases, name):
    case = tokenizer_cases[name]
    assert case.tok.vocab_size == case.hf_plain.get_vocab_size(with_added_tokens=True)
    for token_id in (0, 1, 2, 100, 1000, case.tok.vocab_size - 1):
        token = case.tok.id_to_token(token_id)
        assert token == case.hf_plain.id_to_token(token_id), token_id
        assert case.tok.token_to_id(token) == case.hf_plain.token_to_id(token)
    assert case.tok.token_to_id("definitely not a token \u2603\u2603") is None
    assert case.tok.id_to_token(case.tok.vocab_size + 10) is None


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_from_str_and_from_hf(tokenizer_cases, name):
    case = tokenizer_cases[name]
    text = "Hello, world! <eos> 中文 😀\n\n  code:\tx = 1"
    expected = case.tok.encode(text)
    from_str = af.Tokenizer.from_str(case.json_text)
    assert from_str.encode(text) == expected
    assert from_str.vocab_size == case.tok.vocab_size
    from_hf = af.Tokenizer.from_hf(case.hf_plain)
    assert from_hf.encode(text) == expected
    assert from_hf.encode(text, split_special_tokens=False) == case.tok.encode(
        text, split_special_tokens=False
    )


def test_from_hf_reads_special_token_names(llama):
    class FastTokenizerLike:
        """The parts of a transformers fast tokenizer that from_hf reads."""

        backend_tokenizer = llama.hf_plain
        bos_token = "<|begin_of_text|>"
        eos_token = {"content": "<|eot_id|>"}

    tok = af.Tokenizer.from_hf(FastTokenizerLike())
    enc = af.Encoder(tok)
    assert enc.bos_token_id == llama.tok.token_to_id("<|begin_of_text|>")
    assert enc.eos_token_id == llama.tok.token_to_id("<|eot_id|>")


def test_from_file_accepts_directory_and_str(llama):
    by_dir = af.Tokenizer.from_file(llama.path.parent)
    by_str = af.Tokenizer.from_file(str(llama.path))
    text = "The same ids, whichever way it was loaded."
    assert by_dir.encode(text) == by_str.encode(text) == llama.tok.encode(text)
    assert by_dir.config_bos_token == "<|begin_of_text|>"


def test_truncation_and_padding_in_tokenizer_json_are_ignored(llama):
    """A tokenizer.json may carry truncation/padding; the encoder's budget rules."""
    config = json.loads(llama.json_text)
    config["truncation"] = {
        "direction": "Right",
        "max_length": 4,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    config["padding"] = {
        "strategy": {"Fixed": 64},
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "!",
    }
    tok = af.Tokenizer.from_str(json.dumps(config))
    text = "one two three four five six seven eight nine ten"
    assert tok.encode(text) == llama.tok.encode(text)
    assert len(tok.encode(text)) > 4


def test_lone_surrogate_is_refused_or_repaired(gemma):
    """A str that UTF-8 cannot hold: either repaired to U+FFFD or a clear
    ValueError (af.InputError is one), never a crash."""
    try:
        ids = gemma.tok.encode("a\ud83db")
    except ValueError:
        return
    assert ids == gemma.tok.encode("a\ufffdb")


def test_word_caches_are_per_tokenizer(shared_dir):
    """Two word-split vocabularies on one thread: each keeps its own ids
    (the per-thread word cache once served one tokenizer's ids to another)."""
    gemma = af.Tokenizer.from_file(shared_dir / "tokenizers" / "gemma3" / "tokenizer.json")
    demo = af.Tokenizer.demo()
    assert gemma.word_split and demo.word_split
    text = "Which response is better? The first one explains the oranges."
    first = gemma.encode(text)
    demo_ids = demo.encode(text)
    assert gemma.encode(text) == first
    assert demo.encode(text) == demo_ids
    assert first != demo_ids
