"""What every reader shares: the two frame schemas, the chunk type, file
containers (parquet, JSON, JSON lines) as streams of records, one-line
errors, text cleaning, conversation splitting and the seeded coin."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..rng import MASK64, SplitMix64
from ..rows import TEXT_COLUMNS
from ..text import repair_text, shorten  # the one surrogate repair, with its flag

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


# -- errors -------------------------------------------------------------------------
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
    ) -> None:
        """One canonical row. The texts are cleaned here (`clean_turns`) and
        the repair counted for the row; `meta` (JSON-able) is stored as JSON
        text with sorted keys."""
        prompt, f0 = clean_turns(prompt)
        response_a, f1 = clean_turns(response_a)
        response_b, f2 = clean_turns(response_b)
        self.repairs.append(f0 | f1 | f2)
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
            "meta": None if meta is None else clean_text(json.dumps(meta, sort_keys=True)),
        }
        for name, value in values.items():
            self.rows[name].append(value)

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
) -> Iterator[Chunk]:
    """Read `path` record by record; `convert(record, row, builder)` adds a
    row or a drop for each. One chunk per `chunk_rows` input records."""
    row = 0
    for records in iter_records(path, columns, chunk_rows):
        builder = Builder(source)
        for record in records:
            if isinstance(record, BadRecord):
                builder.drop(id=None, row=row, reason="bad_record", detail=record.detail)
            else:
                convert(record, row, builder)
            row += 1
        yield builder.chunk()


# -- values --------------------------------------------------------------------------
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
