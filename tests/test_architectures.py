"""Every architecture family arena_fast presets (`af.model.TINY`: Gemma 2,
Gemma 3 text, Llama, Qwen 2, Qwen 3, Mistral, Phi-3), on the CPU with LoRA:
packed batches through `arena_varlen` give the logits of padded batches
through the model's stock attention; sliding windows, Gemma 3's query scale,
Qwen's biases and q/k norms are exercised, not skipped; a few steps lower
the loss; a trained run predicts and merges. An architecture arena_fast has
not checked gets padded batches (`packing_problem`), never packed ones."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
transformers = train_extra("transformers")
train_extra("peft")

import arena_fast as af  # noqa: E402
from arena_fast.base_model import PRESETS  # noqa: E402
from arena_fast.dataset import BuildConfig, build_dataset  # noqa: E402
from arena_fast.merge import merge_runs  # noqa: E402
from arena_fast.model import TINY, load_classifier, tiny_config  # noqa: E402
from arena_fast.predict import load_run, predict  # noqa: E402
from arena_fast.tokenizer import DEMO_DIR  # noqa: E402
from arena_fast.torch.attention import register, soft_cap  # noqa: E402
from arena_fast.torch.data import default_layout, resolve_layout  # noqa: E402
from arena_fast.torch.packed import PACKABLE, last_hidden, packing_problem  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from conftest import SHARED_DIR  # noqa: E402
from keyword_rows import keyword_rows  # noqa: E402

ATOL = 1e-5
LENGTHS = (5, 23, 9, 40, 14, 31)
# The real tokenizer of each family where ../shared has it (the ids the
# presets take, the vocabulary they are sized to); the demo one otherwise.
FAMILY_TOKENIZER = {
    "tiny-gemma2": "gemma3",
    "tiny-gemma3": "gemma3",
    "tiny-llama": "llama3",
    "tiny-qwen2": "qwen2_5",
    "tiny-qwen3": "qwen2_5",
}
# Windows short enough for LENGTHS to cross them (on the layers that have one).
WINDOWED = {
    "tiny-gemma2": dict(sliding_window=8),
    "tiny-gemma3": dict(sliding_window=8),
    "tiny-mistral": dict(sliding_window=8),
    "tiny-phi3": dict(sliding_window=8),
    # Qwen: the window on the layers from max_window_layers on.
    "tiny-qwen2": dict(use_sliding_window=True, sliding_window=8, max_window_layers=1),
    "tiny-qwen3": dict(use_sliding_window=True, sliding_window=8, max_window_layers=1),
}


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    """Every test of the module on one torch thread (conftest)."""


_TOKENIZERS: dict = {}


def _tokenizer(name: str) -> af.Tokenizer:
    family = FAMILY_TOKENIZER.get(name)
    path = SHARED_DIR / "tokenizers" / str(family)
    if family is None or not path.is_dir():
        return af.Tokenizer.demo()
    if family not in _TOKENIZERS:
        _TOKENIZERS[family] = af.Tokenizer.from_file(path)
    return _TOKENIZERS[family]


def _stock(name: str) -> str:
    """The model's own attention for padded batches (Gemma 2 has no sdpa)."""
    return "eager" if name == "tiny-gemma2" else "sdpa"


def _encoded(vocab: int) -> af.Encoded:
    rng = np.random.default_rng(3)
    return af.Encoded.from_lists([rng.integers(3, vocab, size=n).tolist() for n in LENGTHS])


def _perturb_lora(model) -> None:
    """peft starts LoRA B at zero; give it weights so the adapters matter."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _pair(name: str, tok) -> tuple:
    """(packed, stock): one LoRA classifier with `arena_varlen` and the same
    weights with the model's stock attention."""
    kw = dict(tokenizer=tok, lora={"r": 4, "dropout": 0.0}, seed=0)
    packed = load_classifier(name, attn_implementation="arena_varlen", **kw)
    _perturb_lora(packed)
    stock = load_classifier(name, attn_implementation=_stock(name), **kw)
    stock.load_state_dict(packed.state_dict())
    return packed.eval(), stock.eval()


