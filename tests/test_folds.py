"""Leak-free folds (docs/dataset.md, "Folds"). The pure-Python reference
(`arena_fast.reference.folds`) is checked on hand-worked examples; the Rust
core, through `arena_fast.folds.assign_folds` and `_core.assign_folds`, must
equal it fold for fold and error class for error class on random inputs;
and the promises (no key in two folds, balanced folds and classes, whole
groups, determinism) are checked on larger data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from arena_fast import _core
from arena_fast.folds import assign_folds
from arena_fast.reference import SplitMix64
from arena_fast.reference.folds import assign_folds as ref_assign_folds
from arena_fast.reference.folds import mix

U64_MAX = 2**64 - 1


# -- helpers ---------------------------------------------------------------------------
def outcome(fn, *args, **kwargs) -> Any:
    """The folds as a list, or the class of the exception raised."""
    try:
        folds = fn(*args, **kwargs)
    except Exception as exc:  # the class is what is compared
        return type(exc)
    assert isinstance(folds, np.ndarray) and folds.dtype == np.int8 and folds.ndim == 1
    return folds.tolist()


def check_folds(keys, classes, k: int, folds: np.ndarray) -> None:
    """Every row in [0, k), and every key in one fold only (`keys`: an
    integer array)."""
    keys = np.asarray(keys).astype(np.uint64)
    assert folds.dtype == np.int8 and folds.shape == (len(keys),)
    if not len(keys):
        return
    assert folds.min() >= 0 and folds.max() < k
    order = np.lexsort((folds, keys))
    same_key = keys[order][1:] == keys[order][:-1]
    leaks = same_key & (folds[order][1:] != folds[order][:-1])
    assert not leaks.any(), f"key {keys[order][1:][leaks][0]} is in two folds"


def class_shares(classes: np.ndarray, folds: np.ndarray, k: int) -> np.ndarray:
    """(k, 4): the share of each class within each fold."""
    table = np.zeros((k, 4))
    np.add.at(table, (folds.astype(np.int64), classes.astype(np.int64)), 1)
    return table / table.sum(axis=1, keepdims=True)


def repeated_keys(rng: np.random.Generator, n: int, distinct: int) -> np.ndarray:
    """`n` keys from `distinct` random 64-bit values, Zipf-like repeats (a
    few prompts asked very often, most once or twice)."""
    pool = rng.integers(0, U64_MAX, size=distinct, dtype=np.uint64, endpoint=True)
    ranks = np.minimum(rng.zipf(1.3, size=n) - 1, distinct - 1)
    return pool[ranks]


def labels(rng: np.random.Generator, n: int, p=(0.35, 0.34, 0.30, 0.01)) -> np.ndarray:
    return rng.choice(4, size=n, p=p).astype(np.uint8)


# -- the reference, by hand ------------------------------------------------------------
def test_mix_is_the_splitmix64_finaliser():
    for state in (0, 1, 12345, U64_MAX):
        want = SplitMix64.from_state(state).next()
        assert mix((state + 0x9E3779B97F4A7C15) & U64_MAX) == want


# Keys 7 (classes 0, 1, 0), 9 (0, 1), 4 (2) and 5 (0): totals 4, 2, 1; k = 2.
WORKED_KEYS = [7, 9, 7, 4, 9, 7, 5]
WORKED_CLASSES = [0, 0, 1, 2, 1, 0, 0]


def test_folds_reference_worked_example():
    # Key 7 first (3 rows): costs all 0, no rows anywhere: fold 0. Key 9:
    # fold 0 costs 1*2*W0 + 1*1*W1, fold 1 nothing: fold 1. Seed 0 orders the
    # singletons 5 then 4 (mix(5 ^ mix(0)) < mix(4 ^ mix(0))): key 5 (class
    # 0) costs 2*W0 in fold 0, 1*W0 in fold 1: fold 1; key 4 (class 2) costs
    # 0 in both, both hold 3 rows: the lower index, fold 0.
    assert mix(5 ^ mix(0)) < mix(4 ^ mix(0))
    folds = ref_assign_folds(WORKED_KEYS, WORKED_CLASSES, 2, seed=0)
    assert folds.tolist() == [0, 1, 0, 0, 1, 0, 1]
    # Seed 1 orders 4 first: cost 0 both, fold 1 has fewer rows (2 < 3).
    assert mix(4 ^ mix(1)) < mix(5 ^ mix(1))
    folds = ref_assign_folds(WORKED_KEYS, WORKED_CLASSES, 2, seed=1)
    assert folds.tolist() == [0, 1, 0, 1, 1, 0, 1]
    # One fold: everything in fold 0; no rows: no folds.
    assert ref_assign_folds(WORKED_KEYS, WORKED_CLASSES, 1).tolist() == [0] * 7
    assert ref_assign_folds([], [], 3).tolist() == []


def test_folds_reference_weights_follow_class_totals():
    # Key 1: four class-0 rows, placed first: fold 0. Key 2 (classes 1, 0,
    # 0) costs 2*4*W0 in fold 0, nothing in fold 1: fold 1. Key 3 (classes
    # 0, 1): totals T0 = 7, T1 = 2, so W0 = 2, W1 = 7; fold 0 costs 1*4*2 =
    # 8, fold 1 costs 1*2*2 + 1*1*7 = 11: fold 0 (4/7 < 2/7 + 1/2). Counting
    # rows without the weights would have chosen fold 1 (4 against 2 + 1).
    keys = [1, 1, 1, 1, 2, 2, 2, 3, 3]
    classes = [0, 0, 0, 0, 1, 0, 0, 0, 1]
    want = [0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert ref_assign_folds(keys, classes, 2).tolist() == want
    assert assign_folds(keys, classes, 2).tolist() == want


# -- Rust equals the reference ---------------------------------------------------------
@st.composite
def fold_cases(draw):
    """Keys with many repeats (a small pool, some huge values), classes from a
    random subset of 0..3 (so some totals are 0), any k and seed, and the
    keys as a list, uint64 or int64 (negative = high bit set)."""
    n = draw(st.integers(min_value=0, max_value=120), label="n")
    pool = draw(
        st.lists(
            st.one_of(st.integers(0, 9), st.integers(0, U64_MAX)), min_size=1, max_size=max(n, 1)
        ),
        label="pool",
    )
    keys = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n), label="keys")
    present = sorted(draw(st.sets(st.integers(0, 3), min_size=1), label="classes present"))
    classes = draw(st.lists(st.sampled_from(present), min_size=n, max_size=n), label="classes")
    k = draw(st.one_of(st.integers(1, 6), st.integers(1, 127)), label="k")
    seed = draw(st.one_of(st.integers(0, 3), st.integers(0, U64_MAX)), label="seed")
    form = draw(st.sampled_from(["list", "uint64", "int64"]), label="keys as")
    if form == "uint64":
        keys = np.asarray(keys, dtype=np.uint64)
    elif form == "int64":
        keys = np.asarray([key - 2**64 if key >= 2**63 else key for key in keys], np.int64)
    return keys, classes, k, seed


@given(case=fold_cases())
def test_rust_folds_equal_reference(case):
    keys, classes, k, seed = case
    want = outcome(ref_assign_folds, keys, classes, k, seed)
    assert outcome(assign_folds, keys, classes, k, seed) == want
    unsigned = np.array([int(key) % 2**64 for key in keys], dtype=np.uint64)
    raw = _core.assign_folds(unsigned, np.asarray(classes, dtype=np.uint8), k, seed)
    assert raw.tolist() == want
    check_folds(unsigned, classes, k, raw)


@given(
    n=st.integers(min_value=1, max_value=4000),
    distinct=st.integers(min_value=1, max_value=4000),
    k=st.integers(min_value=1, max_value=12),
    seed=st.integers(0, U64_MAX),
    rng_seed=st.integers(0, 2**32 - 1),
)
def test_rust_folds_equal_reference_larger(n, distinct, k, seed, rng_seed):
    rng = np.random.default_rng(rng_seed)
    keys = repeated_keys(rng, n, distinct)
    classes = labels(rng, n)
    got = assign_folds(keys, classes, k, seed)
    assert got.tolist() == ref_assign_folds(keys, classes, k, seed).tolist()
    check_folds(keys, classes, k, got)


def test_rust_folds_equal_reference_realistic():
    rng = np.random.default_rng(7)
    keys = repeated_keys(rng, 30_000, 25_000)
    classes = labels(rng, 30_000)
    for k, seed in ((5, 0), (10, 123456789)):
        got = assign_folds(keys, classes, k, seed)
        np.testing.assert_array_equal(got, ref_assign_folds(keys, classes, k, seed))


# -- the promises ----------------------------------------------------------------------
def test_no_prompt_in_two_folds_with_heavy_repeats():
    rng = np.random.default_rng(1)
    keys = repeated_keys(rng, 50_000, 3_000)
    assert np.unique(keys, return_counts=True)[1].max() > 1000  # some very common prompts
    classes = labels(rng, 50_000)
    for k in (2, 5, 10):
        folds = assign_folds(keys, classes, k, seed=3)
        check_folds(keys, classes, k, folds)
        assert set(folds.tolist()) == set(range(k))


def test_folds_are_deterministic_and_seeded():
    rng = np.random.default_rng(2)
    keys = repeated_keys(rng, 5_000, 4_000)
    classes = labels(rng, 5_000)
    a = assign_folds(keys, classes, 5, seed=11)
    np.testing.assert_array_equal(a, assign_folds(keys, classes, 5, seed=11))
    # The same keys in another integer form give the same folds.
    np.testing.assert_array_equal(a, assign_folds(keys.view(np.int64), classes.tolist(), 5, 11))
    np.testing.assert_array_equal(a, _core.assign_folds(keys, classes, 5, 11))
    b = assign_folds(keys, classes, 5, seed=12)
    # Groups of a size no other group has keep their place; the many of
    # equal size (most are single rows) are reordered by the seed.
    assert (a != b).mean() > 0.1, "another seed should move many groups"
    check_folds(keys, classes, 5, b)


def test_singleton_folds_balance_sizes_and_classes():
    rng = np.random.default_rng(3)
    n, k = 10_000, 5
    keys = rng.permutation(n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    classes = labels(rng, n)
    folds = assign_folds(keys, classes, k, seed=0)
    check_folds(keys, classes, k, folds)
    sizes = np.bincount(folds, minlength=k)
    assert (np.abs(sizes - n / k) <= 0.01 * n / k).all(), sizes
    overall = np.bincount(classes, minlength=4) / n
    assert (np.abs(class_shares(classes, folds, k) - overall) <= 0.01).all()
    # Per class the folds differ by at most one row (docs: "Balance").
    table = np.zeros((k, 4), dtype=np.int64)
    np.add.at(table, (folds.astype(np.int64), classes.astype(np.int64)), 1)
    assert (table.max(axis=0) - table.min(axis=0) <= 1).all(), table


def test_grouped_folds_balance_classes():
    # Prompts asked 1 to ~15 times (geometric), none a large share of the rows.
    rng = np.random.default_rng(4)
    k = 5
    sizes = rng.geometric(0.5, size=20_000)
    keys = np.repeat(rng.integers(0, U64_MAX, size=len(sizes), dtype=np.uint64), sizes)
    rng.shuffle(keys)
    n = len(keys)
    classes = labels(rng, n)
    folds = assign_folds(keys, classes, k, seed=9)
    sizes = np.bincount(folds, minlength=k)
    assert (np.abs(sizes - n / k) <= 0.01 * n / k).all(), sizes
    overall = np.bincount(classes, minlength=4) / n
    assert (np.abs(class_shares(classes, folds, k) - overall) <= 0.01).all()


def test_a_group_of_30_percent_stays_whole():
    rng = np.random.default_rng(5)
    n, k = 10_000, 5
    keys = np.arange(n, dtype=np.uint64) + np.uint64(1)
    big = rng.choice(n, size=3_000, replace=False)
    keys[big] = 0
    classes = labels(rng, n)
    folds = assign_folds(keys, classes, k, seed=4)
    check_folds(keys, classes, k, folds)
    home = int(folds[big[0]])
    assert (folds[big] == home).all()
    # The big group came first, to fold 0, and is larger than a fair share:
    # the other rows fill the other folds evenly and leave it alone.
    assert home == 0 and (folds == home).sum() == 3_000
    others = np.bincount(folds[folds != home], minlength=k)[1:]
    assert others.max() - others.min() <= 4, others


def test_one_fold_and_empty_inputs():
    assert assign_folds([3, 3, 4], [0, 1, 2], 1).tolist() == [0, 0, 0]
    empty = assign_folds([], [], 4)
    assert empty.dtype == np.int8 and empty.shape == (0,)
    assert _core.assign_folds(np.zeros(0, np.uint64), np.zeros(0, np.uint8), 4, 0).shape == (0,)


def test_one_million_rows_balanced():
    # Speed is measured by benches/bench_build.py, not here.
    rng = np.random.default_rng(6)
    n = 1_000_000
    pool = rng.integers(0, U64_MAX, size=900_000, dtype=np.uint64, endpoint=True)
    keys = np.concatenate([pool, rng.choice(pool, n - len(pool))])
    rng.shuffle(keys)
    classes = labels(rng, n)
    folds = assign_folds(keys, classes, 5, seed=1)
    sizes = np.bincount(folds, minlength=5)
    assert (np.abs(sizes - n / 5) <= 0.001 * n / 5).all(), sizes


# -- errors ----------------------------------------------------------------------------
ODD_INPUTS = [
    # k: 1 to 127, an integer.
    ([1, 2], [0, 1], 0, 0, af.ConfigError),
    ([1, 2], [0, 1], -1, 0, af.ConfigError),
    ([1, 2], [0, 1], 128, 0, af.ConfigError),
    ([1, 2], [0, 1], 2.0, 0, af.ConfigError),
    ([1, 2], [0, 1], True, 0, af.ConfigError),
    ([], [], 0, 0, af.ConfigError),
    # seed: 0 to 2^64 - 1.
    ([1, 2], [0, 1], 2, -1, af.ConfigError),
    ([1, 2], [0, 1], 2, 2**64, af.ConfigError),
    ([1, 2], [0, 1], 2, np.uint64(U64_MAX), None),
    # Arrays: 1-D integers of one length, classes 0 to 3.
    ([1.0, 2.0], [0, 1], 2, 0, af.InputError),
    ([1, 2], [0.0, 1.0], 2, 0, af.InputError),
    ([True, False], [0, 1], 2, 0, af.InputError),
    (["a", "b"], [0, 1], 2, 0, af.InputError),
    ([[1, 2]], [[0, 1]], 2, 0, af.InputError),
    ([1, 2, 3], [0, 1], 2, 0, af.InputError),
    ([1, 2], [0, 7], 2, 0, af.InputError),
    ([1, 2], [-1, 0], 2, 0, af.InputError),
    ([1, 2], np.array([0, 255], np.uint8), 2, 0, af.InputError),
    # A bad k is reported before bad arrays.
    ([1.0], [9, 9], 0, 0, af.ConfigError),
    # Odd but valid: other integer dtypes, strided views, Python ints that
    # numpy alone would read as float64 (or object), taken modulo 2^64.
    ([0, 2**63, 0], [0, 1, 2], 2, 0, None),
    ([-1, 2**64 - 1, 2**64 + 5, 5], (0, 1, 2, 3), 2, 0, None),
    ([0, 2**63], [0, 2**63], 2, 0, af.InputError),
    ([0, 1.5], [0, 1], 2, 0, af.InputError),
    (np.array([5, 5, 6], np.int8), np.array([0, 1, 3], np.int64), 2, 0, None),
    (np.arange(10, dtype=np.uint64)[::2], np.zeros(10, np.uint8)[::2], 3, 0, None),
]


@pytest.mark.parametrize("keys,classes,k,seed,error", ODD_INPUTS)
def test_odd_inputs_match_reference(keys, classes, k, seed, error):
    want = outcome(ref_assign_folds, keys, classes, k, seed)
    got = outcome(assign_folds, keys, classes, k, seed)
    assert got == want
    if error is None:
        assert isinstance(got, list)
    else:
        assert got is error


def test_core_errors_and_messages():
    keys = np.array([1, 2, 3], np.uint64)
    classes = np.array([0, 1, 7], np.uint8)
    with pytest.raises(af.InputError, match=r"row 2: class 7"):
        _core.assign_folds(keys, classes, 2, 0)
    with pytest.raises(af.InputError, match=r"row 2: class 7"):
        assign_folds(keys, classes, 2)
    with pytest.raises(af.InputError, match="different lengths: 3 and 2"):
        _core.assign_folds(keys, classes[:2], 2, 0)
    for k in (0, -3, 128):
        with pytest.raises(af.ConfigError, match=rf"between 1 and 127, got {k}"):
            _core.assign_folds(keys, classes[:1].repeat(3), k, 0)
    # The input classes are ValueErrors too, for callers that catch those.
    with pytest.raises(ValueError):
        assign_folds(keys, classes, 2)
    # _core takes exactly uint64 keys and uint8 classes.
    with pytest.raises(TypeError):
        _core.assign_folds(keys.astype(np.int64), classes, 2, 0)
