"""The ultrafeedback reader on hand-written records (made-up texts) in the
binarized layout (HuggingFaceH4/ultrafeedback_binarized) and the raw one
(openbmb/UltraFeedback)."""

from __future__ import annotations

import json

import polars as pl
import pytest

import arena_fast as af
from arena_fast.errors import InputError
from arena_fast.reference import SplitMix64
from arena_fast.sources import CANONICAL_SCHEMA, METADATA_SCHEMA, read
from arena_fast.sources.ultrafeedback import completion_score

from .conftest import (
    SHARED_DATA,
    coin,
    collect,
    one_line_error,
    shared_path,
    write_jsonl,
    write_parquet,
)

A_WINS, B_WINS, TIE = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
GEMMA3 = SHARED_DATA.parent / "tokenizers" / "gemma3" / "tokenizer.json"


def messages(prompt, answer):
    return [{"content": prompt, "role": "user"}, {"content": answer, "role": "assistant"}]


def binarized(i, score_chosen=8.0, score_rejected=3.0):
    prompt = f"Question number {i}?"
    return {
        "prompt": prompt,
        "prompt_id": f"pid{i}",
        "chosen": messages(prompt, f"good answer {i}"),
        "rejected": messages(prompt, f"bad answer {i}"),
        "messages": messages(prompt, f"good answer {i}"),
        "score_chosen": score_chosen,
        "score_rejected": score_rejected,
    }


def expected_label(seed, row, chosen_wins=True):
    chosen_a = coin(seed, row)
    return A_WINS if chosen_a == chosen_wins else B_WINS


@pytest.fixture
def binarized_file(tmp_path):
    return write_parquet(tmp_path / "ufb.parquet", [binarized(i) for i in range(200)])


def test_binarized_labels_follow_the_coin(binarized_file):
    rows, dropped = collect(read(binarized_file, seed=5))
    assert rows.schema == pl.Schema({**CANONICAL_SCHEMA, **METADATA_SCHEMA}) and dropped.height == 0
    assert rows["id"].to_list() == [f"pid{i}" for i in range(200)]
    assert rows["source"].unique().to_list() == ["ultrafeedback"]
    for r in rows.iter_rows(named=True):
        i = r["row"]
        assert r["prompt"] == [f"Question number {i}?"]
        chosen_a = coin(5, i)
        good, bad = [f"good answer {i}"], [f"bad answer {i}"]
        assert (r["response_a"], r["response_b"]) == ((good, bad) if chosen_a else (bad, good))
        assert r["labels"] == (A_WINS if chosen_a else B_WINS)
    labels = rows["labels"].to_list()
    assert A_WINS in labels and B_WINS in labels  # both orders occur


def test_binarized_seeds_and_chunking(binarized_file):
    base = collect(read(binarized_file, seed=5))[0]
    assert base.equals(collect(read(binarized_file, seed=5))[0])
    assert base.equals(collect(read(binarized_file, seed=5, chunk_rows=7))[0])
    other = collect(read(binarized_file, seed=6))[0]
    flipped = (base["labels"] != other["labels"]).sum()
    assert 0 < flipped < 200


def test_binarized_ties_missing_scores_and_bad_messages(tmp_path):
    no_scores = binarized(3)
    del no_scores["score_chosen"], no_scores["score_rejected"]
    records = [
        binarized(0, 7.0, 7.0),  # equal scores: tie
        binarized(1, 7.0, None),  # one score missing
        {**binarized(2), "chosen": [{"role": "user", "content": "only a question"}]},
        no_scores,  # no scores at all: chosen wins
        {**binarized(4), "chosen": "a plain answer string"},  # the prompt column has the question
        {**binarized(5, 2.0, 9.0)},  # the higher score wins
    ]
    path = write_jsonl(tmp_path / "ufb.jsonl", records)
    rows, dropped = collect(read(path, seed=1))
    assert rows["row"].to_list() == [0, 3, 4, 5]
    assert rows["labels"].to_list() == [
        TIE,
        expected_label(1, 3),
        expected_label(1, 4),
        expected_label(1, 5, chosen_wins=False),
    ]
    plain = rows.row(2, named=True)
    assert plain["prompt"] == ["Question number 4?"]
    assert ["a plain answer string"] in (plain["response_a"], plain["response_b"])
    assert dropped.select("id", "row", "reason").rows() == [
        ("pid1", 1, "missing_score"),
        ("pid2", 2, "bad_conversation"),
    ]


def raw_record(instruction, completions):
    return {
        "source": "made_up",
        "instruction": instruction,
        "models": [c.get("model") for c in completions],
        "completions": completions,
        "correct_answers": ["none"],
        "incorrect_answers": ["none"],
    }