def test_the_presets_are_the_families():
    assert tuple(TINY) == PRESETS
    assert set(PACKABLE) == {TINY[name]["model_type"] for name in PRESETS}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_is_sized_to_its_tokenizer(name):
    tok = _tokenizer(name)
    config = tiny_config(name, tok)
    assert config.model_type == TINY[name]["model_type"]
    assert config.vocab_size == tok.vocab_size
    assert config.bos_token_id == tok.special_token_id("bos", None)
    assert config.eos_token_id == tok.special_token_id("eos", None)
    assert config.pad_token_id is None  # the head reads last_index
    assert config.num_key_value_heads < config.num_attention_heads  # GQA
    assert packing_problem(config) is None
    assert default_layout("arena_varlen", config) == "packed"
    assert default_layout("sdpa", config) == "padded"


@pytest.mark.parametrize("name", PRESETS)
def test_packed_arena_varlen_equals_padded_stock(name):
    tok = _tokenizer(name)
    packed_model, stock_model = _pair(name, tok)
    enc = _encoded(tok.vocab_size)
    idx = np.arange(len(enc))
    # No pad token in Llama 3's or Qwen 2.5's tokenizer: the EOS fills the
    # padding, which the head never reads.
    pad = packed_model.pad_id
    assert pad == tok.special_token_id("eos", None)
    with torch.no_grad():
        packed = packed_model(af.collate_packed(enc, idx)).numpy()
        for side in ("right", "left"):
            padded = stock_model(af.collate_padded(enc, idx, pad_id=pad, side=side)).numpy()
            np.testing.assert_allclose(packed, padded, atol=ATOL, err_msg=side)
        with packed_model.decoder.disable_adapter():
            base = packed_model(af.collate_packed(enc, idx)).numpy()
    assert np.abs(base - packed).max() > 1e-3  # the adapters are applied


@pytest.mark.parametrize("name", sorted(WINDOWED))
def test_sliding_windows_pack_exactly(name):
    """With a window shorter than the rows, arena_varlen's packs equal the
    stock attention's padded batches, and the window changes the result."""
    tok = af.Tokenizer.demo()
    register()

    def decoder(attn, **overrides):
        torch.manual_seed(0)
        config = tiny_config(name, tok, attn_implementation=attn, **overrides)
        return transformers.AutoModel.from_config(config).eval()

    windowed = decoder("arena_varlen", **WINDOWED[name])
    kinds = getattr(windowed.config, "layer_types", None) or ["sliding_attention"]
    assert "sliding_attention" in kinds  # (Mistral and Phi-3: on every layer)
    stock = decoder(_stock(name), **WINDOWED[name])
    stock.load_state_dict(windowed.state_dict())
    enc = _encoded(tok.vocab_size)
    idx = np.arange(len(enc))
    with torch.no_grad():
        packed = last_hidden(windowed, af.collate_packed(enc, idx))
        padded = last_hidden(stock, af.collate_padded(enc, idx, pad_id=0, side="right"))
        wide = decoder("arena_varlen", **{**WINDOWED[name], "sliding_window": 4096})
        wide.load_state_dict(windowed.state_dict())
        unwindowed = last_hidden(wide, af.collate_packed(enc, idx))
    torch.testing.assert_close(packed, padded, atol=ATOL, rtol=0)
    assert (packed - unwindowed).abs().max() > 1e-3


def test_gemma3_query_scale_and_qwen_biases_are_the_models():
    """What sets these attentions apart is in the presets (the equality
    tests above run through it)."""
    gemma3 = load_classifier("tiny-gemma3").decoder
    attn = gemma3.layers[0].self_attn
    assert attn.scaling == pytest.approx(32**-0.5) and attn.head_dim == 16
    assert [layer.self_attn.sliding_window for layer in gemma3.layers] == [256, None]
    qwen2 = load_classifier("tiny-qwen2").decoder.layers[0].self_attn
    assert qwen2.q_proj.bias is not None and qwen2.k_proj.bias is not None
    qwen3 = load_classifier("tiny-qwen3").decoder.layers[0].self_attn
    assert hasattr(qwen3, "q_norm") and hasattr(qwen3, "k_norm")
    mistral = load_classifier("tiny-mistral").decoder.layers[0].self_attn
    assert mistral.config.sliding_window == 256


