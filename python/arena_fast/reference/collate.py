"""Reference: collation of encoded rows into one batch, from docs/packing.md.

Plain numpy (a gather per row, then whole-array operations), the baseline
the benchmarks hold the Rust collators against, so written to be reasonably
fast rather than slow on purpose. `input_ids` (int32, flat) and `offsets`
(int64, rows + 1) are the arrays of an `af.Encoded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["collate_packed", "collate_padded"]

_INT32_MAX = 2**31 - 1
IndexLike = Union[Sequence[int], np.ndarray]


def _rows(offsets: np.ndarray, idx: IndexLike) -> tuple[np.ndarray, np.ndarray]:
    """`idx` as int64 row numbers (checked) and the lengths of those rows."""
    n = len(offsets) - 1
    rows = np.asarray(idx)
    if rows.ndim != 1:
        raise InputError(f"idx must be a 1-D list of row indices, got shape {rows.shape}")
    if len(rows) == 0:
        raise InputError("idx is empty: a batch needs at least one row")
    if rows.dtype.kind not in "iu":
        raise InputError(f"idx must hold integers, got dtype {rows.dtype}")
    bad = (rows < 0) | (rows >= n)
    if bad.any():
        raise InputError(f"row {int(rows[bad][0])} is out of range for {n} encoded rows")
    rows = rows.astype(np.int64)
    lens = offsets[rows + 1] - offsets[rows]
    if (lens == 0).any():
        # docs/packing.md: a sequence is pooled at its last token, and an
        # empty row has none (its last_index would point into another row).
        empty = int(rows[lens == 0][0])
        raise InputError(f"row {empty} has no tokens; a sequence is pooled at its last token")
    return rows, lens


def _labels(labels, n: int, rows: np.ndarray) -> np.ndarray:
    """Labels aligned with the encoded rows, gathered at `rows`: class ids
    (n,) -> int64, or probabilities (n, 3) -> float32."""
    arr = np.asarray(labels)
    if arr.shape == (n,) and arr.dtype.kind in "iu":
        return arr[rows].astype(np.int64)
    if arr.shape == (n, 3) and arr.dtype.kind in "iuf":
        return arr[rows].astype(np.float32)
    raise InputError(
        f"labels must be integer class ids of shape ({n},) or probabilities of shape "
        f"({n}, 3), one per encoded row, got {arr.dtype} {arr.shape}"
    )


def collate_packed(input_ids: np.ndarray, offsets: np.ndarray, idx: IndexLike, labels=None) -> dict:
    """The rows of `idx` back to back in one (1, T) sequence, with the
    cumulative lengths flash-attention needs to keep them apart."""
    n = len(offsets) - 1
    rows, lens = _rows(offsets, idx)
    k = len(rows)
    total = int(lens.sum())
    if total > _INT32_MAX:
        raise InputError(f"{total} tokens in one pack do not fit in int32 cu_seq_lens")
    cu = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(lens, out=cu[1:])
    ids = np.concatenate([input_ids[offsets[r] : offsets[r + 1]] for r in rows])
    starts = np.repeat(cu[:-1], lens)
    longest = int(lens.max())
    cu32 = cu.astype(np.int32)
    out = {
        "input_ids": ids.astype(np.int64).reshape(1, total),
        "position_ids": (np.arange(total, dtype=np.int64) - starts).reshape(1, total),
        "cu_seq_lens_q": cu32,
        "cu_seq_lens_k": cu32.copy(),
        "max_length_q": longest,
        "max_length_k": longest,
        "seq_idx": np.repeat(np.arange(k, dtype=np.int32), lens).reshape(1, total),
        "last_index": cu[1:] - 1,
    }
    if labels is not None:
        out["labels"] = _labels(labels, n, rows)
    return out


def collate_padded(
    input_ids: np.ndarray,
    offsets: np.ndarray,
    idx: IndexLike,
    pad_id: int,
    side: str = "right",
    pad_to_multiple_of: Optional[int] = None,
    labels=None,
) -> dict:
    """The rows of `idx` as a (B, L) matrix padded with `pad_id`, and the
    mask, last-token columns and (left padding) positions that go with it."""
    if side not in ("right", "left"):
        raise ConfigError(f"side must be 'right' or 'left', got {side!r}")
    if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
        raise ConfigError(f"pad_to_multiple_of must be at least 1, got {pad_to_multiple_of}")
    n = len(offsets) - 1
    rows, lens = _rows(offsets, idx)
    width = int(lens.max())
    if pad_to_multiple_of is not None:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    b = len(rows)
    ids = np.full((b, width), pad_id, dtype=np.int64)
    mask = np.zeros((b, width), dtype=np.int64)
    left = side == "left"
    if left:
        positions = np.zeros((b, width), dtype=np.int64)
    for i, (r, m) in enumerate(zip(rows, lens)):
        lo = width - m if left else 0
        ids[i, lo : lo + m] = input_ids[offsets[r] : offsets[r + 1]]
        mask[i, lo : lo + m] = 1
        if left:
            positions[i, lo:] = np.arange(m, dtype=np.int64)
    last = np.full(b, width - 1, dtype=np.int64) if left else (lens - 1).astype(np.int64)
    out = {"input_ids": ids, "attention_mask": mask, "last_index": last}
    if left:
        out["position_ids"] = positions
    if labels is not None:
        out["labels"] = _labels(labels, n, rows)
    return out
