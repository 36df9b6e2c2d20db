"""Reference: the per-row facts of `_core.Rows.features`, written from
docs/dataset.md ("Row keys") in plain Python (XXH3-64 from the `xxhash`
package, a test dependency)."""

from __future__ import annotations

from typing import Optional

from ..encoded import REPAIR_NULL
from .turns import pad_and_clip, parse_turn_list

# Unicode White_Space, as listed by the Unicode standard (Rust's
# `char::is_whitespace`); Python's `str.isspace` differs (it includes
# U+001C..U+001F), so the set is spelled out.
WHITE_SPACE = frozenset(
    [chr(c) for c in range(0x09, 0x0E)]
    + [" ", "\x85", "\xa0", "\u1680"]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
)


def normalize(text: str) -> tuple[str, bool]:
    """Whitespace runs -> one space, ends trimmed, each character lower-cased
    on its own. Returns the text and whether it was blank."""
    out: list[str] = []
    pending = False
    for ch in text:
        if ch in WHITE_SPACE:
            pending = bool(out)
            continue
        if pending:
            out.append(" ")
            pending = False
        out.append(ch.lower())
    return "".join(out), not out


def field_key(turns: list[str]) -> tuple[int, bool, int]:
    """(XXH3-64 of the normalised turns joined by U+001F, all blank, chars)."""
    import xxhash

    parts, blank, chars = [], True, 0
    for t in turns:
        norm, is_blank = normalize(t)
        parts.append(norm)
        blank &= is_blank
        chars += len(t)
    data = "\x1f".join(parts).encode("utf-8")
    return xxhash.xxh3_64_intdigest(data), blank, chars


def pair_key(prompt: int, a: int, b: int) -> int:
    import xxhash

    lo, hi = min(a, b), max(a, b)
    data = b"".join(x.to_bytes(8, "little") for x in (prompt, lo, hi))
    return xxhash.xxh3_64_intdigest(data)


def row_turns(
    cells: tuple, null_text: str = "", json_cells: bool = True
) -> tuple[Optional[list[list[str]]], int, Optional[tuple[str, str]]]:
    """One row's three fields as padded turn lists, repairs, and the error
    (column, message) of an unparsable cell."""
    names = ("prompt", "response_a", "response_b")
    fields, flags = [], 0
    for name, cell in zip(names, cells):
        if cell is None:
            fields.append([])
            flags |= REPAIR_NULL
            continue
        if json_cells:
            try:
                turns, f = parse_turn_list(cell, null_text)
            except ValueError as exc:
                return None, 0, (name, str(exc))
        else:
            turns, f = [], 0
            for t in cell:
                if t is None:
                    turns.append(null_text)
                    f |= REPAIR_NULL
                else:
                    turns.append(t)
        fields.append(turns)
        flags |= f
    fields, f = pad_and_clip(fields)
    return fields, flags | f, None


def features(rows: list[tuple], null_text: str = "", json_cells: bool = True) -> dict:
    """The facts of `_core.Rows.features` for rows of three cells each
    (JSON-list text, or lists of str/None when `json_cells` is False)."""
    out: dict[str, list] = {
        k: []
        for k in (
            "turns",
            "repairs",
            "empty_prompt",
            "empty_a",
            "empty_b",
            "identical",
            "prompt_key",
            "a_key",
            "b_key",
            "pair_key",
            "chars",
            "error",
        )
    }
    for cells in rows:
        fields, flags, err = row_turns(cells, null_text, json_cells)
        if fields is None:
            fields, flags = [[], [], []], 0
        keys = [field_key(f) for f in fields]
        out["turns"].append(len(fields[0]))
        out["repairs"].append(flags)
        out["empty_prompt"].append(keys[0][1])
        out["empty_a"].append(keys[1][1])
        out["empty_b"].append(keys[2][1])
        out["identical"].append(keys[1][0] == keys[2][0])
        out["prompt_key"].append(keys[0][0])
        out["a_key"].append(keys[1][0])
        out["b_key"].append(keys[2][0])
        out["pair_key"].append(pair_key(keys[0][0], keys[1][0], keys[2][0]))
        out["chars"].append(sum(k[2] for k in keys))
        out["error"].append(err is not None)
    return out
