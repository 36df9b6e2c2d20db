"""The first pass of a build: each chunk cleaned (`clean.py`), encoded, and
kept as a part (an Arrow table of shard columns plus `seq`, the row's
number in the build), in memory up to `spill_bytes`, beyond that in Arrow
IPC files under the build's spill directory (read back memory-mapped when
the shards are written). `Builder` also keeps what the second pass needs of
every row (its `meta`: keys, class, source priority), the dropped rows and
the counters of the manifest."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import polars as pl
import pyarrow as pa

from .. import _core
from ..encoded import Encoded
from ..encoder import Encoder
from ..errors import ConfigError
from ..labels import LabelSpace, label_space, space_of_width
from ..pairs import split_pairs, split_rows
from ..tokenizer import Tokenizer
from .clean import clean_chunk, dropped_rows, kept_columns, kept_meta, parse_chunk
from .config import (
    FLAG_LABELS_NORMALISED,
    FLAG_RELABELLED,
    REPAIR_KINDS,
    SIDE_B,
    SWAPPED,
    BuildConfig,
    encoder_layout,
)

# The columns of `Builder.meta()`: one row per row in the parts.
META_SCHEMA = {
    "seq": pl.Int64,
    "source": pl.String,
    "id": pl.String,
    "row": pl.Int64,
    "input_rows": pl.Int32,
    "input": pl.Int16,
    "prompt_key": pl.UInt64,
    "pair_key": pl.UInt64,
    "cls": pl.UInt8,
    "prio": pl.Int32,
    "policed": pl.Boolean,
}


@dataclass
class Prepared:
    """A chunk cleaned and ready to encode: the core's parsed rows, the
    positions of the kept ones, their meta and their columns."""

    rows: Any  # _core.Rows
    kept: np.ndarray
    meta: pl.DataFrame
    columns: dict


class Builder:
    """Cleans, encodes and keeps the parts of one build; a context manager
    that stops its writer thread on an error and removes `spill_dir` after
    a build that went through.

    `clean` runs on the reader thread, `encode` on the main thread; the
    parts are assembled on a writer thread of their own."""

    def __init__(self, config: BuildConfig, *, spill_dir: Union[str, os.PathLike], encoder=None):
        self.config = config
        # Loading a large vocabulary takes a while: it overlaps the first reads.
        self._encoder: Future
        if encoder is not None:
            if not isinstance(encoder, Encoder):
                raise ConfigError(f"encoder must be an af.Encoder, got {type(encoder).__name__}")
            layout = encoder_layout(encoder.config())
            if layout != (config.layout or "cross"):
                raise ConfigError(
                    f"the encoder given encodes in layout {layout!r}, the build config says "
                    f"{config.layout!r}: give BuildConfig.layout={layout!r}"
                )
            self._encoder = Future()
            self._encoder.set_result(encoder)
            self.null_text = encoder.options["null_text"]
        else:
            loader = ThreadPoolExecutor(max_workers=1)
            self._encoder = loader.submit(_make_encoder, config)
            loader.shutdown(wait=False)
            self.null_text = config.encoder.get("null_text", "")
        self.priority = {name: i for i, name in enumerate(config.priority)}
        self.parts: list[Union[pa.Table, str]] = []
        self.memory = 0
        self.metas: list[pl.DataFrame] = []
        self.dropped: list[pl.DataFrame] = []
        self.rows_in: Counter = Counter()  # input records read, by input index
        self.seq = 0  # rows in the parts
        self.stats = {"labels_normalised": 0, "relabelled": 0, "repaired": 0, "truncated": 0}
        # The build's label space: the config's, else the first labelled
        # input's (which every other input's must then match); and each
        # input's own (None while it has shown no labelled row).
        self.asked_space = config.label_space is not None
        self.space: Optional[LabelSpace] = (
            label_space(config.label_space) if self.asked_space else None
        )
        self.input_spaces: dict[int, LabelSpace] = {}
        self.repairs = dict.fromkeys(REPAIR_KINDS, 0)
        self.spill_dir = Path(spill_dir)
        os.mkdir(self.spill_dir)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arena-fast-parts")
        self._pending: list[Future] = []

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._writer.shutdown(wait=True, cancel_futures=True)
        else:
            self.drain()
            shutil.rmtree(self.spill_dir)

    @property
    def encoder(self) -> Encoder:
        return self._encoder.result()

    @property
    def tokenizer(self) -> Tokenizer:
        return self.encoder.tokenizer

    # -- one chunk --------------------------------------------------------
    def clean(self, input_index: int, chunk: Any) -> Optional[Prepared]:
        """Everything but the encoding: parse, row keys, cleaning decisions,
        dropped rows, the kept rows' columns. Runs on the reader thread (the
        core and polars release the GIL), so it overlaps `encode`."""
        frame: pl.DataFrame = chunk.rows
        if len(chunk.dropped):
            self.dropped.append(
                chunk.dropped.with_columns(pl.lit(input_index, pl.Int16).alias("input"))
            )
            self.rows_in[input_index] += int(chunk.dropped["input_rows"].sum())
        if len(frame) == 0:
            return None
        self.rows_in[input_index] += int(frame["input_rows"].sum())
        spaces = self._spaces(input_index, frame)
        rows, features = parse_chunk(chunk, self.null_text, self.config.threads)
        cleaned = clean_chunk(frame, features, rows.errors(), self.config, spaces)
        gone = cleaned.gone()
        if len(gone):
            self.dropped.append(dropped_rows(frame, cleaned, gone, input_index))
        kept = cleaned.kept()
        if len(kept) == 0:
            return None
        self._count(cleaned.flags[kept], cleaned.repairs[kept])
        priority = self._priority(frame["source"][kept])
        return Prepared(
            rows=rows,
            kept=kept,
            meta=kept_meta(frame, features, cleaned, kept, input_index, priority),
            columns=kept_columns(frame, features, cleaned, kept, input_index, spaces[0]),
        )

    def _spaces(self, input_index: int, frame: pl.DataFrame) -> tuple[LabelSpace, LabelSpace]:
        """(the chunk's label space, the build's): the data's is the width
        of its `labels` column (3 for a reader of another format). The first
        labelled chunk fixes the build's, unless the config names one; an
        input of another space then is a ConfigError, never mixed silently."""
        dtype = frame.schema["labels"]
        data = space_of_width(dtype.size if isinstance(dtype, pl.Array) else 3)
        if frame["labels"].null_count() == len(frame):
            return data, self.space or data  # unlabelled: no space of its own
        self.input_spaces.setdefault(input_index, data)
        if self.space is None:
            self.space = data
        elif data != self.space and not self.asked_space:
            inputs = self.config.inputs
            name = inputs[input_index] if input_index < len(inputs) else f"input {input_index}"
            raise ConfigError(
                f"{name}: labels of label space {data.name!r} ({data.k} classes), but an "
                f"earlier input's are {self.space.name!r}: pass --label-space "
                "(BuildConfig.label_space) to map them to one space explicitly"
            )
        return data, self.space

    def _priority(self, sources: pl.Series) -> np.ndarray:
        """Each source's de-duplication rank; one not in `config.priority`
        ranks after those known, in order of first appearance."""
        for name in sources.unique().sort().to_list():
            self.priority.setdefault(name, len(self.priority))
        return sources.replace_strict(self.priority, return_dtype=pl.Int32).to_numpy()

    def _count(self, flags: np.ndarray, repairs: np.ndarray, sign: int = 1) -> None:
        """Count the relabelled, normalised and repaired rows among kept ones
        (`sign` -1: rows dropped after all, at encoding)."""
        self.stats["relabelled"] += sign * int(((flags & FLAG_RELABELLED) != 0).sum())
        self.stats["labels_normalised"] += sign * int(((flags & FLAG_LABELS_NORMALISED) != 0).sum())
        self.stats["repaired"] += sign * int((repairs != 0).sum())
        for name, bit in REPAIR_KINDS.items():
            self.repairs[name] += sign * int(((repairs & bit) != 0).sum())

    def encode(self, ready: Optional[Prepared]) -> None:
        """Encode the kept rows of a prepared chunk and keep the part. A row
        the tokenizer cannot encode is dropped (`tokenize_error`), alone."""
        if ready is None:
            return
        # The separate layout gives both sides of every row (2i A, 2i + 1 B);
        # the cross layout both orders only with swap.
        enc, skipped = self.encoder.encode_rows_skipping(
            ready.rows, ready.kept, swap="both" if self.config.swap else False
        )
        meta, columns = ready.meta, ready.columns
        if skipped:
            meta, columns = self._drop_untokenizable(meta, columns, skipped)
        seq = np.arange(self.seq, self.seq + len(meta), dtype=np.int64)
        self.seq += len(meta)
        self.metas.append(meta.with_columns(pl.Series("seq", seq)))
        # Splitting the orders and assembling the part run on the writer
        # thread; at most two parts wait, so memory stays bounded.
        while len(self._pending) >= 2:
            self._pending.pop(0).result()
        self._pending.append(self._writer.submit(self._assemble, enc, seq, columns))

    def _drop_untokenizable(self, meta: pl.DataFrame, columns: dict, skipped: list) -> tuple:
        """The kept rows less those the encoder skipped (positions in the
        chunk's kept rows), which go to the dropped rows as `tokenize_error`."""
        gone = np.array([position for position, _, _ in skipped], dtype=np.int64)
        detail = [
            f"column {column}: {message}" if column else f"template text: {message}"
            for _, column, message in skipped
        ]
        self.dropped.append(
            meta[gone]
            .select("source", "id", "row", "input_rows", "input")
            .with_columns(
                pl.lit("tokenize_error", pl.String).alias("reason"),
                pl.Series("detail", detail, dtype=pl.String),
            )
        )
        keep = np.ones(len(meta), dtype=bool)
        keep[gone] = False
        self._count(
            columns["flags"].to_numpy(zero_copy_only=False)[gone],
            columns["repairs"].to_numpy(zero_copy_only=False)[gone],
            sign=-1,
        )
        mask = pa.array(keep)
        return meta.filter(pl.Series(keep)), {k: v.filter(mask) for k, v in columns.items()}

    def drain(self) -> None:
        """Wait for the writer thread to keep every part (raises its errors)."""
        while self._pending:
            self._pending.pop(0).result()
        self._writer.shutdown(wait=True)

    def meta(self) -> pl.DataFrame:
        """Every row in the parts: `META_SCHEMA`, in `seq` order."""
        return pl.concat(self.metas) if self.metas else pl.DataFrame(schema=META_SCHEMA)

    # -- parts (writer thread) ------------------------------------------------
    def _assemble(self, enc: Encoded, seq: np.ndarray, columns: dict) -> None:
        columns = {"seq": pa.array(seq), **columns}
        if self.config.layout == "separate":
            # Both sides are sequences the model reads: both count.
            columns.update(_split_pairs(enc, SIDE_B))
            self.stats["truncated"] += int(enc.truncated.sum())
        elif self.config.swap:
            columns.update(_split_pairs(enc, SWAPPED))
            self.stats["truncated"] += int(split_rows(enc.truncated)[0].sum())
        else:
            columns["input_ids"] = _binary(enc.input_ids, enc.offsets)
            columns["length"] = pa.array(enc.lengths.astype(np.int32))
            columns["turns_kept"] = pa.array(enc.turns_kept)
            columns["truncated"] = pa.array(enc.truncated)
            columns["full_length"] = pa.array(enc.full_length.astype(np.int32))
            self.stats["truncated"] += int(enc.truncated.sum())
        self._add_part(pa.table(columns))

    def _add_part(self, table: pa.Table) -> None:
        self.parts.append(table)
        self.memory += table.nbytes
        if self.memory > self.config.spill_bytes:
            self._spill()

    def _spill(self) -> None:
        """Move the parts held in memory to Arrow IPC files (read back
        memory-mapped when the shards are written)."""
        for i, part in enumerate(self.parts):
            if isinstance(part, pa.Table):
                path = os.path.join(self.spill_dir, f"part-{i:06d}.arrow")
                with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, part.schema) as w:
                    w.write_table(part)
                self.parts[i] = path
        self.memory = 0
        _core.release_memory()


