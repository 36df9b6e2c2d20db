"""Every reader takes CSV (issue 17): a file written as CSV, nested values as
JSON text in their cells (how pandas / HF users export such data once told
to), gives the same rows and drops as the same records in JSON lines or
parquet, and is detected as the same format. A cell holding a Python repr
(`df.to_csv` of a column of lists) is a `bad_record` drop that says to
write JSON, never a silent mis-read."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import arena_fast as af
from arena_fast.sources import detect, read
from arena_fast.sources.containers import csv_cell, iter_records

from .conftest import collect, shared_path, write_jsonl, write_parquet
from .test_arena33k import RECORDS as ARENA33K
from .test_arena140k import RECORDS as ARENA140K
from .test_arena140k import as_json as arena140k_json
from .test_arena140k import conv
from .test_arena140k import record as arena140k_record
from .test_arena140k import write_parquet as arena140k_parquet
from .test_chat1m import extended
from .test_helpsteer import hs2, hs3
from .test_pku import RECORDS as PKU
from .test_ultrafeedback import binarized, completion, messages, raw_record


def cell(value: Any, python: bool = False) -> str:
    """A value as pandas' to_csv writes it (None empty, booleans True /
    False), nested values as JSON text (or, with `python`, as str())."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return str(value) if python else json.dumps(value, ensure_ascii=False)
    return str(value)


def write_csv(path: Path, records: list[dict], python: bool = False) -> Path:
    names = list(dict.fromkeys(k for r in records for k in r))
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for r in records:
            writer.writerow([cell(r.get(n), python) for n in names])
    return path


def read_jsonl(path: Path) -> list[dict]:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def same_as_csv(tmp_path: Path, other: Path, records: list[dict], suffix: str = ".csv") -> tuple:
    """Read `other` (the records in JSON lines / parquet) and the records as
    CSV; assert the same rows, drops and detected format; return them."""
    path = write_csv(tmp_path / f"same{suffix}", records)
    assert detect(path).format == detect(other).format
    assert detect(path).reason.startswith("csv: ")
    rows, dropped = collect(read(path, seed=7))
    want_rows, want_dropped = collect(read(other, seed=7))
    assert rows.height > 0
    assert rows.equals(want_rows), (rows, want_rows)
    assert dropped.equals(want_dropped), (dropped, want_dropped)
    return rows, dropped


def test_hh_rlhf_real_rows(tmp_path):
    path = shared_path("hh_rlhf_harmless_base_test.jsonl.gz")
    records = read_jsonl(path)[:300]
    other = write_jsonl(tmp_path / "hh.jsonl", records)
    rows, _ = same_as_csv(tmp_path, other, records, ".csv.gz")
    assert rows.height >= 250 and set(rows["source"]) == {"hh_rlhf"}


def test_pku_ids_and_booleans_as_text(tmp_path):
    rows, _ = same_as_csv(tmp_path, write_parquet(tmp_path / "p.parquet", PKU), PKU)
    meta = [json.loads(m) for m in rows["meta"]]
    assert [m["better_response_id"] for m in meta] == [1, 0, 1]
    assert meta[2]["is_response_0_safe"] is False and meta[2]["is_response_1_safe"] is True
    # "0" / "1" / "1.0" ids and true / false booleans written by other tools read too.
    texts = [
        {**r, "better_response_id": b, "is_response_0_safe": s}
        for r, b, s in zip(PKU, ("1.0", "0", "1"), ("true", "True", "false"))
    ]
    other = write_csv(tmp_path / "texts.csv", texts)
    assert collect(read(other, "pku_saferlhf"))[0].equals(rows)


def test_helpsteer2_and_3(tmp_path):
    v2 = [hs2(i, s) for i, s in enumerate((-2, 0, 3, "7"))]
    rows, dropped = same_as_csv(tmp_path, write_jsonl(tmp_path / "h2.jsonl", v2), v2)
    assert rows["labels"].to_list() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    assert dropped["reason"].to_list() == ["bad_preference"]
    v3 = [hs3(i, p) for i, p in enumerate((-1, 2, 0))]
    v3.append(hs3(3, 1, context=[{"role": "user", "content": "Hi"}, {"role": "assistant"}]))
    rows, _ = same_as_csv(tmp_path, write_jsonl(tmp_path / "h3.jsonl", v3), v3)
    assert rows["language"].to_list()[:2] == ["english", "python"]
    assert json.loads(rows["meta"][0])["individual_preference"] == [-1.0, -1.0]


