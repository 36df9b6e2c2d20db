"""Outputs: "replace only what we made" (D1) and "one writer per output"
(D2), with the rough edges of the same writer (`arena_fast.files`): an
--overwrite never deletes an input or a user's directory, a second writer of
one output fails at once, leftovers of killed processes go, outputs honour
the umask, an interrupted build leaves nothing, and a metrics.jsonl with
a malformed record still gives a report."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import arena_fast as af
from arena_fast.cli import main
from arena_fast.dataset import BuildConfig, build_dataset, load_dataset
from arena_fast.files import replacing
from arena_fast.report import write_report
from arena_fast.synth import write_csv


def _snapshot(directory: Path) -> dict:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _fails(capsys, argv: list, *messages: str) -> str:
    """`arena-fast ARGV` exits 1 with one error line holding `messages`."""
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ": error: " in err, err
    for message in messages:
        assert message in err, err
    return err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_run(directory: Path) -> Path:
    """A training run's directory as `arena-fast report` reads it (the
    settings and metrics of `train`, no weights)."""
    directory.mkdir(parents=True)
    config = {"data": "ds", "model": "tiny-gemma2", "out": str(directory), "fold": 0}
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 1.1 - s / 10, "seconds": s}) + "\n" for s in (1, 2))
    )
    return directory


# -- D1: replace only what we made ------------------------------------------------


def test_build_overwrite_never_deletes_the_directory_of_its_input(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    write_csv(d / "train.csv", 60, seed=1)
    (d / "notes.txt").write_text("mine")
    before = _snapshot(d)
    argv = ["build-dataset", "--input", str(d / "train.csv"), "--quiet"]
    _fails(capsys, [*argv, "--out", str(d), "--overwrite"], f"{d}: holds {d / 'train.csv'}")
    with pytest.raises(af.ConfigError, match="one of the inputs being read"):
        build_dataset(BuildConfig(inputs=[str(d / "train.csv")]), d, overwrite=True)
    with pytest.raises(af.ConfigError, match="one of the inputs being read"):
        build_dataset(BuildConfig(inputs=[str(d / "train.csv")]), d / "train.csv", overwrite=True)
    assert _snapshot(d) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no work directory, no lock

    # A directory that is not a dataset, not even holding an input: refused too.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    _fails(capsys, [*argv, "--out", str(mine), "--overwrite"], "not an arena-fast dataset")
    assert (mine / "notes.txt").read_text() == "mine"
    # An earlier dataset is replaced, and only while it holds nothing of the user's.
    out = tmp_path / "data"
    assert main([*argv, "--out", str(out)]) == 0
    assert main([*argv, "--out", str(out), "--overwrite"]) == 0
    (out / "notes.txt").write_text("mine")
    _fails(capsys, [*argv, "--out", str(out), "--overwrite"], "holds 'notes.txt'")
    assert (out / "notes.txt").read_text() == "mine"


def test_a_run_or_a_report_is_not_replaced_by_a_dataset(tmp_path, capsys):
    run = _fake_run(tmp_path / "run")
    before = _snapshot(run)
    _fails(
        capsys,
        ["build-dataset", "--demo-rows", "20", "--quiet", "--out", str(run), "--overwrite"],
        "not an arena-fast dataset",
    )
    assert _snapshot(run) == before


@pytest.mark.parametrize("where", ["root", "home", "cwd"])
def test_out_never_the_root_home_or_working_directory(where, tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home / "work")
    out = {"root": "/", "home": str(home), "cwd": "."}[where]
    reason = {"root": "is the root", "home": "is the home directory", "cwd": "is the working"}
    _fails(
        capsys,
        ["build-dataset", "--demo-rows", "20", "--quiet", "--out", out, "--overwrite"],
        reason[where],
    )
    with pytest.raises(af.ConfigError, match=reason[where]):
        build_dataset(BuildConfig(demo_rows=20), out, overwrite=True)
    assert sorted(p.name for p in home.iterdir()) == ["work"]
    assert list((home / "work").iterdir()) == []


def test_report_out_never_a_run_it_reads(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    runs = [_fake_run(tmp_path / "model" / f"fold{i}") for i in (0, 1)]
    before = {r: _snapshot(r) for r in runs}
    argv = ["report", str(runs[0]), str(runs[1])]
    _fails(capsys, [*argv, "--out", str(runs[0])], "is one of the inputs being read")
    _fails(capsys, [*argv, "--out", str(tmp_path / "model")], "holds")
    assert {r: _snapshot(r) for r in runs} == before
    # The report's own place (model/report) is written, and written again
    # with --overwrite (without it, the earlier report is kept).
    assert main(argv) == 0
    _fails(capsys, argv, "already exists; pass --overwrite")
    assert main([*argv, "--overwrite"]) == 0
    assert (tmp_path / "model" / "report" / "index.html").is_file()


# -- the merge (real tiny runs) ---------------------------------------------------


@pytest.fixture(scope="module")
def fold_runs(tmp_path_factory):
    from strategies import train_extra

    torch = train_extra("torch")
    train_extra("transformers")
    train_extra("peft")
    from arena_fast.train import TrainConfig, train
    from keyword_rows import keyword_rows

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("outputs-merge")
    keyword_rows(60, 0, answer_words=(3, 6), prompt_words=3).write_parquet(root / "rows.parquet")
    build_dataset(
        BuildConfig(inputs=[f"{root / 'rows.parquet'}:canonical"], max_length=96, folds=2),
        root / "ds",
    )
    runs = root / "runs"
    for fold in (0, 1):
        config = dict(fold=fold, model="tiny-gemma2", lora_r=2, max_tokens=512, max_steps=1)
        train(TrainConfig(data=str(root / "ds"), out=str(runs / f"run-f{fold}"), **config))
    return runs


@pytest.mark.slow
def test_merge_overwrite_never_deletes_the_runs(fold_runs, tmp_path, capsys):
    from arena_fast.merge import merge_runs

    runs = [fold_runs / "run-f0", fold_runs / "run-f1"]
    before = _snapshot(fold_runs)
    argv = ["merge-adapters", *map(str, runs)]
    _fails(capsys, [*argv, "--out", str(fold_runs), "--overwrite"], "one of the runs being read")
    with pytest.raises(af.ConfigError, match="one of the runs being read"):
        merge_runs(runs, fold_runs, overwrite=True)
    with pytest.raises(af.ConfigError, match="one of the runs being read"):
        merge_runs(runs, runs[1], overwrite=True)
    # A run is not a merge: --overwrite does not replace it either.
    other = tmp_path / "other"
    assert main(["merge-adapters", str(runs[0]), "--out", str(other)]) == 0
    capsys.readouterr()
    (other / "merged.json").unlink()  # now an ordinary run's files ...
    bundle = json.loads((other / "bundle.json").read_text())
    del bundle["files"]["merged.json"]  # ... and bundle
    (other / "bundle.json").write_text(json.dumps(bundle))
    _fails(capsys, [*argv, "--out", str(other), "--overwrite"], "not an arena-fast merged run")
    assert _snapshot(fold_runs) == before
    # An earlier merge is replaced.
    merged = tmp_path / "merged"
    assert main([*argv, "--out", str(merged)]) == 0
    assert main([*argv, "--out", str(merged), "--overwrite", "--weights", "1", "3"]) == 0
    assert json.loads((merged / "merged.json").read_text())["sources"][1]["weight"] == 0.75
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "other"]


# -- D2: one writer per output ----------------------------------------------------

# A build that waits, holding its lock, for `go` before writing its manifest.
_WAITING_BUILD = """
import sys, time, pathlib
import arena_fast.dataset.build as build
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
real = build.make_manifest
def waiting(*args, **kwargs):
    ready.touch()
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return real(*args, **kwargs)
build.make_manifest = waiting
from arena_fast.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _start_waiting_build(tmp_path: Path, out: Path) -> tuple:
    ready, go = tmp_path / "ready", tmp_path / "go"
    build = ["build-dataset", "--demo-rows", "100", "--quiet", "--out", str(out)]
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WAITING_BUILD, str(ready), str(go), *build], stderr=err
        )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, (tmp_path / "stderr").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, go


