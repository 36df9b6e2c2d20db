"""UltraFeedback-style preference data: parquet, a JSON array, JSON lines or
CSV (message lists, `metadata` and `completions` as JSON text in their cells),
in the binarized form (`chosen` / `rejected` message lists and their
scores) or the raw form (`instruction` and rated `completions`).

Each record becomes one row with the two answers in an A/B order drawn by a
seeded coin keyed by (seed, row), so the order does not depend on the
chunking; the raw form's second answer is drawn from the same generator.

The binarized form also covers TRL's preference layouts: `chosen` /
`rejected` as whole message lists (the prompt implicit, as here), or as
the answers only with `prompt` a message list (conversational) or a string
(standard, plain strings); a prompt written as an hh-rlhf transcript
(`Human: ... \\n\\nAssistant: ... \\n\\nHuman: ...`) is split into its turns
(`transcripts.prompt_turns`), and scores nested under a `metadata` object
(`metadata.score_chosen` / `metadata.score_rejected`) count as the
top-level ones. Scores are kept in the row's `meta`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from ._common import (
    READ_DEFAULTS,
    BadConversation,
    Builder,
    Chunk,
    ReadOptions,
    as_id,
    as_name,
    as_number,
    columns_error,
    first_is_a,
    split_turns,
    stream_records,
)
from .containers import (
    PYTHON_MESSAGES,
    columns_of,
    container,
    message_cell,
    python_repr_detail,
)
from .transcripts import BadTranscript, message_history, prompt_turns

__all__ = ["read", "completion_score"]

SOURCE = "ultrafeedback"
BINARIZED = ("chosen", "rejected")
RAW = ("instruction", "completions")
SCORES = ("score_chosen", "score_rejected")
_BINARIZED_COLUMNS = ("prompt_id", "prompt", *BINARIZED, *SCORES, "metadata")


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows from an UltraFeedback file; the form is told
    by its columns (chosen/rejected: binarized; instruction/completions: raw)."""
    names = columns_of(path)
    csv = container(path) == "csv"
    if all(c in names for c in BINARIZED):
        return stream_records(
            path,
            _BINARIZED_COLUMNS,
            chunk_rows,
            SOURCE,
            lambda r, row, out: _binarized(r, row, out, seed, csv),
            csv_json=("metadata", *SCORES),
        )
    if all(c in names for c in RAW):
        return stream_records(
            path,
            ("prompt_id", *RAW),
            chunk_rows,
            SOURCE,
            lambda r, row, out: _raw(r, row, out, seed),
            csv_json=("completions",),
        )
    form = BINARIZED if any(c in names for c in BINARIZED) or "instruction" not in names else RAW
    raise columns_error(path, SOURCE, [c for c in form if c not in names], names)


def _labels(first_score: Optional[float], second_score: Optional[float], first_a: bool) -> list:
    """[A, B, tie] for a first (chosen) and second answer: the higher score
    wins, equal scores tie, no scores at all: the first wins."""
    if first_score is not None and second_score is not None:
        if first_score == second_score:
            return [0.0, 0.0, 1.0]
        first_wins = first_score > second_score
    else:
        first_wins = True
    return [1.0, 0.0, 0.0] if first_wins == first_a else [0.0, 1.0, 0.0]


def _side(value: Any, name: str) -> tuple[list, list]:
    """(user turns, answers) of a `chosen` / `rejected` value: a message
    list, or a plain answer string (no user turns)."""
    if isinstance(value, str):
        return [], [value]
    return split_turns(value, name, need_user=False)


def _raw_scores(record: dict) -> tuple:
    """(score_chosen, score_rejected) as written: the top-level columns, or
    the `metadata` object's keys of the same names when neither is there."""
    scores = tuple(record.get(name) for name in SCORES)
    metadata = record.get("metadata")
    if all(s is None for s in scores) and isinstance(metadata, dict):
        scores = tuple(metadata.get(name) for name in SCORES)
    return scores


def _prompt(prompt: Any) -> tuple[list, list]:
    """(user turns, earlier assistant turns) of the `prompt` column: a
    string (a plain question or an hh-rlhf transcript) or, in TRL's
    conversational form, a list of `{role, content}` messages."""
    if isinstance(prompt, str):
        return prompt_turns(prompt)
    if isinstance(prompt, (list, tuple)):
        return message_history(prompt, "prompt")
    raise BadConversation("chosen has no user turn and prompt is not a string or message list")


