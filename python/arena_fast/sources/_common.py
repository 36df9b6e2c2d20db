"""What every reader shares: the frame schemas, the chunk type, the reader
options, column checks, the row builder, text cleaning, conversation
splitting and the seeded coin (file containers: `containers.py`)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import polars as pl
import pyarrow as pa

from ..errors import InputError
from ..rng import MASK64, SplitMix64
from ..rows import TEXT_COLUMNS
from ..text import repair_text  # the one surrogate repair, with its flag
from .containers import BadRecord, iter_records

# The largest float32: label and logit columns are stored as float32, where
# a larger value would become inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)

CANONICAL_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "source": pl.String(),
    "model_a": pl.String(),
    "model_b": pl.String(),
    "prompt": pl.List(pl.String()),
    "response_a": pl.List(pl.String()),
    "response_b": pl.List(pl.String()),
    "labels": pl.Array(pl.Float64(), 3),
    "teacher_logits": pl.List(pl.Array(pl.Float64(), 3)),
    "row": pl.Int64(),
    "input_rows": pl.Int32(),
}

# Optional row metadata a reader may add after the canonical columns (a
# reader without them leaves them out; the build reads them as null):
# `language` and `category` break scores down in diagnostics and reports,
# `meta` is a JSON object text of whatever else the source records per row
# (docs/dataset.md, "Row metadata").
METADATA_SCHEMA: dict[str, pl.DataType] = {
    "language": pl.String(),
    "category": pl.String(),
    "meta": pl.String(),
}


def labels_dtype(classes: int) -> pl.DataType:
    """The `labels` column of a label space of `classes` classes."""
    return pl.Array(pl.Float64(), classes)


# The rows of a reader that leaves the text columns as JSON text, for the
# Rust core to parse with its repairs (kaggle, the demo rows).
JSON_TEXT_SCHEMA: dict[str, pl.DataType] = {
    **CANONICAL_SCHEMA,
    **{c: pl.String() for c in TEXT_COLUMNS},
}

DROPPED_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "id": pl.String(),
    "row": pl.Int64(),
    "input_rows": pl.Int32(),
    "reason": pl.String(),
    "detail": pl.String(),
}

# Nested columns are built through pyarrow: polars builds List(String) from
# Python lists about 50x slower.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "prompt": pa.large_list(pa.large_string()),
    "response_a": pa.large_list(pa.large_string()),
    "response_b": pa.large_list(pa.large_string()),
    "labels": pa.list_(pa.float64(), 3),
    "teacher_logits": pa.large_list(pa.list_(pa.float64(), 3)),
}


@dataclass(frozen=True)
class ReadOptions:
    """Choices a reader makes that the user can change (`BuildConfig`
    fields of the same names): `images` ("strip": image parts of typed
    content are left out of the text, counted as a repair; "drop": such a
    record is dropped with reason `image`); `preference` (PKU-SafeRLHF:
    "better" or "safer" response); `mapping` (the generic `pairs` reader's
    canonical field -> file column, `--map`)."""

    images: str = "strip"
    preference: str = "better"
    mapping: Optional[dict] = None


READ_DEFAULTS = ReadOptions()


@dataclass
class Chunk:
    """One slice of a reader's output: canonical rows, and the input records
    that could not become rows (with the reason)."""

    rows: pl.DataFrame
    dropped: pl.DataFrame
    # Per row of `rows`: repair bits the reader made (docs/encoding.md; a
    # lone surrogate in a JSON string, which Arrow cannot hold), ORed into
    # the core's. None: no repairs.
    repairs: Optional[np.ndarray] = None

    def slice(self, start: int, length: Optional[int] = None) -> Chunk:
        """Rows `start:start+length` (to the end when None), no dropped records."""
        end = len(self.rows) if length is None else start + length
        repairs = None if self.repairs is None else self.repairs[start:end]
        return Chunk(self.rows.slice(start, length), self.dropped.clear(), repairs)


def empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=CANONICAL_SCHEMA)


def empty_dropped() -> pl.DataFrame:
    return pl.DataFrame(schema=DROPPED_SCHEMA)


# -- columns ------------------------------------------------------------------------
def check_columns(
    path: Union[str, Path], fmt: str, seen: Sequence[str], required: Sequence[str]
) -> None:
    """InputError (one line) when a required column is missing."""
    missing = [c for c in required if c not in seen]
    if missing:
        raise columns_error(path, fmt, missing, seen)


def columns_error(
    path: Union[str, Path], fmt: str, missing: Sequence[str], seen: Sequence[str]
) -> InputError:
    return InputError(
        f"{path}: missing column(s) {list(missing)} for format {fmt} (columns seen: {list(seen)})"
    )


# -- building chunks -----------------------------------------------------------------
def _series(name: str, values: list, dtype: pl.DataType) -> pl.Series:
    arrow = _ARROW_TYPES.get(name)
    if arrow is None:
        return pl.Series(name, values, dtype=dtype)
    if name == "labels" and isinstance(dtype, pl.Array):  # the builder's width
        arrow = pa.list_(pa.float64(), dtype.size)
    elif name == "teacher_logits" and isinstance(dtype, pl.List):
        arrow = pa.large_list(pa.list_(pa.float64(), dtype.inner.size))
    series = pl.from_arrow(pa.array(values, type=arrow))
    assert isinstance(series, pl.Series)
    return series.alias(name).cast(dtype)


class Builder:
    """Collects canonical rows and dropped records as Python values, one
    chunk at a time. `classes`: the width of the labels (the label space's
    K: 2, 3 or 4); the rows carry the metadata columns (`METADATA_SCHEMA`)."""

    def __init__(self, source: str, classes: int = 3):
        self.source = source
        self.classes = classes
        self.schema = {
            **CANONICAL_SCHEMA,
            "labels": labels_dtype(classes),
            "teacher_logits": pl.List(labels_dtype(classes)),
            **METADATA_SCHEMA,
        }
        self.rows: dict[str, list] = {name: [] for name in self.schema}
        self.dropped: dict[str, list] = {name: [] for name in DROPPED_SCHEMA}
        self.repairs: list[int] = []

    def __len__(self) -> int:
        return len(self.rows["id"])

    def add(
        self,
        *,
        id: str,
        prompt: list,
        response_a: list,
        response_b: list,
        labels: Optional[list],
        row: int,
        model_a: Optional[str] = None,
        model_b: Optional[str] = None,
        input_rows: int = 1,
        language: Optional[str] = None,
        category: Optional[str] = None,
        meta: Optional[dict] = None,
        repairs: int = 0,
    ) -> None:
        """One canonical row. The texts are cleaned here (`clean_turns`) and
        the repair counted for the row, with the reader's own `repairs` bits
        (`REPAIR_IMAGE`); `meta` (JSON-able) is stored as JSON text with
        sorted keys."""
        prompt, f0 = clean_turns(prompt)
        response_a, f1 = clean_turns(response_a)
        response_b, f2 = clean_turns(response_b)
        self.repairs.append(f0 | f1 | f2 | repairs)
        values = {
            "id": id,
            "source": self.source,
            "model_a": model_a,
            "model_b": model_b,
            "prompt": prompt,
            "response_a": response_a,
            "response_b": response_b,
            "labels": labels,
            "teacher_logits": None,
            "row": row,
            "input_rows": input_rows,
            "language": as_name(language),
            "category": as_name(category),
            "meta": None if meta is None else meta_text(meta),
        }
        for name, value in values.items():
            self.rows[name].append(value)

    def row_id(self, record: dict, row: int, present: bool, column: str = "id") -> Optional[str]:
        """The id of record `row`: its `column` value as a string when the
        file has that column (`present`), else the row number. None, after
        dropping the record as `missing_id`, when the value is null."""
        ident = as_id(record.get(column)) if present else str(row)
        if ident is None:
            self.drop(id=None, row=row, reason="missing_id", detail=f"{column} is null")
        return ident

    def drop(
        self, *, id: Optional[str], row: int, reason: str, detail: str, input_rows: int = 1
    ) -> None:
        values = {
            "source": self.source,
            "id": id,
            "row": row,
            "input_rows": input_rows,
            "reason": reason,
            "detail": detail,
        }
        for name, value in values.items():
            self.dropped[name].append(value)

    def chunk(self) -> Chunk:
        """The collected rows and drops as a Chunk; the builder starts empty again."""
        rows = pl.DataFrame(
            [_series(name, self.rows[name], dtype) for name, dtype in self.schema.items()]
        )
        dropped = pl.DataFrame(self.dropped, schema=DROPPED_SCHEMA)
        repairs = np.array(self.repairs, dtype=np.uint8) if any(self.repairs) else None
        self.rows = {name: [] for name in self.schema}
        self.dropped = {name: [] for name in DROPPED_SCHEMA}
        self.repairs = []
        return Chunk(rows, dropped, repairs)


def stream_records(
    path: Union[str, Path],
    columns: Sequence[str],
    chunk_rows: int,
    source: str,
    convert: Callable[[dict, int, Builder], None],
    *,
    classes: int = 3,
    csv_json: Optional[Sequence[str]] = None,
) -> Iterator[Chunk]:
    """Read `path` record by record; `convert(record, row, builder)` adds a
    row or a drop for each, to a `Builder(source, classes)`. One chunk per
    `chunk_rows` input records. `csv_json`: as `containers.iter_records`
    (None: a CSV file is refused)."""
    row = 0
    for records in iter_records(path, columns, chunk_rows, csv_json):
        builder = Builder(source, classes)
        for record in records:
            if isinstance(record, BadRecord):
                builder.drop(id=None, row=row, reason="bad_record", detail=record.detail)
            else:
                convert(record, row, builder)
            row += 1
        yield builder.chunk()


# -- values --------------------------------------------------------------------------
def meta_text(meta: Any) -> str:
    """Row metadata as compact JSON text with sorted keys (as polars writes a
    struct); a number that is not finite becomes null (JSON has no NaN)."""
    return clean_text(json.dumps(_finite(meta), sort_keys=True, separators=(",", ":")))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def clean_text(text: str) -> str:
    """`text` with lone UTF-16 surrogates (which JSON can hold and UTF-8
    cannot) replaced by U+FFFD, the repair the Rust core makes."""
    return repair_text(text)[0]


def clean_turns(turns: Any) -> tuple[Any, int]:
    """A list of turns (str or None), or a JSON-text cell, cleaned; the repair bits."""
    if isinstance(turns, str):
        return repair_text(turns)
    if turns is None:
        return None, 0
    flags, out = 0, []
    for t in turns:
        if isinstance(t, str):
            t, f = repair_text(t)
            flags |= f
        out.append(t)
    return out, flags


def as_number(value: Any, keep_nan: bool = False) -> Optional[float]:
    """A finite-or-infinite float from a number or a numeric string (an
    integer past the float range is +-inf, as `float("1e400")`); None for
    anything else (bools, "N/A", None) and for NaN unless `keep_nan`."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf if value > 0 else -math.inf
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) and not keep_nan else number


