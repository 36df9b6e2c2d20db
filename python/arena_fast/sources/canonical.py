"""Files already in the canonical schema (what `build-dataset` and users'
own converters write): parquet, a JSON array, JSON lines or CSV (read as
JSON records: text cells hold JSON lists of turns as text, `labels` and
`teacher_logits` JSON lists, `row` / `input_rows` numbers).

Text columns may be List(String) or String holding a JSON list (passed
through for the Rust core, as Kaggle's); which one is fixed per column by
the parquet schema or the first JSON record. `source`, `model_a`,
`model_b`, `teacher_logits`, `row` and `input_rows` may be absent, and so
may the row metadata (`METADATA`): `language` and `category` (strings; a
list of categories is joined with ","), `meta` (a JSON object, kept as its
JSON text, or a string of JSON text, kept as it is). JSON is
parsed in Python rather than by polars, whose JSON reader refuses the lone
surrogate escapes such files can hold (they become U+FFFD here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

import polars as pl
import pyarrow as pa

from ..errors import InputError
from ..rows import TEXT_COLUMNS
from ..text import shown
from ._common import (
    CANONICAL_SCHEMA,
    FLOAT32_MAX,
    METADATA_SCHEMA,
    READ_DEFAULTS,
    Builder,
    Chunk,
    ReadOptions,
    as_id,
    as_name,
    as_number,
    check_columns,
    clean_turns,
    empty_dropped,
)
from .containers import (
    BadRecord,
    container,
    iter_records,
    parquet_columns,
    polars_batches,
    require_first_record,
)
from .streams import (
    input_error,
)

__all__ = ["read", "REQUIRED", "OPTIONAL"]

SOURCE = "canonical"
REQUIRED = ("id", *TEXT_COLUMNS, "labels")
OPTIONAL = ("source", "model_a", "model_b", "teacher_logits", "row", "input_rows")
METADATA = tuple(METADATA_SCHEMA)  # read when present, after the canonical columns
_STRING = pl.String()
_INDEX = "_index"  # the record's 0-based index in the file
_REPAIRS = "_repairs"  # repair bits of a JSON record's texts (lone surrogates)
# A CSV file is read as JSON records: these cells parsed as JSON (texts stay
# JSON text, `meta` its text as written).
_CSV_JSON = ("labels", "teacher_logits", "row", "input_rows")


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows from a canonical parquet / JSON / JSON-lines
    / CSV file; absent optional columns are filled (`source` "canonical", `row`
    the record index, `input_rows` 1, the rest null). `seed` is unused."""
    if container(path) == "parquet":
        names = parquet_columns(path)
        check_columns(path, SOURCE, names, REQUIRED)
        lf = pl.scan_parquet(path)
        try:
            wanted = [c for c in (*CANONICAL_SCHEMA, *METADATA) if c in names]
            schema = dict(lf.select(wanted).collect_schema())
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise input_error(path, exc) from None
        text_as_json = {c: _text_kind(path, c, schema[c]) for c in TEXT_COLUMNS}
        _check_types(path, schema)
        return _parquet_chunks(path, lf.select(list(schema)), chunk_rows, text_as_json)
    record = require_first_record(path)
    check_columns(path, SOURCE, list(record), REQUIRED)
    text_as_json = {c: isinstance(record[c], str) for c in TEXT_COLUMNS}
    # Every column is read: a key absent from one record is null (filled).
    csv_json = _CSV_JSON if container(path) == "csv" else None
    return _json_chunks(path, [*CANONICAL_SCHEMA, *METADATA], chunk_rows, text_as_json, csv_json)


def _text_kind(path: Union[str, Path], name: str, dtype: pl.DataType) -> bool:
    """True for a String (JSON text) column, False for a list of turns."""
    if dtype == pl.String:
        return True
    if dtype == pl.Null or (isinstance(dtype, pl.List) and dtype.inner in (pl.String, pl.Null)):
        return False
    raise _type_error(path, name, dtype, "a list of strings or JSON text")


def _numeric(dtype: Any) -> bool:
    return dtype == pl.Null or dtype.is_numeric()


