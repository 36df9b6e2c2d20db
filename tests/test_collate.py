"""The collators (docs/packing.md, "Collation"): the numpy reference
(`arena_fast.reference.collate`) checked against the layout the spec
describes (the tests named *reference*), and the Rust collators
(`af.collate_packed`, `af.collate_padded`) equal to it: same keys, dtypes,
shapes and values, the same error classes."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from arena_fast.reference import collate_packed as ref_collate_packed
from arena_fast.reference import collate_padded as ref_collate_padded

PACKED_KEYS = {
    "input_ids",
    "position_ids",
    "cu_seq_lens_q",
    "cu_seq_lens_k",
    "max_length_q",
    "max_length_k",
    "seq_idx",
    "last_index",
}
PADDED_KEYS = {"input_ids", "attention_mask", "last_index"}


def make_encoded(rows: list[list[int]]) -> af.Encoded:
    """An `af.Encoded` holding `rows`, with the dtypes the encoder gives."""
    return af.Encoded.from_lists(rows, swap_pairs=True)


def ref_packed(enc: af.Encoded, idx, labels=None) -> dict:
    return ref_collate_packed(enc.input_ids, enc.offsets, idx, labels=labels)


def ref_padded(enc: af.Encoded, idx, pad_id: int, **kwargs) -> dict:
    return ref_collate_padded(enc.input_ids, enc.offsets, idx, pad_id, **kwargs)


@st.composite
def encoded_rows(draw, min_rows: int = 1) -> list[list[int]]:
    token = st.one_of(st.integers(0, 300), st.integers(0, 2**31 - 1))
    n = draw(st.integers(min_rows, 25))
    longest = draw(st.sampled_from((1, 3, 17, 80)))
    return [draw(st.lists(token, min_size=1, max_size=longest)) for _ in range(n)]


@st.composite
def batch_cases(draw) -> tuple[af.Encoded, Any, Optional[np.ndarray]]:
    """(encoded, idx, labels): idx a list or an int64 array, repeats allowed;
    labels None, class ids (n,) or probabilities (n, 3)."""
    rows = draw(encoded_rows())
    n = len(rows)
    idx = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=20))
    if draw(st.booleans()):
        idx = np.asarray(idx, dtype=np.int64)
    kind = draw(st.sampled_from(("none", "ids", "probs32", "probs64")))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = {
        "none": None,
        "ids": rng.integers(0, 3, size=n),
        "probs32": rng.dirichlet(np.ones(3), size=n).astype(np.float32),
        "probs64": rng.dirichlet(np.ones(3), size=n),
    }[kind]
    return make_encoded(rows), idx, labels


def assert_same_batch(got: dict, want: dict, context: str) -> None:
    assert set(got) == set(want), f"{context}: keys {sorted(got)} != {sorted(want)}"
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            assert isinstance(got[key], np.ndarray), f"{context}: {key} is {type(got[key])}"
            assert got[key].dtype == value.dtype, f"{context}: {key} dtype {got[key].dtype}"
            assert got[key].shape == value.shape, f"{context}: {key} shape {got[key].shape}"
            np.testing.assert_array_equal(got[key], value, err_msg=f"{context}: {key}")
        else:
            assert type(got[key]) is type(value) and got[key] == value, f"{context}: {key}"


# -- the reference against the spec -----------------------------------------------------
def check_packed_layout(enc: af.Encoded, idx, labels, out: dict) -> None:
    idx = [int(i) for i in idx]
    lens = [len(enc[i]) for i in idx]
    total = sum(lens)
    assert set(out) == PACKED_KEYS | ({"labels"} if labels is not None else set())
    for key, dtype, shape in (
        ("input_ids", np.int64, (1, total)),
        ("position_ids", np.int64, (1, total)),
        ("seq_idx", np.int32, (1, total)),
        ("cu_seq_lens_q", np.int32, (len(idx) + 1,)),
        ("cu_seq_lens_k", np.int32, (len(idx) + 1,)),
        ("last_index", np.int64, (len(idx),)),
    ):
        assert out[key].dtype == dtype and out[key].shape == shape, key
    cu = out["cu_seq_lens_q"]
    np.testing.assert_array_equal(out["cu_seq_lens_k"], cu)
    assert cu.tolist() == [0, *np.cumsum(lens).tolist()]
    for k, row in enumerate(idx):
        lo, hi = cu[k], cu[k + 1]
        np.testing.assert_array_equal(out["input_ids"][0, lo:hi], enc[row])
        np.testing.assert_array_equal(out["position_ids"][0, lo:hi], np.arange(lens[k]))
        assert (out["seq_idx"][0, lo:hi] == k).all()
    np.testing.assert_array_equal(out["last_index"], cu[1:] - 1)
    assert type(out["max_length_q"]) is int and out["max_length_q"] == max(lens)
    assert type(out["max_length_k"]) is int and out["max_length_k"] == max(lens)
    check_labels(labels, idx, out)


def check_padded_layout(enc, idx, labels, out, pad_id, side, multiple) -> None:
    idx = [int(i) for i in idx]
    lens = [len(enc[i]) for i in idx]
    width = max(lens)
    if multiple is not None:
        width = -(-width // multiple) * multiple
    keys = PADDED_KEYS | ({"position_ids"} if side == "left" else set())
    assert set(out) == keys | ({"labels"} if labels is not None else set())
    for key in keys:
        want = (len(idx),) if key == "last_index" else (len(idx), width)
        assert out[key].dtype == np.int64 and out[key].shape == want, key
    for b, (row, m) in enumerate(zip(idx, lens)):
        lo = width - m if side == "left" else 0
        tokens = np.zeros(width, dtype=bool)
        tokens[lo : lo + m] = True
        np.testing.assert_array_equal(out["input_ids"][b, tokens], enc[row])
        assert (out["input_ids"][b, ~tokens] == pad_id).all()
        np.testing.assert_array_equal(out["attention_mask"][b], tokens.astype(np.int64))
        assert out["last_index"][b] == lo + m - 1
        if side == "left":
            np.testing.assert_array_equal(out["position_ids"][b, tokens], np.arange(m))
            assert (out["position_ids"][b, ~tokens] == 0).all()
    check_labels(labels, idx, out)


def check_labels(labels, idx: list[int], out: dict) -> None:
    if labels is None:
        return
    want = np.asarray(labels)[idx]
    dtype = np.int64 if want.ndim == 1 else np.float32
    assert out["labels"].dtype == dtype
    np.testing.assert_array_equal(out["labels"], want.astype(dtype))


@given(case=batch_cases())
def test_collate_packed_reference_layout(case):
    enc, idx, labels = case
    check_packed_layout(enc, idx, labels, ref_packed(enc, idx, labels=labels))


@given(
    case=batch_cases(),
    pad_id=st.sampled_from((0, 1, 128001, -100)),
    side=st.sampled_from(("right", "left")),
    multiple=st.sampled_from((None, 1, 3, 8, 64)),
)
def test_collate_padded_reference_layout(case, pad_id, side, multiple):
    enc, idx, labels = case
    out = ref_padded(enc, idx, pad_id, side=side, pad_to_multiple_of=multiple, labels=labels)
    check_padded_layout(enc, idx, labels, out, pad_id, side, multiple)


def test_collate_reference_worked_example():
    enc = make_encoded([[5, 6, 7], [8], [9, 10]])
    packed = ref_packed(enc, [2, 0, 2], labels=np.array([0, 1, 2]))
    assert packed["input_ids"].tolist() == [[9, 10, 5, 6, 7, 9, 10]]
    assert packed["position_ids"].tolist() == [[0, 1, 0, 1, 2, 0, 1]]
    assert packed["cu_seq_lens_q"].tolist() == [0, 2, 5, 7]
    assert packed["seq_idx"].tolist() == [[0, 0, 1, 1, 1, 2, 2]]
    assert packed["last_index"].tolist() == [1, 4, 6]
    assert packed["max_length_q"] == 3 and packed["labels"].tolist() == [2, 0, 2]
    left = ref_padded(enc, [1, 0], pad_id=0, side="left", pad_to_multiple_of=4)
    assert left["input_ids"].tolist() == [[0, 0, 0, 8], [0, 5, 6, 7]]
    assert left["attention_mask"].tolist() == [[0, 0, 0, 1], [0, 1, 1, 1]]
    assert left["position_ids"].tolist() == [[0, 0, 0, 0], [0, 0, 1, 2]]
    assert left["last_index"].tolist() == [3, 3]
    right = ref_padded(enc, [1, 0], pad_id=-1)
    assert right["input_ids"].tolist() == [[8, -1, -1], [5, 6, 7]]
    assert right["last_index"].tolist() == [0, 2] and "position_ids" not in right


ENC10 = [[i + 1] * (i + 1) for i in range(10)]
EMPTY_ROW = [[7, 7], [], [7], [8, 8, 8], []]  # rows without tokens: nothing to pool


def error_cases() -> list[tuple[str, dict, type]]:
    """(collator, keyword arguments, error class), over the rows of ENC10 unless
    `encoded` says otherwise. Rows without tokens are refused when gathered
    (the spec asks lengths >= 1 of planning; collation has nothing to pool)."""
    n = 10
    return [
        ("packed", dict(idx=[]), af.InputError),
        ("packed", dict(idx=[0, 12]), af.InputError),
        ("packed", dict(idx=[-1]), af.InputError),
        ("packed", dict(idx=[0], labels=np.zeros(n + 1, dtype=np.int64)), af.InputError),
        ("packed", dict(idx=[0], labels=np.zeros((n, 5))), af.InputError),  # K of no space
        ("packed", dict(idx=[0], labels=np.zeros((n, 3, 1))), af.InputError),
        ("packed", dict(idx=[0], labels=np.int64(1)), af.InputError),
        ("packed", dict(idx=[0], labels=np.zeros(n)), af.InputError),  # float class ids
        ("packed", dict(idx=[0.0]), af.InputError),
        ("packed", dict(idx=[[0]]), af.InputError),
        ("packed", dict(idx=[3, 1], encoded=EMPTY_ROW), af.InputError),
        ("padded", dict(idx=[]), af.InputError),
        ("padded", dict(idx=[3, 10]), af.InputError),
        ("padded", dict(idx=[0], side="middle"), af.ConfigError),
        ("padded", dict(idx=[0], side=None), af.ConfigError),
        ("padded", dict(idx=[4], encoded=EMPTY_ROW), af.InputError),
        ("padded", dict(idx=[0], pad_to_multiple_of=0), af.ConfigError),
        ("padded", dict(idx=[0], labels=np.zeros((n - 1, 3))), af.InputError),
    ]


def run_collator(rust: bool, which: str, kwargs: dict) -> dict:
    kwargs = dict(kwargs)
    idx = kwargs.pop("idx")
    enc = make_encoded(kwargs.pop("encoded", ENC10))
    if which == "packed":
        if rust:
            return af.collate_packed(enc, idx, **kwargs)
        return ref_packed(enc, idx, **kwargs)
    if rust:
        return af.collate_padded(enc, idx, 0, **kwargs)
    return ref_padded(enc, idx, 0, **kwargs)


@pytest.mark.parametrize("which,kwargs,error", error_cases())
def test_collate_reference_errors(which, kwargs, error):
    with pytest.raises(error):
        run_collator(False, which, kwargs)


def test_collate_reference_skips_ungathered_empty_rows():
    enc = make_encoded(EMPTY_ROW)
    assert ref_packed(enc, [3, 0])["cu_seq_lens_q"].tolist() == [0, 3, 5]
    assert ref_padded(enc, [2], 0)["input_ids"].tolist() == [[7]]


def test_collate_reference_out_of_range_message():
    with pytest.raises(af.InputError) as info:
        ref_packed(make_encoded(ENC10), [0, 12])
    assert str(info.value) == "row 12 is out of range for 10 encoded rows"


# -- Rust against the reference --------------------------------------------------------
@given(case=batch_cases())
def test_rust_collate_packed_equals_oracle(case):
    enc, idx, labels = case
    got = af.collate_packed(enc, idx, labels=labels)
    assert_same_batch(got, ref_packed(enc, idx, labels=labels), f"idx={list(idx)}")
    check_packed_layout(enc, idx, labels, got)


@given(
    case=batch_cases(),
    pad_id=st.sampled_from((0, 1, 128001, -100)),
    side=st.sampled_from(("right", "left")),
    multiple=st.sampled_from((None, 1, 3, 8, 64)),
)
def test_rust_collate_padded_equals_oracle(case, pad_id, side, multiple):
    enc, idx, labels = case
    kwargs = dict(side=side, pad_to_multiple_of=multiple, labels=labels)
    got = af.collate_padded(enc, idx, pad_id, **kwargs)
    want = ref_padded(enc, idx, pad_id, **kwargs)
    assert_same_batch(got, want, f"idx={list(idx)} pad_id={pad_id} {side} {multiple}")


@pytest.mark.parametrize("which,kwargs,error", error_cases())
def test_rust_collate_errors(which, kwargs, error):
    with pytest.raises(error):
        run_collator(True, which, kwargs)


def test_rust_collate_out_of_range_message():
    with pytest.raises(af.InputError, match=r"row 12 is out of range for 10 encoded rows"):
        af.collate_packed(make_encoded(ENC10), [0, 12])
    with pytest.raises(af.InputError, match=r"row 12\b"):
        af.collate_padded(make_encoded(ENC10), np.array([12]), 0)


def test_rust_collate_skips_ungathered_empty_rows():
    enc = make_encoded(EMPTY_ROW)
    assert_same_batch(af.collate_packed(enc, [3, 0]), ref_packed(enc, [3, 0]), "packed")
    for side in ("right", "left"):
        got = af.collate_padded(enc, [2, 0], 5, side=side)
        assert_same_batch(got, ref_padded(enc, [2, 0], 5, side=side), side)


def test_encoded_from_lists_round_trips():
    rows = [[3, 1, 4], [1], [5, 9, 2, 6]]
    enc = af.Encoded.from_lists(rows)
    assert enc.to_lists() == rows
    assert enc.input_ids.dtype == np.int32 and enc.offsets.dtype == np.int64
    assert enc.source_row.tolist() == [0, 1, 2] and not enc.is_swapped.any()
    pairs = af.Encoded.from_lists(rows + [[7]], swap_pairs=True)
    assert pairs.source_row.tolist() == [0, 0, 1, 1]
    assert pairs.is_swapped.tolist() == [False, True, False, True]
    assert len(af.Encoded.from_lists([])) == 0
