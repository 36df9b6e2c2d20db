"""The chat1m reader: the real 191-conversation sample of ../shared/data (no
two of its prompts match, so it is also extended with partner conversations
built from its own records), and a small hand-written file with a known
pairing."""

from __future__ import annotations

import json

import polars as pl
import pytest

from arena_fast.sources import CANONICAL_SCHEMA, DROPPED_SCHEMA, METADATA_SCHEMA, read
from arena_fast.sources.chat1m import turns_key

from .conftest import coin, collect, shared_path, write_jsonl, write_parquet


@pytest.fixture(scope="module")
def sample_records() -> list[dict]:
    path = shared_path("lmsys_chat_1m_sample.jsonl")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def turns(record: dict, role: str) -> list:
    return [t["content"] for t in record["conversation"] if t["role"] == role]


def check_accounting(records: list[dict], rows: pl.DataFrame, dropped: pl.DataFrame) -> None:
    """Every input conversation is in exactly one pair or one dropped record,
    and every pair is two models answering the same prompt differently."""
    by_cid = {r["conversation_id"]: r for r in records}
    assert len(by_cid) == len(records)
    assert 2 * rows.height + dropped.height == len(records)
    seen = [cid for pair in rows["id"].to_list() for cid in pair.split("+")]
    seen += dropped["id"].to_list()
    assert sorted(seen) == sorted(by_cid)
    assert rows["input_rows"].unique().to_list() in ([], [2])
    assert dropped["input_rows"].unique().to_list() in ([], [1])
    assert rows["labels"].null_count() == rows.height
    for r in rows.iter_rows(named=True):
        first, second = (by_cid[c] for c in r["id"].split("+"))
        assert r["row"] == records.index(first)
        assert first["model"] != second["model"]
        assert {r["model_a"], r["model_b"]} == {first["model"], second["model"]}
        assert turns_key(turns(first, "user")) == turns_key(turns(second, "user"))
        assert turns_key(turns(first, "assistant")) != turns_key(turns(second, "assistant"))
        assert r["prompt"] == turns(first, "user")
        side_a = first if r["model_a"] == first["model"] else second
        side_b = second if side_a is first else first
        assert r["response_a"] == turns(side_a, "assistant")
        assert r["response_b"] == turns(side_b, "assistant")


def test_real_sample(sample_records):
    path = shared_path("lmsys_chat_1m_sample.jsonl")
    rows, dropped = collect(read(path, seed=3))
    assert rows.schema == pl.Schema({**CANONICAL_SCHEMA, **METADATA_SCHEMA})
    assert dropped.schema == pl.Schema(DROPPED_SCHEMA)
    assert len(sample_records) == 191
    check_accounting(sample_records, rows, dropped)
    # The sample's prompts are all different: nothing to pair.
    assert rows.height == 0
    assert dropped["reason"].unique().to_list() == ["chat1m_unpaired"]
    assert dropped["row"].to_list() == list(range(191))


def extended(records: list[dict]) -> list[dict]:
    """The real conversations plus: a partner of another model with other
    answers for the first 30, a copy of another model with the same answers
    for the first 10 and for the 10 after the first 30."""
    models = sorted({r["model"] for r in records})
    out = list(records)
    for i, r in enumerate(records[:40]):
        other = [m for m in models if m != r["model"]]
        if i < 30:
            conversation = [
                t if t["role"] == "user" else {**t, "content": f"partner answer {i} {k}"}
                for k, t in enumerate(r["conversation"])
            ]
            cid = r["conversation_id"] + "-p"
            out.append(
                {**r, "conversation_id": cid, "model": other[0], "conversation": conversation}
            )
        if i < 10 or i >= 30:
            out.append({**r, "conversation_id": r["conversation_id"] + "-i", "model": other[1]})
    return out


