"""The byte-level fast path (`arena-fast-core` `byte_level`, `gpt_split`):
Llama 3 and Qwen 2.5 encoded pre-token by pre-token through a cache give
exactly Hugging Face `tokenizers`' whole-text ids, on adversarial text and on
every real text in ../shared/data; the encoder's outputs are bit-identical to
those of the whole-text fallback; Gemma keeps its word cache."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from arena_fast import _core
from arena_fast.cli import main
from conftest import assert_same_encoded, json_columns, load_case
from strategies import SPECIAL_STRINGS, UNICODE_STRINGS, template_of

NAMES = ("llama3", "qwen2_5", "gemma3")
BYTE_LEVEL = ("llama3", "qwen2_5")

# Every general category but surrogates.
CATEGORIES = (
    "Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So Zs Zl Zp Cc Cf Co Cn"
).split()
CONTRACTIONS = (
    "'s", "'S", "'t", "'T", "'re", "'RE", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL",
    "'lL", "'d", "'D", "'ſ", "\u2019s", "\u2019LL", "\u02bcs", "'", "''s", "'x",
)  # fmt: skip
SPACES = (
    " ", "  ", "\t", "\n", "\r", "\r\n", "\n\r", "\r\r\n", " \n", "\n ", "\x0b", "\x0c",
    "\x85", "\xa0", "\u1680", "\u2000", "\u2028", "\u2029", "\u202f", "\u3000", "\u200b",
)  # fmt: skip
# Sequences NFC composes (or reorders), and ones it leaves alone.
COMBINING = (
    "e\u0301", "A\u030a", "o\u0308\u0301", "A\u0327\u0301", "\u1100\u1161\u11a8",
    "a\u0323\u0302", "a\u0302\u0323", "\u0344", "\u212b", "\u0958", "\u0301", "q\u0307\u0323",
)  # fmt: skip
# Text that looks like broken UTF-8 once encoded, and edge code points.
ODD = ("\ufffd", "\xc3\x28", "\xe2\x82", "\x00", "\x7f", "\U0010ffff", "\ue000", "\U000e0041")
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_", "|>", "<|im_end|")
DIGITS = st.text("0123456789\u0661\u0662\u00bd\u00b2\u2163\uff11", min_size=1, max_size=12)


def _by_category() -> st.SearchStrategy[str]:
    return st.sampled_from(CATEGORIES).flatmap(
        lambda cat: st.text(st.characters(categories=[cat]), min_size=1, max_size=4)
    )


def _runs() -> st.SearchStrategy[str]:
    """Long whitespace runs, alone or before a letter, digit or mark."""
    return st.builds(
        lambda ch, n, after: ch * n + after,
        st.sampled_from(" \t\n\r\xa0\u3000"),
        st.integers(min_value=1, max_value=300),
        st.sampled_from(("", "x", "1", ".", "\n", " ")),
    )


PIECES = st.one_of(
    st.text("abcXYZ", min_size=1, max_size=8),
    st.sampled_from(CONTRACTIONS),
    st.sampled_from(SPACES),
    st.sampled_from(COMBINING),
    st.sampled_from(ODD),
    st.sampled_from(UNICODE_STRINGS),
    st.sampled_from(SPECIAL_STRINGS + QWEN_SPECIALS),
    st.text(".,;:!?-()[]{}<>/\\\"'`~@#$%^&*_=+|", min_size=1, max_size=6),
    DIGITS,
    _by_category(),
    _runs(),
)
TEXTS = st.lists(PIECES, max_size=16).map("".join)


@pytest.fixture(scope="module")
def cases(shared_dir):
    return {name: load_case(shared_dir, name) for name in NAMES}


def whole_text(case) -> af.Tokenizer:
    """`case`'s tokenizer with the fast path off: every text encoded whole."""
    tok = case.tok
    return af.Tokenizer(
        _core.Tokenizer.from_str(case.json_text, fast_path=False),
        bos_token=tok.config_bos_token,
        eos_token=tok.config_eos_token,
        pad_token=tok.config_pad_token,
        none_declared=tok.none_declared,
    )


def assert_ids_equal(case, text: str, split_special_tokens: bool) -> None:
    expected = case.hf(split_special_tokens).encode(text, add_special_tokens=False).ids
    got = case.tok.encode(text, split_special_tokens=split_special_tokens)
    if got != expected:
        first = next((k for k, (x, y) in enumerate(zip(got, expected)) if x != y), None)
        raise AssertionError(
            f"{case.name} split_special_tokens={split_special_tokens} text={text!r}: "
            f"{len(got)} ids vs {len(expected)} from HF, first difference at {first}"
        )


def test_paths(cases):
    for name in BYTE_LEVEL:
        assert cases[name].tok.fast_path == "byte-level", cases[name].tok.fast_path_reason
        assert "scanner" in cases[name].tok.fast_path_reason
    assert cases["gemma3"].tok.fast_path == "word-cache"
    assert whole_text(cases["llama3"]).fast_path == "whole-text"


def small_byte_level(qwen_json: str) -> dict:
    """Qwen 2.5's pipeline over a vocabulary of the 256 byte characters (no
    merges): loads at once."""
    data = json.loads(qwen_json)
    byte_chars = sorted(data["model"]["vocab"], key=data["model"]["vocab"].get)[:256]
    data["model"].update(vocab={c: i for i, c in enumerate(byte_chars)}, merges=[])
    data["added_tokens"] = [dict(t, id=256 + k) for k, t in enumerate(data["added_tokens"])]
    return data


