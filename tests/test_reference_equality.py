"""The Rust encoder against the pure-Python reference (`arena_fast.reference`),
the oracle written from docs/encoding.md: every array of `Encoded` must be
equal for every template x strategy x tokenize mode x swap, on random rows."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from conftest import (
    TEXT_COLUMNS,
    TOKENIZER_NAMES,
    assert_same_encoded,
    json_columns,
    reference_encoder,
)
from strategies import TEMPLATE_NAMES, batches, json_batches, template_of

SWAPS = (False, True, "both")
CASES = [
    (template, strategy, tokenize)
    for template in TEMPLATE_NAMES
    for strategy in af.STRATEGIES
    for tokenize in ("split", "joint")
]


@st.composite
def encoder_options(draw, strategy: str) -> dict:
    """Options beside template/strategy/tokenize, defaults most of the time."""

    def pick(*values):
        return draw(st.sampled_from(values))

    return dict(
        keep=pick("head", "head_tail"),
        split_special_tokens=draw(st.booleans()),
        null_text=pick("", "", "", "[null]"),
        prompt_weight=pick(0.5, 0.5, 1.0, 0.2, 2.5),
        min_segment_tokens=pick(32, 32, 0, 5, 300),
        keep_first_turns=pick(0, 0, 1, 3) if strategy == "drop_oldest" else 0,
        tail_ratios=pick((0.2, 0.4, 0.4), (0.2, 0.4, 0.4), (1 / 3, 1 / 3, 1 / 3), (0.1, 0.3, 0.5)),
        min_tail_tokens=pick(80, 80, 0, 7),
    )


@st.composite
def setups(draw, strategy: str) -> dict:
    """Everything but the rows: tokenizer, options, BOS/EOS and the budget as
    an offset from the smallest max_length the encoder must accept (None:
    100,000; -1: one below, where af.Encoder must refuse)."""
    return dict(
        tokenizer=draw(st.sampled_from(TOKENIZER_NAMES)),
        options=draw(encoder_options(strategy)),
        specials=draw(st.sampled_from(("config", "config", "config", "none"))),
        offset=draw(st.sampled_from((-1, 0, 1, 2, 5, 20, 60, 150, 400, 1200, 4000, None))),
    )


def minimum_max_length(ref, strategy: str) -> int:
    """The smallest max_length docs/encoding.md promises to accept."""
    if strategy == "fourth_place":
        return ref.fixed + 1
    if strategy == "none":
        return max(ref.fixed, 1)
    header = len(ref.markup(ref.template.header_text(1)))
    frame = sum(len(p) + len(s) for p, s in zip(ref.prefixes, ref.suffixes))
    return ref.fixed + header + frame + 3 * len(ref.marker)


def build_pair(tokenizer_cases, setup, template, strategy, tokenize):
    """(af.Encoder, ReferenceEncoder, context) for a drawn setup, or None when
    its budget is below the minimum (after checking that af.Encoder refuses it)."""
    case = tokenizer_cases[setup["tokenizer"]]
    options, specials, offset = setup["options"], setup["specials"], setup["offset"]
    bos, eos = (case.bos, case.eos) if specials == "config" else (None, None)
    common = dict(template=template_of(template), strategy=strategy, tokenize=tokenize, **options)
    probe = reference_encoder(
        case, max_length=100_000, bos_token_id=bos, eos_token_id=eos, **common
    )
    minimum = minimum_max_length(probe, strategy)
    max_length = 100_000 if offset is None else minimum + offset
    rust_specials = dict(bos_token=False, eos_token=False) if specials == "none" else {}
    context = (
        f"tokenizer={case.name} template={template} strategy={strategy} tokenize={tokenize} "
        f"max_length={max_length} (minimum {minimum}) bos/eos={specials} {options}"
    )
    if max_length < minimum:
        with pytest.raises(af.ConfigError):
            af.Encoder(case.tok, max_length=max_length, **rust_specials, **common)
        return None
    try:
        rust = af.Encoder(case.tok, max_length=max_length, **rust_specials, **common)
    except af.ConfigError as exc:
        raise AssertionError(f"{context}: af.Encoder refused a valid budget: {exc}") from exc
    assert (rust.bos_token_id, rust.eos_token_id) == (bos, eos), context
    ref = reference_encoder(
        case, max_length=max_length, bos_token_id=bos, eos_token_id=eos, **common
    )
    return rust, ref, context


@pytest.mark.parametrize("template,strategy,tokenize", CASES)
@given(data=st.data())
def test_encode_equals_reference(tokenizer_cases, template, strategy, tokenize, data):
    setup = data.draw(setups(strategy), label="setup")
    rows = data.draw(batches(), label="rows")
    built = build_pair(tokenizer_cases, setup, template, strategy, tokenize)
    if built is None:
        return
    rust, ref, context = built
    for swap in SWAPS:
        assert_same_encoded(
            rust.encode(*rows, swap=swap), ref.encode(*rows, swap=swap), f"{context} swap={swap!r}"
        )


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
@pytest.mark.parametrize("strategy", af.STRATEGIES)
@given(data=st.data())
def test_encode_json_equals_reference(tokenizer_cases, template, strategy, data):
    tokenize = data.draw(st.sampled_from(("split", "joint")), label="tokenize")
    setup = data.draw(setups(strategy), label="setup")
    rows = data.draw(json_batches(), label="json rows")
    swap = data.draw(st.sampled_from(SWAPS), label="swap")
    built = build_pair(tokenizer_cases, setup, template, strategy, tokenize)
    if built is None:
        return
    rust, ref, context = built
    assert_same_encoded(
        rust.encode_json(*rows, swap=swap),
        ref.encode_json(*rows, swap=swap),
        f"{context} swap={swap!r}",
    )


def _long_rows(kaggle_rows, count: int = 6):
    """Multi-turn rows of real text up to ~20,000 characters per turn: a
    budget cuts deep inside them, where a shortcut (tokenizing only the part
    of a text that can survive) would show."""
    texts = [t for row in kaggle_rows for c in TEXT_COLUMNS for t in json.loads(row[c]) if t]
    blob = "\n\n".join(texts)
    rows = []
    for k in range(count):
        start = (k * 7919) % max(len(blob) - 25_000, 1)
        sizes = (20_000, 9_000, 300, 12_000, 50, 4_000)
        turn = [blob[start + i * 131 : start + i * 131 + sizes[(k + i) % 6]] for i in range(3)]
        turns = 1 + k % 3
        rows.append(tuple([turn[f]] * turns for f in range(3)))
    return rows


@pytest.mark.parametrize("strategy", af.STRATEGIES)
@pytest.mark.parametrize("keep", ["head", "head_tail"])
@pytest.mark.parametrize("tokenize", ["split", "joint"])
def test_real_rows_equal_reference(tokenizer_cases, kaggle_rows, strategy, keep, tokenize):
    """The real Kaggle rows (through encode_json) and long rows made of real
    text, at the budgets people use."""
    prompts, responses_a, responses_b = json_columns(kaggle_rows)
    long_rows = [list(column) for column in zip(*_long_rows(kaggle_rows))]
    for name, max_length in (("gemma3", 300), ("gemma3", 2048), ("llama3", 700)):
        case = tokenizer_cases[name]
        options = dict(strategy=strategy, max_length=max_length, keep=keep, tokenize=tokenize)
        rust = af.Encoder(case.tok, **options)
        ref = reference_encoder(case, bos_token_id=case.bos, eos_token_id=case.eos, **options)
        context = f"real rows tokenizer={name} {options}"
        assert_same_encoded(
            rust.encode_json(prompts, responses_a, responses_b, swap="both"),
            ref.encode_json(prompts, responses_a, responses_b, swap="both"),
            context,
        )
        assert_same_encoded(
            rust.encode(*long_rows, swap="both"),
            ref.encode(*long_rows, swap="both"),
            f"long {context}",
        )


@given(data=st.data())
def test_threads_give_identical_arrays(tokenizer_cases, data):
    """num_threads=3 must give exactly the single-threaded arrays."""
    strategy = data.draw(st.sampled_from(af.STRATEGIES), label="strategy")
    template = data.draw(st.sampled_from(TEMPLATE_NAMES), label="template")
    tokenize = data.draw(st.sampled_from(("split", "joint")), label="tokenize")
    case = tokenizer_cases[data.draw(st.sampled_from(TOKENIZER_NAMES), label="tokenizer")]
    max_length = data.draw(st.sampled_from((300, 1024, 100_000)), label="max_length")
    rows = data.draw(batches(min_rows=0, max_rows=24), label="rows")
    swap = data.draw(st.sampled_from(SWAPS), label="swap")
    options = dict(
        template=template_of(template), strategy=strategy, tokenize=tokenize, max_length=max_length
    )
    one = af.Encoder(case.tok, num_threads=1, **options).encode(*rows, swap=swap)
    three = af.Encoder(case.tok, num_threads=3, **options).encode(*rows, swap=swap)
    assert_same_encoded(three, one, f"num_threads=3 vs 1 ({case.name}, {options}, swap={swap})")
