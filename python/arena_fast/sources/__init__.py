"""Readers that turn each input format into canonical polars frames
(docs/dataset.md): one module per format, all streaming in chunks except
chat1m, whose pairing needs every conversation.

    for chunk in read("train.csv"):          # format detected: kaggle
        chunk.rows      # CANONICAL_SCHEMA (Kaggle text columns: JSON text)
        chunk.dropped   # DROPPED_SCHEMA: records that could not become rows

File-level problems (unreadable, wrong format, a missing column) raise a
one-line `InputError`; record-level problems never raise, the record goes
to `dropped` with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from operator import index
from pathlib import Path
from typing import Callable, Optional, Union

import polars as pl

from ..errors import ConfigError, InputError
from ..rows import TEXT_COLUMNS
from . import arena33k, canonical, chat1m, kaggle, ultrafeedback
from ._common import (
    CANONICAL_SCHEMA,
    DROPPED_SCHEMA,
    JSON_TEXT_SCHEMA,
    METADATA_SCHEMA,
    READ_DEFAULTS,
    Chunk,
    ReadOptions,
    empty_dropped,
    empty_rows,
)
from .containers import (
    columns_of,
)

__all__ = [
    "CANONICAL_SCHEMA",
    "DROPPED_SCHEMA",
    "DROP_REASONS",
    "FORMATS",
    "METADATA_SCHEMA",
    "Chunk",
    "Input",
    "ReadOptions",
    "detect_format",
    "parse_input",
    "read",
]

FORMATS = ("kaggle", "arena33k", "ultrafeedback", "chat1m", "canonical")

# Why a reader drops a record (`dataset.DROP_REASONS` adds the cleaning and
# de-duplication reasons to these).
DROP_REASONS = {
    "bad_record": "a JSON line / array element that is not a JSON object",
    "missing_id": "the id column is there, the record's id is null",
    "bad_labels": "kaggle winner cells or canonical labels that are not one number per class",
    "bad_winner": "arena33k winner outside model_a / model_b / tie / tie (bothbad)",
    "bad_conversation": "not a list of {role, content}; no user or no assistant turn",
    "too_few_completions": "ultrafeedback raw: fewer than 2 completions with a response",
    "missing_score": "ultrafeedback: one score of two; raw: fewer than 2 rated answers",
    "bad_text": "canonical JSON: a text value of the wrong kind; kaggle: a cell over 1 MiB "
    "(clipped while read) that is not a JSON turn list, or holds over 16 MiB once clipped",
    "bad_teacher_logits": "canonical: teacher_logits not rows of 3 finite float32 numbers, "
    "an empty list, or another teacher count than the file's first good row",
    "chat1m_unpaired": "chat1m: no other model's conversation left to pair with",
    "chat1m_identical": "chat1m: every other model answered the same",
}

_READERS: dict[str, Callable[..., Iterator[Chunk]]] = {
    "kaggle": kaggle.read,
    "arena33k": arena33k.read,
    "ultrafeedback": ultrafeedback.read,
    "chat1m": chat1m.read,
    "canonical": canonical.read,
}

# What identifies a format among a file's columns, checked in this order.
_SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("arena33k", ("conversation_a", "conversation_b", "winner")),
    ("ultrafeedback", ("chosen", "rejected")),
    ("ultrafeedback", ("instruction", "completions")),
    ("chat1m", ("conversation", "model")),
    ("canonical", TEXT_COLUMNS),
)
_COLUMNAR = (".parquet", ".json", ".jsonl", ".ndjson")


@dataclass(frozen=True)
class Input:
    """One input of build-dataset: a file and its format."""

    path: str
    format: str


def parse_input(spec: str) -> Input:
    """`PATH` or `PATH:FORMAT` as an Input; without a known format suffix the
    whole spec is the path (which may hold ':') and the format is detected."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail in FORMATS:
        return Input(head, tail)
    if sep and head and not Path(spec).exists() and Path(head).exists():
        raise ConfigError(f"unknown format {tail!r} in {spec!r}; formats: {', '.join(FORMATS)}")
    return Input(spec, detect_format(spec))


def detect_format(path: Union[str, Path]) -> str:
    """The format of `path`: .csv (.csv.gz) is kaggle; parquet and JSON files
    are told by their column names (the parquet schema, the first JSON
    record's keys). One-line InputError when nothing matches."""
    name = str(path).lower()
    if not Path(path).is_file():
        raise InputError(
            f"{path}: no such file" if not Path(path).exists() else f"{path}: not a file"
        )
    if name.endswith((".csv", ".csv.gz")):
        return "kaggle"
    if not name.endswith(_COLUMNAR):
        raise InputError(
            f"{path}: cannot tell the format from the name (expected .csv, .csv.gz, "
            f"{', '.join(_COLUMNAR)}); give it as PATH:FORMAT, FORMAT one of {', '.join(FORMATS)}"
        )
    names = columns_of(path)
    for fmt, signature in _SIGNATURES:
        if all(c in names for c in signature):
            return fmt
    expected = "; ".join(f"{fmt}: {', '.join(sig)}" for fmt, sig in _SIGNATURES)
    raise InputError(
        f"{path}: unknown column layout (columns seen: {names}); expected the columns of {expected}"
    )


def read(
    path: Union[str, Path],
    format: Union[str, None] = None,
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: Optional[ReadOptions] = None,
) -> Iterator[Chunk]:
    """The chunks of `path` in `format` (detected when None): at most
    `chunk_rows` rows each, at least one chunk (possibly empty) per file.
    `seed` keys the A/B coins of ultrafeedback and chat1m; `options` the
    readers' user choices (`ReadOptions`, defaults when None). File-level
    problems raise InputError here, before the first chunk, except those
    only met while streaming (a broken CSV quote mid-file), which raise
    from the iteration."""
    try:
        chunk_rows = index(chunk_rows)
        seed = index(seed)
    except TypeError:
        raise ConfigError(
            f"chunk_rows and seed must be integers, got {chunk_rows!r} and {seed!r}"
        ) from None
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if not 0 <= seed < 1 << 64:
        raise ConfigError(f"seed must be in [0, 2**64), got {seed}")
    if format is None:
        format = detect_format(path)
    elif format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    chunks = _READERS[format](
        path, chunk_rows=chunk_rows, seed=seed, options=options or READ_DEFAULTS
    )
    return _at_least_one(chunks, format)


def _at_least_one(chunks: Iterator[Chunk], format: str) -> Iterator[Chunk]:
    """`chunks`, or one empty chunk when there are none, so that consumers
    always see the schema."""
    empty = True
    for chunk in chunks:
        empty = False
        yield chunk
    if empty:
        rows = pl.DataFrame(schema=JSON_TEXT_SCHEMA) if format == "kaggle" else empty_rows()
        yield Chunk(rows, empty_dropped())
