"""Reference: a JSON-list cell -> turns, with repairs flagged."""

from __future__ import annotations

import json

from ..encoded import REPAIR_CLIPPED, REPAIR_NULL, REPAIR_RAGGED
from ..text import CLIP_KEEP_BYTES, MAX_TURN_BYTES, repair_text  # noqa: F401 (the rules under test)


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


def clip_turn(text: str) -> tuple[str, int]:
    """A turn past MAX_TURN_BYTES -> its head and tail, cut at characters."""
    if len(text) * 4 <= MAX_TURN_BYTES:  # a character is at most 4 bytes
        return text, 0
    raw = text.encode("utf-8")
    if len(raw) <= MAX_TURN_BYTES:
        return text, 0
    # Decoding a cut drops the partial character at either end: the head
    # rounds down to a character boundary, the tail rounds up.
    head = raw[:CLIP_KEEP_BYTES].decode("utf-8", "ignore")
    tail = raw[len(raw) - CLIP_KEEP_BYTES :].decode("utf-8", "ignore")
    return head + tail, REPAIR_CLIPPED


def pad_and_clip(fields: list[list[str]]) -> tuple[list[list[str]], int]:
    """Pad the three turn lists to one length, clip long turns; the flags."""
    flags = 0
    n = max(len(x) for x in fields)
    if any(len(x) != n for x in fields):
        flags |= REPAIR_RAGGED
        fields = [x + [""] * (n - len(x)) for x in fields]
    out = []
    for turns in fields:
        clipped = []
        for text in turns:
            text, f = clip_turn(text)
            clipped.append(text)
            flags |= f
        out.append(clipped)
    return out, flags
