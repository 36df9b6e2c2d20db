"""`_core.Rows` (rows parsed from Arrow buffers) against the pure-Python
reference of docs/dataset.md ("Row keys"), and `Encoder.encode_rows` against
`encode_json` / `encode`."""

from __future__ import annotations

import json as json_module

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from arena_fast import _core
from arena_fast.reference import rows as ref
from arena_fast.rows import rows_from_arrow
from strategies import batches, json_batches

BROKEN_CELLS = ("[1]", "not json", '["a"', '{"a": "b"}', '["a", ["b"]]', "", '["x"] trailing')


def _features(rows) -> dict:
    return {k: v.tolist() for k, v in rows.features().items()}


@st.composite
def json_columns(draw):
    cols = [list(c) for c in draw(json_batches(max_rows=4))]
    # Now and then a cell that is not a JSON list, or a null cell.
    for col in cols:
        for i in range(len(col)):
            k = draw(st.integers(min_value=0, max_value=19))
            if k == 0:
                col[i] = draw(st.sampled_from(BROKEN_CELLS))
            elif k == 1:
                col[i] = None
    return cols


def _json_array(col: list) -> pa.Array:
    # Arrow strings are UTF-8: lone surrogates inside raw (non-ASCII) JSON are
    # already U+FFFD here, as a UTF-8 reader would have made them.
    fixed = [
        None if c is None else c.encode("utf-8", "replace").decode("utf-8", "replace") for c in col
    ]
    return pa.array(fixed, type=pa.large_string())


@given(json_columns())
def test_json_columns_match_the_reference(cols):
    arrays = [_json_array(c) for c in cols]
    got = rows_from_arrow(*arrays)
    cells = list(zip(*[a.to_pylist() for a in arrays]))
    assert _features(got) == ref.features(cells)
    errors = {row for row, _, _ in got.errors()}
    assert errors == {i for i, e in enumerate(ref.features(cells)["error"]) if e}


@given(batches(max_rows=4, surrogates=False))
def test_list_columns_match_the_reference(cols):
    lists = [[[c] if isinstance(c, str) else c for c in col] for col in cols]
    arrays = [pa.array(c, type=pa.list_(pa.string())) for c in lists]
    got = rows_from_arrow(*arrays)
    assert _features(got) == ref.features(list(zip(*lists)), json_cells=False)
    assert got.errors() == []


def test_sliced_and_chunked_columns():
    cells = ['["a"]', '["B  b", null]', None, '["x"]', '["  "]']
    full = pa.array(cells * 3, type=pa.large_string())
    part = full.slice(4, 7)
    got = rows_from_arrow(part, part, part)
    expect = ref.features([(c, c, c) for c in (cells * 3)[4:11]])
    assert _features(got) == expect
    chunked = pa.chunked_array([full.slice(0, 6), full.slice(6)])
    assert _features(rows_from_arrow(chunked, chunked, chunked)) == ref.features(
        [(c, c, c) for c in cells * 3]
    )


def test_keys_follow_the_normalisation():
    cols = [
        ['["Hello   World"]', '["hello world"]', '[" HELLO\\nworld "]', '["hello", "world"]'],
        ['["x"]'] * 4,
        ['["y"]'] * 4,
    ]
    f = rows_from_arrow(*[pa.array(c) for c in cols]).features()
    keys = f["prompt_key"].tolist()
    assert keys[0] == keys[1] == keys[2] != keys[3]
    # Swapping A and B keeps the pair key; changing an answer does not.
    swapped = rows_from_arrow(pa.array(cols[0]), pa.array(cols[2]), pa.array(cols[1])).features()
    assert swapped["pair_key"].tolist() == f["pair_key"].tolist()
    assert not f["identical"].any()


def test_encode_rows_equals_encode_json(gemma):
    cols = [
        ['["Hi there"]', '["Q1", "Q2"]', "[null]", '["long " ]'],
        ['["Answer A"]', '["a1"]', '["a"]', '["x"]'],
        ['["Answer B"]', '["b1", "b2"]', '["b"]', '["y"]'],
    ]
    enc = af.Encoder(af.Tokenizer.from_file(gemma.path), max_length=64)
    rows = rows_from_arrow(*[pa.array(c) for c in cols])
    for swap in (False, True, "both"):
        want = enc.encode_json(*cols, swap=swap)
        got = enc.encode_rows(rows, swap=swap)
        assert got.to_lists() == want.to_lists()
        assert (got.repairs == want.repairs).all()
        assert (got.truncated == want.truncated).all()
    idx = np.array([3, 1], dtype=np.int64)
    sub = enc.encode_rows(rows, idx, swap="both")
    want = enc.encode_json(*[[c[i] for i in idx] for c in cols], swap="both")
    assert sub.to_lists() == want.to_lists()
    with pytest.raises(af.InputError, match="out of range"):
        enc.encode_rows(rows, np.array([4]))


