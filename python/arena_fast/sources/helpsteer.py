"""nvidia/HelpSteer2 (`preference` subset) and nvidia/HelpSteer3
(`preference` config): two responses to one prompt and a signed preference
strength, parquet, a JSON array, JSON lines or CSV (HelpSteer3's `context`
and `individual_preference` as JSON text in their cells).

- HelpSteer2: `prompt` (a string; a multi-turn one marks the turns with
  `<extra_id_1>Assistant` / `<extra_id_1>User`), `response_1`,
  `response_2`, `preference_strength` (-3..3), `preference_statement`,
  `preference_elaboration`, `split`.
- HelpSteer3: `domain`, `language`, `context` (a list of `{role,
  content}` ending with the user turn), `response1`, `response2`,
  `overall_preference` (-3..3), `individual_preference` (a list of
  `{score, reasoning, ...}`, one per annotator).

The strength's sign gives the winner: negative, response 1 (side A) is
better; positive, response 2 (side B); zero, a tie. The file's order is
kept (response 1 is A: the order says nothing about the winner, so no coin
is needed). The shared history (earlier assistant turns) opens both
answers (`transcripts`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from ._common import (
    READ_DEFAULTS,
    Builder,
    Chunk,
    ReadOptions,
    as_name,
    as_number,
    columns_error,
    not_a_string,
    stream_records,
)
from .containers import columns_of
from .transcripts import HELPSTEER_MARKERS, BadTranscript, message_history, prompt_turns

__all__ = ["read", "strength_labels", "HELPSTEER2", "HELPSTEER3"]

SOURCE = "helpsteer"
HELPSTEER2 = ("prompt", "response_1", "response_2", "preference_strength")
HELPSTEER3 = ("context", "response1", "response2", "overall_preference")
_COLUMNS2 = ("id", *HELPSTEER2, "split")
_COLUMNS3 = ("id", *HELPSTEER3, "domain", "language", "individual_preference")
A_WINS, B_WINS, TIE = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
MAX_STRENGTH = 3


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows from a HelpSteer2 or HelpSteer3 preference
    file (told by its columns). `seed` is unused (the file fixes A and B).
    id: an `id` column when the file has one, else the record's index."""
    names = columns_of(path)
    has_id = "id" in names
    if all(c in names for c in HELPSTEER3):
        return stream_records(
            path,
            _COLUMNS3,
            chunk_rows,
            SOURCE,
            lambda r, row, out: _v3(r, row, out, has_id),
            csv_json=("context", "individual_preference"),
        )
    if all(c in names for c in HELPSTEER2):
        return stream_records(
            path,
            _COLUMNS2,
            chunk_rows,
            SOURCE,
            lambda r, row, out: _v2(r, row, out, has_id),
            csv_json=(),
        )
    form = HELPSTEER3 if "context" in names or "response1" in names else HELPSTEER2
    raise columns_error(path, SOURCE, [c for c in form if c not in names], names)


def strength_labels(value: Any, column: str) -> tuple[Optional[list], Optional[float], str]:
    """(labels, strength, problem) of a signed preference strength: the
    labels of its sign (negative: A, positive: B, zero: tie), or None and
    what is wrong (not a number, NaN, outside -3..3)."""
    strength = as_number(value)
    if strength is None or not math.isfinite(strength) or abs(strength) > MAX_STRENGTH:
        return None, None, f"{column} {value!r} is not a number in -3..3"
    labels = A_WINS if strength < 0 else B_WINS if strength > 0 else TIE
    return list(labels), strength, ""


def _v2(record: dict, row: int, out: Builder, has_id: bool) -> None:
    ident = out.row_id(record, row, has_id)
    if ident is None:
        return
    labels, strength, problem = strength_labels(
        record.get("preference_strength"), "preference_strength"
    )
    if labels is None:
        out.drop(id=ident, row=row, reason="bad_preference", detail=problem)
        return
    problem = not_a_string(record, ("prompt", "response_1", "response_2"))
    if problem:
        out.drop(id=ident, row=row, reason="missing_text", detail=problem)
        return
    answers = [record["response_1"], record["response_2"]]
    users, shared = prompt_turns(record["prompt"], HELPSTEER_MARKERS)
    meta: dict = {"preference_strength": strength}
    if isinstance(record.get("split"), str):
        meta["split"] = record["split"]
    out.add(
        id=ident,
        prompt=users,
        response_a=[*shared, answers[0]],
        response_b=[*shared, answers[1]],
        labels=labels,
        row=row,
        meta=meta,
    )


def _individual_scores(value: Any) -> Optional[list]:
    if not isinstance(value, (list, tuple)):
        return None
    return [as_number(p.get("score")) if isinstance(p, dict) else None for p in value]


def _v3(record: dict, row: int, out: Builder, has_id: bool) -> None:
    ident = out.row_id(record, row, has_id)
    if ident is None:
        return
    labels, strength, problem = strength_labels(
        record.get("overall_preference"), "overall_preference"
    )
    if labels is None:
        out.drop(id=ident, row=row, reason="bad_preference", detail=problem)
        return
    try:
        users, shared = message_history(record.get("context"), "context")
    except BadTranscript as exc:
        out.drop(id=ident, row=row, reason="bad_conversation", detail=str(exc))
        return
    problem = not_a_string(record, ("response1", "response2"))
    if problem:
        out.drop(id=ident, row=row, reason="missing_text", detail=problem)
        return
    answers = [record["response1"], record["response2"]]
    meta: dict = {"overall_preference": strength}
    scores = _individual_scores(record.get("individual_preference"))
    if scores is not None:
        meta["individual_preference"] = scores
    out.add(
        id=ident,
        prompt=users,
        response_a=[*shared, answers[0]],
        response_b=[*shared, answers[1]],
        labels=labels,
        row=row,
        language=as_name(record.get("language")),
        category=as_name(record.get("domain")),
        meta=meta,
    )
