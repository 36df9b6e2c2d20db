"""Artifacts read as untrusted input (issue 13): dataset manifests (D7, D11,
D13), tokenizer_config.json and deeply nested JSON (D13), teacher logits
(D3) and labels (D12) where the readers meet them.

Each test states the outcome that issue 13 asks for: an `ArenaFastError`
naming the file and the field, or a row dropped with a reason whose detail
names the column and the value. Manifests are checked before any shard is
opened, so a hostile one costs what its bytes cost."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import arena_fast as af
from arena_fast import dataset as ds_mod
from arena_fast.cli.build_dataset import summary
from arena_fast.dataset import load as ds_load
from arena_fast.dataset import read_manifest
from arena_fast.sources import read

DEEP = 50_000  # JSON nesting far past Python's recursion limit (about 1,000)


# -- a small dataset, copied for each test ------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("artifacts") / "ds"
    af.build_dataset(af.BuildConfig(demo_rows=40, folds=3, swap=True, shard_rows=16), out)
    return out


@pytest.fixture
def dataset(built, tmp_path) -> Path:
    out = tmp_path / "ds"
    shutil.copytree(built, out)
    return out


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _write_manifest(path: Path, manifest: Any) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest))


def _refused(path: Path, *words: str, verify: bool = True) -> str:
    with pytest.raises(af.InputError) as info:
        af.load_dataset(path, verify=verify)
    message = str(info.value)
    assert "\n" not in message
    for word in (str(path / "manifest.json"), *words):
        assert word in message, message
    return message


def _no_shard_read(monkeypatch) -> None:
    """Any read of a shard fails the test: a refusal must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("a shard was read before the manifest was refused")

    monkeypatch.setattr(pq, "read_table", boom)
    monkeypatch.setattr(pq, "ParquetFile", boom)
    monkeypatch.setattr(ds_load, "file_sha256", boom)


# -- D7: one shard listed many times --------------------------------------------------------
def test_a_shard_listed_3000_times_is_refused_before_any_shard_is_read(dataset, monkeypatch):
    m = _manifest(dataset)
    first = m["shards"][0]
    m["shards"] = [first] * 3000  # the 416 KB manifest of issue 13: 3.2 GB, 12 s before
    m["counts"]["rows"] = first["rows"] * 3000  # counts agree: only the repeat is wrong
    _write_manifest(dataset, m)
    assert (dataset / "manifest.json").stat().st_size > 400_000
    _no_shard_read(monkeypatch)
    _refused(dataset, "shards[1].file", "listed twice")


def test_the_same_shard_under_two_spellings_is_listed_twice(dataset):
    m = _manifest(dataset)
    m["shards"][1] = {**m["shards"][0], "file": "./" + m["shards"][0]["file"]}
    _write_manifest(dataset, m)
    _refused(dataset, "shards[1].file", "listed twice")


def test_a_huge_manifest_is_refused_unread(dataset, monkeypatch):
    with open(dataset / "manifest.json", "a") as f:
        f.write(" " * (17 << 20))
    _no_shard_read(monkeypatch)
    _refused(dataset, "larger than 16777216 bytes")


