"""Diagnostics of a preference classifier's predictions: log loss and
accuracy, the position flip rate (how often the single-pass verdict changes
when A and B are swapped), calibration (reliability bins and ECE), log loss by
number of turns and by truncation, per fold, and the confusion matrix.

Predictions travel as one table per run (`prediction_frame`): a row per
conversation in the original A/B order, with the final probabilities, each
single pass when both orders were predicted, the logits, the labels (NaN when
unlabelled), turns, truncation, fold, whether the run trained on the row
(`trained`, when known) and the row metadata `language` / `category` when
the dataset carries them (scores are broken down by each: `by_group`).
The file also says which rows it covers (parquet metadata, `ROWS_KEY`:
the split, the run's held-out fold, the dataset's identity), and
`summarize` / `format_summary` name those rows in every score they print
(`describe_rows`). `arena-fast predict --predictions` and `arena-fast
train` (the held-out fold) write it; `arena-fast report` reads it.
numpy, polars and pyarrow only: no torch here."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Optional, Union

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from .errors import InputError
from .files import replacing
from .labels import CLASS_KEYS, space_of_width

__all__ = [
    "CLASSES",
    "ROWS_KEY",
    "describe_rows",
    "prediction_frame",
    "read_predictions",
    "write_predictions",
    "summarize",
    "format_summary",
    "log_loss",
    "accuracy",
    "pairwise_accuracy",
    "reliability",
    "confusion",
    "flip_rate",
    "TURN_BUCKETS",
    "GROUP_COLUMNS",
    "GROUP_TOP",
    "by_group",
]

CLASSES = CLASS_KEYS  # the short class names of a printed table
# Conversations by number of turns: 1, 2, 3-4, 5 and more.
TURN_BUCKETS = ((1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, None, "5+"))
_EPS = 1e-15
# The row metadata columns scores are broken down by (`by_group`), the
# groups shown of each (the largest; the rest pooled as OTHER) and the group
# of rows without a value.
GROUP_COLUMNS = ("language", "category")
GROUP_TOP = 10
OTHER = "(other)"
NONE = "(none)"
# The parquet metadata key of a prediction table's rows: a JSON object with
# `split` ("valid", "train" or "all"), `held_out` (the run's held-out fold,
# None: none), `own_dataset` (True: the run's dataset; False: other data;
# None: the run does not say), `dataset`, `dataset_sha256` and `run`.
ROWS_KEY = b"arena_fast.rows"
_SPLITS = ("valid", "train", "all")


def _rows_k(values: Any, n: int, k: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n, k):
        raise ValueError(f"{name}: expected shape ({n}, {k}), got {arr.shape}")
    return arr


def prediction_frame(
    ids,
    probs,
    *,
    probs_original=None,
    probs_swapped=None,
    logits=None,
    labels=None,
    turns=None,
    truncated=None,
    fold=None,
    trained=None,
    language=None,
    category=None,
) -> Any:  # pl.DataFrame
    """The per-row prediction table: `id`, `probs` (the final ones), and
    where given `probs_original` / `probs_swapped` (each single pass, the
    swapped one mapped back to the original order), `logits`, `labels`
    (probability rows, NaN when unlabelled), `turns`, `truncated`, `fold`,
    `trained` (whether the run trained on the row), `language` and
    `category` (strings, None where a row has none).
    Class rows are `Array(Float64, K)` columns in the label space's class
    order (a, b[, tie[, both_bad]]: `af.labels`), K the width of `probs`."""
    n = len(ids)
    k = np.shape(probs)[1] if np.ndim(probs) == 2 else 3
    space_of_width(k, "probs")
    columns: dict[str, Any] = {"id": pl.Series("id", [str(i) for i in ids], dtype=pl.String)}
    given = {
        "probs": probs,
        "probs_original": probs_original,
        "probs_swapped": probs_swapped,
        "logits": logits,
        "labels": labels,
    }
    for name, values in given.items():
        if values is not None:
            columns[name] = pl.Series(
                name, _rows_k(values, n, k, name), dtype=pl.Array(pl.Float64, k)
            )
    for name, values, dtype in (
        ("turns", turns, pl.Int32),
        ("truncated", truncated, pl.Boolean),
        ("fold", fold, pl.Int32),
        ("trained", trained, pl.Boolean),
    ):
        if values is not None:
            arr = np.asarray(values)
            if arr.shape != (n,):
                raise ValueError(f"{name}: expected shape ({n},), got {arr.shape}")
            columns[name] = pl.Series(name, arr).cast(dtype)
    for name, values in (("language", language), ("category", category)):
        if values is not None:
            if len(values) != n:
                raise ValueError(f"{name}: expected {n} values, got {len(values)}")
            columns[name] = pl.Series(name, list(values), dtype=pl.String)
    return pl.DataFrame(columns)


def write_predictions(path: Union[str, os.PathLike], frame, rows: Optional[dict] = None) -> None:
    """The prediction table as parquet, written atomically; `rows` (which
    rows it covers, see `ROWS_KEY`) goes into the file's metadata."""
    with replacing(path) as tmp:
        if rows is None:
            frame.write_parquet(tmp)
        else:
            table = frame.to_arrow()
            meta = {**(table.schema.metadata or {}), ROWS_KEY: json.dumps(rows).encode()}
            pq.write_table(table.replace_schema_metadata(meta), tmp)


