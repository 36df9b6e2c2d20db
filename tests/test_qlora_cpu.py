"""QLoRA (4-bit) and 8-bit on the CPU with bitsandbytes' CPU backend, on the
tiny presets: training lowers the loss, a run predicts what its own held-out
evaluation scored, and merge-adapters folds a QLoRA adapter into the
de-quantised base."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")
train_extra("peft")
bnb = train_extra("bitsandbytes")

from packaging.version import Version  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import arena_fast as af  # noqa: E402
from arena_fast.diagnostics import read_predictions  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.merge import merge_runs  # noqa: E402
from arena_fast.model import TINY, load_classifier  # noqa: E402
from arena_fast.predict import load_run, predict  # noqa: E402
from arena_fast.torch.quant import BNB_MIN_VERSION, dequantized_weight  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if Version(bnb.__version__) < Version(BNB_MIN_VERSION[DEVICE]):
    pytest.skip(
        f"bitsandbytes {bnb.__version__} has no {DEVICE} backend "
        f"(needs >= {BNB_MIN_VERSION[DEVICE]})",
        allow_module_level=True,
    )

LAYERS = {"4bit": bnb.nn.Linear4bit, "8bit": bnb.nn.Linear8bitLt}
# A merged 4-bit run computes with the de-quantised weights in float32 on
# the CPU (float rounding apart); on CUDA both models compute in bfloat16.
MERGE_ATOL = 1e-4 if DEVICE == "cpu" else 5e-2


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A keyword dataset and a QLoRA run of each quantisation on tiny-llama,
    evaluated during training (so training resumes after an evaluation)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("qlora")
    build_rows(
        keyword_rows(240, 0, answer_words=(3, 8), prompt_words=3),
        root,
        max_length=96,
        folds=4,
        swap=True,
    )
    out = {"data": root / "ds"}
    for quantization, steps in (("4bit", 48), ("8bit", 4)):
        logs: list = []
        result = train(
            TrainConfig(
                data=str(root / "ds"),
                model="tiny-llama",
                quantization=quantization,
                lora_r=8,
                lora_dropout=0.0,
                lr=5e-3,
                max_tokens=2048,
                epochs=3,
                max_steps=steps,
                eval_every=steps // 2,
                save="last",
                log_every=1,
                out=str(root / quantization),
            ),
            log=logs.append,
        )
        out[quantization] = {"run": root / quantization, "logs": logs, "result": result}
    return out


def test_qlora_training_lowers_the_loss(runs):
    run = runs["4bit"]
    losses = [r["loss"] for r in run["logs"] if "loss" in r and not r.get("eval")]
    assert len(losses) == 48
    assert np.mean(losses[-8:]) < np.mean(losses[:8]) - 0.3, losses
    # And the held-out fold learns the rule (chance: ln 3 = 1.0986; lr 5e-3
    # gets there on every seed tried, a larger one not always).
    evals = [r["log_loss"] for r in run["logs"] if r.get("eval")]
    assert len(evals) >= 2 and evals[-1] < min(evals[0], np.log(3)) - 0.2, evals
    # The run stores its adapter only (the base is re-quantised on load).
    saved = load_file(str(run["run"] / "decoder.safetensors"))
    assert saved and all("lora_" in name for name in saved), sorted(saved)[:3]
    assert all(t.dtype == torch.float32 for t in saved.values())


@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_predict_equals_the_runs_held_out_evaluation(runs, quantization):
    run = runs[quantization]["run"]
    model, config = load_run(run)
    assert config.quantization == quantization
    layers = [m for m in model.decoder.modules() if isinstance(m, LAYERS[quantization])]
    assert len(layers) == 14  # 7 linear layers in each of 2 blocks, quantised
    assert all(p.dtype == torch.float32 for p in model.head.parameters())
    result = predict(run, runs["data"])
    probs = np.asarray(result["probs"])
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1.0)
    # What the run scored on its held-out fold during training, row by row.
    table = read_predictions(run / "valid_predictions.parquet")
    assert table["id"].to_list() == result["ids"]
    np.testing.assert_allclose(probs, table["probs"].to_numpy(), atol=1e-6)


def _logits(run, data) -> np.ndarray:
    return np.asarray(predict(run, data, tta=False)["logits"])


def test_merge_of_a_qlora_run(runs, tmp_path):
    run, data = runs["4bit"]["run"], runs["data"]
    source = _logits(run, data)
    # Averaged without --merge: the adapter is kept and predicts as the run.
    kept = merge_runs([run], tmp_path / "kept")
    assert kept["lora_r"] == 8
    np.testing.assert_allclose(_logits(tmp_path / "kept", data), source, atol=1e-6)
    # Merged into the base: the de-quantised weights plus the adapter, a
    # float model (no bitsandbytes layer, no LoRA) whose logits differ from
    # the 4-bit run's by float rounding only.
    merged = merge_runs([run], tmp_path / "merged", merge_into_base=True)
    assert merged["merged_into_base"] and merged["lora_r"] == 0
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config["lora_r"] == 0 and config["quantization"] is None
    provenance = json.loads((tmp_path / "merged" / "merged.json").read_text())
    assert provenance["dequantized"] == "4bit"
    model, _ = load_run(tmp_path / "merged")
    assert not any(isinstance(m, tuple(LAYERS.values())) for m in model.modules())
    # The merged weights are not the float base's: the adapter was folded
    # into the de-quantised weights the run trained on.
    plain = load_classifier("tiny-llama", tokenizer=None)
    name = "layers.0.self_attn.q_proj.weight"
    merged_w = dict(model.decoder.named_parameters())[name]
    assert not torch.allclose(merged_w, dict(plain.decoder.named_parameters())[name])
    np.testing.assert_allclose(_logits(tmp_path / "merged", data), source, atol=MERGE_ATOL)


def test_merge_of_an_8bit_run_is_close(runs, tmp_path):
    """8-bit matmuls also quantise the activations: the merged float model
    differs from the 8-bit run by that quantisation error, no more."""
    run, data = runs["8bit"]["run"], runs["data"]
    merge_runs([run], tmp_path / "merged", merge_into_base=True)
    source, merged = _logits(run, data), _logits(tmp_path / "merged", data)
    assert np.abs(merged - source).max() < 0.05 * max(1.0, np.abs(source).max())


def test_dequantized_weight_is_what_the_4bit_layer_computes_with():
    torch.manual_seed(0)
    model = load_classifier("tiny-llama", quantization="4bit", attn_implementation="sdpa")
    layer = model.decoder.layers[0].mlp.up_proj
    assert isinstance(layer, bnb.nn.Linear4bit)
    x = torch.randn(5, layer.in_features)
    weight = dequantized_weight(layer)
    assert dequantized_weight(model.head) is None
    with torch.no_grad():
        layer.eval()
        torch.testing.assert_close(layer(x), x @ weight.T, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_every_tiny_preset_quantises(name, quantization):
    """Every preset quantises its linear layers, packs and pads alike and
    trains its adapters."""
    model = load_classifier(name, lora={"r": 4, "dropout": 0.0}, quantization=quantization)
    assert any(isinstance(m, LAYERS[quantization]) for m in model.decoder.modules())
    rows = af.Encoded.from_lists([list(range(1, 13)), list(range(5, 25))])
    idx = np.arange(2)
    model.eval()
    with torch.no_grad():
        packed = model(af.collate_packed(rows, idx))
        padded = model(af.collate_padded(rows, idx, pad_id=0))
    torch.testing.assert_close(packed, padded, atol=1e-4, rtol=1e-4)
    model.train()
    model(af.collate_packed(rows, idx)).sum().backward()
    grads = [p.grad for n, p in model.trainable_parameters() if "lora_A" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_quantization_is_refused_clearly(monkeypatch):
    need = BNB_MIN_VERSION[DEVICE]
    monkeypatch.setattr(bnb, "__version__", "0.42.0")
    with pytest.raises(ConfigError, match=rf"needs bitsandbytes >= {need}; bitsandbytes 0\.42\.0"):
        load_classifier("tiny-llama", quantization="4bit")
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # not installed
    with pytest.raises(ConfigError, match=rf"needs bitsandbytes >= {need}.*not installed"):
        load_classifier("tiny-llama", quantization="8bit")
    with pytest.raises(ConfigError, match="lora_r > 0"):
        TrainConfig(data="ds", quantization="4bit", lora_r=0).validate()


@pytest.mark.gpu
def test_qlora_on_cuda_computes_in_bfloat16():
    """bitsandbytes on CUDA: the 4-bit layers sit on the GPU and compute in
    bfloat16; a backward pass reaches every adapter."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: bitsandbytes 4-bit quantisation on CUDA")
    model = load_classifier("tiny-llama", lora={"r": 4, "dropout": 0.0}, quantization="4bit")
    layers = [m for m in model.decoder.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.weight.device.type == "cuda" for m in layers)
    assert all(m.compute_dtype == torch.bfloat16 for m in layers)
    assert next(model.head.parameters()).device.type == "cuda"
    rows = af.Encoded.from_lists([list(range(1, 13)), list(range(5, 25))])
    model(af.collate_padded(rows, np.arange(2), pad_id=0)).float().sum().backward()
    grads = [p.grad for n, p in model.trainable_parameters() if "lora_B" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
