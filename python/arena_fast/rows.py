"""Arena rows handed to the Rust core as Arrow buffers: the text columns of a
canonical frame (`arena_fast.sources`) become a `_core.Rows` without turning
any text into Python objects."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa

from . import _core
from .encoder import check_threads
from .errors import InputError

__all__ = ["TEXT_COLUMNS", "rows_from_arrow", "text_buffers"]

TEXT_COLUMNS = ("prompt", "response_a", "response_b")


def _valid(arr: pa.Array) -> Optional[np.ndarray]:
    """The validity bitmap of `arr` as bools (None when nothing is null)."""
    if arr.null_count == 0:
        return None
    bitmap = arr.buffers()[0]
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset : arr.offset + len(arr)].astype(bool)


def _offsets(arr: pa.Array) -> np.ndarray:
    buf = arr.buffers()[1]
    return np.frombuffer(buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]


def _data(arr: pa.Array) -> np.ndarray:
    buf = arr.buffers()[2]
    return np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)


def text_buffers(column: Union[pa.Array, pa.ChunkedArray, Any], name: str = "text") -> tuple:
    """The buffers `_core.Rows.from_arrow` reads for one text column: a
    String column of JSON-list text (`("json", ...)`) or a List(String)
    column of turns (`("lists", ...)`). Accepts pyarrow or polars columns."""
    if hasattr(column, "to_arrow") and not isinstance(column, (pa.Array, pa.ChunkedArray)):
        column = column.to_arrow()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    t = column.type
    if pa.types.is_null(t):
        column = pa.array([None] * len(column), type=pa.large_list(pa.large_string()))
        t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        arr = column.cast(pa.large_string()) if not pa.types.is_large_string(t) else column
        return ("json", _valid(arr), _offsets(arr), _data(arr))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        value = t.value_type
        if not (
            pa.types.is_string(value)
            or pa.types.is_large_string(value)
            or pa.types.is_string_view(value)
            or pa.types.is_null(value)
        ):
            raise InputError(f"column {name}: expected a list of strings, got {t}")
        arr = column.cast(pa.large_list(pa.large_string()))
        values = arr.values
        return (
            "lists",
            _valid(arr),
            _offsets(arr),
            _valid(values),
            _offsets(values),
            _data(values),
        )
    raise InputError(f"column {name}: expected JSON text or a list of strings per row, got {t}")


def rows_from_arrow(
    prompt, response_a, response_b, null_text: str = "", num_threads: Optional[int] = None
) -> _core.Rows:
    """Parse the three text columns into rows held by the core (on
    `num_threads` threads, at most `MAX_THREADS`; the same rows for any
    count)."""
    return _core.Rows.from_arrow(
        text_buffers(prompt, "prompt"),
        text_buffers(response_a, "response_a"),
        text_buffers(response_b, "response_b"),
        null_text,
        check_threads(num_threads),
    )
