"""Swap pairs: how the two A/B orders of a row sit together.

With `swap="both"` the encoder writes input row i as encoded rows 2i (A and
B as given) and 2i + 1 (A and B exchanged). A dataset stores the two orders
as separate columns; loading it puts them back in that layout. Both
directions go through here: `split_pairs` / `interleave_pairs` move the token
rows (in Rust, `_core.split_pairs` / `_core.interleave_pairs`), `split_rows` /
`interleave_rows` the per-row values, and `pair_rows` gives the
`is_swapped` / `source_row` fields of the layout. Each split is the inverse
of its interleave.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from .checks import check_int_array, int64_array

__all__ = ["split_pairs", "interleave_pairs", "split_rows", "interleave_rows", "pair_rows"]


def _ids(name: str, values: Any) -> np.ndarray:
    return np.ascontiguousarray(check_int_array(name, values), dtype=np.int32)


def split_pairs(
    input_ids: Any, offsets: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The token rows of a `swap="both"` encoding (row r is
    `input_ids[offsets[r]:offsets[r + 1]]`, an even number of rows) as its
    two orders: `(ids, offsets, swapped_ids, swapped_offsets)`, offsets from
    0. Offsets that do not hold together are an `InputError`."""
    return _core.split_pairs(_ids("input_ids", input_ids), int64_array("offsets", offsets))


def interleave_pairs(
    input_ids: Any, offsets: Any, swapped_ids: Any, swapped_offsets: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `split_pairs`: original row 0, its swap, original row
    1, ... as `(ids, offsets)`, offsets from 0. The offsets of either side
    need not start at 0; both sides must hold the same number of rows."""
    return _core.interleave_pairs(
        _ids("input_ids", input_ids),
        int64_array("offsets", offsets),
        _ids("swapped_ids", swapped_ids),
        int64_array("swapped_offsets", swapped_offsets),
    )


def split_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row values of pairs (rows 2i, 2i + 1; any trailing shape) as
    `(originals, swaps)`: views, no copy."""
    return values[0::2], values[1::2]


def interleave_rows(originals: np.ndarray, swapped: np.ndarray) -> np.ndarray:
    """The inverse of `split_rows`: `originals[0], swapped[0], originals[1],
    ...` (a copy). `interleave_rows(x, x)` repeats each value twice."""
    originals, swapped = np.asarray(originals), np.asarray(swapped)
    return np.stack([originals, swapped], axis=1).reshape(-1, *originals.shape[1:])


def pair_rows(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """`(is_swapped, source_row)` of `rows` encoded rows in the pair layout:
    row r is a swap when r is odd and comes from input row r // 2."""
    order = np.arange(rows, dtype=np.int64)
    return order % 2 == 1, order // 2
