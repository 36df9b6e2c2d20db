"""A dataset's `dropped.parquet` read for browsing (no web code here): the
rows each reason dropped, counted once per server and listed a page at a
time (`dataset.shards.DROPPED_COLUMNS`: input, source, id, row,
input_rows, reason, detail)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError
from ..outputs import DROPPED

__all__ = ["DroppedTable"]


class DroppedTable:
    """The dropped rows of the dataset at `path`, by reason."""

    def __init__(self, path: Path, manifest: dict):
        self.file = Path(path) / (manifest.get("dropped_file") or DROPPED)
        self.inputs = [i.get("path") for i in manifest.get("inputs", [])]
        self._lock = threading.Lock()
        self._counts: Optional[list] = None

    @property
    def exists(self) -> bool:
        return self.file.is_file()

    def _read(self, columns: list, filters=None) -> pa.Table:
        try:
            return pq.read_table(self.file, columns=columns, filters=filters, memory_map=True)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{self.file}: cannot read the dropped rows: {exc}") from None

    def counts(self) -> list:
        """(reason, rows) per reason, most rows first."""
        with self._lock:
            if self._counts is None:
                if not self.exists:
                    self._counts = []
                else:
                    column = self._read(["reason"]).column("reason")
                    counted = pc.value_counts(column.combine_chunks()).to_pylist()
                    pairs = [(c["values"], int(c["counts"])) for c in counted]
                    self._counts = sorted(pairs, key=lambda x: (-x[1], str(x[0])))
            return self._counts

    def rows(self, reason: str, start: int, stop: int) -> list:
        """The rows `start:stop` that `reason` dropped, each a dict with the
        input file it came from (`input_path`)."""
        if reason not in dict(self.counts()):
            raise KeyError(reason)
        table = self._read(None, filters=[("reason", "==", reason)]).slice(start, stop - start)
        out = table.to_pylist()
        for row in out:
            i = row.get("input")
            row["input_path"] = (
                self.inputs[i] if i is not None and 0 <= i < len(self.inputs) else None
            )
        return out
