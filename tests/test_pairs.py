"""`arena_fast.pairs`: swap pairs split apart and put back together, against
numpy references, and against the encoder's own `swap="both"` layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from arena_fast import pairs


def _rows_of(ids: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    return [ids[offsets[r] : offsets[r + 1]].tolist() for r in range(len(offsets) - 1)]


def _flat(rows: list[list[int]], start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows as flat ids + offsets; the ids start after `start` filler tokens."""
    lengths = [len(r) for r in rows]
    offsets = np.cumsum([start, *lengths]).astype(np.int64)
    ids = np.array([-1] * start + [t for r in rows for t in r], dtype=np.int32)
    return ids, offsets


def _interleave_numpy(a_ids, a_off, b_ids, b_off):
    """The numpy interleave `load_dataset` used before `pairs` (the reference)."""
    la, lb = np.diff(a_off), np.diff(b_off)
    lengths = np.stack([la, lb], axis=1).reshape(-1)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.int32)
    pos_a = np.repeat(offsets[0:-1:2] - a_off[:-1], la) + np.arange(a_off[0], a_off[-1])
    pos_b = np.repeat(offsets[1::2] - b_off[:-1], lb) + np.arange(b_off[0], b_off[-1])
    out[pos_a] = a_ids[a_off[0] : a_off[-1]]
    out[pos_b] = b_ids[b_off[0] : b_off[-1]]
    return out, offsets


token_rows = st.lists(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6), max_size=12)


@given(token_rows, st.integers(0, 3), st.integers(0, 3), st.data())
def test_interleave_matches_numpy_and_split_inverts_it(a, start_a, start_b, data):
    row = st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5)
    b = data.draw(st.lists(row, min_size=len(a), max_size=len(a)))
    a_ids, a_off = _flat(a, start_a)
    b_ids, b_off = _flat(b, start_b)
    ids, offsets = pairs.interleave_pairs(a_ids, a_off, b_ids, b_off)
    ref_ids, ref_off = _interleave_numpy(a_ids, a_off, b_ids, b_off)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64
    assert ids.tolist() == ref_ids.tolist() and offsets.tolist() == ref_off.tolist()
    assert _rows_of(ids, offsets) == [r for pair in zip(a, b) for r in pair]
    e_ids, e_off, o_ids, o_off = pairs.split_pairs(ids, offsets)
    assert _rows_of(e_ids, e_off) == a and _rows_of(o_ids, o_off) == b
    assert e_off[0] == o_off[0] == 0


@given(st.lists(st.integers(0, 50), max_size=20).map(lambda v: v[: len(v) // 2 * 2]))
def test_rows_split_and_interleave(values):
    x = np.array(values, dtype=np.int32)
    originals, swaps = pairs.split_rows(x)
    assert originals.tolist() == values[0::2] and swaps.tolist() == values[1::2]
    assert pairs.interleave_rows(originals, swaps).tolist() == values
    assert pairs.interleave_rows(x, x).tolist() == np.repeat(x, 2).tolist()
    probs = np.arange(len(values) * 3, dtype=np.float32).reshape(-1, 3)
    back = pairs.interleave_rows(*pairs.split_rows(probs))
    assert back.shape == probs.shape and (back == probs).all()


def test_pair_rows_is_the_encoders_layout():
    encoder = af.Encoder(af.Tokenizer.demo(), max_length=256)
    cols = ([["q1"], ["q2"], ["q3"]], [["a1"], ["a2"], ["a3"]], [["b1"], ["b2 b"], ["b3"]])
    both = encoder.encode(*cols, swap="both")
    is_swapped, source_row = pairs.pair_rows(len(both))
    assert (is_swapped == both.is_swapped).all() and (source_row == both.source_row).all()
    assert source_row.dtype == both.source_row.dtype
    # Splitting the pairs gives what encoding each order alone gives.
    ids, off, s_ids, s_off = pairs.split_pairs(both.input_ids, both.offsets)
    assert _rows_of(ids, off) == encoder.encode(*cols, swap=False).to_lists()
    assert _rows_of(s_ids, s_off) == encoder.encode(*cols, swap=True).to_lists()


def test_buffers_that_do_not_hold_together_are_input_errors():
    ids = np.arange(10, dtype=np.int32)
    with pytest.raises(af.InputError, match="even number"):
        pairs.split_pairs(ids, [0, 2, 5, 7])
    with pytest.raises(af.InputError, match="beyond the buffer"):
        pairs.split_pairs(ids, [0, 11])
    with pytest.raises(af.InputError, match="decrease"):
        pairs.interleave_pairs(ids, [0, 3], ids, [4, 2])
    with pytest.raises(af.InputError, match="1 original rows but 2 swapped"):
        pairs.interleave_pairs(ids, [0, 3], ids, [0, 1, 2])
    with pytest.raises(af.InputError, match="integers"):
        pairs.split_pairs(ids.astype(float), [0, 2])
