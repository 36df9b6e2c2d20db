"""Batch planning: which encoded rows go together.

`plan_packs` puts whole sequences into padding-free packs of at most
`max_tokens` tokens (for flash-attn varlen and `arena_varlen`);
`plan_batches` makes length-grouped padded batches whose padded size stays
within `max_tokens` (for any attention implementation). Both keep swap pairs
together, shuffle per (seed, epoch) deterministically, and give every rank
the same number of steps. The exact rules are in docs/packing.md."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core
from .checks import U64_MAX, check_index, check_int, check_optional_int, int64_array
from .encoded import Encoded
from .errors import ConfigError, InputError

__all__ = ["Plan", "plan_packs", "plan_batches"]


class Plan:
    """One rank's groups of rows, in step order, and figures over all ranks.

    Iterating yields one int64 index array per step (views into `indices`).
    `tokens` and `cost` are per group of this rank (cost: real tokens for
    packs, rows x longest for padded batches); `fill` is real tokens over
    capacity, `imbalance` the share of a synchronous step spent waiting for
    the slowest rank, `rank_tokens` the real tokens of each rank, `dropped`
    the rows `drop_last` left out.
    """

    # What the core returns, then the settings the plan was made with.
    _RESULTS = (
        "indices",
        "offsets",
        "tokens",
        "cost",
        "rank_tokens",
        "dropped",
        "fill",
        "imbalance",
        "num_groups",
    )
    _SETTINGS = ("num_rows", "max_tokens", "world_size", "rank", "seed", "epoch")
    __slots__ = ("kind", *_RESULTS, *_SETTINGS)

    def __init__(self, kind: str, arrays: dict[str, Any], **settings: Any):
        self.kind = kind
        for name in self._RESULTS:
            setattr(self, name, arrays[name])
        for name, value in settings.items():
            setattr(self, name, value)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, step: int) -> np.ndarray:
        step = check_index("step", step, len(self))
        return self.indices[self.offsets[step] : self.offsets[step + 1]]

    def __iter__(self):
        indices, offsets = self.indices, self.offsets.tolist()
        for start, end in zip(offsets[:-1], offsets[1:]):
            yield indices[start:end]

    @property
    def rows_per_step(self) -> np.ndarray:
        return np.diff(self.offsets)

    def restore(self, values: Any, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Put `values` (one per row of this rank, in plan order, e.g. the
        predictions of `order="desc"` batches) back at their rows' places.
        Rows this rank does not hold stay as in `out` (NaN by default)."""
        values = np.asarray(values)
        if len(values) != len(self.indices):
            raise InputError(
                f"restore: got {len(values)} values for the {len(self.indices)} rows of this plan"
            )
        if out is None:
            dtype = np.result_type(values.dtype, np.float32)
            out = np.full((self.num_rows, *values.shape[1:]), np.nan, dtype=dtype)
        out[self.indices] = values
        return out

    def __repr__(self) -> str:
        return (
            f"<arena_fast.Plan {self.kind} steps={len(self)} rows={len(self.indices)} "
            f"fill={self.fill:.4f} rank={self.rank}/{self.world_size} "
            f"imbalance={self.imbalance:.4f} dropped={len(self.dropped)}>"
        )


def _lengths(lengths: Union[Encoded, Any]) -> np.ndarray:
    if isinstance(lengths, Encoded):
        return lengths.lengths
    return int64_array("lengths", lengths)


def _count(name: str, value: Any, low: int = 0) -> int:
    """A count or seed the core takes as a u64 / usize."""
    return check_int(name, value, low, U64_MAX)


def _mode(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a str, got {value!r}")
    return value


def _settings(max_tokens, seed, epoch, world_size, rank) -> dict[str, int]:
    """The checked settings both planners share, in the core's order."""
    return {
        "max_tokens": _count("max_tokens", max_tokens, 1),
        "seed": _count("seed", seed),
        "epoch": _count("epoch", epoch),
        "world_size": _count("world_size", world_size, 1),
        "rank": _count("rank", rank),
    }


def plan_packs(
    lengths: Union[Encoded, Any],
    max_tokens: int = 16384,
    strategy: str = "bfd",
    pair_swaps: bool = True,
    seed: int = 0,
    epoch: int = 0,
    world_size: int = 1,
    rank: int = 0,
    drop_last: bool = False,
    shuffle: bool = True,
) -> Plan:
    """Pack sequences into rows of at most `max_tokens` tokens.

    `lengths` is an `af.Encoded` or its `lengths`. `strategy`: "bfd" (best
    fit decreasing), "greedy" (next fit in row order) or "sorted" (next fit,
    longest first). `pair_swaps` keeps rows 2i and 2i+1 (`swap="both"`) in
    one pack. The pack order is shuffled per (seed, epoch) unless
    `shuffle=False`. A sequence longer than `max_tokens` is an InputError.
    """
    array = _lengths(lengths)
    settings = _settings(max_tokens, seed, epoch, world_size, rank)
    max_tokens, seed, epoch, world_size, rank = settings.values()
    arrays = _core.plan_packs(
        array,
        max_tokens,
        _mode("strategy", strategy),
        bool(pair_swaps),
        seed,
        epoch,
        world_size,
        rank,
        bool(drop_last),
        bool(shuffle),
    )
    return Plan("packs", arrays, num_rows=len(array), **settings)


def plan_batches(
    lengths: Union[Encoded, Any],
    max_tokens: int,
    max_rows: Optional[int] = None,
    order: str = "grouped",
    seed: int = 0,
    epoch: int = 0,
    pair_swaps: bool = True,
    world_size: int = 1,
    rank: int = 0,
    drop_last: bool = False,
    megabatch: int = 512,
) -> Plan:
    """Padded batches whose rows x longest stays within `max_tokens`.

    `order="grouped"` (training): units shuffled per (seed, epoch), cut into
    mega-batches of `megabatch` units sorted by length inside, the batch
    order shuffled. `order="desc"` (inference): longest first over the
    whole set; `Plan.restore` maps results back to row order.
    """
    array = _lengths(lengths)
    settings = _settings(max_tokens, seed, epoch, world_size, rank)
    rows = check_optional_int("max_rows", max_rows, 1, U64_MAX)
    max_tokens, seed, epoch, world_size, rank = settings.values()
    arrays = _core.plan_batches(
        array,
        max_tokens,
        rows,
        _mode("order", order),
        bool(pair_swaps),
        seed,
        epoch,
        world_size,
        rank,
        bool(drop_last),
        _count("megabatch", megabatch, 1),
    )
    return Plan("batches", arrays, num_rows=len(array), **settings)
