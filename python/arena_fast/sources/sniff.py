"""What format detection looks at, and the signatures formats register.

`Sample` is one file as detection sees it, read lazily and only as far as
needed: its container, its column names and its first record's values (a
CSV value may be its cell's start only; `Sample.nested` parses a CSV cell's
JSON text, as the readers of nested columns do). A format's signature is a
predicate `Sample -> Optional[str]`: the human reason it matches ("columns
prompt/response_a/response_b hold JSON lists, winner_* columns"), or None.
The table of formats, in priority order, is `sources.__init__._FORMATS`;
the helpers here keep each signature to a line or two."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from .containers import (
    check_parquet_expansion,
    columns_of,
    container,
    csv_cell,
    first_record,
)
from .streams import (
    input_error,
)

__all__ = ["Detection", "FormatSpec", "Sample", "is_list_text", "is_plain_text", "joined"]


@dataclass(frozen=True)
class Detection:
    """The format detected for a file, and why (shown to the user, recorded
    in the manifest)."""

    format: str
    reason: str


class Sample:
    """One file as format detection sees it. `columns` and `first` are read
    on first use: a signature that looks at column names only reads no
    record."""

    def __init__(self, path: Union[str, Path]):
        self.path = path
        self.container = container(path)  # csv, parquet, json, jsonl

    @cached_property
    def columns(self) -> list[str]:
        return columns_of(self.path)

    @cached_property
    def first(self) -> dict:
        """The first record's values ({} for a file without records)."""
        if self.container == "parquet":
            return _parquet_first(self.path)
        return first_record(self.path) or {}

    def has(self, *names: str) -> bool:
        """Whether the file has all of `names` as columns."""
        return all(n in self.columns for n in names)

    def value(self, name: str) -> Any:
        """The first record's value of column `name` (None when absent)."""
        return self.first.get(name)

    def nested(self, name: str) -> Any:
        """`value(name)` of a column that holds nested values: a CSV cell's
        JSON text parsed as its reader parses it (`containers.csv_cell`;
        a cell cut at the sampled bytes, or not JSON, stays text)."""
        value = self.value(name)
        return csv_cell(value) if self.container == "csv" and isinstance(value, str) else value

    def values(self, *names: str) -> Iterator[Any]:
        """The first record's non-null values of `names`."""
        return (v for v in map(self.value, names) if v is not None)


def _parquet_first(path: Union[str, Path]) -> dict:
    check_parquet_expansion(path)
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1)
        batch = next(batches, None)
    except (OSError, pa.ArrowException) as exc:
        raise input_error(path, exc) from None
    rows = [] if batch is None else batch.to_pylist()
    return rows[0] if rows else {}


Signature = Callable[[Sample], Optional[str]]


@dataclass(frozen=True)
class FormatSpec:
    """One format: its name, its reader (`read(path, *, chunk_rows, seed,
    options)`), its signature (None: only given as PATH:FORMAT) and, for
    the error that lists what was expected, its columns in words."""

    name: str
    read: Callable[..., Any]
    signature: Optional[Signature]
    expects: str
    # The columns every file of the format has: a file holding most of them
    # but not all is told which are missing (a near miss, not an unknown layout).
    columns: tuple = ()


# A JSON list of strings as text: `["a", ...]`, `[null]`, `[]` (the cell's
# start is enough: a CSV value may be cut).
_LIST_TEXT = re.compile(r"\s*\[\s*(?:\"|null\b|\])")
# str() of a Python list: the Kaggle reader names that mistake itself.
_PYTHON_LIST = re.compile(r"\s*\[\s*(?:'|None\b)")


def is_list_text(value: Any) -> bool:
    """A text value holding a JSON list (or a Python list's str()) of
    turns, the way Kaggle's cells do; a list of strings itself counts."""
    if isinstance(value, list):
        return all(v is None or isinstance(v, str) for v in value)
    return isinstance(value, str) and bool(_LIST_TEXT.match(value) or _PYTHON_LIST.match(value))


def is_plain_text(value: Any) -> bool:
    """A string that is not a list of turns as text."""
    return isinstance(value, str) and not is_list_text(value)


def joined(names: Any) -> str:
    return "/".join(names)


def _near_miss(seen: Any, specs: Any) -> Optional[tuple[str, list]]:
    """(format, its missing columns) of the format of which the file holds
    the most columns, at least half of them; None when none comes close."""
    best = None
    for spec in specs:
        if not spec.columns:
            continue
        have = [c for c in spec.columns if c in seen]
        missing = [c for c in spec.columns if c not in seen]
        if missing and 2 * len(have) >= len(spec.columns):
            if best is None or len(have) > best[0]:
                best = (len(have), spec.name, missing)
    return None if best is None else (best[1], best[2])


def detect_with(path: Union[str, Path], specs: Any) -> Detection:
    """The first of `specs` (in order) whose signature matches `path`;
    one-line InputError naming the columns seen and the layouts expected."""
    if not Path(path).is_file():
        raise InputError(
            f"{path}: no such file" if not Path(path).exists() else f"{path}: not a file"
        )
    try:
        sample = Sample(path)
    except InputError as exc:
        names = ", ".join(s.name for s in specs)
        raise InputError(f"{exc}; or give it as PATH:FORMAT, FORMAT one of {names}") from None
    for spec in specs:
        if spec.signature is not None:
            reason = spec.signature(sample)
            if reason is not None:
                return Detection(spec.name, f"{sample.container}: {reason}")
    near = _near_miss(sample.columns, specs)
    if near is not None:
        name, missing = near
        raise InputError(
            f"{path}: missing column(s) {missing} for format {name} "
            f"(columns seen: {sample.columns})"
        )
    expected = "; ".join(f"{s.name}: {s.expects}" for s in specs if s.signature is not None)
    raise InputError(
        f"{path}: unknown column layout (columns seen: {sample.columns}); "
        f"expected the columns of {expected}"
    )
