"""The Kaggle competition's train.csv / test.csv, streamed with polars; the
same columns as parquet, JSON or JSON lines (`_record_chunks`: each batch
made into the CSV path's text frame, then the same `_convert`); labels from
the three winner_* columns or a `winner` string column.

The text columns stay the JSON-list text of the file (String): the Rust core
parses them with its repairs, where a JSON decode here would lose the lone
surrogates the data holds. Everything is read as text (no schema inference),
so a winner cell that is not a number is a row-level problem, not a file
error.

A cell larger than MAX_TURN_BYTES never reaches polars whole (docs/dataset.md,
"Sources", kaggle): one streaming pass (`_core.clip_csv_cells`) finds such cells,
and only when there are some, polars reads a temporary copy of the file in
which each text cell holds the same turns already clipped (REPAIR_CLIPPED),
streamed and clipped while parsed, so memory stays bounded by the clip, not
by the cell."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import re
import secrets
import sys
import tempfile
import weakref
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import polars as pl

from .. import _core
from ..errors import InputError
from ..labels import CLASS_COLUMNS
from ..rows import TEXT_COLUMNS
from ..text import MAX_TURN_BYTES
from ._common import (
    CANONICAL_SCHEMA,
    DROPPED_SCHEMA,
    READ_DEFAULTS,
    Chunk,
    ReadOptions,
    as_id,
    check_columns,
    clean_text,
)
from .arena33k import WINNERS
from .containers import (
    BadRecord,
    check_csv_text,
    columns_of,
    container,
    invalid_byte,
    iter_records,
    parquet_columns,
    polars_batches,
)
from .streams import (
    compression,
    decompressed_copy,
    input_error,
    remove_quietly,
)

__all__ = ["COLUMNS", "WINNERS", "WINNER_COLUMNS", "read"]

SOURCE = "kaggle"
WINNER_COLUMNS = CLASS_COLUMNS
# The columns of the competition's train.csv, in its order (test.csv has
# `id` and the text columns); `arena_fast.synth` writes this header.
COLUMNS = ("id", "model_a", "model_b", *TEXT_COLUMNS, *WINNER_COLUMNS)
# A `winner` string column where the three winner_* columns are expected
# (the 33k file's values; the three columns win when a file has both).
WINNER_INDEX = {name: labels.index(1.0) for name, labels in WINNERS.items()}
_READ = (*COLUMNS, "winner")
_READ_ERRORS = (pl.exceptions.PolarsError, OSError)
# Cells larger than these (raw bytes, quotes included) are not read whole:
# a text cell is streamed and its turns clipped (no turn of a smaller cell
# can need the clip); another cell is an error, or emptied in a column that
# is not read. Module attributes so that tests can lower them.
_TEXT_CELL_BYTES = MAX_TURN_BYTES
_CELL_BYTES = MAX_TURN_BYTES
# What the format checks look at: the start of the (decompressed) file.
_HEAD_BYTES = 1 << 16
# A text cell written by Python's str() of a list, not by json.dumps.
_PYTHON_LIST = r"^\s*\[\s*(?:'|None\s*[,\]])"


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows (text columns as JSON text, or turn lists
    where a parquet / JSON file holds lists) from a Kaggle file: CSV (also
    .gz / .zst), parquet, JSON or JSON lines. `labels` from the three
    winner columns when the file has them (train.csv), else from a
    `winner` string column (`WINNERS`), else null (test.csv); `id` from the
    id column, else the row number. `seed` and `options` are unused."""
    kind = container(path)
    if kind != "csv":
        return _record_chunks(path, kind, chunk_rows)
    copy = decompressed_copy(path, ".csv") if compression(path) == "zstd" else None
    if copy is None:
        return _read_csv(path, chunk_rows)
    # zstd, which the long-cell scan does not read: a plain temporary copy.
    try:
        return _renamed(_read_csv(copy, chunk_rows), copy, path)
    except InputError as exc:
        remove_quietly(copy)
        raise InputError(str(exc).replace(copy, str(path))) from None
    except BaseException:
        remove_quietly(copy)
        raise


