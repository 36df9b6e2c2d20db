"""Helpers of the reader tests: the real files of ../shared/data (skipped
locally without ../shared, a failure under CI=true, as in tests/conftest.py)
and the concatenation of a reader's chunks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from arena_fast.reference import SplitMix64
from arena_fast.sources import Chunk

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_path(name: str) -> Path:
    """A file of ../shared/data, or skip (fail under CI=true) without it."""
    path = SHARED_DATA / name
    if path.exists():
        return path
    reason = f"{path}: ../shared not present"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: the CI machine always has it)", pytrace=False)
    pytest.skip(reason)


def collect(chunks) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All the rows and all the dropped records of a reader's chunks."""
    chunks = list(chunks)
    assert chunks, "a reader yields at least one chunk"
    assert all(isinstance(c, Chunk) for c in chunks)
    return pl.concat([c.rows for c in chunks]), pl.concat([c.dropped for c in chunks])


def coin(seed: int, row: int) -> bool:
    """The documented A/B coin: the low bit of the first draw of
    SplitMix64(seed, row) (True: the chosen / first side is A)."""
    return bool(SplitMix64(seed, row).next() & 1)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_json(path: Path, records: list[Any]) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def write_parquet(path: Path, records: list[dict]) -> Path:
    pl.DataFrame(records, infer_schema_length=None).write_parquet(path)
    return path


def one_line_error(excinfo, *needles: str) -> str:
    """The message of a raised error, checked to be one line holding `needles`."""
    message = str(excinfo.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message
