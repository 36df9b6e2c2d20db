"""`af.Encoded`: encoded rows as flat numpy arrays (ids + offsets) with
per-row diagnostics. Built from arrays the Rust core hands over without a copy,
and handed to / taken from Arrow (datasets, polars, Ray, Spark) without copying
the token ids either."""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import pyarrow as pa

from .checks import check_index
from .errors import InputError
from .pairs import pair_rows

__all__ = [
    "Encoded",
    "REPAIR_NULL",
    "REPAIR_SURROGATE",
    "REPAIR_RAGGED",
    "REPAIR_CLIPPED",
    "REPAIR_IMAGE",
]

# Bits of `Encoded.repairs` (the same as the core's `turns::repair`).
REPAIR_NULL = 1
REPAIR_SURROGATE = 2
REPAIR_RAGGED = 4
REPAIR_CLIPPED = 8
# Set by the readers, not the core: image parts left out of a typed-content
# text (arena-140k, pairs; `--images strip`).
REPAIR_IMAGE = 16

_ROW_FIELDS = (
    "turns_total",
    "turns_kept",
    "truncated",
    "full_length",
    "repairs",
    "is_swapped",
    "source_row",
)

# The most tokens an Arrow `list<int32>` (32-bit offsets) can hold; beyond it
# `to_arrow(large=True)` gives a `large_list<int32>`. A module constant so the
# tests can lower it instead of allocating 8 GB.
_MAX_LIST_TOKENS = 2**31 - 1


def _plain_row_fields(offsets: np.ndarray, swap_pairs: bool) -> dict[str, np.ndarray]:
    """Per-row fields of rows encoded elsewhere: one turn each, nothing
    truncated or repaired; with `swap_pairs`, rows 2i and 2i+1 are the two
    orders of input row i (the `swap="both"` layout)."""
    n = len(offsets) - 1
    if swap_pairs:
        is_swapped, source_row = pair_rows(n)
    else:
        is_swapped, source_row = np.zeros(n, dtype=bool), np.arange(n, dtype=np.int64)
    return {
        "turns_total": np.ones(n, dtype=np.int32),
        "turns_kept": np.ones(n, dtype=np.int32),
        "truncated": np.zeros(n, dtype=bool),
        "full_length": np.diff(offsets).astype(np.int64),
        "repairs": np.zeros(n, dtype=np.uint8),
        "is_swapped": is_swapped,
        "source_row": source_row,
    }


def _as_arrow_array(data: Any) -> pa.Array:
    """One contiguous Arrow array from an Array, a ChunkedArray (several
    chunks are concatenated: a copy), a polars Series or any object that
    speaks the Arrow PyCapsule interface."""
    if not isinstance(data, (pa.Array, pa.ChunkedArray)):
        if hasattr(data, "to_arrow"):  # polars Series (shares its buffers)
            data = data.to_arrow()
        elif hasattr(data, "__arrow_c_array__"):
            data = pa.array(data)
        elif hasattr(data, "__arrow_c_stream__"):
            data = pa.chunked_array(data)
        else:
            raise InputError(
                "from_arrow expects a pyarrow Array or ChunkedArray or a polars Series of "
                f"lists of token ids, got {type(data).__name__}"
            )
    if isinstance(data, pa.ChunkedArray):
        data = data.chunk(0) if data.num_chunks == 1 else data.combine_chunks()
    if not isinstance(data, pa.Array):
        raise InputError(f"from_arrow expects one column of lists, got {type(data).__name__}")
    return data


