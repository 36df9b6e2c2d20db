"""What the report shows of each run or prediction table: a `Section` read
from the run directory (config, bundle, metrics.jsonl, held-out
predictions), and the numbers drawn from it (flip rates by turns, log loss
per fold, the pooled out-of-fold summary).

Every table's rows are named (`Section.covers`: `diagnostics.describe_rows`
of its `rows` metadata and `trained` column), and a table holding rows its
run trained on gets a warning. Runs are pooled "out of fold" only when
their held-out folds are distinct, their dataset the same and no id appears
twice (`pooled_summary` says why not otherwise)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import polars as pl

from ..diagnostics import TURN_BUCKETS, describe_rows, flip_rate, read_predictions, summarize
from ..errors import ConfigError
from ..outputs import BUNDLE, MERGED, METRICS, PREDICTIONS, RUN_CONFIG
from ..reward_tables import reward_summary
from ..runs import describe_training, trained_on

# One color per run (or fold bar), in the plots' order.
COLORS = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")


@dataclass
class Section:
    """One run or one prediction table, as the page shows it."""

    key: str  # prefix of its PNG names: no user text reaches a file name
    title: str
    path: str
    config: dict = field(default_factory=dict)
    bundle: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)  # training records, by step
    evals: list = field(default_factory=list)  # evaluation records, by step
    saved: Optional[dict] = None  # the {"saved", "step", "kept"} record
    trained: Optional[dict] = None  # the bundle's trained_on (None: not recorded)
    frame: Any = None
    rows: dict = field(default_factory=dict)  # the table's rows metadata
    summary: Optional[dict] = None
    notes: list = field(default_factory=list)
    is_run: bool = True
    # A reward run's or table's `reward_tables.reward_summary` (None: not one)
    # and its run's tie parameter (`tie_model`, `theta`, `tie_prob_of_equal_rewards`).
    reward: Optional[dict] = None
    tie: Optional[dict] = None

    @property
    def covers(self) -> str:
        """The rows of the section's table, in words (`describe_rows`)."""
        return "" if self.frame is None else describe_rows(self.frame, self.rows)

    @property
    def trained_rows(self) -> Optional[int]:
        """How many rows of the table the run trained on (None: not known)."""
        return (self.summary or {}).get("trained_rows")

    @property
    def kept(self) -> Optional[dict]:
        """The evaluation whose weights the run kept (`save: best|last`)."""
        kept = (self.saved or {}).get("kept")
        return kept if isinstance(kept, dict) and kept else None

    def trained_on(self) -> str:
        """The rows the run trained on, in words (`runs.describe_training`)."""
        return describe_training(self.trained, self.config.get("fold"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable: {exc}") from None


def load_run(run: Path, key: str) -> Section:
    if not (run / RUN_CONFIG).is_file():
        raise ConfigError(f"{run}: not a training run (no config.json from `arena-fast train`)")
    config = _read_json(run / RUN_CONFIG)
    if not isinstance(config, dict):
        raise ConfigError(f"{run / 'config.json'}: not a training config")
    title = run.resolve().name or str(run)
    sec = Section(key=key, title=title, path=str(run), config=config)
    if (run / BUNDLE).is_file():
        bundle = _read_json(run / BUNDLE)
        sec.bundle = bundle if isinstance(bundle, dict) else {}
        try:
            sec.trained = trained_on(sec.bundle, run / BUNDLE)
        except ConfigError as exc:
            sec.notes.append(f"which rows the run trained on is unreadable: {exc}")
    merged = MERGED in (sec.bundle.get("files") or {})
    if merged:
        sec.notes.append(f"a merged run (merge-adapters): trained on {sec.trained_on()}")
    _read_metrics(run / METRICS, sec)
    if config.get("objective") == "reward":
        sec.tie = _tie(config, sec)
    held_out = config.get("fold") is not None
    if not sec.evals and not merged:
        sec.notes.append(
            "no evaluation records: the run stopped before its first evaluation"
            if held_out
            else "no evaluation records: the run has no held-out fold (fold None)"
        )
    if (run / PREDICTIONS).is_file():
        sec.frame, sec.rows = read_predictions(run / PREDICTIONS, with_rows=True)
        if not sec.rows and held_out:  # written before tables said: the held-out fold
            sec.rows = {"split": "valid", "held_out": config.get("fold"), "own_dataset": True}
        sec.summary = summarize(sec.frame, rows=sec.rows)
        sec.reward = reward_summary(sec.frame, run / PREDICTIONS)
    elif merged:
        sec.notes.append("no held-out predictions: a merge has none of its own")
    elif not held_out:
        sec.notes.append("no held-out predictions: the run trained on every row (fold None)")
    elif not sec.evals:
        sec.notes.append("no held-out predictions: the run stopped before its first evaluation")
    else:
        sec.notes.append(f"no held-out predictions: {PREDICTIONS} is missing")
    return sec


def _read_metrics(path: Path, sec: Section) -> None:
    """Training and evaluation records (every evaluation, keyed by its step:
    `eval_every` ones too) and the last `saved` record (which evaluation's
    weights the run kept); a resumed run repeats the steps after its
    checkpoint, and the later record of a step wins. A line that is not
    JSON (cut short by a crash) or a record whose numbers are not numbers
    (`_checked_record`) is skipped, and the page says how many and where the
    first one is."""
    if not path.is_file():
        sec.notes.append("no metrics.jsonl: the run wrote no records")
        return
    steps: dict = {}
    evals: dict = {}
    bad: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = _checked_record(json.loads(line))
            except (ValueError, RecursionError) as exc:
                bad.append(f"line {number}: {exc}")
                continue
            if record.get("eval"):
                step = record.get("step")
                evals[("epoch", record.get("epoch")) if step is None else step] = record
            elif "saved" in record:
                sec.saved = record
            elif "loss" in record and "step" in record:
                steps[record["step"]] = record
    sec.steps = [steps[k] for k in sorted(steps)]
    sec.evals = sorted(evals.values(), key=lambda r: (r.get("step") or 0, r.get("epoch") or 0))
    if bad:
        sec.notes.append(f"{path.name}: {len(bad)} unreadable record(s) skipped ({bad[0]})")
    if not sec.steps:
        sec.notes.append("no training loss records (fewer steps than log_every)")


# The fields of a metrics record the page reads: counters (finite, exact as
# float64) and losses (a diverged run's inf / nan is drawn as a gap).
_COUNTERS = ("step", "epoch", "seconds")
_LOSSES = ("loss", "log_loss", "tta_log_loss")
# A reward run's evaluation: its pairwise accuracy and tie parameter (`af.infer.evaluate`).
_REWARD_NUMBERS = ("pairwise_accuracy", "theta", "tie_prob_of_equal_rewards")


def _tie(config: dict, sec: Section) -> dict:
    """A reward run's tie parameter as its kept evaluation (else its last)
    recorded it, with the config's `tie_model` (None where not recorded)."""
    record = sec.kept or (sec.evals[-1] if sec.evals else {})
    tie = {"tie_model": config.get("tie_model", "davidson")}
    tie.update({k: record.get(k) for k in ("theta", "tie_prob_of_equal_rewards")})
    return tie


def _checked_record(record: Any) -> dict:
    """`record` with its counters and losses as numbers, or ValueError
    saying which field is not one."""
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    record = dict(record)
    if "saved" in record:
        if not isinstance(record.get("kept"), dict):
            raise ValueError("kept is not an object")
        record["kept"] = _checked_record(record["kept"])
    for name in (*_COUNTERS, *_LOSSES, *_REWARD_NUMBERS):
        value = record.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} is {type(value).__name__}, not a number")
        if name in _COUNTERS and not (abs(value) <= 2**53 and math.isfinite(value)):
            raise ValueError(f"{name} {value!r:.30} is not a finite number below 2**53")
        if name not in _COUNTERS:
            try:
                value = float(value)
            except OverflowError:
                raise ValueError(f"{name} is not a float64") from None
            record[name] = value if math.isfinite(value) else math.nan
    return record


def load_predictions(path: Path, key: str) -> Section:
    frame, rows = read_predictions(path, with_rows=True)
    sec = Section(key=key, title=path.name, path=str(path), is_run=False, frame=frame, rows=rows)
    sec.summary = summarize(frame, rows=rows)
    sec.reward = reward_summary(frame, path)
    if sec.trained_rows:
        sec.notes.append(
            f"WARNING: {sec.trained_rows:,} of these {len(frame):,} rows trained the run: "
            "these scores are not held-out"
        )
    elif sec.trained_rows is None and rows.get("own_dataset") is not False:
        sec.notes.append(
            "this table does not say which rows its run trained on: its scores may include "
            "trained rows"
        )
    return sec


def _column3(frame, name: str) -> Optional[np.ndarray]:
    if name not in frame.columns:
        return None
    k = frame.schema[name].size  # the label space's classes
    return frame[name].to_numpy().astype(np.float64).reshape(len(frame), k)


def flip_rates(frame) -> list:
    """(name, flip rate, rows) overall and per turn bucket."""
    original, swapped = _column3(frame, "probs_original"), _column3(frame, "probs_swapped")
    if original is None or swapped is None:
        return []
    out = [("all", flip_rate(original, swapped), len(frame))]
    if "turns" in frame.columns:
        turns = frame["turns"].to_numpy()
        for lo, hi, name in TURN_BUCKETS:
            sel = (turns >= lo) & ((turns <= hi) if hi is not None else True)
            if sel.any():
                out.append((name, flip_rate(original[sel], swapped[sel]), int(sel.sum())))
    return out


def trained_folds(sec: Section) -> set:
    """The folds of the section's table holding rows its run trained on."""
    frame = sec.frame
    if frame is None or "trained" not in frame.columns or "fold" not in frame.columns:
        return set()
    return set(frame.filter(pl.col("trained"))["fold"].unique().to_list())


def fold_bars(sections: list) -> list:
    """(label, log loss, rows, color) per fold of each run's held-out table:
    the fold from the table's `fold` column, else from the run's config; a
    fold whose rows trained the run is labelled `(trained)`."""
    bars = []
    for i, sec in enumerate(sections):
        s = sec.summary
        if not s or "log_loss" not in s:
            continue
        color = COLORS[i % len(COLORS)]
        whole = {"rows": s["labelled"], "log_loss": s["log_loss"]}
        folds = s.get("by_fold") or {sec.config.get("fold"): whole}
        seen = trained_folds(sec)
        for fold, g in folds.items():
            bars.append((sec.title, fold, g["log_loss"], g["rows"], color, fold in seen))
    unique = len({b[1] for b in bars}) == len(bars) and None not in {b[1] for b in bars}
    return [
        (
            (f"fold {f}" if unique else f"{t}\n{'all rows' if f is None else f'fold {f}'}")
            + (" (trained)" if trained else ""),
            ll,
            n,
            c,
        )
        for t, f, ll, n, c, trained in bars
    ]


def pooled_summary(sections: list) -> tuple[Optional[dict], str]:
    """The out-of-fold summary: every run's held-out rows together, and a
    note. Only rows held out of their run, of distinct folds of one dataset,
    with no id twice, are pooled; otherwise `(None, why not)`."""
    have = [s for s in sections if s.frame is not None]
    if len(have) < 2:
        return None, ""
    folds = [s.rows.get("held_out") for s in have]
    datasets = {_dataset(s) for s in have}
    ids = pl.concat([s.frame.select("id") for s in have])["id"]
    why = None
    if any(s.rows.get("split") != "valid" or s.trained_rows for s in have):
        why = "a table holds rows its run trained on"
    elif None in folds or len(set(folds)) != len(folds):
        named = ", ".join("?" if f is None else str(f) for f in folds)
        why = f"the runs' held-out folds are not distinct (folds {named}): rows would count twice"
    elif len(datasets) != 1 or None in datasets:
        why = "the runs were not trained on one dataset (or do not say which)"
    elif ids.n_unique() != len(ids):
        why = f"{len(ids) - ids.n_unique():,} ids appear in more than one run's table"
    elif len({tuple(s.frame.schema.items()) for s in have}) != 1:
        why = "the runs' tables hold different columns"
    if why:
        return None, f"no pooled out-of-fold score: {why}"
    pooled = summarize(pl.concat([s.frame for s in have], how="vertical"))
    folds_text = ", ".join(str(f) for f in sorted(folds))
    return pooled, f"pooled out of fold: held-out folds {{{folds_text}}}, {len(ids):,} rows"


def _dataset(sec: Section) -> Optional[str]:
    """The identity of the dataset a run's table comes from: its sha256
    (the table's or the bundle's), else the config's `data` path."""
    sha = sec.rows.get("dataset_sha256") or (sec.trained or {}).get("dataset_sha256")
    return sha or (f"path:{sec.config['data']}" if sec.config.get("data") else None)
