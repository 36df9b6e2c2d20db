"""`af.merge.merge_runs` and `arena-fast merge-adapters`: fold runs averaged
key by key into a run that loads and predicts like a trained one."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")
train_extra("peft")

from safetensors.torch import load_file, save_file  # noqa: E402

from arena_fast.collate import collate_padded  # noqa: E402
from arena_fast.dataset import BuildConfig, build_dataset, file_sha256, load_dataset  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.merge import merge_runs  # noqa: E402
from arena_fast.predict import load_run, predict  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import keyword_rows  # noqa: E402

TENSORS = ("decoder.safetensors", "head.safetensors")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset and two LoRA runs of one seed on different folds."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("merge")
    keyword_rows(120, 0, answer_words=(3, 8), prompt_words=3).write_parquet(root / "rows.parquet")
    build_dataset(
        BuildConfig(
            inputs=[f"{root / 'rows.parquet'}:canonical"], max_length=128, folds=4, swap=True
        ),
        root / "ds",
    )
    runs = []
    for fold in (0, 1):
        out = root / f"run{fold}"
        train(
            TrainConfig(
                data=str(root / "ds"),
                fold=fold,
                model="tiny-gemma2",
                lora_r=4,
                lr=3e-3,
                max_tokens=1024,
                max_steps=3,
                out=str(out),
            )
        )
        runs.append(out)
    return {"data": root / "ds", "runs": runs}


def _tensors(run) -> dict:
    return {name: load_file(str(run / name)) for name in TENSORS}


def _rehash(run) -> None:
    """Make bundle.json match the files again, as if the run had been written so."""
    bundle = json.loads((run / "bundle.json").read_text())
    bundle["files"] = {name: file_sha256(run / name) for name in bundle["files"]}
    (run / "bundle.json").write_text(json.dumps(bundle))


def _edit_config(src, dst, **changes):
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    _rehash(dst)
    return dst


def _logits(run, data, rows: int = 24) -> np.ndarray:
    """The logits of one padded batch of the dataset's first rows."""
    ds = load_dataset(data)
    model, _ = load_run(run, tokenizer=ds.tokenizer())
    batch = collate_padded(ds.encoded, np.arange(rows), pad_id=0, side="right")
    with torch.no_grad():
        return model(batch).double().numpy()


def test_identical_runs_average_to_the_same_tensors(trained, tmp_path):
    torch.set_num_threads(1)
    a = trained["runs"][0]
    copies = [a]
    for i in range(2):
        shutil.copytree(a, tmp_path / f"copy{i}")
        copies.append(tmp_path / f"copy{i}")
    result = merge_runs(copies, tmp_path / "merged")
    assert result["runs"] == 3 and result["lora_r"] == 4
    assert result["weights"] == pytest.approx([1 / 3] * 3)
    want, got = _tensors(a), _tensors(tmp_path / "merged")
    assert any("lora_A" in k for k in got["decoder.safetensors"])
    for name in TENSORS:
        assert want[name].keys() == got[name].keys()
        for key, value in want[name].items():
            assert got[name][key].dtype == value.dtype
            assert torch.equal(got[name][key], value), (name, key)
    merged = json.loads((tmp_path / "merged" / "merged.json").read_text())
    assert [s["run"] for s in merged["sources"]] == [str(p) for p in copies]
    assert merged["sources"][0]["bundle_sha256"] == file_sha256(a / "bundle.json")
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config["fold"] == 0 and config["lora_r"] == 4  # one fold: kept


def test_two_runs_average_to_their_mean(trained, tmp_path):
    torch.set_num_threads(1)
    a, b = trained["runs"]
    ta, tb = _tensors(a)["decoder.safetensors"], _tensors(b)["decoder.safetensors"]
    key = next(k for k in sorted(ta) if "lora_B" in k and "q_proj" in k)
    assert not torch.equal(ta[key], tb[key])  # the folds trained differently
    merge_runs([a, b], tmp_path / "mean")
    got = load_file(str(tmp_path / "mean" / "decoder.safetensors"))[key]
    mean = ((ta[key].double() + tb[key].double()) / 2).float()
    assert torch.equal(got, mean)
    head = load_file(str(tmp_path / "mean" / "head.safetensors"))["weight"]
    ha, hb = _tensors(a)["head.safetensors"]["weight"], _tensors(b)["head.safetensors"]["weight"]
    torch.testing.assert_close(head, (ha + hb) / 2, rtol=0, atol=1e-7)
    merge_runs([a, b], tmp_path / "weighted", weights=[3, 1])
    got = load_file(str(tmp_path / "weighted" / "decoder.safetensors"))[key]
    torch.testing.assert_close(got, 0.75 * ta[key] + 0.25 * tb[key], rtol=1e-6, atol=1e-8)
    merged = json.loads((tmp_path / "weighted" / "merged.json").read_text())
    assert [s["weight"] for s in merged["sources"]] == [0.75, 0.25]
    assert [s["fold"] for s in merged["sources"]] == [0, 1]
    # Two folds: no fold of the merge is held out.
    assert json.loads((tmp_path / "mean" / "config.json").read_text())["fold"] is None
    with pytest.raises(ConfigError, match="weights"):
        merge_runs([a, b], tmp_path / "bad", weights=[1])
    with pytest.raises(ConfigError, match="non-negative"):
        merge_runs([a, b], tmp_path / "bad", weights=[1, -1])