class Encoded:
    """Rows of token ids, concatenated.

    `input_ids` (int32) holds every row back to back; row i is
    `input_ids[offsets[i]:offsets[i+1]]`. Per row: `turns_total`, `turns_kept`,
    `truncated`, `full_length` (the tokens it would have with nothing cut),
    `repaired` (and the `repairs` bit set: null, lone surrogate,
    ragged turns, clipped turn), `is_swapped`, and `source_row` (the input row it came from;
    with `swap="both"` rows 2i and 2i+1 both come from row i).
    """

    __slots__ = ("input_ids", "offsets", *_ROW_FIELDS)

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.input_ids = arrays["input_ids"]
        self.offsets = arrays["offsets"]
        for name in _ROW_FIELDS:
            setattr(self, name, arrays[name])

    @classmethod
    def from_lists(cls, rows: Any, swap_pairs: bool = False) -> Encoded:
        """Rows of token ids made elsewhere (another tokenizer pipeline, a
        test) as an `Encoded`, so they can be planned and collated. Nothing
        was truncated or repaired; with `swap_pairs`, rows 2i and 2i+1 are
        the two orders of input row i, as `swap="both"` lays them out."""
        lengths = [len(r) for r in rows]
        n = len(lengths)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
        return cls(
            {"input_ids": flat, "offsets": offsets, **_plain_row_fields(offsets, swap_pairs)}
        )

    @classmethod
    def from_arrow(cls, array: Any, *, swap_pairs: bool = False) -> Encoded:
        """Rows of token ids from an Arrow column: a pyarrow `list<int32>` or
        `large_list<int32>` Array or ChunkedArray, or a polars Series (read
        through `.to_arrow()`), e.g. a `datasets` column or ids tokenized by
        another pipeline. Per-row fields and `swap_pairs` as in `from_lists`.

        Zero-copy for a single chunk of int32 values: `input_ids` is then a
        read-only numpy view of the Arrow values buffer (only the n + 1
        offsets are rebuilt, as int64 starting at 0). A ChunkedArray of
        several chunks is concatenated first, and values of another integer
        type (int64, uint32, ...) are cast to int32: both copy. A null row or
        a null token id is an `InputError` naming the row."""
        arr = _as_arrow_array(array)
        kind = arr.type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not (
            pa.types.is_integer(kind.value_type)
        ):
            raise InputError(
                f"from_arrow expects list<int32> or large_list<int32> token ids, got {kind}"
            )
        n = len(arr)
        if arr.null_count:
            row = int(np.argmax(arr.is_null().to_numpy(zero_copy_only=False)))
            raise InputError(
                f"row {row} is null ({arr.null_count} null rows): every row needs token ids; "
                "drop or fill the null rows first"
            )
        if n == 0:
            empty = {"input_ids": np.zeros(0, np.int32), "offsets": np.zeros(1, np.int64)}
            return cls({**empty, **_plain_row_fields(empty["offsets"], swap_pairs)})
        # `.offsets` honours the array's own slice offset (a view, n + 1 long).
        raw = arr.offsets.to_numpy(zero_copy_only=True)
        start, end = int(raw[0]), int(raw[-1])
        offsets = np.subtract(raw, start, dtype=np.int64)
        values = arr.values.slice(start, end - start)
        if values.null_count:
            where = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
            row = int(np.searchsorted(offsets, where, side="right")) - 1
            raise InputError(f"row {row} holds a null token id (position {where - offsets[row]})")
        if values.type != pa.int32():
            try:
                values = values.cast(pa.int32())  # a copy; out-of-range ids raise
            except (pa.ArrowInvalid, OverflowError) as e:
                raise InputError(
                    f"token ids of type {values.type} do not fit in int32: {e}"
                ) from None
        ids = values.to_numpy(zero_copy_only=True)
        if not ids.flags.aligned:  # a foreign producer's odd buffer: the core needs aligned ids
            ids = ids.copy()
        return cls({"input_ids": ids, "offsets": offsets, **_plain_row_fields(offsets, swap_pairs)})

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row (int64)."""
        return np.diff(self.offsets)

    @property
    def repaired(self) -> np.ndarray:
        """Rows whose text was repaired (null, lone surrogate, ragged or clipped turns)."""
        return self.repairs != 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: Union[int, np.integer]) -> np.ndarray:
        """Row i as a view into `input_ids`."""
        i = check_index("row", i, len(self))
        return self.input_ids[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def to_lists(self) -> list[list[int]]:
        return [row.tolist() for row in self]

    def to_arrow(self, large: bool = False) -> pa.Array:
        """The rows as an Arrow `list<int32>` array (`large=True`:
        `large_list<int32>`), for a `datasets` column, polars, Ray or Spark.

        The values buffer IS `input_ids` (no copy; the Arrow array keeps it
        alive, and writing to `input_ids` shows through), as the encoder
        makes it: contiguous int32 (other arrays are converted first). Only
        the n + 1 offsets may be copied: to int32 for `list`, or shifted to
        start at 0 for rows sliced out of a larger `Encoded`.
        A `list<int32>` holds at most 2**31 - 1 tokens; beyond that this
        raises `InputError` and `large=True` is needed."""
        offsets = np.asarray(self.offsets)
        start, end = int(offsets[0]), int(offsets[-1])
        ids = self.input_ids
        if ids.dtype != np.int32 or not ids.flags.c_contiguous:
            ids = np.ascontiguousarray(ids, dtype=np.int32)  # only for hand-made arrays
        view = ids[start:end]
        values = pa.Array.from_buffers(pa.int32(), len(view), [None, pa.py_buffer(view)])
        if large:
            if start or offsets.dtype != np.int64 or not offsets.flags.c_contiguous:
                offsets = np.subtract(offsets, start, dtype=np.int64)
            return pa.LargeListArray.from_arrays(pa.array(offsets), values)
        if end - start > _MAX_LIST_TOKENS:
            raise InputError(
                f"{end - start} tokens do not fit an Arrow list<int32> (32-bit offsets, at "
                f"most {_MAX_LIST_TOKENS} tokens): pass large=True for a large_list<int32>"
            )
        small = np.subtract(offsets, start, dtype=np.int64).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(small), values)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ("input_ids", "offsets", *_ROW_FIELDS)}

    def __getstate__(self) -> dict[str, Any]:
        return self.arrays()

    def __setstate__(self, state: dict[str, Any]) -> None:
        Encoded.__init__(self, state)

    def __repr__(self) -> str:
        n = len(self)
        if n == 0:
            return "<arena_fast.Encoded rows=0>"
        lengths = self.lengths
        return (
            f"<arena_fast.Encoded rows={n} tokens={len(self.input_ids)} "
            f"max_len={int(lengths.max())} truncated={int(self.truncated.sum())}>"
        )
