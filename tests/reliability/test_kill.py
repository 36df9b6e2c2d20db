"""`build-dataset` killed with SIGKILL at random points: never a directory
that looks complete but is not, and a rerun gives the bytes of an
uninterrupted build (and clears what the killed builds left behind)."""

from __future__ import annotations

import os
import random
import shutil
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


def _run_and_kill(command: list, after: float) -> tuple:
    """Start `command`, SIGKILL it `after` seconds later; (True when it was
    killed, False when it finished first; its seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after)
        return False, time.perf_counter() - started
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True, after


def _kills(command: list, reference: dict, seed: int, check, wanted: int = 6):
    """Kill `command` at random points until `wanted` runs were killed
    (calling `check()` after each run). The points are drawn over the build's
    duration, re-estimated from the runs that finished first, so that a
    machine that got faster since the reference still sees its kills."""
    rng = random.Random(seed)
    duration, kills = reference["seconds"], 0
    for _ in range(5 * wanted):
        # From process start-up to the last renames: kills land in every stage.
        killed, seconds = _run_and_kill(command, rng.uniform(0.05, 0.95) * duration)
        check(killed)
        kills += killed
        if not killed:
            duration = min(duration, seconds)
        if kills >= wanted:
            break
    assert kills >= wanted


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
    out = tmp_path / "data"

    def check(killed: bool) -> None:
        state = _assert_complete_or_absent(out, reference)
        if state == "complete":
            shutil.rmtree(out)  # finished before its kill: start afresh again

    _kills(_command(reference["csv"], out), reference, 0, check)
    # A rerun from scratch gives the same bytes, and clears the leftovers.
    subprocess.run(_command(reference["csv"], out, "--overwrite"), check=True)
    assert _files(out) == reference["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_killed_overwrite_keeps_the_old_dataset(reference, tmp_path):
    out = tmp_path / "data"
    subprocess.run(_command(reference["csv"], out), check=True)

    def check(killed: bool) -> None:
        _assert_complete_or_absent(out, reference)
        if not out.exists():
            # Killed between the two renames: the old dataset waits beside it.
            old = [p for p in tmp_path.iterdir() if p.name.startswith(".data.old-")]
            assert len(old) == 1 and _files(old[0]) == reference["files"]
            os.replace(old[0], out)

    _kills(_command(reference["csv"], out, "--overwrite"), reference, 1, check)
    subprocess.run(_command(reference["csv"], out, "--overwrite"), check=True)
    assert _files(out) == reference["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
