"""Hostile tokenizer regexes (D10) and thread counts (D9).

D10: a tokenizer.json whose `Split` regex backtracks badly once made one
6 KB row take tens of seconds (`a*a*$`, cubic), or failed the whole build
with `InternalError` (`(a+)+$`). Now each text's regex searches run under a
step and CPU-time budget (docs/encoding.md, "Regex budgets"): the row gets a
`TokenizerError` naming row and column, or in a build is dropped as
`tokenize_error`; nested repeats are refused at load.

D9: `build-dataset --threads 1000000` started thousands of threads: the cap
was in `Encoder` only. Now one check (`arena_fast.encoder.check_threads`,
`MAX_THREADS`) guards every entry point, and the core refuses too.

Times are checked in a subprocess on its CPU clock, with generous bounds:
before the fix the same calls took minutes or failed."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

import arena_fast as af
from arena_fast.cli._args import thread_count
from arena_fast.encoder import MAX_THREADS
from arena_fast.rows import rows_from_arrow
from arena_fast.synth import COLUMNS

# Cubic in a run of `a`: every start position backtracks over the rest.
CUBIC = "a*a*$"
# Quadratic work per search in few backtracking steps (the engine scans
# ahead after each): caught by the CPU-time budget, not the step budget.
SCAN = "a*a*b|."
LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# The 6 KB cell: 25 s of CPU before, with the default engine limits.
BAD_TEXT = ("a" * 2000 + "b") * 3


def tokenizer_json(pattern: str) -> str:
    """The demo tokenizer with a `Split` pre-tokenizer on `pattern`."""
    config = json.loads(af.Tokenizer.demo().to_str())
    config["pre_tokenizer"] = {
        "type": "Split",
        "pattern": {"Regex": pattern},
        "behavior": "Isolated",
        "invert": False,
    }
    return json.dumps(config)


def run_python(code: str, *args: str, timeout: float = 120) -> str:
    """Run `code` in a fresh interpreter; its stdout. Past `timeout` (the
    old behaviour: minutes of regex work) the test fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# -- D10: regex budgets ---------------------------------------------------------------------------


BUILD = """
import csv, json, resource, sys
import arena_fast as af
from arena_fast.synth import COLUMNS
work = sys.argv[1]
started = resource.getrusage(resource.RUSAGE_SELF).ru_utime
manifest = af.build_dataset(
    af.BuildConfig(inputs=[work + "/train.csv"], tokenizer=work + "/tokenizer.json",
                   max_length=256, folds=2, swap=True),
    work + "/out",
)
cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - started
import polars as pl
dropped = pl.read_parquet(work + "/out/dropped.parquet")
print(json.dumps({"cpu": cpu, "rows": manifest["counts"]["rows"],
                  "dropped": manifest["counts"]["dropped"],
                  "ids": dropped["id"].to_list(), "detail": dropped["detail"].to_list()}))
"""


def write_train_csv(path: Path, bad_row: int, n: int = 4) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(n):
            answer = BAD_TEXT if i == bad_row else f"answer {i}"
            w.writerow(
                [
                    str(100 + i),
                    "model_x",
                    "model_y",
                    json.dumps([f"question {i}"]),
                    json.dumps([answer]),
                    json.dumps([f"other {i}"]),
                    1,
                    0,
                    0,
                ]
            )


