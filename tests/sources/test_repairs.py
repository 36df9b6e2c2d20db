"""Repairs the readers make themselves (a lone surrogate in a JSON string,
which Arrow cannot hold) are flagged per row in `Chunk.repairs`, as the
core flags those of the Kaggle CSV (finding F2 of docs/reliability.md)."""

from __future__ import annotations

import pytest

import arena_fast as af
from arena_fast.dataset import BuildConfig, build_dataset, load_dataset
from arena_fast.sources import read

from .conftest import write_json, write_jsonl

LONE = "\ud83d alone"  # json.dumps writes it as the escape \ud83d


def repairs_of(path, fmt):
    """(texts, repairs) of every row, in order."""
    texts, bits = [], []
    for chunk in read(path, fmt):
        n = len(chunk.rows)
        bits.extend([0] * n if chunk.repairs is None else chunk.repairs.tolist())
        for r in chunk.rows.iter_rows(named=True):
            texts.append((r["prompt"], r["response_a"], r["response_b"]))
    return texts, bits


def canonical(i, text="fine"):
    return {
        "id": f"r{i}",
        "prompt": [text],
        "response_a": ["a"],
        "response_b": ["b"],
        "labels": [1.0, 0.0, 0.0],
    }


def conversation(user, answer):
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def arena33k(i, user="hi"):
    return {
        "question_id": f"q{i}",
        "model_a": "x",
        "model_b": "y",
        "winner": "model_a",
        "conversation_a": conversation(user, "answer a"),
        "conversation_b": conversation(user, "answer b"),
    }


def ultrafeedback(i, answer="good"):
    return {
        "prompt": "q",
        "prompt_id": f"p{i}",
        "chosen": conversation("q", answer),
        "rejected": conversation("q", "bad"),
        "score_chosen": 8.0,
        "score_rejected": 2.0,
    }


def chat1m(i, model, answer):
    return {"conversation_id": f"c{i}", "model": model, "conversation": conversation("q", answer)}


CASES = {
    "canonical-jsonl": ("canonical", [canonical(0), canonical(1, LONE), canonical(2)], 1),
    "canonical-json-text": (
        "canonical",
        [
            {**canonical(0), "prompt": '["x"]', "response_a": '["a"]', "response_b": '["b"]'},
            {**canonical(1), "prompt": f'["{LONE}"]', "response_a": '["a"]', "response_b": '["b"]'},
        ],
        1,
    ),
    "arena33k": ("arena33k", [arena33k(0), arena33k(1, LONE), arena33k(2)], 1),
    "ultrafeedback": ("ultrafeedback", [ultrafeedback(0, LONE), ultrafeedback(1)], 0),
    "chat1m": ("chat1m", [chat1m(0, "m1", "one"), chat1m(1, "m2", LONE)], 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("container", ["jsonl", "json"])
def test_lone_surrogates_are_repaired_and_flagged(tmp_path, name, container):
    fmt, records, at = CASES[name]
    write = write_jsonl if container == "jsonl" else write_json
    path = write(tmp_path / f"rows.{container}", records)
    texts, bits = repairs_of(path, fmt)
    assert len(bits) == len(texts) >= 1
    expected = [af.REPAIR_SURROGATE if i == at else 0 for i in range(len(texts))]
    assert bits == expected
    flat = [
        t for row in texts for field in row for t in ([field] if isinstance(field, str) else field)
    ]
    assert any("\ufffd" in t for t in flat)
    assert not any("\ud83d" in t for t in flat)


def test_a_chunk_without_repairs_carries_none(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [canonical(i) for i in range(3)])
    assert all(chunk.repairs is None for chunk in read(path, "canonical"))


def test_reader_repairs_reach_the_dataset(tmp_path):
    records = [canonical(i, f"{LONE} {i}" if i % 3 == 1 else f"text {i}") for i in range(9)]
    path = write_jsonl(tmp_path / "rows.jsonl", records)
    # chunk_rows=4: the repairs follow the rows through chunk and ramp cuts.
    cfg = {"inputs": [f"{path}:canonical"], "max_length": 256, "chunk_rows": 4, "folds": 3}
    manifest = build_dataset(BuildConfig(**cfg), tmp_path / "ds")
    ds = load_dataset(tmp_path / "ds")
    flagged = {i: bool(r & af.REPAIR_SURROGATE) for i, r in zip(ds.ids, ds.encoded.repairs)}
    assert flagged == {f"r{i}": i % 3 == 1 for i in range(9)}
    assert manifest["counts"]["repaired"] == 3
    assert manifest["counts"]["repairs"] == {
        "null": 0,
        "surrogate": 3,
        "ragged": 0,
        "clipped": 0,
        "image": 0,
    }
    dropped = build_dataset(BuildConfig(**cfg, repaired="drop"), tmp_path / "dropped")
    assert dropped["counts"]["dropped"] == {"repaired": 3}
    assert dropped["counts"]["rows"] == 6
