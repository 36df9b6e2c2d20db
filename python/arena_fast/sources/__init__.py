"""Readers that turn each input format into canonical polars frames
(docs/dataset.md): one module per format, all streaming in chunks except
chat1m, whose pairing needs every conversation.

    for chunk in read("train.csv"):          # format detected: kaggle
        chunk.rows      # CANONICAL_SCHEMA (Kaggle text columns: JSON text)
        chunk.dropped   # DROPPED_SCHEMA: records that could not become rows

    detect("train.parquet")   # Detection("kaggle", "parquet: columns ... hold JSON lists, ...")

Every format is one entry of `_FORMATS` (name, reader, signature, expected
columns in words), checked in that order by `detect`; its reader takes any
container (`containers.py`: csv, parquet, json, jsonl, each also .gz / .zst)
or refuses one with a clear message.

File-level problems (unreadable, wrong format, a missing column) raise a
one-line `InputError`; record-level problems never raise, the record goes
to `dropped` with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import index
from pathlib import Path
from typing import Callable, Optional, Union

import polars as pl

from ..errors import ConfigError, InputError
from ..rows import TEXT_COLUMNS
from . import (
    arena33k,
    arena140k,
    canonical,
    chat1m,
    helpsteer,
    hh_rlhf,
    kaggle,
    pairs,
    pku,
    ultrafeedback,
    wsdm,
)
from ._common import (
    CANONICAL_SCHEMA,
    DROPPED_SCHEMA,
    JSON_TEXT_SCHEMA,
    METADATA_SCHEMA,
    READ_DEFAULTS,
    Chunk,
    ReadOptions,
    empty_dropped,
    empty_rows,
)
from .sniff import Detection, FormatSpec, Sample, is_list_text, is_plain_text, joined
from .sniff import detect_with as _detect_with

__all__ = [
    "CANONICAL_SCHEMA",
    "DROPPED_SCHEMA",
    "DROP_REASONS",
    "FORMATS",
    "FORMAT_COLUMNS",
    "METADATA_SCHEMA",
    "Chunk",
    "Detection",
    "Input",
    "ReadOptions",
    "detect",
    "detect_format",
    "parse_input",
    "read",
]

# Why a reader drops a record (`dataset.DROP_REASONS` adds the cleaning and
# de-duplication reasons to these).
DROP_REASONS = {
    "bad_record": "a JSON line / array element that is not a JSON object; a CSV record "
    "with more fields than the header or a byte that is not UTF-8 (JSON-ish readers), or "
    "a nested column's cell holding a Python repr instead of JSON",
    "missing_id": "the id column is there, the record's id is null",
    "bad_labels": "kaggle winner cells or canonical labels that are not one number per class",
    "bad_winner": "arena33k, kaggle (a winner column) winner outside model_a / model_b / tie / "
    "tie (bothbad); wsdm: outside model_a / model_b; arena140k: "
    "outside model_a / model_b / tie / both_bad; pairs: not a verdict of its mapping's winner",
    "image": "arena140k, pairs: a message with an image part (policy --images drop)",
    "bad_conversation": "not a list of {role, content}; no user or no assistant turn",
    "too_few_completions": "ultrafeedback raw: fewer than 2 completions with a response",
    "missing_score": "ultrafeedback: one score of two; raw: fewer than 2 rated answers",
    "bad_text": "canonical JSON, wsdm: a text value of the wrong kind; kaggle: a cell over 1 MiB "
    "(clipped while read) that is not a JSON turn list, or holds over 16 MiB once clipped",
    "bad_teacher_logits": "canonical: teacher_logits not rows of 3 finite float32 numbers, "
    "an empty list, or another teacher count than the file's first good row",
    "chat1m_unpaired": "chat1m: no other model's conversation left to pair with",
    "chat1m_identical": "chat1m: every other model answered the same",
    "bad_transcript": "hh_rlhf: chosen / rejected not a string, without a Human:/Assistant: "
    "marker, with text before the first, not opening with Human or not ending with Assistant",
    "transcripts_diverge": "hh_rlhf: chosen and rejected differ before their last Assistant turn",
    "bad_preference": "helpsteer: preference strength not a number in -3..3; "
    "pku_saferlhf: better_response_id / safer_response_id not 0 or 1",
    "missing_text": "helpsteer, pku_saferlhf: a prompt or response that is null or not a string",
}


# -- the formats ---------------------------------------------------------------------
# Signatures: the reason a file is in the format (shown to the user), or None.
def _arena140k(s: Sample) -> Optional[str]:
    if not s.has("conversation_a", "conversation_b", "winner"):
        return None
    if arena140k.has_typed_parts(s.nested("conversation_a")):
        return "columns conversation_a/conversation_b/winner, contents as lists of typed parts"
    if s.has("evaluation_session_id") or s.value("winner") == "both_bad":
        return "columns conversation_a/conversation_b/winner, evaluation_session_id or both_bad"
    return None


def _pairs(s: Sample) -> Optional[str]:
    return None  # only on request: the mapping says which column is what


def _arena33k(s: Sample) -> Optional[str]:
    if s.has("conversation_a", "conversation_b", "winner"):
        return "columns conversation_a/conversation_b/winner"
    return None


def _ultrafeedback(s: Sample) -> Optional[str]:
    if s.has("chosen", "rejected"):
        return "columns chosen/rejected"
    if s.has("instruction", "completions"):
        return "columns instruction/completions (raw UltraFeedback)"
    return None


def _hh_rlhf(s: Sample) -> Optional[str]:
    # Before ultrafeedback: the same columns, told by the markers in `chosen`.
    chosen = s.value("chosen") if s.has("chosen", "rejected") else None
    if isinstance(chosen, str) and "\n\nHuman:" in chosen and "\n\nAssistant:" in chosen:
        return "columns chosen/rejected hold \\n\\nHuman: / \\n\\nAssistant: transcripts"
    return None


def _helpsteer(s: Sample) -> Optional[str]:
    if s.has(*helpsteer.HELPSTEER3):
        return f"columns {joined(helpsteer.HELPSTEER3)} (HelpSteer3 preference)"
    if s.has(*helpsteer.HELPSTEER2):
        return f"columns {joined(helpsteer.HELPSTEER2)} (HelpSteer2 preference)"
    return None


def _pku(s: Sample) -> Optional[str]:
    ids = [c for c in pku.PREFERENCE_COLUMNS.values() if s.has(c)]
    if s.has(*pku.TEXTS) and ids:
        return f"columns {joined(pku.TEXTS)}, {joined(ids)} (PKU-SafeRLHF)"
    return None


def _chat1m(s: Sample) -> Optional[str]:
    return "columns conversation/model" if s.has("conversation", "model") else None


def _wsdm(s: Sample) -> Optional[str]:
    # Kaggle's columns, with plain-string texts (Kaggle's are JSON lists).
    if not s.has(*TEXT_COLUMNS) or s.has("labels"):
        return None
    texts = list(s.values(*TEXT_COLUMNS))
    if texts and all(isinstance(v, str) for v in texts) and any(map(is_plain_text, texts)):
        return f"columns {joined(TEXT_COLUMNS)} hold plain strings (one turn){_winner_words(s)}"
    return None


def _kaggle(s: Sample) -> Optional[str]:
    if not s.has(*TEXT_COLUMNS) or s.has("labels"):
        return None
    winners = _winner_words(s)
    texts = list(s.values(*TEXT_COLUMNS))
    if texts and all(is_list_text(v) for v in texts):
        kind = "JSON lists" if all(isinstance(v, str) for v in texts) else "lists of strings"
        return f"columns {joined(TEXT_COLUMNS)} hold {kind}{winners}"
    if not texts and (s.container == "csv" or winners):
        return f"columns {joined(TEXT_COLUMNS)} (no rows to look at){winners}"
    return None


def _winner_words(s: Sample) -> str:
    if s.has(*kaggle.WINNER_COLUMNS):
        return ", winner_* columns"
    return ", a winner column" if s.has("winner") else ", no winner column (unlabelled)"


def _canonical(s: Sample) -> Optional[str]:
    if s.has(*TEXT_COLUMNS):
        return f"columns {joined(TEXT_COLUMNS)}" + (", labels" if s.has("labels") else "")
    return None


# The formats, in the order detection tries them (the first whose signature
# matches wins): a more specific signature goes before a looser one that the
# same file would also match. TO ADD A FORMAT: one entry here (name, reader
# module's `read`, a signature function above returning its reason or None,
# its columns in words); `FORMATS` and the errors follow.
_FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec(
        "arena140k",
        arena140k.read,
        _arena140k,
        "conversation_a, conversation_b (contents as typed parts), winner",
    ),
    FormatSpec(
        "arena33k",
        arena33k.read,
        _arena33k,
        "conversation_a, conversation_b, winner",
        arena33k.REQUIRED,
    ),
    # Before hh_rlhf / ultrafeedback: exports of these often add chosen/rejected.
    FormatSpec(
        "helpsteer",
        helpsteer.read,
        _helpsteer,
        "context, response1, response2, overall_preference (HelpSteer3) or prompt, "
        "response_1, response_2, preference_strength (HelpSteer2)",
    ),
    FormatSpec(
        "pku_saferlhf",
        pku.read,
        _pku,
        "prompt, response_0, response_1, better_response_id or safer_response_id",
        pku.TEXTS,
    ),
    FormatSpec(
        "hh_rlhf", hh_rlhf.read, _hh_rlhf, "chosen, rejected as \\n\\nHuman: ... transcripts"
    ),
    FormatSpec(
        "ultrafeedback",
        ultrafeedback.read,
        _ultrafeedback,
        "chosen, rejected (or instruction, completions)",
    ),
    FormatSpec("chat1m", chat1m.read, _chat1m, "conversation, model", chat1m.REQUIRED),
    FormatSpec("wsdm", wsdm.read, _wsdm, "prompt, response_a, response_b as plain strings"),
    FormatSpec(
        "kaggle",
        kaggle.read,
        _kaggle,
        "prompt, response_a, response_b as JSON lists, winner_* or winner",
        TEXT_COLUMNS,
    ),
    FormatSpec("canonical", canonical.read, _canonical, "id, prompt, response_a, response_b"),
    # Never detected (its signature never matches), but named in the error
    # that lists the layouts: any file, given as PATH:pairs with --map.
    FormatSpec(
        "pairs", pairs.read, _pairs, "any columns, as PATH:pairs with --map FIELD=COLUMN,..."
    ),
)
FORMATS = tuple(spec.name for spec in _FORMATS)
# Each format's identifying columns in words, for help texts and errors.
FORMAT_COLUMNS: dict[str, str] = {spec.name: spec.expects for spec in _FORMATS}
_READERS: dict[str, Callable[..., Iterator[Chunk]]] = {s.name: s.read for s in _FORMATS}


@dataclass(frozen=True)
class Input:
    """One input of build-dataset: a file, its format and, when detected
    (not given as PATH:FORMAT), why (`Detection.reason`)."""

    path: str
    format: str
    detected: Optional[str] = field(default=None, compare=False)


def parse_input(spec: str, format: Optional[str] = None) -> Input:
    """`PATH` or `PATH:FORMAT` as an Input; without a known format suffix the
    whole spec is the path (which may hold ':') and the format is `format`
    when given (`--format`), else detected."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail in FORMATS:
        return Input(head, tail)
    if sep and head and not Path(spec).exists() and Path(head).exists():
        raise ConfigError(f"unknown format {tail!r} in {spec!r}; formats: {', '.join(FORMATS)}")
    if format is not None:
        if format not in FORMATS:
            raise ConfigError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
        return Input(spec, format)
    found = detect(spec)
    return Input(spec, found.format, found.reason)


