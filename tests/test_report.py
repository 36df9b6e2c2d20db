"""`arena-fast report`: the HTML page and its PNGs, from real tiny runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.dataset import BuildConfig, build_dataset  # noqa: E402
from arena_fast.diagnostics import read_predictions, summarize  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.report import write_report  # noqa: E402
from arena_fast.runs import write_bundle_file  # noqa: E402
from arena_fast.train import PREDICTIONS, TrainConfig, train  # noqa: E402
from keyword_rows import keyword_rows  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two fold runs of one model, a run stopped after 2 steps, and one
    without held-out fold."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    rows = keyword_rows(300, 0, max_turns=4, answer_words=(3, 8), prompt_words=3)
    rows.write_parquet(root / "rows.parquet")
    build = BuildConfig(
        inputs=[f"{root / 'rows.parquet'}:canonical"], max_length=96, folds=2, swap=True
    )
    build_dataset(build, root / "ds")
    common = dict(data=str(root / "ds"), epochs=2, lr=5e-3, max_tokens=512, log_every=2)
    out = {}
    for fold in (0, 1):
        out[fold] = root / "model" / f"fold{fold}"
        train(TrainConfig(fold=fold, out=str(out[fold]), **common))
    out["early"] = root / "early"
    train(TrainConfig(fold=0, max_steps=2, out=str(out["early"]), **{**common, "log_every": 1}))
    _without_evaluations(out["early"])
    out["all"] = root / "all"
    train(TrainConfig(fold=None, max_steps=2, out=str(out["all"]), **common))
    return out


def _without_evaluations(run) -> None:
    """A run as one stopped before its first evaluation looked (a finished
    run now always ends evaluated): no evaluation records, no predictions,
    the bundle made to match again."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    kept = [x for x in lines if not ({"eval", "saved"} & json.loads(x).keys())]
    (run / "metrics.jsonl").write_text("".join(f"{x}\n" for x in kept))
    (run / PREDICTIONS).unlink()
    write_bundle_file(run, json.loads((run / "bundle.json").read_text()))


def _images(index) -> list:
    """The PNGs the page references, after checking that they are exactly
    the PNGs beside it and that each is a PNG."""
    page = index.read_text(encoding="utf-8")
    names = re.findall(r'<img src="([^"]+)"', page)
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(p.name for p in index.parent.iterdir() if p.name != "index.html")
    for name in names:
        assert (index.parent / name).read_bytes()[:8] == PNG_MAGIC, name
    return names


def test_one_run_page_has_its_plots_and_numbers(runs):
    index = write_report([runs[0]])
    assert index == runs[0] / "report" / "index.html"
    names = _images(index)
    kinds = ("loss", "reliability", "flips", "confusion", "groups")
    assert sorted(names) == sorted(f"run1-{k}.png" for k in kinds)
    page = index.read_text(encoding="utf-8")
    s = summarize(read_predictions(runs[0] / PREDICTIONS))
    for value in (
        s["log_loss"],
        s["accuracy"],
        s["log_loss_original"],
        s["log_loss_swapped"],
        s["flip_rate"],
        s["calibration"]["ece"],
    ):
        assert f"<td>{value:.4f}</td>" in page
    evals = [json.loads(x) for x in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in evals if r.get("eval")][-1]
    assert f"<td>{last['tta_log_loss']:.4f}</td>" in page
    assert "<td>tiny-gemma2</td>" in page and "<td>96</td>" in page  # max_length from the bundle
    assert f"ECE           {s['calibration']['ece']:.4f}" in page  # the numbers, as text


