"""Portable runs (issue 15, point 1): a run records its base model by
identity (`af.base_model`), so a run folder copied anywhere, read-only too,
predicts with the base model wherever it now is (`--base-model`), and a
missing or different base model is a clear ConfigError."""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")
train_extra("peft")

from arena_fast.base_model import weights_fingerprint  # noqa: E402
from arena_fast.cli import main  # noqa: E402
from arena_fast.dataset import BuildConfig, build_dataset, file_sha256, load_dataset  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.labels import VERDICTS  # noqa: E402
from arena_fast.merge import merge_runs  # noqa: E402
from arena_fast.model import load_classifier  # noqa: E402
from arena_fast.predict import Judge, load_run, predict  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import keyword_rows  # noqa: E402

pytestmark = pytest.mark.slow


def _save_base(name: str, tokenizer, folder, seed: int = 0):
    """A preset's decoder saved with `save_pretrained`: a local model folder."""
    model = load_classifier(name, tokenizer=tokenizer, seed=seed)
    model.decoder.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset, a local model folder `base` (tiny-gemma2 saved) and a LoRA
    run trained on it, with `--model base` typed relative to the working
    directory (as the issue's user did), and the run's predictions."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("portable")
    keyword_rows(80, 0, answer_words=(3, 8), prompt_words=3).write_parquet(root / "rows.parquet")
    build_dataset(
        BuildConfig(
            inputs=[f"{root / 'rows.parquet'}:canonical"], max_length=128, folds=4, swap=True
        ),
        root / "ds",
    )
    tokenizer = load_dataset(root / "ds").tokenizer()
    _save_base("tiny-gemma2", tokenizer, root / "base")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        train(
            TrainConfig(
                data="ds",
                fold=0,
                model="base",
                lora_r=4,
                lr=3e-3,
                max_tokens=1024,
                max_steps=2,
                out="run",
            )
        )
        probs = predict("run", "ds")["probs"]
    finally:
        os.chdir(cwd)
    return {
        "root": root,
        "data": root / "ds",
        "run": root / "run",
        "probs": probs,
        "tok": tokenizer,
    }


def _snapshot(folder) -> dict:
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _read_only(folder) -> None:
    for p in folder.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)


def _writable(folder) -> None:
    folder.chmod(stat.S_IRWXU)
    for p in folder.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.fixture()
def carried(trained, tmp_path, monkeypatch):
    """The run copied to another folder and made read-only, its base model
    moved away from where training found it, and the working directory
    elsewhere (a Kaggle notebook's read-only input)."""
    copy = tmp_path / "input" / "my-run"
    shutil.copytree(trained["run"], copy)
    moved = tmp_path / "models" / "gemma-base"
    moved.parent.mkdir()
    shutil.move(str(trained["root"] / "base"), str(moved))
    _read_only(copy)
    monkeypatch.chdir(tmp_path)
    yield {"run": copy, "base": moved}
    _writable(copy)
    shutil.move(str(moved), str(trained["root"] / "base"))


def test_the_bundle_records_the_base_model_by_identity(trained):
    bundle = json.loads((trained["run"] / "bundle.json").read_text())
    recorded = bundle["base_model"]
    base = trained["root"] / "base"
    assert recorded["name"] == "base" and recorded["preset"] is False
    assert recorded["path"] == str(base)
    assert recorded["config_sha256"] == file_sha256(base / "config.json")
    assert recorded["weights"] == {
        "model.safetensors": {
            "bytes": (base / "model.safetensors").stat().st_size,
            "sha256": weights_fingerprint(base / "model.safetensors"),
        }
    }
    # config.json keeps --model as typed.
    assert json.loads((trained["run"] / "config.json").read_text())["model"] == "base"


def test_a_copied_read_only_run_predicts_with_a_moved_base(trained, carried):
    before = _snapshot(carried["run"])
    out = predict(carried["run"], trained["data"], base_model=carried["base"])
    np.testing.assert_allclose(out["probs"], trained["probs"], atol=1e-6, rtol=0)
    assert _snapshot(carried["run"]) == before  # nothing written into the run
    with pytest.raises(ConfigError, match=r"base model base is not found .*pass --base-model"):
        predict(carried["run"], trained["data"])


def test_another_model_folder_is_refused_with_what_differs(trained, carried, tmp_path):
    llama = _save_base("tiny-llama", trained["tok"], tmp_path / "llama")
    with pytest.raises(ConfigError) as info:
        predict(carried["run"], trained["data"], base_model=llama)
    text = str(info.value)
    assert f"--base-model {llama} is not the model the run {carried['run']}" in text
    assert "was trained on" in text and "config sha256 differs" in text
    # The same architecture with other weights (another seed): the weights differ.
    other = _save_base("tiny-gemma2", trained["tok"], tmp_path / "seed1", seed=1)
    with pytest.raises(ConfigError, match=r"weights model\.safetensors differ"):
        predict(carried["run"], trained["data"], base_model=other)
    with pytest.raises(ConfigError, match=r"--base-model .*nowhere: not a model folder"):
        predict(carried["run"], trained["data"], base_model=tmp_path / "nowhere")


