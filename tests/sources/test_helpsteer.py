"""The helpsteer reader on hand-written records in the layouts of the
dataset cards (made-up texts): nvidia/HelpSteer2 `preference` (split,
prompt, response_1, response_2, preference_strength, preference_statement,
preference_elaboration, three_most_similar_preferences,
all_preferences_unprocessed) and nvidia/HelpSteer3 `preference` (domain,
language, context, response1, response2, overall_preference,
individual_preference)."""

from __future__ import annotations

import json

import polars as pl
import pytest

import arena_fast as af
from arena_fast.errors import InputError
from arena_fast.sources import CANONICAL_SCHEMA, METADATA_SCHEMA, detect, read
from arena_fast.sources.helpsteer import strength_labels

from .conftest import SHARED_DATA, collect, one_line_error, write_json, write_jsonl, write_parquet

GEMMA3 = SHARED_DATA.parent / "tokenizers" / "gemma3" / "tokenizer.json"
A_WINS, B_WINS, TIE = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]


def hs2(i, strength, prompt=None):
    return {
        "split": "train" if i % 2 else "val",
        "prompt": prompt if prompt is not None else f"Question {i}?",
        "response_1": f"first answer {i}",
        "response_2": f"second answer {i}",
        "preference_strength": strength,
        "preference_statement": "@Response 1 is better than @Response 2.",
        "preference_elaboration": "Made up.",
        "three_most_similar_preferences": [{"statement": "x", "elaboration": "y", "strength": 1}],
        "all_preferences_unprocessed": [strength],
    }


def hs3(i, preference, context=None):
    return {
        "domain": "code" if i % 2 else "general",
        "language": "python" if i % 2 else "english",
        "context": context
        if context is not None
        else [{"role": "user", "content": f"Question {i}?"}],
        "response1": f"first answer {i}",
        "response2": f"second answer {i}",
        "overall_preference": preference,
        "individual_preference": [
            {"score": preference, "reasoning": "made up", "feedback1": "f1", "feedback2": "f2"},
            {"score": -1, "reasoning": "made up", "feedback1": "f1", "feedback2": "f2"},
        ],
    }


def test_strength_labels():
    assert strength_labels(-3, "s")[:2] == (A_WINS, -3.0)
    assert strength_labels(1, "s")[:2] == (B_WINS, 1.0)
    assert strength_labels(0, "s")[:2] == (TIE, 0.0)
    assert strength_labels("2", "s")[:2] == (B_WINS, 2.0)
    for bad in (None, "much better", 4, -3.5, float("nan"), True):
        labels, _, problem = strength_labels(bad, "s")
        assert labels is None and problem == f"s {bad!r} is not a number in -3..3"


def test_helpsteer2_sign_winner_and_meta(tmp_path):
    strengths = [-3, -2, -1, 0, 1, 2, 3]
    path = write_jsonl(tmp_path / "preference.jsonl", [hs2(i, s) for i, s in enumerate(strengths)])
    assert detect(path).format == "helpsteer"
    rows, dropped = collect(read(path, seed=4))
    assert rows.schema == pl.Schema({**CANONICAL_SCHEMA, **METADATA_SCHEMA}) and dropped.height == 0
    assert rows["id"].to_list() == [str(i) for i in range(7)]
    assert rows["source"].unique().to_list() == ["helpsteer"]
    assert rows["labels"].to_list() == [A_WINS] * 3 + [TIE] + [B_WINS] * 3
    # The file's order is A/B, whatever the seed.
    assert rows["response_a"].to_list() == [[f"first answer {i}"] for i in range(7)]
    assert rows["response_b"].to_list() == [[f"second answer {i}"] for i in range(7)]
    assert rows.equals(collect(read(path, seed=5, chunk_rows=2))[0])
    metas = [json.loads(m) for m in rows["meta"].to_list()]
    assert metas[0] == {"preference_strength": -3.0, "split": "val"}
    assert [m["preference_strength"] for m in metas] == [float(s) for s in strengths]


def test_helpsteer2_multi_turn_prompt(tmp_path):
    prompt = "Name a fruit.\n<extra_id_1>Assistant\nAn apple.\n<extra_id_1>User\nAnother one?"
    path = write_parquet(
        tmp_path / "preference.parquet", [hs2(0, 1, prompt), hs2(1, -1, "plain\n")]
    )
    rows, dropped = collect(read(path))
    assert dropped.height == 0
    multi, plain = rows.row(0, named=True), rows.row(1, named=True)
    assert multi["prompt"] == ["Name a fruit.", "Another one?"]
    assert multi["response_a"] == ["An apple.", "first answer 0"]
    assert multi["response_b"] == ["An apple.", "second answer 0"]
    assert plain["prompt"] == ["plain\n"]  # no marker: the prompt as written


