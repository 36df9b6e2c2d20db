"""Format detection, PATH:FORMAT parsing and the checks of `read`."""

from __future__ import annotations

import gzip

import polars as pl
import pytest

from arena_fast.dataset import BuildConfig
from arena_fast.dataset.read import list_inputs
from arena_fast.errors import ConfigError, InputError
from arena_fast.sources import (
    FORMATS,
    Detection,
    Input,
    detect,
    detect_format,
    parse_input,
    read,
)

from .conftest import collect, one_line_error, shared_path, write_json, write_jsonl, write_parquet

MESSAGES = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
LAYOUTS = {
    "arena33k": {
        "question_id": "q",
        "model_a": "m1",
        "model_b": "m2",
        "winner": "tie",
        "conversation_a": MESSAGES,
        "conversation_b": MESSAGES,
    },
    "ultrafeedback": {"prompt": "q", "chosen": MESSAGES, "rejected": MESSAGES},
    "chat1m": {"conversation_id": "c", "model": "m", "conversation": MESSAGES},
    "canonical": {
        "id": "1",
        "prompt": ["q"],
        "response_a": ["a"],
        "response_b": ["b"],
        "labels": [0, 0, 1],
    },
}
RAW_ULTRAFEEDBACK = {"instruction": "q", "completions": [{"response": "a", "overall_score": 1}]}
WRITERS = {"parquet": write_parquet, "json": write_json, "jsonl": write_jsonl}


@pytest.mark.parametrize("ext", sorted(WRITERS))
@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_columnar_formats(tmp_path, fmt, ext):
    path = WRITERS[ext](tmp_path / f"data.{ext}", [LAYOUTS[fmt]])
    assert detect_format(path) == fmt
    assert parse_input(str(path)) == Input(str(path), fmt)


def test_raw_ultrafeedback_and_json_lines_in_a_json_file(tmp_path):
    assert detect_format(write_jsonl(tmp_path / "raw.ndjson", [RAW_ULTRAFEEDBACK])) == (
        "ultrafeedback"
    )
    # The `datasets` library writes JSON lines to .json files.
    path = write_jsonl(tmp_path / "lines.json", [LAYOUTS["chat1m"], LAYOUTS["chat1m"]])
    assert detect_format(path) == "chat1m"
    assert collect(read(path))[1].height == 2  # read as JSON lines too


def test_kaggle_csv():
    path = shared_path("kaggle_test_example.csv")
    assert detect_format(path) == "kaggle"
    assert parse_input(str(path)).format == "kaggle"


def test_real_chat1m_sample():
    assert detect_format(shared_path("lmsys_chat_1m_sample.jsonl")) == "chat1m"


def test_unknown_layout_is_one_clear_line(tmp_path):
    path = write_parquet(tmp_path / "other.parquet", [{"question": "q", "answer": "a"}])
    with pytest.raises(InputError) as excinfo:
        detect_format(path)
    message = one_line_error(excinfo, str(path), "['question', 'answer']")
    assert all(fmt in message for fmt in FORMATS if fmt != "kaggle")


