"""Submission files, one per competition format (docs/training.md, "Label
spaces"):

- `kaggle`: `id, winner_model_a, winner_model_b, winner_tie`, three
  probabilities of label space `abt` (the LMSYS Arena competition, scored by
  log loss);
- `wsdm`: `id, winner` with `model_a` or `model_b`, the verdict of label
  space `ab` (the WSDM Cup, scored by accuracy).

Predictions of another label space than the format's are refused unless the
mapping is asked for explicitly (`map_labels=True`, `--map-labels`): it is
`af.labels.map_probs`' rule (renormalising A and B for `wsdm`, both_bad
merged into tie for `kaggle` from `abtx`), never implied. numpy only."""

from __future__ import annotations

import csv
import os
from typing import Union

import numpy as np

from .errors import ConfigError, InputError
from .files import replacing
from .labels import MAPPINGS, LabelSpace, describe_mapping, label_space, map_probs

__all__ = ["FORMATS", "check_format", "format_space", "submission_probs", "write_submission"]

# Each format's label space.
FORMATS = {"kaggle": "abt", "wsdm": "ab"}


def format_space(format: str) -> LabelSpace:
    """The label space a submission `format` holds."""
    if format not in FORMATS:
        raise ConfigError(f"submission format must be one of {', '.join(FORMATS)}, got {format!r}")
    return label_space(FORMATS[format])


def check_format(space: Union[str, LabelSpace, None], format: str, map_labels: bool) -> None:
    """A ConfigError, naming both spaces and the mapping `--map-labels`
    would apply, when predictions of `space` cannot be a `format`
    submission as they are and no mapping was asked for (or none exists)."""
    source, target = label_space(space), format_space(format)
    if source == target:
        return
    if (source.name, target.name) not in MAPPINGS or target.k > source.k:
        raise ConfigError(
            f"a {format} submission holds label space {target.name!r}; predictions of "
            f"{source.name!r} have no {', '.join(target.keys[source.k :])} class to give it"
        )
    if not map_labels:
        raise ConfigError(
            f"a {format} submission holds label space {target.name!r}, the predictions are "
            f"{source.name!r}: pass --map-labels (map_labels=True) to map them explicitly "
            f"({describe_mapping(source, target)})"
        )


def submission_probs(
    probs, space: Union[str, LabelSpace, None], format: str, *, map_labels: bool = False
) -> np.ndarray:
    """`probs` (rows of label space `space`, default `abt`) as rows of
    `format`'s space: unchanged when the spaces agree, mapped by
    `af.labels.map_probs` when `map_labels` asks for it, else a ConfigError
    naming both spaces and the mapping the flag would apply."""
    source, target = label_space(space), format_space(format)
    arr = source.check_rows("probabilities", probs)
    check_format(source, format, map_labels)
    if source == target:
        return np.asarray(arr, dtype=np.float64)
    out, lost = map_probs(arr, source, target)
    if lost.any():
        i = int(np.argmax(lost))
        raise InputError(
            f"row {i}: probabilities {np.asarray(arr[i]).tolist()} have no A/B share to "
            f"renormalise ({int(lost.sum())} rows such)"
        )
    return out


def write_submission(
    path: Union[str, os.PathLike],
    ids,
    probs,
    space: Union[str, LabelSpace, None] = None,
    *,
    format: str = "kaggle",
    map_labels: bool = False,
) -> None:
    """The submission of `format` (`kaggle`, `wsdm`) for `ids` and their
    probabilities (rows of `space`, default `abt`; `submission_probs` maps
    them when `map_labels`), written atomically (UTF-8, `\\n` line ends) by
    a CSV writer.

    Every id is written in double quotes (a `"` in it doubled), so each one
    reads back exactly, whatever it holds (`,`, `"`, a newline or CR, the
    empty string, `007`), with `csv.reader`, polars (`schema_overrides={"id":
    pl.String}`) or pandas (`dtype={"id": str}, keep_default_na=False`). The
    probabilities are unquoted, in `repr(float)`: the shortest text that
    reads back as the same double. A `wsdm` winner is the likelier of A and
    B (A on an exact tie).

    Ids that look like spreadsheet formulas (`=cmd|' /C calc'!A0`, `+`, `-`,
    `@`, a leading tab or CR) are kept byte for byte, not defused with a `'`
    prefix: the scorer matches ids exactly, and a changed id is a wrong
    submission. The file is data for a scorer, not a spreadsheet; open it in
    one only through a text import that keeps the id column as text."""
    if len(ids) != len(probs):
        raise ConfigError(f"write_submission: {len(ids)} ids but {len(probs)} probability rows")
    rows = submission_probs(probs, space, format, map_labels=map_labels)
    target = format_space(format)
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        # QUOTE_NONNUMERIC quotes every str and writes floats with repr().
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        if format == "wsdm":
            f.write("id,winner\n")
            winners = np.where(rows[:, 1] > rows[:, 0], 1, 0) if len(rows) else []
            writer.writerows([str(i), target.verdicts[w]] for i, w in zip(ids, winners))
        else:
            f.write(",".join(("id", *target.columns)) + "\n")
            writer.writerows([str(i), *(float(x) for x in p)] for i, p in zip(ids, rows))
