"""The "arena_varlen" attention and the packed/padded feeding helpers, on tiny
randomly initialised Llama (sdpa, GQA) and Gemma-2 (eager; sliding window,
logit soft-capping) models on the CPU in float32.

The reference for every sequence is that sequence run alone through the
model's stock attention ("separate"). A packed row must give the same hidden
states and the same parameter gradients; padded batches must agree too."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from transformers import (  # noqa: E402
    Gemma2Config,
    Gemma2ForCausalLM,
    LlamaConfig,
    LlamaModel,
)
from transformers.masking_utils import create_causal_mask, sdpa_mask  # noqa: E402

from arena_fast.torch.attention import (  # noqa: E402
    NAME,
    arena_varlen_mask,
    register,
)
from arena_fast.torch.packed import (  # noqa: E402
    last_hidden,
    packed_inputs,
    padded_inputs,
    pool_last,
)

ATOL = 1e-5
WINDOW = 8  # Gemma-2 sliding window: most test sequences are longer
LENGTHS = (3, 11, 40, 7, 26, 19)


@pytest.fixture(scope="module", autouse=True)
def _threads(one_torch_thread):
    """Every test of the module on one torch thread (conftest)."""


# -- models -----------------------------------------------------------------------


def _llama(**over):
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # GQA: 2 query heads per kv head
        vocab_size=256,
        intermediate_size=128,
        **over,
    )
    return LlamaModel(cfg).eval()


def _gemma(**over):
    torch.manual_seed(0)
    kw = dict(
        hidden_size=64,
        num_hidden_layers=4,  # layer_types: sliding, full, sliding, full
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        query_pre_attn_scalar=16,
        vocab_size=256,
        intermediate_size=128,
        sliding_window=WINDOW,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
    )
    cfg = Gemma2Config(**{**kw, **over})
    model = Gemma2ForCausalLM(cfg).eval()
    # At init the attention logits are ~0.1, where tanh(x / 50) * 50 == x to
    # float precision; scale q and k up so that soft-capping really bites
    # (checked by test_window_and_softcap_matter).
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(12.0)
            layer.self_attn.k_proj.weight.mul_(12.0)
    return model


def _gemma_nocap(**over):
    # Without soft-capping arena_varlen runs sdpa with the banded mask and GQA.
    return _gemma(attn_logit_softcapping=None, **over)


# name -> (factory, the stock implementation it is compared against)
MODELS = {
    "llama": (_llama, "sdpa"),
    "gemma2": (_gemma, "eager"),
    "gemma2_nocap": (_gemma_nocap, "eager"),
}


@pytest.fixture(scope="module")
def models():
    register()
    return {name: make() for name, (make, _) in MODELS.items()}


def _use(model, impl):
    model.set_attn_implementation(impl)
    return model


def _hidden(model, **kwargs):
    """The base decoder's last hidden state, (B, L, H)."""
    return model.base_model(**kwargs).last_hidden_state


# -- batches (numpy, as the collators build them) ----------------------------------


def _sequences(seed=1, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 256, size=n).astype(np.int64) for n in lengths]


def _packed(seqs):
    lens = np.array([len(s) for s in seqs])
    cu = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    return {
        "input_ids": np.concatenate(seqs)[None],
        "position_ids": np.concatenate([np.arange(n) for n in lens])[None],
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu.copy(),
        "max_length_q": int(lens.max()),
        "max_length_k": int(lens.max()),
        "seq_idx": np.repeat(np.arange(len(seqs)), lens)[None].astype(np.int32),
        "last_index": (cu[1:] - 1).astype(np.int64),
    }


def _padded(seqs, side="right", pad_id=0):
    lens = [len(s) for s in seqs]
    width = max(lens)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    batch = {}
    if side == "left":
        pos = np.zeros((len(seqs), width), dtype=np.int64)
        for b, s in enumerate(seqs):
            ids[b, width - len(s) :], mask[b, width - len(s) :] = s, 1
            pos[b, width - len(s) :] = np.arange(len(s))
        batch["position_ids"] = pos
        batch["last_index"] = np.full(len(seqs), width - 1, dtype=np.int64)
    else:
        for b, s in enumerate(seqs):
            ids[b, : len(s)], mask[b, : len(s)] = s, 1
        batch["last_index"] = np.array(lens, dtype=np.int64) - 1
    batch.update(input_ids=ids, attention_mask=mask)
    return batch


def _separate(model, seqs):
    """Each sequence alone: list of (L_i, H) hidden states."""
    return [_hidden(model, input_ids=torch.as_tensor(s)[None], use_cache=False)[0] for s in seqs]


# -- registration and the mask function -------------------------------------------


