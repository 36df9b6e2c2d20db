"""Anthropic/hh-rlhf: `chosen` and `rejected` as whole transcripts
(`\\n\\nHuman: ... \\n\\nAssistant: ...`), parquet, a JSON array, JSON
lines or CSV (plain or compressed, as the containers read them).

Each transcript is split into turns at the `\\n\\nHuman:` /
`\\n\\nAssistant:` markers only (`transcripts.split_markers`; each turn
stripped of surrounding whitespace, consecutive turns of one speaker
joined by a blank line). The two transcripts must agree on every turn but
the last, which is an Assistant turn on both sides: that shared history is
the prompt (its user turns) and opens both answers (its assistant turns,
see `transcripts`); the last Assistant turns are the compared answers.
`chosen` is put on side A or B by the seeded coin `first_is_a(seed, row)`
and wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

from ._common import (
    READ_DEFAULTS,
    Builder,
    Chunk,
    ReadOptions,
    check_columns,
    first_is_a,
    stream_records,
)
from .containers import columns_of
from .transcripts import ASSISTANT, HH_MARKERS, BadTranscript, history, merge_runs, split_markers

__all__ = ["read", "split_pair"]

SOURCE = "hh_rlhf"
REQUIRED = ("chosen", "rejected")
COLUMNS = ("id", *REQUIRED)
A_WINS, B_WINS = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]


class TranscriptsDiverge(ValueError):
    """Two transcripts that differ before their last Assistant turn."""


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows from an hh-rlhf file; `seed` keys the coin
    that puts `chosen` on side A or B. id: an `id` column when the file has
    one, else the record's 0-based index."""
    names = columns_of(path)
    check_columns(path, SOURCE, names, REQUIRED)
    has_id = "id" in names
    return stream_records(
        path,
        COLUMNS,
        chunk_rows,
        SOURCE,
        lambda r, row, out: _convert(r, row, out, seed, has_id),
        csv_json=(),
    )


def _turns(value: Any, what: str) -> list:
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise BadTranscript(f"{what} is {kind}, not a transcript string")
    turns = merge_runs(split_markers(value, HH_MARKERS, what))
    if turns[-1][0] != ASSISTANT:
        raise BadTranscript(f"{what}: ends with a Human turn, not an Assistant turn")
    return turns


def split_pair(chosen: Any, rejected: Any) -> tuple[list, list, str, str]:
    """(user turns, shared assistant turns, chosen answer, rejected answer)
    of two transcripts. Raises BadTranscript (not a string, no marker, text
    before the first marker, not Human first, not Assistant last) or
    TranscriptsDiverge (another history)."""
    first = _turns(chosen, "chosen")
    second = _turns(rejected, "rejected")
    shared = first[:-1]
    if second[:-1] != shared:
        at = next(
            (i for i, (x, y) in enumerate(zip(first[:-1], second[:-1])) if x != y),
            min(len(first), len(second)) - 1,
        )
        raise TranscriptsDiverge(
            f"chosen ({len(first)} turns) and rejected ({len(second)} turns) differ at "
            f"turn {at + 1} of the history, before their last Assistant turn"
        )
    users, assistants = history(shared, "chosen")
    return users, assistants, first[-1][1], second[-1][1]


def _convert(record: dict, row: int, out: Builder, seed: int, has_id: bool) -> None:
    ident = out.row_id(record, row, has_id)
    if ident is None:
        return
    try:
        users, shared, chosen, rejected = split_pair(record.get("chosen"), record.get("rejected"))
    except BadTranscript as exc:
        out.drop(id=ident, row=row, reason="bad_transcript", detail=str(exc))
        return
    except TranscriptsDiverge as exc:
        out.drop(id=ident, row=row, reason="transcripts_diverge", detail=str(exc))
        return
    chosen_a, _ = first_is_a(seed, row)
    first, second = (chosen, rejected) if chosen_a else (rejected, chosen)
    out.add(
        id=ident,
        prompt=users,
        response_a=[*shared, first],
        response_b=[*shared, second],
        labels=list(A_WINS if chosen_a else B_WINS),
        row=row,
    )