def test_a_second_build_to_one_out_fails_at_once(tmp_path, capsys):
    out = tmp_path / "out" / "data"
    proc, go = _start_waiting_build(tmp_path, out)
    try:
        for extra in ([], ["--overwrite"]):
            _fails(
                capsys,
                ["build-dataset", "--demo-rows", "50", "--quiet", "--out", str(out), *extra],
                f"another arena-fast process is writing {out} (pid {proc.pid})",
            )
        with pytest.raises(af.ConfigError, match="another arena-fast process"):
            build_dataset(BuildConfig(demo_rows=50), out, overwrite=True)
    finally:
        go.touch()
        assert proc.wait(timeout=120) == 0, (tmp_path / "stderr").read_text()
    # The first build finished: its dataset, complete, and nothing else.
    assert load_dataset(out, verify=True).manifest["counts"]["rows_in"] == 100
    assert sorted(p.name for p in out.parent.iterdir()) == ["data"]


def test_the_lock_excludes_a_second_writer_in_the_same_process(tmp_path):
    from arena_fast.files import output_lock

    out = tmp_path / "report"
    with output_lock(out):
        assert (tmp_path / ".report.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(af.ConfigError, match=f"writing {out} \\(pid {os.getpid()}\\)"):
            with output_lock(out):
                pass
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the lock
    with output_lock(out):  # and can be taken again
        pass


# -- interruptions and leftovers --------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_build_leaves_nothing(sig, tmp_path):
    out = tmp_path / "out" / "data"
    proc, go = _start_waiting_build(tmp_path, out)
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".data.building-")]
    proc.send_signal(sig)
    assert proc.wait(timeout=60) != 0
    assert "Traceback" not in (tmp_path / "stderr").read_text()
    assert list(out.parent.iterdir()) == []  # no work directory, no lock, no dataset