def test_unknown_extension_and_missing_file(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("hello")
    with pytest.raises(InputError) as excinfo:
        detect_format(path)
    one_line_error(excinfo, str(path), "PATH:FORMAT")
    with pytest.raises(InputError) as excinfo:
        detect_format(tmp_path / "absent.parquet")
    one_line_error(excinfo, "absent.parquet", "no such file")


def test_empty_and_broken_json(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError) as excinfo:
        detect_format(empty)
    one_line_error(excinfo, str(empty), "no records")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"a": 1}, {"b": ')
    with pytest.raises(InputError) as excinfo:
        detect_format(broken)
    one_line_error(excinfo, str(broken))


def test_parse_input_with_a_format(tmp_path):
    path = write_parquet(tmp_path / "x.parquet", [LAYOUTS["chat1m"]])
    # The given format wins over the file's layout; no file access needed.
    assert parse_input(f"{path}:canonical") == Input(str(path), "canonical")
    assert parse_input("nowhere/train.csv:kaggle") == Input("nowhere/train.csv", "kaggle")


def test_parse_input_path_with_a_colon(tmp_path):
    path = tmp_path / "run:3.csv"
    path.write_text("prompt,response_a,response_b\n")
    assert parse_input(str(path)) == Input(str(path), "kaggle")
    odd = tmp_path / "x.parquet:v2"
    write_parquet(odd, [LAYOUTS["canonical"]])
    with pytest.raises(InputError) as excinfo:  # the whole spec is the path
        parse_input(str(odd))
    one_line_error(excinfo, str(odd))


def test_parse_input_unknown_format(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("prompt,response_a,response_b\n")
    with pytest.raises(ConfigError) as excinfo:
        parse_input(f"{path}:kagle")
    one_line_error(excinfo, "'kagle'", "kaggle")


def test_read_checks_its_arguments(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [LAYOUTS["chat1m"]])
    with pytest.raises(ConfigError):
        read(path, "excel")
    with pytest.raises(ConfigError):
        read(path, chunk_rows=0)
    with pytest.raises(ConfigError):
        read(path, seed=-1)
    with pytest.raises(InputError):
        read(tmp_path / "absent.jsonl", "chat1m")


def test_every_reader_yields_a_chunk_for_an_empty_file(tmp_path):
    for fmt, layout in LAYOUTS.items():
        path = tmp_path / f"{fmt}.parquet"
        pl.DataFrame([layout]).clear().write_parquet(path)
        chunks = list(read(path, fmt))
        assert len(chunks) == 1 and chunks[0].rows.height == chunks[0].dropped.height == 0


def test_detection_says_why(tmp_path):
    found = detect(shared_path("kaggle_train_sample1000.csv"))
    assert found == Detection(
        "kaggle", "csv: columns prompt/response_a/response_b hold JSON lists, winner_* columns"
    )
    found = detect(shared_path("kaggle_test_example.csv"))
    assert found.format == "kaggle" and found.reason.endswith("no winner column (unlabelled)")
    path = write_parquet(tmp_path / "c.parquet", [LAYOUTS["canonical"]])
    assert detect(path) == Detection(
        "canonical", "parquet: columns prompt/response_a/response_b, labels"
    )
    gz = tmp_path / "test.csv.gz"
    gz.write_bytes(gzip.compress(shared_path("kaggle_test_example.csv").read_bytes()))
    assert detect(gz).format == "kaggle"


def test_the_reason_travels_with_the_input(tmp_path):
    csv = shared_path("kaggle_test_example.csv")
    assert parse_input(str(csv)).detected == detect(csv).reason
    assert parse_input(f"{csv}:kaggle").detected is None
    assert parse_input(str(csv), "wsdm") == Input(str(csv), "wsdm")
    with pytest.raises(ConfigError):
        parse_input(str(csv), "excel")
    config = BuildConfig(inputs=[str(csv), f"{csv}:kaggle"])
    detected = [inp.detected for inp in list_inputs(config)]
    assert detected == [detect(csv).reason, None]


def test_an_empty_csv_without_a_layout_is_one_line(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError) as excinfo:
        detect(path)
    one_line_error(excinfo, str(path), "no header")


@pytest.mark.parametrize(
    ("columns", "format", "missing"),
    [
        (("id", "response_a", "response_b", "winner_model_a"), "kaggle", "['prompt']"),
        (("conversation_a", "winner", "model_a"), "arena33k", "['conversation_b']"),
        (("prompt", "response_0", "better_response_id"), "pku_saferlhf", "['response_1']"),
    ],
)
def test_a_near_miss_is_told_the_columns_it_lacks(tmp_path, columns, format, missing):
    """A file holding most of a format's columns is told which are missing,
    not that its layout is unknown."""
    path = write_jsonl(tmp_path / "near.jsonl", [{c: "x" for c in columns}])
    with pytest.raises(InputError) as err:
        detect(path)
    message = one_line_error(err)
    assert f"missing column(s) {missing} for format {format}" in message
    far = write_jsonl(tmp_path / "far.jsonl", [{"question": "x", "answer": "y"}])
    with pytest.raises(InputError, match="unknown column layout"):
        detect(far)