def completion(model, response, overall=None, ratings=("4", "5", "N/A", "3")):
    aspects = ("helpfulness", "honesty", "instruction_following", "truthfulness")
    return {
        "annotations": {a: {"Rating": r, "Rationale": "made up"} for a, r in zip(aspects, ratings)},
        "critique": "made up",
        "custom_system_prompt": "",
        "fine-grained_score": 4.0,
        "model": model,
        "overall_score": overall,
        "principle": "helpfulness",
        "response": response,
    }


def test_completion_score():
    assert completion_score(completion("m", "r", overall=7.5)) == 7.5
    assert completion_score(completion("m", "r")) == 4.0  # mean of 4, 5, 3; "N/A" skipped
    assert completion_score(completion("m", "r", ratings=("N/A",))) is None
    assert completion_score({"response": "r"}) is None


def test_raw_best_against_a_seeded_other(tmp_path):
    records = [
        raw_record(
            f"Task {i}",
            [
                completion("m0", f"r0-{i}", overall=6.0),
                completion("m1", f"r1-{i}", overall=9.0),
                completion("m2", f"r2-{i}", overall=9.0),  # tied best: the first (m1) is chosen
                completion("m3", f"r3-{i}", overall=2.0),
            ],
        )
        for i in range(100)
    ]
    path = write_parquet(tmp_path / "raw.parquet", records)
    rows, dropped = collect(read(path, seed=11))
    assert dropped.height == 0 and rows["id"].to_list() == [str(i) for i in range(100)]
    others = set()
    for r in rows.iter_rows(named=True):
        i = r["row"]
        rng = SplitMix64(11, i)
        chosen_a = bool(rng.next() & 1)
        other = ["m0", "m2", "m3"][rng.below(3)]
        others.add(other)
        chosen_side, other_side = ("a", "b") if chosen_a else ("b", "a")
        assert r[f"model_{chosen_side}"] == "m1" and r[f"response_{chosen_side}"] == [f"r1-{i}"]
        assert r[f"model_{other_side}"] == other
        assert r[f"response_{other_side}"] == [f"r{other[1]}-{i}"]
        assert r["prompt"] == [f"Task {i}"]
        if other == "m2":
            assert r["labels"] == TIE
        else:
            assert r["labels"] == (A_WINS if chosen_a else B_WINS)
    assert others == {"m0", "m2", "m3"}
    assert {tuple(x) for x in rows["labels"].to_list()} == {
        tuple(A_WINS),
        tuple(B_WINS),
        tuple(TIE),
    }
    assert rows.equals(collect(read(path, seed=11, chunk_rows=9))[0])


def test_raw_annotation_scores_and_too_few(tmp_path):
    records = [
        raw_record("ok", [completion("a", "x", ratings=("2",)), completion("b", "y")]),
        raw_record("one", [completion("a", "x", overall=5.0)]),
        raw_record("unrated", [completion("a", "x", ratings=("N/A",)), completion("b", "y")]),
        raw_record("no response", [completion("a", None, overall=1.0), completion("b", "y")]),
    ]
    path = write_jsonl(tmp_path / "raw.jsonl", records)
    rows, dropped = collect(read(path, seed=0))
    assert rows["row"].to_list() == [0]
    # "y" rates 4.0 (mean of 4, 5, 3) against 2.0: b is chosen, and wins.
    b_is_a = coin(0, 0)
    assert rows["labels"].to_list() == [A_WINS if b_is_a else B_WINS]
    assert rows["model_a"].to_list() == ["b" if b_is_a else "a"]
    assert rows["response_a"].to_list() == [["y"] if b_is_a else ["x"]]
    assert dropped.select("row", "reason").rows() == [
        (1, "too_few_completions"),
        (2, "missing_score"),
        (3, "too_few_completions"),
    ]


def test_missing_columns(tmp_path):
    path = write_jsonl(tmp_path / "half.jsonl", [{"chosen": messages("q", "a")}])
    with pytest.raises(InputError) as excinfo:
        read(path, "ultrafeedback")
    one_line_error(excinfo, str(path), "['rejected']", "ultrafeedback")


# -- plain strings, scores under `metadata` (real files of ../shared/data) -----------
def test_plain_strings_with_a_transcript_prompt():
    rows, dropped = collect(read(shared_path("prompt_chosen_rejected_1000.jsonl"), seed=2))
    assert (rows.height, dropped.height) == (1000, 0)
    assert rows["id"].to_list() == [str(i) for i in range(1000)]
    first = rows.row(0, named=True)
    # "Human: ...\n\nAssistant: ...\n\nHuman: How far can they jump?": the turns.
    assert first["prompt"] == [
        "Can you give me facts about jumping spiders?",
        "How far can they jump?",
    ]
    chosen_side, rejected_side = ("a", "b") if coin(2, 0) else ("b", "a")
    shared, chosen = first[f"response_{chosen_side}"]
    assert shared.startswith("Sure, here are some fun facts about jumping spiders.")
    assert shared.endswith("They are found on all continents except Antarctica.")
    assert chosen.startswith("The length of a typical jump varies across species")
    assert first[f"response_{rejected_side}"][0] == shared
    assert first["labels"] == (A_WINS if coin(2, 0) else B_WINS) and first["meta"] is None
    # Every prompt split into turns, the answers aligned with them, but two
    # whose last "Human:" lacks its blank line: those stay one turn, as written.
    assert (rows["prompt"].list.len() == rows["response_a"].list.len()).all()
    whole = rows.filter(pl.col("prompt").list.first().str.starts_with("Human:"))
    assert whole["prompt"].list.len().to_list() == [1, 1]