def test_a_backtracking_row_is_dropped_and_the_build_goes_on(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(tokenizer_json(CUBIC), encoding="utf-8")
    write_train_csv(tmp_path / "train.csv", bad_row=2)
    out = json.loads(run_python(BUILD, str(tmp_path)))
    assert out["rows"] == 3
    assert out["dropped"] == {"tokenize_error": 1}
    assert out["ids"] == ["102"]
    assert out["detail"][0].startswith("column response_a: ")
    assert "backtrack" in out["detail"][0]
    assert out["cpu"] < 30, out  # before: 26 s for one such row, or InternalError


ENCODE = """
import json, resource, sys
import arena_fast as af
tok = af.Tokenizer.from_file(sys.argv[1])
enc = af.Encoder(tok, max_length=256)
rows = [["q0"], ["q1"], ["q2"]], [["a0"], ["a1"], ["a2"]], [["b0"], [sys.argv[2]], ["b2"]]
started = resource.getrusage(resource.RUSAGE_SELF).ru_utime
try:
    enc.encode(*rows)
    print(json.dumps({"raised": None}))
except af.ArenaFastError as exc:
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - started
    print(json.dumps({"raised": type(exc).__name__, "message": str(exc), "cpu": cpu}))
"""


@pytest.mark.parametrize(
    "pattern, text",
    [(CUBIC, BAD_TEXT), (SCAN, "a" * 6000 + "c")],
    ids=["steps", "cpu-time"],
)
def test_the_encode_api_names_the_row_and_column_in_bounded_time(
    tmp_path: Path, pattern: str, text: str
) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(tokenizer_json(pattern), encoding="utf-8")
    out = json.loads(run_python(ENCODE, str(path), text, timeout=90))
    assert out["raised"] == "TokenizerError", out
    assert out["message"].startswith("row 1, column response_b: "), out
    assert "backtrack" in out["message"] or "CPU time" in out["message"], out
    assert out["cpu"] < 20, out  # before: minutes (SCAN: ~2 min for these 6 KB)


def test_every_encode_entry_point_names_the_row() -> None:
    tok = af.Tokenizer.from_str(tokenizer_json(CUBIC))
    enc = af.Encoder(tok, max_length=256)
    cells = (
        [json.dumps(["q"])] * 2,
        [json.dumps(["a"])] * 2,
        [json.dumps(["b"]), json.dumps([BAD_TEXT])],
    )
    with pytest.raises(af.TokenizerError, match=r"^row 1, column response_b: "):
        enc.encode_json(*cells)
    rows = rows_from_arrow(*[pa.array(c) for c in cells])
    # encode_rows names the row of `rows`, not the position in idx.
    with pytest.raises(af.TokenizerError, match=r"^row 1, column response_b: "):
        enc.encode_rows(rows, [0, 1])
    with pytest.raises(af.TokenizerError, match=r"^row 1, column response_b: "):
        enc.encode_rows(rows, [1], swap="both")
    encoded, skipped = enc.encode_rows_skipping(rows, [1, 0, 1], swap="both")
    assert [(i, column) for i, column, _ in skipped] == [(0, "response_b"), (2, "response_b")]
    assert len(encoded) == 2 and list(encoded.source_row) == [1, 1]
    assert list(encoded.input_ids) == list(enc.encode_rows(rows, [0], swap="both").input_ids)
    # The joint layout tokenizes prefix + text together: still the text's column.
    joint = af.Encoder(tok, max_length=256, tokenize="joint")
    with pytest.raises(af.TokenizerError, match=r"^row 1, column response_b: "):
        joint.encode_rows(rows, swap="both")


def test_a_nested_repeat_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(af.TokenizerError, match=r"pre_tokenizer regex \"\(a\+\)\+\$\""):
        af.Tokenizer.from_str(tokenizer_json("(a+)+$"))
    path = tmp_path / "tokenizer.json"
    path.write_text(tokenizer_json(r"x|(?:\w+\s?)*y"), encoding="utf-8")
    with pytest.raises(af.TokenizerError, match=str(path)):
        af.Tokenizer.from_file(path)


def test_long_legitimate_searches_stay_within_budget() -> None:
    """A run of spaces costs Llama 3's pattern about 2 steps per space in one
    search: past the first try's allowance, well within the text's budget,
    with the ids of Hugging Face's tokenizer."""
    hf = pytest.importorskip("tokenizers")
    json_text = tokenizer_json(LLAMA3)
    ours, theirs = af.Tokenizer.from_str(json_text), hf.Tokenizer.from_str(json_text)
    for text in (" " * 300_000 + "x", "\n \n" * 50_000, "don't 12345 " * 5_000):
        assert ours.encode(text) == theirs.encode(text, add_special_tokens=False).ids


# -- D9: one thread cap ----------------------------------------------------------------------------

ENTRY_POINTS = """
import numpy as np, pyarrow as pa
import arena_fast as af
from arena_fast import _core
from arena_fast.rows import rows_from_arrow, text_array
big = 10**6
col = pa.array(['["x"]'] * 600)
tok = af.Tokenizer.demo()
t = af.Template.preset("rounds")
core_encoder = dict(strategy="fair", max_length=64, joint=False, bos=None, eos=None,
    split_special_tokens=True, null_text="", prompt_weight=0.5, min_segment_tokens=8,
    keep="head", keep_first_turns=0, tail_ratios=[0.2, 0.4, 0.4], min_tail_tokens=8)
calls = {
    "Encoder": lambda: af.Encoder(tok, num_threads=big),
    "Encoder.0": lambda: af.Encoder(tok, num_threads=0),
    "rows_from_arrow": lambda: rows_from_arrow(col, col, col, num_threads=big),
    "BuildConfig": lambda: af.build_dataset(af.BuildConfig(demo_rows=10, threads=big), "unused"),
    "_core.Rows.from_arrow": lambda: _core.Rows.from_arrow(
        *[text_array(col)] * 3, num_threads=big),
    "_core.Rows.features": lambda: rows_from_arrow(col, col, col).features(big),
    "_core.Encoder": lambda: _core.Encoder(tok._core, t, num_threads=big, **core_encoder),
}
for name, call in calls.items():
    try:
        call()
        print(name, "returned")
    except af.ArenaFastError as exc:
        print(name, type(exc).__name__, "|", exc)
"""


def test_every_entry_point_refuses_a_thread_count_past_the_cap(tmp_path: Path) -> None:
    out = run_python(ENTRY_POINTS, timeout=60)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert len(lines) == 7, out
    for name, result in lines.items():
        assert result.startswith("ConfigError | "), (name, result)
        assert str(MAX_THREADS) in result, (name, result)
    assert "threads must" in lines["BuildConfig"]


@pytest.mark.parametrize(
    "argv",
    [
        ["build-dataset", "--threads", "1000000", "--quiet"],
        ["demo", "--encode-only", "--rows", "5", "--threads", "1000000"],
    ],
    ids=["build-dataset", "demo"],
)
def test_the_cli_refuses_a_thread_count_past_the_cap(tmp_path: Path, argv: list) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "arena_fast", *argv, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done  # a usage error, before anything runs
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "thread" in last and str(MAX_THREADS) in last, done.stderr
    assert not (tmp_path / "out").exists()


def test_the_cli_thread_count_type() -> None:
    import argparse

    assert thread_count("8") == 8
    for text in ("0", "1025", "10**6", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            thread_count(text)