def test_register_is_idempotent():
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    assert register() == NAME == "arena_varlen"
    assert register() == NAME
    assert NAME in AttentionInterface._global_mapping
    assert ALL_MASK_ATTENTION_FUNCTIONS[NAME] is arena_varlen_mask


def test_mask_function():
    register()
    # No padding mask, no cache: nothing to build (the attention finds the sequences).
    assert arena_varlen_mask(batch_size=1, q_length=6, kv_length=6) is None
    # A padding mask, even all ones, is always materialised as sdpa_mask's.
    for pad in (
        torch.ones(2, 6, dtype=torch.bool),
        torch.tensor([[1] * 6, [0, 0] + [1] * 4]).bool(),
    ):
        got = arena_varlen_mask(batch_size=2, q_length=6, kv_length=6, attention_mask=pad)
        want = sdpa_mask(
            batch_size=2, q_length=6, kv_length=6, attention_mask=pad, allow_is_causal_skip=False
        )
        assert got is not None and torch.equal(got, want)
    # Through transformers: a packed row (restarting position_ids, no mask) gets None.
    cfg = LlamaConfig(hidden_size=8, num_attention_heads=2, num_key_value_heads=1)
    cfg._attn_implementation = NAME
    embeds = torch.zeros(1, 6, 8)
    pos = torch.tensor([[0, 1, 2, 0, 1, 2]])
    assert create_causal_mask(cfg, embeds, None, None, position_ids=pos) is None
    cfg._attn_implementation = "sdpa"  # whereas sdpa builds the block-diagonal mask
    assert create_causal_mask(cfg, embeds, None, None, position_ids=pos) is not None