def _renamed(chunks: Iterator[Chunk], copy: str, path: Union[str, Path]) -> Iterator[Chunk]:
    """`chunks` of the temporary copy `copy`, its errors naming `path`; the
    copy removed at the end."""
    try:
        yield from chunks
    except InputError as exc:
        raise InputError(str(exc).replace(copy, str(path))) from None
    finally:
        remove_quietly(copy)


def _winner_mode(path: Union[str, Path], names: Sequence[str]) -> Optional[str]:
    """ "columns" (the three winner_* columns), "winner" (a winner string
    column) or None (unlabelled); InputError for one or two winner_* columns."""
    if any(c in names for c in WINNER_COLUMNS):
        check_columns(path, SOURCE, names, WINNER_COLUMNS)
        return "columns"
    return "winner" if "winner" in names else None


def _read_csv(path: Union[str, Path], chunk_rows: int) -> Iterator[Chunk]:
    _check_text(path)
    clipped = _Clipped.of(path)
    lf = pl.scan_csv(path if clipped is None else clipped.path, infer_schema=False)
    try:
        try:
            names = lf.collect_schema().names()
        except _READ_ERRORS as exc:
            raise input_error(path, exc) from None
        check_columns(path, SOURCE, names, TEXT_COLUMNS)
        labelled = _winner_mode(path, names)
    except BaseException:
        if clipped is not None:
            clipped.remove()
        raise
    lf = lf.select([c for c in _READ if c in names])
    return _chunks(lf, path, chunk_rows, names, labelled, clipped)


def _chunks(
    lf: pl.LazyFrame,
    path: Union[str, Path],
    chunk_rows: int,
    names: list,
    labelled: Optional[str],
    clipped: Optional[_Clipped],
) -> Iterator[Chunk]:
    row = 0
    try:
        for batch in polars_batches(lf, path, chunk_rows):
            yield _convert(batch, row, path, names, labelled, clipped)
            row += batch.height
    except InputError as exc:
        # polars names no record; find it (a second read, on the error path only).
        raise (_locate(path, clipped) or exc) from None
    finally:
        if clipped is not None:
            clipped.remove()
    if clipped is not None and row != clipped.rows:
        # The scan and polars split the records differently (a stray quote):
        # the clipped cells' flags could be on the wrong rows.
        raise InputError(
            f"{path}: polars read {row} rows, the scan for long cells {clipped.rows}: "
            "a stray quote in an unquoted cell?"
        )


# -- parquet, JSON, JSON lines --------------------------------------------------------
def _record_chunks(path: Union[str, Path], kind: str, chunk_rows: int) -> Iterator[Chunk]:
    """A Kaggle-layout parquet / JSON file: its rows as the CSV path's text
    frames (`_convert`): parquet read by polars, its text columns as they
    are (JSON-list text or lists of strings), JSON records made into text."""
    if kind == "parquet":
        names = parquet_columns(path)
        schema = pl.scan_parquet(path).collect_schema()
        _check_kinds(path, schema)
    else:
        names = columns_of(path)
    check_columns(path, SOURCE, names, TEXT_COLUMNS)
    labelled = _winner_mode(path, names)
    wanted = [c for c in _READ if c in names]
    if kind == "parquet":
        return _parquet_chunks(path, names, wanted, labelled, chunk_rows)
    return _json_chunks(path, names, wanted, labelled, chunk_rows)


def _check_kinds(path: Union[str, Path], schema: Any) -> None:
    """InputError for a parquet text column that is neither text nor a list of text."""
    for name in TEXT_COLUMNS:
        dtype = schema.get(name)
        if dtype is None or dtype == pl.String or dtype == pl.List(pl.String):
            continue
        raise InputError(
            f"{path}: column {name} is {dtype}: expected JSON-list text or a list of strings"
        )


def _parquet_chunks(
    path: Union[str, Path],
    names: list,
    wanted: list,
    labelled: Optional[str],
    chunk_rows: int,
) -> Iterator[Chunk]:
    schema = pl.scan_parquet(path).collect_schema()
    lf = pl.scan_parquet(path).select(
        pl.col(c) if c in TEXT_COLUMNS else _as_text(c, schema[c]) for c in wanted
    )
    row = 0
    for batch in polars_batches(lf, path, chunk_rows):
        yield _convert(batch, row, path, names, labelled, None)
        row += batch.height


