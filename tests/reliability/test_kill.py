"""`build-dataset` killed with SIGKILL at random points: never a directory
that looks complete but is not, and a rerun gives the bytes of an
uninterrupted build (and clears what the killed builds left behind)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import arena_fast as af
from arena_fast.synth import write_csv

# build.json holds timings: the one file of a dataset that differs by run.
UNSTABLE = {"build.json"}


def _files(directory: Path) -> dict:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name not in UNSTABLE
    }


def _command(csv: Path, out: Path, *extra: str) -> list:
    return [sys.executable, "-m", "arena_fast", "build-dataset", "--input", str(csv)] + [
        "--out",
        str(out),
        "--swap",
        "--quiet",
        "--max-length",
        "512",
        *extra,
    ]


def _run_and_kill(command: list, after: float) -> bool:
    """Start `command`, SIGKILL it `after` seconds later; True when it was
    killed (False: it finished first)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    csv = root / "train.csv"
    write_csv(csv, 6000, seed=3)
    out = root / "reference"
    started = time.perf_counter()
    subprocess.run(_command(csv, out), check=True)
    return {"csv": csv, "files": _files(out), "seconds": time.perf_counter() - started}


def _assert_complete_or_absent(out: Path, reference: dict) -> str:
    if not out.exists():
        return "absent"
    assert _files(out) == reference["files"], "a directory that is not the finished dataset"
    af.load_dataset(out, verify=True)  # and it loads, every shard matching its hash
    return "complete"


def test_killed_builds_leave_nothing_that_looks_complete(reference, tmp_path):
    rng = random.Random(0)
    out = tmp_path / "data"
    kills = 0
    for _ in range(8):
        # From process start-up to the last renames: kills land in every stage.
        after = rng.uniform(0.05, 1.1) * reference["seconds"]
        kills += _run_and_kill(_command(reference["csv"], out), after)
        _assert_complete_or_absent(out, reference)
        if out.exists():
            break  # a build finished before its kill: the next stage of the test
    assert kills >= 4
    # A rerun from scratch gives the same bytes, and clears the leftovers.
    subprocess.run(_command(reference["csv"], out, "--overwrite"), check=True)
    assert _files(out) == reference["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_killed_overwrite_keeps_the_old_dataset(reference, tmp_path):
    rng = random.Random(1)
    out = tmp_path / "data"
    subprocess.run(_command(reference["csv"], out), check=True)
    outcomes = set()
    for _ in range(6):
        after = rng.uniform(0.05, 1.1) * reference["seconds"]
        _run_and_kill(_command(reference["csv"], out, "--overwrite"), after)
        outcomes.add(_assert_complete_or_absent(out, reference))
        if not out.exists():
            # Killed between the two renames: the old dataset waits beside it.
            old = [p for p in tmp_path.iterdir() if p.name.startswith(".data.old-")]
            assert len(old) == 1 and _files(old[0]) == reference["files"]
            os.replace(old[0], out)
    subprocess.run(_command(reference["csv"], out, "--overwrite"), check=True)
    assert _files(out) == reference["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
