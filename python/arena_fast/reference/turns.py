"""Reference: a JSON-list cell -> turns, with repairs flagged."""

from __future__ import annotations

import json
import re

from ..encoded import REPAIR_NULL, REPAIR_SURROGATE

_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_text(text: str) -> tuple[str, int]:
    """Replace lone surrogates (which UTF-8 cannot hold) by U+FFFD."""
    fixed, count = _SURROGATE.subn("\ufffd", text)
    return fixed, REPAIR_SURROGATE if count else 0


def parse_turn_list(cell: str, null_text: str = "") -> tuple[list[str], int]:
    """A JSON list of strings and nulls -> (turns, repair flags).

    Anything else (invalid JSON, numbers, objects, nested lists, a bare string)
    raises ValueError."""
    value = json.loads(cell)
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON list, got {type(value).__name__}")
    turns, flags = [], 0
    for item in value:
        if item is None:
            turns.append(null_text)
            flags |= REPAIR_NULL
        elif isinstance(item, str):
            text, f = repair_text(item)
            turns.append(text)
            flags |= f
        else:
            raise ValueError(f"expected a string or null, got {type(item).__name__}")
    return turns, flags
