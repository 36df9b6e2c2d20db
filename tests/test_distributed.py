"""Encoders scale out: an `af.Encoder` pickles (by its tokenizer JSON and
config), so `datasets.Dataset.map(num_proc=...)`, a spawn pool (and so Ray or
Spark workers) encode shards to the same ids as one process does."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import datasets
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import arena_fast as af
from arena_fast import synth
from conftest import TEXT_COLUMNS, _require_shared, assert_same_encoded, tokenizer_path

Columns = tuple[list[str], list[str], list[str]]


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder(shared_dir: Path) -> af.Encoder:
    """A real (Gemma 3) tokenizer; missing ../shared skips, or fails with CI=true."""
    tok = af.Tokenizer.from_file(tokenizer_path(shared_dir, "gemma3"))
    return af.Encoder(tok, template="rounds", strategy="fair", max_length=1024)


@pytest.fixture(scope="module")
def columns(data_dir: Path) -> Columns:
    """The 100 real Kaggle rows read with polars, then 300 synthetic rows
    (nulls, lone surrogates, ragged turns, special-token strings)."""
    real = pl.read_csv(_require_shared(data_dir / "kaggle_train_head100.csv"))
    fake = synth.generate_rows(300, seed=7)
    p, a, b = ((real[c].to_list() + [r[c] for r in fake]) for c in TEXT_COLUMNS)
    assert len(p) == 400
    return p, a, b


@pytest.fixture(scope="module")
def expected(encoder: af.Encoder, columns: Columns) -> af.Encoded:
    """Every row encoded in this process, in one call."""
    return encoder.encode_json(*columns, swap="both")


def concat(parts: list[af.Encoded]) -> af.Encoded:
    """Encoded shards back to back, as one `Encoded`: offsets shifted by the
    tokens, `source_row` by the input rows of the shards before."""
    arrays = [p.arrays() for p in parts]
    out = {k: np.concatenate([a[k] for a in arrays]) for k in arrays[0] if k != "offsets"}
    tokens = np.cumsum([0] + [len(p.input_ids) for p in parts])
    rows = np.cumsum([0] + [int(p.source_row.max()) + 1 if len(p) else 0 for p in parts])
    out["offsets"] = np.concatenate(
        [[0]] + [p.offsets[1:] + t for p, t in zip(parts, tokens)]
    ).astype(np.int64)
    out["source_row"] = np.concatenate([p.source_row + r for p, r in zip(parts, rows)])
    return af.Encoded(out)


# -- pickling ------------------------------------------------------------------------------
def test_pickled_encoder_gives_identical_ids(
    encoder: af.Encoder, columns: Columns, expected: af.Encoded
) -> None:
    blob = pickle.dumps(encoder)
    copy = pickle.loads(blob)
    assert copy.config() == encoder.config()
    assert copy.tokenizer.sha256 == encoder.tokenizer.sha256
    assert_same_encoded(copy.encode_json(*columns, swap="both"), expected, "pickled encoder")
    # What a worker receives: the compact tokenizer JSON plus the config.
    assert len(blob) < len(encoder.tokenizer.to_str().encode()) + 100_000


def _on_new_thread(fn: Callable[[], af.Encoded]) -> af.Encoded:
    """`fn()` on a fresh thread: an empty per-thread word cache."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def test_another_tokenizer_in_the_process_does_not_change_ids(
    encoder: af.Encoder, columns: Columns, expected: af.Encoded
) -> None:
    """A worker that holds two encoders (say the demo one and Gemma) gives
    each its own ids: a per-thread word cache serves one tokenizer at a time
    (it once handed out a word's ids from the other vocabulary)."""
    demo = af.Encoder(af.Tokenizer.demo(), max_length=256)
    alone = _on_new_thread(lambda: demo.encode_json(*columns))
    # This thread has just encoded the same words with Gemma (`expected`).
    assert_same_encoded(demo.encode_json(*columns), alone, "demo after Gemma")

    def gemma_after_demo() -> af.Encoded:
        demo.encode_json(*columns)
        rebuilt = pickle.loads(pickle.dumps(encoder))  # template tokenized after the demo
        return rebuilt.encode_json(*columns, swap="both")

    assert_same_encoded(_on_new_thread(gemma_after_demo), expected, "Gemma after demo")


# -- datasets.Dataset.map ----------------------------------------------------------------------
def encode_batch(batch: pa.Table, encoder: af.Encoder) -> pa.Table:
    """A `Dataset.map(batched=True)` function over the "arrow" format: a
    batch of rows -> their swap pairs, ids handed to Arrow without a copy."""
    columns = (batch.column(c).to_pylist() for c in TEXT_COLUMNS)
    enc = encoder.encode_json(*columns, swap="both")
    return pa.table({"input_ids": enc.to_arrow(), "truncated": enc.truncated})


# Python 3.12+ warns that forking a multi-threaded process (polars and
# pyarrow keep thread pools) may deadlock; datasets forks its workers, which
# here only encode, so that warning is not a failure of this test.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_dataset_map_num_proc_matches_one_process(
    encoder: af.Encoder, columns: Columns, expected: af.Encoded
) -> None:
    ds = datasets.Dataset.from_dict(dict(zip(TEXT_COLUMNS, columns)))
    out = ds.with_format("arrow").map(
        encode_batch,
        fn_kwargs={"encoder": encoder},
        batched=True,
        batch_size=64,
        num_proc=2,
        remove_columns=ds.column_names,  # 2 rows out per row in (swap="both")
        keep_in_memory=True,  # no cache files
        new_fingerprint="arena-fast-test-map",  # skip hashing the 14 MB encoder
    )
    assert out.num_rows == len(expected)
    column = out.data.column("input_ids")  # one chunk per batch: from_arrow combines them
    got = af.Encoded.from_arrow(column, swap_pairs=True)
    assert got.to_lists() == expected.to_lists()
    assert got.source_row.tolist() == expected.source_row.tolist()
    assert out.data.column("truncated").to_pylist() == expected.truncated.tolist()


# -- a spawn pool ----------------------------------------------------------------------------
# Module level, so the spawned workers can import them by name.
_WORKER_ENCODER: Optional[af.Encoder] = None


def _init_worker(encoder: af.Encoder) -> None:
    """Receives the pickled encoder once per worker process."""
    global _WORKER_ENCODER
    _WORKER_ENCODER = encoder


def _encode_chunk(chunk: Columns) -> af.Encoded:
    assert _WORKER_ENCODER is not None
    return _WORKER_ENCODER.encode_json(*chunk, swap="both")


def test_spawn_pool_matches_one_process(
    encoder: af.Encoder, columns: Columns, expected: af.Encoded
) -> None:
    bounds = [0, 90, 170, 260, 400]  # uneven chunks, real and synthetic rows mixed
    chunks = [tuple(c[lo:hi] for c in columns) for lo, hi in zip(bounds, bounds[1:])]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, initializer=_init_worker, initargs=(encoder,)) as pool:
        # A worker that dies would make map() wait forever.
        parts = pool.map_async(_encode_chunk, chunks).get(timeout=300)
    merged = concat(parts)
    assert_same_encoded(merged, expected, "spawn pool")
    # Shards travel on as one Arrow column (several chunks: combined by from_arrow).
    column = pa.chunked_array([p.to_arrow() for p in parts])
    assert af.Encoded.from_arrow(column).to_lists() == expected.to_lists()
