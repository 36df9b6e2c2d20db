"""lmsys-chat-1m conversations (parquet, a JSON array, JSON lines or CSV with
the conversation as JSON text in its cell) paired
into unlabelled A/B rows for pseudo-labelling.

Pairing needs every conversation, so this reader is not streaming: a first
pass keeps, per conversation, its id, model and two 16-byte digests (of the
normalised prompt and of the normalised answers); a second pass re-reads the
file for the texts of the conversations that were paired. Memory is the
digests of all conversations plus the texts of the paired ones."""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

from ._common import (
    READ_DEFAULTS,
    BadConversation,
    Builder,
    Chunk,
    ReadOptions,
    as_name,
    check_columns,
    clean_text,
    first_is_a,
    split_turns,
)
from .containers import (
    BadRecord,
    columns_of,
    iter_records,
    records_at,
)

__all__ = ["read", "normalise", "turns_key"]

SOURCE = "chat1m"
REQUIRED = ("conversation", "model")
COLUMNS = ("conversation_id", "model", "conversation")
CSV_JSON = ("conversation",)  # a CSV file's conversation cells hold JSON text


def normalise(text: Optional[str]) -> str:
    """Whitespace runs become one space, ends trimmed, lower-cased; a null
    turn is the empty string."""
    return " ".join(text.split()).lower() if text is not None else ""


def turns_key(turns: Sequence[Optional[str]]) -> str:
    """The normalised turns joined by U+001F: equal keys, same texts."""
    return "\x1f".join(normalise(t) for t in turns)


def _digest(turns: Sequence[Optional[str]]) -> bytes:
    # Cleaned as the rows will be (lone surrogates cannot be UTF-8).
    key = clean_text(turns_key(turns))
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


