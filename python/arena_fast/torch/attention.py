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
math, softmax in float32, as ``modeling_gemma2.eager_attention_forward``;
a causal sequence in query blocks against only the keys each block sees,
the cap in place: :mod:`.softcap`), dropout and scaling (Gemma's
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

from .softcap import capped, causal_blocks

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
    ``cap * tanh(x / cap)``, to float rounding as transformers' eager
    attention computes it (through ``expm1``: :func:`.softcap.capped`, which
    says why, and why not the sigmoid form).

    With ``inplace``, ``scores`` (a tensor nothing else holds, such as a fresh
    matmul's output) is overwritten, without allocating more score-sized
    tensors; the same bits and gradients as without."""
    return capped(scores if inplace else scores.clone(), scaling, cap)


def _eager(q, k, v, mask, scaling, softcap, dropout, training):
    """Attention as transformers' eager path computes it. q (B, H, Lq, D), k and
    v (B, H, Lk, D) with kv heads already repeated; mask bool (True = keep,
    broadcastable to (B, H, Lq, Lk)), additive float, or None."""
    scores = torch.matmul(q, k.transpose(2, 3))  # (B, H, Lq, Lk)
    fill = None
    if mask is not None and mask.dtype == torch.bool:
        # eager_mask's convention: finfo.min where masked (added to a capped score,
        # it gives finfo.min), filled in place.
        hidden = ~mask

        def fill(s):
            s.masked_fill_(hidden, torch.finfo(s.dtype).min)

    # `scores` is the matmul's own output: capped (and masked) in place.
    if softcap is None:
        scores = scores * scaling
        if fill is not None:
            fill(scores)
    else:
        scores = capped(scores, scaling, softcap, fill)
    if mask is not None and mask.dtype != torch.bool:
        scores = scores + mask
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)  # (B, H, Lq, Lk)
    probs = F.dropout(probs, p=dropout, training=training)
    return torch.matmul(probs, v)  # (B, H, Lq, D)


# Query rows per block of the causal soft-capped path (softcap.causal_blocks):
# 64 measured fastest on a 2k-token tiny-gemma2 pair (128: +5-15%, 256: +50%).
_BLOCK = 64


def _attend(q, k, v, *, n_rep, causal, window, scaling, softcap, dropout, training):
    """One block of independent rows: q (B, H, Lq, D), k and v (B, Hkv, Lk, D)
    with H = Hkv * n_rep -> (B, H, Lq, D)."""
    q_len, kv_len = q.shape[2], k.shape[2]
    if not causal and window is not None and kv_len > window:
        raise NotImplementedError(f"{NAME}: bidirectional sliding-window attention")
    if softcap is not None and causal and q_len == kv_len:
        # Soft-capped (no sdpa): query blocks against the keys they see, no mask.
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, L, D)
        return causal_blocks(
            q,
            k,
            v,
            window=window,
            scaling=scaling,
            softcap=softcap,
            dropout=dropout,
            training=training,
            block=_BLOCK,
        )
    mask = _window_mask(q_len, kv_len, window, q.device) if causal else None  # (Lq, Lk) or None
    if softcap is not None:
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, Lk, D)
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
