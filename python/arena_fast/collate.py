"""Batch assembly: `collate_packed` (one row, many sequences, no padding)
and `collate_padded` (a padded matrix), each one call into Rust that returns
numpy arrays owning Rust's buffers. Layouts in docs/packing.md."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from .checks import (
    I64_MAX,
    I64_MIN,
    as_array,
    check_fits_int64,
    check_int,
    check_optional_int,
    int64_array,
)
from .encoded import Encoded
from .errors import ConfigError, InputError

__all__ = ["collate_packed", "collate_padded"]

_INT64 = np.dtype(np.int64)
_INT32 = np.dtype(np.int32)
_SIDES = ("right", "left")


def _buffers(encoded: Encoded) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(encoded, Encoded):
        raise InputError(
            f"encoded must be an af.Encoded (what an Encoder returns), got {type(encoded).__name__}"
        )
    ids, offsets = encoded.input_ids, encoded.offsets
    # Arrays straight from the encoder pass as they are; anything else
    # (e.g. read back from disk) is made contiguous with the core's dtypes.
    if ids.dtype != _INT32 or not ids.flags.c_contiguous:
        ids = np.ascontiguousarray(ids, dtype=np.int32)
    if offsets.dtype != _INT64 or not offsets.flags.c_contiguous:
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    return ids, offsets


def _labels(labels: Any, n: int) -> np.ndarray:
    array = as_array("labels", labels, "(n,) class ids or (n, K) probabilities")
    if array.ndim == 0 or len(array) != n:
        raise InputError(
            f"labels are aligned with the encoded rows: expected {n}, got shape {array.shape}"
        )
    if array.ndim == 1 and array.dtype.kind in "iu":
        check_fits_int64("labels", array)
        return np.ascontiguousarray(array, dtype=np.int64)
    # K of a label space: 2 (ab), 3 (abt) or 4 (abtx; `af.labels`).
    if array.ndim == 2 and array.shape[1] in (2, 3, 4) and array.dtype.kind in "fiu":
        finite = np.isfinite(array)
        with np.errstate(over="ignore"):
            probs = np.ascontiguousarray(array, dtype=np.float32)
        past = finite & ~np.isfinite(probs)
        if past.any():
            row = int(np.argmax(past.any(axis=1)))
            raise InputError(f"labels: row {row} holds a value past the float32 range")
        return probs
    raise InputError(
        f"labels must be class ids (n,) or probabilities (n, K), K 2, 3 or 4 (a label space), "
        f"got {array.dtype} {array.shape}"
    )


def collate_packed(encoded: Encoded, idx: Any, labels: Optional[Any] = None) -> dict[str, Any]:
    """Rows `idx` of `encoded` as one packed row: `input_ids`, `position_ids`
    (1, T) int64, `cu_seq_lens_q/k` (k+1,) int32, `max_length_q/k`,
    `seq_idx` (1, T) int32, `last_index` (k,) int64, and `labels` gathered
    from `labels` (aligned with the encoded rows) when given. No
    attention_mask: with one, transformers mixes the sequences."""
    ids, offsets = _buffers(encoded)
    idx = int64_array("idx", idx)
    if labels is not None:
        labels = _labels(labels, len(offsets) - 1)
    return _core.collate_packed(ids, offsets, idx, labels)


def collate_padded(
    encoded: Encoded,
    idx: Any,
    pad_id: int,
    side: str = "right",
    pad_to_multiple_of: Optional[int] = None,
    labels: Optional[Any] = None,
) -> dict[str, Any]:
    """Rows `idx` of `encoded` padded to the longest (rounded up to
    `pad_to_multiple_of`): `input_ids`, `attention_mask` (B, L) int64,
    `last_index` (B,) int64 (column of each row's last token),
    `position_ids` with left padding, and gathered `labels`."""
    ids, offsets = _buffers(encoded)
    idx = int64_array("idx", idx)
    if labels is not None:
        labels = _labels(labels, len(offsets) - 1)
    if side not in _SIDES:
        raise ConfigError(f"side must be 'right' or 'left', got {side!r}")
    multiple = check_optional_int("pad_to_multiple_of", pad_to_multiple_of, 1, (1 << 32) - 1)
    pad_id = check_int("pad_id", pad_id, I64_MIN, I64_MAX)
    return _core.collate_padded(ids, offsets, idx, pad_id, side, multiple, labels)
