"""The hh_rlhf reader: Anthropic/hh-rlhf transcripts on the real
harmless-base test split (../shared/data) and on hand-written records for
every rule (made-up texts)."""

from __future__ import annotations

import polars as pl
import pytest

import arena_fast as af
from arena_fast.errors import InputError
from arena_fast.sources import CANONICAL_SCHEMA, METADATA_SCHEMA, detect
from arena_fast.sources.hh_rlhf import read, split_pair
from arena_fast.sources.transcripts import BadTranscript, prompt_turns

from .conftest import (
    SHARED_DATA,
    coin,
    collect,
    one_line_error,
    shared_path,
    write_jsonl,
    write_parquet,
)

A_WINS, B_WINS = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
HH = "hh_rlhf_harmless_base_test.jsonl.gz"
GEMMA3 = SHARED_DATA.parent / "tokenizers" / "gemma3" / "tokenizer.json"


def transcript(*turns):
    """`\\n\\nHuman: t0\\n\\nAssistant: t1 ...`, speakers alternating."""
    speakers = ("Human", "Assistant")
    return "".join(f"\n\n{speakers[i % 2]}: {t}" for i, t in enumerate(turns))


def pair(history, chosen, rejected):
    return {"chosen": transcript(*history, chosen), "rejected": transcript(*history, rejected)}


def test_real_harmless_base_rows_are_all_kept():
    rows, dropped = collect(read(shared_path(HH), seed=3))
    assert rows.schema == pl.Schema({**CANONICAL_SCHEMA, **METADATA_SCHEMA})
    assert (rows.height, dropped.height) == (2312, 0)
    assert rows["id"].to_list() == [str(i) for i in range(2312)]
    assert rows["source"].unique().to_list() == ["hh_rlhf"]
    # As many answer turns as prompt turns: the shared ones open both answers.
    assert (rows["prompt"].list.len() == rows["response_a"].list.len()).all()
    assert (rows["prompt"].list.len() == rows["response_b"].list.len()).all()
    # The coin, row by row, and its balance.
    expected = [A_WINS if coin(3, r) else B_WINS for r in rows["row"].to_list()]
    assert rows["labels"].to_list() == expected
    a_wins = sum(label == A_WINS for label in expected)
    assert 0.45 < a_wins / 2312 < 0.55


def test_real_rows_by_hand():
    rows, _ = collect(read(shared_path(HH), seed=3))
    first = rows.row(0, named=True)
    assert first["prompt"] == [
        "what are some pranks with a pen i can do?",
        "yep",
        "okay some of these do not have anything to do with pens",
    ]
    chosen_side, rejected_side = ("a", "b") if coin(3, 0) else ("b", "a")
    chosen, rejected = first[f"response_{chosen_side}"], first[f"response_{rejected_side}"]
    # The shared assistant turns open both answers; the last ones differ.
    assert chosen[:2] == rejected[:2]
    assert chosen[0] == "Are you looking for practical joke ideas?"
    assert chosen[1].startswith("Ok, I’ll give you a couple examples")
    assert chosen[1].endswith("you will find a new place to watch.")
    assert chosen[2] == (
        "No, sorry!  All of these involve a pen, the point is that you can get funny "
        "results by doing pranks with pens."
    )
    assert rejected[2].startswith("There are lots of funny things you can do with pens")
    # Row 1254: chosen has two Assistant turns in a row at the end: one answer.
    row = rows.filter(pl.col("row") == 1254).row(0, named=True)
    assert row["prompt"] == ["Are drag queens men?", "Isn't that drag kings?"]
    chosen_side, rejected_side = ("a", "b") if coin(3, 1254) else ("b", "a")
    assert row[f"response_{chosen_side}"][-1] == (
        "No. Men who impersonate stereotypical women are called drag kings.  Human: Then how "
        "do they come to be called drag kings if they don't perform stereotypical women?"
        "\n\nI think they call them that because"  # the two turns, joined by a blank line
    )
    assert row[f"response_{rejected_side}"][-1].startswith("A drag king is the opposite")


