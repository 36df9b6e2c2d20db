"""Feeding plans to torch: a sampler that yields one plan step (an index
array) at a time, a dataset that turns such an array into a collated batch
of tensors, and a loader that ties them together. Tensors come from
`torch.from_numpy` over the arrays Rust produced: no copy on the way.

The pattern is `DataLoader(ArenaBatches(...), sampler=PlanSampler(...),
batch_size=None)`: the sampler yields whole batches' indices, so the loader's
own batching is off and each worker collates one batch per fetch.

This module is the one place where a layout picks its planner and its
collator (`make_plan`, `inference_plan`, `ArenaBatches`): `af.train` and
`af.predict` feed their models through it, as users do."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch

from ..collate import collate_packed, collate_padded
from ..encoded import Encoded
from ..errors import ConfigError
from ..plan import Plan, plan_batches, plan_packs
from .packed import packing_problem

__all__ = [
    "ArenaBatches",
    "PlanSampler",
    "default_layout",
    "resolve_layout",
    "inference_plan",
    "make_loader",
    "make_plan",
    "to_torch",
]

LAYOUTS = ("packed", "padded")

# Attention implementations with a per-sequence (varlen) kernel: a pack costs
# what its sequences cost alone. The others attend over the whole packed row
# and mask it (O((sum L)^2)), so length-grouped padded batches are faster
# there (benches/RESULTS.md, "training step").
_VARLEN = ("arena_varlen", "flash_attention_2", "flash_attention_3", "kernels-community/flash-attn")


def _model_config(model: Any) -> Any:
    """The transformers config of `model`: an `ArenaClassifier` (or the
    Trainer's wrapper of one), a decoder (LoRA-wrapped or not) or a config."""
    model = getattr(model, "classifier", model)
    for owner in (getattr(model, "decoder", None), model):
        config = getattr(owner, "config", None)
        if config is not None and hasattr(config, "model_type"):
            return config
    return model


def default_layout(attn_implementation: Optional[str], model: Any = None) -> str:
    """The batch layout for an attention implementation: "packed" for
    varlen kernels, "padded" for sdpa, eager and anything else. Given the
    `model` (a classifier, a decoder or its config), "padded" too when that
    architecture cannot be packed exactly
    (`arena_fast.torch.packed.packing_problem`)."""
    if model is not None and packing_problem(_model_config(model)) is not None:
        return "padded"
    return "packed" if attn_implementation in _VARLEN else "padded"


def resolve_layout(layout: str, attn_implementation: Optional[str], model: Any = None) -> str:
    """A run's `layout` setting made concrete: "auto" is the
    `default_layout` of its attention implementation (and `model`);
    "packed" for a `model` that cannot be packed is a ConfigError saying why."""
    if layout == "auto":
        return default_layout(attn_implementation, model)
    if layout == "packed" and model is not None:
        problem = packing_problem(_model_config(model))
        if problem is not None:
            raise ConfigError(
                f"layout='packed' is not exact for this model: {problem}; use 'padded'"
            )
    return layout


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def make_plan(
    lengths: Union[Encoded, Any], max_tokens: int, layout: str = "packed", **plan_options: Any
) -> Plan:
    """The plan of a layout's batches: `af.plan_packs` for "packed",
    `af.plan_batches` for "padded", with `plan_options` (`seed`, `epoch`,
    `world_size`, `rank`, `pair_swaps`, ...)."""
    _check_layout(layout)
    make = plan_packs if layout == "packed" else plan_batches
    return make(lengths, max_tokens=max_tokens, **plan_options)


def inference_plan(
    lengths: Union[Encoded, Any],
    max_tokens: int,
    layout: str = "packed",
    max_rows: Optional[int] = None,
) -> Plan:
    """Every row once, in a fixed order, for prediction: packs in row order
    (unshuffled) for "packed"; for "padded", or whenever `max_rows` caps the
    rows of a batch (packs have no such cap), batches longest first. Swap
    pairs are not kept together: each row is predicted alone."""
    _check_layout(layout)
    if layout == "packed" and max_rows is None:
        return plan_packs(lengths, max_tokens, pair_swaps=False, shuffle=False)
    return plan_batches(lengths, max_tokens, max_rows=max_rows, order="desc", pair_swaps=False)


def to_torch(batch: dict[str, Any]) -> dict[str, Any]:
    """numpy arrays -> tensors sharing their memory; other values as they are."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}


class PlanSampler(torch.utils.data.Sampler):
    """Yields this rank's steps of a plan, one int64 index array each.

    `layout="packed"` plans with `af.plan_packs`, `"padded"` with
    `af.plan_batches`; `plan_options` go to the planner (`strategy`,
    `pair_swaps`, `max_rows`, `order`, `megabatch`, `drop_last`, ...). Call
    `set_epoch` before each epoch, as with DistributedSampler: the plan is
    re-made for that epoch (same seed and epoch, same steps, on every rank).
    """

    def __init__(
        self,
        lengths: Union[Encoded, Any],
        max_tokens: int,
        layout: str = "packed",
        seed: int = 0,
        world_size: int = 1,
        rank: int = 0,
        **plan_options: Any,
    ):
        _check_layout(layout)
        self.lengths = lengths.lengths if isinstance(lengths, Encoded) else np.asarray(lengths)
        self.layout = layout
        self.options = dict(
            max_tokens=max_tokens, seed=seed, world_size=world_size, rank=rank, **plan_options
        )
        self.epoch = 0
        self._plan: Optional[Plan] = None
        self.plan  # noqa: B018 - plan now, so bad settings fail at construction

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self._plan = None

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = make_plan(
                self.lengths, layout=self.layout, epoch=self.epoch, **self.options
            )
        return self._plan

    def __len__(self) -> int:
        return len(self.plan)

    def __iter__(self):
        return iter(self.plan)


class ArenaBatches(torch.utils.data.Dataset):
    """Encoded rows (and labels aligned with them) collated on demand:
    `dataset[idx_array]` is one batch of tensors, packed or padded."""

    def __init__(
        self,
        encoded: Encoded,
        labels: Optional[Any] = None,
        layout: str = "packed",
        pad_id: Optional[int] = None,
        side: str = "right",
        pad_to_multiple_of: Optional[int] = None,
    ):
        _check_layout(layout)
        if layout == "padded" and pad_id is None:
            raise ConfigError("layout='padded' needs pad_id (the tokenizer's pad token id)")
        self.encoded = encoded
        self.labels = None if labels is None else np.asarray(labels)
        self.layout = layout
        self.pad_id = pad_id
        self.side = side
        self.pad_to_multiple_of = pad_to_multiple_of

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, idx: Any) -> dict[str, Any]:
        if self.layout == "packed":
            batch = collate_packed(self.encoded, idx, self.labels)
        else:
            batch = collate_padded(
                self.encoded, idx, self.pad_id, self.side, self.pad_to_multiple_of, self.labels
            )
        return to_torch(batch)


def make_loader(
    encoded: Encoded,
    labels: Optional[Any] = None,
    layout: str = "packed",
    max_tokens: int = 16384,
    pad_id: Optional[int] = None,
    seed: int = 0,
    world_size: int = 1,
    rank: int = 0,
    num_workers: int = 0,
    side: str = "right",
    pad_to_multiple_of: Optional[int] = None,
    loader_options: Optional[dict[str, Any]] = None,
    **plan_options: Any,
) -> torch.utils.data.DataLoader:
    """A DataLoader over `encoded` in plan order; `loader.sampler.set_epoch(e)`
    before each epoch. Safe with `num_workers > 0` (the Rust core never waits
    on threads that a fork left behind)."""
    sampler = PlanSampler(encoded, max_tokens, layout, seed, world_size, rank, **plan_options)
    dataset = ArenaBatches(encoded, labels, layout, pad_id, side, pad_to_multiple_of)
    return torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        **(loader_options or {}),
    )
