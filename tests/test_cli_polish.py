"""Issue 15, point 6: a quiet, complete, consistent CLI."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_train_extra_brings_matplotlib():
    """`report` and `inspect --plot` work after `pip install arena-fast[train]`."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(dep.startswith("matplotlib") for dep in extras["train"])
