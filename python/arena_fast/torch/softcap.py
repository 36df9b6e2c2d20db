"""Gemma-2's soft-capped attention, computing only what a query may see.

Soft-capping (``cap * tanh(scores * scaling / cap)``, Gemma 2's
``attn_logit_softcapping``) has no sdpa kernel, so ``arena_varlen`` computes
these layers as transformers' eager attention does: scores, cap, mask,
softmax in float32, dropout, times the values. Two things make that cheap on
a CPU without changing the numbers beyond float rounding:

- :func:`causal_blocks` takes the queries of one causal sequence in blocks
  and scores each block only against the keys it can see: from the window
  start of its first query (``sliding_window - 1`` keys back, the whole prefix
  on a full layer) to its last query. A sliding layer costs L x (window +
  block) scores, not L x L; a full layer the lower triangle and the diagonal
  blocks. The masked corners of a block (the upper triangle of its diagonal
  square, the lower triangle at the window's edge) are filled in place from
  small cached (block, block) masks: no (L, L) mask tensor, no additive mask.
- :func:`capped` caps in place on the matmul's own output with
  ``tanh(y) = expm1(2y) / (expm1(2y) + 2)`` (float32 / float64; another dtype
  keeps ``torch.tanh``): within 2.2 float32 eps of tanh where torch's tanh is
  within 1.2 (measured on 1M scores against float64), and 2-3x faster on the
  CPU, whose tanh kernel is the slowest step of the eager path
  (benches/bench_softcap.py). Not ``2 cap * sigmoid(2y) - cap``: the same
  function, but it loses the low bits of scores near 0 (benches/RESULTS.md).

Where autograd records, the cap and the mask are one ``autograd.Function``
that keeps its output for the backward (``grad * (1 - (out / cap)^2) *
scaling``; the masked entries, filled with the dtype's minimum, get 0), as
much memory as transformers' tanh keeps.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import torch
import torch.nn.functional as F

__all__ = ["capped", "causal_blocks"]

# Dtypes capped through expm1; another (bf16, fp16) keeps torch.tanh, whose
# single rounding suits 8 or 11 bits better than expm1's four operations.
_EXPM1_DTYPES = (torch.float32, torch.float64)
# tanh(y) is 1 in float32 and float64 from y ~ 19: 2y clamped to 80 keeps
# expm1 finite (a huge score still caps to exactly cap).
_MAX_2Y = 80.0

Fill = Callable[[torch.Tensor], None]


def _cap_(scores: torch.Tensor, scaling: float, cap: float) -> torch.Tensor:
    """``scores`` overwritten with ``cap * tanh(scores * scaling / cap)``."""
    if scores.dtype not in _EXPM1_DTYPES:
        return scores.mul_(scaling).div_(cap).tanh_().mul_(cap)  # the eager's operations
    # 2y in one correctly rounded division (exact where cap / 2 scaling is, as
    # for Gemma 2's 50 / 2 * 256^-0.5), not a product by a rounded 2 scaling / cap
    e = scores.div_(cap / (2.0 * scaling)).clamp_(max=_MAX_2Y).expm1_()  # expm1(2y) > -1
    denominator = e + 2.0  # in (1, inf): no cancellation
    return e.mul_(cap).div_(denominator)


class _Capped(torch.autograd.Function):
    """The cap (and mask) in place, with the backward of tanh."""

    @staticmethod
    def forward(ctx, scores, scaling: float, cap: float, fill: Optional[Fill]):
        out = _cap_(scores, scaling, cap)
        if fill is not None:
            fill(out)
        ctx.mark_dirty(scores)
        ctx.save_for_backward(out)
        ctx.scaling, ctx.cap = scaling, cap
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # tanh = out / cap; a masked entry (dtype minimum) clamps to -1: no gradient
        tanh = (out / ctx.cap).clamp_(-1.0, 1.0)
        return torch.ops.aten.tanh_backward(grad, tanh).mul_(ctx.scaling), None, None, None


def capped(
    scores: torch.Tensor, scaling: float, cap: float, fill: Optional[Fill] = None
) -> torch.Tensor:
    """``cap * tanh(scores * scaling / cap)``, computed IN PLACE on ``scores``
    (a tensor nothing else holds, such as a fresh matmul's output), then
    ``fill(scores)`` (masking in place, if given). Differentiable."""
    if torch.is_grad_enabled() and scores.requires_grad:
        return _Capped.apply(scores, scaling, cap, fill)
    out = _cap_(scores, scaling, cap)
    if fill is not None:
        fill(out)
    return out


@functools.lru_cache(maxsize=256)
def _triangle(rows: int, cols: int, diagonal: int, upper: bool, dtype, device) -> torch.Tensor:
    """(rows, cols) additive mask: the dtype's minimum above (upper) or below
    the ``diagonal``-th diagonal (``torch.triu`` / ``torch.tril``'s
    convention), 0 elsewhere. Added to a capped score (|score| <= cap) it gives
    the minimum exactly, as eager's additive mask does; 4x faster than
    ``masked_fill_`` on a block's strided corner."""
    ones = torch.ones(rows, cols, dtype=torch.bool, device=device)
    hidden = ones.triu(diagonal) if upper else ones.tril(diagonal)
    return torch.zeros(rows, cols, dtype=dtype, device=device).masked_fill_(
        hidden, torch.finfo(dtype).min
    )


def _block_fill(rows: int, offset: int, window: Optional[int]) -> Fill:
    """Masks a block's scores (..., rows, offset + rows) in place: query r (at
    key column offset + r) sees the columns c with c <= offset + r and, with a
    window, c > offset + r - window. The two masked corners never overlap."""

    def fill(scores: torch.Tensor) -> None:
        kind = (scores.dtype, scores.device)
        scores[..., offset:].add_(_triangle(rows, rows, 1, True, *kind))  # c - offset > r
        edge = offset - window if window is not None else None  # masked: c - r <= edge
        if edge is not None and edge + rows - 1 >= 0:
            cols = min(offset + rows, edge + rows)
            scores[..., :cols].add_(_triangle(rows, cols, edge, False, *kind))

    return fill


@functools.lru_cache(maxsize=64)
def _band(rows: int, window: int, dtype, device) -> torch.Tensor:
    """(rows, rows + window - 1) additive mask of a whole block in the band:
    query r sees the columns r .. r + window - 1, the minimum elsewhere."""
    cols = rows + window - 1
    return _triangle(rows, cols, -1, False, dtype, device) + _triangle(
        rows, cols, window, True, dtype, device
    )


def _attend(q, k, v, fill: Fill, scaling, softcap, dropout, training) -> torch.Tensor:
    """q (..., b, D) against k, v (..., n, D), masked in place by ``fill``."""
    scores = capped(torch.matmul(q, k.transpose(-1, -2)), scaling, softcap, fill)  # (..., b, n)
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    if dropout and training:
        probs = F.dropout(probs, p=dropout, training=True)
    return torch.matmul(probs, v)  # (..., b, D)


def _band_blocks(q, k, v, first: int, count: int, block: int, window: int, opts) -> torch.Tensor:
    """The ``count`` whole blocks from block ``first`` of a sliding layer, whose
    keys (``block + window - 1`` each, all in the sequence) overlap: one batch
    of blocks (``unfold``), one mask for all -> (B, H, count * block, D)."""
    size = block + window - 1
    lo, end = first * block - window + 1, (first + count) * block  # lo >= 0
    qs = q[:, :, first * block : end].unflatten(2, (count, block))  # (B, H, n, b, D)
    ks = k[:, :, lo:end].unfold(2, size, block).transpose(-1, -2)  # (B, H, n, size, D)
    vs = v[:, :, lo:end].unfold(2, size, block).transpose(-1, -2)  # (B, H, n, size, D)

    def fill(scores: torch.Tensor) -> None:
        scores.add_(_band(block, window, scores.dtype, scores.device))

    return _attend(qs, ks, vs, fill, *opts).flatten(2, 3)  # (B, H, n * b, D)


def causal_blocks(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    window: Optional[int],
    scaling: float,
    softcap: float,
    dropout: float,
    training: bool,
    block: int,
) -> torch.Tensor:
    """Causal (and windowed: a query sees itself and the ``window - 1`` keys
    before it) soft-capped attention of one sequence per batch row, q, k, v
    (B, H, L, D) with the kv heads already repeated -> (B, H, L, D), in blocks
    of ``block`` queries, each against only the keys it can see; on a sliding
    layer the whole blocks past the first window, all alike, go as one batch.
    Every query's softmax runs over the keys it sees in the whole masked matrix
    (a masked score adds exp(min) = 0), so only float rounding differs from
    eager."""
    length = q.shape[2]
    opts = (scaling, softcap, dropout, training)
    # On a sliding layer: the first block whose keys start inside the
    # sequence, and how many whole blocks follow it.
    first = -(-(window - 1) // block) if window is not None else 0
    count = length // block - first if window is not None else 0
    outs = []
    start = 0
    while start < length:
        if count > 1 and start == first * block:
            outs.append(_band_blocks(q, k, v, first, count, block, window, opts))
            start += count * block
            continue
        end = min(start + block, length)
        lo = 0 if window is None else max(0, start - window + 1)
        fill = _block_fill(end - start, start - lo, window)
        outs.append(_attend(q[:, :, start:end], k[:, :, lo:end], v[:, :, lo:end], fill, *opts))
        start = end
    return torch.cat(outs, dim=2)  # (B, H, L, D)
