"""The built-in demo rows (`arena_fast.synth`) as a source: what
`build-dataset` reads with no `--input`, and what `predict` re-reads to
write a canonical file from a demo dataset."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from ..labels import CLASS_COLUMNS
from ..synth import iter_rows
from ._common import JSON_TEXT_SCHEMA, Chunk, empty_dropped

__all__ = ["demo_chunks"]

SOURCE = "synth"


def demo_chunks(n: int, seed: int, chunk_rows: int) -> Iterator[Chunk]:
    """Synthetic Kaggle-format rows as canonical chunks (text kept as JSON)."""
    rows = iter_rows(n, seed)
    start = 0
    while start < n:
        batch = [next(rows) for _ in range(min(chunk_rows, n - start))]
        frame = pl.DataFrame(
            {
                "id": [str(r["id"]) for r in batch],
                "source": [SOURCE] * len(batch),
                "model_a": [r["model_a"] for r in batch],
                "model_b": [r["model_b"] for r in batch],
                "prompt": [r["prompt"] for r in batch],
                "response_a": [r["response_a"] for r in batch],
                "response_b": [r["response_b"] for r in batch],
                "labels": [[float(r[c]) for c in CLASS_COLUMNS] for r in batch],
                "teacher_logits": [None] * len(batch),
                "row": list(range(start, start + len(batch))),
                "input_rows": [1] * len(batch),
            },
            schema=JSON_TEXT_SCHEMA,
        )
        start += len(batch)
        yield Chunk(frame, empty_dropped())
