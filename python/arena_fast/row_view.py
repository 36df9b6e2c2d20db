"""A stored row's ids made readable: decoded piece by piece with special
tokens named, and split back into the template's pieces (header, prefix,
text, cut marker, suffix per turn and field) from the ids alone.

A built dataset keeps no texts, only each row's `input_ids` (and
`input_ids_swapped`, or for the separate layout `input_ids_b`, the prompt
with answer B, a turn being two fields there); `inspect --row` and the
dataset browser of `arena-fast serve` show a row through this module. The
split works because the encoder tokenizes every template piece on its own
(`Encoder`: template strings are markup, their ids are the same in every
row): a piece is found by its ids.
Text that holds a template piece's very ids (an answer quoting the
template) can move a boundary; the ids shown are the row's either way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .chat_layout import piece_name

__all__ = ["Span", "blocks", "decode_pieces", "render_row", "split_row", "FIELDS", "SIDE_FIELDS"]

FIELDS = ("prompt", "response A", "response B")  # as placed in the row
# The fields of each side of a separate-layout row (the encoder's
# `layout="separate"`: a turn is the prompt, then that side's answer, placed
# with the template's prompt and response A strings).
SIDE_FIELDS = {"A": ("prompt", "response A"), "B": ("prompt", "response B")}


def special_ids(tokenizer, ids) -> set:
    """The ids among `ids` whose token reads `<name>` (special tokens)."""
    special = set()
    for tid in set(ids):
        tok = tokenizer.id_to_token(tid)
        if tok is not None and tok.startswith("<") and tok.endswith(">") and len(tok) > 2:
            special.add(tid)
    return special


def decode_pieces(tokenizer, ids) -> list[tuple[str, Optional[str]]]:
    """`ids` decoded as `(text, None)` runs of ordinary tokens and `(token,
    token)` for each special token (shown by name, never decoded away)."""
    special = special_ids(tokenizer, ids)
    parts: list[tuple[str, Optional[str]]] = []
    run: list[int] = []
    for tid in ids:
        if tid in special:
            if run:
                parts.append((tokenizer.decode(run), None))
                run = []
            name = tokenizer.id_to_token(tid)
            parts.append((name, name))
        else:
            run.append(tid)
    if run:
        parts.append((tokenizer.decode(run), None))
    return parts


def render_row(row: dict, tokenizer, template, marker: str) -> str:
    """The ids decoded piece by piece: special tokens as <<name>>, the cut
    marker as >>......<<, and a rule before each turn's header (the text
    `inspect --row` prints)."""
    pieces = decode_pieces(tokenizer, row["ids"])
    text = "".join(f"<<{text}>>" if name else text for text, name in pieces)
    if marker:
        text = text.replace(marker, f" >>{marker}<< ")
    turns = int(row.get("turns_kept") or 0)
    for i in range(turns, 0, -1):
        header = template.header_text(i)
        if header.strip():
            at = text.find(header.strip())
            if at >= 0:
                text = text[:at] + f"\n----- turn {i} -----\n" + text[at:]
    return text


@dataclass(frozen=True)
class Span:
    """The ids `start:stop` of a row are a `kind` piece (`bos`, `begin`,
    `header`, `prefix`, `text`, `marker`, `suffix`, `end`, `eos`, the kinds
    of `Encoder.explain`) of kept turn `turn` (1-based position in the row)
    and `field` (0 the prompt, 1 and 2 the answers as placed) where those
    apply."""

    kind: str
    start: int
    stop: int
    turn: Optional[int] = None
    field: Optional[int] = None


class _Ids:
    """A row's ids with a sub-sequence search."""

    def __init__(self, ids):
        self.ids = [int(i) for i in ids]

    def at(self, i: int, piece: list) -> bool:
        return bool(piece) and self.ids[i : i + len(piece)] == piece

    def find(self, piece: list, start: int, stop: int) -> int:
        """The first position in [start, stop) where `piece` begins, -1 if none."""
        if not piece:
            return -1
        first, k = piece[0], len(piece)
        for i in range(start, stop - k + 1):
            if self.ids[i] == first and self.ids[i : i + k] == piece:
                return i
        return -1