def _check_types(path: Union[str, Path], schema: dict) -> None:
    """File-level type errors of a parquet schema, as one-line InputErrors."""
    for name in ("id", "source", "model_a", "model_b"):
        dtype = schema.get(name)
        if dtype is not None and not (dtype in (pl.String, pl.Null) or dtype.is_integer()):
            raise _type_error(path, name, dtype, "strings")
    for name in ("row", "input_rows"):
        dtype = schema.get(name)
        if dtype is not None and not (dtype == pl.Null or dtype.is_integer()):
            raise _type_error(path, name, dtype, "integers")
    for name in ("language", "category"):
        dtype = schema.get(name)
        if dtype is not None and not (
            dtype in (pl.String, pl.Null)
            or dtype.is_integer()
            or (name == "category" and dtype in (pl.List(pl.String), pl.List(pl.Null)))
        ):
            raise _type_error(path, name, dtype, "strings")
    meta = schema.get("meta")
    if meta is not None and not (meta in (pl.String, pl.Null) or isinstance(meta, pl.Struct)):
        raise _type_error(path, "meta", meta, "JSON objects (structs) or JSON text")
    labels = schema["labels"]
    if not (
        labels == pl.Null
        or (isinstance(labels, pl.List) and _numeric(labels.inner))
        or (isinstance(labels, pl.Array) and labels.size in WIDTHS and _numeric(labels.inner))
    ):
        raise _type_error(path, "labels", labels, "lists of 2, 3 or 4 numbers (a label space)")
    logits = schema.get("teacher_logits")
    if logits is not None and not (
        logits == pl.Null
        or (
            isinstance(logits, pl.List)
            and (
                (isinstance(logits.inner, pl.List) and _numeric(logits.inner.inner))
                or (
                    isinstance(logits.inner, pl.Array)
                    and logits.inner.size in WIDTHS
                    and _numeric(logits.inner.inner)
                )
                or logits.inner == pl.Null
            )
        )
    ):
        raise _type_error(path, "teacher_logits", logits, "lists of rows of K numbers")


def _type_error(path: Union[str, Path], name: str, dtype: Any, expected: str) -> InputError:
    return InputError(f"{path}: column {name!r} has type {dtype}, expected {expected}")


def _parquet_chunks(
    path: Union[str, Path], lf: pl.LazyFrame, chunk_rows: int, text_as_json: dict
) -> Iterator[Chunk]:
    row = 0
    teachers: dict = {}
    for batch in polars_batches(lf, path, chunk_rows):
        index = pl.int_range(row, row + batch.height, dtype=pl.Int64).alias(_INDEX)
        yield _convert(batch.with_columns(index), text_as_json, empty_dropped(), teachers)
        row += batch.height


# -- JSON records -----------------------------------------------------------------------
def _json_chunks(
    path: Union[str, Path],
    present: list,
    chunk_rows: int,
    text_as_json: dict,
    csv_json: Optional[tuple] = None,
) -> Iterator[Chunk]:
    row = 0
    teachers: dict = {}
    for records in iter_records(path, present, chunk_rows, csv_json):
        columns: dict[str, list] = {name: [] for name in [*present, _INDEX, _REPAIRS]}
        drops = Builder(SOURCE)
        for record in records:
            values = _json_values(record, present, text_as_json)
            if isinstance(values, tuple):
                reason, detail = values
                ident = as_id(record.get("id")) if isinstance(record, dict) else None
                drops.drop(id=ident, row=row, reason=reason, detail=detail)
            else:
                for name in [*present, _REPAIRS]:
                    columns[name].append(values[name])
                columns[_INDEX].append(row)
            row += 1
        frame = pl.DataFrame([_json_series(n, columns[n], text_as_json) for n in columns])
        # Metadata no record of the batch has stays out, as in a reader without it.
        frame = frame.drop([c for c in METADATA if frame[c].null_count() == frame.height])
        yield _convert(frame, text_as_json, drops.chunk().dropped, teachers)


