"""The byte-level fast path on GPT-4o-style splits (`arena-fast-core`
`gpt_split::o200k`): the o200k pattern (GPT-4o, Llama 4, gpt-oss) and
Mistral's Tekken (o200k's without contractions, single digits), recognised
from the tokenizer.json, give exactly Hugging Face `tokenizers`' whole-text
ids. No such tokenizer.json is shared here, so the test tokenizers are Llama
3's with its Split regex replaced: exactness is about the split and the BPE,
and the vocabulary can stay Llama 3's."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from conftest import assert_same_encoded, json_columns, load_case
from strategies import template_of
from test_bytelevel import PIECES, assert_ids_equal, real_texts, whole_text

O200K = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
TEKKEN = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PATTERNS = {"o200k": O200K, "tekken": TEKKEN}

# What the case-aware words split on: case changes inside words, title-case
# (Lt), modifier (Lm) and case-less (Lo) letters, marks (M, in both classes),
# contractions after upper- and lower-case letters, slashes after symbols.
CASED = (
    "HelloWORLD", "camelCase", "XMLHttpRequest", "iPhone", "McDONALD's", "ǅungla", "ǈj",
    "Ǆ", "ʰa", "aʰB", "Aʰ", "ᾈᾀ", "中文Abc", "ABC中", "e\u0301", "E\u0301X", "\u0301a",
    " \u0301", ".\u0301B", "a\u0301\u0302C", "ß", "ẞ", "ΑΒΓαβγ", "АБВабв", "𝐀𝐚", "ﬁ",
    "HE'S", "he's", "He'LL", "hE'Ve", "X'd", "x'D", "ab'st", "AB’s", "x\u02bcs", "'S", "''ll",
    "/", "//", "/\n/", "a/\r\nb", "?!/\r/", " ./", ".\n\n/",
)  # fmt: skip
CASE_RUNS = st.text(
    st.characters(categories=["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me"]),
    min_size=1,
    max_size=6,
)
TEXTS = st.lists(st.one_of(PIECES, st.sampled_from(CASED), CASE_RUNS), max_size=16).map("".join)


def with_pattern(llama_json: str, pattern: str) -> str:
    """Llama 3's tokenizer.json with its Split regex replaced by `pattern`."""
    data = json.loads(llama_json)
    data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = pattern
    return json.dumps(data)


class SplitCase:
    """A test tokenizer as ours and as Hugging Face's, in the shape
    `assert_ids_equal` and `whole_text` read."""

    def __init__(self, name: str, json_text: str, tok: af.Tokenizer):
        from tokenizers import Tokenizer as HFTokenizer

        self.name = name
        self.json_text = json_text
        self.tok = tok
        self.hf_plain = HFTokenizer.from_str(json_text)
        self.hf_split = HFTokenizer.from_str(json_text)
        self.hf_split.encode_special_tokens = True

    def hf(self, split_special_tokens: bool):
        return self.hf_split if split_special_tokens else self.hf_plain

    def __repr__(self) -> str:
        return f"<SplitCase {self.name}>"


@pytest.fixture(scope="module")
def cases(shared_dir):
    llama = load_case(shared_dir, "llama3")
    out = {}
    for name, pattern in PATTERNS.items():
        text = with_pattern(llama.json_text, pattern)
        tok = af.Tokenizer.from_str(
            text, bos_token=llama.tok.config_bos_token, eos_token=llama.tok.config_eos_token
        )
        out[name] = SplitCase(name, text, tok)
    return out


@pytest.mark.parametrize("name", PATTERNS)
def test_the_patterns_take_the_byte_level_path(cases, name):
    tok = cases[name].tok
    assert tok.fast_path == "byte-level", tok.fast_path_reason


@pytest.mark.parametrize(
    "old,new",
    [
        (r"\p{Lo}\p{M}]+", r"\p{Lo}]+"),  # a class one shorter
        (r"[\r\n/]*", r"[\r\n]*"),  # one character fewer
        (r"\p{N}{1,3}", r"\p{N}{1,4}"),  # one character different
    ],
)
def test_a_pattern_one_character_off_is_encoded_whole(shared_dir, old, new):
    off = O200K.replace(old, new, 1)
    assert off != O200K
    text = with_pattern(load_case(shared_dir, "llama3").json_text, off)
    tok = af.Tokenizer.from_str(text)
    assert tok.fast_path == "whole-text"
    assert "split pattern" in tok.fast_path_reason
    assert "not one with a hand-written scanner" in tok.fast_path_reason


@pytest.mark.parametrize("name", PATTERNS)
@given(text=TEXTS, split_special_tokens=st.booleans())
def test_adversarial_text_equals_hf(cases, name, text, split_special_tokens):
    assert_ids_equal(cases[name], text, split_special_tokens)


@pytest.mark.parametrize("name", PATTERNS)
def test_chosen_text_equals_hf(cases, name):
    texts = [
        *CASED, "x" + " " * 5000, "\n" * 3000 + " " * 3000, "/" * 5000, "A" * 3000 + "a",
        "1234567890" * 50, "I'M HERE'S y'all 'LL ſ'ſ DON'T Don't don't",
        "a\r\n\r\nb \r c\r", "👨\u200d👩\u200d👧 🇫🇷", "<|begin_of_text|><|eot_id|>x",
    ]  # fmt: skip
    for text in texts:
        for split in (True, False):
            assert_ids_equal(cases[name], text, split)


@pytest.mark.slow
@pytest.mark.parametrize("name", PATTERNS)
def test_every_real_text_equals_hf(cases, data_dir, name):
    texts = real_texts(data_dir)
    assert len(texts) > 5000
    for text in texts:
        text = text.encode("utf-8", "replace").decode("utf-8")
        for split in (True, False):
            assert_ids_equal(cases[name], text, split)


def test_encoder_equals_whole_text_fallback(cases, kaggle_rows):
    """Templates and budgets: the same arrays from both paths, on one thread
    or two."""
    case = cases["o200k"]
    p, a, b = json_columns(kaggle_rows)
    options = dict(template=template_of("rounds"), max_length=2048, strategy="fair")
    whole = af.Encoder(whole_text(case), **options).encode_json(p, a, b, swap="both")
    for threads in (1, 2):
        got = af.Encoder(case.tok, num_threads=threads, **options).encode_json(p, a, b, swap="both")
        assert_same_encoded(got, whole, f"o200k {threads} threads")