@pytest.mark.parametrize("name", PRESETS)
def test_a_few_steps_lower_the_loss(name):
    model = load_classifier(name, lora={"r": 4, "dropout": 0.0}, seed=0)
    model.train()
    enc = _encoded(model.decoder.config.vocab_size)
    batch = af.collate_packed(enc, np.arange(len(enc)), labels=np.array([0, 1, 2, 0, 1, 2]))
    labels = torch.as_tensor(batch["labels"])
    opt = torch.optim.AdamW([p for _, p in model.trainable_parameters()], lr=2e-3)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(model(batch), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05, losses


# -- what arena_fast has not checked is padded -----------------------------------


def _olmo2(tmp_path, tok):
    """A tiny OLMo-2 folder: a decoder AutoModel loads, not a packable type."""
    config = transformers.AutoConfig.for_model(
        "olmo2",
        vocab_size=tok.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        pad_token_id=None,
    )
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(tmp_path / "olmo2")
    return str(tmp_path / "olmo2")


def test_an_unchecked_architecture_loads_and_is_padded(tmp_path):
    tok = af.Tokenizer.demo()
    folder = _olmo2(tmp_path, tok)
    model = load_classifier(
        folder, tokenizer=tok, lora={"r": 4}, attn_implementation="arena_varlen"
    )
    model.eval()
    assert "olmo2" in packing_problem(model.decoder.config)
    assert default_layout("arena_varlen", model) == "padded"
    assert resolve_layout("auto", "arena_varlen", model) == "padded"
    with pytest.raises(af.ConfigError, match="olmo2.*use 'padded'"):
        resolve_layout("packed", "arena_varlen", model)
    enc = _encoded(tok.vocab_size)
    idx = np.arange(len(enc))
    with torch.no_grad():
        padded = model(af.collate_padded(enc, idx, pad_id=model.pad_id)).numpy()
        alone = np.concatenate(
            [model(af.collate_padded(enc, np.array([i]), pad_id=0)).numpy() for i in idx]
        )
        with pytest.raises(af.ConfigError, match="cannot take packed batches.*olmo2"):
            model(af.collate_packed(enc, idx))
    np.testing.assert_allclose(padded, alone, atol=ATOL)


@pytest.mark.parametrize(
    "name, change, why",
    [
        ("tiny-gemma3", dict(use_bidirectional_attention=True), "bidirectional"),
        ("tiny-gemma3", dict(layer_types=["chunked_attention", "full_attention"]), "chunked"),
        ("tiny-llama", dict(model_type="a_new_decoder"), "a_new_decoder"),
    ],
)
def test_an_unsupported_feature_is_padded(name, change, why):
    config = tiny_config(name)
    for key, value in change.items():
        setattr(config, key, value)
    assert why in packing_problem(config)
    assert default_layout("arena_varlen", config) == "padded"
    assert resolve_layout("padded", "arena_varlen", config) == "padded"
    with pytest.raises(af.ConfigError, match=why):
        resolve_layout("packed", "flash_attention_2", config)
    # Without a model, the attention alone decides (as before).
    assert default_layout("arena_varlen") == "packed"


# -- a run of each preset: train, predict, merge ---------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    keyword_rows(48, 0, answer_words=(3, 8), prompt_words=3).write_parquet(root / "rows.parquet")
    build_dataset(
        BuildConfig(inputs=[f"{root / 'rows.parquet'}:canonical"], max_length=96, folds=4),
        root / "ds",
    )
    return root / "ds"


@pytest.mark.parametrize("name", PRESETS)
def test_a_run_trains_predicts_and_merges(name, dataset, tmp_path):
    runs = []
    for fold in (0, 1):
        out = tmp_path / f"run{fold}"
        config = TrainConfig(
            data=str(dataset), fold=fold, model=name, lora_r=4, max_tokens=1024, max_steps=2
        )
        train(dataclasses.replace(config, out=str(out)))
        runs.append(out)
    first = predict(runs[0], dataset)
    assert np.isfinite(first["probs"]).all() and first["probs"].shape[1] == 3
    merge_runs(runs, tmp_path / "mean")
    merge_runs(runs, tmp_path / "flat", merge_into_base=True)
    mean, flat = predict(tmp_path / "mean", dataset), predict(tmp_path / "flat", dataset)
    assert list(mean["ids"]) == list(flat["ids"])
    np.testing.assert_allclose(flat["probs"], mean["probs"], atol=1e-5)
    model, config = load_run(tmp_path / "flat")
    assert config.model == name and config.lora_r == 0
    assert model.decoder.config.model_type == TINY[name]["model_type"]


# -- the soft-cap --------------------------------------------------------------


def test_soft_cap_is_transformers_tanh():
    """arena_varlen caps as transformers' eager does (tanh, not the faster
    sigmoid form: benches/bench_softcap.py), to float32 rounding."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 64, 64, generator=g) * 200
    scaling, cap = 0.25, 50.0
    want = torch.tanh(scores * scaling / cap) * cap
    torch.testing.assert_close(soft_cap(scores, scaling, cap), want, atol=1e-6, rtol=1e-6)
    assert soft_cap(torch.tensor([3e38, -3e38]), scaling, cap).abs().max() <= cap


def test_soft_cap_in_place_is_the_same_bits():
    """The in-place cap `_eager` uses on its own matmul output gives the very
    bits of the out-of-place one, and the same gradients where autograd
    records."""
    g = torch.Generator().manual_seed(1)
    base = torch.randn(2, 3, 40, 40, generator=g, dtype=torch.float32) * 300
    scaling, cap = 0.0625, 30.0
    want = soft_cap(base, scaling, cap)
    with torch.no_grad():
        got = soft_cap(base.clone(), scaling, cap, inplace=True)
    assert torch.equal(got, want)
    x1 = base.clone().requires_grad_(True)
    x2 = base.clone().requires_grad_(True)
    soft_cap(x1, scaling, cap).square().sum().backward()
    soft_cap(x2 * 1.0, scaling, cap, inplace=True).square().sum().backward()
    assert torch.equal(x1.grad, x2.grad)


def test_soft_capped_packs_equal_stock_eager_gemma2():
    """The model-level check: tiny-gemma2's soft-capped packs (sigmoid form)
    against transformers' eager attention (tanh), on rows longer than the
    window and the causal blocks."""
    tok = af.Tokenizer.demo()
    packed_model, stock_model = _pair("tiny-gemma2", tok)
    rng = np.random.default_rng(5)
    enc = af.Encoded.from_lists(
        [rng.integers(3, tok.vocab_size, size=n).tolist() for n in (300, 90, 150)]
    )
    idx = np.arange(len(enc))
    with torch.no_grad():
        packed = packed_model(af.collate_packed(enc, idx)).numpy()
        padded = stock_model(af.collate_padded(enc, idx, pad_id=0)).numpy()
    np.testing.assert_allclose(packed, padded, atol=ATOL)


def test_an_encoder_decoder_folder_is_refused(tmp_path):
    config = transformers.AutoConfig.for_model(
        "t5", vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2
    )
    transformers.AutoModel.from_config(config).save_pretrained(tmp_path / "t5")
    with pytest.raises(af.ConfigError, match="t5 encoder-decoder"):
        load_classifier(str(tmp_path / "t5"))


# -- on CUDA: flash-attn's varlen kernel against arena_varlen -----------------------


@pytest.mark.gpu
@pytest.mark.parametrize("name", PRESETS)
def test_flash_attention_varlen_equals_arena_varlen(name):
    """The packs a GPU run feeds flash-attn's varlen kernel give arena_varlen's
    logits (bf16, so to bf16's precision), windows included."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: flash-attn's varlen kernel")
    pytest.importorskip("flash_attn", reason="needs flash-attn (flash_attention_2)")
    tok = af.Tokenizer.demo()
    kw = dict(tokenizer=tok, lora={"r": 4, "dropout": 0.0}, seed=0, dtype=torch.bfloat16)
    ours = load_classifier(name, attn_implementation="arena_varlen", **kw)
    _perturb_lora(ours)
    flash = load_classifier(name, attn_implementation="flash_attention_2", **kw)
    flash.load_state_dict(ours.state_dict())
    ours, flash = ours.cuda().eval(), flash.cuda().eval()
    rng = np.random.default_rng(3)
    enc = af.Encoded.from_lists(
        [rng.integers(3, tok.vocab_size, size=n).tolist() for n in (40, 300, 90, 7)]
    )
    batch = af.collate_packed(enc, np.arange(len(enc)))
    with torch.no_grad():
        want, got = ours(batch).float().cpu(), flash(batch).float().cpu()
    torch.testing.assert_close(got, want, atol=3e-2, rtol=3e-2)


# -- the tokenizer side -------------------------------------------------------------


@pytest.mark.parametrize(
    "family, bos, eos, pad",
    [
        ("gemma3", "<bos>", "<end_of_turn>", "<pad>"),
        ("llama3", "<|begin_of_text|>", "<|end_of_text|>", None),
        # tokenizer_config.json: "bos_token": null. Before, "<s>" (an
        # ordinary token of Qwen's vocabulary) stood in for a BOS.
        ("qwen2_5", None, "<|im_end|>", "<|endoftext|>"),
    ],
)
def test_special_tokens_come_from_tokenizer_config(shared_dir, family, bos, eos, pad):
    preset = next(name for name, f in FAMILY_TOKENIZER.items() if f == family)
    tok = _tokenizer(preset)  # the presets' (cached)
    for which, name in (("bos", bos), ("eos", eos), ("pad", pad)):
        want = None if name is None else tok.token_to_id(name)
        assert tok.special_token_id(which, None) == want, which


def test_a_declared_null_survives_pickling():
    tok = af.Tokenizer.demo()
    assert tok.special_token_id("bos", None) == tok.token_to_id("<bos>")
    tok.config_bos_token, tok.none_declared = None, frozenset({"bos"})
    again = pickle.loads(pickle.dumps(tok))
    assert again.special_token_id("bos", None) is None
    assert again.special_token_id("pad", None) == tok.token_to_id("<pad>")
    assert af.Encoder(again).bos_token_id is None


def test_a_transformers_tokenizer_without_a_bos_has_none():
    """A transformers tokenizer whose bos_token is unset has no BOS, though
    its vocabulary holds a usual name ("<bos>") that would be guessed."""
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(DEMO_DIR / "tokenizer.json"), eos_token="<eos>"
    )
    tok = af.Tokenizer.from_hf(hf)
    assert tok.token_to_id("<bos>") is not None
    assert tok.special_token_id("bos", None) is None
    assert tok.special_token_id("eos", None) == tok.token_to_id("<eos>")
    with pytest.raises(af.ConfigError, match="which"):
        tok.special_token_id("unk", None)


def test_a_run_of_an_unchecked_architecture_trains_and_predicts_padded(dataset, tmp_path):
    """`layout: auto` takes the model into account in train, predict and
    Judge: an architecture arena_varlen has not been checked on runs padded
    (it stopped at its first packed step before)."""
    folder = _olmo2(tmp_path, af.Tokenizer.demo())
    config = TrainConfig(
        data=str(dataset), fold=0, model=folder, lora_r=4, max_tokens=1024, max_steps=2
    )
    out = tmp_path / "run"
    train(dataclasses.replace(config, out=str(out), attn_implementation="arena_varlen"))
    result = predict(out, dataset)
    assert np.isfinite(result["probs"]).all()
    judge = af.predict.Judge(out)
    assert judge.layout == "padded"
    assert judge.compare("q", "a", "b")["verdict"] in af.labels.VERDICTS
