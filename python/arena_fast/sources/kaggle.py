"""The Kaggle competition's train.csv / test.csv, streamed with polars.

The text columns stay the JSON-list text of the file (String): the Rust core
parses them with its repairs, where a JSON decode here would lose the lone
surrogates the data holds. Everything is read as text (no schema inference),
so a winner cell that is not a number is a row-level problem, not a file
error."""

from __future__ import annotations

import csv
import gzip
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

import polars as pl

from ..errors import InputError
from ._common import (
    CANONICAL_SCHEMA,
    TEXT_COLUMNS,
    Chunk,
    check_columns,
    input_error,
    polars_batches,
)

__all__ = ["read", "WINNER_COLUMNS"]

SOURCE = "kaggle"
WINNER_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")
_READ_ERRORS = (pl.exceptions.PolarsError, OSError)
# A byte that is not UTF-8, as the surrogateescape error handler decodes it.
_ESCAPED = re.compile("[\udc80-\udcff]")


def read(path: Union[str, Path], *, chunk_rows: int = 16384, seed: int = 0) -> Iterator[Chunk]:
    """Chunks of canonical rows (text columns as JSON text) from a Kaggle
    CSV. `labels` from the three winner columns when the file has them
    (train.csv), else null (test.csv); `id` from the id column, else the
    row number. `seed` is unused (no random choice here)."""
    lf = pl.scan_csv(path, infer_schema=False)
    try:
        names = lf.collect_schema().names()
    except _READ_ERRORS as exc:
        raise input_error(path, exc) from None
    check_columns(path, SOURCE, names, TEXT_COLUMNS)
    labelled = any(c in names for c in WINNER_COLUMNS)
    if labelled:
        check_columns(path, SOURCE, names, WINNER_COLUMNS)
    wanted = ["id", "model_a", "model_b", *TEXT_COLUMNS, *WINNER_COLUMNS]
    lf = lf.select([c for c in wanted if c in names])
    return _chunks(lf, path, chunk_rows, names, labelled)


def _chunks(
    lf: pl.LazyFrame, path: Union[str, Path], chunk_rows: int, names: list, labelled: bool
) -> Iterator[Chunk]:
    row = 0
    try:
        for batch in polars_batches(lf, path, chunk_rows):
            yield _convert(batch, row, names, labelled)
            row += batch.height
    except InputError as exc:
        # polars names no record; find it (a second read, on the error path only).
        raise (_locate(path) or exc) from None


def _locate(path: Union[str, Path]) -> Optional[InputError]:
    """The first record of a CSV that polars refused for a reason we can
    name: invalid UTF-8 (row, column, byte) or more fields than the header.
    None when there is none (the caller keeps polars' message)."""
    opener: Any = gzip.open if str(path).lower().endswith(".gz") else open
    csv.field_size_limit(sys.maxsize)
    # surrogateescape keeps invalid bytes as U+DC80..U+DCFF, where they can be found.
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return None
        bad = _invalid_byte(header)
        if bad is not None:
            return InputError(f"{path}: the header: invalid utf-8 (byte 0x{bad[1]:02x})")
        for row, record in enumerate(reader):
            where = f"row {row} (line {reader.line_num})"
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


def _convert(batch: pl.DataFrame, row: int, names: list, labelled: bool) -> Chunk:
    """One batch of CSV text rows as canonical rows plus dropped rows."""
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
    dropped = df.filter(pl.col("_reason").is_not_null()).select(
        pl.lit(SOURCE, dtype=string).alias("source"),
        pl.col("id"),
        pl.col("row"),
        pl.lit(1, dtype=pl.Int32).alias("input_rows"),
        pl.col("_reason").alias("reason"),
        pl.col("_detail").alias("detail"),
    )
    return Chunk(rows, dropped)
