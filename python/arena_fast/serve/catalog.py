"""What a server may show: the run and dataset directories given on the
command line, each under a short name. Requests name a run or a dataset by
that name; no path from a request ever reaches the file system."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from ..errors import ConfigError
from ..outputs import MANIFEST, RUN_CONFIG

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class Entry:
    """One run or dataset: its name in URLs and its directory."""

    name: str
    path: Path


@dataclass
class Catalog:
    """The runs and datasets a server was given, by name (the folder's name,
    made URL-safe, with `-2`, `-3`... when two share one)."""

    runs: dict[str, Entry] = field(default_factory=dict)
    datasets: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def from_paths(cls, runs: list[PathLike] = (), datasets: list[PathLike] = ()) -> Catalog:
        catalog = cls()
        for path in runs:
            catalog._add(catalog.runs, Path(path), RUN_CONFIG, "run")
        for path in datasets:
            catalog._add(catalog.datasets, Path(path), MANIFEST, "dataset")
        return catalog

    @staticmethod
    def _add(table: dict[str, Entry], path: Path, marker: str, kind: str) -> None:
        if not (path / marker).is_file():
            raise ConfigError(f"{path}: not a {kind} directory (no {marker})")
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.resolve().name).strip("-.") or kind
        name, n = base, 1
        while name in table:
            n += 1
            name = f"{base}-{n}"
        table[name] = Entry(name, path.resolve())

    def run(self, name: str) -> Entry:
        """The run called `name`; `KeyError` for any other name."""
        return self.runs[name]

    def dataset(self, name: str) -> Entry:
        """The dataset called `name`; `KeyError` for any other name."""
        return self.datasets[name]
