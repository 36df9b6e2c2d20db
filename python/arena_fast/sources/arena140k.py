"""lmarena-ai/arena-human-preference-140k: parquet, a JSON array, JSON
lines or CSV (conversations and category_tag as JSON text in their
cells), with the 4-class winner (`both_bad`: label space `abtx`).

Each turn's `content` is a list of typed parts `{type, text, image,
mimeType}`. Text parts are kept in order, joined by a blank line (`\\n\\n`),
so a turn of one text part is that text exactly (the same prompt as in the
Kaggle or 33k files, for cross-source de-duplication). Image parts follow
`ReadOptions.images`: "strip" leaves them out of the text, counted in the
row's `meta` as `images_stripped` (a turn of images only becomes an empty
turn, "", which the empty-answer policies then see); "drop" drops the
record with reason `image`. A part of another type, or a content that is
neither a list of parts, a string nor null, drops the record as
`bad_conversation` (nothing is lost unseen); a null content is a null turn.
`id` is the row id; `language`, `category_tag` and the other per-row fields
are row metadata (`sources.lmarena`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

from ._common import (
    READ_DEFAULTS,
    BadConversation,
    Chunk,
    ReadOptions,
    check_columns,
    stream_records,
)
from .arena33k import CSV_JSON  # the same columns, typed the same in a CSV
from .containers import columns_of
from .lmarena import METADATA_COLUMNS, ImageContent, add_battle

__all__ = ["read", "WINNERS", "PART_SEPARATOR", "flatten_conversation", "has_typed_parts"]

SOURCE = "arena140k"
REQUIRED = ("conversation_a", "conversation_b", "winner")
COLUMNS = ("id", "model_a", "model_b", *REQUIRED, *METADATA_COLUMNS)
# Label space abtx: A, B, tie, both_bad.
WINNERS: dict[str, list[float]] = {
    "model_a": [1.0, 0.0, 0.0, 0.0],
    "model_b": [0.0, 1.0, 0.0, 0.0],
    "tie": [0.0, 0.0, 1.0, 0.0],
    "both_bad": [0.0, 0.0, 0.0, 1.0],
}
PART_SEPARATOR = "\n\n"


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows (labels of 4 classes) from a 140k-layout
    file. The prompt is the user turns of conversation_a, each side's
    answers its assistant turns. `seed` is unused (the file fixes A and B)."""
    names = columns_of(path)
    check_columns(path, SOURCE, names, REQUIRED)
    return stream_records(
        path,
        COLUMNS,
        chunk_rows,
        SOURCE,
        lambda record, row, out: add_battle(
            record,
            row,
            out,
            names,
            id_column="id",
            winners=WINNERS,
            flatten=lambda value, what: flatten_conversation(value, what, options),
        ),
        classes=4,
        csv_json=CSV_JSON,
    )


def has_typed_parts(conversation: Any) -> bool:
    """Whether a message list's first message holds a list of parts (how
    format detection tells a 140k file from a 33k one)."""
    if not isinstance(conversation, (list, tuple)) or not conversation:
        return False
    first = conversation[0]
    return isinstance(first, dict) and isinstance(first.get("content"), (list, tuple))


def flatten_conversation(conversation: Any, what: str, options: ReadOptions) -> tuple[Any, int]:
    """A message list whose contents are typed parts as one of plain
    contents (text parts joined by `PART_SEPARATOR`), and the number of
    image parts left out. A value that is not a list is returned as it is
    (`split_turns` refuses it with its detail). Raises BadConversation for
    a bad content, ImageContent for an image under images="drop"."""
    if not isinstance(conversation, (list, tuple)):
        return conversation, 0
    turns, images = [], 0
    for i, turn in enumerate(conversation):
        if not isinstance(turn, dict) or "content" not in turn:
            turns.append(turn)  # split_turns names it
            continue
        text, n = _content_text(turn["content"], f"{what}[{i}].content", options)
        images += n
        turns.append({**turn, "content": text})
    return turns, images


def _content_text(content: Any, what: str, options: ReadOptions) -> tuple[Any, int]:
    """(the text of one content, image parts left out)."""
    if content is None or isinstance(content, str):
        return content, 0
    if not isinstance(content, (list, tuple)):
        raise BadConversation(f"{what} is a {type(content).__name__}, not a list of parts")
    texts, images = [], 0
    for j, part in enumerate(content):
        kind = _part_type(part)
        if isinstance(part, str):  # a bare string among the parts: its text
            texts.append(part)
        elif kind == "text":
            text = part.get("text")
            if text is not None and not isinstance(text, str):
                raise BadConversation(f"{what}[{j}].text is a {type(text).__name__}")
            if text is not None:
                texts.append(text)
        elif kind == "image":
            if options.images == "drop":
                raise ImageContent(f"{what}[{j}] is an image part (images='drop')")
            images += 1
        else:
            raise BadConversation(f"{what}[{j}] is a part of unknown type {kind!r}")
    return PART_SEPARATOR.join(texts), images


def _part_type(part: Any) -> Any:
    """ "text", "image" or what else the part says it is; a part without a
    type is told by which of `text` / `image` it holds."""
    if not isinstance(part, dict):
        return type(part).__name__
    kind = part.get("type")
    if kind is None:
        if isinstance(part.get("text"), str):
            return "text"
        if part.get("image") is not None:
            return "image"
    return kind