def _make_encoder(config: BuildConfig) -> Encoder:
    """The encoder the config describes (the bundled demo tokenizer when it
    names none)."""
    tok = Tokenizer.from_file(config.tokenizer) if config.tokenizer else Tokenizer.demo()
    return Encoder(
        tok,
        template=config.template,
        strategy=config.strategy,
        max_length=config.max_length,
        num_threads=config.threads,
        layout=config.layout or "cross",
        **config.encoder,
    )


def _split_pairs(enc: Encoded, suffix: str) -> dict[str, pa.Array]:
    """The columns of both sequences of each row from an encoding of pairs
    (rows 2i and 2i+1: a row and its A/B swap, or its A and B sides): the
    even rows under the plain names, the odd ones with `suffix`."""
    e_ids, e_off, o_ids, o_off = split_pairs(enc.input_ids, enc.offsets)
    turns_kept, turns_kept_b = split_rows(enc.turns_kept)
    truncated, truncated_b = split_rows(enc.truncated)
    full_length, full_length_b = split_rows(enc.full_length)
    return {
        "input_ids": _binary(e_ids, e_off),
        "length": pa.array(np.diff(e_off).astype(np.int32)),
        "turns_kept": pa.array(turns_kept),
        "truncated": pa.array(truncated),
        "full_length": pa.array(full_length.astype(np.int32)),
        f"input_ids{suffix}": _binary(o_ids, o_off),
        f"length{suffix}": pa.array(np.diff(o_off).astype(np.int32)),
        f"turns_kept{suffix}": pa.array(turns_kept_b),
        f"truncated{suffix}": pa.array(truncated_b),
        f"full_length{suffix}": pa.array(full_length_b.astype(np.int32)),
    }


def _binary(ids: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """Rows of int32 ids as one binary value each (little-endian), sharing
    the ids' memory."""
    n = len(offsets) - 1
    byte_offsets = (offsets - offsets[0]) * 4
    if byte_offsets[-1] >= 1 << 31:
        # A part is one chunk: chunk_rows x max_length ids of 4 bytes each.
        raise ConfigError(
            f"one chunk holds {int(byte_offsets[-1]):,} bytes of ids, more than a parquet "
            "binary column takes (2 GiB): lower chunk_rows"
        )
    data = np.ascontiguousarray(ids[offsets[0] : offsets[-1]]).astype("<i4", copy=False)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(byte_offsets.astype(np.int32)), pa.py_buffer(data)]
    )
