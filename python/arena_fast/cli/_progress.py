"""Progress of a long command on stderr, drawn by `tqdm`: the commands hand
`Progress` the records a library function gives its `progress=` callback
(`af.build_dataset`, `af.train.train`, `af.predict.predict`; the records
are in docs/dataset.md "Progress" and docs/training.md) and their own log
lines (`write`).

On a terminal a bar is redrawn (count, total, rate, elapsed < ETA, and a
postfix such as the loss); otherwise (a log file, a pipe, CI) a plain
`arena-fast: ...` line with the same figures every `interval` seconds,
never a `\\r`; with `quiet`, nothing."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Callable, Optional, TextIO

from tqdm import tqdm

# What each stage of a build after the reading says.
_STAGES = {"dedup": "de-duplicating and assigning folds", "write": "writing shards"}


class Progress:
    """One bar at a time: `update` advances it (`n` of `total` `unit`s),
    `stage` ends it and says what comes next, `write` prints a line above
    it, `done` ends it. `tty` (default: the stream's `isatty`) chooses the
    redrawn bar or the plain lines."""

    def __init__(
        self,
        stream: Optional[TextIO] = None,
        quiet: bool = False,
        interval: float = 5.0,
        prefix: str = "arena-fast",
        unit: str = "rows",
        tty: Optional[bool] = None,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet, self.interval, self.prefix, self.unit = quiet, interval, prefix, unit
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.bar: Optional[tqdm] = None
        self.desc = ""
        self._begin()

    def _begin(self) -> None:
        """A new stage: its first `update` sets where the count starts."""
        self.start = self.last = time.perf_counter()
        self.initial: Optional[int] = None

    def stage(self, text: str) -> None:
        """A new stage: the bar ends, `text` is printed, the count starts again."""
        self.done()
        self.write(text)
        self._begin()

    def describe(self, text: str) -> None:
        """What the bar counts now (its description), the count unchanged."""
        if text != self.desc and self.bar is not None:
            self.bar.set_description_str(text)
        self.desc = text

    def write(self, text: str) -> None:
        """`prefix: text` on its own line (above the bar on a terminal)."""
        if self.quiet:
            return
        line = f"{self.prefix}: {text}"
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """A block that prints elsewhere (stdout): the bar is cleared for it
        and drawn again after it."""
        if self.bar is not None:
            self.bar.clear()
        try:
            yield
        finally:
            if self.bar is not None:
                self.bar.refresh()

    def update(self, n: int, total: Optional[float] = None, postfix: str = "") -> None:
        """`n` counted so far in this stage, of about `total` when known; the
        first call of a stage sets where the count starts (a resumed run's
        steps), the rate and ETA counting from there."""
        if self.quiet:
            return
        total = int(total) if total else None
        if self.initial is None:  # the rate counts from here
            self.initial, self.start = n, time.perf_counter()
        if self.tty:
            if self.bar is None:
                self.bar = tqdm(
                    total=total,
                    initial=n,
                    desc=self.desc or None,
                    unit=self.unit,
                    file=self.stream,
                    dynamic_ncols=True,
                    leave=False,
                    mininterval=0.2,
                )
            self.bar.total = total
            if postfix:
                self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(n - self.bar.n)
            return
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            meter = tqdm.format_meter(
                n,
                total,
                now - self.start,
                ncols=0,
                prefix=self.desc,
                unit=self.unit,
                postfix=postfix or None,
                initial=self.initial,
            )
            print(f"{self.prefix}: {meter.strip()}", file=self.stream, flush=True)

    def done(self) -> None:
        """End the bar (a terminal's is cleared), so what follows starts clean."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def build_bar(progress: Progress) -> Callable[[dict], None]:
    """`af.build_dataset`'s progress records (docs/dataset.md, "Progress")
    drawn by `progress`: a line per stage, a bar of the rows read."""

    def show(record: dict) -> None:
        if "rows" in record:
            progress.update(record["rows"], record.get("total"))
        elif record["stage"] == "read":
            progress.stage(f"reading {record['path']} ({record['format']})")
        else:
            progress.stage(_STAGES.get(record["stage"], record["stage"]))

    return show


def train_bar(progress: Progress) -> Callable[[dict], None]:
    """`af.train.train`'s progress records drawn by `progress`: the run's
    optimizer steps with the last loss and learning rate, "evaluating"
    while the held-out fold is."""

    def show(record: dict) -> None:
        if record.get("stage") == "evaluate":
            progress.describe("evaluating")
            return
        progress.describe("training")
        postfix = f"loss {record['loss']:.4f}, lr {record['lr']:.2e}" if "loss" in record else ""
        progress.update(record["step"], record["total"], postfix)

    return show


def rows_bar(progress: Progress, what: str = "predicting") -> Callable[[dict], None]:
    """`af.predict.predict`'s (`af.infer.predict_logits`') progress records
    drawn by `progress`: the rows predicted, described as `what`."""

    def show(record: dict) -> None:
        progress.describe(what)
        progress.update(record["rows"], record["total"])

    return show
