"""``"arena_varlen"``: per-sequence attention for packed rows, on any device.

A packed row holds k sequences one after the other (see docs/packing.md,
"Collation"). transformers' sdpa and eager can keep them apart, but only by
building a (T, T) block-diagonal mask and computing attention over the whole
row; flash-attn's varlen kernel is the only built-in that skips the
cross-sequence blocks, and it needs a GPU. This module registers an attention
function that reads the same ``cu_seq_lens_q`` / ``cu_seq_lens_k`` kwargs as
flash-attn varlen and runs ``scaled_dot_product_attention`` on each sequence's
slice, so a pack costs what its sequences cost alone: sum(L_i^2), not T^2.

    from arena_fast.torch.attention import register
    model = AutoModel.from_pretrained(name, attn_implementation=register())
    model(**packed_inputs(batch))  # arena_fast.torch.packed

Where the sequences come from, in order:

1. ``cu_seq_lens_q`` / ``cu_seq_lens_k`` kwargs (batch size 1): one sequence per
   slice. Passing a 2-D ``attention_mask`` as well is an error: that is how
   sdpa and eager silently mix the sequences of a pack.
2. No 2-D ``attention_mask`` and no cache offset (our mask function then returns
   None): the model's ``position_ids``, a new sequence wherever they do not go up
   by one (transformers' own ``find_packed_sequence_indices`` rule), so an
   unpadded batch is one sequence per row.
3. Otherwise (a padded batch, a cache, a custom 4-D mask): transformers' sdpa
   with the mask it built, or eager math when logits are soft-capped.

Within a sequence: causal (unless the module says otherwise), GQA, sliding
window (a query sees itself and the ``sliding_window - 1`` keys before it, as
in ``masking_utils.sliding_window_overlay``), Gemma-2 logit soft-capping (eager
math, softmax in float32, as ``modeling_gemma2.eager_attention_forward``,
``soft_cap``), dropout and scaling (Gemma's
``query_pre_attn_scalar`` arrives as ``scaling``). Biases and q/k norms (Qwen 2,
Qwen 3, Gemma 3) are applied by the model before the attention function.
Everything is plain torch, so autograd gives the backward.
Nothing is registered at import time: call :func:`register`.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "arena_varlen"
# sdpa's enable_gqa arrived in torch 2.5; before, the kv heads are repeated.
_SDPA_GQA = torch.__version__ >= "2.5"

__all__ = ["NAME", "arena_varlen_attention", "arena_varlen_mask", "register", "soft_cap"]


# -- the math on one block ------------------------------------------------------


def _window_mask(q_len: int, kv_len: int, window: Optional[int], device) -> Optional[torch.Tensor]:
    """(q_len, kv_len) bool, True where a query may look, queries aligned to the
    end of the keys (the last query is the last key); None when plain
    ``is_causal`` gives the same pattern."""
    if q_len == kv_len and (window is None or kv_len <= window):
        return None
    q_pos = torch.arange(kv_len - q_len, kv_len, device=device)[:, None]  # (q, 1)
    kv_pos = torch.arange(kv_len, device=device)[None, :]  # (1, kv)
    allowed = kv_pos <= q_pos
    if window is not None:
        allowed &= kv_pos > q_pos - window
    return allowed


def soft_cap(
    scores: torch.Tensor, scaling: float, cap: float, inplace: bool = False
) -> torch.Tensor:
    """Gemma-2's logit soft-capping of the scores times ``scaling``,
    ``cap * tanh(x / cap)``, as transformers' eager attention computes it.

    Not ``2 cap * sigmoid(2 x / cap) - cap``, the same function, whose CPU
    kernel is faster (1.1x a tiny-gemma2 training round, 1.3x prediction,
    benches/bench_softcap.py) but which rounds worse: sigmoid near 1/2 keeps
    ~3e-8 absolute, times 2 cap, so scores near 0 lose their low bits; float32
    logits moved 2.7e-5 from tanh's (twice tanh's own distance to float64), past
    the 1e-5 that packed and padded batches are held to (benches/RESULTS.md).

    With ``inplace``, ``scores`` (a tensor nothing else holds, such as a fresh
    matmul's output) is overwritten: the same operations in the same order,
    so the same bits, without allocating three more score-sized tensors (4x
    faster on a 2k-token block on the CPU). Where autograd records, the tanh
    keeps its own output for the backward, so only the scaling is in place."""
    if not inplace:
        return torch.tanh(scores * scaling / cap) * cap  # the eager's very operations
    scores = scores.mul_(scaling).div_(cap)
    if torch.is_grad_enabled() and scores.requires_grad:
        return torch.tanh(scores) * cap
    return scores.tanh_().mul_(cap)


def _eager(q, k, v, mask, scaling, softcap, dropout, training):
    """Attention as transformers' eager path computes it. q (B, H, Lq, D), k and
    v (B, H, Lk, D) with kv heads already repeated; mask bool (True = keep,
    broadcastable to (B, H, Lq, Lk)), additive float, or None."""
    scores = torch.matmul(q, k.transpose(2, 3))  # (B, H, Lq, Lk)
    # `scores` is the matmul's own output: capped in place.
    scores = scores * scaling if softcap is None else soft_cap(scores, scaling, softcap, True)
    if mask is not None:
        if mask.dtype == torch.bool:
            # eager_mask's convention: add finfo.min where masked, 0 elsewhere
            mask = torch.zeros((), dtype=scores.dtype, device=scores.device).masked_fill(
                ~mask, torch.finfo(scores.dtype).min
            )
        scores = scores + mask
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)  # (B, H, Lq, Lk)
    probs = F.dropout(probs, p=dropout, training=training)
    return torch.matmul(probs, v)  # (B, H, Lq, D)


# Query rows per block of the causal eager path.
_BLOCK = 128


def _eager_causal_blocks(q, k, v, window, scaling, softcap, dropout, training):
    """Causal (and windowed) eager attention of one sequence, q, k, v
    (B, H, L, D), in blocks of `_BLOCK` queries: a block computes scores only
    for the keys its queries may see (from the window start of its first
    query to its last query), not the masked upper triangle of the (L, L)
    matrix, about 5/8 of the work at four blocks. Every query's softmax runs
    over the same keys as with the whole masked matrix (a masked score adds
    exp(finfo.min) = 0), so only float rounding differs."""
    length = q.shape[2]
    outs = []
    for start in range(0, length, _BLOCK):
        end = min(start + _BLOCK, length)
        lo = 0 if window is None else max(0, start - window + 1)
        mask = _window_mask(end - start, end - lo, window, q.device)
        if mask is None:  # a square block without a window: causal
            mask = torch.ones(end - start, end - lo, dtype=torch.bool, device=q.device).tril()
        keys, values = k[:, :, lo:end], v[:, :, lo:end]
        outs.append(
            _eager(q[:, :, start:end], keys, values, mask, scaling, softcap, dropout, training)
        )
    return torch.cat(outs, dim=2)  # (B, H, L, D)


def _attend(q, k, v, *, n_rep, causal, window, scaling, softcap, dropout, training):
    """One block of independent rows: q (B, H, Lq, D), k and v (B, Hkv, Lk, D)
    with H = Hkv * n_rep -> (B, H, Lq, D)."""
    q_len, kv_len = q.shape[2], k.shape[2]
    if causal:
        mask = _window_mask(q_len, kv_len, window, q.device)  # (Lq, Lk) or None
    elif window is not None and kv_len > window:
        raise NotImplementedError(f"{NAME}: bidirectional sliding-window attention")
    else:
        mask = None
    if softcap is not None:
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, Lk, D)
        if causal and q_len == kv_len and q_len > _BLOCK:
            return _eager_causal_blocks(q, k, v, window, scaling, softcap, dropout, training)
        if causal and mask is None:  # q_len == kv_len: spell the causal mask out
            mask = torch.ones(q_len, kv_len, dtype=torch.bool, device=q.device).tril()
        return _eager(q, k, v, mask, scaling, softcap, dropout, training)
    # GQA: kv head j serves query heads j * n_rep .. (j + 1) * n_rep - 1, as repeat_kv
    gqa = {"enable_gqa": True} if n_rep > 1 and _SDPA_GQA else {}
    if n_rep > 1 and not gqa:
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, Lk, D)
    return F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=mask,
        dropout_p=dropout,
        scale=scaling,
        is_causal=causal and mask is None,
        **gqa,
    )


# -- where the sequences are ----------------------------------------------------


def _lengths_from_cu(cu_q, cu_k, q_len: int, kv_len: int) -> list[int]:
    """The lengths of the sequences of a packed row, from cu_seq_lens."""
    bounds = [int(x) for x in cu_q.tolist()]  # one device sync per layer
    if cu_k is not None and cu_k is not cu_q and [int(x) for x in cu_k.tolist()] != bounds:
        raise NotImplementedError(f"{NAME}: cu_seq_lens_k must equal cu_seq_lens_q (no cache)")
    lengths = [e - s for s, e in zip(bounds[:-1], bounds[1:])]
    if bounds[0] != 0 or bounds[-1] != q_len or q_len != kv_len or min(lengths, default=0) < 0:
        raise ValueError(
            f"{NAME}: cu_seq_lens_q runs {bounds[0]}..{bounds[-1]} (non-decreasing?) but the "
            f"row has {q_len} queries and {kv_len} keys"
        )
    return [n for n in lengths if n > 0]


def _lengths_from_positions(position_ids, batch: int, length: int) -> list[list[int]]:
    """Per row, the lengths of its sequences: a new one starts wherever the
    position does not go up by one (masking_utils.find_packed_sequence_indices)."""
    if position_ids is None or position_ids.shape[-1] != length:
        return [[length]] * batch
    pos = position_ids.reshape(-1, length).expand(batch, -1)  # (B, L)
    breaks = torch.diff(pos, dim=-1) != 1  # (B, L - 1)
    if not bool(breaks.any()):
        return [[length]] * batch
    rows = []
    for row in breaks:
        starts = [0] + (torch.nonzero(row).flatten() + 1).tolist()
        rows.append([e - s for s, e in zip(starts, starts[1:] + [length])])
    return rows


# -- the registered functions ---------------------------------------------------


def arena_varlen_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    sliding_window: Optional[int] = None,
    softcap: Optional[float] = None,
    is_causal: Optional[bool] = None,
    cu_seq_lens_q: Optional[torch.Tensor] = None,
    cu_seq_lens_k: Optional[torch.Tensor] = None,
    position_ids: Optional[torch.Tensor] = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """The ``AttentionInterface`` entry. query (B, H, Lq, D), key and value
    (B, Hkv, Lk, D) -> ((B, Lq, H, D), None), like every transformers attention
    function. ``dropout`` is already 0 outside training (the modules do that)."""
    if kwargs.get("s_aux") is not None:
        raise NotImplementedError(f"{NAME}: attention sinks (s_aux)")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    n_rep = getattr(module, "num_key_value_groups", 1)
    batch, _, q_len, _ = query.shape  # (B, H, Lq, D)
    kv_len = key.shape[2]

    if cu_seq_lens_q is not None:
        if attention_mask is not None:
            raise ValueError(
                f"{NAME}: a packed batch (cu_seq_lens_q) must not carry an attention_mask; "
                "with one, the sequences of the pack see each other"
            )
        if batch != 1:
            raise ValueError(f"{NAME}: a packed batch is one row, got {batch}")
        lengths = [_lengths_from_cu(cu_seq_lens_q, cu_seq_lens_k, q_len, kv_len)]
    elif attention_mask is None and q_len == kv_len:
        lengths = _lengths_from_positions(position_ids, batch, q_len)
    elif softcap is not None:
        # Padded / cached / custom mask, soft-capped: eager math over the whole batch.
        k, v = repeat_kv(key, n_rep), repeat_kv(value, n_rep)  # (B, H, Lk, D)
        if attention_mask is None:  # a cache without our mask: causal, end-aligned
            attention_mask = _window_mask(q_len, kv_len, sliding_window, query.device)
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        out = _eager(query, k, v, attention_mask, scale, softcap, dropout, module.training)
        return out.transpose(1, 2).contiguous(), None  # (B, Lq, H, D)
    else:
        # Padded / cached / custom mask: exactly transformers' sdpa.
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )

    # Per-sequence attention.
    opts = dict(
        n_rep=n_rep,
        causal=causal,
        window=sliding_window,
        scaling=scaling if scaling is not None else query.shape[-1] ** -0.5,
        softcap=softcap,
        dropout=dropout,
        training=module.training,
    )
    if all(row == [q_len] for row in lengths):
        # Every row is one whole sequence: one call for the batch.
        out = _attend(query, key, value, **opts)  # (B, H, L, D)
    else:
        rows = []
        for b, sizes in enumerate(lengths):
            # split, not slicing: its backward is one cat, where each slice's
            # backward would zero-fill a full-length gradient.
            parts = zip(*(t[b : b + 1].split(sizes, dim=2) for t in (query, key, value)))
            outs = [_attend(q, k, v, **opts) for q, k, v in parts]  # (1, H, L_i, D) each
            rows.append(torch.cat(outs, dim=2))  # (1, H, L, D)
        out = torch.cat(rows, dim=0)  # (B, H, L, D)
    return out.transpose(1, 2).contiguous(), None  # (B, L, H, D)


def arena_varlen_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    attention_mask: Optional[torch.Tensor] = None,
    **kwargs,
) -> Optional[torch.Tensor]:
    """The ``AttentionMaskInterface`` entry, called by ``create_causal_mask`` and
    ``create_sliding_window_causal_mask`` with the 2-D padding mask (bool) or None.

    No padding mask and no cache offset: None, and the attention function finds
    the sequences itself (cu_seq_lens, else position_ids). This skips the (T, T)
    block-diagonal mask sdpa_mask would build for a packed row.

    Otherwise sdpa_mask, always materialised (no ``is_causal`` skip): an all-ones
    padding mask would otherwise come back as None too, and the attention
    function could no longer tell "padded batch" from "no mask"."""
    no_offset = not isinstance(q_offset, torch.Tensor) and q_offset == 0 and kv_offset == 0
    if attention_mask is None and no_offset and q_length == kv_length:
        return None
    kwargs["allow_is_causal_skip"] = kwargs["allow_is_bidirectional_skip"] = False
    return sdpa_mask(
        batch_size=batch_size,
        q_length=q_length,
        kv_length=kv_length,
        q_offset=q_offset,
        kv_offset=kv_offset,
        attention_mask=attention_mask,
        **kwargs,
    )


def register() -> str:
    """Register ``"arena_varlen"`` with transformers' attention and mask
    interfaces (class-wide, so every model sees it; idempotent). Returns the
    name, for ``attn_implementation=``."""
    AttentionInterface.register(NAME, arena_varlen_attention)
    # The mask interface must know the name too: masking_utils returns no mask at
    # all for implementations missing from its global mapping, padded or not.
    AttentionMaskInterface.register(NAME, arena_varlen_mask)
    return NAME