def test_extended_real_sample(sample_records, tmp_path):
    records = extended(sample_records)
    path = write_jsonl(tmp_path / "chat.jsonl", records)
    rows, dropped = collect(read(path, seed=3, chunk_rows=8))
    check_accounting(records, rows, dropped)
    assert rows.height == 30
    reasons = dict(dropped["reason"].value_counts().iter_rows())
    assert reasons == {"chat1m_identical": 20, "chat1m_unpaired": 161}
    assert rows.equals(collect(read(path, seed=3))[0])  # deterministic, chunking aside
    other = collect(read(path, seed=4))[0]
    assert other["id"].equals(rows["id"])  # the same pairs
    swapped = (other["model_a"] != rows["model_a"]).sum()
    assert 0 < swapped < rows.height  # some A/B orders change with the seed
    for r in rows.iter_rows(named=True):
        first_cid = r["id"].split("+")[0]
        first = next(x for x in records if x["conversation_id"] == first_cid)
        assert (r["model_a"] == first["model"]) == coin(3, r["row"])
    parquet = write_parquet(tmp_path / "chat.parquet", records)
    assert collect(read(parquet, seed=3))[0].equals(rows)


def conv(cid, model, prompt, answer):
    return {
        "conversation_id": cid,
        "model": model,
        "conversation": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer},
        ],
        "turn": 1,
        "language": "English",
    }


HAND = [
    conv("c4", "m3", "Hello", "Hello there"),  # row 0
    conv("c1", "m1", "hello", "Hi"),  # row 1
    conv("c2", "m1", "  HELLO ", "Hey"),  # row 2
    conv("c3", "m2", "Hello", " hi "),  # row 3: identical to c1's answer after normalising
    conv("c5", "m1", "2+2?", "4"),  # row 4
    conv("c6", "m2", "2+2?", "4"),  # row 5
    conv("c7", "m1", "alone", "x"),  # row 6
    conv("c8", "m1", "same model", "x"),  # row 7
    conv("c9", "m1", "same model", "y"),  # row 8
    {**conv("c10", "m2", "q", "a"), "conversation": [{"role": "user", "content": "q"}]},  # row 9
]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_hand_written_pairing(tmp_path, seed):
    path = write_jsonl(tmp_path / "hand.jsonl", HAND)
    with path.open("a") as f:
        f.write("not json\n")  # row 10
    rows, dropped = collect(read(path, seed=seed))
    # "hello": in id order c1 skips c2 (same model) and c3 (same answer), takes c4;
    # c2 then takes c3.
    assert rows["id"].to_list() == ["c1+c4", "c2+c3"]
    assert rows["row"].to_list() == [1, 2]
    assert rows["prompt"].to_list() == [["hello"], ["  HELLO "]]
    for r, (first, second) in zip(rows.iter_rows(named=True), [("m1", "m3"), ("m1", "m2")]):
        expected = (first, second) if coin(seed, r["row"]) else (second, first)
        assert (r["model_a"], r["model_b"]) == expected
    pair = rows.row(0, named=True)
    assert {tuple(pair["response_a"]), tuple(pair["response_b"])} == {("Hi",), ("Hello there",)}
    assert dropped.select("id", "row", "reason").rows() == [
        ("c5", 4, "chat1m_identical"),
        ("c6", 5, "chat1m_identical"),
        ("c7", 6, "chat1m_unpaired"),
        ("c8", 7, "chat1m_unpaired"),
        ("c9", 8, "chat1m_unpaired"),
        ("c10", 9, "bad_conversation"),
        (None, 10, "bad_record"),
    ]


def test_without_conversation_id_rows_order_the_pairs(tmp_path):
    records = [{k: v for k, v in r.items() if k != "conversation_id"} for r in HAND[:4]]
    rows, dropped = collect(read(write_jsonl(tmp_path / "noid.jsonl", records), "chat1m"))
    # Row order: row 0 (m3) takes row 1 (m1); row 2 (m1) takes row 3 (m2).
    assert rows["id"].to_list() == ["0+1", "2+3"] and dropped.height == 0