# Columns of a prediction table and what each must hold when present.
_TRIPLES = ("probs", "probs_original", "probs_swapped", "logits", "labels")
_SCALARS = {"turns": "integer", "fold": "integer", "truncated": "boolean", "trained": "boolean"}


def read_predictions(path: Union[str, os.PathLike], *, with_rows: bool = False) -> Any:
    """A table written by `write_predictions`, checked like any input: `id`
    and `probs` present, each class row an `Array(Float64, K)` column (K 2,
    3 or 4, the same in every such column: the label space's),
    probabilities finite and in [0, 1], logits finite, labels NaN (no label)
    or finite and non-negative, `turns` / `fold` integers and `truncated` /
    `trained` booleans, `language` / `category` strings. An InputError
    naming the file, column and row otherwise. With `with_rows`, `(frame,
    rows)`: `rows` the metadata of the rows it covers (`ROWS_KEY`; {} for
    a table written without it)."""
    try:
        frame = pl.read_parquet(path)
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
        raise InputError(f"{path}: not a prediction table: {exc}") from None
    for name in ("id", "probs"):
        if name not in frame.columns:
            raise InputError(f"{path}: not a prediction table (no column {name!r})")
    if frame.schema["id"] != pl.String:
        raise InputError(f"{path}: column 'id' must hold strings, got {frame.schema['id']}")
    k = _width(frame)
    if k not in (2, 3, 4):
        raise InputError(
            f"{path}: column 'probs' must be Array(Float64, K), K 2, 3 or 4 (a label space), "
            f"got {frame.schema['probs']}"
        )
    for name in _TRIPLES:
        if name not in frame.columns:
            continue
        dtype = frame.schema[name]
        if dtype != pl.Array(pl.Float64, k):
            raise InputError(f"{path}: column {name!r} must be Array(Float64, {k}), got {dtype}")
        if frame[name].null_count():
            i = int(np.argmax(frame[name].is_null().to_numpy()))
            raise InputError(f"{path}: row {i}, column {name!r}: null")
        values = frame[name].to_numpy().astype(np.float64).reshape(len(frame), k)
        if name == "labels":
            nan = np.isnan(values).all(axis=1)
            bad = ~nan & ~(np.isfinite(values) & (values >= 0)).all(axis=1)
        elif name == "logits":
            bad = ~np.isfinite(values).all(axis=1)
        else:
            bad = ~(np.isfinite(values) & (values >= 0) & (values <= 1)).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"{path}: row {i}, column {name!r}: {values[i].tolist()} is not a valid "
                f"{'label row' if name == 'labels' else name.split('_')[0] + ' row'}"
            )
    for name, kind in _SCALARS.items():
        if name not in frame.columns:
            continue
        dtype = frame.schema[name]
        ok = dtype == pl.Boolean if kind == "boolean" else dtype.is_integer()
        if not ok or frame[name].null_count():
            raise InputError(f"{path}: column {name!r} must hold {kind}s, got {dtype}")
    for name in GROUP_COLUMNS:
        if name in frame.columns and frame.schema[name] not in (pl.String, pl.Null):
            raise InputError(f"{path}: column {name!r} must hold strings, got {frame.schema[name]}")
    if not with_rows:
        return frame
    return frame, _rows_metadata(meta.get(ROWS_KEY), path)


