"""Honest evaluation (issue 15, point 2): a run records the rows it trained
on (`bundle.json` `trained_on`), so `predict` scores its held-out fold by
default on its own dataset (`--split valid|train|all`), every printed score
names its rows and flags trained ones, the report pools only distinct
held-out folds of one dataset, describes merged runs as merges of folds,
and draws every evaluation by step with the kept one marked."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast import diagnostics  # noqa: E402
from arena_fast.cli import main  # noqa: E402
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.diagnostics import prediction_frame, read_predictions, write_predictions  # noqa: E402
from arena_fast.errors import ConfigError, InputError  # noqa: E402
from arena_fast.infer import prediction_table  # noqa: E402
from arena_fast.merge import merge_runs  # noqa: E402
from arena_fast.predict import predict  # noqa: E402
from arena_fast.report import write_report  # noqa: E402
from arena_fast.report.sections import load_run  # noqa: E402
from arena_fast.runs import dataset_sha256, read_bundle, write_bundle_file  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A dataset of 3 folds, another dataset (test data), and runs holding
    out fold 0 and fold 1, each evaluated every 2 steps."""
    root = tmp_path_factory.mktemp("honest")
    ds = build_rows(keyword_rows(60, 0), root, max_length=96, folds=3)
    other = build_rows(keyword_rows(24, 7), root, "other", max_length=96, folds=3)
    common = dict(data=str(ds), max_tokens=512, lr=3e-3, max_steps=6, eval_every=2, log_every=1)
    for fold in (0, 1):
        train(TrainConfig(fold=fold, out=str(root / f"run{fold}"), **common))
    return {"root": root, "ds": ds, "other": other, "run0": root / "run0", "run1": root / "run1"}


def _page(index) -> str:
    return index.read_text(encoding="utf-8")


def test_the_bundle_records_the_rows_the_run_trained_on(runs):
    record = read_bundle(runs["run0"])["trained_on"]
    assert record["dataset_sha256"] == dataset_sha256(runs["ds"])
    assert record["folds"] == 3 and record["held_out"] == 0
    # What is not a trained_on record refuses the run, naming the field.
    copy = runs["root"] / "bad-bundle"
    shutil.copytree(runs["run0"], copy)
    bundle = json.loads((copy / "bundle.json").read_text())
    bundle["trained_on"]["held_out"] = 7  # not a fold of 3
    (copy / "bundle.json").write_text(json.dumps(bundle))
    with pytest.raises(ConfigError, match="trained_on.held_out"):
        read_bundle(copy)


def test_the_same_rows_rebuilt_elsewhere_are_the_runs_own_dataset(runs, tmp_path):
    """The identity is the rows (the shards), not where the input was: the
    same rows built from another path are the run's dataset; another fold
    seed is not."""
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    again = build_rows(keyword_rows(60, 0), moved, max_length=96, folds=3)
    manifest = json.loads((again / "manifest.json").read_text())
    assert str(moved) in json.dumps(manifest["inputs"])  # the manifest differs ...
    assert dataset_sha256(again) == dataset_sha256(runs["ds"])  # ... the rows do not
    assert predict(runs["run0"], again)["split"] == "valid"
    other_folds = build_rows(keyword_rows(60, 0), moved, "seed1", max_length=96, folds=3, seed=1)
    assert dataset_sha256(other_folds) != dataset_sha256(runs["ds"])


def test_predict_on_the_runs_own_dataset_scores_its_held_out_fold(runs):
    out = predict(runs["run0"], runs["ds"])
    valid = load_dataset(runs["ds"], fold=0, split="valid")
    assert out["ids"] == valid.ids  # not every row: the training folds score too well
    assert out["split"] == "valid"
    assert set(out["folds"].tolist()) == {0} and not out["trained"].any()
    # The same rows and probabilities as the held-out table training wrote.
    table, rows = read_predictions(runs["run0"] / "valid_predictions.parquet", with_rows=True)
    assert table["id"].to_list() == out["ids"] and not table["trained"].any()
    assert rows["split"] == "valid" and rows["held_out"] == 0
    assert rows["dataset_sha256"] == out["rows"]["dataset_sha256"]


