"""The second pass of a build: the parts, less the rows the global decisions
dropped and with their folds, cut into `data-NNNNN.parquet` shards of
`shard_rows` rows (two written at a time), and the dropped rows as
dropped.parquet (docs/dataset.md, "The dataset directory")."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Union

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .clean import METADATA_COLUMNS
from .config import BuildConfig

# The columns of dropped.parquet.
DROPPED_COLUMNS = {
    "input": pl.Int16,
    "source": pl.String,
    "id": pl.String,
    "row": pl.Int64,
    "input_rows": pl.Int32,
    "reason": pl.String,
    "detail": pl.String,
}


def write_shards(
    parts: list[Union[pa.Table, str]],
    rows: int,
    kept: pl.DataFrame,
    directory: Path,
    config: BuildConfig,
    classes: int = 3,
) -> list[dict]:
    """The `rows` rows of `parts` (tables, or Arrow IPC files) that `kept`
    holds, with its folds, as shards in `directory`; returns each shard's
    file, rows and bytes. `classes`: the label space's K, the width of the
    `labels` column (a part of unlabelled rows read before the build's space
    was known is written at that width)."""
    keep = np.zeros(rows, dtype=bool)
    fold = np.full(rows, -1, dtype=np.int8)
    seqs = kept["seq"].to_numpy()
    keep[seqs] = True
    fold[seqs] = kept["fold"].to_numpy()
    writer = _ShardWriter(directory, config)
    metadata = metadata_columns(parts)
    try:
        for part in parts:
            table = _label_width(_with_folds(_read_part(part), keep, fold), classes)
            writer.add(_with_metadata(table, metadata))
        return writer.finish()
    finally:
        writer.close()


def metadata_columns(parts: list[Union[pa.Table, str]]) -> list[str]:
    """The row metadata columns (`METADATA_COLUMNS`) the shards hold: those
    some row of the parts has a value in. A dataset whose inputs carry none
    (Kaggle CSV, the demo rows) has none, and its shards are the bytes they
    were before datasets carried metadata."""
    seen: set = set()
    for part in parts:
        table = _read_part(part)
        for name in METADATA_COLUMNS:
            if name in table.column_names and table.column(name).null_count < table.num_rows:
                seen.add(name)
    return [name for name in METADATA_COLUMNS if name in seen]


def _with_metadata(table: pa.Table, names: list[str]) -> pa.Table:
    """A part with exactly the metadata columns `names`, last, in that order
    (null where the part's input has none)."""
    held = {c: table.column(c) for c in METADATA_COLUMNS if c in table.column_names}
    if not held and not names:
        return table
    table = table.drop_columns(list(held))
    for name in names:
        column = held.get(name)
        if column is None:
            column = pa.nulls(table.num_rows, pa.string())
        table = table.append_column(pa.field(name, pa.string()), column)
    return table


def _read_part(part: Union[pa.Table, str]) -> pa.Table:
    """A part held in memory, or read back memory-mapped from its spill file."""
    if isinstance(part, str):
        return pa.ipc.open_file(pa.memory_map(part)).read_all()
    return part


def _with_folds(table: pa.Table, keep: np.ndarray, fold: np.ndarray) -> pa.Table:
    """A part's rows that are kept, `seq` replaced by their `fold`."""
    seq = table.column("seq").to_numpy()
    mask = keep[seq]
    if not mask.all():
        table = table.filter(pa.array(mask))
        seq = seq[mask]
    table = table.drop_columns(["seq"])
    return table.add_column(2, "fold", pa.array(fold[seq]))


def _label_width(table: pa.Table, k: int) -> pa.Table:
    """`table` with null `labels` / `teacher_logits` columns of another
    width than `k` as nulls of width `k` (only unlabelled parts have them)."""
    types = {
        "labels": pa.list_(pa.float32(), k),
        "teacher_logits": pa.large_list(pa.list_(pa.float32(), k)),
    }
    for name, target in types.items():
        i = table.schema.get_field_index(name)
        column = table.column(i)
        if column.type != target and column.null_count == len(column):
            table = table.set_column(i, name, pa.nulls(len(column), target))
    return table


class _ShardWriter:
    """Tables in, shards of `shard_rows` rows out, in order, written on two
    threads while the next tables are read."""

    def __init__(self, directory: Path, config: BuildConfig):
        self.directory = directory
        self.shard_rows = config.shard_rows
        self.compression = None if config.compression == "none" else config.compression
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.futures: list[Future] = []
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1)))

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self._flush(force=False)

    def finish(self) -> list[dict]:
        """Write the last, shorter shard; wait for every shard (raises their
        errors)."""
        self._flush(force=True)
        return [f.result() for f in self.futures]

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _flush(self, force: bool) -> None:
        """Hand every full shard of the pending rows to a writer thread (and
        the rest too with `force`)."""
        while self.pending_rows >= self.shard_rows or (force and self.pending_rows):
            take = min(self.shard_rows, self.pending_rows)
            batch: list[pa.Table] = []
            got = 0
            while got < take:
                t = self.pending[0]
                need = take - got
                if t.num_rows <= need:
                    batch.append(t)
                    got += t.num_rows
                    self.pending.pop(0)
                else:
                    batch.append(t.slice(0, need))
                    self.pending[0] = t.slice(need)
                    got += need
            self.pending_rows -= take
            self.futures.append(self.pool.submit(self._write, batch, len(self.futures)))

    def _write(self, tables: list[pa.Table], index: int) -> dict:
        table = pa.concat_tables(tables)
        name = f"data-{index:05d}.parquet"
        path = self.directory / name
        pq.write_table(
            table,
            path,
            compression=self.compression,
            use_dictionary=["source", "model_a", "model_b", "language", "category"],
            write_statistics=["fold", "source", "length"],
        )
        return {"file": name, "rows": table.num_rows, "bytes": path.stat().st_size}


def write_dropped(frames: list[pl.DataFrame], path: Path) -> pl.DataFrame:
    """The dropped rows of every stage as one frame (by input, row, id),
    written to `path`; returns it."""
    frames = [f.select([pl.col(c).cast(t) for c, t in DROPPED_COLUMNS.items()]) for f in frames]
    frames = [f for f in frames if len(f)]
    if frames:
        dropped = pl.concat(frames).sort(["input", "row", "id"])
    else:
        dropped = pl.DataFrame(schema=DROPPED_COLUMNS)
    dropped.write_parquet(path, compression="zstd")
    return dropped