def _rows_metadata(raw: Optional[bytes], path) -> dict:
    """The `ROWS_KEY` metadata of a prediction table, checked: an
    InputError naming the file and field when it is not what
    `write_predictions` writes."""
    if raw is None:
        return {}
    try:
        rows = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InputError(f"{path}: metadata {ROWS_KEY.decode()}: not JSON") from None
    if not isinstance(rows, dict):
        raise InputError(f"{path}: metadata {ROWS_KEY.decode()}: not a JSON object")
    held = rows.get("held_out")
    checks = {
        "split": rows.get("split") in _SPLITS,
        "held_out": held is None or (type(held) is int and held >= 0),
        "own_dataset": rows.get("own_dataset") in (True, False, None),
        **{k: isinstance(rows.get(k), (str, type(None))) for k in ("dataset", "dataset_sha256")},
        "run": isinstance(rows.get("run"), (str, type(None))),
    }
    for name, ok in checks.items():
        if not ok:
            raise InputError(
                f"{path}: metadata {ROWS_KEY.decode()}: {name} is {rows.get(name)!r:.60}"
            )
    return rows


def describe_rows(frame, rows: Optional[dict] = None) -> str:
    """Which rows a prediction table covers, in words, from its `rows`
    metadata (`ROWS_KEY`) and `trained` column: `held-out fold 0: 200
    rows`, `all 1,000 rows, 800 of which the run trained on (these scores
    are not held-out)`, `1,000 rows of other data than the run trained on`,
    or that the table or the run does not say."""
    n = len(frame)
    rows = rows or {}
    trained = int(frame["trained"].sum()) if "trained" in frame.columns else None
    split, held, own = rows.get("split"), rows.get("held_out"), rows.get("own_dataset")
    if split == "valid" and trained in (0, None):
        return f"held-out fold {held}: {n:,} rows" if held is not None else f"held out: {n:,} rows"
    if trained:
        which = {"all": "all", "train": f"the training folds (every fold but {held}):"}.get(
            split, ""
        )
        part = "every one of which" if trained == n else f"{trained:,} of which"
        return (
            f"{which} {n:,} rows, {part} the run trained on (these scores are not held-out)".strip()
        )
    if trained == 0:
        return f"{n:,} rows, none of which the run trained on"
    if own is False:
        return f"{n:,} rows of other data than the run trained on"
    if rows:
        return f"{n:,} rows; the run does not say which rows it trained on"
    return f"{n:,} rows (the table does not say which rows the run trained on)"


def _width(frame) -> int:
    """K, the classes of a prediction table (the width of its `probs`)."""
    dtype = frame.schema["probs"]
    return dtype.size if isinstance(dtype, pl.Array) else 0


def _triple(frame, name: str) -> Optional[np.ndarray]:
    if name not in frame.columns:
        return None
    return frame[name].to_numpy().astype(np.float64).reshape(len(frame), _width(frame))