# -- forward: packed == separate == padded -----------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_packed_equals_separate(models, name):
    model, ref = models[name], MODELS[name][1]
    seqs = _sequences()
    batch = _packed(seqs)
    with torch.no_grad():
        alone = _separate(_use(model, ref), seqs)
        packed = _hidden(_use(model, NAME), **packed_inputs(batch))[0]  # (T, H)
        pooled = last_hidden(model, batch)  # (k, H)
    cu = batch["cu_seq_lens_q"]
    for i, h in enumerate(alone):
        torch.testing.assert_close(packed[cu[i] : cu[i + 1]], h, atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, torch.stack([h[-1] for h in alone]), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_packed_by_position_ids_only(models, name):
    # Without cu_seq_lens the sequences come from the restarting position_ids,
    # as transformers' own masking does; the cache on or off makes no difference.
    model, ref = models[name], MODELS[name][1]
    seqs = _sequences(seed=2)
    batch = _packed(seqs)
    ids, pos = torch.as_tensor(batch["input_ids"]), torch.as_tensor(batch["position_ids"])
    idx = torch.as_tensor(batch["last_index"])
    with torch.no_grad():
        alone = torch.stack([h[-1] for h in _separate(_use(model, ref), seqs)])
        stock = _hidden(model, input_ids=ids, position_ids=pos, use_cache=False)[0, idx]
        _use(model, NAME)
        for use_cache in (False, True):
            got = _hidden(model, input_ids=ids, position_ids=pos, use_cache=use_cache)[0, idx]
            torch.testing.assert_close(got, alone, atol=ATOL, rtol=0)
    # transformers' stock path agrees (block-diagonal mask, cache off).
    torch.testing.assert_close(stock, alone, atol=ATOL, rtol=0)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("name", list(MODELS))
def test_padded_equals_separate_and_fallback(models, name, side):
    model, ref = models[name], MODELS[name][1]
    seqs = _sequences(seed=3)
    batch = _padded(seqs, side)
    with torch.no_grad():
        alone = torch.stack([h[-1] for h in _separate(_use(model, ref), seqs)])
        stock = last_hidden(model, batch)
        # arena_varlen on a padded batch: transformers' sdpa / eager with the mask.
        fallback = last_hidden(_use(model, NAME), batch)
    torch.testing.assert_close(stock, alone, atol=ATOL, rtol=0)
    torch.testing.assert_close(fallback, stock, atol=ATOL, rtol=0)


def test_unpadded_batch_of_rows(models):
    # No mask, several rows of one length: each row is one sequence.
    model = models["gemma2"]
    seqs = _sequences(seed=4, lengths=(21, 21, 21))
    ids = torch.as_tensor(np.stack(seqs))
    with torch.no_grad():
        alone = torch.stack(_separate(_use(model, "eager"), seqs))
        got = _hidden(_use(model, NAME), input_ids=ids, use_cache=False)
    torch.testing.assert_close(got, alone, atol=ATOL, rtol=0)


def test_window_and_softcap_matter(models):
    # Switching the window or the soft-cap off in arena_varlen moves the result
    # well past the tolerance, so the equalities above do test them.
    model = _use(models["gemma2"], NAME)
    batch = _packed(_sequences())
    attns = [layer.self_attn for layer in model.model.layers]
    with torch.no_grad():
        base = last_hidden(model, batch)
        for attr in ("sliding_window", "attn_logit_softcapping"):
            saved = [getattr(a, attr) for a in attns]
            try:
                for a in attns:
                    setattr(a, attr, None)
                moved = (last_hidden(model, batch) - base).abs().max().item()
            finally:
                for a, v in zip(attns, saved):
                    setattr(a, attr, v)
            assert moved > 100 * ATOL, (attr, moved)


def test_gemma2_logits_with_final_softcap(models):
    # Every position, through Gemma2ForCausalLM (final_logit_softcapping=30).
    model = models["gemma2"]
    seqs = _sequences(seed=5)
    batch = _packed(seqs)
    with torch.no_grad():
        _use(model, "eager")
        alone = [model(input_ids=torch.as_tensor(s)[None], use_cache=False).logits[0] for s in seqs]
        packed = _use(model, NAME)(**packed_inputs(batch)).logits[0]  # (T, V)
    cu = batch["cu_seq_lens_q"]
    assert max(x.abs().max().item() for x in alone) < 30.0  # capped at 30
    for i, logits in enumerate(alone):
        torch.testing.assert_close(packed[cu[i] : cu[i + 1]], logits, atol=ATOL, rtol=0)


def test_bad_cu_seq_lens(models):
    model = _use(models["llama"], NAME)
    kw = packed_inputs(_packed(_sequences()))
    cu = kw["cu_seq_lens_q"]
    with torch.no_grad(), pytest.raises(NotImplementedError, match="cu_seq_lens_k"):
        model(**{**kw, "cu_seq_lens_k": cu.flip(0).neg() + cu[-1]})
    with torch.no_grad(), pytest.raises(ValueError, match="cu_seq_lens_q runs"):
        model(**{**kw, "cu_seq_lens_q": cu[:-1], "cu_seq_lens_k": cu[:-1]})


# -- the negative: an attention mask on a packed row mixes the sequences -------------


@pytest.mark.parametrize("name", list(MODELS))
def test_all_ones_mask_on_a_packed_row_mixes(models, name):
    model, ref = models[name], MODELS[name][1]
    seqs = _sequences()
    batch = _packed(seqs)
    ids, pos = torch.as_tensor(batch["input_ids"]), torch.as_tensor(batch["position_ids"])
    ones = torch.ones_like(ids)
    idx = torch.as_tensor(batch["last_index"])
    with torch.no_grad():
        alone = torch.stack([h[-1] for h in _separate(_use(model, ref), seqs)])
        for impl in (ref, NAME):  # arena_varlen without cu_seq_lens: sdpa/eager semantics
            _use(model, impl)
            mixed = _hidden(
                model, input_ids=ids, position_ids=pos, attention_mask=ones, use_cache=False
            )[0, idx]
            # the first sequence sees nothing else; every later one sees its predecessors
            torch.testing.assert_close(mixed[0], alone[0], atol=ATOL, rtol=0)
            assert (mixed[1:] - alone[1:]).abs().amax(dim=-1).min().item() > 1e-3, impl
        # With cu_seq_lens, arena_varlen refuses the mask instead of mixing.
        with pytest.raises(ValueError, match="attention_mask"):
            model.base_model(**packed_inputs(batch), attention_mask=ones)
    with pytest.raises(ValueError, match="attention_mask"):
        packed_inputs({**batch, "attention_mask": ones.numpy()})


# -- backward ----------------------------------------------------------------------


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_packed_equal_separate(models, name):
    model, ref = models[name], MODELS[name][1]
    seqs = _sequences(seed=6)
    batch = _packed(seqs)
    w = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(7))

    model.zero_grad(set_to_none=True)
    _use(model, ref)
    sum(_separate(model, [s])[0][-1] @ w for s in seqs).backward()
    want = _grads(model)

    model.zero_grad(set_to_none=True)
    (last_hidden(_use(model, NAME), batch) @ w).sum().backward()
    got = _grads(model)
    model.zero_grad(set_to_none=True)

    assert got.keys() == want.keys() and len(got) > 10
    for n, g in want.items():
        # float32 sums over the same terms in another order. Entries reach ~900
        # here (Gemma's embeddings, its q/k scaled up), so the atol is 1e-5 times
        # the tensor's largest entry (the worst error measured is 1.5e-6 of it);
        # no rtol, so small entries get the same absolute slack, not less.
        scale = max(1.0, g.abs().max().item())
        torch.testing.assert_close(got[n], g, atol=ATOL * scale, rtol=0, msg=n)