class _Conversation(NamedTuple):
    row: int
    cid: str
    order: Any  # the conversation_id (the row without that column): pairing order
    model: Optional[str]
    answers: bytes  # digest of the normalised answers


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of unlabelled pair rows (`input_rows` 2) from lmsys-chat-1m
    conversations, then the conversations left unpaired in `dropped`."""
    names = columns_of(path)
    check_columns(path, SOURCE, names, REQUIRED)
    return _chunks(path, "conversation_id" in names, chunk_rows, seed)


def _chunks(path: Union[str, Path], has_cid: bool, chunk_rows: int, seed: int) -> Iterator[Chunk]:
    drops = Builder(SOURCE)
    groups: dict[bytes, list[_Conversation]] = {}
    row = 0
    for records in iter_records(path, COLUMNS, chunk_rows, CSV_JSON):
        for record in records:
            scanned = _scan(record, row, has_cid, drops)
            if scanned is not None:
                prompt_key, conversation = scanned
                groups.setdefault(prompt_key, []).append(conversation)
            row += 1

    pairs: list[tuple[_Conversation, _Conversation]] = []
    for members in groups.values():
        paired, unpaired = _pair(members)
        pairs.extend(paired)
        for conversation, reason, detail in unpaired:
            drops.drop(id=conversation.cid, row=conversation.row, reason=reason, detail=detail)

    texts = _texts(path, {c.row for pair in pairs for c in pair})
    pair_chunks = (
        _pair_rows(pairs[start : start + chunk_rows], texts, seed)
        for start in range(0, len(pairs), chunk_rows)
    )
    drop_chunks = _sorted_drops(drops.chunk().dropped, chunk_rows)
    for rows, dropped in zip_longest(pair_chunks, drop_chunks):
        chunk = rows if rows is not None else Builder(SOURCE).chunk()
        if dropped is not None:
            chunk.dropped = dropped
        yield chunk


def _scan(
    record: Any, row: int, has_cid: bool, drops: Builder
) -> Optional[tuple[bytes, _Conversation]]:
    """(prompt digest, conversation) of one record, or None after recording
    why it cannot be paired."""
    if isinstance(record, BadRecord):
        drops.drop(id=None, row=row, reason="bad_record", detail=record.detail)
        return None
    cid = drops.row_id(record, row, has_cid, "conversation_id")
    if cid is None:
        return None
    try:
        users, answers = split_turns(record.get("conversation"))
    except BadConversation as exc:
        drops.drop(id=cid, row=row, reason="bad_conversation", detail=str(exc))
        return None
    order = cid if has_cid else row
    model = as_name(record.get("model"))
    return _digest(users), _Conversation(row, cid, order, model, _digest(answers))


def _pair(
    members: list[_Conversation],
) -> tuple[list[tuple[_Conversation, _Conversation]], list[tuple[_Conversation, str, str]]]:
    """Greedy pairing of one prompt's conversations in conversation_id order:
    each unused one takes the first later unused one of another model whose
    answers differ. Returns the pairs and (conversation, reason, detail) for
    the rest. Per-model queues keep a prompt asked thousands of times (the
    "hi"s of chat-1m) linear in practice."""
    order = sorted(members, key=lambda c: (c.order, c.row))
    queues: dict[str, deque] = {}
    for position, conversation in enumerate(order):
        if conversation.model is not None:
            queues.setdefault(conversation.model, deque()).append(position)
    used = [False] * len(order)
    pairs = []
    unpaired = []
    for i, conversation in enumerate(order):
        if used[i]:
            continue
        if conversation.model is None:
            unpaired.append(conversation)
            continue
        own = queues[conversation.model]
        own.popleft()  # i: every earlier one of this model is paired or passed
        if not own:
            del queues[conversation.model]
        best: Optional[int] = None
        for model, queue in queues.items():
            if model == conversation.model:
                continue
            for position in queue:
                if order[position].answers != conversation.answers:
                    if best is None or position < best:
                        best = position
                    break
        if best is None:
            unpaired.append(conversation)
            continue
        partner = order[best]
        assert partner.model is not None  # queued conversations have a model
        queue = queues[partner.model]
        queue.remove(best)
        if not queue:
            del queues[partner.model]
        used[best] = True
        pairs.append((conversation, partner))
    return pairs, _why_unpaired(unpaired, order)


def _why_unpaired(
    unpaired: list[_Conversation], members: list[_Conversation]
) -> list[tuple[_Conversation, str, str]]:
    """The reason for each unpaired conversation: chat1m_identical when every
    conversation of another model with this prompt gave the same answers,
    chat1m_unpaired otherwise. Counted per model and answer, not by
    comparing every two conversations."""
    if not unpaired:
        return []
    named = [m for m in members if m.model is not None]
    by_model = Counter(m.model for m in named)
    by_answers = Counter(m.answers for m in named)
    by_both = Counter((m.model, m.answers) for m in named)
    reasons = []
    for c in unpaired:
        if c.model is None:
            reasons.append((c, "chat1m_unpaired", "model is null"))
            continue
        others = len(named) - by_model[c.model]
        same = by_answers[c.answers] - by_both[(c.model, c.answers)]
        if others and same == others:
            detail = (
                f"the {others} conversation(s) of other models with this prompt answer the same"
            )
            reasons.append((c, "chat1m_identical", detail))
        elif not others:
            detail = f"{len(members)} conversation(s) with this prompt, no other model"
            reasons.append((c, "chat1m_unpaired", detail))
        else:
            detail = "no free conversation of another model with different answers"
            reasons.append((c, "chat1m_unpaired", detail))
    return reasons


def _texts(path: Union[str, Path], rows: set) -> dict[int, tuple[list, list]]:
    """Second pass: (user turns, answers) of the records at `rows`."""
    texts: dict[int, tuple[list, list]] = {}
    if not rows:
        return texts
    for row, record in records_at(path, COLUMNS, rows, CSV_JSON):
        assert isinstance(record, dict)  # it was paired, so it was a conversation
        texts[row] = split_turns(record.get("conversation"))
    missing = rows - texts.keys()
    if missing:
        raise RuntimeError(f"{path}: changed while it was read (row {min(missing)} is gone)")
    return texts


def _pair_rows(
    pairs: list[tuple[_Conversation, _Conversation]],
    texts: dict[int, tuple[list, list]],
    seed: int,
) -> Chunk:
    """Pair rows, A/B by the coin of the first conversation's row."""
    out = Builder(SOURCE)
    for first, second in pairs:
        first_a, _ = first_is_a(seed, first.row)
        a, b = (first, second) if first_a else (second, first)
        out.add(
            id=f"{first.cid}+{second.cid}",
            model_a=a.model,
            model_b=b.model,
            prompt=texts[first.row][0],
            response_a=texts[a.row][1],
            response_b=texts[b.row][1],
            labels=None,
            row=first.row,
            input_rows=2,
        )
    return out.chunk()


def _sorted_drops(dropped: Any, chunk_rows: int) -> Iterator[Any]:
    """The dropped frame in input-row order, in slices of `chunk_rows`."""
    dropped = dropped.sort("row")
    for start in range(0, dropped.height, chunk_rows):
        yield dropped.slice(start, chunk_rows)
