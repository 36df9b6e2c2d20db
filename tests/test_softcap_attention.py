"""Gemma-2's soft-capped attention (arena_fast.torch.softcap): the query
blocks that score only the keys a query sees, and the cap through expm1,
against transformers' eager attention over the whole masked (L, L) matrix,
for outputs and gradients, with and without sliding windows, at lengths on,
inside and across block edges; then through a Gemma-2 decoder on packed and
padded batches."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from transformers import Gemma2Config, Gemma2Model  # noqa: E402
from transformers.models.gemma2.modeling_gemma2 import eager_attention_forward  # noqa: E402

from arena_fast.torch import attention  # noqa: E402
from arena_fast.torch.attention import NAME, register, soft_cap  # noqa: E402
from arena_fast.torch.packed import last_hidden  # noqa: E402
from arena_fast.torch.softcap import capped, causal_blocks  # noqa: E402

SCALING, CAP = 0.25, 50.0


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    """Every test of the module on one torch thread (conftest)."""


class _Module(torch.nn.Module):
    """What eager_attention_forward reads of an attention module."""

    num_key_value_groups = 1


def _eager(q, k, v, window, dtype=None):
    """transformers' Gemma-2 eager attention with the full (L, L) causal /
    sliding mask -> (B, H, L, D)."""
    length = q.shape[2]
    pos = torch.arange(length)
    keep = pos[None, :] <= pos[:, None]
    if window is not None:
        keep &= pos[None, :] > pos[:, None] - window
    mask = torch.zeros(length, length, dtype=q.dtype).masked_fill(~keep, torch.finfo(q.dtype).min)
    out, _ = eager_attention_forward(
        _Module().eval(), q, k, v, mask[None, None], scaling=SCALING, softcap=CAP
    )
    return out.transpose(1, 2)  # eager returns (B, L, H, D)


def _qkv(length, dtype, seed=0, heads=3, dim=8, scale=6.0):
    """q, k, v (2, heads, length, dim); q and k large enough that the cap bites."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, heads, length, dim, generator=g, dtype=dtype) for _ in range(3))
    return (q * scale).requires_grad_(), (k * scale).requires_grad_(), v.requires_grad_()


def _blocks(q, k, v, window, block):
    return causal_blocks(
        q,
        k,
        v,
        window=window,
        scaling=SCALING,
        softcap=CAP,
        dropout=0.0,
        training=False,
        block=block,
    )


def _with_grads(fn, q, k, v):
    out = fn(q, k, v)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=out.dtype)
    q.grad = k.grad = v.grad = None
    (out * w).sum().backward()
    return out.detach(), [t.grad.clone() for t in (q, k, v)]


# Lengths below, on and across the block (16) and the windows.
LENGTHS = (1, 7, 16, 17, 40, 61)
WINDOWS = (None, 1, 5, 16, 23, 200)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("length", LENGTHS)
def test_blocks_equal_eager_in_float64(length, window):
    """In float64 the blocks and the whole masked matrix differ by rounding
    alone (eager's softmax runs in float32 whatever the dtype: 1e-6, where a
    key seen or missed moves the output ~1e-2), at every length and window."""
    q, k, v = _qkv(length, torch.float64, seed=length)
    want, want_grads = _with_grads(lambda *t: _eager(*t, window), q, k, v)
    got, got_grads = _with_grads(lambda *t: _blocks(*t, window, 16), q, k, v)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    for name, g, w in zip("qkv", got_grads, want_grads):
        scale = max(1.0, w.abs().max().item())
        torch.testing.assert_close(g, w, atol=1e-6 * scale, rtol=0, msg=name)


@pytest.mark.parametrize("block", [1, 16, 64])
@pytest.mark.parametrize("window", [None, 5, 23])
def test_blocks_equal_eager_in_float32(block, window):
    """In float32, to rounding (the attention weights' largest gradient
    entries reach ~100 here, hence the atol scaled by the tensor's size)."""
    q, k, v = _qkv(61, torch.float32, seed=3)
    want, want_grads = _with_grads(lambda *t: _eager(*t, window), q, k, v)
    got, got_grads = _with_grads(lambda *t: _blocks(*t, window, block), q, k, v)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)
    for name, g, w in zip("qkv", got_grads, want_grads):
        scale = max(1.0, w.abs().max().item())
        torch.testing.assert_close(g, w, atol=2e-5 * scale, rtol=0, msg=name)


