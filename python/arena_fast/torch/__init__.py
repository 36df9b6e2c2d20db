"""arena_fast.torch: plans and collated batches as torch tensors, and the
`arena_varlen` attention that makes packed batches cheap without flash-attn.
Needs the `train` extra (torch, transformers); `import arena_fast` alone
never imports torch. `arena_fast.torch.hf` (training with Hugging Face
`transformers.Trainer`) loads on first use: it imports the Trainer."""

import importlib

from .attention import NAME as ARENA_VARLEN
from .attention import arena_varlen_attention, register
from .data import (
    ArenaBatches,
    PlanSampler,
    default_layout,
    inference_plan,
    make_loader,
    make_plan,
    resolve_layout,
    to_torch,
)
from .packed import PACKABLE, last_hidden, packed_inputs, packing_problem, padded_inputs, pool_last

__all__ = [
    "ARENA_VARLEN",
    "PACKABLE",
    "ArenaBatches",
    "PlanSampler",
    "arena_varlen_attention",
    "default_layout",
    "inference_plan",
    "last_hidden",
    "make_loader",
    "make_plan",
    "packed_inputs",
    "packing_problem",
    "padded_inputs",
    "pool_last",
    "register",
    "resolve_layout",
    "to_torch",
]


def __getattr__(name: str):
    if name == "hf":  # `af.torch.hf` without importing transformers.Trainer up front
        return importlib.import_module(".hf", __name__)
    raise AttributeError(f"module 'arena_fast.torch' has no attribute {name!r}")