def test_hostile_text_is_escaped(runs, tmp_path):
    # Names reach the page and the plots' legends: no HTML, and no TeX for matplotlib.
    copies = [tmp_path / "run<b>x", tmp_path / r"$\nope{$"]
    for fold, run in enumerate(copies):
        shutil.copytree(runs[fold], run, ignore=shutil.ignore_patterns("report"))
    config = json.loads((copies[0] / "config.json").read_text())
    config["model"] = '<script>alert("x")</script>'
    (copies[0] / "config.json").write_text(json.dumps(config))
    index = write_report(copies)
    page = index.read_text(encoding="utf-8")
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "run&lt;b&gt;x" in page and r"$\nope{$" in page
    assert "compare-loss.png" in _images(index)


def test_two_runs_get_per_fold_bars_and_the_pooled_score(runs):
    extra = runs[1] / PREDICTIONS
    index = write_report([runs[0], runs[1]], predictions=[extra])
    assert index.resolve() == (runs[0].parent / "report" / "index.html").resolve()  # beside them
    names = _images(index)
    assert {"compare-folds.png", "compare-loss.png", "pred1-reliability.png"} <= set(names)
    page = index.read_text(encoding="utf-8")
    frames = [read_predictions(runs[f] / PREDICTIONS) for f in (0, 1)]
    for fold, frame in enumerate(frames):
        g = summarize(frame)["by_fold"][fold]
        assert f"<tr><td>fold {fold}</td><td>{g['rows']}</td><td>{g['log_loss']:.4f}</td></tr>" in (
            page
        )
    pooled = summarize(pl.concat(frames))
    assert f"<td>all runs pooled (out of fold)</td><td>{pooled['rows']}</td>" in page
    assert f"<td>{pooled['log_loss']:.4f}</td>" in page
    assert "<h2" in page and ">valid_predictions.parquet</h2>" in page


def test_runs_without_predictions_say_so(runs):
    page = write_report([runs["early"]]).read_text(encoding="utf-8")
    assert "no held-out predictions: the run stopped before its first evaluation" in page
    assert _images(runs["early"] / "report" / "index.html") == ["run1-loss.png"]
    page = write_report([runs["all"]]).read_text(encoding="utf-8")
    assert "no held-out predictions: the run trained on every row (fold None)" in page