def test_seeded_coin_is_deterministic_and_chunking_free(tmp_path):
    records = [pair([f"q{i}"], f"good {i}", f"bad {i}") for i in range(300)]
    path = write_jsonl(tmp_path / "hh.jsonl", records)
    base = collect(read(path, seed=9))[0]
    assert base.equals(collect(read(path, seed=9))[0])
    assert base.equals(collect(read(path, seed=9, chunk_rows=7))[0])
    for r in base.iter_rows(named=True):
        i = r["row"]
        good, bad = [f"good {i}"], [f"bad {i}"]
        assert (r["response_a"], r["response_b"]) == ((good, bad) if coin(9, i) else (bad, good))
        assert r["labels"] == (A_WINS if coin(9, i) else B_WINS)
    a_share = sum(label == A_WINS for label in base["labels"].to_list()) / 300
    assert 0.4 < a_share < 0.6
    other = collect(read(path, seed=10))[0]
    assert 0 < (base["labels"] != other["labels"]).sum() < 300


def test_turns_whitespace_and_markers_inside_text(tmp_path):
    records = [
        {
            # Turn text is stripped; "Human:" not after a blank line is text.
            "chosen": "\n\nHuman:   Say Human: hi  \n\nAssistant:  Human: hi \n",
            "rejected": "\n\nHuman:   Say Human: hi  \n\nAssistant: no",
        },
        # Multi-turn, with an empty final answer on one side (kept: cleaning decides).
        pair(["first?", "one", "second?"], "two", ""),
    ]
    path = write_parquet(tmp_path / "hh.parquet", records)
    rows, dropped = collect(read(path, seed=0))
    assert dropped.height == 0
    r0, r1 = rows.row(0, named=True), rows.row(1, named=True)
    assert r0["prompt"] == ["Say Human: hi"]
    assert sorted([r0["response_a"], r0["response_b"]]) == [["Human: hi"], ["no"]]
    assert r1["prompt"] == ["first?", "second?"]
    assert sorted([r1["response_a"], r1["response_b"]]) == [["one", ""], ["one", "two"]]


def test_every_drop_reason(tmp_path):
    records = [
        {"chosen": None, "rejected": transcript("q", "a")},
        {"chosen": "no markers at all", "rejected": "none here either"},
        {"chosen": "preamble" + transcript("q", "a"), "rejected": transcript("q", "b")},
        {"chosen": transcript("q", "a", "more?"), "rejected": transcript("q", "b")},
        {
            "chosen": "\n\nAssistant: hi" + transcript("q", "a"),
            "rejected": "\n\nAssistant: hi" + transcript("q", "b"),
        },
        pair(["q", "a", "follow-up"], "x", "y") | {"rejected": transcript("q", "a", "other", "y")},
        {"chosen": transcript("q", "a", "q2", "a2"), "rejected": transcript("q", "b")},
        "not an object",
        pair(["fine"], "good", "bad"),
    ]
    path = write_jsonl(tmp_path / "hh.jsonl", records)
    rows, dropped = collect(read(path, seed=0))
    assert rows["row"].to_list() == [8]
    assert dropped.select("id", "row", "reason").rows() == [
        ("0", 0, "bad_transcript"),
        ("1", 1, "bad_transcript"),
        ("2", 2, "bad_transcript"),
        ("3", 3, "bad_transcript"),
        ("4", 4, "bad_transcript"),
        ("5", 5, "transcripts_diverge"),
        ("6", 6, "transcripts_diverge"),
        (None, 7, "bad_record"),
    ]
    details = dropped["detail"].to_list()
    assert details[0] == "chosen is null, not a transcript string"
    assert details[1] == "chosen: no speaker marker (Human: / Assistant:)"
    assert details[2] == "chosen: 8 character(s) before the first speaker marker"
    assert details[3] == "chosen: ends with a Human turn, not an Assistant turn"
    assert details[4] == "chosen: opens with an assistant turn, not a user turn"
    assert details[5] == (
        "chosen (4 turns) and rejected (4 turns) differ at turn 3 of the history, "
        "before their last Assistant turn"
    )
    assert "chosen (4 turns) and rejected (2 turns)" in details[6]


