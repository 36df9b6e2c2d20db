"""The built-in demo rows (`arena_fast.synth`) as a source: what
`build-dataset` reads with no `--input`, and what `predict` re-reads to
write a canonical file from a demo dataset."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from ..synth import iter_rows
from ._common import CANONICAL_SCHEMA, DROPPED_SCHEMA, Chunk

__all__ = ["demo_chunks"]


def demo_chunks(n: int, seed: int, chunk_rows: int) -> Iterator[Chunk]:
    """Synthetic Kaggle-format rows as canonical chunks (text kept as JSON)."""
    rows = iter_rows(n, seed)
    start = 0
    while start < n:
        batch = [next(rows) for _ in range(min(chunk_rows, n - start))]
        frame = pl.DataFrame(
            {
                "id": [str(r["id"]) for r in batch],
                "source": ["synth"] * len(batch),
                "model_a": [r["model_a"] for r in batch],
                "model_b": [r["model_b"] for r in batch],
                "prompt": [r["prompt"] for r in batch],
                "response_a": [r["response_a"] for r in batch],
                "response_b": [r["response_b"] for r in batch],
                "labels": [
                    [float(r["winner_model_a"]), float(r["winner_model_b"]), float(r["winner_tie"])]
                    for r in batch
                ],
                "teacher_logits": [None] * len(batch),
                "row": list(range(start, start + len(batch))),
                "input_rows": [1] * len(batch),
            },
            schema={
                **CANONICAL_SCHEMA,
                "prompt": pl.String,
                "response_a": pl.String,
                "response_b": pl.String,
            },
        )
        start += len(batch)
        yield Chunk(frame, pl.DataFrame(schema=DROPPED_SCHEMA))
