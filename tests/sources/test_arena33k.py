"""The arena33k reader on hand-written records in the layout of
lmsys/chatbot_arena_conversations (made-up texts), as parquet, a JSON array
and JSON lines."""

from __future__ import annotations

import json

import polars as pl
import pytest

from arena_fast.errors import InputError
from arena_fast.sources import CANONICAL_SCHEMA, DROPPED_SCHEMA, METADATA_SCHEMA, read

from .conftest import collect, one_line_error, write_json, write_jsonl, write_parquet


def conversation(*turns):
    """Alternating user / assistant turns."""
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": text} for i, text in enumerate(turns)]


def record(qid, winner, conv_a, conv_b, model_a="model-x", model_b="model-y"):
    return {
        "question_id": qid,
        "model_a": model_a,
        "model_b": model_b,
        "winner": winner,
        "judge": "arena_user_1234",
        "conversation_a": conv_a,
        "conversation_b": conv_b,
        "turn": sum(t["role"] == "user" for t in conv_a),
        "anony": True,
        "language": "English",
        "tstamp": 1682351591.1322,
        "openai_moderation": {"categories": {"harassment": False}, "flagged": False},
        "toxic_chat_tag": {"roberta-large": {"flagged": False, "probability": 0.01}},
    }


RECORDS = [
    record(
        "q0",
        "model_a",
        conversation("Name a colour.", "Blue."),
        conversation("Name a colour.", "Green, like grass."),
    ),
    record(
        "q1",
        "model_b",
        conversation("Count to two.", "1, 2", "Now to three.", "1, 2, 3"),
        conversation("Count to two.", "one two", "Now to three.", None),
        model_a="alpha-7b",
        model_b="beta-13b",
    ),
    record("q2", "tie", conversation("Hi", "Hello!"), conversation("Hi", "Hey there.")),
    record("q3", "tie (bothbad)", conversation("2+2?", "5"), conversation("2+2?", "22")),
    record("q4", "model_c", conversation("x?", "y"), conversation("x?", "z")),
    record("q5", "model_a", conversation("Only a question"), conversation("Only a question")),
    record(
        "q6",
        "model_a",
        conversation("Same?", "Yes."),
        conversation("Different user turn", "No."),
    ),
]
EXPECTED_IDS = ["q0", "q1", "q2", "q3", "q6"]
EXPECTED_LABELS = [
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.0, 0.0, 1.0],
    [0.0, 0.0, 1.0],
    [1.0, 0.0, 0.0],
]

WRITERS = {"parquet": write_parquet, "json": write_json, "jsonl": write_jsonl}


@pytest.fixture(params=sorted(WRITERS))
def arena_file(request, tmp_path):
    ext = request.param
    return WRITERS[ext](tmp_path / f"arena.{ext}", RECORDS)


def test_rows_labels_and_texts(arena_file):
    rows, dropped = collect(read(arena_file))
    assert rows.schema == pl.Schema({**CANONICAL_SCHEMA, **METADATA_SCHEMA})
    assert dropped.schema == pl.Schema(DROPPED_SCHEMA)
    assert rows["id"].to_list() == EXPECTED_IDS
    assert rows["labels"].to_list() == EXPECTED_LABELS
    assert rows["row"].to_list() == [0, 1, 2, 3, 6]
    assert rows["source"].unique().to_list() == ["arena33k"]
    first, second = rows.row(0, named=True), rows.row(1, named=True)
    assert first["prompt"] == ["Name a colour."]
    assert first["response_a"] == ["Blue."] and first["response_b"] == ["Green, like grass."]
    assert (first["model_a"], first["model_b"]) == ("model-x", "model-y")
    assert second["prompt"] == ["Count to two.", "Now to three."]
    assert second["response_a"] == ["1, 2", "1, 2, 3"]
    assert second["response_b"] == ["one two", None]  # a null content is a null turn
    assert (second["model_a"], second["model_b"]) == ("alpha-7b", "beta-13b")
    # Different user turns in the two conversations: conversation_a's.
    assert rows.row(4, named=True)["prompt"] == ["Same?"]


