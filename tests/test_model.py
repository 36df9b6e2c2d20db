"""`af.model.load_classifier`: tiny Gemma-2 and Llama classifiers on the CPU.
Packed and padded batches give the same logits per sequence through the head
with LoRA applied; the head never uses pad_token_id; only LoRA and the head
train; GPU-only paths (bitsandbytes) are marked `gpu`."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")
train_extra("peft")

import arena_fast as af  # noqa: E402
from arena_fast.model import Lora, load_classifier  # noqa: E402

ATOL = 1e-5
LENGTHS = (5, 23, 9, 40, 14, 31)


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    """Every test of the module on one torch thread (conftest)."""


def _encoded(vocab: int) -> af.Encoded:
    rng = np.random.default_rng(3)
    return af.Encoded.from_lists([rng.integers(1, vocab, size=n).tolist() for n in LENGTHS])


def _perturb_lora(model) -> None:
    """peft starts LoRA B at zero (the adapter changes nothing); give it
    weights so the test sees the adapted model."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _logits(model, batch):
    with torch.no_grad():
        return model(batch).numpy()


@pytest.mark.parametrize(
    "name, attn",
    [
        ("tiny-gemma2", "arena_varlen"),
        ("tiny-gemma2", "eager"),  # transformers has no sdpa for Gemma-2
        ("tiny-llama", "arena_varlen"),
        ("tiny-llama", "sdpa"),
        ("tiny-llama", "eager"),
    ],
)
def test_packed_and_padded_give_the_same_logits(name, attn):
    tok = af.Tokenizer.demo()
    model = load_classifier(
        name, tokenizer=tok, lora={"r": 4, "dropout": 0.0}, attn_implementation=attn
    )
    _perturb_lora(model)
    model.eval()
    enc = _encoded(tok.vocab_size)
    idx = np.arange(len(enc))
    packed = _logits(model, af.collate_packed(enc, idx))
    right = _logits(model, af.collate_padded(enc, idx, pad_id=0, side="right"))
    left = _logits(model, af.collate_padded(enc, idx, pad_id=0, side="left"))
    alone = np.concatenate([_logits(model, af.collate_packed(enc, np.array([i]))) for i in idx])
    assert packed.shape == (len(LENGTHS), 3)
    np.testing.assert_allclose(packed, alone, atol=ATOL)
    np.testing.assert_allclose(right, alone, atol=ATOL)
    np.testing.assert_allclose(left, alone, atol=ATOL)
    # LoRA is applied: turning the adapters off changes the logits.
    with model.decoder.disable_adapter(), torch.no_grad():
        base = model(af.collate_packed(enc, idx)).numpy()
    assert np.abs(base - packed).max() > 1e-3


def test_only_lora_and_head_train_and_gradients_flow():
    model = load_classifier("tiny-gemma2", lora=Lora(r=4), head="mlp")
    names = [n for n, _ in model.trainable_parameters()]
    assert names and all("lora_" in n or n.startswith("head.") for n in names)
    assert any(n.startswith("head.") for n in names)
    assert any("lora_" in n for n in names)
    enc = _encoded(model.decoder.config.vocab_size)
    batch = af.collate_packed(enc, np.arange(len(enc)), labels=np.array([0, 1, 2, 0, 1, 2]))
    loss = torch.nn.functional.cross_entropy(model(batch), torch.as_tensor(batch["labels"]))
    loss.backward()
    grads = {n: p.grad for n, p in model.trainable_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # At init B = 0, so A gets no gradient yet; B does.
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)


def test_full_model_without_lora_trains_everything():
    model = load_classifier("tiny-llama", head="linear")
    total = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for _, p in model.trainable_parameters()) == total


def test_never_uses_pad_token_id():
    model = load_classifier("tiny-llama")
    assert model.decoder.config.pad_token_id is None
    model.eval()
    enc = _encoded(model.decoder.config.vocab_size)
    # Pad with a token that also occurs inside the rows: the head must still
    # read each row's own last token.
    pad = int(enc[0][0])
    a = _logits(model, af.collate_padded(enc, np.arange(len(enc)), pad_id=pad))
    b = _logits(model, af.collate_padded(enc, np.arange(len(enc)), pad_id=0))
    np.testing.assert_allclose(a, b, atol=ATOL)


def test_options_and_errors(tmp_path):
    gemma = load_classifier("tiny-gemma2", softcap=False)
    assert gemma.decoder.config.attn_logit_softcapping is None
    assert load_classifier("tiny-gemma2").decoder.config.attn_logit_softcapping == 50.0
    tok = af.Tokenizer.demo()
    assert load_classifier("tiny-llama", tokenizer=tok).decoder.config.vocab_size == tok.vocab_size
    with pytest.raises(af.ConfigError, match="sdpa"):
        load_classifier("tiny-gemma2", attn_implementation="sdpa")
    with pytest.raises(af.ConfigError, match="head"):
        load_classifier("tiny-llama", head="pool")
    with pytest.raises(af.ConfigError, match="not a model folder"):
        load_classifier(str(tmp_path / "missing"))
    with pytest.raises(af.ConfigError, match="unknown LoRA"):
        load_classifier("tiny-llama", lora={"rank": 4})
    # quantization is no longer refused off CUDA: tests/test_qlora_cpu.py.
    with pytest.raises(af.ConfigError, match="quantization must be one of"):
        load_classifier("tiny-llama", quantization="3bit")


def test_local_folder_roundtrip(tmp_path):
    """A saved decoder folder loads back as the same classifier body."""
    model = load_classifier("tiny-llama", attn_implementation="sdpa")
    model.decoder.save_pretrained(tmp_path / "m")
    again = load_classifier(str(tmp_path / "m"), attn_implementation="sdpa")
    again.head.load_state_dict(model.head.state_dict())
    model.eval()
    again.eval()
    enc = _encoded(model.decoder.config.vocab_size)
    batch = af.collate_padded(enc, np.arange(len(enc)), pad_id=0)
    np.testing.assert_allclose(_logits(again, batch), _logits(model, batch), atol=ATOL)


@pytest.mark.gpu
def test_qlora_4bit_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: bitsandbytes 4-bit quantisation")
    model = load_classifier("tiny-llama", lora=True, quantization="4bit")
    assert model is not None


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for ckpt in (False, True):
        model = load_classifier(
            "tiny-gemma2", lora=Lora(r=4, dropout=0.0), gradient_checkpointing=ckpt
        )
        _perturb_lora(model)
        model.train()
        assert model.decoder.get_base_model().is_activation_checkpointing == ckpt
        enc = _encoded(model.decoder.config.vocab_size)
        batch = af.collate_packed(enc, np.arange(len(enc)), labels=np.array([0, 1, 2, 0, 1, 2]))
        loss = torch.nn.functional.cross_entropy(model(batch), torch.as_tensor(batch["labels"]))
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.trainable_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4)
