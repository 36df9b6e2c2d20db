"""Arena rows handed to the Rust core as Arrow arrays: the text columns of a
canonical frame (`arena_fast.sources`) become a `_core.Rows` without turning
any text into Python objects.

Python's part is to bring each column to one of the two Arrow types the core
reads (polars Series, chunked arrays, string views and 32-bit offsets are
converted here); the core imports the arrays through the Arrow PyCapsule
interface (`__arrow_c_array__`) and reads their offsets, bytes and validity
bitmaps in place (docs/dataset.md, "Rows in Rust")."""

from __future__ import annotations

from typing import Any, Optional, Union

import pyarrow as pa

from . import _core
from .checks import check_threads
from .errors import InputError

__all__ = ["TEXT_COLUMNS", "rows_from_arrow", "text_array"]

TEXT_COLUMNS = ("prompt", "response_a", "response_b")

_JSON = pa.large_string()
_LISTS = pa.large_list(pa.large_string())


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def text_array(column: Union[pa.Array, pa.ChunkedArray, Any], name: str = "text") -> pa.Array:
    """One text column as the Arrow array `_core.Rows.from_arrow` reads: a
    `large_string` array of JSON-list text, or a `large_list<large_string>`
    array of turns (a column of nulls is a column of empty lists). Accepts
    pyarrow or polars columns; other types are an `InputError`."""
    if hasattr(column, "to_arrow") and not isinstance(column, (pa.Array, pa.ChunkedArray)):
        column = column.to_arrow()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    t = column.type
    if pa.types.is_null(t):
        return pa.nulls(len(column), type=_LISTS)
    if _is_text(t):
        return column if t == _JSON else column.cast(_JSON)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        if not (_is_text(t.value_type) or pa.types.is_null(t.value_type)):
            raise InputError(f"column {name}: expected a list of strings, got {t}")
        return column if t == _LISTS else column.cast(_LISTS)
    raise InputError(f"column {name}: expected JSON text or a list of strings per row, got {t}")


def rows_from_arrow(
    prompt, response_a, response_b, null_text: str = "", num_threads: Optional[int] = None
) -> _core.Rows:
    """Parse the three text columns into rows held by the core (on
    `num_threads` threads, at most `MAX_THREADS`; the same rows for any
    count)."""
    return _core.Rows.from_arrow(
        text_array(prompt, "prompt"),
        text_array(response_a, "response_a"),
        text_array(response_b, "response_b"),
        null_text,
        check_threads(num_threads),
    )
