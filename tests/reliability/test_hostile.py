"""The hostile-input corpus (cases.py): every case gives its expected
outcome, a clear `ArenaFastError` (file, row, column) or a counted repair /
drop, in bounded time and memory, and no build ever loses a row.

Cases run in a worker process (hostile_worker.py), big ones in a fresh
process each: a crash (a segfault, an abort, the OOM killer) is a failure
that names the case, not the end of pytest. The parent watches the worker's
resident memory and kills it past the case's bound.

    cd tests && python -m pytest -q reliability/test_hostile.py
    ARENA_FAST_HOSTILE_SUMMARY=summary.json ...   # also write the tally (cases, crashes, rows lost)
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

try:  # tests/reliability as a package, or (today) a directory on sys.path
    from . import cases as corpus
except ImportError:
    import cases as corpus

WORKER = Path(__file__).resolve().parent / "hostile_worker.py"
RESULT, BASE = b"@@RESULT@@ ", b"@@BASE@@ "
# Seconds a worker may take beyond a case's bound (start, imports, making the input).
SLACK = 60.0
# What the run saw, for benches/RESULTS.md (ARENA_FAST_HOSTILE_SUMMARY=path writes it).
TALLY: dict[str, Any] = {
    "cases": 0,
    "crashes": 0,
    "killed_past_memory_bound": 0,
    "timeouts": 0,
    "builds": 0,
    "rows_in": 0,
    "rows_lost": 0,
    "failed": [],
}


class CaseSetupError(RuntimeError):
    """The harness failed (not the case's outcome): never an expected failure."""


# -- the worker process ------------------------------------------------------------------
def _rss_mb(pid: int) -> Optional[float]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


class Worker:
    """A `hostile_worker.py` process fed one case at a time, restarted after
    a crash; `fresh` cases get a process of their own."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def _spawn(self, args: list[str]) -> tuple[subprocess.Popen, Path]:
        self.starts += 1
        log = self.log_dir / f"worker-{self.starts}.stderr"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-X", "faulthandler", str(WORKER), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env={**os.environ, "RUST_BACKTRACE": "0", "PYTHONUNBUFFERED": "1"},
            )
        return proc, log

    def run(self, case: corpus.Case, directory: Path) -> dict:
        if case.fresh:
            proc, log = self._spawn([case.name, str(directory)])
            try:
                return self._await(proc, log, case)
            finally:
                self._stop(proc)
        if self.proc is None or self.proc.poll() is not None:
            self.proc, self.log = self._spawn([])
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"case": case.name, "dir": str(directory)}).encode())
            self.proc.stdin.write(b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        result = self._await(self.proc, self.log, case)
        if result["outcome"] in ("crash", "timeout", "memory"):
            self._stop(self.proc)
            self.proc = None
        return result

    def _await(self, proc: subprocess.Popen, log: Path, case: corpus.Case) -> dict:
        """The case's result line; or a crash, a timeout or a memory kill."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + case.max_seconds + SLACK
        base: Optional[float] = None
        peak = 0.0
        buffer = b""
        offset = log.stat().st_size if log.exists() else 0
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    proc.wait()
                    return self._failure("crash", proc, log, offset, peak=peak)
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.startswith(BASE):
                        value = line[len(BASE) :].decode()
                        base = None if value == "None" else float(value)
                    elif line.startswith(RESULT):
                        result = json.loads(line[len(RESULT) :])
                        result["watched_peak_mb"] = peak
                        result["worker_stderr"] = _tail(log, offset)
                        return result
            rss = _rss_mb(proc.pid) or 0.0
            peak = max(peak, rss)
            if base is not None and rss > base + case.max_rss_mb:
                self._stop(proc)
                return self._failure("memory", proc, log, offset, peak=peak, base=base)
            if time.monotonic() > deadline:
                self._stop(proc)
                return self._failure("timeout", proc, log, offset, peak=peak)

    def _failure(self, kind: str, proc, log: Path, offset: int, **extra) -> dict:
        return {
            "outcome": kind,
            "returncode": proc.returncode,
            "worker_stderr": _tail(log, offset),
            **extra,
        }

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.close()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            self._stop(self.proc)
            self.proc = None


def _tail(log: Path, offset: int, limit: int = 3000) -> str:
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return text[-limit:]


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("hostile-logs"))
    yield w
    w.close()
    summary = os.environ.get("ARENA_FAST_HOSTILE_SUMMARY")
    if summary:
        Path(summary).write_text(json.dumps(TALLY, indent=2) + "\n", encoding="utf-8")