def test_bad_records_are_dropped(arena_file):
    _, dropped = collect(read(arena_file))
    assert dropped.select("id", "row", "reason").rows() == [
        ("q4", 4, "bad_winner"),
        ("q5", 5, "bad_conversation"),
    ]
    assert "model_c" in dropped["detail"][0]
    assert "no assistant turn" in dropped["detail"][1]


def test_same_rows_from_every_container(tmp_path):
    frames = [collect(read(w(tmp_path / f"a.{e}", RECORDS)))[0] for e, w in WRITERS.items()]
    assert frames[0].equals(frames[1]) and frames[1].equals(frames[2])


def test_chunking(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", RECORDS)
    chunks = list(read(path, chunk_rows=2))
    assert len(chunks) == 4 and all(c.rows.height <= 2 for c in chunks)
    rows, _ = collect(chunks)
    assert rows.equals(collect(read(path))[0])


def test_malformed_json_records_are_dropped(tmp_path):
    path = tmp_path / "odd.jsonl"
    good = record("ok", "model_a", conversation("a", "b"), conversation("a", "c"))
    not_list = {**good, "question_id": 7, "conversation_a": "user: a\nassistant: b"}
    bad_turn = {**good, "question_id": "t", "conversation_b": [{"role": "user"}]}
    no_id = {**good, "question_id": None}
    write_jsonl(path, [good, not_list, bad_turn, no_id, [1, 2]])
    with path.open("a") as f:
        f.write("{not json\n\n")
    rows, dropped = collect(read(path, "arena33k"))
    assert rows["id"].to_list() == ["ok"]
    assert dropped.select("id", "row", "reason").rows() == [
        ("7", 1, "bad_conversation"),
        ("t", 2, "bad_conversation"),
        (None, 3, "missing_id"),
        (None, 4, "bad_record"),
        (None, 5, "bad_record"),
    ]
    assert "conversation_a is str" in dropped["detail"][0]


def test_missing_column(tmp_path):
    records = [{k: v for k, v in RECORDS[0].items() if k != "winner"}]
    path = write_parquet(tmp_path / "nowinner.parquet", records)
    with pytest.raises(InputError) as excinfo:
        read(path, "arena33k")
    one_line_error(excinfo, str(path), "missing column(s) ['winner'] for format arena33k")


def test_not_parquet_is_one_line(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"this is not a parquet file at all")
    with pytest.raises(InputError) as excinfo:
        read(path, "arena33k")
    one_line_error(excinfo, str(path))


def test_100k_layout_metadata(tmp_path):
    """lmarena-ai/arena-human-preference-100k: the 33k layout with language,
    is_code and category_tag kept as row metadata; `tie (bothbad)` a tie."""
    tag = {"criteria_v0.1": {"complexity": True, "real_world": True}, "math_v0.1": {"math": False}}
    extra = {"language": "Spanish", "is_code": True, "category_tag": tag}
    records = [
        {**record("h0", "tie (bothbad)", conversation("a", "b"), conversation("a", "c")), **extra},
        {**record("h1", "model_a", conversation("a", "b"), conversation("a", "c"))},
    ]
    records[1]["language"] = None
    for ext, writer in WRITERS.items():
        rows, _ = collect(read(writer(tmp_path / f"h.{ext}", records), "arena33k"))
        h0, h1 = rows.rows(named=True)
        assert h0["labels"] == [0.0, 0.0, 1.0]
        assert (h0["language"], h0["category"]) == ("Spanish", "complexity,real_world")
        meta = json.loads(h0["meta"])
        assert meta["is_code"] is True and meta["category_tag"] == tag
        assert meta["tstamp"] == 1682351591.1322
        assert (h1["language"], h1["category"]) == (None, None)
