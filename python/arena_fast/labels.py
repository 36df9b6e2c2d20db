"""Labels under A/B swap. Class order everywhere: 0 = A wins, 1 = B wins,
2 = tie; swapping A and B maps 0 <-> 1 and keeps 2."""

from __future__ import annotations

from typing import Any

import numpy as np

from .checks import as_array, check_int_array
from .errors import InputError

__all__ = [
    "CLASS_COLUMNS",
    "CLASS_KEYS",
    "CLASS_NAMES",
    "VERDICTS",
    "swap_labels",
    "unswap_probs",
    "tta_average",
]

# The three classes, in this order everywhere: as the Kaggle columns (and a
# submission's header, a bundle's label order), as people read them, and as
# `compare`'s verdict; as the short keys of a manifest's label counts and a
# diagnostics table.
CLASS_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")
CLASS_KEYS = ("a", "b", "tie")
CLASS_NAMES = ("A wins", "B wins", "tie")
VERDICTS = ("model_a", "model_b", "tie")


def swap_labels(y) -> np.ndarray:
    """Labels of the swapped rows: class ids (n,) map 0<->1; probability or
    logit rows (n, 3) exchange their first two columns."""
    arr = as_array("labels", y)
    if arr.ndim == 1:
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        check_int_array("class ids", arr)
        if arr.min() < 0 or arr.max() > 2:
            raise InputError("class ids must be 0 (A), 1 (B) or 2 (tie)")
        out = arr.copy()
        out[arr == 0] = 1
        out[arr == 1] = 0
        return out
    if arr.ndim == 2 and arr.shape[1] == 3:
        return arr[:, [1, 0, 2]]
    raise InputError(f"expected class ids (n,) or rows of 3 values (n, 3), got shape {arr.shape}")


def unswap_probs(p_swapped) -> np.ndarray:
    """Predictions made on swapped inputs, mapped back to the original order:
    `[p_b', p_a', p_tie']`."""
    arr = as_array("p_swapped", p_swapped)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"expected probability rows (n, 3), got shape {arr.shape}")
    return arr[:, [1, 0, 2]]


def tta_average(p, p_swapped) -> np.ndarray:
    """Swap test-time augmentation: the mean of the original prediction and the
    swapped prediction mapped back."""
    a = _numbers(p, "p")
    b = _numbers(unswap_probs(p_swapped), "p_swapped")
    if a.shape != b.shape:
        raise InputError(f"shapes differ: {a.shape} vs {b.shape}")
    with np.errstate(invalid="ignore"):  # inf and -inf average to NaN, as they should
        return a / 2.0 + b / 2.0  # not (a + b) / 2, which overflows near the float64 maximum


def _numbers(value: Any, name: str) -> np.ndarray:
    arr = as_array(name, value)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)
