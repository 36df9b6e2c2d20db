"""PKU-Alignment/PKU-SafeRLHF: one prompt, two responses and which is
better and which is safer, parquet, a JSON array, JSON lines or CSV (ids
and severities as numbers or their text, booleans as true / True, harm
categories as JSON text).

Columns (the dataset card): `prompt`, `response_0`, `response_1`,
`prompt_source`, `response_0_source`, `response_1_source` (the models),
`is_response_0_safe`, `is_response_1_safe`, `response_0_harm_category`,
`response_1_harm_category` (objects of category -> bool),
`response_0_severity_level`, `response_1_severity_level` (0..3),
`better_response_id`, `safer_response_id` (0 or 1).

The winner is `better_response_id` (`ReadOptions.preference == "better"`,
the default) or `safer_response_id` ("safer"): 0 -> A, 1 -> B. The file's
order is kept (response_0 is A; the order says nothing about the winner).
The safety columns go into the row's `meta` under their own names (a harm
category object as the sorted list of the categories marked true)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import ConfigError
from ._common import (
    READ_DEFAULTS,
    Builder,
    Chunk,
    ReadOptions,
    as_name,
    as_number,
    check_columns,
    not_a_string,
    stream_records,
)
from .containers import columns_of

__all__ = ["read", "PREFERENCE_COLUMNS"]

SOURCE = "pku_saferlhf"
TEXTS = ("prompt", "response_0", "response_1")
PREFERENCE_COLUMNS = {"better": "better_response_id", "safer": "safer_response_id"}
SAFETY = (
    "is_response_0_safe",
    "is_response_1_safe",
    "response_0_severity_level",
    "response_1_severity_level",
    "response_0_harm_category",
    "response_1_harm_category",
)
COLUMNS = (
    "id",
    *TEXTS,
    *PREFERENCE_COLUMNS.values(),
    *SAFETY,
    "prompt_source",
    "response_0_source",
    "response_1_source",
)
WINS = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows from a PKU-SafeRLHF file; the winner column
    follows `options.preference`. `seed` is unused (the file fixes A and B).
    id: an `id` column when the file has one, else the record's index."""
    winner = PREFERENCE_COLUMNS.get(options.preference)
    if winner is None:
        raise ConfigError(
            f"preference must be one of {sorted(PREFERENCE_COLUMNS)}, got {options.preference!r}"
        )
    names = columns_of(path)
    check_columns(path, SOURCE, names, (*TEXTS, winner))
    has_id = "id" in names
    return stream_records(
        path,
        COLUMNS,
        chunk_rows,
        SOURCE,
        lambda r, row, out: _convert(r, row, out, winner, has_id),
        csv_json=SAFETY,  # CSV: harm categories as JSON cells, True / False, numbers
    )


def _side(value: Any) -> Optional[int]:
    """0 or 1 from a response id (an integer, a whole float, "0" / "1")."""
    number = as_number(value)
    return int(number) if number in (0.0, 1.0) else None


def _harms(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted(str(k) for k, v in value.items() if v is True)
    return value if value is None or isinstance(value, (bool, int, float, str, list)) else None


def _meta(record: dict) -> dict:
    meta: dict = {}
    for column in PREFERENCE_COLUMNS.values():
        if column in record:
            meta[column] = _side(record[column])
    for column in SAFETY:
        if column in record:
            value = record[column]
            if column.endswith("_harm_category"):
                value = _harms(value)
            elif column.endswith("_severity_level"):
                value = as_number(value)
            elif not isinstance(value, bool):
                value = None
            meta[column] = value
    if isinstance(record.get("prompt_source"), str):
        meta["prompt_source"] = record["prompt_source"]
    return meta


def _convert(record: dict, row: int, out: Builder, winner: str, has_id: bool) -> None:
    ident = out.row_id(record, row, has_id)
    if ident is None:
        return
    side = _side(record.get(winner))
    if side is None:
        out.drop(
            id=ident,
            row=row,
            reason="bad_preference",
            detail=f"{winner} {record.get(winner)!r} is not 0 or 1",
        )
        return
    problem = not_a_string(record, TEXTS)
    if problem:
        out.drop(id=ident, row=row, reason="missing_text", detail=problem)
        return
    out.add(
        id=ident,
        model_a=as_name(record.get("response_0_source")),
        model_b=as_name(record.get("response_1_source")),
        prompt=[record["prompt"]],
        response_a=[record["response_0"]],
        response_b=[record["response_1"]],
        labels=list(WINS[side]),
        row=row,
        meta=_meta(record),
    )
