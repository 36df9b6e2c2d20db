"""Labels under A/B swap. Class order everywhere: 0 = A wins, 1 = B wins,
2 = tie; swapping A and B maps 0 <-> 1 and keeps 2."""

from __future__ import annotations

import numpy as np

__all__ = ["swap_labels", "unswap_probs", "tta_average"]


def swap_labels(y) -> np.ndarray:
    """Labels of the swapped rows: class ids (n,) map 0<->1; probability or
    logit rows (n, 3) exchange their first two columns."""
    arr = np.asarray(y)
    if arr.ndim == 1:
        if arr.dtype.kind not in "iu":
            raise ValueError(f"class ids must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 2):
            raise ValueError("class ids must be 0 (A), 1 (B) or 2 (tie)")
        out = arr.copy()
        out[arr == 0] = 1
        out[arr == 1] = 0
        return out
    if arr.ndim == 2 and arr.shape[1] == 3:
        return arr[:, [1, 0, 2]]
    raise ValueError(f"expected class ids (n,) or rows of 3 values (n, 3), got shape {arr.shape}")


def unswap_probs(p_swapped) -> np.ndarray:
    """Predictions made on swapped inputs, mapped back to the original order:
    `[p_b', p_a', p_tie']`."""
    arr = np.asarray(p_swapped)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"expected probability rows (n, 3), got shape {arr.shape}")
    return arr[:, [1, 0, 2]]


def tta_average(p, p_swapped) -> np.ndarray:
    """Swap test-time augmentation: the mean of the original prediction and the
    swapped prediction mapped back."""
    a = np.asarray(p, dtype=np.float64)
    b = unswap_probs(p_swapped).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return (a + b) / 2.0
