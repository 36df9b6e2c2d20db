"""The WSDM Cup 2024/25 (Multilingual Chatbot Arena) train / test files:
`id, prompt, response_a, response_b, winner, model_a, model_b, language`,
as parquet (the competition's), CSV or JSON (lines), each also .gz / .zst.

Kaggle's column names, but each text is one plain string (one turn), never
parsed as JSON (a prompt that starts with `[` stays text: CSV cells are read
as strings). `winner` is `model_a` / `model_b` (label space `ab`, labels of
width 2); a file without a `winner` column (test) is unlabelled; in a file
with one, any other value (null included) drops the row as `bad_winner`.
`language` is row metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

from ..rows import TEXT_COLUMNS
from ._common import READ_DEFAULTS, Builder, Chunk, ReadOptions, as_name, check_columns
from .containers import BadRecord, columns_of, iter_records

__all__ = ["COLUMNS", "WINNERS", "read"]

SOURCE = "wsdm"
COLUMNS = ("id", "model_a", "model_b", *TEXT_COLUMNS, "winner", "language")
WINNERS: dict[str, list[float]] = {"model_a": [1.0, 0.0], "model_b": [0.0, 1.0]}


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows (labels of width 2) from a WSDM Cup file.
    `id` from the id column, else the row number. `seed` and `options` are
    unused (the file fixes A and B; there are no images)."""
    names = columns_of(path)
    check_columns(path, SOURCE, names, TEXT_COLUMNS)
    return _chunks(path, chunk_rows, names)


def _chunks(path: Union[str, Path], chunk_rows: int, names: list) -> Iterator[Chunk]:
    """One chunk per `chunk_rows` records; one empty chunk (labels of width
    2) for a file without records."""
    row, chunks = 0, 0
    for records in iter_records(path, COLUMNS, chunk_rows, csv_json=()):
        chunks += 1
        out = Builder(SOURCE, classes=2)
        for record in records:
            if isinstance(record, BadRecord):
                out.drop(id=None, row=row, reason="bad_record", detail=record.detail)
            else:
                _convert(record, row, out, names)
            row += 1
        yield out.chunk()
    if not chunks:
        yield Builder(SOURCE, classes=2).chunk()


def _convert(record: dict, row: int, out: Builder, names: list) -> None:
    ident = out.row_id(record, row, "id" in names)
    if ident is None:
        return
    labels = None
    if "winner" in names:
        winner = record.get("winner")
        labels = WINNERS.get(winner.strip()) if isinstance(winner, str) else None
        if labels is None:
            out.drop(
                id=ident,
                row=row,
                reason="bad_winner",
                detail=f"winner {winner!r} is not one of {list(WINNERS)}",
            )
            return
    texts = {c: record.get(c) for c in TEXT_COLUMNS}
    wrong = next((c for c, v in texts.items() if not isinstance(v, (str, type(None)))), None)
    if wrong is not None:
        out.drop(
            id=ident,
            row=row,
            reason="bad_text",
            detail=f"column {wrong}: a {type(texts[wrong]).__name__}, not a string",
        )
        return
    out.add(
        id=ident,
        model_a=as_name(record.get("model_a")),
        model_b=as_name(record.get("model_b")),
        prompt=[texts["prompt"]],
        response_a=[texts["response_a"]],
        response_b=[texts["response_b"]],
        labels=None if labels is None else list(labels),
        row=row,
        language=_language(record.get("language")),
    )


def _language(value: Any) -> Any:
    return value if isinstance(value, str) and value.strip() else None
