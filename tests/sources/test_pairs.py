"""The generic `pairs` reader: a mapping of canonical field -> column over
parquet, JSON lines and CSV files (made-up rows), and `parse_mapping`, the
`--map` value the CLI passes."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from arena_fast.errors import ConfigError, InputError
from arena_fast.sources import ReadOptions
from arena_fast.sources.pairs import parse_mapping, read

from .conftest import collect, one_line_error, write_jsonl, write_parquet

MAP = {"prompt": "q", "a": "left", "b": "right", "winner": "verdict", "id": "key"}
RECORDS = [
    {"key": "p0", "q": "Name a colour.", "left": "Blue.", "right": "Green.", "verdict": "model_a"},
    {
        "key": "p1",
        "q": ["Hi", "Again"],
        "left": ["Hello", "Hi"],
        "right": ["Hey", None],
        "verdict": "B",
    },
    {"key": "p2", "q": "x?", "left": "y", "right": "z", "verdict": " Tie "},
    {"key": "p3", "q": "x?", "left": "y", "right": "z", "verdict": "tie (bothbad)"},
    {"key": "p4", "q": "x?", "left": "y", "right": "z", "verdict": "both_bad"},
    {"key": "p5", "q": "x?", "left": "y", "right": "z", "verdict": None},
    {"key": None, "q": "x?", "left": "y", "right": "z", "verdict": "a"},
    {"key": "p7", "q": None, "left": "y", "right": "z", "verdict": "a"},
]


def read_all(path, mapping=MAP, **kw):
    return collect(read(path, options=ReadOptions(mapping=mapping, **kw)))


def test_plain_strings_and_turn_lists(tmp_path):
    rows, dropped = read_all(write_jsonl(tmp_path / "p.jsonl", RECORDS))
    assert rows["id"].to_list() == ["p0", "p1", "p2", "p3", "p5"]
    assert rows["source"].unique().to_list() == ["pairs"]
    assert rows["labels"].to_list() == [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, 1.0],
        None,  # a null winner: an unlabelled row
    ]
    p0, p1 = rows.row(0, named=True), rows.row(1, named=True)
    assert (p0["prompt"], p0["response_a"], p0["response_b"]) == (
        ["Name a colour."],
        ["Blue."],
        ["Green."],
    )
    assert p1["prompt"] == ["Hi", "Again"] and p1["response_b"] == ["Hey", None]
    assert dropped.select("id", "row", "reason").rows() == [
        ("p4", 4, "bad_winner"),
        (None, 6, "missing_id"),
        ("p7", 7, "bad_conversation"),
    ]
    assert "both_bad" in dropped["detail"][0]


def test_message_lists_and_metadata(tmp_path):
    conv_a = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A1"}]
    conv_b = [
        {"role": "user", "content": [{"type": "text", "text": "Q"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "B1"}, {"type": "image"}]},
    ]
    record = {"ca": conv_a, "cb": conv_b, "w": "model_b", "lang": "fr", "cat": "math", "ma": "m1"}
    mapping = {
        "prompt": "ca",
        "response_a": "ca",
        "response_b": "cb",
        "winner": "w",
        "language": "lang",
        "category": "cat",
        "model_a": "ma",
    }
    path = write_jsonl(tmp_path / "m.jsonl", [record])
    rows, _ = read_all(path, mapping)
    row = rows.row(0, named=True)
    assert (row["prompt"], row["response_a"], row["response_b"]) == (["Q"], ["A1"], ["B1"])
    assert row["id"] == "0"  # no id mapped: the row number
    assert (row["language"], row["category"], row["model_a"]) == ("fr", "math", "m1")
    assert json.loads(row["meta"]) == {"images_stripped": 1}
    _, dropped = read_all(path, mapping, images="drop")
    assert dropped["reason"].to_list() == ["image"]


def test_three_label_columns_and_both_bad(tmp_path):
    records = [
        {"p": "x", "a": "y", "b": "z", "wa": 0, "wb": 1, "wt": 0, "wx": 0},
        {"p": "x", "a": "y", "b": "z", "wa": 0, "wb": 0, "wt": 0, "wx": 1},
        {"p": "x", "a": "y", "b": "z", "wa": None, "wb": None, "wt": None, "wx": None},
        {"p": "x", "a": "y", "b": "z", "wa": "n/a", "wb": 0, "wt": 0, "wx": 0},
    ]
    path = write_parquet(tmp_path / "l.parquet", records)
    three = {"prompt": "p", "a": "a", "b": "b"} | {
        "winner_model_a": "wa",
        "winner_model_b": "wb",
        "winner_tie": "wt",
    }
    rows, dropped = read_all(path, three)
    assert rows["labels"].to_list() == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], None]
    assert dropped.select("row", "reason").rows() == [(3, "bad_labels")]
    rows, _ = read_all(path, three | {"winner_both_bad": "wx"})
    assert rows["labels"].to_list()[:2] == [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def test_csv(tmp_path):
    path = tmp_path / "w.csv"
    pl.DataFrame(
        {"id": ["7", "8"], "prompt": ["p", "q"], "response_a": ["a", "b"], "response_b": ["c", "d"]}
        | {"winner": ["model_a", "model_b"]}
    ).write_csv(path)
    mapping = {f: f for f in ("id", "prompt", "response_a", "response_b", "winner")}
    rows, dropped = read_all(path, mapping)
    assert rows["id"].to_list() == ["7", "8"] and dropped.height == 0
    assert rows["response_b"].to_list() == [["c"], ["d"]]


def test_same_rows_from_parquet_and_json_lines(tmp_path):
    simple = [r for r in RECORDS if isinstance(r["q"], str)]
    a, _ = read_all(write_parquet(tmp_path / "p.parquet", simple))
    b, _ = read_all(write_jsonl(tmp_path / "p.jsonl", simple))
    assert a.equals(b)


def test_missing_column_names_file_field_and_columns(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", RECORDS)
    with pytest.raises(InputError) as excinfo:
        read(path, options=ReadOptions(mapping={**MAP, "winner": "label"}))
    one_line_error(excinfo, str(path), "'label'", "field winner", "columns seen", "'verdict'")


@pytest.mark.parametrize(
    "mapping, needle",
    [
        (None, "needs a mapping"),
        ({**MAP, "answer": "left"}, "unknown field 'answer'"),
        ({"prompt": "q", "a": "left"}, "lacks field(s) ['b']"),
        ({"prompt": "q", "a": "l", "response_a": "l", "b": "r"}, "mapped twice"),
        ({**MAP, "winner_model_a": "x"}, "map either winner"),
    ],
)
def test_bad_mapping_is_a_config_error(tmp_path, mapping, needle):
    path = write_jsonl(tmp_path / "p.jsonl", RECORDS)
    with pytest.raises(ConfigError) as excinfo:
        read(path, options=ReadOptions(mapping=mapping))
    one_line_error(excinfo, str(path), needle)


def test_parse_mapping():
    assert parse_mapping("prompt=q, a=left,b=right ,winner=my col") == {
        "prompt": "q",
        "a": "left",
        "b": "right",
        "winner": "my col",
    }
    assert parse_mapping("prompt=p,response_a=x,response_b=y")["response_a"] == "x"
    for bad, needle in [
        ("", "FIELD=COLUMN"),
        ("prompt=q,a", "'a' is not FIELD=COLUMN"),
        ("prompt=q,prompt=r,a=x,b=y", "given twice"),
        ("prompt=q,a=x,b=y,colour=z", "unknown field 'colour'"),
        ("prompt=q,a=x", "lacks field(s) ['b']"),
    ]:
        with pytest.raises(ConfigError, match=None) as excinfo:
            parse_mapping(bad)
        one_line_error(excinfo, needle)


def test_csv_cells_holding_json_lists_and_gzip(tmp_path):
    path = tmp_path / "k.csv.gz"
    frame = pl.DataFrame(
        {"p": ['["Hi", "More"]', "[not json"], "a": ['["x", null]', "42"], "b": ["y", "[]"]}
    )
    path.write_bytes(gzip.compress(frame.write_csv().encode()))
    rows, dropped = read_all(path, {"prompt": "p", "a": "a", "b": "b"})
    assert rows["prompt"].to_list() == [["Hi", "More"], ["[not json"]]
    assert rows["response_a"].to_list() == [["x", None], ["42"]]
    assert rows["response_b"].to_list() == [["y"], ["[]"]]  # an empty JSON list stays text
    assert rows["labels"].to_list() == [None, None] and dropped.height == 0