# -- D11: shard paths outside the dataset directory --------------------------------------
@pytest.mark.parametrize("where", ["absolute", "parent", "symlink", "symlinked dir"])
def test_a_shard_outside_the_dataset_directory_is_refused(dataset, tmp_path, where, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    m = _manifest(dataset)
    shard = m["shards"][0]["file"]
    shutil.copy(dataset / shard, other / shard)  # a readable shard, of the right size
    if where == "absolute":
        m["shards"][0]["file"] = str(other / shard)
    elif where == "parent":
        m["shards"][0]["file"] = f"../other/{shard}"
    elif where == "symlink":
        (dataset / shard).unlink()
        (dataset / shard).symlink_to(other / shard)
    else:
        os.symlink(other, dataset / "sub")
        m["shards"][0]["file"] = f"sub/{shard}"
    _write_manifest(dataset, m)
    _no_shard_read(monkeypatch)
    _refused(dataset, "shards[0].file", "outside the dataset directory")


def test_shards_in_a_subdirectory_and_a_symlinked_dataset_directory_still_load(dataset, tmp_path):
    m = _manifest(dataset)
    (dataset / "sub").mkdir()
    shard = m["shards"][0]["file"]
    os.replace(dataset / shard, dataset / "sub" / shard)
    m["shards"][0]["file"] = f"sub/{shard}"
    _write_manifest(dataset, m)
    link = tmp_path / "link"
    link.symlink_to(dataset)
    assert len(af.load_dataset(link, verify=True, swap=False)) == m["counts"]["rows"]


# -- D13: manifests of the wrong shape --------------------------------------------------------
def _set(manifest: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(manifest)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


BROKEN = [
    ("a list", lambda m: [], "a JSON list, expected an object"),
    ("null", lambda m: None, "a JSON NoneType, expected an object"),
    ("format true", lambda m: _set(m, ("format_version",), True), "dataset format True"),
    ("folds as text", lambda m: _set(m, ("folds",), "3"), "folds: a string, expected an integer"),
    ("folds 0", lambda m: _set(m, ("folds",), 0), "folds: 0 is outside [1, 127]"),
    ("shards object", lambda m: _set(m, ("shards",), {}), "shards: an object, expected a list"),
    ("shard null", lambda m: _set(m, ("shards", 0), None), "shards[0]: null, expected an object"),
    ("file int", lambda m: _set(m, ("shards", 0, "file"), 3), "shards[0].file: an integer"),
    ("rows -1", lambda m: _set(m, ("shards", 0, "rows"), -1), "shards[0].rows: -1 is outside"),
    ("bytes text", lambda m: _set(m, ("shards", 0, "bytes"), "12"), "shards[0].bytes: a string"),
    ("sha256", lambda m: _set(m, ("shards", 0, "sha256"), "zz"), "shards[0].sha256: 'zz'"),
    ("file NUL", lambda m: _set(m, ("shards", 0, "file"), "a\x00b"), "shards[0].file:"),
    ("file empty", lambda m: _set(m, ("shards", 0, "file"), ""), "shards[0].file: '' is outside"),
    ("no counts", lambda m: {k: v for k, v in m.items() if k != "counts"}, "counts: missing"),
    ("rows 2**70", lambda m: _set(m, ("counts", "rows"), 2**70), "counts.rows: 1180591620717"),
    ("rows off", lambda m: _set(m, ("counts", "rows"), 1), "counts.rows: 1, but the shards hold"),
    ("fold 9", lambda m: _set(m, ("counts", "folds"), {"9": m["counts"]["rows"]}), "folds.9"),
    ("swap text", lambda m: _set(m, ("swap",), "yes"), "swap: a string, expected a boolean"),
    ("template", lambda m: _set(m, ("encoder", "template", "x"), "1"), "encoder.template.x: not"),
    ("max_length", lambda m: _set(m, ("encoder", "max_length"), None), "encoder.max_length: null"),
    ("inputs", lambda m: _set(m, ("inputs", 0, "path"), 1), "inputs[0].path: an integer"),
    ("length", lambda m: _set(m, ("stats", "length"), {"max": 1}), "stats.length.p50: missing"),
    ("share nan", lambda m: _set(m, ("stats", "truncated_share"), math.nan), "nan is outside"),
]


@pytest.mark.parametrize("name,mutate,words", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_manifest_is_an_input_error_naming_the_field(
    dataset, monkeypatch, name, mutate, words
):
    _write_manifest(dataset, mutate(_manifest(dataset)))
    _no_shard_read(monkeypatch)
    _refused(dataset, words)


@pytest.mark.parametrize(
    "data,words",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"format_version": 1, \xff}', "not valid JSON"),
        (b"", "not valid JSON"),
    ],
    ids=["deep", "not utf-8", "empty"],
)
def test_a_manifest_that_is_not_json_is_an_input_error(dataset, data, words):
    (dataset / "manifest.json").write_bytes(data)
    _refused(dataset, words)


def _fields(value: Any, path: tuple = ()):
    """Every field path of a parsed JSON value (objects and lists), leaves included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path + (k,)
            yield from _fields(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):
            yield path + (i,)
            yield from _fields(v, path + (i,))


def test_every_manifest_field_of_any_type_gives_a_dataset_or_an_error(built, tmp_path, monkeypatch):
    """Each field set to each wrong kind of JSON value: `load_dataset`, the
    summary `inspect` prints and `encoder()` either work or raise an
    ArenaFastError, never a traceback."""
    dataset = tmp_path / "ds"
    shutil.copytree(built, dataset)
    tokenizer = af.Tokenizer.demo()  # loaded once (the manifest does not name it)
    monkeypatch.setattr(af.ArenaDataset, "tokenizer", lambda self: tokenizer)
    base = _manifest(built)
    values = [None, True, -1, 2**70, 0.5, "x", [], {}]
    outcomes = {"loaded": 0, "refused": 0}
    for path in _fields(base):
        if path[0] == "config":  # stored for the record, read by nothing
            continue
        for value in values:
            _write_manifest(dataset, _set(base, path, value))
            try:
                manifest = read_manifest(dataset)
                summary(manifest, str(dataset))
                if path[0] in ("shards", "folds", "swap", "encoder"):  # what else load reads
                    af.load_dataset(dataset, swap=False).encoder()
                outcomes["loaded"] += 1
            except af.ArenaFastError:
                outcomes["refused"] += 1
    assert outcomes["refused"] > outcomes["loaded"] > 0


# -- what the shards hold ---------------------------------------------------------------------
def _rewrite_shard(dataset: Path, index: int, table: pa.Table) -> None:
    """Replace shard `index` and make the manifest agree (as a tool that
    edits a dataset and re-hashes it would)."""
    m = _manifest(dataset)
    file = dataset / m["shards"][index]["file"]
    pq.write_table(table, file)
    m["shards"][index].update(bytes=file.stat().st_size, sha256=ds_mod.file_sha256(file))
    _write_manifest(dataset, m)


def test_a_shard_with_other_rows_than_the_manifest_says_is_refused(dataset):
    m = _manifest(dataset)
    table = pq.read_table(dataset / m["shards"][0]["file"])
    _rewrite_shard(dataset, 0, table.slice(0, table.num_rows - 1))
    with pytest.raises(af.InputError, match=r"data-00000.parquet: \d+ rows, the manifest says"):
        af.load_dataset(dataset, verify=True)


def test_a_shard_without_a_column_is_refused(dataset):
    m = _manifest(dataset)
    table = pq.read_table(dataset / m["shards"][0]["file"])
    _rewrite_shard(dataset, 0, table.drop_columns(["labels"]))
    with pytest.raises(af.InputError, match="not a dataset shard: no column 'labels'"):
        af.load_dataset(dataset)


@pytest.mark.parametrize(
    "column,value,words",
    [
        ("labels", [0.0, 0.0, 0.0], "labels [0.0, 0.0, 0.0] are not probabilities"),
        ("labels", [math.nan, 0.5, 0.5], "labels [nan, 0.5, 0.5] are not probabilities"),
        ("teacher_logits", [[math.inf, 0.0, 0.0]], "teacher_logits [[inf, 0.0, 0.0]]: not"),
        ("teacher_logits", [], "teacher_logits []: not one or more rows"),
        ("teacher_logits", [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], "not 1 teacher(s)"),
    ],
    ids=["labels zero", "labels nan", "logits inf", "logits empty", "two teachers"],
)
def test_a_shard_holding_labels_or_logits_build_dataset_never_writes_is_refused(
    dataset, column, value, words
):
    """A dataset from an older build (D12 stored `[0, 0, 0]`, D3 `inf`) or
    edited since: refused at load, naming the row, not trained on."""
    m = _manifest(dataset)
    table = pq.read_table(dataset / m["shards"][0]["file"])
    values = table.column(column).to_pylist()
    if column == "teacher_logits":
        values = [[[0.5, 0.0, -0.5]]] * len(values)
    values[2] = value
    table = table.set_column(
        table.schema.get_field_index(column),
        column,
        pa.array(values, table.schema.field(column).type),
    )
    _rewrite_shard(dataset, 0, table)
    with pytest.raises(af.InputError) as info:
        af.load_dataset(dataset, verify=True)
    assert f"row 2 (id {table.column('id')[2].as_py()!r})" in str(info.value)
    assert words in str(info.value)


def test_fold_must_be_an_int(dataset):
    with pytest.raises(af.ConfigError, match="fold must be an int"):
        af.load_dataset(dataset, fold="1")


# -- D13: tokenizer_config.json and tokenizer.json --------------------------------------------
def _tokenizer_dir(tmp_path: Path, config: bytes) -> Path:
    d = tmp_path / "tok"
    d.mkdir()
    shutil.copy(af.Tokenizer.demo().source, d / "tokenizer.json")
    (d / "tokenizer_config.json").write_bytes(config)
    return d


@pytest.mark.parametrize(
    "config,words",
    [
        (b"[]", "a JSON list, expected an object"),
        (b"null", "null, expected an object"),
        (b'"bos"', "a JSON str, expected an object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["list", "null", "string", "deep"],
)
def test_a_broken_tokenizer_config_is_a_tokenizer_error(tmp_path, config, words):
    d = _tokenizer_dir(tmp_path, config)
    with pytest.raises(af.TokenizerError) as info:
        af.Tokenizer.from_file(d)
    assert str(d / "tokenizer_config.json") in str(info.value) and words in str(info.value)


def test_a_deeply_nested_tokenizer_json_is_a_tokenizer_error(tmp_path):
    """serde_json's depth limit: already an error today, pinned here."""
    data = json.loads(Path(af.Tokenizer.demo().source).read_text())
    data["normalizer"] = "@"
    deep = '{"type": "Sequence", "normalizers": [' * 100_000 + '{"type": "Lowercase"}'
    text = json.dumps(data).replace('"@"', deep + "]}" * 100_000)
    (tmp_path / "tokenizer.json").write_text(text)
    with pytest.raises(af.TokenizerError, match="recursion limit"):
        af.Tokenizer.from_file(tmp_path / "tokenizer.json")
    with pytest.raises(af.TokenizerError, match="recursion limit"):
        af.Tokenizer.from_str(text)


# -- D13: a deeply nested JSON line in every JSON source ---------------------------------------
def _talk(user: str, answer: str) -> list:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


RECORDS = {
    "canonical": lambda i: {
        "id": str(i),
        "prompt": [f"p{i}"],
        "response_a": ["a"],
        "response_b": ["b"],
        "labels": [1, 0, 0],
    },
    "arena33k": lambda i: {
        "question_id": str(i),
        "model_a": "m1",
        "model_b": "m2",
        "winner": "model_a",
        "conversation_a": _talk(f"p{i}", "a"),
        "conversation_b": _talk(f"p{i}", "b"),
    },
    "ultrafeedback": lambda i: {
        "prompt_id": str(i),
        "prompt": f"p{i}",
        "chosen": _talk(f"p{i}", "a"),
        "rejected": _talk(f"p{i}", "b"),
        "score_chosen": 8,
        "score_rejected": 3,
    },
    "chat1m": lambda i: {
        "conversation_id": str(i),
        "model": f"m{i % 2}",
        "conversation": _talk("same prompt", f"answer {i}"),
    },
}


def _deep_value() -> str:
    return "[" * DEEP + "]" * DEEP


@pytest.mark.parametrize("fmt", sorted(RECORDS))
def test_a_deeply_nested_json_line_is_a_bad_record(tmp_path, fmt):
    lines = [json.dumps(RECORDS[fmt](i)) for i in range(4)]
    lines[1] = '{"id": "1", "x": ' + _deep_value() + "}"
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    chunks = list(read(path, fmt))
    dropped = pl.concat([c.dropped for c in chunks])
    rows = pl.concat([c.rows for c in chunks])
    bad = dropped.filter(pl.col("row") == 1)
    assert bad["reason"].to_list() == ["bad_record"]
    assert "nested too deeply" in bad["detail"][0]
    assert len(rows) + len(dropped.filter(pl.col("row") != 1)) > 0  # the rest is read


def test_a_deeply_nested_first_record_or_json_array_is_an_input_error(tmp_path):
    first = tmp_path / "first.jsonl"
    first.write_text('{"id": ' + _deep_value() + "}\n")
    array = tmp_path / "rows.json"
    array.write_text("[" + json.dumps(RECORDS["canonical"](0)) + ", " + _deep_value() + "]")
    for path in (first, array):
        with pytest.raises(af.InputError, match="nested too deeply"):
            list(read(path, "canonical"))


# -- D3: teacher logits, D12: labels -------------------------------------------------------------
TEACHERS = [
    ("nan", [[math.nan, 0.0, 0.0]], "teacher_logits [[nan, 0.0, 0.0]]: a value is not a finite"),
    ("inf", [[math.inf, 0.0, 0.0]], "teacher_logits [[inf, 0.0, 0.0]]: a value is not a finite"),
    ("past float32", [[1e308, -1e308, 0.0]], "1e+308, -1e+308, 0.0]]: a value is past the float32"),
    ("just past float32", [[3.5e38, 0.0, 0.0]], "a value is past the float32 range"),
    ("empty", [], "teacher_logits []: an empty list"),
    ("two teachers", [[1.0, 2.0, 3.0]] * 2, "2 teacher(s); the file's first row"),
    ("a null entry", [None], "teacher_logits [None]: not a list of rows of 3 numbers"),
    ("a null value", [[1.0, None, 3.0]], "[[1.0, None, 3.0]]: not a list of rows of 3 numbers"),
]


def _canonical_rows(n: int = 4) -> list[dict]:
    rows = [{**RECORDS["canonical"](i), "teacher_logits": [[0.5, -0.5, 0.0]]} for i in range(n)]
    for r in rows:
        r["labels"] = [1.0, 0.0, 0.0]
    return rows


def _write(tmp_path: Path, rows: list[dict], kind: str) -> str:
    if kind == "jsonl":
        path = tmp_path / "rows.jsonl"
        path.write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )  # NaN, Infinity as Python writes
    else:
        path = tmp_path / "rows.parquet"
        schema = {
            "id": pl.String,
            "prompt": pl.List(pl.String),
            "response_a": pl.List(pl.String),
            "response_b": pl.List(pl.String),
            "labels": pl.Array(pl.Float64, 3),
            "teacher_logits": pl.List(pl.Array(pl.Float64, 3)) if kind == "array" else None,
        }
        schema["teacher_logits"] = schema["teacher_logits"] or pl.List(pl.List(pl.Float64))
        pl.DataFrame(rows, schema=schema).write_parquet(path)
    return f"{path}:canonical"


