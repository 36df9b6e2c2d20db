"""File containers as streams of records: parquet (its schema, streamed
batches, the compression-bomb check), one JSON array, JSON lines, CSV (its
cells as text, or parsed JSON for the columns a reader names); their gzip /
zstd compressed forms (`.gz`, `.zst`, undone by `streams.py`).

JSON lines and CSV records stream through the decompressor, so memory
stays bounded by a chunk of records, not by the file or what its bytes
expand to. A compressed JSON array is read whole, refused past the
compression-bomb bound; a compressed parquet file is refused (parquet
compresses its pages itself)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple, Optional, Union

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..text import shorten
from .streams import (
    COMPRESSED_SUFFIXES,
    PARQUET_BOMB_BYTES,
    PARQUET_MAX_EXPANSION,
    base_name,
    compression,
    input_error,
    one_line,
    open_binary,
    read_bounded,
)


def polars_batches(lf: pl.LazyFrame, path: Union[str, Path], chunk_rows: int):
    """The frames of `lf`, streamed, each of at most `chunk_rows` rows; read
    errors (a broken quote, a truncated file) become one-line InputErrors.
    Only the read is guarded: errors raised into the consumer pass through."""
    batches = iter(lf.collect_batches(chunk_size=chunk_rows))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pl.exceptions.PolarsError, OSError, pa.ArrowException) as exc:
            raise input_error(path, exc) from None
        for start in range(0, batch.height, chunk_rows):
            yield batch.slice(start, chunk_rows)


def parquet_columns(path: Union[str, Path]) -> list[str]:
    """The column names of a parquet file, after `check_parquet_expansion`."""
    try:
        names = list(pl.scan_parquet(path).collect_schema().names())
    except (pl.exceptions.PolarsError, OSError, pa.ArrowException) as exc:
        raise input_error(path, exc) from None
    check_parquet_expansion(path)
    return names


def check_parquet_expansion(path: Union[str, Path]) -> None:
    """Refuse, from the file's metadata alone, a parquet column chunk that
    decompresses to over `PARQUET_BOMB_BYTES` and over
    `PARQUET_MAX_EXPANSION` times its stored size: memory stays bounded by
    the input's size, not by what its bytes expand to."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException) as exc:
        raise input_error(path, exc) from None
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            size, stored = chunk.total_uncompressed_size, chunk.total_compressed_size
            if size > PARQUET_BOMB_BYTES and size > PARQUET_MAX_EXPANSION * max(stored, 1):
                raise InputError(
                    f"{path}: row group {g}, column {chunk.path_in_schema}: {size:,} bytes "
                    f"decompressed from {stored:,} (over {PARQUET_MAX_EXPANSION} times, past "
                    f"{PARQUET_BOMB_BYTES >> 20} MiB): refused, as a compression bomb would be"
                )


# -- containers: parquet, JSON array, JSON lines -------------------------------------
class BadRecord(NamedTuple):
    """A record of a JSON file that is not a JSON object."""

    detail: str


Record = Union[dict, BadRecord]


CONTAINER_SUFFIXES = (".csv", ".parquet", ".json", ".jsonl", ".ndjson")


def container(path: Union[str, Path]) -> str:
    """ "parquet", "csv", "json" (one JSON array) or "jsonl", from the
    extension (a .gz / .zst suffix aside) and, for .json, the first
    character (the `datasets` library writes JSON lines to .json files).
    A compressed parquet file is refused."""
    name = base_name(path)
    if name.endswith(".parquet"):
        if compression(path) is not None:
            raise InputError(
                f"{path}: a compressed parquet file: parquet compresses its pages itself; "
                "decompress the file (gunzip / unzstd) and give the .parquet"
            )
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        with open_binary(path) as f:
            try:
                head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
            except (OSError, EOFError, pa.ArrowException) as exc:
                raise input_error(path, exc) from None
        return "json" if head.startswith(b"[") else "jsonl"
    raise InputError(
        f"{path}: expected a {', '.join(CONTAINER_SUFFIXES)} file "
        f"(or one of those compressed: {', '.join(COMPRESSED_SUFFIXES)})"
    )


