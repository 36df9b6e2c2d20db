"""The Kaggle layout in every container (parquet, JSON lines, JSON, each
compressed or not, CSV .zst) and the `winner` string column: the real 1,000
sample rows converted here must read as the CSV does (ids, texts, labels)."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pyarrow as pa
import pytest

import arena_fast as af
from arena_fast.errors import InputError
from arena_fast.sources import detect, parse_input, read

from .conftest import collect, one_line_error, shared_path

TEXTS = ("prompt", "response_a", "response_b")
WINNERS = ("winner_model_a", "winner_model_b", "winner_tie")


@pytest.fixture(scope="module")
def sample():
    """The CSV's rows (read by the reader) and its cells (all text)."""
    path = shared_path("kaggle_train_sample1000.csv")
    rows, dropped = collect(read(path))
    assert rows.height == 1000 and dropped.height == 0
    return path, rows, pl.read_csv(path, infer_schema=False)


def zstd(src, dst):
    with open(src, "rb") as f, pa.output_stream(str(dst), compression="zstd") as out:
        out.write(f.read())
    return dst


def gz(src, dst):
    with open(src, "rb") as f, gzip.open(dst, "wb") as out:
        out.write(f.read())
    return dst


def same_rows(rows, expected):
    """Ids, models, texts (JSON text or its turns) and labels as the CSV's."""
    for column in ("id", "model_a", "model_b", "labels", "row"):
        assert rows[column].to_list() == expected[column].to_list(), column
    for column in TEXTS:
        got = rows[column]
        if got.dtype == pl.String:
            assert got.to_list() == expected[column].to_list(), column
        else:
            turns = [json.loads(t) for t in expected[column].to_list()]
            assert got.to_list() == turns, column


def write(cells: pl.DataFrame, tmp_path, kind: str):
    if kind == "parquet":
        path = tmp_path / "train.parquet"
        cells.write_parquet(path)
    elif kind == "json":
        path = tmp_path / "train.json"
        path.write_text(json.dumps(cells.to_dicts()))
    else:
        path = tmp_path / "train.jsonl"
        cells.write_ndjson(path)
    return path


CONTAINERS = [("parquet", None)] + [(k, c) for k in ("jsonl", "json") for c in (None, "gz", "zst")]


@pytest.mark.parametrize("kind,compress", CONTAINERS)
def test_every_container_reads_as_the_csv(sample, tmp_path, kind, compress):
    _, expected, cells = sample
    path = write(cells, tmp_path, kind)
    if compress is not None:
        path = {"gz": gz, "zst": zstd}[compress](path, tmp_path / f"{path.name}.{compress}")
    found = detect(path)
    # Before: parquet was taken for canonical (and failed), .jsonl.gz refused.
    assert found.format == "kaggle", found
    assert "JSON lists" in found.reason and "winner_*" in found.reason
    rows, dropped = collect(read(path, chunk_rows=333))
    assert dropped.height == 0
    same_rows(rows, expected)


def test_numbers_and_lists_as_a_dataframe_writes_them(sample, tmp_path):
    """`df.to_parquet` of a frame with int winners and ids, lists of turns."""
    _, expected, cells = sample
    frame = cells.with_columns(
        *(pl.col(c).str.json_decode(pl.List(pl.String)) for c in TEXTS),
        *(pl.col(c).cast(pl.Int64) for c in (*WINNERS, "id")),
    )
    path = tmp_path / "lists.parquet"
    frame.write_parquet(path)
    assert "lists of strings" in detect(path).reason
    rows, dropped = collect(read(path))
    assert dropped.height == 0
    same_rows(rows, expected)
    jsonl = tmp_path / "lists.jsonl"
    frame.write_ndjson(jsonl)
    rows, dropped = collect(read(jsonl, "kaggle"))
    assert dropped.height == 0
    # JSON records' lists become JSON text for the core.
    for column in TEXTS:
        assert [json.loads(t) for t in rows[column]] == frame[column].to_list()


def test_csv_zst_reads_as_the_csv(sample, tmp_path):
    path, expected, _ = sample
    rows, dropped = collect(read(zstd(path, tmp_path / "train.csv.zst")))
    assert dropped.height == 0
    same_rows(rows, expected)
    assert not list(tmp_path.glob("arena-fast-*"))


