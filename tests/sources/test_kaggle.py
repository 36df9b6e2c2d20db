"""The Kaggle CSV reader on the real rows of ../shared/data, and on small
broken files."""

from __future__ import annotations

import csv
import gzip
import shutil

import polars as pl
import pytest

from arena_fast.errors import InputError
from arena_fast.sources import CANONICAL_SCHEMA, DROPPED_SCHEMA, kaggle, read

from .conftest import collect, one_line_error, shared_path

KAGGLE_SCHEMA = {
    name: (pl.String() if name in ("prompt", "response_a", "response_b") else dtype)
    for name, dtype in CANONICAL_SCHEMA.items()
}
HEADER = (
    "id,model_a,model_b,prompt,response_a,response_b,winner_model_a,winner_model_b,winner_tie\n"
)


@pytest.fixture(scope="module")
def train_csv():
    return shared_path("kaggle_train_head100.csv")


@pytest.fixture(scope="module")
def test_csv():
    return shared_path("kaggle_test_example.csv")


def csv_rows(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_train_head_rows_as_in_the_file(train_csv):
    rows, dropped = collect(read(train_csv))
    expected = csv_rows(train_csv)
    assert rows.schema == pl.Schema(KAGGLE_SCHEMA)
    assert dropped.schema == pl.Schema(DROPPED_SCHEMA) and dropped.height == 0
    assert rows.height == len(expected) == 100
    assert rows["id"].to_list() == [r["id"] for r in expected]
    for column in ("model_a", "model_b", "prompt", "response_a", "response_b"):
        # The JSON text, byte for byte: the Rust core parses it.
        assert rows[column].to_list() == [r[column] for r in expected], column
    labels = rows["labels"].to_list()
    assert labels == [
        [float(r["winner_model_a"]), float(r["winner_model_b"]), float(r["winner_tie"])]
        for r in expected
    ]
    assert all(sorted(v) == [0.0, 0.0, 1.0] for v in labels)
    assert rows["source"].unique().to_list() == ["kaggle"]
    assert rows["row"].to_list() == list(range(100))
    assert rows["input_rows"].unique().to_list() == [1]
    assert rows["teacher_logits"].null_count() == 100


def test_test_example_is_unlabelled(test_csv):
    rows, dropped = collect(read(test_csv))
    expected = csv_rows(test_csv)
    assert rows.schema == pl.Schema(KAGGLE_SCHEMA)
    assert rows.height == 3 and dropped.height == 0
    assert rows["id"].to_list() == [r["id"] for r in expected]
    assert rows["labels"].null_count() == 3
    assert rows["model_a"].null_count() == rows["model_b"].null_count() == 3
    assert rows["prompt"].to_list() == [r["prompt"] for r in expected]


def test_chunking_does_not_change_the_rows(train_csv):
    small = list(kaggle.read(train_csv, chunk_rows=7))
    assert len(small) == 15 and all(c.rows.height <= 7 for c in small)
    rows_7, _ = collect(small)
    rows_1000, _ = collect(read(train_csv, chunk_rows=1000))
    assert rows_7.equals(rows_1000)
    assert rows_7["row"].to_list() == list(range(rows_7.height))


def test_missing_column_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "no_response_b.csv"
    path.write_text('id,prompt,response_a\n1,"[""a""]","[""b""]"\n', encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        read(path, "kaggle")
    one_line_error(
        excinfo, str(path), "missing column(s) ['response_b'] for format kaggle", "columns seen"
    )


def test_some_winner_columns_missing(tmp_path):
    path = tmp_path / "half.csv"
    path.write_text('prompt,response_a,response_b,winner_model_a\n"[]","[]","[]",1\n')
    with pytest.raises(InputError) as excinfo:
        read(path)
    one_line_error(excinfo, "['winner_model_b', 'winner_tie']")


def test_bad_winner_cells_are_dropped(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + '1,m1,m2,"[""p""]","[""a""]","[""b""]",1,0,0\n'
        + '2,m1,m2,"[""p""]","[""a""]","[""b""]",abc,0,0\n'
        + '3,m1,m2,"[""p""]","[""a""]","[""b""]",0,,1\n'
        + '4,m1,m2,"[""p""]","[""a""]","[""b""]",0.25, 0.75 ,0\n'
        + '5,m1,m2,"[""p""]","[""a""]","[""b""]",,,\n',
        encoding="utf-8",
    )
    rows, dropped = collect(read(path, chunk_rows=2))
    assert rows["id"].to_list() == ["1", "4"]
    assert rows["labels"].to_list() == [[1.0, 0.0, 0.0], [0.25, 0.75, 0.0]]
    assert rows["row"].to_list() == [0, 3]
    # Three empty cells in a labelled file are bad labels, not an unlabelled row.
    assert dropped["reason"].to_list() == ["bad_labels"] * 3
    assert dropped["id"].to_list() == ["2", "3", "5"]
    assert dropped["row"].to_list() == [1, 2, 4]
    assert "winner_model_a=abc" in dropped["detail"][0]
    assert "winner_model_a=<empty>, winner_model_b=<empty>" in dropped["detail"][2]
    assert dropped["source"].unique().to_list() == ["kaggle"]


def test_without_id_column_the_row_number_is_the_id(tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text(
        'prompt,response_a,response_b\n"[""p""]","[""a""]","[""b""]"\n"[""q""]","[]","[]"\n'
    )
    rows, _ = collect(read(path))
    assert rows["id"].to_list() == ["0", "1"]


def test_empty_id_cell_is_missing_id(tmp_path):
    path = tmp_path / "emptyid.csv"
    path.write_text('id,prompt,response_a,response_b\n,"[]","[]","[]"\n7,"[]","[]","[]"\n')
    rows, dropped = collect(read(path))
    assert rows["id"].to_list() == ["7"]
    assert dropped.select("reason", "row").rows() == [("missing_id", 0)]


def test_json_text_is_not_decoded(tmp_path):
    # A lone surrogate escape and escaped slashes stay as the file has them.
    text = '["x \\ud83d y", "a\\/b", null]'
    path = tmp_path / "raw.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["prompt", "response_a", "response_b"], [text, "[]", "[]"]])
    rows, _ = collect(read(path))
    assert rows["prompt"].to_list() == [text]


def test_broken_quote_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('id,prompt,response_a,response_b\n1,"[""a""]","[""b""]","[""c\n2,x,y,z\n')
    with pytest.raises(InputError) as excinfo:
        collect(read(path))
    one_line_error(excinfo, str(path))


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as excinfo:
        read(tmp_path / "nope.csv", "kaggle")
    one_line_error(excinfo, "nope.csv")


def test_gzipped_csv(tmp_path, test_csv):
    path = tmp_path / "test.csv.gz"
    with open(test_csv, "rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    rows, _ = collect(read(path))
    plain, _ = collect(read(test_csv))
    assert rows.equals(plain)


def test_header_only_gives_one_empty_chunk(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(HEADER)
    chunks = list(read(path))
    assert len(chunks) == 1
    assert chunks[0].rows.height == 0 and chunks[0].dropped.height == 0
    assert chunks[0].rows.schema == pl.Schema(KAGGLE_SCHEMA)
