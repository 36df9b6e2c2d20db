"""A run read for its view (no web code here): its settings, its report's
files, and its held-out prediction table (`outputs.PREDICTIONS`) with each
row's log loss, worst first, filtered and a page at a time.

The prediction table covers one held-out fold (a fifth of a dataset): it is
read once, checked by `diagnostics.read_predictions`, and kept for the
server's life, sorted by loss. A reward run's table also holds each pair's
two rewards (`reward_tables.REWARD_COLUMNS`), shown beside the
probabilities."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..diagnostics import read_predictions, row_losses
from ..errors import ArenaFastError, InputError
from ..labels import space_of_width
from ..outputs import GENERATOR_META, PREDICTIONS, REPORT_DIR
from ..reward_tables import REWARD_COLUMNS, table_rewards
from ..runs import read_run_config
from .query import PAGE_SIZE, RowQuery, parse_choice, parse_int, parse_search, parse_yes_no

# A report file a request may name: index.html or a PNG beside it, a plain name.
REPORT_FILE = re.compile(r"(index\.html|[A-Za-z0-9_.-]+\.png)")


# Kaggle's clipping, as `diagnostics.log_loss` (whose mean these row losses make).
@dataclass(frozen=True)
class PredictionQuery:
    """Filters of the prediction table (None: any) and the page."""

    fold: Optional[int] = None
    label: Optional[str] = None  # the true class (a key), or "none"
    predicted: Optional[str] = None  # the argmax class
    wrong: Optional[bool] = None  # labelled and predicted != label (no: labelled and right)
    language: Optional[str] = None
    truncated: Optional[bool] = None
    turns_min: Optional[int] = None
    turns_max: Optional[int] = None
    q: str = ""  # in the id
    page: int = 1

    params = RowQuery.params


class RunTable:
    """One run: settings, report and predictions (see the module's docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._predictions: Optional[dict] = None

    def settings(self) -> dict:
        """A few settings of the run (config.json), {} when unreadable."""
        try:
            config = read_run_config(self.path)
        except ArenaFastError:  # the page says so; the predictions may still be read
            return {}
        names = ("model", "data", "fold", "lora_r", "epochs", "lr", "max_steps")
        if config.reward:  # a reward run says so, with how it models ties
            names = (*names, "objective", "tie_model")
        return {n: getattr(config, n) for n in names if getattr(config, n, None) is not None}

    # -- the report ---------------------------------------------------------------------
    @property
    def report_dir(self) -> Path:
        return self.path / REPORT_DIR

    def has_report(self) -> bool:
        """Whether RUN/report holds a report `arena-fast report` wrote."""
        try:
            with open(self.report_dir / "index.html", encoding="utf-8", errors="replace") as f:
                return GENERATOR_META in f.read(1 << 16)
        except OSError:
            return False

    def report_file(self, name: str) -> Optional[Path]:
        """The report's file `name` when it is one (index.html or a PNG, a
        plain name listed in the report's own directory); None otherwise.
        The name is looked up in the listing, never joined as a path."""
        if not REPORT_FILE.fullmatch(name) or not self.has_report():
            return None
        try:
            listed = {e.name: e for e in os.scandir(self.report_dir)}
        except OSError:
            return None
        entry = listed.get(name)
        if entry is None or entry.is_symlink() or not entry.is_file():
            return None
        return Path(entry.path)

    # -- the predictions ----------------------------------------------------------------
    @property
    def predictions_file(self) -> Path:
        return self.path / PREDICTIONS

    def predictions(self) -> Optional[dict]:
        """The prediction table as numpy columns sorted by loss (worst
        first, unlabelled rows last); None when the run has none."""
        with self._lock:
            if self._predictions is None and self.predictions_file.is_file():
                frame = read_predictions(self.predictions_file)
                self._predictions = _sorted_columns(frame, self.predictions_file)
            return self._predictions

    def parse(self, params: Mapping[str, str]) -> PredictionQuery:
        """A `PredictionQuery` from URL parameters; InputError naming a bad one."""
        table = self.predictions()
        keys = table["space"].keys if table else ()
        known = {f.name for f in fields(PredictionQuery)}
        values: dict[str, Any] = {}
        for name, raw in params.items():
            if name not in known:
                raise InputError(f"{name}: not a filter of this page")
            if raw == "":
                continue
            if name in ("fold", "turns_min", "turns_max"):
                values[name] = parse_int(raw, name, 0, 1 << 30)
            elif name == "page":
                values[name] = parse_int(raw, name, 1, 1 << 40)
            elif name in ("label", "predicted"):
                values[name] = parse_choice(raw, (*keys, "none") if name == "label" else keys, name)
            elif name in ("wrong", "truncated"):
                values[name] = parse_yes_no(raw, name)
            elif name == "language":
                languages = [v for v, _ in table["languages"]] if table else []
                if not languages:
                    raise InputError("language: this prediction table has no languages")
                values[name] = parse_choice(raw, languages, name)
            else:
                values[name] = parse_search(raw, name)
        query = PredictionQuery(**values)
        if None not in (query.turns_min, query.turns_max) and query.turns_min > query.turns_max:
            raise InputError("turns_min is greater than turns_max")
        return query

    def query(self, query: PredictionQuery, page_size: int = PAGE_SIZE) -> tuple:
        """(rows of page `query.page`, total matches): each row a dict of
        its columns, its loss, its rank by loss (1 the worst) and classes."""
        t = self.predictions()
        keep = np.ones(t["n"], dtype=bool)
        wrong = (t["label"] >= 0) & (t["label"] != t["predicted"])
        checks = (  # (filter, its value, the column it needs, the rows it keeps)
            ("fold", query.fold, "fold", lambda v: t["fold"] == v),
            ("label", query.label, "label", lambda v: t["label"] == _code(t, v)),
            ("predicted", query.predicted, "predicted", lambda v: t["predicted"] == _code(t, v)),
            ("wrong", query.wrong, "label", lambda v: (t["label"] >= 0) & (wrong == v)),
            ("language", query.language, "language", lambda v: t["language"] == v),
            ("truncated", query.truncated, "truncated", lambda v: t["truncated"] == v),
            ("turns_min", query.turns_min, "turns", lambda v: t["turns"] >= v),
            ("turns_max", query.turns_max, "turns", lambda v: t["turns"] <= v),
        )
        for name, value, column, test in checks:
            if value is None:
                continue
            if column not in t:
                raise InputError(f"{name}: this prediction table has no {column!r} column")
            keep &= np.asarray(test(value), dtype=bool)
        if query.q:
            needle = query.q.casefold()
            keep &= np.array([needle in i.casefold() for i in t["id"]], dtype=bool)
        chosen = np.flatnonzero(keep)
        first = (query.page - 1) * page_size
        return [_row(t, int(i)) for i in chosen[first : first + page_size]], len(chosen)


def _code(t: dict, key: str) -> int:
    return -1 if key == "none" else t["space"].keys.index(key)


def _sorted_columns(frame, path=PREDICTIONS) -> dict:
    probs = frame["probs"].to_numpy().reshape(len(frame), -1).astype(np.float64)
    space = space_of_width(probs.shape[1], "probs")
    if "labels" in frame.columns:
        labels = frame["labels"].to_numpy().reshape(len(frame), -1).astype(np.float64)
    else:
        labels = np.full_like(probs, np.nan)
    labelled = ~np.isnan(labels).any(axis=1)
    loss = row_losses(probs, np.nan_to_num(labels))
    loss[~labelled] = np.nan
    order = np.lexsort((np.arange(len(frame)), np.where(labelled, -loss, np.inf)))
    label = np.where(labelled, np.nan_to_num(labels, nan=0.0).argmax(axis=1), -1)
    t: dict[str, Any] = {
        "n": len(frame),
        "space": space,
        "position": order,
        "id": np.array(frame["id"].to_list(), dtype=object)[order],
        "probs": probs[order],
        "labels": labels[order],
        "loss": loss[order],
        "label": label[order],
        "predicted": probs.argmax(axis=1)[order],
    }
    for name in ("probs_original", "probs_swapped"):
        if name in frame.columns:
            t[name] = frame[name].to_numpy().reshape(len(frame), -1)[order]
    rewards = table_rewards(frame, path)  # a reward run's: each answer's reward
    if rewards is not None:
        for j, name in enumerate(REWARD_COLUMNS):
            t[name] = rewards[order, j]
    for name in ("fold", "turns", "truncated", "trained", "language", "category"):
        if name in frame.columns:
            values = frame[name].to_numpy()
            t[name] = values[order]
    if "language" in t:
        values, counts = np.unique(t["language"][t["language"] != None], return_counts=True)  # noqa: E711
        t["languages"] = sorted(zip(values.tolist(), counts.tolist()), key=lambda x: -x[1])
    else:
        t["languages"] = []
    return t


def _row(t: dict, i: int) -> dict:
    space = t["space"]
    label = int(t["label"][i])
    row = {
        "rank": i + 1,
        "position": int(t["position"][i]),
        "id": t["id"][i],
        "loss": None if np.isnan(t["loss"][i]) else float(t["loss"][i]),
        "probs": list(zip(space.names, t["probs"][i].tolist())),
        "label": space.names[label] if label >= 0 else None,
        "predicted": space.names[int(t["predicted"][i])],
    }
    for name in ("probs_original", "probs_swapped"):
        if name in t:
            row[name] = t[name][i].tolist()
    for name in REWARD_COLUMNS:
        if name in t:
            row[name] = float(t[name][i])
    for name in ("fold", "turns", "truncated", "trained", "language", "category"):
        if name in t:
            value = t[name][i]
            row[name] = value.item() if hasattr(value, "item") else value
    return row
