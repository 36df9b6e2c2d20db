"""The WSDM Cup reader, on files written from the documented schema
(../shared/data/README.md: `id, prompt, response_a, response_b, winner,
model_a, model_b, language`, plain-string texts, parquet)."""

from __future__ import annotations

import json

import polars as pl
import pytest

import arena_fast as af
from arena_fast.sources import detect, read

from .conftest import collect, write_jsonl

TRAIN = [
    {
        "id": "a1",
        "prompt": "What is 2+2?",
        "response_a": "4",
        "response_b": "Four.",
        "winner": "model_a",
        "model_a": "gpt-4o",
        "model_b": "llama-3",
        "language": "English",
    },
    {
        # Looks like a Kaggle JSON list: stays text.
        "id": "a2",
        "prompt": '["not", "a list"]',
        "response_a": "[1, 2]",
        "response_b": "ok",
        "winner": "model_b",
        "model_a": "m1",
        "model_b": "m2",
        "language": "Deutsch",
    },
    {
        "id": "a3",
        "prompt": "Привет",
        "response_a": "Здравствуйте",
        "response_b": "Hi",
        "winner": "tie",
        "model_a": "m1",
        "model_b": "m2",
        "language": "Russian",
    },
]


def train_frame() -> pl.DataFrame:
    # The first record decides detection: a plain one first.
    return pl.DataFrame(TRAIN)


def write(kind: str, tmp_path, frame: pl.DataFrame):
    path = tmp_path / f"wsdm.{kind}"
    if kind == "parquet":
        frame.write_parquet(path)
    elif kind == "csv":
        frame.write_csv(path)
    else:
        write_jsonl(path, frame.to_dicts())
    return path


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_train_rows(tmp_path, kind):
    """Before: CSV all rows bad_text (exit 0), parquet taken for canonical."""
    path = write(kind, tmp_path, train_frame())
    found = detect(path)
    assert found.format == "wsdm" and "plain strings" in found.reason, found
    rows, dropped = collect(read(path))
    assert rows["id"].to_list() == ["a1", "a2"]
    assert rows["source"].to_list() == ["wsdm", "wsdm"]
    assert rows["prompt"].to_list() == [["What is 2+2?"], ['["not", "a list"]']]
    assert rows["response_a"].to_list() == [["4"], ["[1, 2]"]]
    assert rows["labels"].dtype == pl.Array(pl.Float64, 2)
    assert rows["labels"].to_list() == [[1.0, 0.0], [0.0, 1.0]]
    assert rows["language"].to_list() == ["English", "Deutsch"]
    assert rows["model_b"].to_list() == ["llama-3", "m2"]
    assert dropped.select("id", "reason").rows() == [("a3", "bad_winner")]
    assert "'tie'" in dropped["detail"][0]


def test_test_file_is_unlabelled(tmp_path):
    frame = train_frame().drop("winner", "model_a", "model_b")
    path = write("parquet", tmp_path, frame)
    assert "no winner column" in detect(path).reason
    rows, dropped = collect(read(path))
    assert rows.height == 3 and dropped.height == 0
    assert rows["labels"].to_list() == [None] * 3


def test_an_empty_file_gives_one_empty_chunk_of_width_2(tmp_path):
    path = write("parquet", tmp_path, train_frame().clear())
    (chunk,) = read(path, "wsdm")
    assert chunk.rows.height == 0 and chunk.rows["labels"].dtype == pl.Array(pl.Float64, 2)


def test_given_format_never_parses_json(tmp_path):
    lists = {"response_a": '["x"]', "response_b": "[]"}
    frame = pl.DataFrame([{**TRAIN[1], **lists, "id": "x"}])
    path = write("csv", tmp_path, frame)
    assert detect(path).format == "kaggle"  # its first record looks like Kaggle's
    rows, _ = collect(read(path, "wsdm"))
    assert rows["prompt"].to_list() == [['["not", "a list"]']]
    assert rows["response_b"].to_list() == [["[]"]]


def test_record_problems_are_rows(tmp_path):
    path = tmp_path / "w.jsonl"
    lines = [json.dumps(TRAIN[0]), "[]", json.dumps({**TRAIN[0], "id": None})]
    lines.append(json.dumps({**TRAIN[0], "id": "n", "prompt": ["x"]}))
    lines.append(json.dumps({**TRAIN[0], "id": "z", "winner": None}))
    path.write_text("\n".join(lines) + "\n")
    rows, dropped = collect(read(path, "wsdm"))
    assert rows["id"].to_list() == ["a1"]
    assert dropped.select("row", "reason").rows() == [
        (1, "bad_record"),
        (2, "missing_id"),
        (3, "bad_text"),
        (4, "bad_winner"),
    ]


@pytest.mark.slow
def test_builds_in_label_space_ab(tmp_path, shared_dir):
    frame = pl.DataFrame([{**TRAIN[i % 2], "id": str(i)} for i in range(40)])
    frame = frame.with_columns(pl.format("{} #{}", pl.col("prompt"), pl.col("id")).alias("prompt"))
    path = write("parquet", tmp_path, frame)
    tokenizer = shared_dir / "tokenizers" / "gemma3" / "tokenizer.json"
    out = tmp_path / "out"
    af.build_dataset(af.BuildConfig(inputs=[str(path)], tokenizer=str(tokenizer)), out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["label_space"] == "ab"
    (entry,) = manifest["inputs"]
    assert entry["format"] == "wsdm" and entry["rows_kept"] == 40