def test_bad_columns_are_input_errors():
    a = pa.array(['["a"]', '["b"]'])
    with pytest.raises(af.InputError, match="different lengths"):
        rows_from_arrow(a, a, a.slice(1))
    with pytest.raises(af.InputError, match="list of strings"):
        rows_from_arrow(pa.array([[1]]), pa.array([[1]]), pa.array([[1]]))
    with pytest.raises(af.InputError, match="JSON text or a list"):
        rows_from_arrow(pa.array([1]), pa.array([1]), pa.array([1]))


class _Exporter:
    """Speaks only the Arrow PyCapsule interface (as nanoarrow, arro3 or
    DuckDB arrays do), not pyarrow's own API."""

    def __init__(self, array: pa.Array):
        self._array = array

    def __arrow_c_array__(self, requested_schema=None):
        return self._array.__arrow_c_array__(requested_schema)


def test_core_reads_any_arrow_capsule_exporter():
    cells = ['["a"]', None, '["b", null]', '["  C "]'] * 3
    col = pa.array(cells, type=pa.large_string())
    rows = _core.Rows.from_arrow(_Exporter(col), _Exporter(col), _Exporter(col))
    assert _features(rows) == ref.features([(c, c, c) for c in cells])


@given(st.data())
def test_nulls_at_any_bit_offset_match_the_reference(data):
    """Sliced arrays start inside a validity byte; both bitmaps of a list
    column (rows and strings) are read from their offsets, in Rust."""
    row = st.none() | st.lists(st.none() | st.sampled_from(["x", " Y ", ""]), max_size=3)
    cells = data.draw(st.lists(row, min_size=1, max_size=24))
    lo = data.draw(st.integers(0, len(cells)))
    hi = data.draw(st.integers(lo, len(cells)))
    texts = [None if c is None else json_module.dumps(c) for c in cells]
    lists = pa.array(cells, type=pa.large_list(pa.large_string())).slice(lo, hi - lo)
    json = pa.array(texts, type=pa.large_string()).slice(lo, hi - lo)
    want = ref.features([(c, c, c) for c in cells[lo:hi]], json_cells=False)
    assert _features(rows_from_arrow(lists, lists, lists)) == want
    assert _features(rows_from_arrow(json, json, json)) == ref.features(
        [(t, t, t) for t in texts[lo:hi]]
    )


def test_core_refuses_what_it_cannot_read():
    good = pa.array(['["a"]'], type=pa.large_string())
    with pytest.raises(af.InputError, match=r"^column response_a: expected an Arrow array"):
        _core.Rows.from_arrow(good, ['["a"]'], good)
    # `rows_from_arrow` casts other types; the core reads only these two.
    with pytest.raises(af.InputError, match=r"^column prompt: expected large_string or large_list"):
        _core.Rows.from_arrow(pa.array(['["a"]']), good, good)
    with pytest.raises(af.InputError, match="different lengths"):
        _core.Rows.from_arrow(good, good, pa.array([], type=pa.large_string()))


def test_split_pairs():
    ids = np.arange(10, dtype=np.int32)
    offsets = np.array([0, 2, 5, 5, 10], dtype=np.int64)
    e_ids, e_off, o_ids, o_off = _core.split_pairs(ids, offsets)
    # Rows: [0 1] [2 3 4] [] [5..9]; even rows 0 and 2, odd rows 1 and 3.
    assert e_ids.tolist() == [0, 1] and e_off.tolist() == [0, 2, 2]
    assert o_ids.tolist() == [2, 3, 4, 5, 6, 7, 8, 9] and o_off.tolist() == [0, 3, 8]
    with pytest.raises(af.InputError):
        _core.split_pairs(ids, np.array([0, 2, 5, 7], dtype=np.int64))  # 3 rows


def test_threads_give_the_same_rows():
    from arena_fast.synth import generate_rows

    rows = generate_rows(1500, seed=5)  # several blocks of 256 rows
    cols = [pa.array([r[c] for r in rows]) for c in ("prompt", "response_a", "response_b")]
    one = rows_from_arrow(*cols)
    for threads in (2, 3):
        many = rows_from_arrow(*cols, num_threads=threads)
        assert _features(many) == _features(one)
        assert many.features(num_threads=threads).keys() == one.features().keys()
        assert {k: v.tolist() for k, v in many.features(num_threads=threads).items()} == (
            _features(one)
        )
        assert many.to_lists() == one.to_lists()
        assert many.errors() == one.errors()