def test_helpsteer3_context_language_domain(tmp_path):
    context = [
        {"role": "user", "content": "Write a loop."},
        {"role": "assistant", "content": "for i in range(3): pass"},
        {"role": "user", "content": "In C?"},
    ]
    records = [hs3(0, -2), hs3(1, 0, context), hs3(2, 3)]
    path = write_parquet(tmp_path / "train.parquet", records)
    assert detect(path).format == "helpsteer"
    rows, dropped = collect(read(path))
    assert dropped.height == 0
    assert rows["labels"].to_list() == [A_WINS, TIE, B_WINS]
    assert rows["language"].to_list() == ["english", "python", "english"]
    assert rows["category"].to_list() == ["general", "code", "general"]
    multi = rows.row(1, named=True)
    assert multi["prompt"] == ["Write a loop.", "In C?"]
    assert multi["response_a"] == ["for i in range(3): pass", "first answer 1"]
    assert multi["response_b"] == ["for i in range(3): pass", "second answer 1"]
    assert json.loads(rows["meta"][0]) == {
        "overall_preference": -2.0,
        "individual_preference": [-2.0, -1.0],
    }


def test_every_drop_reason(tmp_path):
    records = [
        hs3(0, 1),
        hs3(1, 5),  # outside -3..3
        hs3(2, None),
        hs3(3, 1, context=[{"role": "assistant", "content": "I start"}]),
        hs3(
            4, 1, context=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
        ),
        hs3(5, 1, context="not a list"),
        {**hs3(6, 1), "response2": None},
        {**hs3(7, 1), "response1": ["a list"]},
    ]
    path = write_json(tmp_path / "hs3.json", records)
    rows, dropped = collect(read(path))
    assert rows["row"].to_list() == [0]
    assert dropped.select("id", "row", "reason", "detail").rows() == [
        ("1", 1, "bad_preference", "overall_preference 5 is not a number in -3..3"),
        ("2", 2, "bad_preference", "overall_preference None is not a number in -3..3"),
        ("3", 3, "bad_conversation", "context: opens with an assistant turn, not a user turn"),
        ("4", 4, "bad_conversation", "context: ends with an assistant turn, not a user turn"),
        ("5", 5, "bad_conversation", "context is str, not a list of {role, content}"),
        ("6", 6, "missing_text", "response2 is null, not a string"),
        ("7", 7, "missing_text", "response1 is list, not a string"),
    ]
    v2 = [hs2(0, 1), hs2(1, "x"), {**hs2(2, 1), "prompt": None}, {**hs2(3, 1), "response_1": 3}]
    rows, dropped = collect(read(write_jsonl(tmp_path / "hs2.jsonl", v2)))
    assert rows["row"].to_list() == [0]
    assert dropped.select("row", "reason", "detail").rows() == [
        (1, "bad_preference", "preference_strength 'x' is not a number in -3..3"),
        (2, "missing_text", "prompt is null, not a string"),
        (3, "missing_text", "response_1 is int, not a string"),
    ]


def test_id_column_is_kept(tmp_path):
    path = write_jsonl(
        tmp_path / "hs.jsonl", [{"id": "x1", **hs2(0, 1)}, {"id": None, **hs2(1, 1)}]
    )
    rows, dropped = collect(read(path))
    assert rows["id"].to_list() == ["x1"]
    assert dropped.select("row", "reason").rows() == [(1, "missing_id")]


def test_missing_columns(tmp_path):
    path = write_jsonl(tmp_path / "half.jsonl", [{"context": [], "response1": "a"}])
    with pytest.raises(InputError) as excinfo:
        read(path, "helpsteer")
    one_line_error(excinfo, str(path), "['response2', 'overall_preference']", "helpsteer")


@pytest.mark.slow
def test_builds_end_to_end(tmp_path):
    records = [hs3(i, (i % 7) - 3) for i in range(14)]
    path = write_parquet(tmp_path / "train.parquet", records)
    config = af.BuildConfig(inputs=[str(path)], tokenizer=str(GEMMA3), max_length=128, folds=2)
    manifest = af.build_dataset(config, tmp_path / "ds")
    assert manifest["inputs"][0]["format"] == "helpsteer"
    assert manifest["inputs"][0]["rows_kept"] == 14
    ds = af.load_dataset(tmp_path / "ds")
    by_id = dict(zip(ds.ids, range(len(ds))))
    for i in range(14):
        row = by_id[str(i)]
        assert list(ds.labels[row]) == [A_WINS, TIE, B_WINS][(i % 7 > 3) - (i % 7 < 3) + 1]
        assert ds.column("language")[row] == ("python" if i % 2 else "english")
        assert ds.column("category")[row] == ("code" if i % 2 else "general")
        assert json.loads(ds.column("meta")[row])["overall_preference"] == (i % 7) - 3


def test_detected_before_chosen_rejected(tmp_path):
    # A HelpSteer3 mirror with chosen / rejected (and ShareGPT) columns added.
    record = {**hs3(0, 2), "chosen": "second answer 0", "rejected": "first answer 0", "score": "2"}
    path = write_parquet(tmp_path / "hs3.parquet", [record])
    assert detect(path).format == "helpsteer"