def test_scores_under_metadata():
    rows, dropped = collect(read(shared_path("ultrafeedback_strings_metadata_200.jsonl"), seed=2))
    assert (rows.height, dropped.height) == (200, 0)
    first = rows.row(0, named=True)
    assert first["prompt"][0].startswith("Write a Java program that prompts the user")
    assert json.loads(first["meta"]) == {"score_chosen": 9.0, "score_rejected": 7.0}
    metas = [json.loads(m) for m in rows["meta"].to_list()]
    ties = [m["score_chosen"] == m["score_rejected"] for m in metas]
    assert sum(ties) == 25  # equal scores tie, as top-level scores do
    for r, tie in zip(rows.iter_rows(named=True), ties):
        assert r["labels"] == (TIE if tie else expected_label(2, r["row"]))


def test_metadata_scores_rules(tmp_path):
    def plain(i, metadata):
        return {
            "prompt": f"q{i}",
            "chosen": f"good {i}",
            "rejected": f"bad {i}",
            "metadata": metadata,
        }

    records = [
        plain(0, {"score_chosen": 2, "score_rejected": 8}),  # the higher score wins
        plain(1, {"score_chosen": 5}),  # one score of two
        plain(2, "not an object"),  # no scores: chosen wins
        {
            **plain(3, {"score_chosen": 1, "score_rejected": 9}),
            "score_chosen": 7.0,
            "score_rejected": 3.0,
        },
    ]
    rows, dropped = collect(read(write_jsonl(tmp_path / "m.jsonl", records), seed=0))
    assert rows["row"].to_list() == [0, 2, 3]
    assert rows["labels"].to_list() == [
        expected_label(0, 0, chosen_wins=False),
        expected_label(0, 2),
        expected_label(0, 3),  # top-level scores first
    ]
    assert [None if m is None else json.loads(m) for m in rows["meta"].to_list()] == [
        {"score_chosen": 2.0, "score_rejected": 8.0},
        None,
        {"score_chosen": 7.0, "score_rejected": 3.0},
    ]
    assert dropped.select("row", "reason", "detail").rows() == [
        (1, "missing_score", "score_chosen=5, score_rejected=None")
    ]


@pytest.mark.slow
def test_builds_end_to_end(tmp_path):
    path = shared_path("ultrafeedback_strings_metadata_200.jsonl")
    manifest = af.build_dataset(
        af.BuildConfig(inputs=[str(path)], tokenizer=str(GEMMA3), max_length=256, folds=3),
        tmp_path / "ds",
    )
    assert manifest["inputs"][0]["format"] == "ultrafeedback"
    # One pair whose chosen and rejected texts are the same: the cleaning's `identical`.
    assert manifest["counts"]["rows"] == 199 and manifest["counts"]["dropped"] == {"identical": 1}
    ds = af.load_dataset(tmp_path / "ds")
    metas = [json.loads(m) for m in ds.column("meta")]
    assert all(set(m) == {"score_chosen", "score_rejected"} for m in metas)


def test_trl_conversational_prompt(tmp_path):
    def msg(role, content):
        return {"role": role, "content": content}

    history = [msg("system", "Be brief."), msg("user", "q1"), msg("assistant", "a1")]
    records = [
        {
            "prompt": [*history, msg("user", "q2")],
            "chosen": [msg("assistant", "good")],
            "rejected": [msg("assistant", "bad")],
        },
        {"prompt": history, "chosen": [msg("assistant", "x")], "rejected": [msg("assistant", "y")]},
        {"prompt": None, "chosen": [msg("assistant", "x")], "rejected": [msg("assistant", "y")]},
    ]
    rows, dropped = collect(read(write_jsonl(tmp_path / "trl.jsonl", records), seed=4))
    assert rows["row"].to_list() == [0]
    r = rows.row(0, named=True)
    assert r["prompt"] == ["q1", "q2"]
    good, bad = ["a1", "good"], ["a1", "bad"]
    assert (r["response_a"], r["response_b"]) == ((good, bad) if coin(4, 0) else (bad, good))
    assert dropped.select("row", "reason", "detail").rows() == [
        (1, "bad_conversation", "prompt: ends with an assistant turn, not a user turn"),
        (
            2,
            "bad_conversation",
            "chosen has no user turn and prompt is not a string or message list",
        ),
    ]