def _json_lines(path: Union[str, Path], only: Optional[set] = None) -> Iterator[Any]:
    """The records of a JSON-lines file, blank lines skipped; a line that is
    not a JSON object comes as a BadRecord (it does not stop the file).
    With `only`, records whose index is not in it come as None, unparsed."""
    with open_binary(path) as f:
        first = True
        row = -1
        for line in _lines(path, f):
            if first and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            first = False
            if not line.strip():
                continue
            row += 1
            if only is not None and row not in only:
                yield None
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield BadRecord(f"not valid JSON: {one_line(str(exc), 120)}")
                continue
            except RecursionError:
                yield BadRecord(_TOO_DEEP)
                continue
            yield value if isinstance(value, dict) else BadRecord(_not_object(value))


def _lines(path: Union[str, Path], f: IO[bytes]) -> Iterator[bytes]:
    """The lines of `f`; a corrupt compressed stream is a one-line InputError."""
    while True:
        try:
            line = f.readline()
        except (OSError, EOFError, pa.ArrowException) as exc:
            raise input_error(path, exc) from None
        if not line:
            return
        yield line


# Python's JSON parser recurses once per nesting level; past the
# interpreter's limit (about 1,000) it raises RecursionError.
_TOO_DEEP = "not valid JSON: nested too deeply"


def _not_object(value: Any) -> str:
    return f"a JSON {type(value).__name__}, not an object"


def _json_array(path: Union[str, Path]) -> list:
    """A whole .json file holding one array (read at once)."""
    try:
        with open_binary(path) as f:
            data = json.loads(read_bounded(path, f).decode("utf-8-sig"))
    except (OSError, ValueError, EOFError, pa.ArrowException) as exc:
        raise input_error(path, exc) from None
    except RecursionError:
        # One array: a record nested too deeply leaves no way to find the next.
        raise InputError(f"{path}: cannot read: {_TOO_DEEP}") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON array of records, got a {type(data).__name__}")
    return data


def first_record(path: Union[str, Path]) -> Optional[dict]:
    """The first record of a JSON / JSON-lines / CSV file, None when it has
    none. Reads only as far as that record for JSON lines; for CSV, only the
    first `CSV_HEAD_BYTES` (decompressed), so that a value of the first CSV
    record may be its cell's start only (enough to tell a format by)."""
    kind = container(path)
    if kind == "csv":
        return _csv_head(path)[1]
    if kind == "json":
        data = _json_array(path)
        if not data:
            return None
        if not isinstance(data[0], dict):
            raise InputError(f"{path}: the first record is {_not_object(data[0])}")
        return data[0]
    for record in _json_lines(path):
        if isinstance(record, BadRecord):
            raise InputError(f"{path}: the first record is {record.detail}")
        return record
    return None


def columns_of(path: Union[str, Path]) -> list[str]:
    """Column names: the parquet schema, or the keys of the first JSON record
    (a JSON file without records has no columns to tell: InputError)."""
    kind = container(path)
    if kind == "parquet":
        return parquet_columns(path)
    if kind == "csv":
        return _csv_head(path)[0]
    return list(require_first_record(path))


def require_first_record(path: Union[str, Path]) -> dict:
    """The first record of a JSON file; InputError when it has none."""
    record = first_record(path)
    if record is None:
        raise InputError(f"{path}: no records (an empty JSON file)")
    return record


def iter_records(
    path: Union[str, Path],
    columns: Sequence[str],
    chunk_rows: int,
    csv_json: Optional[Sequence[str]] = None,
) -> Iterator[list[Record]]:
    """The records of a parquet / JSON / JSON-lines / CSV file as Python
    dicts, in lists of at most `chunk_rows`, in file order. Parquet reads
    only `columns` (those present), streamed; JSON lines and CSV stream; a
    JSON array is read whole. CSV cells are strings (an empty cell: None),
    those of the `csv_json` columns parsed as JSON where they are valid
    JSON (`csv_cell`; a Python repr there is a BadRecord saying to write
    JSON); `csv_json=None` (a reader that does not take CSV) refuses a CSV
    file."""
    kind = container(path)
    if kind == "csv":
        if csv_json is None:
            raise InputError(
                f"{path}: this format's columns hold nested lists, which CSV cannot: "
                "give it as parquet, JSON or JSON lines"
            )
        yield from _chunked(_csv_records(path, set(csv_json)), chunk_rows)
        return
    if kind == "parquet":
        names = parquet_columns(path)
        lf = pl.scan_parquet(path).select([c for c in columns if c in names])
        for batch in polars_batches(lf, path, chunk_rows):
            yield batch.to_dicts()
        return
    source: Any = _json_array(path) if kind == "json" else _json_lines(path)
    yield from _chunked(source, chunk_rows)