def test_an_exception_inside_publishing_removes_the_work(tmp_path):
    from arena_fast.files import publishing

    out = tmp_path / "data"
    build_dataset(BuildConfig(demo_rows=30), out)
    before = _snapshot(out)
    with pytest.raises(KeyboardInterrupt):
        with publishing(out, "dataset", overwrite=True) as work:
            (work / "manifest.json").write_text("{}")
            raise KeyboardInterrupt
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_leftovers_of_dead_processes_are_cleaned(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    out = tmp_path / "data"
    build_dataset(BuildConfig(demo_rows=30), out)
    for name in (f".data.building-{dead}-1a2b", f".data.old-{dead}", f".data.building-{alive}-9"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part").write_text("x")
    (tmp_path / f".sub.csv.tmp-{dead}-77").write_text("x")  # of files.replacing
    (tmp_path / f".sub.csv.tmp-{alive}-78").write_text("x")
    build_dataset(BuildConfig(demo_rows=30), out, overwrite=True)
    with replacing(tmp_path / "sub.csv") as tmp:
        tmp.write_text("id\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["data", "sub.csv", f".data.building-{alive}-9", f".sub.csv.tmp-{alive}-78"]
    )
    # A report's: its old copy and work directory of a killed `arena-fast report`.
    pytest.importorskip("matplotlib")
    run = _fake_run(tmp_path / "run")
    write_report([run])
    for name in (f".report.old-{dead}", f".report.building-{dead}-3c"):
        (run / name).mkdir()
    write_report([run], overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.jsonl", "report"]


def test_an_old_output_whose_replacement_never_came_is_put_back(tmp_path):
    """A kill between the two renames of a publish leaves the old dataset
    aside and no `out`: the next build puts it back before it checks."""
    out = tmp_path / "data"
    build_dataset(BuildConfig(demo_rows=30), out)
    before = _snapshot(out)
    out.rename(tmp_path / f".data.old-{_dead_pid()}")
    with pytest.raises(af.ConfigError, match="already exists"):
        build_dataset(BuildConfig(demo_rows=30), out)
    assert _snapshot(out) == before


def test_outputs_honour_the_umask(tmp_path):
    pytest.importorskip("matplotlib")
    old = os.umask(0o022)
    try:
        out = tmp_path / "data"
        build_dataset(BuildConfig(demo_rows=30), out)
        with replacing(tmp_path / "sub.csv") as tmp:
            tmp.write_text("id\n")
        report = write_report([_fake_run(tmp_path / "run")]).parent
        made = [out, *out.iterdir(), tmp_path / "sub.csv", report, *report.iterdir()]
    finally:
        os.umask(old)
    for path in made:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), f"{path}: {oct(mode)}"


# -- report: malformed metrics records ----------------------------------------------


def test_report_skips_metrics_records_that_are_not_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    run = _fake_run(tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": [3], "loss": 0.5}) + "\n")
        f.write(json.dumps({"step": 4, "loss": "low"}) + "\n")
        f.write(json.dumps({"eval": True, "epoch": {"a": 1}, "log_loss": 1.0}) + "\n")
        f.write(json.dumps({"step": 5, "loss": 10**400}) + "\n")
        f.write(json.dumps({"step": 6, "loss": 0.4}) + "\n")
    page = write_report([run]).read_text(encoding="utf-8")
    assert "metrics.jsonl: 4 unreadable record(s) skipped (line 3: step is list, not a number)" in (
        page
    )
