"""A training run's records sent to the trackers `report_to` names, as
transformers' `report_to` does: `af.train` hands every record it writes to
`metrics.jsonl` (training steps, evaluations, "stopped", "saved") to
`tracking(...)`'s callable, on rank 0 alone.

- **tensorboard**: `torch.utils.tensorboard.SummaryWriter` event files in
  `RUN/logs/` (`tensorboard --logdir RUN/logs`): scalars `train/loss`,
  `train/lr`, `train/epoch`, `eval/<metric>` (`eval/log_loss`,
  `eval/accuracy`, `eval/tta_log_loss`, ...) by optimizer step, the
  settings as text and hparams, why the run stopped and what it kept as
  text.
- **wandb**: `wandb.init(config=<the settings>)`, `wandb.log(..., step=)`
  with the same names, the kept evaluation as `kept/<metric>` in the run's
  summary, `finish()`; configured by the usual `WANDB_*` environment
  variables (`WANDB_MODE=offline`, `WANDB_PROJECT` (default arena-fast),
  `WANDB_NAME` (default: the run directory's name), `WANDB_DIR` (default:
  `RUN/logs`)).

`RUN/logs/` is part of a run directory (`outputs.LOGS`: resume and
`--overwrite` accept it) but not of its bundle: what a run predicts with is
the same whether it was tracked or not. A fresh run (not a resumed one)
removes an earlier run's event files there; a resumed one appends, and
TensorBoard drops what the earlier process logged after the checkpoint's
step (`purge_step`); W&B starts a new run from that step. Trackers are
closed on every way out, a failed run's W&B run marked failed (exit code
1)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .outputs import LOGS
from .runs import writing
from .train_config import TrainConfig

__all__ = ["LOGS", "check_available", "scalars", "tracking"]

# tracker -> the package it needs
_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}
_EVENTS = "events.out.tfevents.*"  # TensorBoard's event files


def check_available(config: TrainConfig) -> None:
    """Every tracker `config.report_to` names can be imported: a ConfigError
    naming the `pip install` otherwise (before anything is trained)."""
    for name in config.trackers():
        package = _PACKAGES[name]
        try:
            importlib.import_module(package)
        except ImportError:
            raise ConfigError(
                f"report_to: {name} needs the {package} package, which is not installed: "
                f'pip install {package} (both trackers: pip install "arena-fast[track]"), '
                f"or drop {name} from report_to"
            ) from None


def scalars(record: dict) -> dict[str, float]:
    """The numbers of a log record under their tracker names: a training
    step's `train/loss`, `train/lr`, `train/epoch`; an evaluation's
    `eval/<metric>` (every number but its step, epoch and seconds); none
    for the other records."""
    if record.get("eval"):
        skip = ("step", "epoch", "seconds")
        return {
            f"eval/{k}": float(v)
            for k, v in record.items()
            if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    if "loss" in record:
        return {f"train/{k}": float(record[k]) for k in ("loss", "lr", "epoch") if k in record}
    return {}


def _notes(record: dict) -> dict[str, str]:
    """The text of a "stopped" or "saved" record under its name (none for
    the others)."""
    if "stopped" in record:
        return {"stopped": f"stopped at step {record['step']} ({record['stopped']})"}
    if "saved" in record:
        return {"saved": f"kept ({record['saved']}): {json.dumps(record['kept'])}"}
    return {}


def _settings(config: TrainConfig) -> dict[str, Any]:
    """The settings as scalars (hparams, W&B config): None and lists as text."""
    return {
        k: v if isinstance(v, (bool, int, float, str)) else str(v)
        for k, v in dataclasses.asdict(config).items()
    }


class _TensorBoard:
    def __init__(self, config: TrainConfig, logs: Path, step: int) -> None:
        # Here, not at the top: the trackers are optional packages.
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        with writing(logs):
            # A resumed run drops what was logged after its checkpoint's step.
            purge = step + 1 if step else None
            self.writer = SummaryWriter(log_dir=str(logs), purge_step=purge)
        if not step:
            settings = json.dumps(dataclasses.asdict(config), indent=2)
            self.writer.add_text("config", f"```\n{settings}\n```", 0)
            for summary in hparams(_settings(config), {"eval/log_loss": float("nan")}):
                self.writer.file_writer.add_summary(summary)

    def log(self, record: dict) -> None:
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, record["step"])
        for name, text in _notes(record).items():
            self.writer.add_text(name, text, record["step"])
        self.writer.flush()

    def close(self, failed: bool) -> None:
        self.writer.close()


class _WandB:
    def __init__(self, config: TrainConfig, logs: Path, step: int) -> None:
        import wandb

        with writing(logs):
            logs.mkdir(parents=True, exist_ok=True)
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or "arena-fast",
                name=os.environ.get("WANDB_NAME") or Path(os.path.abspath(config.out)).name,
                dir=None if os.environ.get("WANDB_DIR") else str(logs),
                config=dataclasses.asdict(config),
            )
        except Exception as exc:  # wandb's own errors: not logged in, no network, ...
            raise ConfigError(
                f"report_to: wandb could not start a run ({type(exc).__name__}: {exc}); "
                "log in (wandb login), or set WANDB_MODE=offline to log locally"
            ) from None

    def log(self, record: dict) -> None:
        values = scalars(record)
        if values:
            self.run.log(values, step=record["step"])
        if "saved" in record:
            self.run.summary.update({f"kept/{k}": v for k, v in record["kept"].items()})

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


_TRACKERS = {"tensorboard": _TensorBoard, "wandb": _WandB}


@contextlib.contextmanager
def tracking(config: TrainConfig, out_dir: Path, step: int) -> Iterator[Callable[[dict], None]]:
    """`send(record)` for the block: each record to every tracker of
    `config.report_to`, opened here (a run resumed at optimizer step `step`,
    or a fresh one at 0, which removes an earlier run's event files) and
    closed when the block ends, however it ends."""
    logs = Path(out_dir) / LOGS
    if not step:
        for old in logs.glob(_EVENTS):
            old.unlink()
    with contextlib.ExitStack() as stack:
        trackers = []
        for name in config.trackers():
            tracker = _TRACKERS[name](config, logs, step)
            stack.push(lambda kind, exc, tb, t=tracker: t.close(failed=kind is not None))
            trackers.append(tracker)

        def send(record: dict) -> None:
            for tracker in trackers:
                tracker.log(record)

        yield send
