"""The generic `pairs` reader: any table of preference pairs, told which
column holds what by a mapping (`ReadOptions.mapping`, `BuildConfig.mapping`,
`--map prompt=COL,a=COL,b=COL,winner=COL`) of canonical field -> column:

    prompt, a (or response_a), b (or response_b)     required
    winner                                            a verdict string, or
    winner_model_a, winner_model_b, winner_tie        three label numbers
      (+ winner_both_bad: label space abtx)           (no label field: unlabelled rows)
    id, model_a, model_b, language, category          optional

A text cell is a plain string (one turn), a list of strings (turns) or a
message list ({role, content}, content plain or typed parts as in the
140k files, `ReadOptions.images` applying): the prompt takes its user
turns, an answer its assistant turns. CSV cells are text: one turn, or the
turns of a cell holding a JSON list (`["...", ...]`, as Kaggle writes).
`winner` values (case and spaces ignored): model_a / a, model_b / b,
tie / tie (bothbad); anything else (both_bad included: a 4-class label
needs winner_both_bad) drops the record as `bad_winner`. Files: parquet,
JSON, JSON lines, CSV, each also .gz / .zst."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from ..encoded import REPAIR_IMAGE
from ..errors import ConfigError, InputError
from ._common import (
    READ_DEFAULTS,
    BadConversation,
    Builder,
    Chunk,
    ReadOptions,
    as_name,
    as_number,
    stream_records,
)
from .arena140k import flatten_conversation
from .containers import columns_of, container
from .lmarena import ImageContent

__all__ = ["FIELDS", "WINNERS", "parse_mapping", "read", "resolve_mapping"]

SOURCE = "pairs"
TEXT_FIELDS = ("prompt", "a", "b")
LABEL_FIELDS = ("winner_model_a", "winner_model_b", "winner_tie", "winner_both_bad")
FIELDS = (*TEXT_FIELDS, "winner", *LABEL_FIELDS, "id", "model_a", "model_b", "language", "category")
ALIASES = {"response_a": "a", "response_b": "b"}
WINNERS: dict[str, list[float]] = {
    "model_a": [1.0, 0.0, 0.0],
    "a": [1.0, 0.0, 0.0],
    "model_b": [0.0, 1.0, 0.0],
    "b": [0.0, 1.0, 0.0],
    "tie": [0.0, 0.0, 1.0],
    "tie (bothbad)": [0.0, 0.0, 1.0],
}


def parse_mapping(text: str) -> dict:
    """`prompt=COL,a=COL,b=COL,winner=COL` (the `--map` value) as a dict of
    canonical field -> column; ConfigError (one line) for a malformed item,
    an unknown or repeated field. Columns may hold any character but `,`."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"--map: expected FIELD=COLUMN,..., got {text!r}")
    mapping: dict = {}
    for item in text.split(","):
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ConfigError(f"--map: {item.strip()!r} is not FIELD=COLUMN (in {text!r})")
        if field in mapping:
            raise ConfigError(f"--map: field {field!r} given twice (in {text!r})")
        mapping[field] = column
    _canonical(mapping, "--map")
    return mapping


def _canonical(mapping: Any, where: str) -> dict:
    """`mapping` with aliases resolved; ConfigError for an unknown field, a
    field named twice (through an alias), a non-string column, or a missing
    text field / an incomplete set of label columns."""
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError(
            f"{where}: format pairs needs a mapping of field -> column "
            f"(--map prompt=COL,a=COL,b=COL,winner=COL), got {mapping!r}"
        )
    out: dict = {}
    for field, column in mapping.items():
        name = ALIASES.get(field, field)
        if name not in FIELDS:
            raise ConfigError(
                f"{where}: unknown field {field!r}; fields: {', '.join(FIELDS)} "
                f"(response_a / response_b for a / b)"
            )
        if name in out:
            raise ConfigError(f"{where}: field {name!r} mapped twice")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"{where}: field {field!r} must name a column, got {column!r}")
        out[name] = column
    missing = [f for f in TEXT_FIELDS if f not in out]
    if missing:
        raise ConfigError(f"{where}: the mapping lacks field(s) {missing} (it has {list(mapping)})")
    numbers = [f for f in LABEL_FIELDS if f in out]
    if numbers and ("winner" in out or any(f not in out for f in LABEL_FIELDS[:3])):
        raise ConfigError(
            f"{where}: map either winner, or winner_model_a, winner_model_b and winner_tie "
            f"(+ winner_both_bad); got {sorted(f for f in out if f.startswith('winner'))}"
        )
    return out


