"""What the CLI prints and writes is data-safe (issue 13: D14, D5, signals).

- D14: ids, model names, turns and error messages reach the terminal with
  their control characters and bidi overrides escaped, never raw.
- D5: the submission CSV round-trips every id exactly (commas, quotes,
  newlines, CR, formula-looking ids, the empty string) through csv, polars
  and pandas, with the probabilities in repr.
- Signals: SIGINT / SIGTERM end `arena-fast` with one line and 130 / 143,
  after the build's cleanup ran (no `.OUT.building-*` left)."""

from __future__ import annotations

import csv
import io
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import arena_fast as af
from arena_fast.cli import EXIT_BUG, EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, main
from arena_fast.cli._terminal import printable
from arena_fast.dataset import BuildConfig, build_dataset
from arena_fast.predict import write_submission

# An OSC window title, an OSC 8 hyperlink, clear-screen, a C1 CSI, a bidi
# override and isolate, DEL.
EVIL = (
    "\x1b]0;pwned\x07\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\"
    "\x1b[2J\x9b31m\u202eevil\u2066\x7f"
)
# What a terminal obeys: C0 but newline and tab, DEL, C1, bidi controls.
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


SHOWN = r"\x1b]0;pwned\x07\x1b]8;;http://evil.example/\x1b\link\x1b]8;;\x1b\\x1b[2J\x9b31m\u202eevil\u2066\x7f"