def split_row(
    ids, tokenizer, template, bos: Optional[int], eos: Optional[int], fields: int = 3
) -> list[Span]:
    """The template pieces of a stored row's `ids` (encoded with `template`,
    `bos` and `eos` by the dataset's encoder), in order, covering every id.
    `fields` per turn: 3 (prompt, A, B: the cross layout) or 2 (prompt and
    one answer, placed as response A: a side of the separate layout)."""
    row = _Ids(ids)
    enc = _Pieces(tokenizer, template)
    spans: list[Span] = []
    n = len(row.ids)
    i, stop = 0, n
    tail: list[Span] = []
    if eos is not None and n and row.ids[-1] == eos:
        stop = n - 1
        tail.append(Span("eos", stop, n))
    if row.at(stop - len(enc.end), enc.end) and stop - len(enc.end) >= 0:
        tail.insert(0, Span("end", stop - len(enc.end), stop))
        stop -= len(enc.end)
    if bos is not None and n and row.ids[0] == bos:
        spans.append(Span("bos", 0, 1))
        i = 1
    if row.at(i, enc.begin):
        spans.append(Span("begin", i, i + len(enc.begin)))
        i += len(enc.begin)
    position = 1
    while i < stop:
        start = i
        i = _turn(row, enc, position, i, stop, spans, fields)
        if i == start:  # nothing recognised: the rest is text
            spans.append(Span("text", i, stop, position))
            i = stop
        position += 1
    return spans + tail


class _Pieces:
    """The template's pieces as ids (tokenized as the encoder does: markup,
    special tokens kept)."""

    def __init__(self, tokenizer, template):
        self._tok, self._template = tokenizer, template
        self.begin, self.end = self._ids(template.begin), self._ids(template.end)
        self.prefixes = [self._ids(p) for p in template.prefixes]
        self.suffixes = [self._ids(s) for s in template.suffixes]
        self.marker = self._ids(template.marker)
        self._headers: dict[int, list] = {}

    def _ids(self, text: str) -> list:
        return list(self._tok.encode(text, split_special_tokens=False)) if text else []

    def header(self, position: int) -> list:
        if position not in self._headers:
            self._headers[position] = self._ids(self._template.header_text(position))
        return self._headers[position]


def _turn(
    row: _Ids, enc: _Pieces, position: int, i: int, stop: int, spans: list, fields: int
) -> int:
    """Note the pieces of kept turn `position` (of `fields` fields) from `i`;
    returns where it ends."""
    header = enc.header(position)
    if row.at(i, header):
        spans.append(Span("header", i, i + len(header), position))
        i += len(header)
    last = fields - 1
    for field in range(fields):
        if i >= stop:
            break
        prefix = enc.prefixes[field]
        if row.at(i, prefix):
            spans.append(Span("prefix", i, i + len(prefix), position, field))
            i += len(prefix)
        suffix = enc.suffixes[field]
        after = (
            enc.prefixes[field + 1] if field < last else enc.header(position + 1) or enc.prefixes[0]
        )
        end = row.find(suffix + after, i, stop) if suffix or after else -1
        if end < 0:
            has_suffix = bool(suffix) and row.at(stop - len(suffix), suffix)
            end = stop - len(suffix) if has_suffix else stop
        _text(row, enc.marker, i, end, position, field, spans)
        i = end
        if row.at(i, suffix) and i + len(suffix) <= stop:
            spans.append(Span("suffix", i, i + len(suffix), position, field))
            i += len(suffix)
    return i


def _text(row: _Ids, marker: list, i: int, end: int, position: int, field: int, spans: list):
    """The text `i:end` of one field, its cut markers noted apart."""
    while i < end:
        at = row.find(marker, i, end)
        if at < 0:
            spans.append(Span("text", i, end, position, field))
            return
        if at > i:
            spans.append(Span("text", i, at, position, field))
        spans.append(Span("marker", at, at + len(marker), position, field))
        i = at + len(marker)


def blocks(tokenizer, ids, spans: list, fields: tuple = FIELDS, chat: bool = False) -> list:
    """The spans of `split_row` grouped for display (the dataset browser's
    row page): one block per piece outside the turns, one per turn field
    (named by `fields`; the pieces of a chat template by their name there,
    `chat_layout.piece_name`); each with its decoded pieces and tokens."""
    out: list = []
    for span in spans:
        pieces = decode_pieces(tokenizer, ids[span.start : span.stop].tolist())
        part = {"kind": span.kind, "pieces": pieces, "tokens": span.stop - span.start}
        key = (span.turn, span.field) if span.field is not None else (span.kind, span.start)
        if out and out[-1]["key"] == key:
            block = out[-1]
        else:
            name = fields[span.field] if span.field is not None else span.kind
            if chat and span.field is None:
                name = piece_name(span.kind, None)
            kind = "field" if span.field is not None else span.kind
            block = {"key": key, "name": name, "kind": kind, "turn": span.turn}
            block.update(parts=[], tokens=0, text_tokens=0, cut=False)
            out.append(block)
        block["parts"].append(part)
        block["tokens"] += part["tokens"]
        block["text_tokens"] += part["tokens"] if span.kind == "text" else 0
        block["cut"] |= span.kind == "marker"
    return out
