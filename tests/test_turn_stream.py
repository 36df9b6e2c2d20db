"""The streaming parse of big Kaggle CSV cells (`_core.clip_csv_cells`, the
core's `turn_stream`) against the pure-Python reference: for generated CSV
files, the copy it writes holds, cell by cell, the turns that
`reference.turns.parse_turn_list` and `clip_turn` give on the whole cell, and
it reports per row the repair flags the reference gives, the cells the
reference refuses, and the line breaks it removed. Some turns pass the real
clip (MAX_TURN_BYTES): a few MB per example, so the CI profile's 20
examples take a few seconds (HYPOTHESIS_PROFILE=dev runs 100)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from hypothesis import event, given
from hypothesis import strategies as st

from arena_fast import _core
from arena_fast.encoded import REPAIR_CLIPPED, REPAIR_NULL, REPAIR_SURROGATE
from arena_fast.reference.turns import MAX_TURN_BYTES, clip_turn, parse_turn_list
from strategies import pieces

TEXT_COLUMNS = ["prompt", "response_a", "response_b"]
OTHER_COLUMNS = ["id", "model_a", "model_b", "winner_model_a", "winner_model_b", "winner_tie"]
HEADER = [
    "id",
    "model_a",
    "model_b",
    *TEXT_COLUMNS,
    "winner_model_a",
    "winner_model_b",
    "winner_tie",
]
# What a CSV or a JSON string must escape or quote, and characters of 1 to 4
# UTF-8 bytes (a lone surrogate is written as a \u escape, a pair too).
_TRICKY = st.sampled_from(['"', ",", "\\", "\n", "\r\n", "\r", "/", "\t", "é", "€", "😀", "\ud83d"])
_SHORT = st.lists(st.one_of(pieces(), _TRICKY), max_size=8).map("".join)
# Cells the reference refuses (never empty: an empty cell is not over any limit).
BROKEN = ('["a"', '["a", 3]', '{"a": 1}', '"a"', '["a\\q"]', "[nul]", '["a"] x', " ", '["\\u12"]')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@st.composite
def long_turns(draw) -> str:
    """A turn around or past the clip: a short head, a repeated unit of
    1- to 4-byte characters (escapes among them), a short tail."""
    unit = draw(st.lists(_TRICKY | st.sampled_from(["a", "xy z"]), min_size=1, max_size=5))
    unit = "".join(unit)
    size = draw(st.sampled_from([MAX_TURN_BYTES, 2 * MAX_TURN_BYTES + MAX_TURN_BYTES // 3]))
    size += draw(st.integers(min_value=-6, max_value=6))
    head, tail = draw(_SHORT), draw(_SHORT)
    reps = max(size - len(head) - len(tail), 0) // len(unit.encode("utf-8", "surrogatepass"))
    return head + unit * reps + tail


@st.composite
def json_cells(draw, allow_long: bool) -> str:
    """A JSON list of strings and nulls as a writer might have dumped it."""
    if draw(st.integers(min_value=0, max_value=11)) == 0:
        return draw(st.sampled_from(BROKEN))
    turns = draw(st.lists(st.none() | _SHORT, max_size=4))
    if allow_long and turns and draw(st.integers(min_value=0, max_value=3)) == 0:
        turns[draw(st.integers(min_value=0, max_value=len(turns) - 1))] = draw(long_turns())
    ascii_only = draw(st.booleans())
    separators = draw(st.sampled_from([(", ", ": "), (",", ":")]))
    indent = draw(st.sampled_from([None, None, 1]))
    cell = json.dumps(turns, ensure_ascii=ascii_only, separators=separators, indent=indent)
    # Raw unicode, but a lone surrogate (no UTF-8) as its escape.
    cell = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", cell)
    if draw(st.integers(min_value=0, max_value=7)) == 0:
        cell = cell[: draw(st.integers(min_value=1, max_value=len(cell)))]  # truncated
    return cell


class Rows(list):
    """Rows whose repr shortens the long cells."""

    def __repr__(self) -> str:
        def short(cell: str) -> str:
            if len(cell) <= 300:
                return repr(cell)
            return f"{cell[:150]!r} ... ({len(cell)} chars) ... {cell[-150:]!r}"

        return "[" + ",\n ".join("[" + ", ".join(map(short, row)) + "]" for row in self) + "]"


@st.composite
def csv_files(draw) -> tuple[list[list[str]], str]:
    """Rows of a Kaggle train.csv (at most two long turns in all), and the
    line terminator."""
    rows = []
    longs = 0
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        texts = []
        for _ in TEXT_COLUMNS:
            cell = draw(json_cells(allow_long=longs < 2))
            longs += len(cell) > MAX_TURN_BYTES // 2
            texts.append(cell)
        model = st.text(st.sampled_from('ab,"é \n'), max_size=4)
        rows.append([str(i), draw(model), draw(model), *texts, "1", "0", "0"])
    return Rows(rows), draw(st.sampled_from(["\n", "\r\n"]))


def write_csv(path: Path, rows: list[list[str]], terminator: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator=terminator).writerows([HEADER, *rows])


def read_csv(path: Path) -> list[list[str]]:
    limit = csv.field_size_limit(1 << 30)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.reader(f))
    finally:
        csv.field_size_limit(limit)


def raw_size(cell: str) -> int:
    """The cell's bytes in the file, quotes included."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([cell])
    return len(out.getvalue().encode("utf-8"))


