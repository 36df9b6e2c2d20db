"""The text rules every reader and the encoder share (docs/encoding.md): a
lone surrogate (which UTF-8 cannot hold) becomes U+FFFD, flagged
`REPAIR_SURROGATE`; a turn of more than `MAX_TURN_BYTES` of UTF-8 keeps its
first and last `CLIP_KEEP_BYTES` (`REPAIR_CLIPPED`, done in Rust,
`turns.rs`). The Python readers apply `repair_text` to JSON sources; the
reference (`reference.turns`) checks the Rust core against the same rules.
`shorten` and `shown` are how a message quotes a long text or a value."""

from __future__ import annotations

import re
from typing import Any

from .encoded import REPAIR_SURROGATE

__all__ = ["MAX_TURN_BYTES", "CLIP_KEEP_BYTES", "repair_text", "shorten", "shown"]

_SURROGATE = re.compile("[\ud800-\udfff]")

# A turn of more UTF-8 bytes keeps its first and last CLIP_KEEP_BYTES.
MAX_TURN_BYTES = 1 << 20
CLIP_KEEP_BYTES = MAX_TURN_BYTES // 2


def repair_text(text: str) -> tuple[str, int]:
    """Replace lone surrogates (which UTF-8 cannot hold) by U+FFFD."""
    fixed, count = _SURROGATE.subn("\ufffd", text)
    return fixed, REPAIR_SURROGATE if count else 0


def shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a trailing "..." when longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: Any, limit: int) -> str:
    """`repr(value)` for an error message, at most `limit` characters (an int
    past Python's digit limit, which has no repr, named by its type)."""
    try:
        text = repr(value)
    except ValueError:
        return f"a {type(value).__name__} too large to show"
    return shorten(text, limit)