def _as_text(name: str, dtype: Any) -> pl.Expr:
    """A non-text column as the CSV path's strings (ids and winner numbers
    as written; an integral float id without its `.0`)."""
    column = pl.col(name)
    if dtype.is_float() and name == "id":
        column = pl.when(column == column.round()).then(column.cast(pl.Int64)).otherwise(column)
    return column.cast(pl.String, strict=False).alias(name)


def _json_chunks(
    path: Union[str, Path],
    names: list,
    wanted: list,
    labelled: Optional[str],
    chunk_rows: int,
) -> Iterator[Chunk]:
    row = 0
    for records in iter_records(path, wanted, chunk_rows):
        kept: dict[str, list] = {c: [] for c in (*wanted, "row")}
        bad: list[tuple[int, str]] = []
        for record in records:
            if isinstance(record, BadRecord):
                bad.append((row, record.detail))
            else:
                for c in wanted:
                    kept[c].append(_json_cell(c, record.get(c)))
                kept["row"].append(row)
            row += 1
        frame = pl.DataFrame(kept, schema={**{c: pl.String for c in wanted}, "row": pl.Int64})
        chunk = _convert(frame, row, path, names, labelled, None)
        if bad:
            chunk.dropped = pl.concat([chunk.dropped, _bad_records(bad)])
        yield chunk


def _json_cell(name: str, value: Any) -> Optional[str]:
    """A JSON record's value as the CSV cell it would be: text as it is (a
    lone surrogate as U+FFFD), a list or other value as JSON text (ASCII,
    so that the core sees and repairs lone surrogates), ids as written."""
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if name == "id":
        return as_id(value)
    if name in ("model_a", "model_b"):
        return None  # not a name
    return json.dumps(value)


def _bad_records(bad: list) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": [SOURCE] * len(bad),
            "id": [None] * len(bad),
            "row": [r for r, _ in bad],
            "input_rows": [1] * len(bad),
            "reason": ["bad_record"] * len(bad),
            "detail": [d for _, d in bad],
        },
        schema=DROPPED_SCHEMA,
    )


