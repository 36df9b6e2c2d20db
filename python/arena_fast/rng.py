"""The one generator behind every random choice a dataset or a plan makes
(SplitMix64, as `plan.rs` and `folds.rs` implement it in Rust): the same
(seed, epoch) gives the same choices in Rust, in Python and on every rank.
The readers draw their per-record coins from it (`sources._common.coin`),
and the pure-Python reference (`reference.packing`) plans with it."""

from __future__ import annotations

__all__ = ["SplitMix64", "MASK64"]

MASK64 = (1 << 64) - 1


class SplitMix64:
    """The one generator behind every random choice, so that Rust, this
    reference and every rank agree on a plan for the same (seed, epoch)."""

    def __init__(self, seed: int, epoch: int):
        self.state = seed
        self.state = self.next() ^ epoch

    @classmethod
    def from_state(cls, state: int) -> SplitMix64:
        """The raw generator at `state`, without the (seed, epoch) seeding:
        what the published SplitMix64 test vectors start from."""
        rng = cls.__new__(cls)
        rng.state = state
        return rng

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform in [0, n), unbiased: draws under 2^64 mod n are rejected."""
        threshold = ((1 << 64) - n) % n
        while True:
            r = self.next()
            if r >= threshold:
                return r % n

    def shuffle(self, items: list) -> None:
        """Fisher-Yates, in place, from the back."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
