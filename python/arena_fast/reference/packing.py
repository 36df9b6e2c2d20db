"""Reference: batch planning (`plan_packs`, `plan_batches`), from docs/packing.md.

Rows are grouped into units (a swap pair never splits), units into groups
(token-budget packs, or padded batches), and groups into steps of one group
per rank. Written for clarity, with one concession to speed: best fit keeps
its packs in a sorted list (bisect) so that ~20k rows plan in well under a
second. Plain Python ints throughout; numpy reads the input and holds the
returned arrays.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from operator import index
from typing import Callable, Optional, TypeVar, Union

import numpy as np

from ..encoded import Encoded
from ..errors import ConfigError, InputError
from ..rng import MASK64, SplitMix64

__all__ = ["SplitMix64", "plan_packs", "plan_batches", "PACK_STRATEGIES", "BATCH_ORDERS"]

PACK_STRATEGIES = ("greedy", "sorted", "bfd")
BATCH_ORDERS = ("grouped", "desc")

T = TypeVar("T")


# -- arguments and units ---------------------------------------------------------------
def _integer(name: str, value) -> int:
    """An int argument as a Python int; a float, a bool or a string is refused."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        return index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _check_common(
    max_tokens: int, seed: int, epoch: int, world_size: int, rank: int
) -> tuple[int, int, int, int, int]:
    """The shared arguments, checked, as plain ints (numpy integers would wrap)."""
    max_tokens, seed, epoch, world_size, rank = (
        _integer(name, value)
        for name, value in (
            ("max_tokens", max_tokens),
            ("seed", seed),
            ("epoch", epoch),
            ("world_size", world_size),
            ("rank", rank),
        )
    )
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1, got {max_tokens}")
    for name, value in (("seed", seed), ("epoch", epoch)):
        if not 0 <= value <= MASK64:
            raise ConfigError(f"{name} must be in [0, 2**64), got {value}")
    if world_size < 1:
        raise ConfigError(f"world_size must be at least 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, world_size={world_size}), got {rank}")
    return max_tokens, seed, epoch, world_size, rank