def test_bad_inputs_are_config_errors(runs, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: not a training run")):
        write_report([tmp_path])
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an arena-fast report"):
        write_report([runs[0]], out=keep)
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    with pytest.raises(ConfigError, match="different directories"):
        write_report([runs[0], runs["early"]])


def test_missing_matplotlib_names_the_extra(runs, tmp_path):
    """In an interpreter where matplotlib cannot be imported, the report
    module still imports and write_report fails with the ConfigError that
    names the extra, before anything is written."""
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if not installed\n"
        "from arena_fast.errors import ConfigError\n"
        "from arena_fast.report import write_report\n"
        "try:\n"
        "    write_report([sys.argv[1]], out=sys.argv[2])\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    args = [sys.executable, "-c", code, str(runs[0]), str(tmp_path / "r")]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    assert 'pip install "arena-fast[plot]"' in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "r").exists()


def test_same_inputs_same_bytes_and_old_reports_replaced(runs, tmp_path):
    both = [runs[0], runs[1]]
    first = write_report(both, out=tmp_path / "a").parent
    (first / "stale.png").write_bytes(PNG_MAGIC)
    with pytest.raises(ConfigError, match="already exists"):  # an output: kept by default
        write_report(both, out=tmp_path / "a")
    assert (first / "stale.png").is_file()
    again = write_report(both, out=tmp_path / "a", overwrite=True).parent  # replaced
    second = write_report(both, out=tmp_path / "b").parent
    files = sorted(p.name for p in again.iterdir())
    assert "stale.png" not in files and files == sorted(p.name for p in second.iterdir())
    for name in files:  # the PNGs too: no date, no software version inside
        assert (again / name).read_bytes() == (second / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporaries left


def test_cli(runs, tmp_path, capsys):
    from arena_fast.cli import main

    out = tmp_path / "cli"
    extra = str(runs[1] / PREDICTIONS)
    assert main(["report", str(runs[0]), "--out", str(out), "--predictions", extra]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert "pred1-flips.png" in (out / "index.html").read_text(encoding="utf-8")
    assert main(["report", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("arena-fast report: error: ") and "not a training run" in err


def _groups_table(page: str, column: str) -> dict:
    """The report's "by COLUMN" table: name -> (rows, labelled, log loss, accuracy, flip)."""
    start = page.index(f'<h3 id="by-{column}">')
    table = page[start : page.index("</table>", start)]
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]
    return {c[0]: (int(c[1]), int(c[2]), *c[3:]) for c in cells if c}


def _scores(frame: pl.DataFrame, rows: list) -> tuple:
    """Log loss, accuracy and flip rate of `rows` of a prediction table,
    worked out here (not by af.diagnostics)."""
    sub = frame[rows]
    p = sub["probs"].to_numpy().astype(float)
    y = sub["labels"].to_numpy().astype(float)
    o, s = (sub[c].to_numpy().astype(float) for c in ("probs_original", "probs_swapped"))
    p = np.clip(p, 1e-15, 1 - 1e-15)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-(y * np.log(p)).sum(axis=1).mean())
    acc = float((p.argmax(1) == y.argmax(1)).mean())
    return loss, acc, float((o.argmax(1) != s.argmax(1)).mean())


@pytest.mark.slow
def test_scores_by_language_and_category(tmp_path):
    """A dataset whose canonical rows carry language and category: the
    held-out table and `predict`'s table carry them, and the report's
    tables by language and by category hold the counts and scores worked
    out here from the rows' own values (a "math,if" row under each)."""
    from arena_fast.predict import predict, prediction_table  # the torch layer

    torch.set_num_threads(1)
    languages = ["en", "en", "de", "fr", None, "en"]
    categories = ["math", "math,if", "if", None, "code", "math"]
    rows = keyword_rows(120, 0, prompt_words=3).with_columns(
        pl.Series("language", [languages[i % 6] for i in range(120)], dtype=pl.String),
        pl.Series("category", [categories[i % 6] for i in range(120)], dtype=pl.String),
    )
    rows.write_parquet(tmp_path / "rows.parquet")
    build = BuildConfig(
        inputs=[f"{tmp_path / 'rows.parquet'}:canonical"], max_length=96, folds=2, swap=True
    )
    build_dataset(build, tmp_path / "ds")
    run = tmp_path / "run"
    train(
        TrainConfig(
            fold=0, data=str(tmp_path / "ds"), out=str(run), epochs=1, lr=5e-3, max_tokens=512
        )
    )
    table = read_predictions(run / PREDICTIONS)
    truth = dict(zip(rows["id"], zip(rows["language"], rows["category"])))
    assert table["language"].to_list() == [truth[i][0] for i in table["id"]]
    assert table["category"].to_list() == [truth[i][1] for i in table["id"]]
    predicted = prediction_table(predict(run, tmp_path / "ds"))
    assert predicted.select("id", "language", "category").equals(
        table.select("id", "language", "category")
    )

    page = write_report([run]).read_text(encoding="utf-8")
    ids = table["id"].to_list()
    for column, split in (("language", False), ("category", True)):
        members: dict = {}
        for i, ident in enumerate(ids):
            value = truth[ident][column == "category"]
            names = (value.split(",") if split else [value]) if value else ["(none)"]
            for name in names:
                members.setdefault(name, []).append(i)
        shown = _groups_table(page, column)
        assert set(shown) == set(members)
        named = [k for k in shown if k != "(none)"]
        assert named == sorted(named, key=lambda k: (-len(members[k]), k))  # largest first
        for name, got in shown.items():
            loss, acc, flip = _scores(table, members[name])
            assert got[:2] == (len(members[name]), len(members[name]))
            assert abs(float(got[2]) - loss) < 6e-5 and abs(float(got[3]) - acc) < 6e-5
            assert abs(float(got[4]) - flip) < 6e-5
    assert "counts under each" in page