@pytest.mark.parametrize("block", [1, 5, 8, 13])
def test_causal_blocks_equal_the_whole_matrix(models, monkeypatch, block):
    """The soft-capped path computes a sequence longer than `_BLOCK` queries in
    query blocks that skip the masked keys; with small blocks (inside, equal
    to and across the sliding window of 8) the test sequences (up to 40) take
    that path, and hidden states and gradients stay those of the stock model."""
    from arena_fast.torch import attention

    monkeypatch.setattr(attention, "_BLOCK", block)
    test_packed_equals_separate(models, "gemma2")
    test_gradients_packed_equal_separate(models, "gemma2")


# -- dropout -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_dropout_in_train_mode(name):
    register()
    model = _use(MODELS[name][0](attention_dropout=0.5), NAME).train()
    seqs = _sequences(seed=8)
    batch = _packed(seqs)

    def run(seed, b=batch):
        torch.manual_seed(seed)
        return last_hidden(model, b)

    a, b, c = run(0), run(0), run(1)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, atol=0, rtol=0)  # same seed, same masks
    assert (a - c).abs().max().item() > 1e-3  # dropout does something
    with torch.no_grad():
        assert (a - last_hidden(model.eval(), batch)).abs().max().item() > 1e-3
    model.train()
    # Sequences stay independent under dropout: changing the last sequence's
    # tokens leaves the others untouched (same seed, so the same dropout masks).
    other = [s.copy() for s in seqs]
    other[-1] = (other[-1] + 1) % 256
    d = run(0, _packed(other))
    torch.testing.assert_close(d[:-1], a[:-1], atol=0, rtol=0)
    assert (d[-1] - a[-1]).abs().max().item() > 1e-3
    a.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# -- the helpers -------------------------------------------------------------------


def test_input_helpers():
    batch = _packed(_sequences())
    kw = packed_inputs(batch)
    assert set(kw) == {
        "input_ids",
        "position_ids",
        "cu_seq_lens_q",
        "cu_seq_lens_k",
        "max_length_q",
        "max_length_k",
        "use_cache",
    }
    assert kw["use_cache"] is False and isinstance(kw["max_length_q"], int)
    assert kw["cu_seq_lens_q"].dtype == torch.int32 and kw["input_ids"].shape == (1, 106)
    with pytest.raises(ValueError, match="one row"):
        packed_inputs({**batch, "input_ids": np.zeros((2, 53), dtype=np.int64)})
    with pytest.raises(ValueError, match="missing"):
        packed_inputs({"input_ids": batch["input_ids"]})

    right, left = _padded(_sequences()), _padded(_sequences(), "left")
    assert set(padded_inputs(right)) == {"input_ids", "attention_mask", "use_cache"}
    assert set(padded_inputs(left)) == {"input_ids", "attention_mask", "position_ids", "use_cache"}
    with pytest.raises(ValueError, match="attention_mask"):
        padded_inputs({"input_ids": right["input_ids"]})
    with pytest.raises(ValueError, match="packed"):
        padded_inputs({**right, "cu_seq_lens_q": batch["cu_seq_lens_q"]})

    h = torch.arange(30.0).reshape(2, 5, 3)
    assert torch.equal(pool_last(h, np.array([4, 1]), packed=False), h[[0, 1], [4, 1]])
    assert torch.equal(pool_last(h[:1], torch.tensor([0, 2, 4]), packed=True), h[0, [0, 2, 4]])
    with pytest.raises(ValueError):
        pool_last(h, np.array([4, 1]), packed=True)
    with pytest.raises(ValueError):
        pool_last(h, np.array([4]), packed=False)


def test_with_the_reference_collators(models):
    # When the reference collators are there: our small numpy batches are
    # theirs, and their batches go straight into last_hidden.
    ref = pytest.importorskip("arena_fast.reference.collate")
    seqs = _sequences(seed=9)
    flat = np.concatenate(seqs).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    idx = [3, 0, 5, 1]  # any order
    chosen = [seqs[i] for i in idx]
    packed = ref.collate_packed(flat, offsets, idx)
    padded = {
        side: ref.collate_padded(flat, offsets, idx, 0, side=side) for side in ("right", "left")
    }
    for key, want in _packed(chosen).items():
        np.testing.assert_array_equal(packed[key], want, err_msg=key)
    for side, batch in padded.items():
        for key, want in _padded(chosen, side).items():
            np.testing.assert_array_equal(batch[key], want, err_msg=f"{side} {key}")
    model = _use(models["llama"], NAME)
    with torch.no_grad():
        got = last_hidden(model, packed)
        for batch in padded.values():
            torch.testing.assert_close(last_hidden(model, batch), got, atol=ATOL, rtol=0)