def test_merged_run_loads_and_predicts(trained, tmp_path):
    torch.set_num_threads(1)
    a, b = trained["runs"]
    merge_runs([a, b], tmp_path / "mean")
    result = predict(tmp_path / "mean", trained["data"])
    assert result["probs"].shape == (120, 3)
    np.testing.assert_allclose(result["probs"].sum(axis=1), 1.0, atol=1e-9)
    # Its predictions are its own: neither source's.
    for run in (a, b):
        theirs = predict(run, trained["data"], split="all")["logits"]
        assert not np.allclose(theirs, result["logits"])


def test_merge_into_base_gives_the_adapter_logits(trained, tmp_path):
    torch.set_num_threads(1)
    a, b = trained["runs"]
    merge_runs([a, b], tmp_path / "adapter")
    result = merge_runs([a, b], tmp_path / "base", merge_into_base=True)
    assert result["merged_into_base"] and result["lora_r"] == 0
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    assert config["lora_r"] == 0
    weights = load_file(str(tmp_path / "base" / "decoder.safetensors"))
    assert weights and not any("lora" in k for k in weights)
    assert any(k.endswith("embed_tokens.weight") for k in weights)
    np.testing.assert_allclose(
        _logits(tmp_path / "base", trained["data"]),
        _logits(tmp_path / "adapter", trained["data"]),
        atol=1e-5,
        rtol=0,
    )
    assert json.loads((tmp_path / "base" / "merged.json").read_text())["merged_into_base"]
    # A run without LoRA averages too (every weight), bit for bit when identical;
    # it has no adapter to merge.
    shutil.copytree(tmp_path / "base", tmp_path / "base2")
    merge_runs([tmp_path / "base", tmp_path / "base2"], tmp_path / "full")
    for key, value in load_file(str(tmp_path / "full" / "decoder.safetensors")).items():
        assert torch.equal(value, weights[key]), key
    with pytest.raises(ConfigError, match="without LoRA"):
        merge_runs([tmp_path / "base"], tmp_path / "again", merge_into_base=True)


@pytest.mark.parametrize("field, value", [("seed", 7), ("lora_r", 8), ("head", "mlp")])
def test_runs_of_another_architecture_are_refused(trained, tmp_path, field, value):
    a = trained["runs"][0]
    other = _edit_config(a, tmp_path / "other", **{field: value})
    with pytest.raises(ConfigError, match=re.escape(f"{other}: config.json {field} = ")):
        merge_runs([a, other], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_runs_of_another_tokenizer_or_tensors_are_refused(trained, tmp_path):
    a = trained["runs"][0]
    other = shutil.copytree(a, tmp_path / "tok")
    bundle = json.loads((other / "bundle.json").read_text())
    bundle["tokenizer_sha256"] = "0" * 64
    (other / "bundle.json").write_text(json.dumps(bundle))
    with pytest.raises(ConfigError, match="tokenizer_sha256 differs"):
        merge_runs([a, other], tmp_path / "merged")

    missing = shutil.copytree(a, tmp_path / "missing")
    tensors = load_file(str(missing / "decoder.safetensors"))
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, str(missing / "decoder.safetensors"))
    _rehash(missing)
    with pytest.raises(ConfigError, match=f"has no tensor '{dropped}'"):
        merge_runs([a, missing], tmp_path / "merged")

    shaped = shutil.copytree(a, tmp_path / "shaped")
    head = load_file(str(shaped / "head.safetensors"))
    head["bias"] = torch.zeros(4)
    save_file(head, str(shaped / "head.safetensors"))
    _rehash(shaped)
    with pytest.raises(ConfigError, match="tensor 'bias' has shape"):
        merge_runs([a, shaped], tmp_path / "merged")
    # Nothing is left behind by a merge that failed half way.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_changed_files_and_bad_outputs_are_refused(trained, tmp_path):
    a = trained["runs"][0]
    tampered = shutil.copytree(a, tmp_path / "tampered")
    head = load_file(str(tampered / "head.safetensors"))
    head["bias"] = head["bias"] + 1
    save_file(head, str(tampered / "head.safetensors"))
    with pytest.raises(ConfigError, match="sha256 differs"):
        merge_runs([a, tampered], tmp_path / "merged")
    with pytest.raises(ConfigError, match="not a finished training run"):
        merge_runs([a, trained["data"]], tmp_path / "merged")
    with pytest.raises(ConfigError, match="one of the runs"):
        merge_runs([a], a, overwrite=True)
    with pytest.raises(ConfigError, match="at least one run"):
        merge_runs([], tmp_path / "merged")


def test_cli_merge_adapters(trained, tmp_path, capsys):
    from arena_fast.cli import main

    torch.set_num_threads(1)
    a, b = (str(r) for r in trained["runs"])
    out = tmp_path / "merged"
    assert main(["merge-adapters", a, b, "--out", str(out), "--weights", "1", "3"]) == 0
    err = capsys.readouterr().err
    assert "2 runs averaged" in err and "0.25, 0.75" in err and str(out) in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "bundle.json").is_file()

    def fails(*argv: str, message: str) -> None:
        assert main(["merge-adapters", *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("arena-fast merge-adapters: error:")
        assert message in err

    fails(a, b, "--out", str(out), message="already exists")
    fails(a, str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), message="not a training run")
    fails(a, b, "--out", str(tmp_path / "x"), "--weights", "1", message="one per run")
    assert main(["merge-adapters", a, b, "--out", str(out), "--overwrite", "--merge"]) == 0
    assert "merged into the base weights" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["lora_r"] == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
