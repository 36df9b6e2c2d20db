"""A turn past MAX_TURN_BYTES keeps its first and last CLIP_KEEP_BYTES
(REPAIR_CLIPPED, docs/encoding.md): the Rust encoder equals the reference,
and head/tail truncation keeps the tokens it keeps without the clip."""

from __future__ import annotations

import json

import pytest

import arena_fast as af
from arena_fast.dataset import BuildConfig, build_dataset
from arena_fast.reference import turns as reference_turns
from conftest import assert_same_encoded, reference_encoder

WORDS = "lorem ipsum dolor sit amet, consectetur adipiscing elit; "
MAX = reference_turns.MAX_TURN_BYTES
KEEP = reference_turns.CLIP_KEEP_BYTES


def words_text(size: int) -> str:
    body = WORDS * (size // len(WORDS) + 1)
    return "BEGIN " + body[:size] + " END"


def euro_text(size: int) -> str:
    # 3-byte characters with a 1-byte lead: both cut points fall inside one.
    return "x" + "€€€ " * (size // 10 + 1)


def test_the_constants_are_the_documented_ones():
    assert MAX == 1 << 20 and KEEP == MAX // 2
    assert af.REPAIR_CLIPPED == 8


@pytest.mark.parametrize("make", [words_text, euro_text], ids=["words", "euro"])
@pytest.mark.parametrize("name", ["gemma", "llama"])
def test_clipped_rows_equal_the_reference(request, name, make):
    case = request.getfixturevalue(name)
    text = make(MAX + MAX // 2)
    assert len(text.encode()) > MAX
    enc = af.Encoder(case.tok, max_length=512)
    ref = reference_encoder(case, max_length=512, bos_token_id=case.bos, eos_token_id=case.eos)
    cols = ([["q"], ["q"]], [[text], ["short"]], [["b"], ["y" * MAX]])  # MAX bytes: kept whole
    got = enc.encode(*cols)
    assert got.repairs.tolist() == [af.REPAIR_CLIPPED, 0]
    assert_same_encoded(got, ref.encode(*cols), f"{name}/{make.__name__}")


@pytest.mark.parametrize("keep", ["head", "head_tail"])
def test_the_clip_keeps_the_tokens_truncation_keeps(gemma, monkeypatch, keep):
    text = words_text(3 * MAX)
    enc = af.Encoder(gemma.tok, max_length=1024, keep=keep)
    got = enc.encode([["q"]], [[text]], [["b"]])
    assert got.repairs.tolist() == [af.REPAIR_CLIPPED] and got.truncated.tolist() == [True]
    # The reference without the clip: the whole 3 MB answer tokenized.
    monkeypatch.setattr(reference_turns, "MAX_TURN_BYTES", 1 << 40)
    ref = reference_encoder(
        gemma, max_length=1024, keep=keep, bos_token_id=gemma.bos, eos_token_id=gemma.eos
    )
    whole = ref.encode([["q"]], [[text]], [["b"]])
    assert whole.repairs.tolist() == [0]
    assert got[0].tolist() == whole[0].tolist()
    assert whole.full_length[0] > got.full_length[0] > 1024


def test_a_clipped_row_is_counted_and_dropped_by_policy(tmp_path):
    rows = [
        {"id": f"r{i}", "prompt": ["q"], "response_a": [f"a {i}"], "response_b": [f"b {i}"]}
        for i in range(4)
    ]
    rows[2]["response_b"] = [words_text(MAX + 10)]
    for r in rows:
        r["labels"] = [1.0, 0.0, 0.0]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"inputs": [f"{path}:canonical"], "max_length": 256, "folds": 2}
    kept = build_dataset(BuildConfig(**cfg), tmp_path / "kept")
    assert kept["counts"]["repairs"]["clipped"] == 1 and kept["counts"]["rows"] == 4
    dropped = build_dataset(BuildConfig(**cfg, repaired="drop"), tmp_path / "dropped")
    assert dropped["counts"]["dropped"] == {"repaired": 1} and dropped["counts"]["rows"] == 3
