"""The Kaggle competition's train.csv / test.csv, streamed with polars.

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
import os
import re
import secrets
import sys
import tempfile
import weakref
import zlib
from collections.abc import Iterator
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
    READ_DEFAULTS,
    Chunk,
    ReadOptions,
    check_columns,
)
from .containers import (
    check_csv_text,
    input_error,
    polars_batches,
)

__all__ = ["COLUMNS", "read", "WINNER_COLUMNS"]

SOURCE = "kaggle"
WINNER_COLUMNS = CLASS_COLUMNS
# The columns of the competition's train.csv, in its order (test.csv has
# `id` and the text columns); `arena_fast.synth` writes this header.
COLUMNS = ("id", "model_a", "model_b", *TEXT_COLUMNS, *WINNER_COLUMNS)
_READ_ERRORS = (pl.exceptions.PolarsError, OSError)
# A byte that is not UTF-8, as the surrogateescape error handler decodes it.
_ESCAPED = re.compile("[\udc80-\udcff]")
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
    """Chunks of canonical rows (text columns as JSON text) from a Kaggle
    CSV. `labels` from the three winner columns when the file has them
    (train.csv), else null (test.csv); `id` from the id column, else the
    row number. `seed` is unused (no random choice here)."""
    _check_text(path)
    clipped = _Clipped.of(path)
    lf = pl.scan_csv(path if clipped is None else clipped.path, infer_schema=False)
    try:
        try:
            names = lf.collect_schema().names()
        except _READ_ERRORS as exc:
            raise input_error(path, exc) from None
        check_columns(path, SOURCE, names, TEXT_COLUMNS)
        labelled = any(c in names for c in WINNER_COLUMNS)
        if labelled:
            check_columns(path, SOURCE, names, WINNER_COLUMNS)
    except BaseException:
        if clipped is not None:
            clipped.remove()
        raise
    lf = lf.select([c for c in COLUMNS if c in names])
    return _chunks(lf, path, chunk_rows, names, labelled, clipped)


def _chunks(
    lf: pl.LazyFrame,
    path: Union[str, Path],
    chunk_rows: int,
    names: list,
    labelled: bool,
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
        read = [c for c in COLUMNS if c not in TEXT_COLUMNS]
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
        bad = _invalid_byte(header)
        if bad is not None:
            return InputError(f"{path}: the header: invalid utf-8 (byte 0x{bad[1]:02x})")
        for row, record in enumerate(reader):
            line = reader.line_num if clipped is None else clipped.line(row, reader.line_num)
            where = f"row {row} (line {line})"
            bad = _invalid_byte(record)
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


def _invalid_byte(record: list) -> Optional[tuple[int, int]]:
    """(field index, byte) of the first byte that was not UTF-8, if any."""
    for i, cell in enumerate(record):
        found = _ESCAPED.search(cell)
        if found is not None:
            return i, ord(found.group()) - 0xDC00
    return None


def _convert(
    batch: pl.DataFrame,
    row: int,
    path: Union[str, Path],
    names: list,
    labelled: bool,
    clipped: Optional[_Clipped],
) -> Chunk:
    """One batch of CSV text rows as canonical rows plus dropped rows."""
    _check_json_lists(batch, row, path)
    string = pl.String()
    df = batch.with_columns(pl.int_range(row, row + batch.height, dtype=pl.Int64).alias("row"))
    ident = pl.col("id") if "id" in names else pl.col("row").cast(string)
    df = df.with_columns(ident.alias("id"))
    reason: Any = pl.when(pl.col("id").is_null()).then(pl.lit("missing_id"))
    detail: Any = pl.when(pl.col("id").is_null()).then(pl.lit("the id cell is empty"))
    if labelled:
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


def _in_batch(by_row: dict, row: int, height: int) -> dict:
    return {r: v for r, v in by_row.items() if row <= r < row + height}


def _check_json_lists(batch: pl.DataFrame, row: int, path: Union[str, Path]) -> None:
    """InputError when most rows of the batch hold Python lists (`['hi']`,
    `[None]`: str() of a list) where JSON lists belong; a row or two stay
    row-level bad_text drops."""
    looks = [pl.col(c).str.contains(_PYTHON_LIST).fill_null(False) for c in TEXT_COLUMNS]
    hits = batch.with_row_index("_i").filter(pl.any_horizontal(looks))
    if hits.height * 2 <= batch.height or hits.height == 0:
        return
    first = hits.row(0, named=True)
    column = next(c for c in TEXT_COLUMNS if re.match(_PYTHON_LIST, first[c] or ""))
    raise InputError(
        f"{path}: text cells are Python lists, not JSON (row {row + first['_i']}, "
        f"column {column}: {first[column][:40]!r}): write them with json.dumps, not str()"
    )
