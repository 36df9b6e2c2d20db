"""`_core.pyi` must describe the extension that is actually installed: mypy's
stubtest compares every name, signature and class of the stub with the
runtime module (STYLE.md: the stub test keeps them honest)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_core_stub_matches_the_extension():
    try:
        import mypy.stubtest  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("needs mypy (the test extra)")
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "arena_fast._core"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