# -- CSV -----------------------------------------------------------------------------
class _Clipped:
    """The copy of a CSV whose cells over the limits were replaced
    (`_core.clip_csv_cells`), a temporary file removed with this object,
    and what the replacing found, by data row."""

    path: str
    rows: int
    repaired: dict[int, int]
    bad: dict[int, tuple[str, str]]
    lines_removed: list[tuple[int, int]]

    @classmethod
    def of(cls, path: Union[str, Path]) -> Optional[_Clipped]:
        """The copy of `path`, or None when no cell is over the limits (the
        common case: one fast pass, or none for a small plain file)."""
        limit = min(_TEXT_CELL_BYTES, _CELL_BYTES)
        if not _is_gzip(path) and os.path.getsize(path) <= limit:
            return None
        self = cls()
        # A new name: the core creates the file exclusively (O_EXCL), only
        # when there is a long cell.
        name = f"arena-fast-{os.getpid()}-{secrets.token_hex(8)}.csv"
        self.path = os.path.join(tempfile.gettempdir(), name)
        self._cleanup = weakref.finalize(self, _remove, self.path)
        read = [c for c in _READ if c not in TEXT_COLUMNS]
        try:
            found = _core.clip_csv_cells(
                str(path), self.path, list(TEXT_COLUMNS), read, _TEXT_CELL_BYTES, _CELL_BYTES
            )
        except BaseException:
            self.remove()
            raise
        if found is None:
            self._cleanup.detach()
            return None
        self.rows = found["rows"]
        self.repaired = {}
        for row, flags in found["repaired"]:
            self.repaired[row] = self.repaired.get(row, 0) | flags
        # The first bad column in prompt, response_a, response_b order, as
        # the core's parse of the row would name it.
        self.bad = {}
        for row, column, message in sorted(
            found["bad"], key=lambda b: (b[0], TEXT_COLUMNS.index(b[1]))
        ):
            self.bad.setdefault(row, (column, message))
        self.lines_removed = found["lines_removed"]
        return self

    def remove(self) -> None:
        self._cleanup()

    def line(self, row: int, line: int) -> int:
        """The file's line number of a line of `row` in the copy."""
        return line + sum(n for r, n in self.lines_removed if r <= row)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _is_gzip(path: Union[str, Path]) -> bool:
    """Whether the file starts with gzip's magic bytes (how polars and the
    core decide to decompress)."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _check_text(path: Union[str, Path]) -> None:
    """InputError for a file that is not UTF-8 CSV (`check_csv_text`)."""
    try:
        opener: Any = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise input_error(path, exc) from None
    check_csv_text(path, head)


def _locate(path: Union[str, Path], clipped: Optional[_Clipped] = None) -> Optional[InputError]:
    """The first record of a CSV that polars refused for a reason we can
    name: invalid UTF-8 (row, column, byte) or more fields than the header.
    None when there is none (the caller keeps polars' message). With
    `clipped`, polars read its copy: that is searched, the file named."""
    source = path if clipped is None else clipped.path
    opener: Any = gzip.open if _is_gzip(source) else open
    csv.field_size_limit(sys.maxsize)
    # surrogateescape keeps invalid bytes as U+DC80..U+DCFF, where they can be found.
    with opener(source, "rt", encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return None
        bad = invalid_byte(header)
        if bad is not None:
            return InputError(f"{path}: the header: invalid utf-8 (byte 0x{bad[1]:02x})")
        for row, record in enumerate(reader):
            line = reader.line_num if clipped is None else clipped.line(row, reader.line_num)
            where = f"row {row} (line {line})"
            bad = invalid_byte(record)
            if bad is not None:
                column = header[bad[0]] if bad[0] < len(header) else f"#{bad[0] + 1}"
                return InputError(
                    f"{path}: {where}, column {column}: invalid utf-8 (byte 0x{bad[1]:02x})"
                )
            if len(record) > len(header):
                return InputError(
                    f"{path}: {where} has {len(record)} fields, the header {len(header)}"
                )
    return None


def _convert(
    batch: pl.DataFrame,
    row: int,
    path: Union[str, Path],
    names: list,
    labelled: Optional[str],
    clipped: Optional[_Clipped],
) -> Chunk:
    """One batch of text rows (a `row` column of record numbers, else rows
    counted from `row`) as canonical rows plus dropped rows. Text columns
    are JSON text, or turn lists passed as they are."""
    _check_json_lists(batch, row, path)
    string = pl.String()
    df = batch
    if "row" not in batch.columns:
        df = df.with_columns(pl.int_range(row, row + batch.height, dtype=pl.Int64).alias("row"))
    ident = pl.col("id") if "id" in names else pl.col("row").cast(string)
    df = df.with_columns(ident.alias("id"))
    reason: Any = pl.when(pl.col("id").is_null()).then(pl.lit("missing_id"))
    detail: Any = pl.when(pl.col("id").is_null()).then(pl.lit("the id cell is empty"))
    if labelled == "columns":
        numbers = [
            pl.col(c).str.strip_chars().cast(pl.Float64, strict=False) for c in WINNER_COLUMNS
        ]
        present = [pl.col(c).is_not_null() for c in WINNER_COLUMNS]
        not_numeric = pl.any_horizontal([p & n.is_null() for p, n in zip(present, numbers)])
        # In a file with winner columns every row needs its three numbers:
        # empty cells are not "unlabelled" (that is a file without them).
        missing = ~pl.all_horizontal(present)
        bad = not_numeric | missing
        cells = ", ".join(f"{c}={{}}" for c in WINNER_COLUMNS)
        reason = reason.when(bad).then(pl.lit("bad_labels"))
        detail = detail.when(bad).then(
            pl.format(
                f"{cells}: not three numbers",
                *(pl.col(c).fill_null("<empty>") for c in WINNER_COLUMNS),
            )
        )
        labels = pl.concat_list(numbers).list.to_array(3)
    elif labelled == "winner":
        labels, bad = _winner_labels()
        reason = reason.when(bad).then(pl.lit("bad_winner"))
        detail = detail.when(bad).then(
            pl.format(
                f"winner {{}} is not one of {list(WINNERS)}",
                pl.col("winner").fill_null("<empty>"),
            )
        )
    else:
        labels = pl.lit(None, dtype=CANONICAL_SCHEMA["labels"])
    bad_text = {} if clipped is None else _in_batch(clipped.bad, row, batch.height)
    if bad_text:
        # A streamed text cell that is not a JSON list: what the core's
        # parse of the row would say (dataset.py's bad_text).
        hit = pl.col("row").is_in(list(bad_text))
        messages = {r: f"column {c}: {m}" for r, (c, m) in bad_text.items()}
        reason = reason.when(hit).then(pl.lit("bad_text"))
        detail = detail.when(hit).then(
            pl.col("row").replace_strict(messages, default=None, return_dtype=string)
        )
    df = df.with_columns(
        reason.otherwise(pl.lit(None, dtype=string)).alias("_reason"),
        detail.otherwise(pl.lit(None, dtype=string)).alias("_detail"),
    )
    kept = df.filter(pl.col("_reason").is_null())
    rows = kept.select(
        pl.col("id"),
        pl.lit(SOURCE, dtype=string).alias("source"),
        *(
            (pl.col(c) if c in names else pl.lit(None, dtype=string)).alias(c)
            for c in ("model_a", "model_b")
        ),
        *(pl.col(c) for c in TEXT_COLUMNS),
        labels.alias("labels"),
        pl.lit(None, dtype=CANONICAL_SCHEMA["teacher_logits"]).alias("teacher_logits"),
        pl.col("row"),
        pl.lit(1, dtype=pl.Int32).alias("input_rows"),
    )
    repaired = {} if clipped is None else _in_batch(clipped.repaired, row, batch.height)
    repairs = None
    kept_rows = rows["row"].to_numpy()
    if repaired and len(kept_rows):
        # The streamed cells' flags (the copy's text is already clipped).
        wanted = np.fromiter(repaired, dtype=np.int64)
        at = np.minimum(np.searchsorted(kept_rows, wanted), len(kept_rows) - 1)
        found = kept_rows[at] == wanted
        repairs = np.zeros(len(kept_rows), dtype=np.uint8)
        repairs[at[found]] = np.fromiter(repaired.values(), dtype=np.uint8)[found]
    dropped = df.filter(pl.col("_reason").is_not_null()).select(
        pl.lit(SOURCE, dtype=string).alias("source"),
        pl.col("id"),
        pl.col("row"),
        pl.lit(1, dtype=pl.Int32).alias("input_rows"),
        pl.col("_reason").alias("reason"),
        pl.col("_detail").alias("detail"),
    )
    return Chunk(rows, dropped, repairs)


def _winner_labels() -> tuple[pl.Expr, pl.Expr]:
    """The labels of a `winner` string column, and where its value is not
    one of `WINNERS` (surrounding spaces aside)."""
    index = (
        pl.col("winner")
        .str.strip_chars()
        .replace_strict(
            {name: WINNER_INDEX[name] for name in WINNERS}, default=None, return_dtype=pl.Int8
        )
    )
    labels = pl.concat_list([(index == k).cast(pl.Float64) for k in range(3)]).list.to_array(3)
    return labels, index.is_null()


def _in_batch(by_row: dict, row: int, height: int) -> dict:
    return {r: v for r, v in by_row.items() if row <= r < row + height}


def _check_json_lists(batch: pl.DataFrame, row: int, path: Union[str, Path]) -> None:
    """InputError when most rows of the batch hold Python lists (`['hi']`,
    `[None]`: str() of a list) where JSON lists belong; a row or two stay
    row-level bad_text drops."""
    texts = [c for c in TEXT_COLUMNS if batch.schema[c] == pl.String]
    if not texts:
        return
    looks = [pl.col(c).str.contains(_PYTHON_LIST).fill_null(False) for c in texts]
    hits = batch.with_row_index("_i").filter(pl.any_horizontal(looks))
    if hits.height * 2 <= batch.height or hits.height == 0:
        return
    first = hits.row(0, named=True)
    column = next(c for c in texts if re.match(_PYTHON_LIST, first[c] or ""))
    raise InputError(
        f"{path}: text cells are Python lists, not JSON (row {row + first['_i']}, "
        f"column {column}: {first[column][:40]!r}): write them with json.dumps, not str()"
    )