@pytest.mark.parametrize(
    "name", ["ultrafeedback_strings_metadata_200.jsonl", "prompt_chosen_rejected_1000.jsonl"]
)
def test_ultrafeedback_and_pairs_of_strings_real_rows(tmp_path, name):
    records = read_jsonl(shared_path(name))
    # CSV has no null: an empty cell reads as null (containers), so the one
    # real record with an empty answer ("") is a counted drop there, not a row.
    empty = [i for i, r in enumerate(records) if "" in r.values()]
    assert empty in ([], [761])
    kept = [r for i, r in enumerate(records) if i not in empty]
    same_as_csv(tmp_path, write_jsonl(tmp_path / "u.jsonl", kept), kept)
    if empty:
        _, dropped = collect(read(write_csv(tmp_path / "all.csv", records)))
        assert dropped["row"].to_list() == empty
        assert dropped["detail"].to_list() == ["rejected is null, not a list of {role, content}"]


def test_ultrafeedback_answers_that_look_like_json_stay_text(tmp_path):
    records = [
        {"prompt": "Currency?", "chosen": "['Forint']\n\nIt is.", "rejected": "42"},
        {"prompt": "List?", "chosen": '["a", "b"]', "rejected": "[1, 2]"},
    ]
    rows, _ = same_as_csv(tmp_path, write_jsonl(tmp_path / "s.jsonl", records), records)
    assert sorted(rows["response_a"][0].to_list() + rows["response_b"][0].to_list()) == [
        "42",
        "['Forint']\n\nIt is.",
    ]
    records = [{"prompt": "Hi", **{c: str(messages("Hi", "yo")) for c in ("chosen", "rejected")}}]
    _, dropped = collect(read(write_csv(tmp_path / "repr.csv", records)))
    assert dropped["reason"].to_list() == ["bad_conversation"]
    assert "column chosen" in dropped["detail"][0] and "Python repr" in dropped["detail"][0]


def test_ultrafeedback_message_lists_and_raw(tmp_path):
    records = [binarized(i) for i in range(20)]
    same_as_csv(tmp_path, write_parquet(tmp_path / "b.parquet", records), records)
    raw = [
        raw_record("Q1?", [completion("m1", "a", 8.0), completion("m2", "b", 3.0)]),
        raw_record("Q2?", [completion("m1", "a", 5.0)]),
    ]
    rows, dropped = same_as_csv(tmp_path, write_jsonl(tmp_path / "r.jsonl", raw), raw)
    assert rows.height == 1 and dropped["reason"].to_list() == ["too_few_completions"]


def test_arena33k(tmp_path):
    rows, dropped = same_as_csv(tmp_path, write_jsonl(tmp_path / "a.jsonl", ARENA33K), ARENA33K)
    assert rows["id"].to_list() == ["q0", "q1", "q2", "q3", "q6"]


def test_arena140k_typed_parts_and_metadata(tmp_path):
    records = arena140k_json(ARENA140K)
    rows, dropped = same_as_csv(tmp_path, write_jsonl(tmp_path / "a.jsonl", records), records)
    assert rows["labels"].to_list()[0] == [1.0, 0.0, 0.0, 0.0]
    assert rows["category"][0] is not None
    assert json.loads(rows["meta"][0])["is_code"] is True
    assert detect(tmp_path / "same.csv").reason.endswith("lists of typed parts")


def test_chat1m_real_rows(tmp_path):
    records = extended(read_jsonl(shared_path("lmsys_chat_1m_sample.jsonl")))
    rows, _ = same_as_csv(tmp_path, write_jsonl(tmp_path / "c.jsonl", records), records, ".csv.gz")
    assert rows.height > 0