def test_split_all_and_train_say_which_rows_trained_the_run(runs, tmp_path, capsys):
    every = predict(runs["run0"], runs["ds"], split="all")
    assert len(every["ids"]) == 60
    np.testing.assert_array_equal(every["trained"], every["folds"] != 0)
    trained = predict(runs["run0"], runs["ds"], split="train")
    assert len(trained["ids"]) == int(every["trained"].sum()) and trained["trained"].all()
    n = int(every["trained"].sum())
    table = tmp_path / "all.parquet"
    args = ["predict", "--run", str(runs["run0"]), "--data", str(runs["ds"])]
    assert main([*args, "--out", str(tmp_path / "s.csv"), "--predictions", str(table)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"rows +held-out fold 0: 20 rows \(20 labelled\)", err)
    assert "WARNING" not in err
    assert pl.read_csv(tmp_path / "s.csv").height == 20  # the split's rows
    argv = [*args, "--out", str(tmp_path / "a.csv"), "--predictions", str(table)]
    assert main([*argv, "--split", "all", "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert f"all 60 rows, {n} of which the run trained on (these scores are not held-out)" in err
    assert f"WARNING       {n} of these rows trained the run" in err
    assert "by rows       held out:" in err and "trained:" in err
    assert pl.read_csv(tmp_path / "a.csv").height == 60
    frame, rows = read_predictions(table, with_rows=True)
    assert frame["trained"].to_list() == every["trained"].tolist()
    assert rows["split"] == "all" and rows["held_out"] == 0 and rows["own_dataset"] is True
    assert rows["run"] == str(runs["run0"])


def test_valid_or_train_on_other_data_is_refused(runs, tmp_path, capsys):
    for split in ("valid", "train"):
        with pytest.raises(ConfigError, match="not the dataset the run trained on"):
            predict(runs["run0"], runs["other"], split=split)
    out = predict(runs["run0"], runs["other"])  # test data: every row, as before
    assert out["split"] == "all" and len(out["ids"]) == 24 and out["trained"] is None
    assert out["rows"]["own_dataset"] is False
    args = ["predict", "--run", str(runs["run0"]), "--data", str(runs["other"])]
    assert main([*args, "--out", str(tmp_path / "s.csv"), "--split", "valid"]) == 1
    err = capsys.readouterr().err
    assert "not the dataset the run trained on" in err and "Traceback" not in err
    assert main([*args, "--out", str(tmp_path / "s.csv")]) == 0
    assert "24 rows of other data than the run trained on" in capsys.readouterr().err
    assert pl.read_csv(tmp_path / "s.csv").height == 24


def test_a_run_that_does_not_say_still_predicts_every_row_with_a_notice(runs, capsys):
    legacy = runs["root"] / "legacy"
    shutil.copytree(runs["run0"], legacy)
    bundle = json.loads((legacy / "bundle.json").read_text())
    del bundle["trained_on"]
    write_bundle_file(legacy, bundle)
    out = predict(legacy, runs["ds"])
    assert out["split"] == "all" and len(out["ids"]) == 60 and out["trained"] is None
    assert "does not say which rows it trained on" in out["notes"][0]
    with pytest.raises(ConfigError, match="does not record which rows it trained on"):
        predict(legacy, runs["ds"], split="valid")
    args = ["predict", "--run", str(legacy), "--data", str(runs["ds"])]
    assert main([*args, "--out", str(runs["root"] / "legacy.csv")]) == 0
    err = capsys.readouterr().err
    assert "note: the run" in err and "the run does not say which rows it trained on" in err


def test_a_merged_run_is_a_merge_of_folds(runs, tmp_path):
    merged = tmp_path / "merged"
    merge_runs([runs["run0"], runs["run1"]], merged)
    record = read_bundle(merged)["trained_on"]
    assert record["held_out"] is None and record["sources_held_out"] == [0, 1]
    assert record["dataset_sha256"] == dataset_sha256(runs["ds"])
    # Every row trained one of the sources: all of them, flagged as trained.
    out = predict(merged, runs["ds"])
    assert out["split"] == "all" and len(out["ids"]) == 60 and out["trained"].all()
    with pytest.raises(ConfigError, match="no held-out fold"):
        predict(merged, runs["ds"], split="valid")
    page = _page(write_report([merged]))
    assert "a merge of 2 runs holding out folds {0, 1} of 3" in page
    assert "trained on every row (fold None)" not in page
    # Sources of one fold: that fold is still held out of the merge.
    same = tmp_path / "same"
    copy = tmp_path / "run0-copy"
    shutil.copytree(runs["run0"], copy)
    merge_runs([runs["run0"], copy], same)
    assert read_bundle(same)["trained_on"]["held_out"] == 0
    assert predict(same, runs["ds"])["split"] == "valid"


def test_the_report_pools_only_distinct_folds_and_names_the_rows(runs, tmp_path):
    page = _page(write_report([runs["run0"], runs["run1"]], out=tmp_path / "r1"))
    assert "<td>all runs pooled (out of fold)</td>" in page
    assert "pooled out of fold: held-out folds {0, 1}, 40 rows" in page
    assert "<td>held-out fold 0: 20 rows</td>" in page
    # Two runs of the same fold: the same rows twice, never pooled.
    twin = runs["root"] / "twin"
    if not twin.exists():
        shutil.copytree(runs["run0"], twin, ignore=shutil.ignore_patterns("report"))
    page = _page(write_report([runs["run0"], twin], out=tmp_path / "r2"))
    assert "all runs pooled" not in page
    assert "no pooled out-of-fold score: the runs&#x27; held-out folds are not distinct" in page
    # A table that includes trained rows says so, in the summary and its plots' caption.
    table = tmp_path / "all.parquet"
    result = predict(runs["run0"], runs["ds"], split="all")
    write_predictions(table, prediction_table(result), result["rows"])
    n = int(result["trained"].sum())
    page = _page(write_report([runs["run0"]], out=tmp_path / "r3", predictions=[table]))
    assert f"WARNING: all.parquet: all 60 rows, {n} of which the run trained on" in page
    assert "log loss per fold" in page  # its fold plot exists, titled without "held-out"


def test_the_report_keys_evaluations_by_step_and_marks_the_kept_one(runs, tmp_path):
    records = [json.loads(x) for x in (runs["run0"] / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("eval")]
    saved = [r for r in records if "saved" in r][-1]
    assert len(evals) == 3 and {r["epoch"] for r in evals} == {0}  # eval_every 2, one epoch
    sec = load_run(runs["run0"], "run1")
    assert [r["step"] for r in sec.evals] == [r["step"] for r in evals]
    assert sec.kept["step"] == saved["kept"]["step"]
    page = _page(write_report([runs["run0"]], out=tmp_path / "r"))
    assert "3 held-out evaluations, by step" in page
    assert page.count("<td>KEPT</td>") == 1
    kept = saved["kept"]
    assert f"kept weights: step {kept['step']} ({saved['saved']}): log loss" in page
    row = re.search(r"<tr><td>(\d+)</td>(?:<td>[^<]*</td>){5}<td>KEPT</td></tr>", page)
    assert row and int(row.group(1)) == kept["step"]


def test_prediction_tables_carry_their_rows_and_old_ones_still_read(tmp_path):
    frame = prediction_frame(["a", "b"], [[0.2, 0.3, 0.5]] * 2, trained=[True, False])
    old = tmp_path / "old.parquet"
    frame.drop("trained").write_parquet(old)
    assert read_predictions(old, with_rows=True)[1] == {}
    new = tmp_path / "new.parquet"
    write_predictions(new, frame, {"split": "all", "held_out": 1, "own_dataset": True})
    got, rows = read_predictions(new, with_rows=True)
    assert got["trained"].to_list() == [True, False] and rows["held_out"] == 1
    bad = frame.to_arrow().replace_schema_metadata({diagnostics.ROWS_KEY: b'{"split": "most"}'})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="split is 'most'"):
        read_predictions(tmp_path / "bad.parquet", with_rows=True)
