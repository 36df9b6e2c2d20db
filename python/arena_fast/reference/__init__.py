"""Pure-Python reference of every core algorithm, written from the specs in
docs/encoding.md (encoding) and docs/packing.md (planning, collation). It is
the oracle the property tests hold the Rust core to, and the "pure-Python
pipeline" the benchmarks compare against. It needs the `tokenizers` package
(the `test` extra). Clarity first, slow on purpose, except for the numpy
collators, the fair baseline of the collation benchmarks."""

from .budget import plan, water_fill
from .collate import collate_packed, collate_padded
from .encode import ReferenceEncoder
from .packing import SplitMix64, plan_batches, plan_packs
from .turns import parse_turn_list

__all__ = [
    "ReferenceEncoder",
    "SplitMix64",
    "collate_packed",
    "collate_padded",
    "parse_turn_list",
    "plan",
    "plan_batches",
    "plan_packs",
    "water_fill",
]