def test_given_kaggle_on_a_parquet_reads_it(sample, tmp_path):
    """Before: `:kaggle` read the parquet bytes as CSV (binary column names)."""
    _, expected, cells = sample
    path = write(cells, tmp_path, "parquet")
    given = parse_input(f"{path}:kaggle")
    assert given.detected is None
    rows, _ = collect(read(given.path, given.format))
    same_rows(rows, expected)
    renamed = tmp_path / "train.csv"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(InputError) as excinfo:
        collect(read(renamed, "kaggle"))
    one_line_error(excinfo, str(renamed), "a parquet file, not CSV")


WINNER_VALUES = {"model_a": [1.0, 0.0, 0.0], "model_b": [0.0, 1.0, 0.0], "tie": [0.0, 0.0, 1.0]}


def with_winner(cells: pl.DataFrame) -> pl.DataFrame:
    name = pl.when(pl.col("winner_model_a") == "1").then(pl.lit("model_a"))
    name = name.when(pl.col("winner_model_b") == "1").then(pl.lit("model_b"))
    return cells.with_columns(name.otherwise(pl.lit("tie")).alias("winner")).drop(WINNERS)


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_a_winner_column_gives_the_labels(sample, tmp_path, kind):
    """Before: a CSV with `winner` instead of winner_* built 1,000 rows unlabelled."""
    _, expected, cells = sample
    cells = with_winner(cells)
    if kind == "csv":
        path = tmp_path / "train.csv"
        cells.write_csv(path)
    else:
        path = write(cells, tmp_path, kind)
    assert "a winner column" in detect(path).reason
    rows, dropped = collect(read(path))
    assert dropped.height == 0
    same_rows(rows, expected)


def test_bad_winner_values_are_dropped_with_the_value(tmp_path):
    cell = json.dumps(["q"])
    path = tmp_path / "w.csv"
    pl.DataFrame(
        {
            "id": ["1", "2", "3", "4", "5"],
            "prompt": [cell] * 5,
            "response_a": [cell] * 5,
            "response_b": [cell] * 5,
            "winner": ["model_a", "tie (bothbad)", " model_b ", "both_bad", None],
        }
    ).write_csv(path)
    rows, dropped = collect(read(path))
    assert rows["id"].to_list() == ["1", "2", "3"]
    assert rows["labels"].to_list() == [
        WINNER_VALUES["model_a"],
        WINNER_VALUES["tie"],
        WINNER_VALUES["model_b"],
    ]
    assert dropped["reason"].to_list() == ["bad_winner"] * 2
    assert "both_bad" in dropped["detail"][0] and "<empty>" in dropped["detail"][1]


def test_json_record_problems_are_rows(tmp_path):
    good = {"id": 1, "prompt": ["q"], "response_a": ["a"], "response_b": ["b"], "winner": "tie"}
    path = tmp_path / "t.jsonl"
    lines = [json.dumps(good), "[1, 2]", "{not json", json.dumps({**good, "id": 2, "prompt": 3})]
    path.write_text("\n".join(lines) + "\n")
    rows, dropped = collect(read(path, "kaggle"))
    assert rows["id"].to_list() == ["1", "2"] and rows["row"].to_list() == [0, 3]
    assert dropped["row"].to_list() == [1, 2]
    assert dropped["reason"].to_list() == ["bad_record"] * 2


def test_a_parquet_text_column_of_another_type_is_one_line(tmp_path):
    path = tmp_path / "n.parquet"
    pl.DataFrame({"prompt": [1], "response_a": ["[]"], "response_b": ["[]"]}).write_parquet(path)
    with pytest.raises(InputError) as excinfo:
        read(path, "kaggle")
    one_line_error(excinfo, str(path), "column prompt", "JSON-list text or a list of strings")


@pytest.mark.slow
def test_parquet_kaggle_builds_end_to_end(sample, tmp_path, shared_dir):
    _, expected, cells = sample
    path = write(cells.head(200), tmp_path, "parquet")
    tokenizer = shared_dir / "tokenizers" / "gemma3" / "tokenizer.json"
    out = tmp_path / "out"
    af.build_dataset(af.BuildConfig(inputs=[str(path)], tokenizer=str(tokenizer)), out)
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["inputs"]
    assert entry["format"] == "kaggle" and entry["rows_in"] == 200
    assert entry["rows_kept"] + entry["rows_dropped"] == 200 and entry["rows_kept"] > 190
    assert manifest["label_space"] == "abt"
