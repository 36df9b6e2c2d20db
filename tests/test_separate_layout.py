"""The separate layout (`af.Encoder(..., layout="separate")`): each row gives
prompt + A (row 2i) and prompt + B (row 2i+1). Held equal to the pure-Python
reference (budgets and cuts included), both sides within `max_length`, the
shared prompt turns cut identically (docs/encoding.md, "Separate layout and
chat templates")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from conftest import TOKENIZER_NAMES, assert_same_encoded, reference_encoder
from strategies import TEMPLATE_NAMES, batches, json_batches, template_of
from test_reference_equality import encoder_options


def minimum_max_length(ref, strategy: str) -> int:
    """The smallest max_length a separate encoder accepts: the cross rule with
    no third field (its marker still counted)."""
    if strategy == "fourth_place":
        return ref.fixed + 1
    if strategy == "none":
        return max(ref.fixed, 1)
    header = len(ref.markup(ref.template.header_text(1)))
    frame = sum(len(ref.prefixes[f]) + len(ref.suffixes[f]) for f in (0, 1))
    return ref.fixed + header + frame + 3 * len(ref.marker)


@st.composite
def setups(draw):
    strategy = draw(st.sampled_from(af.STRATEGIES), label="strategy")
    return dict(
        template=draw(st.sampled_from(TEMPLATE_NAMES), label="template"),
        strategy=strategy,
        tokenize=draw(st.sampled_from(("split", "joint")), label="tokenize"),
        tokenizer=draw(st.sampled_from(TOKENIZER_NAMES), label="tokenizer"),
        options=draw(encoder_options(strategy), label="options"),
        offset=draw(st.sampled_from((0, 1, 3, 10, 40, 120, 400, 1500, None)), label="offset"),
    )


def build(tokenizer_cases, setup):
    case = tokenizer_cases[setup["tokenizer"]]
    common = dict(
        template=template_of(setup["template"]),
        strategy=setup["strategy"],
        tokenize=setup["tokenize"],
        layout="separate",
        **setup["options"],
    )
    probe = reference_encoder(
        case, max_length=100_000, bos_token_id=case.bos, eos_token_id=case.eos, **common
    )
    minimum = minimum_max_length(probe, setup["strategy"])
    offset = setup["offset"]
    max_length = 100_000 if offset is None else minimum + offset
    context = f"{case.name} max_length={max_length} (minimum {minimum}) {common}"
    rust = af.Encoder(case.tok, max_length=max_length, **common)
    ref = reference_encoder(
        case, max_length=max_length, bos_token_id=case.bos, eos_token_id=case.eos, **common
    )
    return rust, ref, context


@given(data=st.data())
def test_separate_equals_reference(tokenizer_cases, data):
    setup = data.draw(setups(), label="setup")
    rows = data.draw(batches(), label="rows")
    rust, ref, context = build(tokenizer_cases, setup)
    got = rust.encode(*rows)
    assert_same_encoded(got, ref.encode(*rows), context)
    n = len(rows[0])
    assert len(got) == 2 * n
    assert got.source_row.tolist() == [i // 2 for i in range(2 * n)]
    assert got.is_swapped.tolist() == [False, True] * n
    assert (got.lengths <= rust.max_length).all(), context


@given(data=st.data())
def test_separate_json_equals_reference(tokenizer_cases, data):
    setup = data.draw(setups(), label="setup")
    rows = data.draw(json_batches(), label="json rows")
    rust, ref, context = build(tokenizer_cases, setup)
    assert_same_encoded(rust.encode_json(*rows), ref.encode_json(*rows), context)


def _prompt_ids(explained: dict) -> list[tuple]:
    """Every header and prompt-field piece of an explained row, with its ids."""
    ids = explained["ids"]
    return [
        (s["kind"], s["turn"], tuple(ids[s["start"] : s["stop"]]))
        for s in explained["spans"]
        if s["kind"] == "header" or s["field"] == 0
    ]


@given(data=st.data())
def test_both_sides_fit_and_share_the_prompt_ids(tokenizer_cases, data):
    setup = data.draw(setups(), label="setup")
    if setup["strategy"] == "none":  # cuts each side at the budget: no plan to share
        setup["strategy"] = "fair"
    rows = data.draw(batches(max_rows=2), label="rows")
    rust, _, context = build(tokenizer_cases, setup)
    encoded = rust.encode(*rows)
    for i, (p, a, b) in enumerate(zip(*rows)):
        side_a = rust.explain(p, a, b, swapped=False)
        side_b = rust.explain(p, a, b, swapped=True)
        assert side_a["ids"] == encoded[2 * i].tolist(), context
        assert side_b["ids"] == encoded[2 * i + 1].tolist(), context
        assert max(side_a["length"], side_b["length"]) <= rust.max_length, context
        assert _prompt_ids(side_a) == _prompt_ids(side_b), context
        assert side_a["turns_kept"] == side_b["turns_kept"], context
        assert {s["field"] for s in side_a["segments"]} <= {0, 1}


def test_a_side_is_the_cross_row_without_b(gemma_tok):
    """With no budget pressure, a side is begin + per turn (header, prompt
    prefix + text + suffix, A's prefix + the answer + A's suffix) + end."""
    template = af.Template(
        begin="<B>", end="<E>", first_header="H{i}", header="|H{i}",
        prompt_prefix="[P]", prompt_suffix="[/P]", a_prefix="[A]", a_suffix="[/A]",
        b_prefix="[X]", b_suffix="[/X]",
    )  # fmt: skip
    enc = af.Encoder(gemma_tok, template=template, layout="separate", bos_token=False,
                     eos_token=False, max_length=10_000)  # fmt: skip
    out = enc.encode([["p1", "p2"]], [["a1", "a2"]], [["b1", "b2"]])
    text = "<B>H1[P]p1[/P][A]{0}1[/A]|H2[P]p2[/P][A]{0}2[/A]<E>"
    for side, name in ((0, "a"), (1, "b")):
        assert gemma_tok.decode(out[side].tolist()) == text.format(name)
    assert out.full_length.tolist() == out.lengths.tolist()
    assert out.truncated.tolist() == [False, False]


@pytest.mark.parametrize("swap", [True, "both"])
def test_swap_is_refused_in_the_separate_layout(gemma_tok, swap):
    enc = af.Encoder(gemma_tok, layout="separate")
    with pytest.raises(af.ConfigError, match="swap must be False"):
        enc.encode(["p"], ["a"], ["b"], swap=swap)
    with pytest.raises(af.ConfigError, match="swap must be False"):
        enc.encode_json(['["p"]'], ['["a"]'], ['["b"]'], swap=swap)


def test_layout_is_checked_and_round_trips(gemma_tok):
    with pytest.raises(af.ConfigError, match="layout"):
        af.Encoder(gemma_tok, layout="sideways")
    enc = af.Encoder(gemma_tok, layout="separate", strategy="drop_oldest", max_length=300)
    config = enc.config()
    assert config["layout"] == "separate" and config["chat_template"] is None
    again = af.Encoder.from_config(gemma_tok, config)
    assert again.config() == config
    rows = (["p " * 200], ["a " * 300], ["b"])
    assert_same_encoded(again.encode(*rows), enc.encode(*rows))
    # A manifest written before layouts: the cross layout.
    old = {k: v for k, v in af.Encoder(gemma_tok).config().items()}
    old.pop("layout"), old.pop("chat_template")
    assert af.Encoder.from_config(gemma_tok, old).layout == "cross"


def test_the_shared_prompt_is_cut_as_the_tighter_side_cuts_it(gemma_tok):
    """A long answer B makes B's plan cut the prompt harder (or drop turns):
    side A gets the same prompt, though alone it would have kept more."""
    enc = af.Encoder(gemma_tok, layout="separate", max_length=120, min_segment_tokens=4)
    alone = af.Encoder(gemma_tok, max_length=120, min_segment_tokens=4, layout="separate")
    rows = (["word " * 150], ["short"], ["answer " * 400])
    out = enc.encode(*rows)
    a_only = alone.encode(rows[0], rows[1], rows[1])
    assert out.lengths.max() <= 120
    assert out[0].tolist() != a_only[0].tolist()  # A lost prompt tokens to B's plan
    assert out.truncated.tolist() == [True, True]
