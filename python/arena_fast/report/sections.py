"""What the report shows of each run or prediction table: a `Section` read
from the run directory (config, bundle, metrics.jsonl, held-out
predictions), and the numbers drawn from it (flip rates by turns, log loss
per fold, the pooled out-of-fold summary)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import polars as pl

from ..diagnostics import TURN_BUCKETS, flip_rate, read_predictions, summarize
from ..errors import ConfigError
from ..outputs import BUNDLE, METRICS, PREDICTIONS, RUN_CONFIG

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
    evals: list = field(default_factory=list)  # evaluation records, by epoch
    frame: Any = None
    summary: Optional[dict] = None
    notes: list = field(default_factory=list)
    is_run: bool = True


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
    _read_metrics(run / METRICS, sec)
    held_out = config.get("fold") is not None
    if not sec.evals:
        sec.notes.append(
            "no evaluation records: the run stopped before its first evaluation"
            if held_out
            else "no evaluation records: the run has no held-out fold (fold None)"
        )
    if (run / PREDICTIONS).is_file():
        sec.frame = read_predictions(run / PREDICTIONS)
        sec.summary = summarize(sec.frame)
    elif not held_out:
        sec.notes.append("no held-out predictions: the run trained on every row (fold None)")
    elif not sec.evals:
        sec.notes.append("no held-out predictions: the run stopped before its first evaluation")
    else:
        sec.notes.append(f"no held-out predictions: {PREDICTIONS} is missing")
    return sec


def _read_metrics(path: Path, sec: Section) -> None:
    """Training and evaluation records; a resumed run repeats the steps
    after its checkpoint, and the later record of a step (epoch) wins. A
    line that is not JSON (cut short by a crash) or a record whose numbers
    are not numbers (`_checked_record`) is skipped, and the page says how
    many and where the first one is."""
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
                evals[record.get("epoch")] = record
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


def _checked_record(record: Any) -> dict:
    """`record` with its counters and losses as numbers, or ValueError
    saying which field is not one."""
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    record = dict(record)
    for name in (*_COUNTERS, *_LOSSES):
        value = record.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} is {type(value).__name__}, not a number")
        if name in _COUNTERS and not (abs(value) <= 2**53 and math.isfinite(value)):
            raise ValueError(f"{name} {value!r:.30} is not a finite number below 2**53")
        if name in _LOSSES:
            try:
                value = float(value)
            except OverflowError:
                raise ValueError(f"{name} is not a float64") from None
            record[name] = value if math.isfinite(value) else math.nan
    return record


def load_predictions(path: Path, key: str) -> Section:
    frame = read_predictions(path)
    sec = Section(key=key, title=path.name, path=str(path), is_run=False, frame=frame)
    sec.summary = summarize(frame)
    return sec


def _column3(frame, name: str) -> Optional[np.ndarray]:
    if name not in frame.columns:
        return None
    return frame[name].to_numpy().astype(np.float64).reshape(len(frame), 3)


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


def fold_bars(sections: list) -> list:
    """(label, log loss, rows, color) per fold of each run's held-out table:
    the fold from the table's `fold` column, else from the run's config."""
    bars = []
    for i, sec in enumerate(sections):
        s = sec.summary
        if not s or "log_loss" not in s:
            continue
        color = COLORS[i % len(COLORS)]
        whole = {"rows": s["labelled"], "log_loss": s["log_loss"]}
        folds = s.get("by_fold") or {sec.config.get("fold"): whole}
        for fold, g in folds.items():
            bars.append((sec.title, fold, g["log_loss"], g["rows"], color))
    unique = len({b[1] for b in bars}) == len(bars) and None not in {b[1] for b in bars}
    return [
        (f"fold {f}" if unique else f"{t}\n{'all rows' if f is None else f'fold {f}'}", ll, n, c)
        for t, f, ll, n, c in bars
    ]


def pooled_summary(sections: list) -> Optional[dict]:
    """The out-of-fold summary: every run's held-out rows together (when
    the tables share their columns)."""
    frames = [s.frame for s in sections if s.frame is not None]
    if len(frames) < 2 or len({tuple(f.schema.items()) for f in frames}) != 1:
        return None
    return summarize(pl.concat(frames, how="vertical"))
