"""Which of a training run's evaluations it keeps (`save: best|last`) and
when it stops early (`early_stopping`): `af.train` gives every held-out
evaluation to a `Selection`, which keeps the best so far by the label
space's metric (`LabelSpace.metric`: the lowest held-out log loss, or for
`ab` the highest accuracy, ties going to the lower log loss) and counts the
evaluations since it.

What a resumed run needs lies beside its checkpoint, under names a run
directory may hold (`checkpoint*`):

- `checkpoint.best/`: with `save: best`, the best evaluation's weights
  (`decoder.safetensors`, `head.safetensors`), its held-out predictions and
  `best.json` (its record), replaced whole: written as `checkpoint.best.tmp`
  and renamed into place (`files.swap_in`).
- `checkpoint.selection.json`: the best record, the step of the last
  evaluation counted and the evaluations since the best, rewritten
  atomically after each evaluation.

When the run ends, `finish` puts the kept evaluation's weights and
predictions in the run directory (the best one's, or the last weights and
the last evaluation's predictions) and returns its record. Rank 0 alone
calls what writes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

from .errors import ConfigError
from .files import replacing, swap_in, write_bytes
from .runs import CHECKPOINT, DECODER, HEAD, PREDICTIONS, checkpoint_siblings, writing
from .weights import save_weights

__all__ = ["Selection", "BEST_DIR", "SELECTION"]

BEST_DIR = CHECKPOINT + ".best"
SELECTION = CHECKPOINT + ".selection.json"
_CANDIDATE = CHECKPOINT + ".eval.parquet"  # an evaluation's predictions, until kept
_BEST_RECORD = "best.json"


class Selection:
    """The evaluations of one run: `add` each (rank 0), `should_stop` after
    each, `finish` at the end. `save` is "best" or "last"; `patience` the
    evaluations without improvement that stop the run (None: never);
    `metric` "log_loss" (lower is better) or "accuracy" (higher)."""

    def __init__(
        self, out_dir: Path, save: str, patience: Optional[int], metric: str = "log_loss"
    ) -> None:
        if metric not in ("log_loss", "accuracy"):
            raise ConfigError(f"metric must be 'log_loss' or 'accuracy', got {metric!r}")
        self.out_dir, self.save, self.patience = Path(out_dir), save, patience
        self.metric = metric
        self.best: Optional[dict] = None  # the record of the lowest log loss
        self.last: Optional[dict] = None  # the last evaluation's record
        self.since = 0  # evaluations since the best
        self.evaluated = -1  # the step of the last evaluation counted

    @property
    def candidate(self) -> Path:
        """Where an evaluation writes its predictions before `add` keeps them."""
        return self.out_dir / _CANDIDATE

    def start(self, resumed: bool) -> None:
        """A fresh run removes an earlier run's selection and predictions; a
        resumed one reads them back (a best evaluation newer than the
        selection file, a kill between the two writes, counts as the last)."""
        best_dir = self.out_dir / BEST_DIR
        old, tmp = checkpoint_siblings(best_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        self.candidate.unlink(missing_ok=True)
        if not resumed:
            for d in (best_dir, old):
                shutil.rmtree(d, ignore_errors=True)
            for name in (SELECTION, PREDICTIONS):
                (self.out_dir / name).unlink(missing_ok=True)
            return
        if not best_dir.exists() and (old / _BEST_RECORD).is_file():
            old.rename(best_dir)  # a replacement killed between its renames
        state = _read(self.out_dir / SELECTION) or {"since": 0, "evaluated": -1}
        self.best = state.get("best")
        self.since, self.evaluated = state["since"], state["evaluated"]
        if self.save == "best":
            saved = _read(best_dir / _BEST_RECORD)
            self.best = saved
            if saved is not None and saved["step"] > self.evaluated:
                self.since, self.evaluated = 0, saved["step"]

    def add(self, model, record: dict) -> dict:
        """Count the evaluation `record` (its predictions at `candidate`):
        returns it with `best` (the lowest log loss so far). An evaluation a
        resumed run repeats (at or before the last one counted) changes
        nothing kept."""
        if record["step"] <= self.evaluated:
            self._place_predictions(keep=False)
            self.last = record
            return {**record, "best": False, "repeated": True}
        improved = self.best is None or self._better(record, self.best)
        if improved:
            self.best, self.since = record, 0
            if self.save == "best":
                self._write_best(model, record)
        else:
            self.since += 1
        self._place_predictions(keep=self.save == "last")
        self.last, self.evaluated = record, record["step"]
        path = self.out_dir / SELECTION
        state = {"best": self.best, "evaluated": self.evaluated, "since": self.since}
        with writing(path):
            write_bytes(path, (json.dumps(state) + "\n").encode())
        return {**record, "best": improved}

    def _better(self, record: dict, best: dict) -> bool:
        """Whether `record` beats `best` by the metric (accuracy: ties, or a
        record without it, go to the lower log loss)."""
        if self.metric == "accuracy":
            ours, theirs = record.get("accuracy"), best.get("accuracy")
            if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
                if ours != theirs:
                    return ours > theirs
        return record["log_loss"] < best["log_loss"]

    def should_stop(self) -> bool:
        """`patience` evaluations in a row without a lower log loss."""
        return self.patience is not None and self.since >= self.patience

    def finish(self, model, step: int, keep_files: bool) -> dict:
        """The kept evaluation's weights and predictions in the run directory;
        returns its record ({} when none ran). Without an evaluation to
        choose by, the last weights are saved. `keep_files` (the run keeps
        checkpoints) leaves the selection beside them for a later resume."""
        best_dir = self.out_dir / BEST_DIR
        if self.save == "best" and self.best is not None:
            for name in (DECODER, HEAD, PREDICTIONS):
                path = self.out_dir / name
                with writing(path), replacing(path) as tmp:
                    shutil.copyfile(best_dir / name, tmp)
            kept = self.best
        else:
            save_weights(model, self.out_dir, step)
            kept = self.last if self.save == "last" else None
        if not keep_files:
            shutil.rmtree(best_dir, ignore_errors=True)
            (self.out_dir / SELECTION).unlink(missing_ok=True)
        return dict(kept or {})

    def _write_best(self, model, record: dict) -> None:
        best_dir = self.out_dir / BEST_DIR
        old, tmp = checkpoint_siblings(best_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        with writing(tmp):
            tmp.mkdir(parents=True)
            save_weights(model, tmp, record["step"])
            shutil.copyfile(self.candidate, tmp / PREDICTIONS)
            (tmp / _BEST_RECORD).write_text(json.dumps(record) + "\n")
            swap_in(tmp, best_dir, old=old)

    def _place_predictions(self, keep: bool) -> None:
        if not self.candidate.exists():
            return
        if keep:
            os.replace(self.candidate, self.out_dir / PREDICTIONS)
        else:
            self.candidate.unlink()


def _read(path: Path) -> Any:
    """A selection file's JSON object (None when absent); a ConfigError
    naming it when it is not one with a numeric `log_loss` and `step`."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); remove it to resume") from None
    counters = ("since", "evaluated") if path.name == SELECTION else ()
    record = value.get("best", value) if isinstance(value, dict) else None
    if not isinstance(value, dict) or (
        record is not None
        and not (
            isinstance(record, dict)
            and isinstance(record.get("step"), int)
            and isinstance(record.get("log_loss"), (int, float))
        )
    ):
        raise ConfigError(f"{path}: not a selection record (step, log_loss); remove it to resume")
    if any(type(value.get(name)) is not int for name in counters):
        raise ConfigError(f"{path}: {' and '.join(counters)} must be integers; remove it to resume")
    return value
