"""Progress with an ETA in `train` and `predict` (issue 15, point 6): the
library functions hand records to a `progress=` callback and print nothing;
the CLI draws them with tqdm on a terminal (a redrawn bar: count, rate,
elapsed<ETA, the loss), as plain lines every few seconds elsewhere, and not
at all with `--quiet`."""

from __future__ import annotations

import io
import re
import sys

import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.cli import main  # noqa: E402
from arena_fast.cli._progress import Progress  # noqa: E402
from arena_fast.predict import predict  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    return build_rows(keyword_rows(200, 0), root, max_length=128, folds=5, swap=True)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_train_and_predict_report_progress_through_a_callback(small_dataset, tmp_path, capsys):
    records: list = []
    config = TrainConfig(
        data=str(small_dataset), max_tokens=512, lr=3e-3, max_steps=5, out=str(tmp_path / "run")
    )
    train(config, progress=records.append)
    assert records[0] == {"step": 0, "total": 5}  # before the first step
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5]
    assert all(r["total"] == 5 and r["lr"] >= 0 for r in steps)
    assert {"stage": "evaluate", "step": 5} in records  # the run ends evaluated
    rows: list = []
    result = predict(tmp_path / "run", small_dataset, split="all", progress=rows.append)
    n = 2 * len(result["ids"])  # both A/B orders
    assert rows[0] == {"rows": 0, "total": n} and rows[-1] == {"rows": n, "total": n}
    assert [r["rows"] for r in rows] == sorted(r["rows"] for r in rows)
    assert capsys.readouterr() == ("", "")  # the library prints nothing


def test_the_cli_draws_a_bar_with_an_eta_on_a_terminal(
    small_dataset, tmp_path, capsys, monkeypatch
):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run = tmp_path / "run"
    args = ["--data", str(small_dataset), "--max-tokens", "512", "--max-steps", "6"]
    assert main(["train", *args, "--log-every", "3", "--out", str(run)]) == 0
    drawn = terminal.getvalue()
    assert "\r" in drawn and "6/6" in drawn and "steps/s" in drawn
    assert re.search(r"\d+/6 \[[\d:]+<[\d:]+, .*loss \d\.\d{4}, lr ", drawn)  # elapsed<ETA
    assert "arena-fast train: step 3: loss" in drawn  # the log lines, above the bar
    # stdout's one line: the kept evaluation and the rows it covers.
    assert re.fullmatch(
        r"final \(step 6, held-out fold 0: \d+ rows\): log loss \d\.\d{4}, accuracy .*\n",
        capsys.readouterr().out,
    )
    terminal.seek(0)
    terminal.truncate()
    assert main(["predict", "--run", str(run), "--data", str(small_dataset), "--split", "all",
                 "--out", str(tmp_path / "sub.csv")]) == 0  # fmt: skip
    drawn = terminal.getvalue()
    assert "\r" in drawn and "rows/s" in drawn and re.search(r"predicting: +\d+%", drawn)


def test_quiet_train_prints_nothing_and_a_log_file_gets_plain_lines(
    small_dataset, tmp_path, capsys, monkeypatch
):
    args = ["--data", str(small_dataset), "--max-tokens", "512", "--max-steps", "2"]
    monkeypatch.setattr(sys, "stderr", Terminal())  # a bar would be drawn here
    assert main(["train", *args, "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert sys.stderr.getvalue() == ""
    assert capsys.readouterr().out == ""

    # Off a terminal: whole lines at most every `interval` seconds, never \r.
    log = io.StringIO()
    progress = Progress(stream=log, prefix="arena-fast train", unit="steps", interval=0.0)
    progress.describe("training")
    for step in range(4):
        progress.update(step, 10, f"loss {1 / (step + 1):.4f}")
    text = log.getvalue()
    assert "\r" not in text and len(text.splitlines()) == 4
    assert re.fullmatch(
        r"arena-fast train: training: +30% 3/10 \[[\d:]+<[\d:?]+, .*steps/s, loss 0\.2500\]",
        text.splitlines()[-1],
    )