def _json_values(record: Any, present: list, text_as_json: dict) -> Union[dict, tuple]:
    """The column values of one JSON record, or (reason, detail) when a
    value has the wrong JSON type."""
    if isinstance(record, BadRecord):
        return "bad_record", record.detail
    values: dict[str, Any] = {_REPAIRS: 0}
    for name in present:
        value = record.get(name)
        if name in TEXT_COLUMNS:
            text = _json_text(value, text_as_json[name])
            if isinstance(text, tuple):
                return "bad_text", f"{name}: {text[0]}"
            values[name], repairs = clean_turns(text)
            values[_REPAIRS] |= repairs
        elif name == "labels":
            if value is not None and not isinstance(value, list):
                return "bad_labels", f"labels is {type(value).__name__}, not a list of numbers"
            values[name] = None if value is None else [as_number(v) for v in value]
        elif name == "teacher_logits":
            # A null entry passes: the batch check, which knows the file's
            # label width, tells it.
            if value is not None and not (
                isinstance(value, list) and all(v is None or isinstance(v, list) for v in value)
            ):
                return "bad_teacher_logits", f"teacher_logits {shown(value, 120)}: {_NOT_ROWS_ANY}"
            values[name] = (
                None
                if value is None
                else [
                    None if v is None else [as_number(x, keep_nan=True) for x in v] for v in value
                ]
            )
        elif name in ("row", "input_rows"):
            values[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
        elif name == "id":
            values[name] = as_id(value)
        elif name in METADATA:
            values[name] = _metadata_value(name, value)
        else:
            values[name] = as_name(value)
    return values


def _metadata_value(name: str, value: Any) -> Optional[str]:
    """A JSON record's `language` / `category` / `meta` as the text kept:
    strings as they are, a list of categories joined with ",", a `meta`
    object (or any other JSON value) as its JSON text (keys sorted)."""
    if value is None:
        return None
    if isinstance(value, str):
        return as_name(value)
    if name == "category" and isinstance(value, list):
        return as_name(",".join(str(v) for v in value if v is not None))
    if name == "meta" or isinstance(value, (list, dict)):
        return as_name(json.dumps(value, sort_keys=True, ensure_ascii=False))
    return as_name(str(value).lower() if isinstance(value, bool) else str(value))


def _json_text(value: Any, as_json: bool) -> Union[str, list, None, tuple]:
    """A text value of the column's kind; (detail,) when it is of the other
    kind or not text at all."""
    if value is None:
        return None
    if as_json:
        if isinstance(value, str):
            return value
        return (f"{type(value).__name__} in a column of JSON text",)
    if isinstance(value, list) and all(v is None or isinstance(v, str) for v in value):
        return value
    return (f"{type(value).__name__}, not a list of strings",)


_JSON_ARROW = {
    "labels": pa.large_list(pa.float64()),
    "teacher_logits": pa.large_list(pa.large_list(pa.float64())),
}


def _json_series(name: str, values: list, text_as_json: dict) -> pl.Series:
    if name in TEXT_COLUMNS:
        arrow = pa.large_string() if text_as_json[name] else pa.large_list(pa.large_string())
    elif name in _JSON_ARROW:
        arrow = _JSON_ARROW[name]
    elif name == _REPAIRS:
        return pl.Series(name, values, dtype=pl.UInt8())
    else:
        dtype = pl.Int64() if name in ("row", "input_rows", _INDEX) else _STRING
        return pl.Series(name, values, dtype=dtype)
    series = pl.from_arrow(pa.array(values, type=arrow))
    assert isinstance(series, pl.Series)
    return series.alias(name)


# -- one batch, either source -------------------------------------------------------------
def _convert(
    frame: pl.DataFrame, text_as_json: dict, dropped: pl.DataFrame, teachers: dict
) -> Chunk:
    """A batch (file columns plus `_index`) as canonical rows; rows with a
    null id or malformed labels / teacher_logits join `dropped`. `teachers`
    carries the file's teacher count from batch to batch."""
    names = frame.columns
    index = pl.col(_INDEX)

    def column(name: str, default: Any) -> pl.Expr:
        if name not in names:
            return default
        return pl.coalesce(pl.col(name).cast(CANONICAL_SCHEMA[name]), default)

    labels_dtype = frame.schema["labels"]
    logits_dtype = frame.schema.get("teacher_logits")
    width = _label_width(frame, labels_dtype, teachers)
    reason: Any = pl.when(pl.col("id").is_null()).then(pl.lit("missing_id"))
    detail: Any = pl.when(pl.col("id").is_null()).then(pl.lit("id is null"))
    if isinstance(labels_dtype, pl.List):
        labels = pl.col("labels")
        bad = labels.is_not_null() & (
            (labels.list.len() != width) | (labels.list.drop_nulls().list.len() != width)
        )
        reason = reason.when(bad).then(pl.lit("bad_labels"))
        detail = detail.when(bad).then(
            pl.format(f"labels has {{}} value(s), not {width} numbers", labels.list.len())
        )
    if isinstance(logits_dtype, pl.List):
        for bad, problem in _teacher_problems(width):
            reason = reason.when(bad.fill_null(False)).then(pl.lit("bad_teacher_logits"))
            detail = detail.when(bad.fill_null(False)).then(pl.lit(problem))
    frame = frame.with_columns(
        reason.otherwise(pl.lit(None, dtype=_STRING)).alias("_reason"),
        detail.otherwise(pl.lit(None, dtype=_STRING)).alias("_detail"),
    )
    if isinstance(logits_dtype, pl.List):
        frame = _check_teachers(frame, teachers)
    source = column("source", pl.lit(SOURCE, dtype=_STRING)).alias("source")
    row = column("row", index).alias("row")
    kept = frame.filter(pl.col("_reason").is_null())
    rows = kept.select(
        pl.col("id").cast(_STRING),
        source,
        *(column(c, pl.lit(None, dtype=_STRING)).alias(c) for c in ("model_a", "model_b")),
        *(
            pl.col(c).cast(_STRING if text_as_json[c] else CANONICAL_SCHEMA[c])
            for c in TEXT_COLUMNS
        ),
        _fixed_width(names, "labels", labels_dtype, width),
        _fixed_width(names, "teacher_logits", logits_dtype, width),
        row,
        column("input_rows", pl.lit(1, dtype=pl.Int32)).alias("input_rows"),
        *(_metadata_column(name, frame.schema[name]) for name in METADATA if name in names),
    )
    bad_rows = frame.filter(pl.col("_reason").is_not_null()).select(
        source,
        pl.col("id").cast(_STRING),
        index.alias("row"),
        column("input_rows", pl.lit(1, dtype=pl.Int32)).alias("input_rows"),
        pl.col("_reason").alias("reason"),
        pl.col("_detail").alias("detail"),
        *([pl.col("teacher_logits")] if "teacher_logits" in names else []),
    )
    if "teacher_logits" in names:
        bad_rows = _name_teacher_values(bad_rows)
    repairs = kept[_REPAIRS].to_numpy() if _REPAIRS in names else None
    if repairs is not None and not repairs.any():
        repairs = None
    return Chunk(rows, pl.concat([dropped, bad_rows]).sort("row"), repairs)


def _metadata_column(name: str, dtype: Any) -> pl.Expr:
    """A metadata column as String: a parquet list of categories joined with
    ",", a struct `meta` as its JSON text, an integer as its digits."""
    expr = pl.col(name)
    if isinstance(dtype, pl.List):
        expr = expr.list.join(",")
    elif isinstance(dtype, pl.Struct):
        expr = pl.when(expr.is_not_null()).then(expr.struct.json_encode())
    return expr.cast(_STRING).alias(name)


_NOT_ROWS = "not a list of rows of {} numbers"
_NOT_ROWS_ANY = "not a list of rows of numbers"
# The label widths of the label spaces (ab, abt, abtx: `af.labels`).
WIDTHS = (2, 3, 4)


def _label_width(frame: pl.DataFrame, dtype: Any, state: dict) -> int:
    """The file's label width, K of its label space: an Array column's
    size, else the first labelled row's count (remembered in `state` across
    batches; 3, `abt`, until a labelled row is seen, or when the first has
    a count of no label space: then rows of other counts are bad_labels)."""
    if isinstance(dtype, pl.Array):
        return dtype.size
    if "width" not in state and isinstance(dtype, pl.List):
        first = frame.select(pl.col("labels").list.len().drop_nulls().first()).item()
        if first is not None:
            state["width"] = first if first in WIDTHS else 3
    return state.get("width", 3)


def _teacher_problems(width: int) -> list[tuple[pl.Expr, str]]:
    """(row is bad, why) for teacher_logits, in the order they are told:
    an entry that is not `width` numbers, no entry at all, a value that is
    not finite, or one past float32 (the shards' type: it would become inf)."""
    logits = pl.col("teacher_logits").cast(pl.List(pl.List(pl.Float64)))
    entry = pl.element()
    value = pl.element()
    wrong = (
        entry.is_null()
        | (entry.list.len() != width)
        | (entry.list.drop_nulls().list.len() != width)
    )
    not_finite = entry.list.eval(~value.is_finite()).list.any()
    too_large = entry.list.eval(value.abs() > FLOAT32_MAX).list.any()
    return [
        (logits.list.eval(wrong).list.any(), _NOT_ROWS.format(width)),
        (logits.list.len() == 0, "an empty list (a row with logits needs at least one teacher)"),
        (logits.list.eval(not_finite).list.any(), "a value is not a finite number"),
        (
            logits.list.eval(too_large).list.any(),
            f"a value is past the float32 range (+-{FLOAT32_MAX:.4g}), where it is stored",
        ),
    ]


def _check_teachers(frame: pl.DataFrame, teachers: dict) -> pl.DataFrame:
    """Rows with as many teachers as the first good row of the file (which
    `teachers["count"]` remembers across batches); others are dropped: a
    training batch needs one count."""
    count = pl.col("teacher_logits").list.len()
    fine = pl.col("_reason").is_null() & count.is_not_null()
    if teachers.get("count") is None:
        first = frame.select(count.filter(fine).first()).item()
        if first is None:
            return frame
        teachers["count"] = first
    expected = teachers["count"]
    other = fine & (count != expected)
    return frame.with_columns(
        pl.when(other).then(pl.lit("bad_teacher_logits")).otherwise("_reason").alias("_reason"),
        pl.when(other)
        .then(
            pl.format(
                "{} teacher(s); the file's first row with teacher_logits has {}",
                count,
                pl.lit(expected),
            )
        )
        .otherwise("_detail")
        .alias("_detail"),
    )


def _name_teacher_values(bad_rows: pl.DataFrame) -> pl.DataFrame:
    """The detail of a bad_teacher_logits row with its value in front:
    `teacher_logits [[1e+308, -1e+308, 0.0]]: a value is past the float32 range`."""
    mask = (bad_rows["reason"] == "bad_teacher_logits").to_list()
    if any(mask):
        details = [
            f"teacher_logits {shown(value, 120)}: {detail}" if hit else detail
            for hit, value, detail in zip(
                mask, bad_rows["teacher_logits"].to_list(), bad_rows["detail"].to_list()
            )
        ]
        bad_rows = bad_rows.with_columns(pl.Series("detail", details, dtype=_STRING))
    return bad_rows.drop("teacher_logits")


def _fixed_width(names: list, name: str, dtype: Optional[Any], width: int) -> pl.Expr:
    """`labels` / `teacher_logits` of a batch whose bad rows are gone, as
    the canonical Array(Float64, K) shapes, K = `width` (the file's label
    space; null when the column is absent)."""
    target = pl.Array(pl.Float64(), width)
    if name == "teacher_logits":
        target = pl.List(target)
    if name not in names or dtype == pl.Null:
        return pl.lit(None, dtype=target).alias(name)
    expr = pl.col(name)
    if name == "labels" and isinstance(dtype, pl.List):
        expr = expr.cast(pl.List(pl.Float64)).list.to_array(width)
    elif name == "teacher_logits" and isinstance(getattr(dtype, "inner", None), pl.List):
        expr = expr.list.eval(pl.element().cast(pl.List(pl.Float64)).list.to_array(width))
    return expr.cast(target).alias(name)