def _chunked(source: Any, chunk_rows: int) -> Iterator[list[Record]]:
    records: list[Record] = []
    for value in source:
        records.append(
            value if isinstance(value, (dict, BadRecord)) else BadRecord(_not_object(value))
        )
        if len(records) == chunk_rows:
            yield records
            records = []
    if records:
        yield records


# -- CSV as records ------------------------------------------------------------------
# How much of a CSV format detection reads, and the largest cell read as a record.
CSV_HEAD_BYTES = 1 << 20
CSV_CELL_BYTES = PARQUET_BOMB_BYTES
# A byte that is not UTF-8, as the surrogateescape error handler decodes it.
_ESCAPED = re.compile("[\udc80-\udcff]")


def _csv_head(path: Union[str, Path]) -> tuple[list[str], Optional[dict]]:
    """The header and the first record (cells possibly cut at
    `CSV_HEAD_BYTES`) of a CSV file; InputError for a file without a header."""
    with open_binary(path) as f:
        try:
            head = f.read(CSV_HEAD_BYTES)
        except (OSError, EOFError, pa.ArrowException) as exc:
            raise input_error(path, exc) from None
    check_csv_text(path, head)
    text = head.decode("utf-8-sig", errors="replace")
    csv.field_size_limit(max(csv.field_size_limit(), CSV_HEAD_BYTES))
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows, None)
        first = next(rows, None)
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the CSV header: {exc}") from None
    if not header:
        raise InputError(f"{path}: no header (an empty CSV file)")
    if first is None:
        return header, None
    return header, {name: (cell or None) for name, cell in zip(header, first)}


def check_csv_text(path: Union[str, Path], head: bytes) -> None:
    """InputError for a file that is not UTF-8 CSV with LF or CRLF lines,
    told from its first (decompressed) bytes `head`: UTF-16 / UTF-32, lines
    ending in CR only, a parquet file."""
    if head.startswith(b"PAR1"):
        raise InputError(f"{path}: a parquet file, not CSV: name it .parquet")
    for bom, name in (
        (b"\xff\xfe\x00\x00", "UTF-32"),
        (b"\x00\x00\xfe\xff", "UTF-32"),
        (b"\xff\xfe", "UTF-16"),
        (b"\xfe\xff", "UTF-16"),
    ):
        if head.startswith(bom):
            raise InputError(f"{path}: {name} text (a {name} byte-order mark): save it as UTF-8")
    first, newline, _ = head.partition(b"\n")
    if b"\x00" in first:
        raise InputError(
            f"{path}: NUL bytes in the header: UTF-16 or UTF-32 text without a "
            "byte-order mark, or not text: save it as UTF-8"
        )
    if b"\r" in (first[:-1] if newline else first):
        raise InputError(
            f"{path}: lines end in CR only (old Mac line endings): convert them to LF or CRLF"
        )