def _build(tmp_path: Path, spec: str) -> tuple[dict, pl.DataFrame, af.ArenaDataset]:
    out = tmp_path / "out"
    manifest = af.build_dataset(af.BuildConfig(inputs=[spec], folds=1, dedup="none"), out)
    return manifest, pl.read_parquet(out / "dropped.parquet"), af.load_dataset(out)


@pytest.mark.parametrize(
    "kind,value,words",
    [
        pytest.param(kind, value, words, id=f"{name}-{kind}")
        for kind in ("jsonl", "parquet", "array")
        for name, value, words in TEACHERS
        # A fixed-size parquet column cannot hold a null entry or 2 values.
        if kind != "array" or all(e is not None and len(e) == 3 for e in value)
    ],
)
def test_teacher_logits_that_are_not_finite_float32_rows_are_dropped(tmp_path, kind, value, words):
    rows = _canonical_rows()
    rows[2]["teacher_logits"] = value
    _, dropped, data = _build(tmp_path, _write(tmp_path, rows, kind))
    assert dropped.select("row", "reason").rows() == [(2, "bad_teacher_logits")]
    assert words in dropped["detail"][0]
    assert data.ids == ["0", "1", "3"]
    assert np.isfinite(np.array(data.teacher_logits)).all()


def test_the_teacher_count_is_fixed_by_the_first_good_row_across_batches(tmp_path):
    rows = _canonical_rows(6)
    rows[0]["teacher_logits"] = None
    rows[1]["teacher_logits"] = [[1.0, 2.0, 3.0]] * 2  # fixes the count: 2
    rows[5]["teacher_logits"] = [[1.0, 2.0, 3.0]] * 2
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    chunks = list(read(path, "canonical", chunk_rows=2))
    dropped = pl.concat([c.dropped for c in chunks])
    assert dropped["row"].to_list() == [2, 3, 4]
    assert "1 teacher(s); the file's first row with teacher_logits has 2" in dropped["detail"][0]


