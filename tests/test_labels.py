"""Labels under A/B swap: 0 = A wins, 1 = B wins, 2 = tie; a swap maps 0 <-> 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import arena_fast as af

class_ids = hnp.arrays(np.int64, st.integers(0, 50), elements=st.integers(0, 2))
prob_rows = st.integers(0, 30).flatmap(
    lambda n: hnp.arrays(
        np.float64, (n, 3), elements=st.floats(0, 1, allow_nan=False, allow_infinity=False)
    )
)


def test_swap_class_ids():
    y = np.array([0, 1, 2, 0, 2, 1])
    assert af.swap_labels(y).tolist() == [1, 0, 2, 1, 2, 0]
    assert af.swap_labels([0, 1, 2]).tolist() == [1, 0, 2]
    for dtype in (np.int8, np.int32, np.uint8, np.int64):
        out = af.swap_labels(y.astype(dtype))
        assert out.tolist() == [1, 0, 2, 1, 2, 0] and out.dtype == dtype
    assert af.swap_labels(np.array([], dtype=np.int64)).tolist() == []


def test_swap_does_not_modify_input():
    y = np.array([0, 1, 2])
    af.swap_labels(y)
    assert y.tolist() == [0, 1, 2]
    p = np.array([[0.7, 0.2, 0.1]])
    af.swap_labels(p)
    af.unswap_probs(p)
    assert p.tolist() == [[0.7, 0.2, 0.1]]


def test_swap_probability_rows():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    assert af.swap_labels(p).tolist() == [[0.2, 0.7, 0.1], [0.3, 0.1, 0.6]]
    assert af.unswap_probs(p).tolist() == [[0.2, 0.7, 0.1], [0.3, 0.1, 0.6]]


@given(class_ids)
def test_swapping_class_ids_twice_is_identity(y):
    once = af.swap_labels(y)
    assert np.array_equal(af.swap_labels(once), y)
    assert np.array_equal(once == 2, y == 2), "ties stay ties"
    assert np.array_equal(once == 0, y == 1)


@given(prob_rows)
def test_swapping_rows_twice_is_identity(p):
    assert np.array_equal(af.swap_labels(af.swap_labels(p)), p)
    assert np.array_equal(af.unswap_probs(af.swap_labels(p)), p)
    assert np.array_equal(af.swap_labels(p)[:, 2], p[:, 2])


@given(prob_rows)
def test_tta_average_of_consistent_predictions(p):
    """A model that is exactly swap-consistent: the TTA average is p itself."""
    assert np.allclose(af.tta_average(p, af.swap_labels(p)), p)


def test_tta_average_values():
    p = np.array([[0.6, 0.3, 0.1]])
    p_swapped = np.array([[0.2, 0.5, 0.3]])  # in swapped order: B' = original A
    expected = (p + np.array([[0.5, 0.2, 0.3]])) / 2
    out = af.tta_average(p, p_swapped)
    assert np.allclose(out, expected) and out.dtype == np.float64
    assert np.allclose(out.sum(axis=1), 1.0)
    # A symmetric prediction (A and B equally likely) is a fixed point.
    sym = np.array([[0.4, 0.4, 0.2], [0.1, 0.1, 0.8]])
    assert np.allclose(af.tta_average(sym, sym), sym)
    assert af.tta_average(p.astype(np.float32), p_swapped.astype(np.float32)).shape == (1, 3)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 2)),
        np.zeros((2, 4)),
        np.zeros((2, 3, 1)),
        np.zeros(()),
        np.array([0.5, 1.0]),  # class ids must be integers
        np.array([0, 3]),
        np.array([-1, 0]),
    ],
)
def test_swap_labels_bad_input(bad):
    with pytest.raises(ValueError):
        af.swap_labels(bad)


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2)), np.zeros((1, 3, 1))])
def test_unswap_probs_bad_shape(bad):
    with pytest.raises(ValueError):
        af.unswap_probs(bad)


def test_tta_average_bad_shapes():
    with pytest.raises(ValueError):
        af.tta_average(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        af.tta_average(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        af.tta_average(np.zeros((2, 2)), np.zeros((2, 3)))
