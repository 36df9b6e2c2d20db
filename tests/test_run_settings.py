"""Settings follow the run (issue 15, point 4): data encoded unlike the run
is refused naming each differing setting with both values, and data without
swapped rows for a run trained with swaps is refused unless TTA is turned
off explicitly."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.cli import main  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.runs import describe_differences  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402


def test_describe_differences_names_each_setting_with_both_values():
    run = {"max_length": 512, "strategy": "tail", "template": {"user": "U", "a": "A"}, "x": 1}
    data = {"max_length": 2048, "strategy": "tail", "template": {"user": "V", "a": "A"}}
    assert describe_differences(run, data) == [
        "max_length: run 512, data 2048",
        "template.user: run 'U', data 'V'",
        "x: run 1, data 'missing'",
    ]
    assert describe_differences(run, dict(run)) == []


@pytest.fixture(scope="module")
def swap_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("settings")
    rows = keyword_rows(40, 0)
    build_rows(rows, root, max_length=128, folds=2, swap=True)
    build_rows(rows, root, "plain", max_length=128, folds=2)
    build_rows(rows, root, "long", max_length=160, folds=2, swap=True)
    run = root / "run"
    train(TrainConfig(data=str(root / "ds"), epochs=1, max_steps=1, max_tokens=2048, out=str(run)))
    return root


def test_a_mismatch_names_the_setting_and_both_values(swap_run):
    from arena_fast.predict import predict

    with pytest.raises(ConfigError, match=r"max_length: run 128, data 160") as err:
        predict(swap_run / "run", swap_run / "long")
    assert "encoder settings" in str(err.value)
    assert "strategy" not in str(err.value)  # only the settings that differ


def test_no_swapped_rows_for_a_swap_trained_run_needs_no_tta(swap_run, capsys):
    from arena_fast.predict import predict

    with pytest.raises(ConfigError, match=r"--swap.*--no-tta"):
        predict(swap_run / "run", swap_run / "plain")
    out = predict(swap_run / "run", swap_run / "plain", tta=False)  # said explicitly
    assert "probs_swapped" not in out and len(out["ids"]) == 40
    # The swapped data predicts as before, with TTA.
    both = predict(swap_run / "run", swap_run / "ds", split="all")  # its own data: every row
    np.testing.assert_allclose(out["probs"], both["probs_original"], atol=1e-5)
    # The command says the same, without a traceback, and takes --no-tta.
    args = ["predict", "--run", str(swap_run / "run"), "--data", str(swap_run / "plain")]
    assert main([*args, "--out", str(swap_run / "a.csv")]) == 1
    err = capsys.readouterr().err
    assert "--no-tta" in err and "Traceback" not in err
    assert main([*args, "--out", str(swap_run / "b.csv"), "--no-tta"]) == 0


def test_build_dataset_like_a_run_takes_its_settings(swap_run):
    from arena_fast.dataset import read_manifest
    from arena_fast.predict import predict
    from arena_fast.runs import read_bundle

    run = swap_run / "run"
    source = f"{swap_run / 'ds.parquet'}:canonical"
    base = ["build-dataset", "--input", source, "--like", str(run), "--folds", "2", "--quiet"]
    assert main([*base, "--out", str(swap_run / "like")]) == 0
    manifest = read_manifest(swap_run / "like")
    bundle = read_bundle(run)
    assert manifest["encoder"] == bundle["encoder"] and manifest["swap"] is True
    assert manifest["tokenizer"]["sha256"] == bundle["tokenizer_sha256"]
    assert manifest["encoder"]["max_length"] == 128  # the run's, not the default
    both = predict(run, swap_run / "like")  # accepted, with TTA
    assert "probs_swapped" in both
    # Explicit flags override the run's settings.
    assert main([*base, "--out", str(swap_run / "like2"), "--max-length", "160", "--no-swap"]) == 0
    manifest = read_manifest(swap_run / "like2")
    assert manifest["encoder"]["max_length"] == 160 and manifest["swap"] is False
    assert manifest["encoder"]["template"] == bundle["encoder"]["template"]
    # --like brings the run's tokenizer: another one is refused, as is a missing run.
    args = [*base, "--out", str(swap_run / "like3"), "--tokenizer", "x.json"]
    assert main(args) == 1
    assert main([*base[:3], "--like", str(swap_run / "nope"), "--out", str(swap_run / "l4")]) == 1
