"""Pure-Python reference of every core algorithm, written from the spec in
docs/encoding.md. It is the oracle the property tests hold the Rust core to,
and the "pure-Python pipeline" the benchmarks compare against. It needs the
`tokenizers` package (the `test` extra). Slow on purpose: clarity first."""

from .budget import plan, water_fill
from .encode import ReferenceEncoder
from .turns import parse_turn_list

__all__ = ["ReferenceEncoder", "parse_turn_list", "plan", "water_fill"]