def test_the_cap_is_tanh_to_float32_rounding():
    """cap * tanh(x / cap) through expm1: within 3 float32 eps (relative) of
    float64's tanh, exact at the ends, NaN kept, signed zero kept."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200_000, generator=g) * s for s in (0.01, 1.0, 100.0, 1e4)])
    exact = torch.tanh(x.double() * SCALING / CAP) * CAP
    got = capped(x.clone(), SCALING, CAP).double()
    rel = ((got - exact).abs() / exact.abs().clamp(min=1e-30)).max().item()
    assert rel < 3 * torch.finfo(torch.float32).eps, rel
    ends = capped(torch.tensor([3e38, -3e38, float("inf"), -float("inf")]), SCALING, CAP)
    assert ends.tolist() == [CAP, -CAP, CAP, -CAP]
    odd = capped(torch.tensor([float("nan"), -0.0, 0.0]), SCALING, CAP)
    assert odd[0].isnan() and str(odd[1].item()) == "-0.0" and str(odd[2].item()) == "0.0"
    half = torch.tensor([1.0, -30.0, 400.0], dtype=torch.bfloat16)  # keeps torch.tanh
    want = torch.tanh(half * SCALING / CAP) * CAP
    assert torch.equal(soft_cap(half, SCALING, CAP), want)


def test_the_cap_backward_is_tanh_backward():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(3, 50, 50, generator=g, dtype=torch.float64) * 300
    a, b = base.clone().requires_grad_(), base.clone().requires_grad_()
    w = torch.randn(base.shape, generator=g, dtype=torch.float64)
    ((torch.tanh(a * SCALING / CAP) * CAP) * w).sum().backward()
    (soft_cap(b, SCALING, CAP) * w).sum().backward()
    torch.testing.assert_close(b.grad, a.grad, atol=1e-12, rtol=1e-12)


# -- through a Gemma-2 decoder ---------------------------------------------------------


def _gemma(window):
    torch.manual_seed(0)
    cfg = Gemma2Config(
        hidden_size=32,
        num_hidden_layers=2,  # sliding, full
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        vocab_size=128,
        intermediate_size=64,
        sliding_window=window,
        attn_logit_softcapping=20.0,
    )
    model = Gemma2Model(cfg).eval()
    with torch.no_grad():  # logits well past the cap's linear range
        for layer in model.layers:
            layer.self_attn.q_proj.weight.mul_(12.0)
            layer.self_attn.k_proj.weight.mul_(12.0)
    return model


def _batch(lengths, packed):
    rng = np.random.default_rng(sum(lengths))
    seqs = [rng.integers(1, 128, size=n) for n in lengths]
    if packed:
        cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        return {
            "input_ids": np.concatenate(seqs)[None],
            "position_ids": np.concatenate([np.arange(n) for n in lengths])[None],
            "cu_seq_lens_q": cu,
            "cu_seq_lens_k": cu.copy(),
            "max_length_q": max(lengths),
            "max_length_k": max(lengths),
            "last_index": cu[1:] - 1,
        }
    ids = np.zeros((len(seqs), max(lengths)), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = s, 1
    return {"input_ids": ids, "attention_mask": mask, "last_index": np.array(lengths) - 1}


def _run(model, impl, batch):
    model.set_attn_implementation(impl)
    model.zero_grad(set_to_none=True)
    out = last_hidden(model, batch)  # (k, H)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(4))
    (out * w).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("window", [9, 30])
def test_gemma2_batches_equal_stock_eager(monkeypatch, packed, window):
    """arena_varlen on packed and padded batches (blocks of 16 queries, lengths
    off the block edges) gives stock eager's hidden states and gradients."""
    register()
    monkeypatch.setattr(attention, "_BLOCK", 16)
    lengths = [37, 5, 16, 50]
    model = _gemma(window)
    want, want_grads = _run(model, "eager", _batch(lengths, packed=False))
    got, got_grads = _run(model, NAME, _batch(lengths, packed))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert got_grads.keys() == want_grads.keys() and len(got_grads) > 10
    for name, w in want_grads.items():
        scale = max(1.0, w.abs().max().item())
        torch.testing.assert_close(got_grads[name], w, atol=1e-5 * scale, rtol=0, msg=name)


def test_a_packed_soft_capped_row_builds_no_length_squared_mask(monkeypatch):
    """The packed soft-capped path never builds an (L, L) mask: the window
    mask helper is not called, and the largest tensor the attention allocates
    is a block's scores, not a sequence's."""
    register()

    def refuse(*args, **kwargs):
        raise AssertionError("an (L, L) mask was built")

    monkeypatch.setattr(attention, "_window_mask", refuse)
    model = _gemma(9)
    model.set_attn_implementation(NAME)
    with torch.no_grad():
        out = last_hidden(model, _batch([300, 41], packed=True))
    assert torch.isfinite(out).all()
