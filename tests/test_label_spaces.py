"""Label spaces (issue 16): `ab` (2 classes), `abt` (3) and `abtx` (4,
both_bad) from the canonical reader through the manifest, the head, the
losses, the swap and TTA, predict, the metrics and the submissions; the
explicit mappings between spaces; refusals of data of another space; old
manifests and bundles read as `abt`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import arena_fast as af
from arena_fast.dataset import BuildConfig, build_dataset, load_dataset
from arena_fast.diagnostics import format_summary, prediction_frame, read_predictions, summarize
from arena_fast.labels import (
    LABEL_SPACES,
    describe_mapping,
    label_space,
    map_logits,
    map_probs,
    space_of_width,
)
from arena_fast.submission import write_submission
from keyword_rows import keyword_rows

# Rows of each space from the keyword rows (labels cycle A, B, tie): for ab
# the tie rows are dropped, for abtx every 4th tie row becomes both_bad.
WIDTH = {"ab": 2, "abt": 3, "abtx": 4}


def _rows(space: str, n: int = 36, seed: int = 0) -> pl.DataFrame:
    rows = keyword_rows(n, seed)
    labels = rows["labels"].to_list()
    if space == "ab":
        keep = [i for i, v in enumerate(labels) if v[2] == 0]
        rows = rows[keep]
        labels = [v[:2] for i, v in enumerate(labels) if i in keep]
    elif space == "abtx":
        labels = [
            [0.0, 0.0, 0.0, 1.0] if v[2] == 1 and i % 2 else [*v, 0.0] for i, v in enumerate(labels)
        ]
    return rows.with_columns(pl.Series("labels", labels, dtype=pl.List(pl.Float64)))


def _build(rows: pl.DataFrame, root: Path, name: str, **config) -> Path:
    source = root / f"{name}.parquet"
    rows.write_parquet(source)
    config.setdefault("max_length", 128)
    build_dataset(BuildConfig(inputs=[f"{source}:canonical"], **config), root / name)
    return root / name


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


# -- labels.py ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ab", "abt", "abtx"])
def test_each_space_swaps_a_and_b_and_keeps_the_rest(name):
    space = label_space(name)
    assert space.k == WIDTH[name] and space_of_width(space.k) is space
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(space.k), size=5)
    q = space.swap_labels(p)
    np.testing.assert_array_equal(q[:, 0], p[:, 1])
    np.testing.assert_array_equal(q[:, 1], p[:, 0])
    np.testing.assert_array_equal(q[:, 2:], p[:, 2:])  # tie and both_bad kept
    np.testing.assert_array_equal(space.swap_labels(q), p)
    ids = np.arange(space.k)
    assert space.swap_labels(ids).tolist() == [1, 0, *range(2, space.k)]
    with pytest.raises(af.InputError):
        space.swap_labels(np.array([space.k]))
    # TTA: the swapped pass of a swap-symmetric model is the same verdict.
    np.testing.assert_allclose(space.tta_average(p, q), p)
    assert space.columns[:2] == ("winner_model_a", "winner_model_b")
    assert space.verdicts[: space.k] == ("model_a", "model_b", "tie", "both_bad")[: space.k]
    assert space.metric == ("accuracy" if name == "ab" else "log_loss")


def test_the_abt_names_and_functions_keep_working():
    assert af.labels.CLASS_COLUMNS == ("winner_model_a", "winner_model_b", "winner_tie")
    p = np.array([[0.1, 0.6, 0.3]])
    np.testing.assert_array_equal(af.swap_labels(p), [[0.6, 0.1, 0.3]])
    with pytest.raises(ValueError):
        af.swap_labels(np.zeros((1, 4)))  # abt by default: 4 columns are not abt
    np.testing.assert_array_equal(af.swap_labels(np.zeros((1, 4)), "abtx"), np.zeros((1, 4)))
    np.testing.assert_array_equal(af.unswap_probs(np.array([[0.1, 0.9]]), "ab"), [[0.9, 0.1]])


def test_explicit_mappings_between_spaces():
    abtx = np.array([[0.2, 0.4, 0.1, 0.3], [0.0, 0.0, 0.5, 0.5], [np.nan] * 4])
    to_ab, lost = map_probs(abtx, "abtx", "ab")
    np.testing.assert_allclose(to_ab[0], [1 / 3, 2 / 3])
    assert lost.tolist() == [False, True, False]  # nothing of A or B to renormalise
    assert np.isnan(to_ab[1]).all() and np.isnan(to_ab[2]).all()
    to_abt, lost = map_probs(abtx, "abtx", "abt")
    np.testing.assert_allclose(to_abt[0], [0.2, 0.4, 0.4])  # both_bad merged into tie
    assert not lost.any()
    with pytest.raises(af.ConfigError, match="widen"):
        map_probs(np.array([[0.3, 0.7]]), "ab", "abt")
    widened, _ = map_probs(np.array([[0.3, 0.7]]), "ab", "abtx", widen=True)
    np.testing.assert_allclose(widened, [[0.3, 0.7, 0.0, 0.0]])
    # Logits map so that their softmax is the mapped probabilities.
    z = np.array([[0.5, -1.0, 2.0, 0.3]])
    soft = np.exp(z) / np.exp(z).sum()
    for target in ("ab", "abt"):
        m = map_logits(z, "abtx", target)
        np.testing.assert_allclose(np.exp(m) / np.exp(m).sum(), map_probs(soft, "abtx", target)[0])
    assert "renormalise A and B" in describe_mapping("abt", "ab")
    with pytest.raises(af.ConfigError):
        label_space("abc")
    assert set(LABEL_SPACES) == {"ab", "abt", "abtx"}


# -- dataset ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ab", "abtx"])
def test_a_dataset_carries_the_space_of_its_labels(tmp_path, name):
    path = _build(_rows(name), tmp_path, name, swap=True)
    manifest = _manifest(path)
    assert manifest["label_space"] == name and manifest["label_mapping"] == []
    assert manifest["inputs"][0]["label_space"] == name
    data = load_dataset(path)
    assert data.space.name == name and data.labels.shape[1] == WIDTH[name]
    # The swapped rows exchange A and B and keep tie / both_bad.
    np.testing.assert_array_equal(data.labels[1::2], data.space.swap_labels(data.labels[0::2]))
    if name == "abtx":
        assert manifest["counts"]["labels"]["both_bad"] == 6
        assert (data.label == 3).sum() == 12  # both orders
    hf = data.to_hf()
    assert len(hf[0]["labels"]) == WIDTH[name]


def test_build_maps_explicitly_and_counts_what_it_drops(tmp_path):
    rows = _rows("abtx")
    mapped = _build(rows, tmp_path, "to_ab", label_space="ab")
    m = _manifest(mapped)
    assert m["label_space"] == "ab"
    assert m["label_mapping"] == [describe_mapping("abtx", "ab")]
    assert m["counts"]["dropped"] == {"label_space": 12}  # the tie and both_bad rows
    assert m["counts"]["labels"] == {"a": 12, "b": 12}
    dropped = pl.read_parquet(mapped / "dropped.parquet")
    assert set(dropped["reason"]) == {"label_space"}
    merged = _build(rows, tmp_path, "to_abt", label_space="abt")
    assert _manifest(merged)["counts"]["labels"] == {"a": 12, "b": 12, "tie": 12}
    with pytest.raises(af.ConfigError, match="'ab' cannot become 'abt'"):
        _build(_rows("ab"), tmp_path, "wider", label_space="abt")


def test_inputs_of_two_spaces_are_refused_unless_mapped(tmp_path):
    _rows("abt").write_parquet(tmp_path / "three.parquet")
    _rows("abtx", seed=1).write_parquet(tmp_path / "four.parquet")
    inputs = [f"{tmp_path / 'three.parquet'}:canonical", f"{tmp_path / 'four.parquet'}:canonical"]
    with pytest.raises(af.ConfigError, match="label space 'abtx'.*'abt'.*--label-space"):
        build_dataset(BuildConfig(inputs=inputs, max_length=128), tmp_path / "mixed")
    build_dataset(BuildConfig(inputs=inputs, max_length=128, label_space="abt"), tmp_path / "ok")
    m = _manifest(tmp_path / "ok")
    assert [i["label_space"] for i in m["inputs"]] == ["abt", "abtx"]
    assert m["label_mapping"] == [describe_mapping("abtx", "abt")]


def test_an_old_manifest_reads_as_abt(tmp_path):
    path = _build(_rows("abt"), tmp_path, "old")
    manifest = _manifest(path)
    for key in ("label_space", "label_mapping"):
        del manifest[key]
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert load_dataset(path).space.name == "abt"
    manifest["label_space"] = "xyz"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(af.InputError, match="label_space"):
        load_dataset(path)


# -- losses, head, diagnostics, submissions ------------------------------------------
@pytest.mark.parametrize("k", [2, 4])
def test_losses_take_k_classes(k):
    torch = pytest.importorskip("torch")
    from arena_fast import losses

    logits = torch.zeros((3, k))
    labels = torch.eye(k)[[0, 1, k - 1]]
    assert math.isclose(float(losses.cross_entropy(logits, labels)), math.log(k), rel_tol=1e-6)
    teacher = torch.zeros((3, 2, k))
    assert float(losses.distillation_loss(logits, labels, teacher)) == pytest.approx(
        math.log(k) / 5, rel=1e-5
    )
    with pytest.raises(ValueError, match=f"teachers, {k}"):
        losses.distillation_loss(logits, labels, torch.zeros((3, 1, 3 if k != 3 else 2)))


def test_diagnostics_of_k_classes():
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    labels = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
    s = summarize(prediction_frame(["a", "b"], probs, labels=labels))
    assert s["label_space"] == "abtx" and s["accuracy"] == 0.5
    assert s["confusion"] == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert "a, b, tie, both_bad" in format_summary(s)
    two = summarize(prediction_frame(["a"], [[0.2, 0.8]], labels=[[0.0, 1.0]]))
    assert two["label_space"] == "ab" and two["accuracy"] == 1.0


def test_submissions_kaggle_and_wsdm(tmp_path):
    ids = ["x", "y"]
    abt = np.array([[0.5, 0.2, 0.3], [0.1, 0.3, 0.6]])
    with pytest.raises(af.ConfigError, match="--map-labels"):
        write_submission(tmp_path / "w.csv", ids, abt, "abt", format="wsdm")
    write_submission(tmp_path / "w.csv", ids, abt, "abt", format="wsdm", map_labels=True)
    assert (tmp_path / "w.csv").read_text() == 'id,winner\n"x","model_a"\n"y","model_b"\n'
    write_submission(tmp_path / "k.csv", ids, abt)
    assert pl.read_csv(tmp_path / "k.csv").columns[1:] == list(label_space("abt").columns)
    with pytest.raises(af.ConfigError, match="no tie class"):
        write_submission(tmp_path / "k2.csv", ids, abt[:, :2], "ab", map_labels=True)
    abtx = np.array([[0.1, 0.2, 0.3, 0.4]])
    write_submission(tmp_path / "k4.csv", ["z"], abtx, "abtx", map_labels=True)
    np.testing.assert_allclose(pl.read_csv(tmp_path / "k4.csv").row(0)[1:], [0.1, 0.2, 0.7])


# -- train, predict, outputs --------------------------------------------------------------
def _swapped(rows: pl.DataFrame, k: int) -> pl.DataFrame:
    order = [1, 0, *range(2, k)]
    return rows.with_columns(
        pl.col("response_b").alias("response_a"),
        pl.col("response_a").alias("response_b"),
        pl.col("labels").list.gather(order).alias("labels"),
    ).drop("teacher_logits", strict=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ab", "abtx"])
def test_each_space_trains_predicts_and_submits(tmp_path, name):
    torch = pytest.importorskip("torch")
    from arena_fast.cli import main
    from arena_fast.predict import Judge, predict
    from arena_fast.train import TrainConfig, train

    torch.set_num_threads(1)
    k = WIDTH[name]
    rows = _rows(name, n=48)
    if name == "abtx":  # distillation from one teacher of 4 logits
        teachers = np.random.default_rng(1).normal(size=(len(rows), 1, k)).tolist()
        rows = rows.with_columns(
            pl.Series("teacher_logits", teachers, dtype=pl.List(pl.List(pl.Float64)))
        )
    data = _build(rows, tmp_path, "data", swap=True, folds=2)
    flipped = _build(_swapped(rows, k), tmp_path, "flipped", swap=True, folds=2)
    run = tmp_path / "run"
    train(
        TrainConfig(
            data=str(data), fold=0, epochs=1, lr=3e-3, max_tokens=2048, max_steps=3, out=str(run)
        )
    )
    bundle = json.loads((run / "bundle.json").read_text())
    assert bundle["label_space"] == name and bundle["labels"] == list(label_space(name).columns)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("accuracy" in r for r in metrics)
    out = predict(run, data, split="all", max_rows=1)
    assert out["probs"].shape == (len(out["ids"]), k) and out["label_space"] == name
    np.testing.assert_allclose(out["probs"].sum(axis=1), 1.0, atol=1e-12)
    # Swap TTA: the flipped data's prediction, mapped back, is the same numbers.
    other = predict(run, flipped, max_rows=1)
    np.testing.assert_array_equal(out["probs"], label_space(name).swap_labels(other["probs"]))
    verdict = Judge(run).compare("question river", "stone zebra", "cloud")
    assert verdict["verdict"] in label_space(name).verdicts
    args = ["predict", "--run", str(run), "--data", str(data), "--split", "all"]
    wsdm, kaggle = tmp_path / "wsdm.csv", tmp_path / "kaggle.csv"
    if name == "ab":
        assert main([*args, "--out", str(wsdm), "--format", "wsdm"]) == 0
        assert main([*args, "--out", str(kaggle)]) == 1  # ab has no tie to give Kaggle
    else:
        assert main([*args, "--out", str(wsdm), "--format", "wsdm"]) == 1  # needs --map-labels
        assert not wsdm.exists()
        assert main([*args, "--out", str(wsdm), "--format", "wsdm", "--map-labels"]) == 0
        assert main([*args, "--out", str(kaggle), "--map-labels"]) == 0
        sub = pl.read_csv(kaggle)
        assert sub.columns == ["id", *label_space("abt").columns]
        np.testing.assert_allclose(sub.select(sub.columns[1:]).sum_horizontal(), 1.0)
    sub = pl.read_csv(wsdm, schema_overrides={"id": pl.String})
    assert sub.columns == ["id", "winner"] and set(sub["winner"]) <= {"model_a", "model_b"}
    ab = out["probs"][:, :2]
    expected = np.where(ab[:, 1] > ab[:, 0], "model_b", "model_a")
    wsdm_ids = sub["id"].to_list()
    assert wsdm_ids == [str(i) for i in out["ids"]] and sub["winner"].to_list() == list(expected)
    # The held-out table, its summary and the report are of K classes.
    held = read_predictions(run / "valid_predictions.parquet")
    assert held.schema["probs"] == pl.Array(pl.Float64, k)
    summary = summarize(held)
    assert summary["label_space"] == name and len(summary["confusion"]) == k
    if name == "abtx":
        from arena_fast.report import write_report

        page = write_report([run]).read_text(encoding="utf-8")
        assert "chance" in page or "confusion" in page
    # Data of another space is refused, naming both.
    abt = _build(_rows("abt", n=12), tmp_path, "abt", swap=True)
    with pytest.raises(af.ConfigError, match=f"label space 'abt'.*'{name}'"):
        predict(run, abt)


@pytest.mark.slow
def test_an_old_bundle_reads_as_abt(tmp_path):
    pytest.importorskip("torch")
    from arena_fast.predict import predict
    from arena_fast.runs import bundle_space
    from arena_fast.train import TrainConfig, train

    data = _build(_rows("abt", n=12), tmp_path, "data", swap=True)
    run = tmp_path / "run"
    train(TrainConfig(data=str(data), epochs=1, max_tokens=2048, max_steps=1, out=str(run)))
    bundle = json.loads((run / "bundle.json").read_text())
    del bundle["label_space"]  # a bundle written before label spaces
    (run / "bundle.json").write_text(json.dumps(bundle))
    assert bundle_space(bundle).name == "abt"
    assert predict(run, data, max_rows=1)["probs"].shape[1] == 3
    bundle["label_space"] = "ab"  # labels that are not the space's columns
    with pytest.raises(af.ConfigError, match="not the columns of label space 'ab'"):
        bundle_space(bundle)


def test_build_dataset_cli_names_the_space_and_the_mapping(tmp_path, capsys):
    from arena_fast.cli import main

    _rows("abt").write_parquet(tmp_path / "rows.parquet")
    args = ["build-dataset", "--input", f"{tmp_path / 'rows.parquet'}:canonical"]
    assert main([*args, "--out", str(tmp_path / "ds"), "--label-space", "ab"]) == 0
    out = capsys.readouterr().out
    assert "label space" in out and "abt -> ab: renormalise A and B" in out
    assert "dropped: label_space" in out
    assert _manifest(tmp_path / "ds")["label_space"] == "ab"
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main([*args, "--out", str(tmp_path / "x"), "--label-space", "abc"])


def test_unlabelled_rows_take_the_builds_space(tmp_path):
    test_rows = _rows("abt", n=6, seed=3).with_columns(
        pl.lit(None, dtype=pl.List(pl.Float64)).alias("labels"),
        (pl.col("id") + "t").alias("id"),
    )
    test_rows.write_parquet(tmp_path / "test.parquet")
    _rows("ab").write_parquet(tmp_path / "train.parquet")
    inputs = [f"{tmp_path / n}.parquet:canonical" for n in ("test", "train")]
    # The unlabelled input comes first: its rows are written at the width of
    # the space the labelled input decides.
    build_dataset(BuildConfig(inputs=inputs, max_length=128), tmp_path / "ds")
    data = load_dataset(tmp_path / "ds")
    assert data.space.name == "ab" and data.labels.shape[1] == 2
    assert (~data.labelled).sum() == 6 and np.isnan(data.labels[~data.labelled]).all()
    m = _manifest(tmp_path / "ds")
    assert [i["label_space"] for i in m["inputs"]] == [None, "ab"]
    assert m["counts"]["labels"]["unlabelled"] == 6
    # Test data alone, mapped to the space of the run that will predict it.
    build_dataset(
        BuildConfig(inputs=inputs[:1], max_length=128, label_space="ab"), tmp_path / "test"
    )
    assert load_dataset(tmp_path / "test").space.name == "ab"


def test_teacher_logits_map_with_the_labels(tmp_path):
    rows = _rows("abtx", n=12)
    rng = np.random.default_rng(0)
    teachers = rng.normal(size=(len(rows), 1, 4))
    rows = rows.with_columns(
        pl.Series("teacher_logits", teachers.tolist(), dtype=pl.List(pl.List(pl.Float64)))
    )
    data = load_dataset(_build(rows, tmp_path, "four"))
    np.testing.assert_allclose(np.asarray(data.teacher_logits), teachers, rtol=1e-6)
    data = load_dataset(_build(rows, tmp_path, "three", label_space="abt"))
    np.testing.assert_allclose(
        np.asarray(data.teacher_logits), map_logits(teachers, "abtx", "abt"), rtol=1e-6
    )
    with pytest.raises(af.InputError, match="not a list of rows of 4 numbers"):
        # Another width than the labels' is a bad row in every row: nothing is left.
        bad = rows.with_columns(
            pl.Series(
                "teacher_logits", teachers[:, :, :3].tolist(), dtype=pl.List(pl.List(pl.Float64))
            )
        )
        _build(bad, tmp_path, "bad")