def resolve_mapping(path: Union[str, Path], mapping: Any, names: list) -> dict:
    """The mapping checked against a file: ConfigError naming the file for
    a bad mapping, InputError naming the file, the field and the columns
    seen for a mapped column the file lacks."""
    fields = _canonical(mapping, str(path))
    for field, column in fields.items():
        if column not in names:
            raise InputError(
                f"{path}: column {column!r} (field {field}) is not in the file "
                f"(columns seen: {names})"
            )
    return fields


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows from a file read through `options.mapping`
    (labels of 4 classes when winner_both_bad is mapped, else 3). `seed` is
    unused (the file fixes A and B)."""
    fields = resolve_mapping(path, options.mapping, columns_of(path))
    classes = 4 if "winner_both_bad" in fields else 3
    csv = container(path) == "csv"
    return stream_records(
        path,
        list(dict.fromkeys(fields.values())),
        chunk_rows,
        SOURCE,
        lambda record, row, out: _convert(
            _record_values(record, fields, csv), row, out, options, classes
        ),
        classes=classes,
        csv_json=(),
    )


def _from_csv_cell(value: Any) -> Any:
    """A CSV text cell holding a JSON list (Kaggle's `["...", ...]`) as that
    list; any other cell as it is."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, list) and parsed:
            return parsed
    return value


def _record_values(record: dict, fields: dict, csv: bool) -> dict:
    """The mapped fields of a record (CSV text cells holding JSON lists as lists)."""
    values = {f: record.get(c) for f, c in fields.items()}
    if csv:
        values.update({f: _from_csv_cell(values[f]) for f in TEXT_FIELDS})
    return values


def _convert(values: dict, row: int, out: Builder, options: ReadOptions, classes: int) -> None:
    ident = out.row_id(values, row, "id" in values)
    if ident is None:
        return
    try:
        labels = _labels(values, classes)
    except ValueError as exc:
        reason = "bad_winner" if "winner" in values else "bad_labels"
        out.drop(id=ident, row=row, reason=reason, detail=str(exc))
        return
    try:
        prompt, n_p = _turns(values["prompt"], "prompt", "user", options)
        answer_a, n_a = _turns(values["a"], "a", "assistant", options)
        answer_b, n_b = _turns(values["b"], "b", "assistant", options)
    except ImageContent as exc:
        out.drop(id=ident, row=row, reason="image", detail=str(exc))
        return
    except BadConversation as exc:
        out.drop(id=ident, row=row, reason="bad_conversation", detail=str(exc))
        return
    images = n_p + n_a + n_b
    out.add(
        id=ident,
        model_a=as_name(values.get("model_a")),
        model_b=as_name(values.get("model_b")),
        prompt=prompt,
        response_a=answer_a,
        response_b=answer_b,
        labels=labels,
        row=row,
        language=values.get("language"),
        category=values.get("category"),
        meta={"images_stripped": images} if images else None,
        repairs=REPAIR_IMAGE if images else 0,
    )


def _labels(values: dict, classes: int) -> Optional[list]:
    """The label row; None when no label field is mapped or all are null
    (an unlabelled row); ValueError with the detail otherwise."""
    if "winner" in values:
        winner = values["winner"]
        if winner is None:
            return None
        key = " ".join(winner.lower().split()) if isinstance(winner, str) else None
        if key not in WINNERS:
            raise ValueError(f"winner {winner!r} is not one of {list(WINNERS)}")
        return list(WINNERS[key])
    names = LABEL_FIELDS[:classes]
    if not any(n in values for n in names):
        return None
    cells = [values[n] for n in names]
    if all(c is None for c in cells):
        return None
    numbers = [as_number(c) for c in cells]
    if any(n is None for n in numbers):
        raise ValueError(f"{', '.join(names)} = {cells!r}: not {classes} numbers")
    return numbers


def _turns(value: Any, field: str, role: str, options: ReadOptions) -> tuple[list, int]:
    """A text cell as its turns and the image parts left out: a string is
    one turn, a list of strings (or nulls) the turns, a message list its
    `role` turns (other roles ignored)."""
    if isinstance(value, str):
        return [value], 0
    if value is None:
        raise BadConversation(f"{field} is null")
    if not isinstance(value, (list, tuple)):
        raise BadConversation(f"{field} is a {type(value).__name__}, not text or a list of turns")
    if not value:
        raise BadConversation(f"{field} is an empty list")
    if all(t is None or isinstance(t, str) for t in value):
        return list(value), 0
    messages, images = flatten_conversation(value, field, options)
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise BadConversation(f"{field}[{i}] is not a string or a {{role, content}} object")
        content = message["content"]
        if content is not None and not isinstance(content, str):
            raise BadConversation(f"{field}[{i}].content is a {type(content).__name__}")
        if message["role"] == role:
            turns.append(content)
    if not turns:
        raise BadConversation(f"{field} has no {role} turn")
    return turns, images
