"""A build's progress on the terminal: `Progress` is the callback that
`arena-fast build-dataset` hands to `af.build_dataset(progress=...)` (the
records are in docs/dataset.md, "Progress"). On a terminal one line is
redrawn (a bar when the total is known, rows/s, an ETA); otherwise a log
line every few seconds; with `quiet`, nothing."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

# What each stage after the reading says.
_STAGES = {"dedup": "de-duplicating and assigning folds", "write": "writing shards"}


class Progress:
    """Rows/s and an ETA on a terminal (one redrawn line), plain log lines
    every `interval` seconds otherwise, nothing with `quiet`."""

    def __init__(self, stream: Optional[TextIO] = None, quiet: bool = False, interval: float = 5.0):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else interval
        self.start = time.perf_counter()
        self.last = 0.0
        self.rows = 0
        self.total: Optional[float] = None
        self._dirty = False

    def __call__(self, record: dict) -> None:
        """One record of `build_dataset`: a stage begins, or rows were read."""
        if "rows" in record:
            self.update(record["rows"], record.get("total"))
        elif record["stage"] == "read":
            self.stage(f"reading {record['path']} ({record['format']})")
        else:
            self.stage(_STAGES.get(record["stage"], record["stage"]))

    def stage(self, text: str) -> None:
        """A new stage: a log line; the row count and rate start again."""
        self.rows, self.total = 0, None
        self.start = time.perf_counter()
        if not self.quiet:
            self._clear()
            print(f"arena-fast: {text}", file=self.stream, flush=True)

    def update(self, rows: int, total: Optional[float] = None) -> None:
        """`rows` read in this stage so far, of about `total` when known."""
        self.rows = rows
        if total is not None:
            self.total = total
        now = time.perf_counter()
        if self.quiet or now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.start
        rate = self.rows / max(elapsed, 1e-9)
        line = f"{self.rows:,} rows  {rate:,.0f} rows/s"
        if self.total and self.total > self.rows:
            line += f"  ETA {(self.total - self.rows) / max(rate, 1e-9):.0f} s"
        if self.tty:
            width = 30
            if self.total:
                done = min(1.0, self.rows / self.total)
                bar = "#" * int(done * width)
                line = f"[{bar:<{width}}] {line}"
            print("\r" + line, end="", file=self.stream, flush=True)
            self._dirty = True
        else:
            print(f"arena-fast: {line}", file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.tty and self._dirty:
            print("\r\033[K", end="", file=self.stream, flush=True)
            self._dirty = False

    def done(self) -> None:
        """Clear the redrawn line (a terminal's), so what follows starts clean."""
        self._clear()
