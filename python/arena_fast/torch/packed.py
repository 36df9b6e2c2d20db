"""Feeding packed and padded batches to a transformers decoder, correctly.

A packed batch (``collate_packed``) is one row of k sequences; transformers
keeps them apart only when it gets **no attention_mask**, position ids that
restart at 0 for each sequence, and no cache (docs/packing.md, "Collation";
with an ``attention_mask`` or the cache on, the sequences silently see each
other). With ``attn_implementation="arena_varlen"`` (or flash-attn) the
``cu_seq_lens_*`` kwargs make attention run per sequence. A padded batch
(``collate_padded``) is the ordinary (B, L) batch with an attention mask.

    hidden = last_hidden(model, batch)  # (k, H): each sequence's last token

Packing is exact only for decoders whose every attention layer goes through
transformers' attention interface, causal, with the full or sliding-window
masks of ``masking_utils`` and positions from ``position_ids``:
``packing_problem(config)`` says why a decoder is not one of them (None when
it is), from its config alone. ``last_hidden`` refuses a packed batch for
such a decoder, and ``default_layout`` picks padded batches for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import torch

from ..errors import ConfigError

__all__ = [
    "PACKABLE",
    "last_hidden",
    "packed_inputs",
    "packing_problem",
    "padded_inputs",
    "pool_last",
]

# The model types whose modeling code we have read and tested packed
# (tests/test_architectures.py): every attention layer calls the attention
# interface with its causal flag, scaling, sliding window and soft-cap, masks
# come from masking_utils, positions from position_ids (rotary), and no layer
# mixes tokens any other way. Another type may well pack correctly, but
# nothing says so: it gets padded batches (never a silently wrong logit).
PACKABLE = ("gemma2", "gemma3_text", "llama", "mistral", "qwen2", "qwen3", "phi3")
# Layer kinds arena_varlen and flash-attn varlen implement per sequence.
_LAYER_TYPES = ("full_attention", "sliding_attention")


def packing_problem(config: Any) -> Optional[str]:
    """Why packed rows would not give a decoder with this config (a
    transformers ``PretrainedConfig``) the logits of its padded batches, in
    words; None when they do. Decided from the config alone: its model type
    must be one of ``PACKABLE``, its attention causal and its layer types full
    or sliding-window attention."""
    kind = getattr(config, "model_type", None)
    if kind not in PACKABLE:
        return f"model type {kind!r} is not one arena_fast packs (it packs {', '.join(PACKABLE)})"
    if getattr(config, "use_bidirectional_attention", False):
        return f"{kind} with use_bidirectional_attention (packs are causal)"
    kinds = getattr(config, "layer_types", None) or ()
    unknown = sorted(set(kinds) - set(_LAYER_TYPES))
    if unknown:
        return f"{kind} with layer types {unknown} (packs know {', '.join(_LAYER_TYPES)})"
    return None


_PACKED_TENSORS = ("input_ids", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k")


def _tensor(x: Any, device) -> torch.Tensor:
    """A torch tensor (numpy arrays from the collators are wrapped, not copied)."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return t if device is None else t.to(device)


def is_packed(batch: Mapping[str, Any]) -> bool:
    """A packed batch carries ``cu_seq_lens_q``; a padded one does not."""
    return batch.get("cu_seq_lens_q") is not None


def packed_inputs(batch: Mapping[str, Any], device=None) -> dict:
    """``model(**kwargs)`` arguments for a packed batch: input_ids and
    position_ids (1, T), cu_seq_lens_q/k (k + 1,), max_length_q/k, and
    ``use_cache=False`` (a cache turns off transformers' packed-sequence
    detection). Never an attention_mask: a batch holding one is refused."""
    if batch.get("attention_mask") is not None:
        raise ValueError(
            "a packed batch must not carry an attention_mask: with one, transformers lets "
            "the sequences of the pack attend to each other"
        )
    missing = [k for k in (*_PACKED_TENSORS, "max_length_q", "max_length_k") if k not in batch]
    if missing:
        raise ValueError(f"not a packed batch: missing {missing}")
    out = {k: _tensor(batch[k], device) for k in _PACKED_TENSORS}
    if out["input_ids"].ndim != 2 or out["input_ids"].shape[0] != 1:
        raise ValueError(
            f"a packed batch is one row, got input_ids {tuple(out['input_ids'].shape)}"
        )
    out["max_length_q"] = int(batch["max_length_q"])
    out["max_length_k"] = int(batch["max_length_k"])
    out["use_cache"] = False
    return out


def padded_inputs(batch: Mapping[str, Any], device=None) -> dict:
    """``model(**kwargs)`` arguments for a padded batch: input_ids and
    attention_mask (B, L), position_ids when present (left padding), and
    ``use_cache=False``."""
    if is_packed(batch):
        raise ValueError("a packed batch (cu_seq_lens_q) given to padded_inputs")
    if batch.get("attention_mask") is None:
        raise ValueError("a padded batch needs its attention_mask")
    out = {k: _tensor(batch[k], device) for k in ("input_ids", "attention_mask")}
    if batch.get("position_ids") is not None:
        out["position_ids"] = _tensor(batch["position_ids"], device)
    out["use_cache"] = False
    return out


def pool_last(hidden: torch.Tensor, last_index: Any, packed: bool) -> torch.Tensor:
    """Each sequence's hidden state at its last token. hidden (B, L, H);
    last_index (k,). Packed: B == 1 and the k indices point into that row.
    Padded: row b at column last_index[b] (k == B). Returns (k, H)."""
    idx = _tensor(last_index, hidden.device).long()  # (k,)
    if packed:
        if hidden.shape[0] != 1:
            raise ValueError(f"a packed batch is one row, got hidden {tuple(hidden.shape)}")
        return hidden[0, idx]  # (k, H)
    if idx.shape[0] != hidden.shape[0]:
        raise ValueError(f"{idx.shape[0]} last indices for {hidden.shape[0]} padded rows")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]  # (B, H)


def decoder(model: torch.nn.Module) -> torch.nn.Module:
    """The base decoder: ``model`` itself for a ``*Model``, its ``.model`` for a
    ``*ForCausalLM`` / ``*ForSequenceClassification`` (``base_model``)."""
    base: Optional[torch.nn.Module] = getattr(model, "base_model", None)
    return model if base is None else base


def last_hidden(model: torch.nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """Runs the base decoder of ``model`` on a packed or padded batch (told apart
    by ``cu_seq_lens_q``) and returns the final hidden state at each sequence's
    last token, (k, H), in batch order."""
    base = decoder(model)
    device = next(base.parameters()).device
    packed = is_packed(batch)
    if packed:
        problem = packing_problem(getattr(base, "config", None))
        if problem is not None:
            raise ConfigError(
                f"this decoder cannot take packed batches: {problem}; use padded ones"
            )
    kwargs = packed_inputs(batch, device) if packed else padded_inputs(batch, device)
    out = base(**kwargs)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # (B, L, H)
    return pool_last(hidden, batch["last_index"], packed)