def _csv_texts(record: dict) -> None:
    """A CSV record's prompt / chosen / rejected cells: message lists as
    JSON text parsed, plain strings kept; a Python repr of a message list
    is refused (BadConversation saying to write JSON)."""
    for name in ("prompt", *BINARIZED):
        value = message_cell(record.get(name))
        if isinstance(value, str) and PYTHON_MESSAGES.match(value):
            raise BadConversation(python_repr_detail(name, value))
        record[name] = value


def _binarized(record: dict, row: int, out: Builder, seed: int, csv: bool) -> None:
    ident = as_id(record.get("prompt_id")) or str(row)
    try:
        if csv:
            _csv_texts(record)
        users, chosen = _side(record.get("chosen"), "chosen")
        _, rejected = _side(record.get("rejected"), "rejected")
        if not users:
            # Some exports keep only the answers; the prompt column has the question
            # (or the history, as an hh-rlhf transcript): earlier assistant turns open
            # both answers, as a message list's would.
            users, shared = _prompt(record.get("prompt"))
            if len(chosen) == 1 and len(rejected) == 1:
                chosen, rejected = [*shared, *chosen], [*shared, *rejected]
    except (BadConversation, BadTranscript) as exc:
        out.drop(id=ident, row=row, reason="bad_conversation", detail=str(exc))
        return
    raw_scores = _raw_scores(record)
    scores = tuple(as_number(s) for s in raw_scores)
    if any(s is None for s in scores) and not all(s is None for s in raw_scores):
        out.drop(
            id=ident,
            row=row,
            reason="missing_score",
            detail=f"score_chosen={raw_scores[0]!r}, score_rejected={raw_scores[1]!r}",
        )
        return
    chosen_a, _ = first_is_a(seed, row)
    meta = None if scores[0] is None else dict(zip(SCORES, scores))
    out.add(
        id=ident,
        prompt=users,
        response_a=chosen if chosen_a else rejected,
        response_b=rejected if chosen_a else chosen,
        labels=_labels(scores[0], scores[1], chosen_a),
        row=row,
        meta=meta,
    )


def completion_score(completion: dict) -> Optional[float]:
    """A raw completion's rating: `overall_score` when it is a number, else
    the mean of the numeric `Rating`s of its `annotations` aspects ("N/A"
    and other text skipped); None when it has neither."""
    overall = as_number(completion.get("overall_score"))
    if overall is not None:
        return overall
    annotations = completion.get("annotations")
    if not isinstance(annotations, dict):
        return None
    ratings = []
    for aspect in annotations.values():
        if isinstance(aspect, dict):
            rating = as_number(aspect.get("Rating"))
            if rating is not None:
                ratings.append(rating)
    return sum(ratings) / len(ratings) if ratings else None


def _raw(record: dict, row: int, out: Builder, seed: int) -> None:
    ident = as_id(record.get("prompt_id")) or str(row)
    instruction = record.get("instruction")
    if not isinstance(instruction, str):
        out.drop(
            id=ident,
            row=row,
            reason="bad_conversation",
            detail=f"instruction is {type(instruction).__name__}, not a string",
        )
        return
    completions = record.get("completions")
    if not isinstance(completions, (list, tuple)):
        completions = []
    answered = [
        c for c in completions if isinstance(c, dict) and isinstance(c.get("response"), str)
    ]
    usable = [(c, s) for c in answered if (s := completion_score(c)) is not None]
    if len(usable) < 2:
        reason = "missing_score" if len(answered) >= 2 else "too_few_completions"
        out.drop(
            id=ident,
            row=row,
            reason=reason,
            detail=(
                f"{len(completions)} completion(s), {len(answered)} with a response, "
                f"{len(usable)} of them rated; 2 needed"
            ),
        )
        return
    best = max(range(len(usable)), key=lambda i: (usable[i][1], -i))
    chosen, chosen_score = usable[best]
    rest = usable[:best] + usable[best + 1 :]
    chosen_a, rng = first_is_a(seed, row)
    other, other_score = rest[rng.below(len(rest))]
    first, second = (chosen, other) if chosen_a else (other, chosen)
    out.add(
        id=ident,
        model_a=as_name(first.get("model")),
        model_b=as_name(second.get("model")),
        prompt=[instruction],
        response_a=[first["response"]],
        response_b=[second["response"]],
        labels=_labels(chosen_score, other_score, chosen_a),
        row=row,
    )
