"""Row metadata (`language`, `category`, `meta`) from a canonical file to
the shards, `load_dataset`, the prediction tables, `af.diagnostics` and
`arena-fast report` (issue 17: scores broken down by language and
category when the data carries them)."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena_fast.dataset import BuildConfig, build_dataset, load_dataset
from arena_fast.diagnostics import (
    GROUP_TOP,
    by_group,
    format_summary,
    log_loss,
    prediction_frame,
    read_predictions,
    summarize,
    write_predictions,
)
from arena_fast.errors import ConfigError, InputError
from arena_fast.sources import read
from arena_fast.sources._common import Builder
from keyword_rows import keyword_rows

LANGUAGES = ["en", "de", "en", None, "fr", "en"]
CATEGORIES = ["math", "math,if", None, "if", "code", "math"]


def _with_metadata(rows: pl.DataFrame) -> pl.DataFrame:
    n = len(rows)
    return rows.with_columns(
        pl.Series("language", [LANGUAGES[i % 6] for i in range(n)], dtype=pl.String),
        pl.Series("category", [CATEGORIES[i % 6] for i in range(n)], dtype=pl.String),
        pl.Series("meta", [{"turn_count": i, "is_code": i % 6 == 4} for i in range(n)]),
    )


def _shard_columns(ds) -> list:
    return pq.read_schema(ds / "data-00000.parquet").names


# -- the canonical reader ---------------------------------------------------------------
def test_canonical_reads_metadata_from_parquet_and_json(tmp_path):
    rows = keyword_rows(4, 0).with_columns(
        pl.Series("language", ["en", None, "de", "en"]),
        pl.Series("category", [["math", "if"], [], None, ["code"]]),
        pl.Series("meta", [{"a": 1, "b": "x"}, None, {"a": 2, "b": None}, {"a": 3, "b": "z"}]),
    )
    rows.write_parquet(tmp_path / "rows.parquet")
    got = pl.concat([c.rows for c in read(tmp_path / "rows.parquet", "canonical")])
    assert got["language"].to_list() == ["en", None, "de", "en"]
    assert got["category"].to_list() == ["math,if", "", None, "code"]
    assert json.loads(got["meta"][0]) == {"a": 1, "b": "x"} and got["meta"][1] is None

    records = rows.to_dicts()
    records[1]["meta"] = '{"given": "as text"}'
    records[2]["language"] = 7  # not a string: its text
    with open(tmp_path / "rows.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    got = pl.concat([c.rows for c in read(tmp_path / "rows.jsonl", "canonical")])
    assert got["language"].to_list() == ["en", None, "7", "en"]
    assert got["category"].to_list() == ["math,if", "", None, "code"]
    assert got["meta"][1] == '{"given": "as text"}'
    assert json.loads(got["meta"][0]) == {"a": 1, "b": "x"}


def test_canonical_without_metadata_leaves_the_columns_out(tmp_path):
    keyword_rows(3, 0).write_parquet(tmp_path / "rows.parquet")
    for chunk in read(tmp_path / "rows.parquet", "canonical"):
        assert not {"language", "category", "meta"} & set(chunk.rows.columns)
    keyword_rows(3, 0).write_ndjson(tmp_path / "rows.jsonl")
    for chunk in read(tmp_path / "rows.jsonl", "canonical"):
        assert not {"language", "category", "meta"} & set(chunk.rows.columns)


def test_canonical_refuses_metadata_of_another_type(tmp_path):
    keyword_rows(2, 0).with_columns(pl.Series("meta", [1.5, 2.5])).write_parquet(
        tmp_path / "rows.parquet"
    )
    with pytest.raises(InputError, match="column 'meta' has type Float64"):
        list(read(tmp_path / "rows.parquet", "canonical"))


# -- shards and load_dataset --------------------------------------------------------------
def test_dataset_carries_metadata_through_swaps_and_to_hf(tmp_path):
    rows = _with_metadata(keyword_rows(24, 0))
    rows.write_parquet(tmp_path / "rows.parquet")
    config = BuildConfig(
        inputs=[f"{tmp_path / 'rows.parquet'}:canonical"], max_length=96, folds=2, swap=True
    )
    build_dataset(config, tmp_path / "ds")
    assert _shard_columns(tmp_path / "ds")[-3:] == ["language", "category", "meta"]
    ds = load_dataset(tmp_path / "ds", swap=False)
    by_id = dict(zip(rows["id"].to_list(), rows.iter_rows(named=True)))
    for i, ident in enumerate(ds.ids):
        assert ds.column("language")[i] == by_id[ident]["language"]
        assert ds.column("category")[i] == by_id[ident]["category"]
        assert json.loads(ds.column("meta")[i]) == by_id[ident]["meta"]
    swapped = load_dataset(tmp_path / "ds", swap=True)
    assert swapped.column("language") == [x for x in ds.column("language") for _ in (0, 1)]
    valid = load_dataset(tmp_path / "ds", fold=0, split="valid", swap=False)
    assert valid.column("category") == [by_id[i]["category"] for i in valid.ids]
    with pytest.raises(ConfigError, match="not a row metadata column"):
        ds.column("model_a")
    pytest.importorskip("datasets")
    hf = ds.to_hf()
    assert hf["language"] == ds.column("language") and hf["category"] == ds.column("category")


def test_dataset_without_metadata_has_no_metadata_columns(tmp_path):
    """Inputs without metadata give the shards they gave before (no column),
    and every row reads as None."""
    rows = keyword_rows(12, 0)
    rows.write_parquet(tmp_path / "rows.parquet")
    build_dataset(
        BuildConfig(inputs=[f"{tmp_path / 'rows.parquet'}:canonical"], max_length=96),
        tmp_path / "ds",
    )
    assert not {"language", "category", "meta"} & set(_shard_columns(tmp_path / "ds"))
    ds = load_dataset(tmp_path / "ds")
    assert ds.metadata == {} and ds.column("language") == [None] * len(ds)


def test_a_shard_with_metadata_of_another_type_is_refused(tmp_path):
    rows = _with_metadata(keyword_rows(6, 0))
    rows.write_parquet(tmp_path / "rows.parquet")
    build_dataset(
        BuildConfig(inputs=[f"{tmp_path / 'rows.parquet'}:canonical"], max_length=96),
        tmp_path / "ds",
    )
    shard = tmp_path / "ds" / "data-00000.parquet"
    table = pq.read_table(shard)
    i = table.schema.get_field_index("language")
    pq.write_table(table.set_column(i, "language", pa.array(range(len(table)))), shard)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    manifest["shards"][0]["bytes"] = shard.stat().st_size
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="column 'language' has type int64, expected string"):
        load_dataset(tmp_path / "ds")


def test_metadata_of_one_input_only(tmp_path):
    """An input with language and one without: the second's rows are null,
    and a column no row has (`meta` here) is not written."""
    with_lang = keyword_rows(6, 0).with_columns(pl.lit("de").alias("language"))
    with_lang.write_parquet(tmp_path / "a.parquet")
    plain = keyword_rows(6, 1).with_columns(pl.col("id") + "-b")
    plain.write_parquet(tmp_path / "b.parquet")
    config = BuildConfig(
        inputs=[f"{tmp_path / 'a.parquet'}:canonical", f"{tmp_path / 'b.parquet'}:canonical"],
        max_length=96,
        dedup="none",
    )
    build_dataset(config, tmp_path / "ds")
    names = _shard_columns(tmp_path / "ds")
    assert "language" in names and "meta" not in names and "category" not in names
    ds = load_dataset(tmp_path / "ds")
    got = dict(zip(ds.ids, ds.column("language")))
    assert {got[i] for i in with_lang["id"]} == {"de"}
    assert {got[i] for i in plain["id"]} == {None}


def test_source_rows_carry_the_metadata_of_the_inputs(tmp_path):
    """`predict --canonical`'s rows (`source_rows`) keep each input's row
    metadata, null for an input without it, so pseudo-labels keep it."""
    pytest.importorskip("torch")
    from arena_fast.predict import source_rows  # the torch layer

    with_meta = _with_metadata(keyword_rows(6, 0))
    with_meta.write_parquet(tmp_path / "a.parquet")
    plain = keyword_rows(6, 1).with_columns(pl.col("id") + "-b")
    plain.write_parquet(tmp_path / "b.parquet")
    config = BuildConfig(
        inputs=[f"{tmp_path / 'a.parquet'}:canonical", f"{tmp_path / 'b.parquet'}:canonical"],
        max_length=96,
        dedup="none",
    )
    build_dataset(config, tmp_path / "ds")
    got = source_rows(tmp_path / "ds")
    assert got.columns[-3:] == ["language", "category", "meta"]
    assert got["id"].to_list() == load_dataset(tmp_path / "ds").ids
    truth = dict(zip(with_meta["id"], with_meta["language"]))
    assert dict(zip(got["id"], got["language"])) == {**truth, **dict.fromkeys(plain["id"])}


# -- diagnostics ------------------------------------------------------------------------------
A, B, T = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]


def test_by_group_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]] * 2)
    labels = np.array([A, A, T, B, A, B, T, [np.nan] * 3])
    swapped = probs.copy()
    swapped[1] = [0.7, 0.2, 0.1]  # row 1's verdict flips
    frame = prediction_frame(
        [f"r{i}" for i in range(8)],
        probs,
        probs_original=probs,
        probs_swapped=swapped,
        labels=labels,
        language=["en", "en", "de", None, "en", "de", "fr", "en"],
        category=["math,if", "if", "math", "", None, "code", "math, if", "if,if"],
    )
    lang = by_group(frame, "language")
    assert list(lang) == ["en", "de", "fr", "(none)"]
    assert [g["rows"] for g in lang.values()] == [4, 2, 1, 1]
    assert lang["en"]["labelled"] == 3  # row 7 has no label
    en = [0, 1, 4]
    assert lang["en"]["log_loss"] == pytest.approx(log_loss(probs[en], labels[en]))
    assert lang["en"]["accuracy"] == pytest.approx(2 / 3)
    assert lang["en"]["flip_rate"] == pytest.approx(1 / 4)
    assert lang["(none)"]["log_loss"] == pytest.approx(-math.log(0.2))

    cat = by_group(frame, "category")
    # "math,if" counts under each; "if,if" once; "" is no category
    assert {k: g["rows"] for k, g in cat.items()} == {
        "if": 4, "math": 3, "code": 1, "(none)": 2,
    }  # fmt: skip
    assert list(cat) == ["if", "math", "code", "(none)"]
    math_rows = [0, 2, 6]
    assert cat["math"]["log_loss"] == pytest.approx(log_loss(probs[math_rows], labels[math_rows]))

    top2 = by_group(frame, "language", top=2)
    assert list(top2) == ["en", "de", "(other)", "(none)"] and top2["(other)"]["rows"] == 1

    s = summarize(frame)
    assert s["by_language"] == lang and s["by_category"] == cat
    text = format_summary(s)
    assert "by language   en: " in text and "by category   if: " in text


def test_no_breakdown_without_metadata():
    frame = prediction_frame(["a", "b"], np.array([[0.6, 0.3, 0.1]] * 2), labels=np.array([A, B]))
    s = summarize(frame)
    assert "by_language" not in s and "by_category" not in s
    all_null = prediction_frame(["a"], np.array([[0.6, 0.3, 0.1]]), language=[None])
    assert "by_language" not in summarize(all_null)


def test_other_bucket_pools_the_smallest_groups():
    n = GROUP_TOP + 3
    names = [f"l{i:02d}" for i in range(n) for _ in range(n - i)]
    frame = prediction_frame(names, np.full((len(names), 3), 1 / 3), language=names)
    groups = by_group(frame, "language")
    assert list(groups)[:GROUP_TOP] == [f"l{i:02d}" for i in range(GROUP_TOP)]
    assert groups["(other)"]["rows"] == 3 + 2 + 1
    assert sum(g["rows"] for g in groups.values()) == len(names)


def test_prediction_table_round_trip_and_checks(tmp_path):
    frame = prediction_frame(
        ["a", "b"], np.array([[0.6, 0.3, 0.1]] * 2), language=["en", None], category=["x", "y"]
    )
    write_predictions(tmp_path / "p.parquet", frame)
    assert read_predictions(tmp_path / "p.parquet").equals(frame)
    frame.with_columns(pl.Series("language", [1, 2])).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="column 'language' must hold strings"):
        read_predictions(tmp_path / "bad.parquet")


def test_builder_meta_is_compact_sorted_json_without_nan():
    """A reader's `meta` is JSON text: keys sorted, compact as polars writes a
    struct, and a score that is not finite is null (JSON has no NaN)."""
    b = Builder("x")
    meta = {"z": 1, "a": [float("nan"), 2.5], "m": {"s": float("-inf")}}
    b.add(id="1", prompt=["p"], response_a=["a"], response_b=["b"], labels=None, row=0, meta=meta)
    text = b.chunk().rows["meta"][0]
    assert text == '{"a":[null,2.5],"m":{"s":null},"z":1}'
    assert json.loads(text) == {"a": [None, 2.5], "m": {"s": None}, "z": 1}