def whole_cell(cell: str):
    """The reference on the whole cell: (turns, flags), or None if it refuses it."""
    try:
        turns, flags = parse_turn_list(cell)
    except ValueError:
        return None
    clipped = [clip_turn(t) for t in turns]
    for _, f in clipped:
        flags |= f
    return [t for t, _ in clipped], flags


@given(csv_files(), st.sampled_from([0, 0, MAX_TURN_BYTES]))
def test_the_copy_holds_the_reference_turns(tmp_path_factory, file, text_bytes):
    rows, terminator = file
    tmp = tmp_path_factory.mktemp("csv")
    path, copy = tmp / "in.csv", tmp / "copy.csv"
    write_csv(path, rows, terminator)

    found = _core.clip_csv_cells(
        str(path), str(copy), TEXT_COLUMNS, OTHER_COLUMNS, text_bytes, 1 << 62
    )

    streamed = {
        (r, c) for r, row in enumerate(rows) for c in (3, 4, 5) if raw_size(row[c]) > text_bytes
    }
    if not streamed:
        event("no copy")
        assert found is None and not copy.exists()
        return
    header, *copied = read_csv(copy)
    assert header == HEADER and found["rows"] == len(rows) == len(copied)
    flags = {r: 0 for r in range(len(rows))}
    bad, lines = set(), {r: 0 for r in range(len(rows))}
    for r, (row, got) in enumerate(zip(rows, copied)):
        assert len(got) == len(row)
        for c, (cell, out) in enumerate(zip(row, got)):
            if (r, c) not in streamed:
                assert out == cell  # copied as it is
                continue
            expected = whole_cell(cell)
            lines[r] += len(_LINE_BREAK.findall(cell))
            if expected is None:
                bad.add((r, HEADER[c]))
                continue
            turns, cell_flags = expected
            # The copy holds the turns repaired and clipped, nulls still null.
            again, again_flags = parse_turn_list(out)
            assert again == turns, f"row {r}, column {HEADER[c]}"
            assert again_flags == cell_flags & REPAIR_NULL
            flags[r] |= cell_flags
    repaired = {r: 0 for r in range(len(rows))}
    for r, f in found["repaired"]:
        repaired[r] |= f
    assert repaired == flags
    for name, bit in (
        ("null", REPAIR_NULL),
        ("surrogate", REPAIR_SURROGATE),
        ("clipped", REPAIR_CLIPPED),
    ):
        if any(f & bit for f in flags.values()):
            event(name)
    event(f"refused cells: {bool(bad)}")
    event(f"line breaks removed: {any(lines.values())}")
    assert {(r, column) for r, column, _ in found["bad"]} == bad
    for _, _, message in found["bad"]:
        assert re.fullmatch(r"invalid JSON turn list at character \d+: .+", message)
    removed = {r: 0 for r in range(len(rows))}
    for r, n in found["lines_removed"]:
        removed[r] += n
    assert removed == lines