# -- checks ----------------------------------------------------------------------------------
def _describe(obs: dict) -> str:
    if obs["outcome"] == "error":
        return f"{obs['module']}.{obs['type']}: {obs['message']}\n{obs.get('traceback', '')}"
    if obs["outcome"] in ("crash", "timeout", "memory"):
        return json.dumps(obs, indent=1)[-4000:]
    return json.dumps({k: v for k, v in obs.items() if k not in ("rows", "loaded_ids")})[:3000]


def _fill(text: str, obs: dict) -> str:
    files = obs.get("inputs", {}).get("files") or [""]
    return text.replace("{file}", files[0])


def check_rejected(case: corpus.Case, expect: corpus.Rejected, obs: dict) -> None:
    if case.entry == corpus.CLI:
        assert obs["outcome"] == "exit", f"{case.name}: {_describe(obs)}"
        message = obs["stderr"]
        assert obs["rc"] == 1, f"{case.name}: exit {obs['rc']}, stderr {message!r}"
        assert message.startswith("arena-fast build-dataset: error: "), message
        assert message.count("\n") == 1 and "Traceback" not in message, message
    else:
        assert obs["outcome"] == "error", f"{case.name}: expected {expect.error}: {_describe(obs)}"
        message = obs["message"]
        assert obs["arena"], f"{case.name}: not an ArenaFastError: {_describe(obs)}"
        assert obs["type"] == expect.error, f"{case.name}: {_describe(obs)}"
        assert "\n" not in message.strip(), f"{case.name}: a message of several lines: {message}"
    for words in expect.contains:
        assert _fill(words, obs) in message, f"{case.name}: {words!r} not in {message!r}"


def _accounted(case: corpus.Case, obs: dict) -> None:
    """The invariant of every successful build: each input record is kept
    or dropped exactly once, with its id, and the manifest adds up."""
    counts = obs["manifest"]["counts"]
    per_file = obs["inputs"]["rows"]
    expected = [(i, r) for i, n in enumerate(per_file) for r in range(n)]
    seen = sorted((r["input"], r["row"]) for r in obs["rows"] + obs["dropped"])
    lost = len(set(expected) - set(seen)) + (len(seen) - len(set(seen)))
    TALLY["builds"] += 1
    TALLY["rows_in"] += len(expected)
    TALLY["rows_lost"] += lost
    assert seen == expected, f"{case.name}: rows kept + dropped differ from the input rows"
    ids = obs["inputs"]["ids"]
    for r in obs["rows"] + obs["dropped"]:
        assert r["id"] == ids[r["input"]][r["row"]], f"{case.name}: row {r['row']} id {r['id']!r}"
    assert counts["rows_in"] == len(expected), counts
    assert counts["input_rows_kept"] + counts["input_rows_dropped"] == counts["rows_in"], counts
    assert sum(counts["dropped"].values()) == counts["input_rows_dropped"], counts
    assert counts["rows"] == len(obs["rows"]) == obs["loaded_rows"], counts
    assert sorted(obs["loaded_ids"]) == sorted(r["id"] for r in obs["rows"])
    for inp in obs["manifest"]["inputs"]:
        assert inp["rows_in"] == inp["rows_kept"] + inp["rows_dropped"], inp
    assert sum(s["rows"] for s in obs["manifest"]["shards"]) == counts["rows"]


def check_built(case: corpus.Case, expect: corpus.Built, obs: dict) -> None:
    if case.entry == corpus.CLI:
        assert obs["outcome"] == "exit", f"{case.name}: {_describe(obs)}"
        assert obs["rc"] == 0, f"{case.name}: exit {obs['rc']}: {obs['stderr']}"
    else:
        assert obs["outcome"] == "ok", f"{case.name}: {_describe(obs)}"
    _accounted(case, obs)
    dropped = {r["row"]: r["reason"] for r in obs["dropped"]}
    assert dropped == expect.dropped, f"{case.name}: dropped {obs['dropped']}"
    details = {r["row"]: r["detail"] or "" for r in obs["dropped"]}
    for row, words in expect.details.items():
        for w in words:
            assert w in details[row], f"{case.name}: {w!r} not in the detail {details[row]!r}"
    repairs = {r["row"]: r["repairs"] for r in obs["rows"] if r["repairs"]}
    assert repairs == {k: v for k, v in expect.repairs.items() if v}, f"{case.name}: repairs"
    flags = {r["row"]: r["flags"] for r in obs["rows"] if r["flags"]}
    assert flags == {k: v for k, v in expect.flags.items() if v}, f"{case.name}: flags"
    counts = obs["manifest"]["counts"]
    for name, value in expect.expected_counts().items():
        assert counts[name] == value, f"{case.name}: counts.{name} = {counts[name]}, not {value}"
    if expect.check is not None:
        expect.check(obs)


