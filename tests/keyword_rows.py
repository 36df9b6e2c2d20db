"""Rows whose label follows a rule visible only in the text, for the tests
that train: A wins when its (last) answer holds "zebra", B when B's does,
tie otherwise (labels cycle A, B, tie)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from arena_fast.dataset import BuildConfig, build_dataset

WORDS = "river stone cloud apple music paper garden window lamp ocean forest bread".split()


def keyword_rows(
    n: int,
    seed: int,
    *,
    max_turns: int = 1,
    answer_words: tuple = (4, 12),
    prompt_words: int = 5,
) -> pl.DataFrame:
    """`n` canonical rows (`id`, turn lists, `labels`); with `max_turns` > 1
    each row has 1 to `max_turns` turns."""
    rng = np.random.default_rng(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS, size=k))

    rows = []
    for i in range(n):
        label = i % 3
        turns = int(rng.integers(1, max_turns + 1)) if max_turns > 1 else 1
        a = [words(int(rng.integers(*answer_words))) for _ in range(turns)]
        b = [words(int(rng.integers(*answer_words))) for _ in range(turns)]
        if label < 2:
            (a if label == 0 else b)[-1] += " zebra"
        rows.append(
            {
                "id": str(i),
                "prompt": [f"question {words(prompt_words)}" for _ in range(turns)],
                "response_a": a,
                "response_b": b,
                "labels": [float(label == 0), float(label == 1), float(label == 2)],
            }
        )
    return pl.DataFrame(rows)


def build_rows(rows: pl.DataFrame, root: Path, name: str = "ds", **config) -> Path:
    """`rows` written to ROOT/NAME.parquet and built (canonical input) into
    the dataset ROOT/NAME; `config` are BuildConfig settings."""
    source = root / f"{name}.parquet"
    rows.write_parquet(source)
    build_dataset(BuildConfig(inputs=[f"{source}:canonical"], **config), root / name)
    return root / name
