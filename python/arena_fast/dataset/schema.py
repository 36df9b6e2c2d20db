"""A dataset's `manifest.json`, read as untrusted input.

`check_manifest` is the one check of a manifest's schema: the type and
range of every field that `load_dataset`, `inspect` and `predict` use,
shard files inside the dataset directory (relative, no `..`, no symlink
leading out) and listed once, and counts that agree with the shards. It
runs before any shard is opened or any array allocated, so a hostile
manifest costs what its bytes cost (at most `MAX_BYTES`). Each error is an
`InputError` naming the file and the field:
`.../manifest.json: shards[3].file: '../x' is outside the dataset directory`.
The rules are in docs/dataset.md ("What is checked before anything is
read").
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from ..checks import I64_MAX
from ..encoder import Template
from ..errors import InputError
from ..labels import LABEL_SPACES
from .config import LAYOUTS

__all__ = ["MAX_BYTES", "check_manifest"]

# A manifest lists a few hundred bytes per shard and per input: 16 MiB holds
# about 100,000 shards, far past any build (16,384 rows a shard by default).
MAX_BYTES = 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Invalid(Exception):
    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field, self.problem = field, problem


Check = Callable[[Any, str], None]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    return names.get(type(value), type(value).__name__)


def _integer(lo: int = 0, hi: int = I64_MAX) -> Check:
    """An integer in [lo, hi]; by default as large as the int64 columns and
    numpy sizes hold."""

    def check(value: Any, field: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(field, f"{_kind(value)}, expected an integer")
        if not lo <= value <= hi:
            raise _Invalid(field, f"{value!r:.40} is outside [{lo}, {hi}]")

    return check


def _number(lo: float = -math.inf, hi: float = math.inf) -> Check:
    def check(value: Any, field: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(field, f"{_kind(value)}, expected a number")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise _Invalid(field, f"{value!r} is outside [{lo}, {hi}]")

    return check


def _of(kind: type) -> Check:
    """A value of exactly this JSON type (a boolean is not an integer here)."""

    def check(value: Any, field: str) -> None:
        if type(value) is not kind:
            raise _Invalid(field, f"{_kind(value)}, expected {_kind(kind())}")

    return check


def _sha256(value: Any, field: str) -> None:
    if not (isinstance(value, str) and _SHA256.fullmatch(value)):
        raise _Invalid(field, f"{value!r:.80} is not a sha256 (64 lower-case hex digits)")


def _optional(check: Check) -> Check:
    def optional(value: Any, field: str) -> None:
        if value is not None:
            check(value, field)

    return optional


def _list_of(item: Check) -> Check:
    def check(value: Any, field: str) -> None:
        _of(list)(value, field)
        for i, v in enumerate(value):
            item(v, f"{field}[{i}]")

    return check


def _map_of(item: Check) -> Check:
    def check(value: Any, field: str) -> None:
        _of(dict)(value, field)
        for k, v in value.items():
            item(v, _member(field, k))

    return check


def _record(exact: bool = False, **fields: Check) -> Check:
    """An object holding at least these fields (others are kept, unread),
    or exactly these with `exact`."""

    def check(value: Any, field: str) -> None:
        _of(dict)(value, field or "the manifest")
        for name, item in fields.items():
            where = f"{field}.{name}" if field else name
            if name not in value:
                raise _Invalid(where, "missing")
            item(value[name], where)
        other = [name for name in value if name not in fields]
        if exact and other:
            raise _Invalid(_member(field, other[0]), "not a field of this object")

    return check


def _member(field: str, key: str) -> str:
    """`field.key`, or `field['key']` for a key that is not a plain name."""
    if key.isidentifier() or (key.isdigit() and len(key) < 20):
        return f"{field}.{key}"
    return f"{field}[{key!r:.60}]"


def _either(*checks: Check) -> Check:
    """A value that passes one of `checks` (the first one's error otherwise)."""

    def check(value: Any, field: str) -> None:
        for item in checks[1:]:
            try:
                item(value, field)
                return
            except _Invalid:
                pass
        checks[0](value, field)

    return check


_COUNT = _integer()
_TEMPLATE = _record(
    exact=True,
    **{
        f.name: _optional(_of(str)) if f.name == "join_turns" else _of(str)
        for f in dataclasses.fields(Template)
    },
)
_LENGTHS = _record(p50=_COUNT, p90=_COUNT, p99=_COUNT, max=_COUNT, mean=_number(0))
_SCHEMA = _record(
    folds=_integer(1, 127),
    swap=_of(bool),
    config=_of(dict),
    encoder=_record(
        template=_TEMPLATE,
        max_length=_integer(1, 1 << 31),
        bos_token_id=_optional(_integer(0, 1 << 31)),
        eos_token_id=_optional(_integer(0, 1 << 31)),
        tail_ratios=_list_of(_number()),
    ),
    tokenizer=_record(sha256=_sha256),
    inputs=_list_of(_record(path=_of(str), format=_of(str), sha256=_optional(_sha256))),
    counts=_record(
        rows=_COUNT,
        rows_in=_COUNT,
        input_rows_kept=_COUNT,
        input_rows_dropped=_COUNT,
        dropped=_map_of(_COUNT),
        by_source=_map_of(_COUNT),
        folds=_map_of(_COUNT),
        labels=_map_of(_COUNT),
        relabelled=_COUNT,
        labels_normalised=_COUNT,
        repaired=_COUNT,
        repairs=_map_of(_COUNT),
    ),
    stats=_record(
        tokens=_COUNT,
        length=_either(_LENGTHS, _record(exact=True)),  # {} for no rows
        truncated_share=_number(0, 1),
        pack_tokens=_COUNT,
        fill=_optional(_number(0, 1)),
    ),
    shards=_list_of(_record(file=_of(str), rows=_COUNT, bytes=_COUNT, sha256=_sha256)),
)


def _label_space(value: Any, field: str) -> None:
    """One of the label spaces (a manifest without the field predates them:
    `abt`)."""
    if not isinstance(value, str) or value not in LABEL_SPACES:
        shown = value if isinstance(value, str) else _kind(value)
        raise _Invalid(field, f"{shown!r:.40}, expected one of {', '.join(LABEL_SPACES)}")


def _check_layout(manifest: dict) -> None:
    """The encoder's `layout` and `chat_template`, optional (a manifest
    without them predates them: `cross`, no chat template); the separate
    layout stores each row's sides, never a swap."""
    encoder = manifest["encoder"]
    layout = encoder.get("layout")
    if layout is not None and layout not in LAYOUTS:
        shown = layout if isinstance(layout, str) else _kind(layout)
        raise _Invalid("encoder.layout", f"{shown!r:.40}, expected one of {', '.join(LAYOUTS)}")
    _optional(_of(str))(encoder.get("chat_template"), "encoder.chat_template")
    if layout == "separate" and manifest["swap"]:
        raise _Invalid("swap", "true, but a dataset of the separate layout holds no swapped rows")


def check_manifest(manifest: Any, mpath: Path, directory: Path) -> None:
    """InputError unless `manifest` (parsed from `mpath`, the manifest of
    `directory`) holds every field its readers use, of the right type and
    range, shards inside `directory` listed once, and counts that add up."""
    try:
        _SCHEMA(manifest, "")
        _label_space(manifest.get("label_space", "abt"), "label_space")
        _check_layout(manifest)
        _check_shards(manifest["shards"], directory)
        _check_counts(manifest)
    except _Invalid as exc:
        where = f"{exc.field}: " if exc.field and exc.field != "the manifest" else ""
        raise InputError(f"{mpath}: {where}{exc.problem}") from None


def _check_shards(shards: list, directory: Path) -> None:
    root = directory.resolve()
    seen: dict[Path, int] = {}
    for i, shard in enumerate(shards):
        field = f"shards[{i}].file"
        name = shard["file"]
        resolved = _inside(root, name)
        if resolved is None:
            raise _Invalid(field, f"{name!r:.200} is outside the dataset directory")
        if resolved in seen:
            raise _Invalid(field, f"{name!r:.200} is listed twice (also shards[{seen[resolved]}])")
        seen[resolved] = i


def _inside(root: Path, name: str) -> Any:
    """`root / name` resolved (symlinks followed) when it stays a path below
    `root`; None for an absolute name, `..`, a NUL byte or an escape."""
    if not name or "\x00" in name or os.path.isabs(name) or "\\" in name:
        return None
    if ".." in PurePosixPath(name).parts:
        return None
    try:
        resolved = (root / name).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    if resolved == root or root not in resolved.parents:
        return None
    return resolved


def _check_counts(manifest: dict) -> None:
    counts = manifest["counts"]
    rows = counts["rows"]
    held = sum(shard["rows"] for shard in manifest["shards"])
    if held != rows:
        raise _Invalid("counts.rows", f"{rows}, but the shards hold {held} rows")
    for name in ("by_source", "labels", "folds"):
        total = sum(counts[name].values())
        if total != rows:
            raise _Invalid(f"counts.{name}", f"adds up to {total}, counts.rows is {rows}")
    for key in counts["folds"]:
        if key not in {str(f) for f in range(manifest["folds"])}:
            raise _Invalid(f"counts.folds.{key}", f"not a fold of 0..{manifest['folds'] - 1}")
    if counts["input_rows_kept"] + counts["input_rows_dropped"] != counts["rows_in"]:
        raise _Invalid(
            "counts.rows_in", "differs from counts.input_rows_kept + counts.input_rows_dropped"
        )