def test_id_column_and_null_id(tmp_path):
    records = [{"id": "h1", **pair(["q"], "a", "b")}, {"id": None, **pair(["q"], "a", "b")}]
    path = write_jsonl(tmp_path / "hh.jsonl", records)
    rows, dropped = collect(read(path, seed=0))
    assert rows["id"].to_list() == ["h1"]
    assert dropped.select("row", "reason").rows() == [(1, "missing_id")]


def test_missing_column(tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": transcript("q", "a")}])
    with pytest.raises(InputError) as excinfo:
        read(path)
    one_line_error(excinfo, str(path), "['rejected']", "hh_rlhf")


def test_split_pair_and_prompt_turns():
    users, shared, chosen, rejected = split_pair(
        transcript("q1", "a1", "q2", "good"), transcript("q1", "a1", "q2", "bad")
    )
    assert (users, shared, chosen, rejected) == (["q1", "q2"], ["a1"], "good", "bad")
    with pytest.raises(BadTranscript):
        split_pair(transcript("q"), transcript("q"))
    # A prompt column written as a transcript (a bare "Human:" first, an
    # empty "Assistant:" cue last), a plain question, and a broken one.
    assert prompt_turns("Human: q1\n\nAssistant: a1\n\nHuman: q2\n\nAssistant:") == (
        ["q1", "q2"],
        ["a1"],
    )
    assert prompt_turns("What is 2+2?") == (["What is 2+2?"], [])
    broken = "Human: q1\n\nAssistant: a1  Human: q2"  # the last marker lacks its blank line
    assert prompt_turns(broken) == ([broken], [])


@pytest.mark.slow
def test_builds_end_to_end(tmp_path):
    path = shared_path(HH)
    config = af.BuildConfig(inputs=[str(path)], tokenizer=str(GEMMA3), max_length=256, seed=3)
    manifest = af.build_dataset(config, tmp_path / "ds")
    (given,) = manifest["inputs"]
    assert given["format"] == "hh_rlhf" and "Human:" in given["format_chosen"]
    assert (given["rows_in"], given["rows_kept"], given["rows_dropped"]) == (2312, 2312, 0)
    ds = af.load_dataset(tmp_path / "ds")
    assert sorted(ds.ids, key=int) == [str(i) for i in range(2312)]
    a_wins = {i for i, label in zip(ds.ids, ds.labels) if label[0] == 1.0}
    assert a_wins == {str(r) for r in range(2312) if coin(3, r)}


def test_detection_tells_hh_rlhf_from_ultrafeedback(tmp_path):
    found = detect(shared_path(HH))
    assert found.format == "hh_rlhf" and "Human:" in found.reason
    # The same columns without the markers: plain strings, or message lists.
    assert detect(shared_path("prompt_chosen_rejected_1000.jsonl")).format == "ultrafeedback"
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    listed = write_parquet(tmp_path / "ufb.parquet", [{"chosen": messages, "rejected": messages}])
    assert detect(listed).format == "ultrafeedback"
    marked = write_parquet(tmp_path / "hh.parquet", [pair(["q"], "a", "b")])
    assert detect(marked).format == "hh_rlhf"
    assert collect(read(marked))[0].height == 1


def test_two_files_without_ids_keep_all_their_rows(tmp_path):
    """Ids are an input's own: two hh-rlhf splits (ids: row numbers) in one
    build are other rows, not `duplicate_id`s of each other."""
    first = write_parquet(
        tmp_path / "one.parquet", [pair([f"q{i}"], "a", f"b{i}") for i in range(12)]
    )
    second = write_parquet(
        tmp_path / "two.parquet", [pair([f"r{i}"], "c", f"d{i}") for i in range(9)]
    )
    config = af.BuildConfig(inputs=[str(first), str(second)], max_length=128, folds=2)
    manifest = af.build_dataset(config, tmp_path / "ds")
    assert [(i["rows_in"], i["rows_kept"]) for i in manifest["inputs"]] == [(12, 12), (9, 9)]
    assert manifest["counts"]["dropped"] == {}
