"""`Encoded.to_arrow` / `Encoded.from_arrow`: rows of token ids to and from
Arrow (and so polars and `datasets`) without copying the ids."""

from __future__ import annotations

import datasets
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import arena_fast as af
import arena_fast.encoded as encoded_module
from arena_fast import synth

ROWS = [[5, 6, 7], [], [8], [9, 10, 11, 12], [1, 2], [3]]


def arrow_values(arr: pa.Array) -> np.ndarray:
    """The whole values buffer of a (large) list array, as numpy."""
    return np.frombuffer(arr.values.buffers()[1], dtype=np.int32)


def row_slice(enc: af.Encoded, lo: int, hi: int) -> af.Encoded:
    """Rows lo..hi of `enc` over the same `input_ids`: offsets[0] != 0."""
    fields = {k: v[lo:hi] for k, v in enc.arrays().items() if k not in ("input_ids", "offsets")}
    return af.Encoded({"input_ids": enc.input_ids, "offsets": enc.offsets[lo : hi + 1], **fields})


@pytest.fixture(scope="module")
def encoded_rows() -> af.Encoded:
    """Synthetic Kaggle rows through the demo tokenizer, as swap pairs."""
    rows = synth.generate_rows(40, seed=3)
    encoder = af.Encoder(af.Tokenizer.demo(), max_length=256)
    columns = ([r[c] for r in rows] for c in ("prompt", "response_a", "response_b"))
    return encoder.encode_json(*columns, swap="both")


@pytest.mark.parametrize("large", [False, True])
def test_roundtrip_keeps_ids_without_copying(encoded_rows: af.Encoded, large: bool) -> None:
    arr = encoded_rows.to_arrow(large=large)
    want = pa.large_list(pa.int32()) if large else pa.list_(pa.int32())
    assert arr.type == want
    assert arr.to_pylist() == encoded_rows.to_lists()
    assert np.shares_memory(encoded_rows.input_ids, arrow_values(arr))

    back = af.Encoded.from_arrow(arr, swap_pairs=True)
    assert back.to_lists() == encoded_rows.to_lists()
    assert back.offsets.dtype == np.int64 and back.input_ids.dtype == np.int32
    assert np.shares_memory(back.input_ids, arrow_values(arr))
    assert np.shares_memory(back.input_ids, encoded_rows.input_ids)
    # Per-row fields as from_lists makes them; swap pairs as encode laid them out.
    assert back.is_swapped.tolist() == encoded_rows.is_swapped.tolist()
    assert back.source_row.tolist() == encoded_rows.source_row.tolist()
    plain = af.Encoded.from_lists(encoded_rows.to_lists(), swap_pairs=True)
    for name, value in plain.arrays().items():
        assert getattr(back, name).dtype == value.dtype, name
        assert getattr(back, name).tolist() == value.tolist(), name


def test_arrow_ids_feed_planning_and_collation(encoded_rows: af.Encoded) -> None:
    """The read-only view from Arrow works wherever an encoder's output does."""
    back = af.Encoded.from_arrow(encoded_rows.to_arrow(), swap_pairs=True)
    assert not back.input_ids.flags.writeable
    idx = next(iter(af.plan_packs(back, max_tokens=4096, seed=0)))
    got = af.collate_packed(back, idx)
    want = af.collate_packed(encoded_rows, idx)
    assert got["input_ids"].tolist() == want["input_ids"].tolist()


def test_sliced_encoded_to_arrow() -> None:
    enc = af.Encoded.from_lists(ROWS)
    part = row_slice(enc, 2, 5)
    assert part.offsets[0] != 0
    for large in (False, True):
        arr = part.to_arrow(large=large)
        assert arr.to_pylist() == ROWS[2:5]
        assert arr.offsets.to_pylist()[0] == 0
        assert np.shares_memory(arr.values.to_numpy(), enc.input_ids)
        assert af.Encoded.from_arrow(arr).to_lists() == ROWS[2:5]


def test_sliced_arrow_to_encoded() -> None:
    arr = af.Encoded.from_lists(ROWS).to_arrow()
    part = arr.slice(2, 3)  # list offsets start at 4, not 0
    back = af.Encoded.from_arrow(part)
    assert back.to_lists() == ROWS[2:5]
    assert back.offsets.tolist() == [0, 1, 5, 7]
    assert np.shares_memory(back.input_ids, arrow_values(arr))
    # A list array whose values child is itself a slice (a nonzero child offset).
    values = pa.array(np.arange(100, 120, dtype=np.int32)).slice(5, 10)
    nested = pa.ListArray.from_arrays(pa.array([1, 4, 4, 9], pa.int32()), values)
    assert af.Encoded.from_arrow(nested).to_lists() == nested.to_pylist()
    assert af.Encoded.from_arrow(nested.slice(1)).to_lists() == nested.to_pylist()[1:]