def detect(path: Union[str, Path]) -> Detection:
    """The format of `path` and why: the container from the name (.csv,
    .parquet, .json, .jsonl, .ndjson, each also .gz / .zst), the format
    from the column names and the first record's values (`_FORMATS`, in
    order). One-line InputError when nothing matches."""
    return _detect_with(path, _FORMATS)


def detect_format(path: Union[str, Path]) -> str:
    """`detect(path).format`."""
    return detect(path).format


def read(
    path: Union[str, Path],
    format: Union[str, None] = None,
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: Optional[ReadOptions] = None,
) -> Iterator[Chunk]:
    """The chunks of `path` in `format` (detected when None): at most
    `chunk_rows` rows each, at least one chunk (possibly empty) per file.
    `seed` keys the A/B coins of ultrafeedback and chat1m; `options` the
    readers' user choices (`ReadOptions`, defaults when None). File-level
    problems raise InputError here, before the first chunk, except those
    only met while streaming (a broken CSV quote mid-file), which raise
    from the iteration."""
    try:
        chunk_rows = index(chunk_rows)
        seed = index(seed)
    except TypeError:
        raise ConfigError(
            f"chunk_rows and seed must be integers, got {chunk_rows!r} and {seed!r}"
        ) from None
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if not 0 <= seed < 1 << 64:
        raise ConfigError(f"seed must be in [0, 2**64), got {seed}")
    if format is None:
        format = detect_format(path)
    elif format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    chunks = _READERS[format](
        path, chunk_rows=chunk_rows, seed=seed, options=options or READ_DEFAULTS
    )
    return _at_least_one(chunks, format)


def _at_least_one(chunks: Iterator[Chunk], format: str) -> Iterator[Chunk]:
    """`chunks`, or one empty chunk when there are none, so that consumers
    always see the schema."""
    empty = True
    for chunk in chunks:
        empty = False
        yield chunk
    if empty:
        rows = pl.DataFrame(schema=JSON_TEXT_SCHEMA) if format == "kaggle" else empty_rows()
        yield Chunk(rows, empty_dropped())
