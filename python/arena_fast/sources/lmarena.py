"""What the lmarena / lmsys arena files share beyond `_common`: their row
metadata (docs/dataset.md, "Row metadata"). `language` is kept as the
row's `language`; `category_tag` (nested flags such as
`{"criteria_v0.1": {"math": true, ...}, "if_v0.1": {"if": false, ...}}`)
becomes the row's `category`: the names of its true flags, sorted and
joined by `,` (`"none"` when no flag is true, null without a tag); the
full tag and the other per-row fields go to `meta`."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from ._common import as_name

__all__ = ["METADATA_COLUMNS", "category_name", "json_safe", "row_metadata"]

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
