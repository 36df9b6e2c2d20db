"""The canonical reader: a canonical frame round-trips through parquet and
JSON lines; absent optional columns are filled; bad rows are dropped."""

from __future__ import annotations

import polars as pl
import pytest

from arena_fast.errors import InputError
from arena_fast.sources import CANONICAL_SCHEMA, DROPPED_SCHEMA, read

from .conftest import collect, one_line_error, write_json, write_jsonl


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "source": ["kaggle", "arena33k", "mine"],
            "model_a": ["m1", None, "m3"],
            "model_b": ["m2", "m2", None],
            "prompt": [["p1", "p2"], ["q"], [None, "ü 😀"]],
            "response_a": [["a1", "a2"], [""], ["x", None]],
            "response_b": [["b1", None], ["z"], ["y", "w"]],
            "labels": [[1.0, 0.0, 0.0], None, [0.25, 0.25, 0.5]],
            # As many teachers in every row that has them; an empty list is
            # dropped (bad_teacher_logits, tests/reliability/test_artifacts.py).
            "teacher_logits": [
                [[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]],
                None,
                [[0.0] * 3, [-1.5, 2.5, 1e30]],
            ],
            "row": [10, 11, 12],
            "input_rows": [1, 2, 1],
        },
        schema=CANONICAL_SCHEMA,
    )


def test_parquet_roundtrip(tmp_path):
    path = tmp_path / "rows.parquet"
    frame().write_parquet(path)
    rows, dropped = collect(read(path, chunk_rows=2))
    assert rows.schema == pl.Schema(CANONICAL_SCHEMA)
    assert rows.equals(frame()) and dropped.height == 0


def test_jsonl_roundtrip(tmp_path):
    path = tmp_path / "rows.jsonl"
    frame().write_ndjson(path)
    rows, dropped = collect(read(path, "canonical", chunk_rows=2))
    assert rows.schema == pl.Schema(CANONICAL_SCHEMA)
    assert rows.equals(frame()) and dropped.height == 0


def test_missing_optional_columns_are_filled(tmp_path):
    records = [
        {"id": 1, "prompt": ["p"], "response_a": ["a"], "response_b": ["b"], "labels": [0, 1, 0]},
        {"id": 2, "prompt": ["q"], "response_a": ["c"], "response_b": ["d"], "labels": None},
    ]
    for path in (write_jsonl(tmp_path / "min.jsonl", records), tmp_path / "min.parquet"):
        if path.suffix == ".parquet":
            pl.DataFrame(records).write_parquet(path)
        rows, _ = collect(read(path, "canonical"))
        assert rows.schema == pl.Schema(CANONICAL_SCHEMA)
        assert rows["id"].to_list() == ["1", "2"]
        assert rows["source"].to_list() == ["canonical", "canonical"]
        assert rows["labels"].to_list() == [[0.0, 1.0, 0.0], None]
        assert rows["row"].to_list() == [0, 1]
        assert rows["input_rows"].to_list() == [1, 1]
        assert rows["model_a"].null_count() == rows["teacher_logits"].null_count() == 2


def test_json_text_columns_pass_through(tmp_path):
    texts = {"prompt": '["p \\ud83d"]', "response_a": '["a"]', "response_b": '["b"]'}
    records = [{"id": "k", **texts, "labels": [0, 0, 1]}]
    for path in (write_json(tmp_path / "t.json", records), tmp_path / "t.parquet"):
        if path.suffix == ".parquet":
            pl.DataFrame(records).write_parquet(path)
        rows, _ = collect(read(path, "canonical"))
        assert rows.schema["prompt"] == pl.String
        assert rows["prompt"].to_list() == ['["p \\ud83d"]']  # JSON text, for the Rust core


def test_bad_rows_are_dropped(tmp_path):
    base = {"prompt": ["p"], "response_a": ["a"], "response_b": ["b"], "labels": [1, 0, 0]}
    records = [
        {"id": "ok", **base},
        {"id": None, **base},
        {"id": "short", **base, "labels": [1, 0]},
        {"id": "nulls", **base, "labels": [1, None, 0]},
        {"id": "logits", **base, "teacher_logits": [[1, 2, 3], [4, 5]]},
        {"id": "text", **base, "response_b": "not a list"},
        {"id": "lone", **base, "prompt": ["x \ud83d y"]},
    ]
    # json.dumps writes the lone surrogate as the escape \ud83d.
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    rows, dropped = collect(read(path, "canonical", chunk_rows=3))
    assert rows["id"].to_list() == ["ok", "lone"]
    assert rows["prompt"].to_list()[1] == ["x \ufffd y"]
    assert dropped.schema == pl.Schema(DROPPED_SCHEMA)
    assert dropped.select("id", "row", "reason").rows() == [
        (None, 1, "missing_id"),
        ("short", 2, "bad_labels"),
        ("nulls", 3, "bad_labels"),
        ("logits", 4, "bad_teacher_logits"),
        ("text", 5, "bad_text"),
    ]
    parquet = tmp_path / "bad.parquet"
    pl.DataFrame(records[:5], infer_schema_length=None).write_parquet(parquet)
    rows, dropped = collect(read(parquet, "canonical"))
    assert rows["id"].to_list() == ["ok"]
    assert dropped["reason"].to_list() == [
        "missing_id",
        "bad_labels",
        "bad_labels",
        "bad_teacher_logits",
    ]


def test_missing_required_column(tmp_path):
    path = tmp_path / "nolabels.parquet"
    frame().drop("labels").write_parquet(path)
    with pytest.raises(InputError) as excinfo:
        read(path, "canonical")
    one_line_error(excinfo, str(path), "missing column(s) ['labels'] for format canonical")


def test_wrong_column_type_is_one_line(tmp_path):
    path = tmp_path / "wrong.parquet"
    frame().with_columns(pl.lit("x").alias("labels")).write_parquet(path)
    with pytest.raises(InputError) as excinfo:
        read(path, "canonical")
    one_line_error(excinfo, str(path), "'labels'")