def check_encodes(case: corpus.Case, expect: corpus.Encodes, obs: dict) -> None:
    assert obs["outcome"] == "ok", f"{case.name}: {_describe(obs)}"
    assert not obs["problems"], obs["problems"]
    rows = obs["rows"]
    assert tuple(r["repairs"] for r in rows) == expect.repairs, f"{case.name}: {rows}"
    if expect.turns_total is not None:
        assert tuple(r["turns_total"] for r in rows) == expect.turns_total, rows
    assert all(r["length"] <= obs["max_length"] for r in rows), rows
    if expect.check is not None:
        expect.check(obs)


def check_loads(case: corpus.Case, expect: corpus.Loads, obs: dict) -> None:
    assert obs["outcome"] == "ok", f"{case.name}: {_describe(obs)}"
    if expect.check is not None:
        expect.check(obs)


CHECKS = {
    corpus.Rejected: check_rejected,
    corpus.Built: check_built,
    corpus.Encodes: check_encodes,
    corpus.Loads: check_loads,
}


# -- the test ------------------------------------------------------------------------------
def _param(case: corpus.Case):
    marks = []
    if case.xfail:
        marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.xfail))
    return pytest.param(case, id=case.name, marks=marks)


def _require(needs: tuple[str, ...]) -> None:
    for name in needs:
        path = corpus.SHARED_DIR / "tokenizers" / name / "tokenizer.json"
        if not path.is_file():
            reason = f"{path} is missing: this case needs the shared tokenizers"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason} (CI=true: the CI machine always has it)", pytrace=False)
            pytest.skip(reason)


@pytest.mark.parametrize("case", [_param(c) for c in corpus.CASES])
def test_hostile_input(case: corpus.Case, worker: Worker, tmp_path: Path) -> None:
    _require(case.needs)
    TALLY["cases"] += 1
    obs = worker.run(case, tmp_path)
    if obs["outcome"] == "setup_error":
        raise CaseSetupError(f"{case.name}: making the input failed:\n{obs['traceback']}")
    if obs["outcome"] in ("crash", "timeout", "memory"):
        key = {"crash": "crashes", "timeout": "timeouts", "memory": "killed_past_memory_bound"}
        TALLY[key[obs["outcome"]]] += 1
        TALLY["failed"].append(case.name)
        raise AssertionError(f"{case.name}: the process did not survive: {_describe(obs)}")
    try:
        assert obs["seconds"] < case.max_seconds, f"{case.name}: {obs['seconds']:.1f} s"
        if obs.get("peak_reset") and obs.get("rss_base_mb") is not None:
            growth = obs["rss_peak_mb"] - obs["rss_base_mb"]
            assert growth < case.max_rss_mb, f"{case.name}: {growth:.0f} MB more resident memory"
        CHECKS[type(case.expect)](case, case.expect, obs)
    except AssertionError:
        TALLY["failed"].append(case.name)
        raise


def test_the_corpus_covers_the_issue() -> None:
    """Every kind of hostile input the issue lists has cases."""
    topics = {c.topic for c in corpus.CASES}
    assert topics >= {
        "malformed JSON",
        "null / numbers / objects / nested lists in turns",
        "lone / reversed surrogates",
        "NUL bytes",
        "invalid UTF-8",
        "BOMs",
        "100 MB answer",
        "100,000 turns",
        "0 turns",
        "ragged turn lists",
        "labels",
        "missing / extra columns",
        "duplicate ids",
        "special tokens / chat markup",
        "empty file",
        "truncated parquet",
        "tokenizer.json that is not one",
    }
    for entry in corpus.ENTRIES:
        assert any(c.entry == entry for c in corpus.CASES), entry