@pytest.fixture(scope="module")
def small(cases) -> dict:
    return small_byte_level(cases["qwen2_5"].json_text)


def test_small_byte_level_takes_the_fast_path(small):
    tok = af.Tokenizer.from_str(json.dumps(small))
    assert tok.fast_path == "byte-level", tok.fast_path_reason
    assert tok.encode("Hi <|im_end|>", split_special_tokens=False)[-1] == 256 + 2


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda d: d.update(normalizer={"type": "NFKC"}), "normalizer is NFKC"),
        (
            lambda d: d["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=r"\s+|\S+"),
            "not one with a hand-written scanner",
        ),
        (
            lambda d: d.update(
                pre_tokenizer={
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": True,
                }
            ),
            "pre-tokenizer is ByteLevel",
        ),
        (lambda d: d["model"].update(dropout=0.1), "not BPE without dropout"),
        (lambda d: d["added_tokens"][0].update(lstrip=True), "strips spaces"),
    ],
)
def test_other_pipelines_encode_whole(small, change, reason):
    data = json.loads(json.dumps(small))
    change(data)
    tok = af.Tokenizer.from_str(json.dumps(data))
    assert tok.fast_path == "whole-text"
    assert reason in tok.fast_path_reason, tok.fast_path_reason


@pytest.mark.parametrize("name", NAMES)
@given(text=TEXTS, split_special_tokens=st.booleans())
def test_adversarial_text_equals_hf(cases, name, text, split_special_tokens):
    assert_ids_equal(cases[name], text, split_special_tokens)


@pytest.mark.parametrize("name", BYTE_LEVEL)
def test_chosen_text_equals_hf(cases, name):
    texts = [
        *CONTRACTIONS, *SPACES, *COMBINING, *ODD, *QWEN_SPECIALS, *SPECIAL_STRINGS,
        "x" + " " * 10_000, " " * 10_000 + "x", "\n" * 5000 + " " * 5000, "." * 20_000,
        "1234567890" * 100, "I'M HERE'S y'all 'LL ſ'ſ", "a\r\n\r\nb \r c\r",
        "👨\u200d👩\u200d👧 🇫🇷",
        "<|im_start|>user\nhi<|im_end|>", "<|begin_of_text|><|eot_id|>x",
    ]  # fmt: skip
    for text in texts:
        for split in (True, False):
            assert_ids_equal(cases[name], text, split)


def _strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def real_texts(data_dir: Path) -> list[str]:
    """Every text of the shared data sets (a CSV's JSON cells parsed)."""
    texts: list[str] = []
    for path in sorted(data_dir.iterdir()):
        if path.suffix == ".csv":
            csv.field_size_limit(1 << 30)
            with path.open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    for cell in row.values():
                        try:
                            texts.extend(_strings(json.loads(cell)))
                        except (ValueError, TypeError):
                            texts.append(cell)
        elif path.name.endswith((".jsonl", ".jsonl.gz")):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as f:
                for line in f:
                    texts.extend(_strings(json.loads(line)))
    return [t for t in texts if t]


@pytest.mark.slow
@pytest.mark.parametrize("name", BYTE_LEVEL)
def test_every_real_text_equals_hf(cases, data_dir, name):
    texts = real_texts(data_dir)
    assert len(texts) > 5000
    for text in texts:
        text = text.encode("utf-8", "replace").decode("utf-8")
        for split in (True, False):
            assert_ids_equal(cases[name], text, split)


@pytest.mark.parametrize("name", BYTE_LEVEL)
def test_encoder_equals_whole_text_fallback(cases, kaggle_rows, name):
    """Templates, budgets and swaps: the same arrays from both paths, on one
    thread or two (each with its own cache)."""
    case = cases[name]
    fallback = whole_text(case)
    p, a, b = json_columns(kaggle_rows)
    for template, max_length, split in (("rounds", 2048, True), ("tags", 300, False)):
        options = dict(template=template_of(template), max_length=max_length, strategy="fair")
        options["split_special_tokens"] = split
        whole = af.Encoder(fallback, **options).encode_json(p, a, b, swap="both")
        for threads in (1, 2):
            fast = af.Encoder(case.tok, num_threads=threads, **options)
            got = fast.encode_json(p, a, b, swap="both")
            assert_same_encoded(got, whole, f"{name} {template} {max_length} {threads} threads")


def test_demo_and_inspect_say_which_path_the_tokenizer_takes(shared_dir, tmp_path, capsys):
    """A user sees what speed to expect: `demo --encode-only` and `inspect`
    print the tokenizer's path and why."""
    llama = str(shared_dir / "tokenizers" / "llama3" / "tokenizer.json")
    assert main(["demo", "--encode-only", "--rows", "5", "--tokenizer", llama]) == 0
    printed = capsys.readouterr().out
    assert "byte-level: byte-level BPE after a known regex split" in printed
    out = tmp_path / "ds"
    build = ["build-dataset", "--out", str(out), "--demo-rows", "20", "--quiet"]
    assert main([*build, "--tokenizer", llama, "--max-length", "256"]) == 0
    assert main(["inspect", str(out)]) == 0
    assert "  tokenizer: byte-level (" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_loaded_in_one_pass_as_hf_loads_it(cases, name):
    """tokenizer.json is read in one pass (Rust `tokenizer_json`): the
    tokenizer is the one Hugging Face loads (both without truncation and
    padding), serialized byte for byte."""
    case = cases[name]
    assert case.tok.to_str() == case.hf_plain.to_str()