def test_chunked_array_and_empty_rows() -> None:
    arr = af.Encoded.from_lists(ROWS).to_arrow()
    one = pa.chunked_array([arr])
    back = af.Encoded.from_arrow(one)
    assert back.to_lists() == ROWS
    assert np.shares_memory(back.input_ids, arrow_values(arr))
    several = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])  # concatenated: a copy
    assert af.Encoded.from_arrow(several).to_lists() == ROWS

    empty = af.Encoded.from_lists([])
    assert len(empty.to_arrow()) == 0
    assert len(af.Encoded.from_arrow(empty.to_arrow())) == 0
    assert len(af.Encoded.from_arrow(pa.chunked_array([], pa.list_(pa.int32())))) == 0
    blank = af.Encoded.from_arrow(pa.array([[], []], pa.large_list(pa.int32())))
    assert blank.to_lists() == [[], []]


@pytest.mark.parametrize("value_type", [pa.int64(), pa.uint32(), pa.int16()])
def test_other_integer_types_are_cast(value_type: pa.DataType) -> None:
    arr = pa.array(ROWS, pa.list_(value_type))
    back = af.Encoded.from_arrow(arr)
    assert back.input_ids.dtype == np.int32
    assert back.to_lists() == ROWS


def test_bad_columns_raise_input_error() -> None:
    with pytest.raises(af.InputError, match="row 2 is null"):
        af.Encoded.from_arrow(pa.array([[1], [2], None, [3], None], pa.list_(pa.int32())))
    with pytest.raises(af.InputError, match="row 1 holds a null token id"):
        af.Encoded.from_arrow(pa.array([[1], [2, None]], pa.list_(pa.int32())))
    with pytest.raises(af.InputError, match="do not fit in int32"):
        af.Encoded.from_arrow(pa.array([[2**40]], pa.list_(pa.int64())))
    with pytest.raises(af.InputError, match="list<int32>"):
        af.Encoded.from_arrow(pa.array([["a"]], pa.list_(pa.string())))
    with pytest.raises(af.InputError, match="list<int32>"):
        af.Encoded.from_arrow(pa.array([1, 2], pa.int32()))
    with pytest.raises(af.InputError, match="expects a pyarrow Array"):
        af.Encoded.from_arrow([[1, 2]])


def test_list_offsets_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """More tokens than 32-bit offsets hold: an error pointing at large=True.
    The real limit (2**31 - 1 tokens, 8 GB of ids) is lowered, not allocated."""
    enc = af.Encoded.from_lists(ROWS)
    monkeypatch.setattr(encoded_module, "_MAX_LIST_TOKENS", 10)
    with pytest.raises(af.InputError, match="large=True"):
        enc.to_arrow()
    assert enc.to_arrow(large=True).to_pylist() == ROWS
    assert row_slice(enc, 3, 6).to_arrow().to_pylist() == ROWS[3:6]  # 7 tokens fit


def test_polars_series_roundtrip(encoded_rows: af.Encoded) -> None:
    arr = encoded_rows.to_arrow()
    series = pl.Series("input_ids", arr)
    assert series.to_list() == encoded_rows.to_lists()
    back = af.Encoded.from_arrow(series, swap_pairs=True)
    assert back.to_lists() == encoded_rows.to_lists()
    assert back.is_swapped.tolist() == encoded_rows.is_swapped.tolist()
    assert af.Encoded.from_arrow(series.slice(3, 4)).to_lists() == encoded_rows.to_lists()[3:7]


def test_datasets_column_roundtrip(encoded_rows: af.Encoded) -> None:
    arr = encoded_rows.to_arrow()
    for ds in (
        datasets.Dataset.from_dict({"input_ids": arr}),
        datasets.Dataset(pa.table({"input_ids": arr, "row": np.arange(len(arr))})),
    ):
        assert ds.num_rows == len(encoded_rows)
        assert ds[5]["input_ids"] == encoded_rows[5].tolist()
        back = af.Encoded.from_arrow(ds.data.column("input_ids"), swap_pairs=True)
        assert back.to_lists() == encoded_rows.to_lists()
        assert back.source_row.tolist() == encoded_rows.source_row.tolist()
        picked = af.Encoded.from_arrow(ds.select([4, 5, 6]).with_format("arrow")["input_ids"])
        assert picked.to_lists() == encoded_rows.to_lists()[4:7]