def row_losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy of its probability row against its label row
    (soft or one-hot); probabilities clipped at 1e-15 as Kaggle's metric does
    and renormalised. NaN for a row whose labels are NaN (unlabelled)."""
    p = np.clip(probs, _EPS, 1.0 - _EPS)
    p = p / p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return -(labels * np.log(p)).sum(axis=1)


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """The mean of `row_losses`; NaN for no rows. The one definition:
    `summarize`, the held-out evaluation of `train` (`af.infer.evaluate`) and
    the run view of `arena-fast serve` all use it."""
    if len(probs) == 0:
        return float("nan")
    return float(row_losses(probs, labels).mean())


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose predicted class (argmax) is the label's (argmax of
    a soft or one-hot row). NaN for no rows."""
    if len(probs) == 0:
        return float("nan")
    return float((probs.argmax(axis=1) == labels.argmax(axis=1)).mean())


def pairwise_accuracy(r_a, r_b, labels: Optional[np.ndarray] = None) -> float:
    """A reward model's score as reward benchmarks (RewardBench) and TRL's
    `accuracy` metric count it: among the pairs decided for A or B (a label
    row's largest entry, the first on equal entries, is A or B), the share
    whose winner got the strictly larger reward; ties, both_bad and
    unlabelled (NaN) rows are left out, equal rewards count as wrong.
    `r_a`, `r_b`: rewards (n,); `labels`: label rows (n, K) of a label
    space (one-hot or soft), None when A won every pair. NaN when no pair
    is decided. The one definition (`af.reward_losses.pairwise_accuracy`
    calls it on tensors)."""
    r_a = np.asarray(r_a, dtype=np.float64)
    r_b = np.asarray(r_b, dtype=np.float64)
    if r_a.ndim != 1 or r_a.shape != r_b.shape:
        raise ValueError(
            f"r_a and r_b must be rewards of shape (n,) each, got {r_a.shape} and {r_b.shape}"
        )
    if labels is None:
        winner = np.zeros(len(r_a), dtype=np.int64)
        decided = np.ones(len(r_a), dtype=bool)
    else:
        y = np.asarray(labels, dtype=np.float64)
        if y.ndim != 2 or len(y) != len(r_a):
            raise ValueError(f"labels must be rows ({len(r_a)}, K), got shape {y.shape}")
        labelled = np.isfinite(y).all(axis=1)
        winner = np.where(labelled[:, None], y, -np.inf).argmax(axis=1)
        decided = labelled & (winner < 2)
    if not decided.any():
        return float("nan")
    right = np.where(winner == 0, r_a > r_b, r_b > r_a)
    return float(right[decided].mean())


def flip_rate(original: np.ndarray, swapped: np.ndarray) -> float:
    """Share of rows whose single-pass verdict (argmax) changes between the
    original order and the swapped order mapped back. NaN for no rows."""
    if len(original) == 0:
        return float("nan")
    return float((original.argmax(axis=1) != swapped.argmax(axis=1)).mean())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Calibration of the top-label confidence: rows binned by their largest
    probability into `bins` equal-width bins of [0, 1] (a bin holds
    (lo, hi], the first [0, hi]); per bin the rows, mean confidence and
    accuracy (the predicted class is the label's argmax). `ece` is the
    row-weighted mean of |accuracy - confidence| over the bins."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels.argmax(axis=1)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc_sum = np.bincount(which, weights=correct, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(counts > 0, conf_sum / counts, np.nan)
        acc = np.where(counts > 0, acc_sum / counts, np.nan)
    n = len(probs)
    ece = float(np.nansum(np.abs(acc - conf) * counts) / n) if n else float("nan")
    return {
        "edges": edges.tolist(),
        "rows": counts.tolist(),
        "confidence": [None if math.isnan(x) else float(x) for x in conf],
        "accuracy": [None if math.isnan(x) else float(x) for x in acc],
        "ece": ece,
    }


def confusion(probs: np.ndarray, labels: np.ndarray) -> list[list[int]]:
    """K x K counts (K the rows' width, the label space's classes): row =
    the label's class (argmax), column = the predicted."""
    k = probs.shape[1] if probs.ndim == 2 else 3
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (labels.argmax(axis=1), probs.argmax(axis=1)), 1)
    return out.tolist()