def as_id(value: Any) -> Optional[str]:
    """An id value as a string (ints as written), None when missing."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return clean_text(value) if isinstance(value, str) else str(value)


def not_a_string(record: dict, columns: Sequence[str]) -> Optional[str]:
    """`"{column} is {kind}, not a string"` for the first of `columns` whose
    value is not a string (null included); None when all are strings."""
    for column in columns:
        value = record.get(column)
        if not isinstance(value, str):
            kind = "null" if value is None else type(value).__name__
            return f"{column} is {kind}, not a string"
    return None


def as_name(value: Any) -> Optional[str]:
    """A model name: a string, else None."""
    return clean_text(value) if isinstance(value, str) else None


class BadConversation(ValueError):
    """A conversation that is not a usable list of {role, content} turns."""


def split_turns(
    conversation: Any, what: str = "conversation", need_user: bool = True
) -> tuple[list, list]:
    """The user turns and the assistant turns of a message list (texts as
    they are: `Builder.add` cleans and counts them); a null content is kept
    as a null turn, other roles (system) are ignored. Raises BadConversation
    with a short detail."""
    if not isinstance(conversation, (list, tuple)):
        kind = "null" if conversation is None else type(conversation).__name__
        raise BadConversation(f"{what} is {kind}, not a list of {{role, content}}")
    users: list = []
    assistants: list = []
    for i, turn in enumerate(conversation):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise BadConversation(f"{what}[{i}] is not a {{role, content}} object")
        content = turn["content"]
        if content is not None and not isinstance(content, str):
            raise BadConversation(f"{what}[{i}].content is a {type(content).__name__}")
        role = turn["role"]
        if role == "user":
            users.append(content)
        elif role == "assistant":
            assistants.append(content)
    if need_user and not users:
        raise BadConversation(f"{what} has no user turn")
    if not assistants:
        raise BadConversation(f"{what} has no assistant turn")
    return users, assistants


def coin(seed: int, row: int) -> SplitMix64:
    """The generator of one record's random choices: SplitMix64 seeded with
    `seed`, its state then xor'ed with `row` (the packing planner's seeding
    with the row as the epoch). Its first draw's lowest bit is the A/B coin."""
    return SplitMix64(seed & MASK64, row & MASK64)


def first_is_a(seed: int, row: int) -> tuple[bool, SplitMix64]:
    """The A/B coin of record `row` (True: the first / chosen side is A) and
    the generator, for any further draws."""
    rng = coin(seed, row)
    return bool(rng.next() & 1), rng