def _lengths_and_units(
    lengths: Union[Encoded, Sequence[int], np.ndarray], pair_swaps: bool
) -> tuple[list[int], list[tuple[int, ...]]]:
    """Lengths as ints, and the units: (2u, 2u + 1) with pair_swaps, else (u,).
    Lengths are checked before the pairing: a bad length is the first thing
    worth reporting."""
    if isinstance(lengths, Encoded):
        lengths = lengths.lengths
    array = np.asarray(lengths)
    if array.ndim != 1:
        raise InputError(f"lengths must be one-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise InputError(f"lengths must be integers, got dtype {array.dtype}")
    values = [int(v) for v in array.tolist()]
    for row, length in enumerate(values):
        if length < 1:
            raise InputError(
                f"row {row} has length {length}: every length must be at least 1 "
                "(a sequence is pooled at its last token)"
            )
    n = len(values)
    if pair_swaps and n % 2:
        raise ConfigError(
            f"pair_swaps=True needs an even number of rows (swap='both' gives pairs), got {n}"
        )
    if pair_swaps:
        return values, [(2 * u, 2 * u + 1) for u in range(n // 2)]
    return values, [(u,) for u in range(n)]


def _describe(rows: tuple[int, ...]) -> str:
    if len(rows) == 1:
        return f"row {rows[0]} needs"
    return f"rows {rows[0]} and {rows[1]} (a swap pair) need"


# -- groups ----------------------------------------------------------------------------
def _next_fit(
    order: list[int], start: Callable[[int], T], join: Callable[[T, int], Optional[T]]
) -> list[list[int]]:
    """Cut `order` into groups, next fit: a unit joins the open group when it
    fits, else that group is closed and a new one opened. `start(u)` is the
    state (what the limits look at) of a group holding `u` alone, `join(state,
    u)` the state with `u` added, or None when `u` does not fit."""
    groups: list[list[int]] = []
    state: Optional[T] = None
    for u in order:
        joined = join(state, u) if state is not None else None
        if joined is None:
            groups.append([u])
            state = start(u)
        else:
            groups[-1].append(u)
            state = joined
    return groups


def _best_fit(order: list[int], cost: list[int], max_tokens: int) -> list[list[int]]:
    """Each unit into the pack with the least room that still holds it, ties
    to the lowest pack id. `free` holds (room, pack id) sorted, so the first
    entry at or after (cost, -1) is exactly that pack; full packs leave it."""
    packs: list[list[int]] = []
    free: list[tuple[int, int]] = []
    for u in order:
        c = cost[u]
        k = bisect_left(free, (c, -1))
        if k == len(free):
            pack, room = len(packs), max_tokens - c
            packs.append([u])
        else:
            room, pack = free.pop(k)
            room -= c
            packs[pack].append(u)
        if room > 0:
            insort(free, (room, pack))
    return packs


# -- ranks and steps -------------------------------------------------------------------
def _distribute(
    groups: list[list[int]],
    units: list[tuple[int, ...]],
    lengths: list[int],
    group_cost: Callable[[list[int]], int],
    world_size: int,
    rank: int,
    drop_last: bool,
    rng: Optional[SplitMix64],
) -> dict:
    """Groups (lists of unit ids, creation order) -> this rank's plan.
    `rng` is None when not shuffling."""
    W = world_size
    shuffle = rng is not None

    def step_order(costs: list[int]) -> list[int]:
        positions = list(range(len(costs)))
        if shuffle:
            positions.sort(key=lambda p: (-costs[p], p))
        return positions

    def rows_of(group: list[int]) -> list[int]:
        return [row for u in group for row in units[u]]

    # 1. Equal step counts: drop the last groups of the step order, or split.
    dropped: list[int] = []
    if len(groups) % W and drop_last:
        order = step_order([group_cost(g) for g in groups])
        cut = len(groups) - len(groups) % W
        gone = set(order[cut:])
        for p in gone:
            dropped.extend(rows_of(groups[p]))
        groups = [g for p, g in enumerate(groups) if p not in gone]
    while len(groups) % W:
        most = max(len(g) for g in groups)
        if most == 1:
            raise ConfigError(
                f"cannot give {W} ranks the same number of steps: {len(groups)} groups of one "
                "unit each and no group left to split (too few rows for that many ranks; "
                "drop_last=True drops the remainder instead)"
            )
        p = next(p for p, g in enumerate(groups) if len(g) == most)
        keep = (most + 1) // 2
        groups[p : p + 1] = [groups[p][:keep], groups[p][keep:]]

    costs = [group_cost(g) for g in groups]
    tokens = [sum(lengths[row] for row in rows_of(g)) for g in groups]

    # 2. Step order; step s is entries sW .. sW + W - 1.  3. Steps shuffled.
    order = step_order(costs)
    steps = [order[s * W : (s + 1) * W] for s in range(len(order) // W)]
    if rng is not None:
        rng.shuffle(steps)

    # 4. Inside step t: heaviest first, rank r takes entry (r + t) mod W.
    mine: list[int] = []
    rank_tokens = [0] * W
    sum_max = 0
    for t, step in enumerate(steps):
        ranked = sorted(range(W), key=lambda j: (-costs[step[j]], j))
        for r in range(W):
            g = step[ranked[(r + t) % W]]
            rank_tokens[r] += tokens[g]
            if r == rank:
                mine.append(g)
        sum_max += max(costs[g] for g in step)

    total_cost = sum(costs)
    imbalance = 0.0
    if W > 1 and total_cost > 0:
        imbalance = float(sum_max * W) / float(total_cost) - 1.0

    indices: list[int] = []
    offsets = [0]
    for g in mine:
        indices.extend(rows_of(groups[g]))
        offsets.append(len(indices))
    return {
        "indices": np.asarray(indices, dtype=np.int64),
        "offsets": np.asarray(offsets, dtype=np.int64),
        "tokens": np.asarray([tokens[g] for g in mine], dtype=np.int64),
        "cost": np.asarray([costs[g] for g in mine], dtype=np.int64),
        "rank_tokens": np.asarray(rank_tokens, dtype=np.int64),
        "dropped": np.asarray(sorted(dropped), dtype=np.int64),
        "imbalance": imbalance,
        "num_groups": len(groups),
        "_total_tokens": sum(tokens),  # for fill, which the callers define
        "_total_cost": total_cost,
    }


def _finish(plan: dict, capacity: int) -> dict:
    total = plan.pop("_total_tokens")
    plan.pop("_total_cost")
    plan["fill"] = float(total) / float(capacity) if capacity > 0 else 0.0
    return {key: plan[key] for key in _KEYS}


_KEYS = (
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


# -- the planners ----------------------------------------------------------------------
def plan_packs(
    lengths: Union[Encoded, Sequence[int], np.ndarray],
    max_tokens: int = 16384,
    strategy: str = "bfd",
    pair_swaps: bool = True,
    seed: int = 0,
    epoch: int = 0,
    world_size: int = 1,
    rank: int = 0,
    drop_last: bool = False,
    shuffle: bool = True,
) -> dict:
    """Token-budget packs of at most `max_tokens` real tokens, dealt to ranks."""
    max_tokens, seed, epoch, world_size, rank = _check_common(
        max_tokens, seed, epoch, world_size, rank
    )
    if strategy not in PACK_STRATEGIES:
        raise ConfigError(f"strategy must be one of {PACK_STRATEGIES}, got {strategy!r}")
    lengths, units = _lengths_and_units(lengths, pair_swaps)
    cost = [sum(lengths[row] for row in unit) for unit in units]
    for unit, c in zip(units, cost):
        if c > max_tokens:
            together = " together" if len(unit) > 1 else ""
            raise InputError(
                f"{_describe(unit)} {c} tokens{together}, more than max_tokens={max_tokens}"
            )

    by_cost = sorted(range(len(units)), key=lambda u: (-cost[u], u))
    if strategy == "bfd":
        groups = _best_fit(by_cost, cost, max_tokens)
    else:

        def join(used: int, u: int) -> Optional[int]:
            return used + cost[u] if used + cost[u] <= max_tokens else None

        order = list(range(len(units))) if strategy == "greedy" else by_cost
        groups = _next_fit(order, lambda u: cost[u], join)

    rng = SplitMix64(seed, epoch) if shuffle else None
    plan = _distribute(
        groups,
        units,
        lengths,
        lambda g: sum(cost[u] for u in g),
        world_size,
        rank,
        drop_last,
        rng,
    )
    return _finish(plan, plan["num_groups"] * max_tokens)


def plan_batches(
    lengths: Union[Encoded, Sequence[int], np.ndarray],
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
) -> dict:
    """Padded batches (rows x longest row <= max_tokens, rows <= max_rows),
    dealt to ranks."""
    max_tokens, seed, epoch, world_size, rank = _check_common(
        max_tokens, seed, epoch, world_size, rank
    )
    if order not in BATCH_ORDERS:
        raise ConfigError(f"order must be one of {BATCH_ORDERS}, got {order!r}")
    max_rows = None if max_rows is None else _integer("max_rows", max_rows)
    if max_rows is not None and max_rows < 1:
        raise ConfigError(f"max_rows must be at least 1 (or None), got {max_rows}")
    megabatch = _integer("megabatch", megabatch)
    if megabatch < 1:
        raise ConfigError(f"megabatch must be at least 1, got {megabatch}")
    lengths, units = _lengths_and_units(lengths, pair_swaps)
    longest = [max(lengths[row] for row in unit) for unit in units]
    for unit, top in zip(units, longest):
        size = len(unit) * top
        if size > max_tokens:
            raise InputError(
                f"{_describe(unit)} {len(unit)} x {top} = {size} padded tokens, "
                f"more than max_tokens={max_tokens}"
            )
        if max_rows is not None and len(unit) > max_rows:
            raise InputError(
                f"rows {unit[0]} and {unit[1]} (a swap pair) cannot share a batch of at most "
                f"max_rows={max_rows} rows"
            )

    def padded(group: list[int]) -> int:
        return sum(len(units[u]) for u in group) * max(longest[u] for u in group)

    def start(u: int) -> tuple[int, int]:
        return len(units[u]), longest[u]

    def join(state: tuple[int, int], u: int) -> Optional[tuple[int, int]]:
        rows, top = state[0] + len(units[u]), max(state[1], longest[u])
        if rows * top > max_tokens or (max_rows is not None and rows > max_rows):
            return None
        return rows, top

    rng: Optional[SplitMix64] = None
    if order == "grouped":
        rng = SplitMix64(seed, epoch)
        shuffled = list(range(len(units)))
        rng.shuffle(shuffled)
        groups: list[list[int]] = []
        for first in range(0, len(shuffled), megabatch):
            mega = sorted(shuffled[first : first + megabatch], key=lambda u: -longest[u])
            groups.extend(_next_fit(mega, start, join))
    else:
        desc = sorted(range(len(units)), key=lambda u: (-longest[u], u))
        groups = _next_fit(desc, start, join)

    plan = _distribute(groups, units, lengths, padded, world_size, rank, drop_last, rng)
    return _finish(plan, plan["_total_cost"])