def _group(probs: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict:
    return {"rows": int(mask.sum()), "log_loss": log_loss(probs[mask], labels[mask])}


def _group_members(values: list, split: bool) -> dict[str, np.ndarray]:
    """The rows of each value (`split`: a value "math,if" is a row of
    "math" and of "if"); rows without one are NONE's."""
    groups: dict[str, list] = {}
    for i, value in enumerate(values):
        names = [value] if value else []
        if split and value:
            names = list(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
        for name in names or [NONE]:
            groups.setdefault(name, []).append(i)
    return {name: np.asarray(rows, dtype=np.int64) for name, rows in groups.items()}


def by_group(frame, column: str, top: int = GROUP_TOP) -> dict:
    """Scores per value of the row metadata `column` of a prediction table
    (`GROUP_COLUMNS`): name -> `rows`, `labelled`, and on its labelled rows
    `log_loss` and `accuracy` (NaN for none), on all its rows `flip_rate`
    when the table has both passes. The `top` values with the most rows
    (ties by name) come first, largest first; the rest are pooled as
    `(other)`, rows without a value are `(none)`, each last when it has
    rows. A `category` is split at commas ("math,if" counts under "math"
    and under "if", so a row may be in several groups); a `language` is
    taken as given. {} when the table lacks the column or no row has a
    value."""
    if column not in frame.columns or frame[column].null_count() == len(frame):
        return {}
    members = _group_members(frame[column].to_list(), split=column == "category")
    named = sorted((k for k in members if k != NONE), key=lambda k: (-len(members[k]), k))
    if not named:
        return {}
    groups = {name: members[name] for name in named[:top]}
    if len(named) > top:
        groups[OTHER] = np.unique(np.concatenate([members[k] for k in named[top:]]))
    if NONE in members:
        groups[NONE] = members[NONE]
    probs, labels = _triple(frame, "probs"), _triple(frame, "labels")
    original, swapped = _triple(frame, "probs_original"), _triple(frame, "probs_swapped")
    labelled = np.zeros(len(frame), bool) if labels is None else ~np.isnan(labels).any(axis=1)
    out = {}
    for name, sel in groups.items():
        hit = sel[labelled[sel]]
        group: dict[str, Any] = {"rows": int(len(sel)), "labelled": int(len(hit))}
        group["log_loss"] = log_loss(probs[hit], labels[hit]) if len(hit) else float("nan")
        group["accuracy"] = accuracy(probs[hit], labels[hit]) if len(hit) else float("nan")
        if original is not None and swapped is not None:
            group["flip_rate"] = flip_rate(original[sel], swapped[sel])
        out[name] = group
    return out


def summarize(frame, bins: int = 10, rows: Optional[dict] = None) -> dict:
    """Every diagnostic the table supports: `rows`, `labelled`; when the
    table says which rows it covers (a `trained` column, `rows` metadata),
    `covers` (those rows in words: `describe_rows`), `trained_rows` (how
    many the run trained on; None when not known) and `held_out` (the run's
    held-out fold); on labelled rows `log_loss`, `accuracy`, `log_loss_original` /
    `log_loss_swapped` (each single pass), `calibration` (`reliability`),
    `confusion`, `by_turns`, `by_truncation`, `by_fold`, `by_trained` (the
    held-out rows and the trained ones apart, when the table has both);
    on every row with both passes `flip_rate`; and `by_language` /
    `by_category` (`by_group`) when the table carries that row metadata."""
    probs = _triple(frame, "probs")
    labels = _triple(frame, "labels")
    original = _triple(frame, "probs_original")
    swapped = _triple(frame, "probs_swapped")
    trained = int(frame["trained"].sum()) if "trained" in frame.columns else None
    out: dict[str, Any] = {"rows": len(frame), "label_space": space_of_width(_width(frame)).name}
    if trained is not None or rows:  # what the table says of its rows
        out["covers"] = describe_rows(frame, rows)
        out["trained_rows"] = trained
        out["held_out"] = (rows or {}).get("held_out")
    if original is not None and swapped is not None:
        out["flip_rate"] = flip_rate(original, swapped)
    for column in GROUP_COLUMNS:
        groups = by_group(frame, column)
        if groups:
            out[f"by_{column}"] = groups
    if labels is None:
        out["labelled"] = 0
        return out
    mask = ~np.isnan(labels).any(axis=1)
    out["labelled"] = int(mask.sum())
    if not mask.any():
        return out
    p, y = probs[mask], labels[mask]
    out["log_loss"] = log_loss(p, y)
    out["accuracy"] = accuracy(p, y)
    if original is not None:
        out["log_loss_original"] = log_loss(original[mask], y)
    if swapped is not None:
        out["log_loss_swapped"] = log_loss(swapped[mask], y)
    out["calibration"] = reliability(p, y, bins)
    out["confusion"] = confusion(p, y)
    if "turns" in frame.columns:
        turns = frame["turns"].to_numpy()[mask]
        out["by_turns"] = {}
        for lo, hi, name in TURN_BUCKETS:
            sel = (turns >= lo) & (turns <= hi if hi is not None else True)
            if sel.any():
                out["by_turns"][name] = _group(p, y, sel)
    if "truncated" in frame.columns:
        cut = frame["truncated"].to_numpy()[mask].astype(bool)
        out["by_truncation"] = {
            name: _group(p, y, sel)
            for name, sel in (("kept", ~cut), ("truncated", cut))
            if sel.any()
        }
    if "fold" in frame.columns:
        folds = frame["fold"].to_numpy()[mask]
        out["by_fold"] = {int(f): _group(p, y, folds == f) for f in np.unique(folds) if f >= 0}
    if trained:
        seen = frame["trained"].to_numpy()[mask].astype(bool)
        out["by_trained"] = {
            name: _group(p, y, sel)
            for name, sel in (("held out", ~seen), ("trained", seen))
            if sel.any()
        }
    return out


def format_summary(summary: dict) -> str:
    """The summary as aligned lines for a terminal."""

    def num(x: float) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    covers = summary.get("covers") or summary["rows"]
    lines = [f"rows          {covers} ({summary['labelled']} labelled)"]
    if summary.get("trained_rows"):
        lines.append(
            f"WARNING       {summary['trained_rows']:,} of these rows trained the run: the "
            "scores below are not held-out"
            + (
                " (--split valid scores the held-out fold)"
                if summary.get("held_out") is not None
                else ""
            )
        )
    if "log_loss" in summary:
        text = f"log loss      {num(summary['log_loss'])}"
        if "log_loss_original" in summary:
            text += f"  (original order alone {num(summary['log_loss_original'])}"
            if "log_loss_swapped" in summary:
                text += f", swapped alone {num(summary['log_loss_swapped'])}"
            text += ")"
        lines.append(text)
        lines.append(f"accuracy      {num(summary['accuracy'])}")
    if "flip_rate" in summary:
        lines.append(f"flip rate     {num(summary['flip_rate'])} (verdict changes under A/B swap)")
    if "calibration" in summary:
        lines.append(f"ECE           {num(summary['calibration']['ece'])} (10 bins, top label)")
    for key, title in (
        ("by_turns", "by turns"),
        ("by_truncation", "by truncation"),
        ("by_fold", "by fold"),
        ("by_trained", "by rows"),
        ("by_language", "by language"),
        ("by_category", "by category"),
    ):
        if summary.get(key):
            parts = [
                f"{name}: {num(g['log_loss'])} ({g['rows']})" for name, g in summary[key].items()
            ]
            lines.append(f"{title:<14}" + "  ".join(parts))
    if "confusion" in summary:
        m = summary["confusion"]
        keys = space_of_width(len(m)).keys
        lines.append(f"confusion     label \\ predicted  {', '.join(keys)}")
        for name, row in zip(keys, m):
            lines.append(f"              {name:<4}" + "".join(f"{c:>8}" for c in row))
    return "\n".join(lines)
