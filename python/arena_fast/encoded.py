"""`af.Encoded`: encoded rows as flat numpy arrays (ids + offsets) with
per-row diagnostics. Built from arrays the Rust core hands over without a copy."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

__all__ = ["Encoded", "REPAIR_NULL", "REPAIR_SURROGATE", "REPAIR_RAGGED"]

# Bits of `Encoded.repairs` (the same as the core's `turns::repair`).
REPAIR_NULL = 1
REPAIR_SURROGATE = 2
REPAIR_RAGGED = 4

_ROW_FIELDS = ("turns_total", "turns_kept", "truncated", "repairs", "is_swapped", "source_row")


class Encoded:
    """Rows of token ids, concatenated.

    `input_ids` (int32) holds every row back to back; row i is
    `input_ids[offsets[i]:offsets[i+1]]`. Per row: `turns_total`, `turns_kept`,
    `truncated`, `repaired` (and the `repairs` bit set: null, lone surrogate,
    ragged turns), `is_swapped`, and `source_row` (the input row it came from;
    with `swap="both"` rows 2i and 2i+1 both come from row i).
    """

    __slots__ = ("input_ids", "offsets", *_ROW_FIELDS)

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.input_ids = arrays["input_ids"]
        self.offsets = arrays["offsets"]
        for name in _ROW_FIELDS:
            setattr(self, name, arrays[name])

    @classmethod
    def from_lists(cls, rows: Any, swap_pairs: bool = False) -> Encoded:
        """Rows of token ids made elsewhere (another tokenizer pipeline, a
        test) as an `Encoded`, so they can be planned and collated. Nothing
        was truncated or repaired; with `swap_pairs`, rows 2i and 2i+1 are
        the two orders of input row i, as `swap="both"` lays them out."""
        lengths = [len(r) for r in rows]
        n = len(lengths)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
        order = np.arange(n, dtype=np.int64)
        return cls(
            {
                "input_ids": flat,
                "offsets": offsets,
                "turns_total": np.ones(n, dtype=np.int32),
                "turns_kept": np.ones(n, dtype=np.int32),
                "truncated": np.zeros(n, dtype=bool),
                "repairs": np.zeros(n, dtype=np.uint8),
                "is_swapped": (order % 2 == 1) if swap_pairs else np.zeros(n, dtype=bool),
                "source_row": order // 2 if swap_pairs else order,
            }
        )

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row (int64)."""
        return np.diff(self.offsets)

    @property
    def repaired(self) -> np.ndarray:
        """Rows whose text was repaired (null, lone surrogate, ragged turns)."""
        return self.repairs != 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: Union[int, np.integer]) -> np.ndarray:
        """Row i as a view into `input_ids`."""
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range for {n} rows")
        return self.input_ids[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def to_lists(self) -> list[list[int]]:
        return [row.tolist() for row in self]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ("input_ids", "offsets", *_ROW_FIELDS)}

    def __getstate__(self) -> dict[str, Any]:
        return self.arrays()

    def __setstate__(self, state: dict[str, Any]) -> None:
        Encoded.__init__(self, state)

    def __repr__(self) -> str:
        n = len(self)
        if n == 0:
            return "<arena_fast.Encoded rows=0>"
        lengths = self.lengths
        return (
            f"<arena_fast.Encoded rows={n} tokens={len(self.input_ids)} "
            f"max_len={int(lengths.max())} truncated={int(self.truncated.sum())}>"
        )
