"""The pku_saferlhf reader on hand-written records in the layout of the
PKU-Alignment/PKU-SafeRLHF dataset card (made-up texts)."""

from __future__ import annotations

import json

import polars as pl
import pytest

import arena_fast as af
from arena_fast.errors import ConfigError, InputError
from arena_fast.sources import CANONICAL_SCHEMA, METADATA_SCHEMA, ReadOptions, detect, read

from .conftest import SHARED_DATA, collect, one_line_error, write_jsonl, write_parquet

GEMMA3 = SHARED_DATA.parent / "tokenizers" / "gemma3" / "tokenizer.json"
A_WINS, B_WINS = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
CATEGORIES = ("Endangering National Security", "Violence", "Privacy Violation")


def harms(*marked):
    return {c: c in marked for c in CATEGORIES}


def pku(i, better, safer, safe=(True, False), severity=(0, 2)):
    return {
        "prompt": f"Question {i}?",
        "response_0": f"answer zero {i}",
        "response_1": f"answer one {i}",
        "prompt_source": "BeaverTails",
        "response_0_source": "Alpaca-7B",
        "response_1_source": "Alpaca3-8B",
        "is_response_0_safe": safe[0],
        "is_response_1_safe": safe[1],
        "response_0_harm_category": harms() if safe[0] else harms("Violence"),
        "response_1_harm_category": harms() if safe[1] else harms("Violence", "Privacy Violation"),
        "response_0_severity_level": severity[0],
        "response_1_severity_level": severity[1],
        "better_response_id": better,
        "safer_response_id": safer,
    }


RECORDS = [pku(0, 1, 0), pku(1, 0, 0), pku(2, 1, 1, safe=(False, True), severity=(3, 0))]


@pytest.fixture
def pku_file(tmp_path):
    return write_parquet(tmp_path / "train.parquet", RECORDS)


def test_better_by_default(pku_file):
    assert detect(pku_file).format == "pku_saferlhf"
    rows, dropped = collect(read(pku_file, seed=3))
    assert rows.schema == pl.Schema({**CANONICAL_SCHEMA, **METADATA_SCHEMA}) and dropped.height == 0
    assert rows["id"].to_list() == ["0", "1", "2"]
    assert rows["source"].unique().to_list() == ["pku_saferlhf"]
    assert rows["labels"].to_list() == [B_WINS, A_WINS, B_WINS]
    assert rows["model_a"].to_list() == ["Alpaca-7B"] * 3
    assert rows["model_b"].to_list() == ["Alpaca3-8B"] * 3
    first = rows.row(0, named=True)
    assert first["prompt"] == ["Question 0?"]
    assert (first["response_a"], first["response_b"]) == (["answer zero 0"], ["answer one 0"])
    assert json.loads(first["meta"]) == {
        "better_response_id": 1,
        "safer_response_id": 0,
        "is_response_0_safe": True,
        "is_response_1_safe": False,
        "response_0_severity_level": 0.0,
        "response_1_severity_level": 2.0,
        "response_0_harm_category": [],
        "response_1_harm_category": ["Privacy Violation", "Violence"],
        "prompt_source": "BeaverTails",
    }
    assert rows.equals(collect(read(pku_file, seed=99, chunk_rows=1))[0])  # no coin


def test_safer_on_request(pku_file):
    rows, _ = collect(read(pku_file, options=ReadOptions(preference="safer")))
    assert rows["labels"].to_list() == [A_WINS, A_WINS, B_WINS]


def test_bad_preference_and_missing_text(tmp_path):
    records = [
        pku(0, 1, 0),
        pku(1, 2, 0),
        pku(2, None, 0),
        {**pku(3, 0, 0), "response_1": None},
        {**pku(4, 0, 0), "prompt": 7},
        pku(5, 1.0, "0"),  # a whole float and a digit string are ids too
    ]
    path = write_jsonl(tmp_path / "pku.jsonl", records)
    rows, dropped = collect(read(path))
    assert rows["row"].to_list() == [0, 5]
    assert dropped.select("row", "reason", "detail").rows() == [
        (1, "bad_preference", "better_response_id 2 is not 0 or 1"),
        (2, "bad_preference", "better_response_id None is not 0 or 1"),
        (3, "missing_text", "response_1 is null, not a string"),
        (4, "missing_text", "prompt is int, not a string"),
    ]
    safer, _ = collect(read(path, options=ReadOptions(preference="safer")))
    assert safer["row"].to_list() == [0, 1, 2, 5]  # the safer column is fine in those


def test_missing_columns_and_bad_option(tmp_path):
    record = pku(0, 1, 0)
    del record["safer_response_id"]
    path = write_jsonl(tmp_path / "pku.jsonl", [record])
    assert collect(read(path))[0].height == 1
    with pytest.raises(InputError) as excinfo:
        read(path, options=ReadOptions(preference="safer"))
    one_line_error(excinfo, str(path), "['safer_response_id']", "pku_saferlhf")
    with pytest.raises(ConfigError):
        read(path, options=ReadOptions(preference="kinder"))


@pytest.mark.slow
def test_builds_end_to_end_with_either_preference(tmp_path, pku_file):
    for preference, labels in (
        ("better", [B_WINS, A_WINS, B_WINS]),
        ("safer", [A_WINS, A_WINS, B_WINS]),
    ):
        config = af.BuildConfig(
            inputs=[str(pku_file)],
            tokenizer=str(GEMMA3),
            max_length=128,
            folds=2,
            preference=preference,
        )
        manifest = af.build_dataset(config, tmp_path / preference)
        assert manifest["inputs"][0]["format"] == "pku_saferlhf"
        ds = af.load_dataset(tmp_path / preference)
        by_id = dict(zip(ds.ids, ds.labels.tolist()))
        assert [by_id[str(i)] for i in range(3)] == labels
        metas = dict(zip(ds.ids, ds.column("meta")))
        assert json.loads(metas["2"])["response_0_severity_level"] == 3.0


def test_detected_before_chosen_rejected(tmp_path):
    # Derived exports often add chosen / rejected next to the card's columns.
    record = {**pku(0, 1, 0), "chosen": "answer one 0", "rejected": "answer zero 0"}
    path = write_jsonl(tmp_path / "pku.jsonl", [record])
    assert detect(path).format == "pku_saferlhf"


def test_id_column_is_kept(tmp_path):
    records = [{"id": 41, **pku(0, 1, 0)}, {"id": None, **pku(1, 1, 0)}]
    rows, dropped = collect(read(write_jsonl(tmp_path / "pku.jsonl", records)))
    assert rows["id"].to_list() == ["41"]
    assert dropped.select("row", "reason", "detail").rows() == [(1, "missing_id", "id is null")]
