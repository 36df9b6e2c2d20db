"""Leak-free cross-validation folds: every row of one prompt lands in the
same fold (no prompt is both trained and validated on), and each fold gets
about 1/k of the rows of every label class. The exact rules are in
docs/dataset.md ("Folds"); the work is done by the Rust core."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from .errors import ConfigError, InputError

__all__ = ["assign_folds", "MAX_FOLDS"]

MAX_FOLDS = 127  # fold ids are int8
_U64 = 1 << 64


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _column(name: str, values: Any) -> np.ndarray:
    """`values` as a one-dimensional integer array (any integer dtype)."""
    array = np.asarray(values)
    if (
        isinstance(values, (list, tuple))
        and array.dtype.kind in "fO"
        and all(_is_int(v) for v in values)
    ):
        # numpy reads a list such as [0, 2**63] as float64 (or object past
        # 2^64): keep Python ints exact, modulo 2^64 like everything else.
        array = np.array([int(v) & (_U64 - 1) for v in values], dtype=np.uint64)
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise InputError(f"{name} must be integers, got dtype {array.dtype}")
    return array


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


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
    k = _integer("k (the number of folds)", k, 1, MAX_FOLDS)
    seed = _integer("seed", seed, 0, _U64 - 1)
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
