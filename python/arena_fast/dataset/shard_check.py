"""The checks `load_dataset` makes of a shard once it is open: the columns it
reads, of the types it reads as raw buffers (`check_shard_schema`), and the
rows' labels and teacher logits as build-dataset writes them
(`check_values`); docs/dataset.md, "What is checked before anything is
read"."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .clean import METADATA_COLUMNS

__all__ = ["check_shard_schema", "check_values"]

# The columns load_dataset reads, and the types of those it reads as raw buffers.
_SHARD_COLUMNS = (
    "id", "source", "fold", "labels", "teacher_logits", "flags", "input_ids",
    "turns", "turns_kept", "truncated", "full_length", "repairs",
)  # fmt: skip
# Those read again with the suffix of a row's second sequence.
_SHARD_SECOND = ("input_ids", "turns_kept", "truncated", "full_length")
_IDS_TYPES = (pa.binary(), pa.large_binary())


def check_shard_schema(
    schema: pa.Schema, file: Path, suffix: Optional[str], hint: str, classes: int
) -> None:
    """InputError unless the shard has the columns load_dataset reads (with
    `suffix`, those of the second sequence too), of the types it reads as
    raw buffers (`labels` as wide as the dataset's label space, `classes`),
    and the row metadata columns it has as strings."""
    types = {"labels": (pa.list_(pa.float32(), classes),), "input_ids": _IDS_TYPES}
    second = ()
    if suffix:
        second = tuple(name + suffix for name in _SHARD_SECOND)
        types["input_ids" + suffix] = _IDS_TYPES
    for name in _SHARD_COLUMNS + second:
        if name not in schema.names:
            raise InputError(f"{file}: not a dataset shard: no column {name!r}{hint}")
        allowed = types.get(name)
        if allowed and schema.field(name).type not in allowed:
            raise InputError(
                f"{file}: column {name!r} has type {schema.field(name).type}, "
                f"expected {allowed[0]}{hint}"
            )
    for name in METADATA_COLUMNS:  # optional: absent in a dataset of inputs without them
        if name in schema.names and schema.field(name).type not in (pa.string(), pa.null()):
            raise InputError(
                f"{file}: column {name!r} has type {schema.field(name).type}, expected string{hint}"
            )


def check_values(table: pa.Table, labels: np.ndarray, unlabelled: np.ndarray, path: Path) -> None:
    """InputError for labels that are not probabilities (finite, >= 0,
    summing to 1) and teacher logits that are not finite numbers, or not
    one or more teachers, as many in every row that has them. build-dataset
    never writes such rows; a shard changed since (verify=True tells) or
    written by an older build could hold them, and training on them gives
    NaN or fails half-way."""
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~unlabelled & (
            ~np.isfinite(labels).all(axis=1)
            | (labels < 0).any(axis=1)
            | ~(np.abs(labels.astype(np.float64).sum(axis=1) - 1.0) <= 1e-3)
        )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _row_error(table, path, i, f"labels {labels[i].tolist()} are not probabilities")
    logits = table.column("teacher_logits").combine_chunks()
    if logits.null_count == len(logits):
        return
    has = ~logits.is_null().to_numpy(zero_copy_only=False)
    counts = pa.compute.list_value_length(logits).fill_null(0).to_numpy().astype(np.int64)
    entries = logits.flatten()  # the non-null rows' entries, in order
    bad_entry = entries.is_null().to_numpy(zero_copy_only=False)
    if not bad_entry.any():
        values = entries.flatten().to_numpy(zero_copy_only=False).reshape(-1, labels.shape[1])
        bad_entry = ~np.isfinite(values).all(axis=1)
    bad = has & (counts == 0)
    if bad_entry.any():
        bad[np.searchsorted(np.cumsum(counts), np.flatnonzero(bad_entry), side="right")] = True
    problem = f"not one or more rows of {labels.shape[1]} finite numbers"
    if not bad.any():
        first = counts[np.argmax(has)]
        bad = has & (counts != first)
        problem = f"not {first} teacher(s) as in the first row that has them"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _row_error(table, path, i, f"teacher_logits {logits[i].as_py()}: {problem}")


def _row_error(table: pa.Table, path: Path, i: int, problem: str) -> InputError:
    ident = table.column("id")[i].as_py()
    return InputError(
        f"{path}: row {i} (id {ident!r:.80}): {problem:.300}; build-dataset writes no such "
        "row: rebuild the dataset"
    )
