"""Leak-free cross-validation folds: every row of one prompt lands in the
same fold (no prompt is both trained and validated on), and each fold gets
about 1/k of the rows of every label class. The exact rules are in
docs/dataset.md ("Folds"); the work is done by the Rust core."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from .checks import U64_MAX, as_array, check_int, check_int_array, is_integer
from .errors import InputError

__all__ = ["assign_folds", "MAX_FOLDS"]

MAX_FOLDS = 127  # fold ids are int8


def _column(name: str, values: Any) -> np.ndarray:
    """`values` as a one-dimensional integer array (any integer dtype)."""
    array = as_array(name, values, "a 1-D integer array")
    if (
        isinstance(values, (list, tuple))
        and array.dtype.kind in "fO"
        and all(is_integer(v) for v in values)
    ):
        # numpy reads a list such as [0, 2**63] as float64 (or object past
        # 2^64): keep Python ints exact, modulo 2^64 like everything else.
        array = np.array([int(v) & U64_MAX for v in values], dtype=np.uint64)
    return check_int_array(name, array)


def assign_folds(keys: Any, classes: Any, k: int, seed: int = 0) -> np.ndarray:
    """The fold (0 to k - 1) of every row, as an int8 array.

    `keys`: one integer per row, rows with equal keys are kept in one fold
    (e.g. `prompt_key`); any integer dtype, taken modulo 2^64 (so an int64
    column of hashes works as its unsigned bits). `classes`: one label per
    row, 0 (A wins), 1 (B wins), 2 (tie) or 3 (unlabelled / other). `k`:
    1 to 127 folds. `seed` (0 to 2^64 - 1) only reorders groups of equal
    size, so it changes which fold a group gets, not the balance.

    Deterministic: the same inputs give the same folds on every machine.
    Raises ConfigError for a bad k or seed, InputError for bad arrays.
    """
    k = check_int("k (the number of folds)", k, 1, MAX_FOLDS)
    seed = check_int("seed", seed, 0, U64_MAX)
    keys = _column("keys", keys)
    classes = _column("classes", classes)
    if len(keys) != len(classes):
        raise InputError(f"keys and classes have different lengths: {len(keys)} and {len(classes)}")
    if classes.size:
        bad = np.flatnonzero((classes < 0) | (classes > 3))
        if bad.size:
            row = int(bad[0])
            raise InputError(
                f"row {row}: class {int(classes[row])} is not 0 (A wins), 1 (B wins), "
                "2 (tie) or 3 (unlabelled)"
            )
    # astype wraps negative keys modulo 2^64 (their two's-complement bits).
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    classes = np.ascontiguousarray(classes, dtype=np.uint8)
    return _core.assign_folds(keys, classes, k, seed)
