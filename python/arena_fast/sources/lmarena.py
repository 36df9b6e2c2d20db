"""What the lmarena / lmsys arena files share beyond `_common`: a battle
record (id, winner, two conversations) as a canonical row (`add_battle`),
and their row metadata (docs/dataset.md, "Row metadata"). `language` is kept as the
row's `language`; `category_tag` (nested flags such as
`{"criteria_v0.1": {"math": true, ...}, "if_v0.1": {"if": false, ...}}`)
becomes the row's `category`: the names of its true flags, sorted and
joined by `,` (`"none"` when no flag is true, null without a tag); the
full tag and the other per-row fields go to `meta`."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional

from ..encoded import REPAIR_IMAGE
from ._common import BadConversation, Builder, as_name, split_turns

__all__ = [
    "METADATA_COLUMNS",
    "ImageContent",
    "add_battle",
    "category_name",
    "json_safe",
    "row_metadata",
]

# The columns of the arena files kept as row metadata (those present).
METADATA_COLUMNS = (
    "language",
    "category_tag",
    "is_code",
    "evaluation_session_id",
    "evaluation_order",
    "timestamp",
    "tstamp",
    "turn",
)


class ImageContent(ValueError):
    """A conversation with an image part, under images="drop"."""


def add_battle(
    record: dict,
    row: int,
    out: Builder,
    names: Sequence[str],
    *,
    id_column: str,
    winners: dict,
    flatten: Optional[Callable[[Any, str], tuple[Any, int]]] = None,
) -> None:
    """One battle record as a row of `out`, or a drop: the id from
    `id_column` (the row number without it), the labels of `winners`, the
    prompt from conversation_a's user turns (conversation_b repeats them),
    each side's answers its assistant turns, the metadata. `flatten(value,
    what)` turns typed content into message lists first (arena-140k),
    returning the image parts it stripped, or raising ImageContent."""
    ident = out.row_id(record, row, id_column in names, id_column)
    if ident is None:
        return
    winner = record.get("winner")
    labels = winners.get(winner) if isinstance(winner, str) else None
    if labels is None:
        detail = f"winner {winner!r} is not one of {list(winners)}"
        out.drop(id=ident, row=row, reason="bad_winner", detail=detail)
        return
    conv_a, conv_b, images = record.get("conversation_a"), record.get("conversation_b"), 0
    try:
        if flatten is not None:
            conv_a, n_a = flatten(conv_a, "conversation_a")
            conv_b, n_b = flatten(conv_b, "conversation_b")
            images = n_a + n_b
        prompt, answers_a = split_turns(conv_a, "conversation_a")
        _, answers_b = split_turns(conv_b, "conversation_b")
    except ImageContent as exc:
        out.drop(id=ident, row=row, reason="image", detail=str(exc))
        return
    except BadConversation as exc:
        out.drop(id=ident, row=row, reason="bad_conversation", detail=str(exc))
        return
    language, category, meta = row_metadata(
        record, names, {"images_stripped": images} if images else None
    )
    out.add(
        id=ident,
        model_a=as_name(record.get("model_a")),
        model_b=as_name(record.get("model_b")),
        prompt=prompt,
        response_a=answers_a,
        response_b=answers_b,
        labels=list(labels),
        row=row,
        language=language,
        category=category,
        meta=meta,
        repairs=REPAIR_IMAGE if images else 0,
    )


# A category_tag nested deeper than this is not walked further (a hostile
# file cannot recurse without bound).
_MAX_DEPTH = 8


def category_name(tag: Any) -> Optional[str]:
    """The short readable category of a `category_tag`: its true flags'
    names, sorted, joined by `,`; `"none"` when it has no true flag; None
    when it is not a mapping (missing, null, another kind)."""
    if not isinstance(tag, dict):
        return None
    names = sorted(set(_true_flags(tag, 0)))
    return ",".join(names) if names else "none"


def _true_flags(tag: dict, depth: int) -> Iterable[str]:
    for key, value in tag.items():
        if value is True:
            yield str(key)
        elif isinstance(value, dict) and depth < _MAX_DEPTH:
            yield from _true_flags(value, depth + 1)


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` as plain JSON values: dates as ISO 8601 text, non-finite
    floats as null, bytes as their length, anything else unknown as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": len(value)}
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    return str(value)


def row_metadata(
    record: dict, names: Sequence[str], extra: Optional[dict] = None
) -> tuple[Optional[str], Optional[str], Optional[dict]]:
    """(language, category, meta) of one record: `language` a string or
    None, `category` from `category_tag`, `meta` the record's values of the
    `METADATA_COLUMNS` among `names` other than `language` (and `extra`),
    JSON-safe; None when there is nothing to keep."""
    meta = {
        c: json_safe(record.get(c))
        for c in METADATA_COLUMNS
        if c in names and c != "language" and record.get(c) is not None
    }
    if extra:
        meta.update(extra)
    return as_name(record.get("language")), category_name(record.get("category_tag")), meta or None