def test_the_recorded_path_is_tried_relative_to_the_run(trained, carried, tmp_path):
    # The base beside the run's files, under the name typed: found without --base-model.
    shutil.copytree(carried["base"], tmp_path / "bundle" / "base")
    shutil.copytree(carried["run"], tmp_path / "bundle", dirs_exist_ok=True)
    out = predict(tmp_path / "bundle", trained["data"])
    np.testing.assert_allclose(out["probs"], trained["probs"], atol=1e-6, rtol=0)


def test_the_base_at_its_training_path_is_found_from_another_directory(
    trained, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # "base" is not relative to here; the recorded path is
    out = predict(trained["run"], trained["data"])
    np.testing.assert_allclose(out["probs"], trained["probs"], atol=1e-6, rtol=0)


def test_cli_predict_compare_and_merge_take_base_model(trained, carried, tmp_path, capsys):
    run, base = str(carried["run"]), str(carried["base"])
    sub = tmp_path / "sub.csv"
    argv = ["predict", "--run", run, "--data", str(trained["data"]), "--out", str(sub)]
    assert main([*argv, "--base-model", base]) == 0
    assert sub.is_file()
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("arena-fast predict: error:") and "pass --base-model" in err
    assert "Traceback" not in err

    assert main(["compare", "--model", run, "--base-model", base, "q", "a", "b"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["verdict"] in VERDICTS

    merged = tmp_path / "merged"
    args = ["merge-adapters", run, run, "--out", str(merged), "--merge", "--base-model", base]
    assert main(args) == 0
    capsys.readouterr()
    # The merged run keeps the identity and follows the base the same way.
    assert json.loads((merged / "bundle.json").read_text())["base_model"]["name"] == "base"
    out = predict(merged, trained["data"], base_model=carried["base"])
    np.testing.assert_allclose(out["probs"], trained["probs"], atol=1e-5, rtol=0)


def test_judge_and_merge_refuse_another_base(trained, carried, tmp_path):
    llama = _save_base("tiny-llama", trained["tok"], tmp_path / "llama")
    with pytest.raises(ConfigError, match="not the model the run"):
        Judge(carried["run"], base_model=llama)
    with pytest.raises(ConfigError, match="not the model the run"):
        merge_runs([carried["run"]], tmp_path / "m", merge_into_base=True, base_model=llama)
    assert Judge(carried["run"], base_model=carried["base"]).compare("q", "a", "b")["verdict"]


def test_a_run_written_before_identities_still_loads(trained, carried, tmp_path):
    # An older bundle: no base_model (bundle.json is not among its own files).
    legacy = tmp_path / "legacy"
    shutil.copytree(carried["run"], legacy)
    _writable(legacy)
    bundle = json.loads((legacy / "bundle.json").read_text())
    del bundle["base_model"]
    (legacy / "bundle.json").write_text(json.dumps(bundle))
    # As before: config.json's model as given (relative to here, not found) ...
    with pytest.raises(ConfigError, match="not a model folder"):
        load_run(legacy, tokenizer=trained["tok"])
    # ... and --base-model locates it (unchecked: there is no identity to check).
    out = predict(legacy, trained["data"], base_model=carried["base"])
    np.testing.assert_allclose(out["probs"], trained["probs"], atol=1e-6, rtol=0)


def test_a_preset_run_is_identified_by_name(trained, tmp_path):
    out = tmp_path / "preset"
    train(
        TrainConfig(
            data=str(trained["data"]), fold=0, model="tiny-llama", max_steps=1, out=str(out)
        )
    )
    assert json.loads((out / "bundle.json").read_text())["base_model"] == {
        "name": "tiny-llama",
        "preset": True,
    }
    load_run(out, tokenizer=trained["tok"], base_model="tiny-llama")
    with pytest.raises(ConfigError, match="built-in tiny-llama .*needs no --base-model"):
        load_run(out, tokenizer=trained["tok"], base_model=tmp_path)


def test_the_weights_fingerprint_samples_a_large_file(tmp_path):
    big = tmp_path / "w.safetensors"
    data = bytearray(os.urandom(40 << 20))
    big.write_bytes(bytes(data))
    first = weights_fingerprint(big)
    data[-1] ^= 1  # the last block is sampled
    big.write_bytes(bytes(data))
    assert weights_fingerprint(big) != first
    data[-1] ^= 1
    data.append(0)  # the size is part of it
    big.write_bytes(bytes(data))
    assert weights_fingerprint(big) != first