# -- D14: the terminal ----------------------------------------------------------
def test_printable_escapes_every_control_and_keeps_the_rest():
    controls = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]
    bidi = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
    for char in controls + bidi + ["\ud800", "\udfff"]:
        shown = printable(f"a{char}b")
        assert shown.startswith("a\\") and shown.endswith("b") and shown.isprintable(), shown
    assert printable("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert printable("a\nb\tc\r", layout=True) == "a\nb\tc\\r"
    assert printable("\x1b[2J") == "\\x1b[2J" and printable("\x9b") == "\\x9b"
    assert printable("\u202e") == "\\u202e"
    # Ordinary text, accents, CJK, emoji, zero-width joiners and backslashes stay.
    plain = "héllo 世界 👩‍💻 «a\\nb»"
    assert printable(plain) == plain


def _hostile_dataset(root: Path, tokenizer=None) -> Path:
    rows = pl.DataFrame(
        [
            {
                "id": f"id-{EVIL}-{i}",
                "model_a": f"ma{EVIL}",
                "model_b": f"mb\n{EVIL}",
                "prompt": [f"line one\nline two\twith tab {EVIL} end {i}"],
                "response_a": [f"answer a {EVIL}"],
                "response_b": ["answer b"],
                "labels": [1.0, 0.0, 0.0],
            }
            for i in range(2)
        ]
    )
    rows.write_parquet(root / "rows.parquet")
    config = BuildConfig(inputs=[f"{root / 'rows.parquet'}:canonical"], tokenizer=tokenizer)
    build_dataset(config, root / "ds", overwrite=True)
    return root / "ds"


def _inspect(capsys, *argv: str) -> tuple:
    assert main(["inspect", *argv]) == 0
    out, err = capsys.readouterr()
    assert not RAW.search(out) and not RAW.search(err), RAW.search(out + err)
    return out, err


def test_inspect_escapes_ids_and_model_names(tmp_path, capsys):
    data = _hostile_dataset(tmp_path)  # the demo tokenizer
    out, _ = _inspect(capsys, str(data), "--row", "0")
    header = out.splitlines()[0]
    # One line still, readable: every field there, escaped.
    assert header.startswith(f"row 0: id id-{SHOWN}-")
    assert f"models ma{SHOWN} vs mb\\n{SHOWN}" in header
    _inspect(capsys, str(data))  # the summary


def test_inspect_escapes_decoded_turns_and_keeps_their_layout(tmp_path, capsys, llama):
    # A byte-level tokenizer decodes the controls back (the demo one shows bytes).
    data = _hostile_dataset(tmp_path, tokenizer=str(llama.path))
    out, _ = _inspect(capsys, str(data), "--row", "0")
    assert f"line one\nline two\twith tab {SHOWN} end" in out
    assert f"answer a {SHOWN}" in out


def test_error_lines_are_escaped_and_one_line(tmp_path, capsys):
    missing = tmp_path / f"no{EVIL}\nsuch"
    assert main(["inspect", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("arena-fast inspect: error: ") and err.count("\n") == 1, err
    # (a path: "http://" there is "http:/")
    assert not RAW.search(err) and r"no\x1b]0;pwned\x07\x1b]8;;http:/evil" in err
    assert r"\u202eevil\u2066\x7f\nsuch: not a dataset" in err
    # argparse quotes arguments in its usage errors.
    with pytest.raises(SystemExit) as exit:
        main(["inspect", str(tmp_path), f"--bogus{EVIL}"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err and not RAW.search(err), err


def test_a_bug_keeps_its_traceback_escaped_and_exits_70(monkeypatch, tmp_path, capsys):
    import arena_fast.cli.inspect as command

    def boom(args):
        raise ValueError(f"a bug {EVIL}")

    monkeypatch.setattr(command, "run", boom)
    assert main(["inspect", str(tmp_path)]) == EXIT_BUG == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and not RAW.search(err), err
    assert err.splitlines()[-1].startswith("arena-fast inspect: internal error: ValueError: a bug")


@pytest.mark.parametrize(
    ("raised", "status", "word"),
    [
        (KeyboardInterrupt, EXIT_INTERRUPTED, "interrupted"),
        (Terminated, EXIT_TERMINATED, "terminated"),
    ],
)
def test_an_interrupt_in_a_command_is_one_line(monkeypatch, tmp_path, capsys, raised, status, word):
    import arena_fast.cli.inspect as command

    def stop(args):
        raise raised()

    monkeypatch.setattr(command, "run", stop)
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    assert main(["inspect", str(tmp_path)]) == status
    assert capsys.readouterr().err == f"arena-fast inspect: {word}\n"
    # The handlers main installed for the command are gone again.
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before


def test_a_closed_stdout_ends_quietly(tmp_path):
    data = _hostile_dataset(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "arena_fast", "inspect", str(data), "--row", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before it writes: its first write meets a broken pipe
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err


# -- D5: the submission CSV -----------------------------------------------------
HOSTILE_IDS = [
    "136060",
    "a,b",
    'say "hi"',
    "two\nlines",
    "carriage\rreturn",
    "crlf\r\nend",
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "héllo 世界 👩‍💻",
    "",
    "  spaced  ",
    "007",
    "NA",
    "null",
    '"',
    ",",
]


def _probs(n: int) -> np.ndarray:
    probs = np.random.default_rng(0).dirichlet([1.0, 1.0, 1.0], n)
    probs[0] = [1 / 3, 1e-300, 5e-324]  # repr keeps every digit and tiny exponents
    return probs


def test_submission_ids_round_trip_exactly(tmp_path):
    path = tmp_path / "submission.csv"
    probs = _probs(len(HOSTILE_IDS))
    write_submission(path, HOSTILE_IDS, probs)
    text = path.read_bytes().decode("utf-8")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "winner_model_a", "winner_model_b", "winner_tie"]
    assert [r[0] for r in rows[1:]] == HOSTILE_IDS
    assert [r[1:] for r in rows[1:]] == [[repr(float(x)) for x in p] for p in probs]
    frame = pl.read_csv(path, schema_overrides={"id": pl.String})
    assert frame["id"].to_list() == HOSTILE_IDS
    np.testing.assert_array_equal(frame.select(frame.columns[1:]).to_numpy(), probs)
    frame = pd.read_csv(io.StringIO(text), dtype={"id": str}, keep_default_na=False)
    assert frame["id"].tolist() == HOSTILE_IDS
    np.testing.assert_array_equal(frame.iloc[:, 1:].to_numpy(), probs)
    # Formula-looking ids are kept byte for byte (the scorer matches ids).
    assert "\"=cmd|' /C calc'!A0\"," in text and '"\t=1",' in text


def test_submission_format_is_pinned(tmp_path):
    path = tmp_path / "submission.csv"
    write_submission(path, ["1", "2"], np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]))
    assert path.read_bytes() == (
        b'id,winner_model_a,winner_model_b,winner_tie\n"1",0.5,0.25,0.25\n"2",0.1,0.2,0.7\n'
    )
    # Plain numeric ids still read as the numbers Kaggle's ids are.
    assert pl.read_csv(path)["id"].to_list() == [1, 2]


def test_submission_is_atomic_and_refuses_a_length_mismatch(tmp_path):
    path = tmp_path / "submission.csv"
    write_submission(path, ["1"], np.array([[0.5, 0.25, 0.25]]))
    before = path.read_bytes()
    with pytest.raises(af.ConfigError, match="2 ids but 1 probability rows"):
        write_submission(path, ["1", "2"], np.array([[0.5, 0.25, 0.25]]))
    with pytest.raises(ValueError):  # fails mid-write: the old file stays whole
        write_submission(path, ["1", "2"], [[0.5, 0.25, 0.25], ["x", 0.0, 0.0]])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]


# -- signals --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_a_signalled_build_cleans_up_and_says_one_line(tmp_path, signum, status, word):
    out = tmp_path / "data"
    # Big enough to be mid-build for seconds once its work directory exists.
    command = [sys.executable, "-m", "arena_fast", "build-dataset", "--demo-rows", "200000"]
    proc = subprocess.Popen(
        [*command, "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".data.building-*")):
            assert proc.poll() is None and time.monotonic() < deadline, "no build started"
            time.sleep(0.02)
        time.sleep(0.3)  # into the reading and encoding
        proc.send_signal(signum)
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == status, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert err == f"arena-fast build-dataset: {word}\n"
    assert list(tmp_path.iterdir()) == []  # no work directory, no half dataset


_SLOW_CLEANUP = """
import sys, time
import arena_fast.cli.inspect as command
from arena_fast.cli import main

def run(args):
    try:
        print("working", flush=True)
        time.sleep(60)
    finally:
        print("cleaning", flush=True)
        time.sleep(60)

command.run = run
sys.exit(main(["inspect", "x"]))
"""


def test_a_second_signal_during_cleanup_ends_at_once():
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLEANUP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "working\n"
        proc.send_signal(signal.SIGTERM)  # the finally block runs ...
        assert proc.stdout.readline() == "cleaning\n"
        proc.send_signal(signal.SIGINT)  # ... and a second signal cuts it short
        assert proc.wait(timeout=20) == 130  # the status of the signal that ended it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
