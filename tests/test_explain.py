"""`Encoder.explain`: one row taken apart into template pieces and each
turn's segments, with what the budget kept. Its ids are `encode`'s (which
the reference holds exact), its spans cover them in order, and each kept
segment's spans add up to what the segment keeps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arena_fast as af
from strategies import TEMPLATE_NAMES, rows
from test_reference_equality import build_pair, setups

KINDS = {"bos", "begin", "header", "prefix", "text", "marker", "suffix", "end", "eos"}


def check_explained(enc: af.Encoder, row, swapped: bool, context: str) -> dict:
    prompt, a, b = row
    ex = enc.explain(prompt, a, b, swapped=swapped)
    encoded = enc.encode([prompt], [a], [b], swap=swapped)
    assert ex["ids"] == encoded.to_lists()[0], context
    assert ex["length"] == len(ex["ids"]) == int(encoded.lengths[0]), context
    assert ex["full_length"] == int(encoded.full_length[0]), context
    assert ex["truncated"] == bool(encoded.truncated[0]), context
    assert ex["turns_kept"] == int(encoded.turns_kept[0]), context
    spans = ex["spans"]
    # Contiguous, non-empty, covering every id.
    assert [s["start"] for s in spans[1:]] == [s["stop"] for s in spans[:-1]], context
    assert all(s["stop"] > s["start"] and s["kind"] in KINDS for s in spans), context
    assert (spans[0]["start"] if spans else 0) == 0
    assert (spans[-1]["stop"] if spans else 0) == len(ex["ids"]), context
    # Every turn's three fields listed once.
    n_turns = ex["turns"] if enc.config()["template"].get("join_turns") is None else None
    keys = [(s["turn"], s["field"]) for s in ex["segments"]]
    assert len(keys) == len(set(keys)), context
    if n_turns is not None:
        assert sorted(keys) == [(t, f) for t in range(n_turns) for f in range(3)], context
    return ex


def kept_by_segment(ex: dict) -> dict:
    kept: dict = {}
    for s in ex["spans"]:
        if s["kind"] in ("prefix", "text"):
            key = (s["turn"], s["field"])
            kept[key] = kept.get(key, 0) + s["stop"] - s["start"]
    return kept


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
@pytest.mark.parametrize("strategy", [s for s in af.STRATEGIES if s != "none"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_explain_agrees_with_encode(tokenizer_cases, template, strategy, data):
    setup = data.draw(setups(strategy), label="setup")
    row = data.draw(rows(), label="row")
    built = build_pair(tokenizer_cases, setup, template, strategy, "split")
    if built is None:
        return
    enc, _, context = built
    for swapped in (False, True):
        ex = check_explained(enc, row, swapped, f"{context} swapped={swapped}")
        kept = kept_by_segment(ex)
        for seg in ex["segments"]:
            key = (seg["turn"], seg["field"])
            # The budget's plan: what each segment keeps, whole or cut.
            assert kept.get(key, 0) == seg["kept"] <= seg["tokens"], (context, seg)
            assert seg["cut"] == (seg["kept"] < seg["tokens"]), (context, seg)
        markers = sum(s["kind"] == "marker" for s in ex["spans"])
        cut_kept = sum(1 for s in ex["segments"] if s["cut"] and s["kept"] > 0)
        assert markers == cut_kept, context


def test_explain_shows_the_cut_and_the_texts(llama_tok):
    enc = af.Encoder(llama_tok, template="rounds", strategy="fair", max_length=160)
    prompt = ["first question " * 30, "second question"]
    a = ["a long first answer " * 40, "short A"]
    b = ["b1", "a long second answer " * 40]
    ex = check_explained(enc, (prompt, a, b), False, "llama3 rounds fair 160")
    assert ex["truncated"] and ex["full_length"] > ex["length"]
    texts = {}
    for s in ex["spans"]:
        if s["kind"] == "text":
            piece = llama_tok.decode(ex["ids"][s["start"] : s["stop"]])
            texts.setdefault((s["turn"], s["field"]), []).append(piece)
    # The newest turn is kept; a long answer is cut into head and tail.
    assert (1, 0) in texts and "second question" in "".join(texts[(1, 0)])
    cut = [s for s in ex["segments"] if s["cut"] and s["kept"] > 0]
    assert cut, ex["segments"]
    marker = enc.config()["template"]["marker"]
    spans_marked = [s for s in ex["spans"] if s["kind"] == "marker"]
    assert spans_marked
    m = spans_marked[0]
    assert llama_tok.decode(ex["ids"][m["start"] : m["stop"]]).strip() == marker.strip()
    # Swapped: B's answer is placed first.
    sw = check_explained(enc, (prompt, a, b), True, "llama3 rounds fair 160, swapped")
    first = [s for s in sw["segments"] if s["turn"] == 1 and s["field"] == 1][0]
    orig_b = [s for s in ex["segments"] if s["turn"] == 1 and s["field"] == 2][0]
    assert first["tokens"] == orig_b["tokens"]


def test_explain_none_strategy_clips_the_spans(llama_tok):
    enc = af.Encoder(llama_tok, template="rounds", strategy="none", max_length=64)
    row = (["q " * 100], ["a " * 100], ["b " * 100])
    ex = check_explained(enc, row, False, "llama3 none 64")
    assert ex["length"] == 64 and ex["truncated"]
    assert ex["spans"][-1]["kind"] in ("eos", "end")


def test_explain_checks_its_input(llama_tok):
    enc = af.Encoder(llama_tok, max_length=256)
    with pytest.raises(af.InputError):
        enc.explain({"not": "turns"}, "a", "b")
