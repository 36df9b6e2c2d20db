"""File containers as streams of records: parquet (its schema, streamed
batches, the compression-bomb check), one JSON array, JSON lines; and the
one-line errors that name the file when a read fails."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..text import shorten


def one_line(message: str, limit: int = 300) -> str:
    """A library error message (polars' run to many lines with hints) as one
    short line: the original error when polars quotes one, else the first
    paragraph, whitespace collapsed."""
    if "Original error:" in message:
        message = message.split("Original error:", 1)[1]
    else:
        message = message.strip().split("\n\n", 1)[0]
    message = " ".join(message.replace("`", "").split())
    return shorten(message, limit)


def input_error(path: Union[str, Path], exc: BaseException) -> InputError:
    """`exc` (from reading `path`) as a one-line InputError naming the file."""
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{path}: is a directory, not a file")
    return InputError(f"{path}: cannot read: {one_line(str(exc) or type(exc).__name__)}")


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


# A parquet column chunk may decompress to more than this only while it stays
# within PARQUET_MAX_EXPANSION times its stored size: text compresses a few
# times, while one value of 300 MB of repeated bytes fits in 12 KB and would
# be decoded whole (a page is decompressed at once) before any clip.
PARQUET_BOMB_BYTES = 64 << 20
PARQUET_MAX_EXPANSION = 100


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


def container(path: Union[str, Path]) -> str:
    """ "parquet", "json" (one JSON array) or "jsonl", from the extension and,
    for .json, the first character (the `datasets` library writes JSON lines
    to .json files)."""
    name = str(path).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        try:
            with open(path, "rb") as f:
                head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        except OSError as exc:
            raise input_error(path, exc) from None
        return "json" if head.startswith(b"[") else "jsonl"
    raise InputError(f"{path}: expected a .parquet, .json, .jsonl or .ndjson file for this format")


def _json_lines(path: Union[str, Path], only: Optional[set] = None) -> Iterator[Any]:
    """The records of a JSON-lines file, blank lines skipped; a line that is
    not a JSON object comes as a BadRecord (it does not stop the file).
    With `only`, records whose index is not in it come as None, unparsed."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise input_error(path, exc) from None
    with f:
        first = True
        row = -1
        for line in f:
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


# Python's JSON parser recurses once per nesting level; past the
# interpreter's limit (about 1,000) it raises RecursionError.
_TOO_DEEP = "not valid JSON: nested too deeply"


def _not_object(value: Any) -> str:
    return f"a JSON {type(value).__name__}, not an object"


def _json_array(path: Union[str, Path]) -> list:
    """A whole .json file holding one array (read at once)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise input_error(path, exc) from None
    except RecursionError:
        # One array: a record nested too deeply leaves no way to find the next.
        raise InputError(f"{path}: cannot read: {_TOO_DEEP}") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON array of records, got a {type(data).__name__}")
    return data


def first_record(path: Union[str, Path]) -> Optional[dict]:
    """The first record of a JSON / JSON-lines file, None when it has none.
    Reads only as far as that record for JSON lines."""
    if container(path) == "json":
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
    if container(path) == "parquet":
        return parquet_columns(path)
    return list(require_first_record(path))


def require_first_record(path: Union[str, Path]) -> dict:
    """The first record of a JSON file; InputError when it has none."""
    record = first_record(path)
    if record is None:
        raise InputError(f"{path}: no records (an empty JSON file)")
    return record


def iter_records(
    path: Union[str, Path], columns: Sequence[str], chunk_rows: int
) -> Iterator[list[Record]]:
    """The records of a parquet / JSON / JSON-lines file as Python dicts, in
    lists of at most `chunk_rows`, in file order. Parquet reads only
    `columns` (those present), streamed; JSON lines stream; a JSON array is
    read whole."""
    kind = container(path)
    if kind == "parquet":
        names = parquet_columns(path)
        lf = pl.scan_parquet(path).select([c for c in columns if c in names])
        for batch in polars_batches(lf, path, chunk_rows):
            yield batch.to_dicts()
        return
    source: Any = _json_array(path) if kind == "json" else _json_lines(path)
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


def records_at(
    path: Union[str, Path], columns: Sequence[str], rows: set
) -> Iterator[tuple[int, Record]]:
    """(row, record) for the records at `rows` only, in file order: parquet
    filters by row index before converting to Python, JSON lines parse only
    those lines (a second pass that costs little when few are wanted)."""
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
    values: Any = _json_array(path) if kind == "json" else _json_lines(path, rows)
    for row, value in enumerate(values):
        if row in rows:
            yield row, value if isinstance(value, (dict, BadRecord)) else BadRecord("not an object")
