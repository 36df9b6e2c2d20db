"""Reference: leak-free cross-validation folds (`assign_folds`), from
docs/dataset.md ("Folds").

Rows with the same key (prompt) form a group; groups are placed whole, the
largest first, each into the fold where its label classes are rarest
relative to their totals. Plain Python ints throughout, so the costs are
exact and the result equals the Rust core's bit for bit; numpy only reads
the input and holds the returned array.
"""

from __future__ import annotations

from operator import index

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["assign_folds", "mix", "NUM_CLASSES", "MAX_FOLDS"]

NUM_CLASSES = 4  # 0 A wins, 1 B wins, 2 tie, 3 unlabelled / other
MAX_FOLDS = 127  # fold ids are int8
_MASK64 = (1 << 64) - 1


def mix(z: int) -> int:
    """The SplitMix64 finaliser: a 64-bit hash that orders equal-sized
    groups by their key, differently (but reproducibly) per seed."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _ints(name: str, values) -> list[int]:
    """A one-dimensional sequence of integers as a list of Python ints."""
    if isinstance(values, (list, tuple)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values
    ):
        return [int(v) for v in values]
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise InputError(f"{name} must be integers, got dtype {array.dtype}")
    return [int(v) for v in array.tolist()]


def assign_folds(keys, classes, k: int, seed: int = 0) -> np.ndarray:
    """The fold (0 to k - 1, int8) of every row. `keys` are taken modulo
    2^64 (a signed column of hashes is read as its unsigned bits);
    `classes` must be 0 to 3."""
    if isinstance(k, bool):
        raise ConfigError(f"k must be an integer, got {k!r}")
    try:
        k = index(k)
        seed = index(seed)
    except TypeError:
        raise ConfigError(f"k and seed must be integers, got {k!r} and {seed!r}") from None
    if not 1 <= k <= MAX_FOLDS:
        raise ConfigError(f"k (the number of folds) must be between 1 and {MAX_FOLDS}, got {k}")
    if not 0 <= seed <= _MASK64:
        raise ConfigError(f"seed must be in [0, 2^64), got {seed}")
    keys = [key & _MASK64 for key in _ints("keys", keys)]
    classes = _ints("classes", classes)
    if len(keys) != len(classes):
        raise InputError(f"keys and classes have different lengths: {len(keys)} and {len(classes)}")
    for row, c in enumerate(classes):
        if not 0 <= c < NUM_CLASSES:
            raise InputError(
                f"row {row}: class {c} is not 0 (A wins), 1 (B wins), 2 (tie) or 3 (unlabelled)"
            )

    # Groups: rows per key, and their class counts.
    rows_of: dict[int, list[int]] = {}
    for row, key in enumerate(keys):
        rows_of.setdefault(key, []).append(row)
    totals = [classes.count(c) for c in range(NUM_CLASSES)]

    # Largest first; equal sizes by the seeded hash of the key, then the key.
    salt = mix(seed)
    order = sorted(rows_of, key=lambda key: (-len(rows_of[key]), mix(key ^ salt), key))

    # W[c]: the product of the other classes' non-zero totals, so that
    # g * count * W[c] compares like g * count / T[c] (no division).
    weights = []
    for c in range(NUM_CLASSES):
        w = 1
        for other in range(NUM_CLASSES):
            if other != c and totals[other] > 0:
                w *= totals[other]
        weights.append(w)

    counts = [[0] * NUM_CLASSES for _ in range(k)]
    sizes = [0] * k
    folds = [0] * len(keys)
    for key in order:
        rows = rows_of[key]
        group = [0] * NUM_CLASSES
        for row in rows:
            group[classes[row]] += 1

        # cost(f): the group's rows times the rows of the same class that
        # fold f already holds, each class weighted by W[c].
        costs = [
            sum(group[c] * counts[f][c] * weights[c] for c in range(NUM_CLASSES) if group[c] > 0)
            for f in range(k)
        ]
        # Lowest cost, then fewest rows so far, then lowest index.
        best = min(range(k), key=lambda f: (costs[f], sizes[f], f))
        for c in range(NUM_CLASSES):
            counts[best][c] += group[c]
        sizes[best] += len(rows)
        for row in rows:
            folds[row] = best
    return np.asarray(folds, dtype=np.int8)