def test_canonical(tmp_path):
    records = [
        {
            "id": f"r{i}",
            "prompt": json.dumps([f"question {i}"]),
            "response_a": json.dumps(['a, "quoted"\nline']),
            "response_b": json.dumps(["b"]),
            "labels": [1.0, 0.0, 0.0] if i % 2 else None,
            "teacher_logits": [[0.5, -1.0, 2.0]],
            "row": i + 10,
            "language": "en",
            "meta": json.dumps({"k": i}),
        }
        for i in range(4)
    ]
    records.append({**records[0], "id": "bad", "labels": [1.0, 0.0]})
    rows, dropped = same_as_csv(tmp_path, write_jsonl(tmp_path / "c.jsonl", records), records)
    assert rows["row"].to_list() == [10, 11, 12, 13]
    assert dropped["reason"].to_list() == ["bad_labels"]


def test_python_repr_cells_are_a_clear_drop(tmp_path):
    """pandas' `to_csv` of a column of lists writes `[{'role': 'user', ...`:
    every such record is a bad_record drop that says to write JSON."""
    path = write_csv(tmp_path / "repr.csv", ARENA33K, python=True)
    assert detect(path).format == "arena33k"
    rows, dropped = collect(read(path))
    assert rows.height == 0 and dropped.height == len(ARENA33K)
    assert set(dropped["reason"]) == {"bad_record"}
    detail = dropped["detail"][0]
    assert "Python repr" in detail and "JSON" in detail and "conversation_a" in detail


@pytest.mark.parametrize(
    "text, value",
    [
        ('[{"a": 1}]', [{"a": 1}]),
        ("True", True),
        ("false", False),
        ("2", 2),
        ("-1.5", -1.5),
        ("en", "en"),
        ("12 apples", "12 apples"),
        ("[{'a': 1}]", "[{'a': 1}]"),
        (None, None),
    ],
)
def test_csv_cell(text, value):
    assert csv_cell(text) == value


def test_python_repr_of_strings_and_numpy_arrays(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("c\n\"['a', 'b']\"\n\"[array(['x'], dtype=object)]\"\n\"['not', json\"\n")
    (records,) = iter_records(path, ["c"], 10, csv_json=("c",))
    # A nested column's cell that reads as Python, valid or not, is refused.
    assert [type(r).__name__ for r in records] == ["BadRecord"] * 3
    assert all("Python repr" in r.detail for r in records)


def test_detection_on_csv_agrees(tmp_path):
    """The signatures see a CSV's parsed JSON: a 140k CSV is not a 33k one."""
    records = arena140k_json(ARENA140K)
    records = [{k: v for k, v in r.items() if k != "evaluation_session_id"} for r in records]
    path = write_csv(tmp_path / "a.csv", records)
    assert detect(path).format == "arena140k"
    assert isinstance(pl.read_csv(path)["conversation_a"][0], str)


def test_builds_the_same_dataset_as_parquet(tmp_path):
    """Through `build_dataset`: a 140k-layout CSV builds the rows its
    parquet twin builds, its format recorded as detected from CSV."""
    records = [
        arena140k_record(f"i{i}", "model_b", conv(f"Q {i}?", "Yes."), conv(f"Q {i}?", "No, b."))
        for i in range(12)
    ]
    built = {}
    for kind, path in (
        ("csv", write_csv(tmp_path / "a.csv.gz", arena140k_json(records))),
        ("parquet", arena140k_parquet(tmp_path / "a.parquet", records)),
    ):
        config = af.BuildConfig(inputs=[str(path)], max_length=256, folds=2)
        manifest = af.build_dataset(config, tmp_path / kind)
        assert manifest["counts"]["rows"] == 12
        ds = af.load_dataset(tmp_path / kind)
        built[kind] = (list(ds.ids), ds.labels.tolist(), ds.folds.tolist(), ds.metadata)
        assert f"{kind}: " in json.dumps(manifest)  # the format as detected, and from what
    assert built["csv"][:3] == built["parquet"][:3]
    assert str(built["csv"][3]) == str(built["parquet"][3])