def _csv_records(path: Union[str, Path], json_columns: set) -> Iterator[Record]:
    """The records of a CSV file, streamed through the decompressor."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_CELL_BYTES))
    with open_binary(path) as f:
        # Invalid bytes kept as U+DC80..U+DCFF, so that their record is named.
        text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        row = -1
        try:
            header = next(reader, None)
            if header is None:
                return
            for cells in reader:
                row += 1
                if len(cells) > len(header):
                    yield BadRecord(f"{len(cells)} fields, the header {len(header)}")
                    continue
                bad = invalid_byte(cells)
                if bad is not None:
                    name = header[bad[0]] if bad[0] < len(header) else f"#{bad[0] + 1}"
                    yield BadRecord(f"column {name}: invalid utf-8 (byte 0x{bad[1]:02x})")
                    continue
                record = {name: (cell or None) for name, cell in zip(header, cells)}
                yield _typed_cells(record, json_columns)
        except (csv.Error, UnicodeDecodeError, OSError, EOFError, pa.ArrowException) as exc:
            where = "the header" if row < 0 else f"row {row + 1}"
            raise InputError(f"{path}: {where}: cannot read: {one_line(str(exc))}") from None


def invalid_byte(record: list) -> Optional[tuple[int, int]]:
    """(field index, byte) of the first byte of a CSV record, read with the
    surrogateescape error handler, that was not UTF-8; None when all were."""
    for i, cell in enumerate(record):
        found = _ESCAPED.search(cell)
        if found is not None:
            return i, ord(found.group()) - 0xDC00
    return None


# A Python repr of a list / dict (pandas' to_csv of lists): `[{'role'`, `['a'`.
PYTHON_REPR = re.compile(r"\s*[\[{][\s\[{]*(?:'|None\b|True\b|False\b|array\()")
# A typed column's cell read as a JSON scalar: a number, true / false, null.
_SCALAR = re.compile(r"\s*(?:-?\d[\d.eE+-]*|true|false|null)\s*")
_PY_BOOLS = {"True": True, "False": False}


def csv_cell(cell: Optional[str]) -> Any:
    """A CSV cell of a nested or typed column: its JSON value (a list, an
    object, a number, a boolean; Python's True / False too), or the text
    itself when it is not JSON (the reader, or `_typed_cells` for a Python
    repr, then says what is wrong with it)."""
    if cell is None:
        return None
    if cell in _PY_BOOLS:
        return _PY_BOOLS[cell]
    if cell.lstrip()[:1] not in ("[", "{") and not _SCALAR.fullmatch(cell):
        return cell
    try:
        return json.loads(cell)
    except (ValueError, RecursionError):
        return cell


# A Python repr of a list of objects: `[{'role': ...` (numpy's too).
PYTHON_MESSAGES = re.compile(r"\s*\[\s*\{\s*'")


def message_cell(cell: Any) -> Any:
    """A CSV cell of a column of plain strings or message lists: the list
    when the text is a JSON list of objects, else the text."""
    if not isinstance(cell, str) or cell.lstrip()[:1] != "[":
        return cell
    try:
        value = json.loads(cell)
    except (ValueError, RecursionError):
        return cell
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return cell


def python_repr_detail(name: str, cell: str) -> str:
    """Why a cell holding a Python repr is refused, and what to do."""
    return (
        f"column {name}: {shorten(cell, 60)!r} is a Python repr, not JSON: write nested "
        "cells as JSON text (json.dumps each value; pandas' to_csv writes lists as "
        "Python reprs)"
    )


def _typed_cells(record: dict, json_columns: set) -> Record:
    """A CSV record with the cells of `json_columns` parsed (`csv_cell`); a
    BadRecord when one holds a Python repr instead of JSON."""
    for name in [n for n in record if n in json_columns]:
        value = csv_cell(record[name])
        if isinstance(value, str) and PYTHON_REPR.match(value):
            return BadRecord(python_repr_detail(name, value))
        record[name] = value
    return record


def records_at(
    path: Union[str, Path],
    columns: Sequence[str],
    rows: set,
    csv_json: Optional[Sequence[str]] = None,
) -> Iterator[tuple[int, Record]]:
    """(row, record) for the records at `rows` only, in file order: parquet
    filters by row index before converting to Python, JSON lines parse only
    those lines (a second pass that costs little when few are wanted); CSV
    as `iter_records` reads it with the same `csv_json`."""
    kind = container(path)
    if kind == "parquet":
        names = parquet_columns(path)
        lf = (
            pl.scan_parquet(path)
            .select([c for c in columns if c in names])
            .with_row_index("__row")
            .filter(pl.col("__row").is_in(sorted(rows)))
        )
        for batch in polars_batches(lf, path, 16384):
            for record in batch.to_dicts():
                yield record.pop("__row"), record
        return
    if kind == "csv":
        if csv_json is None:
            raise InputError(f"{path}: this format does not read CSV")
        for row, record in enumerate(_csv_records(path, set(csv_json))):
            if row in rows:
                yield row, record
        return
    values: Any = _json_array(path) if kind == "json" else _json_lines(path, rows)
    for row, value in enumerate(values):
        if row in rows:
            yield row, value if isinstance(value, (dict, BadRecord)) else BadRecord("not an object")