@pytest.mark.parametrize(
    "labels,stored",
    [
        ([0.0, 1e308, 1e308], [0.0, 0.5, 0.5]),
        ([1e308, 1e308, 1e308], [1 / 3] * 3),
        ([1e300, 0.0, 0.0], [1.0, 0.0, 0.0]),
        ([0.0, 0.0, 1e-320], [0.0, 0.0, 1.0]),
    ],
    ids=["two 1e308", "three 1e308", "1e300", "subnormal"],
)
@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_labels_whose_sum_overflows_are_normalised_not_zeroed(tmp_path, kind, labels, stored):
    rows = _canonical_rows()
    for r in rows:
        r.pop("teacher_logits")
    rows[1]["labels"] = labels
    if kind == "parquet":
        path = tmp_path / "rows.parquet"
        pl.DataFrame(rows, schema_overrides={"labels": pl.Array(pl.Float64, 3)}).write_parquet(path)
        spec = f"{path}:canonical"
    else:
        spec = f"{tmp_path / 'rows.jsonl'}:canonical"
        (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest, dropped, data = _build(tmp_path, spec)
    assert len(dropped) == 0
    np.testing.assert_allclose(data.labels[1], stored, rtol=1e-6)
    assert data.flags[1] & ds_mod.FLAG_LABELS_NORMALISED
    assert manifest["counts"]["labels_normalised"] == 1


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_labels_whose_sum_overflows_negatively_are_bad_labels_without_a_warning(tmp_path):
    """`[-1e308, -1e308, 1]` sums to -inf: dropped as bad_labels, and the
    overflow is no RuntimeWarning (an error under `-W error`)."""
    rows = _canonical_rows()
    for r in rows:
        r.pop("teacher_logits")
    rows[1]["labels"] = [-1e308, -1e308, 1.0]
    _, dropped, data = _build(tmp_path, _write(tmp_path, rows, "jsonl"))
    assert dropped.select("row", "reason").rows() == [(1, "bad_labels")]
    assert len(data) == 3


def test_an_integer_label_past_the_float_range_is_bad_labels(tmp_path):
    rows = _canonical_rows()
    for r in rows:
        r.pop("teacher_logits")
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines[1] = lines[1].replace('"labels": [1.0, 0.0, 0.0]', '"labels": [1' + "0" * 400 + ", 0, 0]")
    path.write_text("\n".join(lines) + "\n")
    _, dropped, _ = _build(tmp_path, f"{path}:canonical")
    assert dropped.select("row", "reason").rows() == [(1, "bad_labels")]
    assert "inf" in dropped["detail"][0]


# -- never an empty success -----------------------------------------------------------------
@pytest.mark.parametrize("every", [True, False], ids=["every row dropped", "3 of 4 unreadable"])
def test_a_build_that_drops_every_or_most_rows_is_an_error(tmp_path, every):
    rows = _canonical_rows()
    lines = [json.dumps({**r, "labels": [-1, 0, 0]} if every else r) for r in rows]
    if not every:
        lines[1:] = ["{not json"] * 3
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.raises(
        af.InputError, match=r"rows\.jsonl.*" + ("bad_labels" if every else "bad_record")
    ):
        af.build_dataset(af.BuildConfig(inputs=[f"{path}:canonical"]), out)
    assert not out.exists()
