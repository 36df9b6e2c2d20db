"""Build a training-ready dataset from raw arena data, and load it back.

`build_dataset` streams every input through one pipeline, a chunk at a time:

    reader (sources) -> canonical frame -> Rows (Rust parse, keys, flags)
      -> cleaning policies -> Encoder.encode_rows -> a part (in memory, or
      spilled to an Arrow IPC file past `spill_bytes`)

then decides what needs every row at once (duplicate ids, de-duplication by
source priority, folds) and writes the parts out as parquet shards with
their folds. The directory is built beside the target under a temporary name
and renamed into place only when `manifest.json` is written: an interrupted
build never leaves a directory that looks complete. The rules are in
docs/dataset.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .. import _core
from ..encoded import REPAIR_CLIPPED, REPAIR_NULL, REPAIR_RAGGED, REPAIR_SURROGATE, Encoded
from ..errors import ConfigError, InputError
from ..files import file_sha256, publishing, replacing, write_bytes
from ..outputs import BUILD_LOG, DROPPED, MANIFEST, TOKENIZER
from .config import (
    DROP_REASONS,
    FLAG_EMPTY_A,
    FLAG_EMPTY_B,
    FLAG_EMPTY_PROMPT,
    FLAG_IDENTICAL,
    FLAG_LABELS_NORMALISED,
    FLAG_RELABELLED,
    FORMAT_VERSION,
    POLICY_REASONS,
    REPAIR_KINDS,
    SOURCE_PRIORITY,
    BuildConfig,
)
from .load import ArenaDataset, load_dataset

__all__ = [
    "BuildConfig",
    "ArenaDataset",
    "build_dataset",
    "load_dataset",
    "DROP_REASONS",
    "SOURCE_PRIORITY",
    "FORMAT_VERSION",
]

# --------------------------------------------------------------------------
# inputs


@dataclass
class _Input:
    index: int
    path: str
    format: str
    size: Optional[int] = None
    sha256: Optional[str] = None
    rows_in: int = 0


# --------------------------------------------------------------------------
# per-chunk work


def _labels(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) float64 labels (NaN where null) and the null mask. A row of
    finite, non-negative values whose sum overflows (`[0, 1e308, 1e308]`)
    comes divided by its largest value, so that normalising it by its sum
    gives `[0, 0.5, 0.5]` rather than `[0, 0, 0]`."""
    col = frame["labels"]
    null = col.is_null().to_numpy()
    if len(col) == 0:
        return np.zeros((0, 3)), null
    values = np.stack(
        [col.arr.get(i, null_on_oob=True).fill_null(np.nan).to_numpy() for i in range(3)],
        axis=1,
    ).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        fine = np.isfinite(values).all(axis=1) & (values >= 0).all(axis=1)
        overflow = fine & ~np.isfinite(values.sum(axis=1))
    if overflow.any():
        values[overflow] /= values[overflow].max(axis=1, keepdims=True)
    return values, null


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


def _float3(values: np.ndarray, null: np.ndarray) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    arr = pa.FixedSizeListArray.from_arrays(flat, 3)
    if null.any():
        arr = pa.FixedSizeListArray.from_arrays(flat, 3, mask=pa.array(null))
    return arr


def _prepare(chunk: Any, null_text: str, threads: Optional[int] = None) -> Optional[tuple]:
    """Parse a chunk's texts and compute the row keys (on the reader thread:
    the core releases the GIL, so this overlaps the encoding)."""
    from ..rows import rows_from_arrow

    frame = chunk.rows
    if len(frame) == 0:
        return None
    rows = rows_from_arrow(
        frame["prompt"],
        frame["response_a"],
        frame["response_b"],
        null_text=null_text,
        num_threads=threads,
    )
    return rows, rows.features(threads)


class _Builder:
    @property
    def encoder(self) -> Any:
        return self._encoder.result()

    @property
    def tokenizer(self) -> Any:
        return self.encoder.tokenizer

    def __init__(self, config: BuildConfig, encoder: Any = None):
        from ..encoder import Encoder
        from ..tokenizer import Tokenizer

        self.config = config
        self.timings: dict[str, float] = {}

        def make_encoder() -> Encoder:
            tok = Tokenizer.from_file(config.tokenizer) if config.tokenizer else Tokenizer.demo()
            return Encoder(
                tok,
                template=config.template,
                strategy=config.strategy,
                max_length=config.max_length,
                num_threads=config.threads,
                **config.encoder,
            )

        # Loading a large vocabulary takes a while: it overlaps the first reads.
        self._encoder: Future
        if encoder is not None:
            if not isinstance(encoder, Encoder):
                raise ConfigError(f"encoder must be an af.Encoder, got {type(encoder).__name__}")
            self._encoder = Future()
            self._encoder.set_result(encoder)
            self.null_text = encoder.options["null_text"]
        else:
            loader = ThreadPoolExecutor(max_workers=1)
            self._encoder = loader.submit(make_encoder)
            loader.shutdown(wait=False)
            self.null_text = config.encoder.get("null_text", "")
        self.priority = {name: i for i, name in enumerate(config.priority)}
        self.parts: list[Union[pa.Table, str]] = []
        self.memory = 0
        self.metas: list[pl.DataFrame] = []
        self.dropped: list[pl.DataFrame] = []
        self.seq = 0
        self.spill_dir: Optional[str] = None
        self.stats = {"labels_normalised": 0, "relabelled": 0, "repaired": 0, "truncated": 0}
        self.repairs = dict.fromkeys(REPAIR_KINDS, 0)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arena-fast-parts")
        self._pending: list[Future] = []

    # -- one chunk --------------------------------------------------------
    def prepare(self, inp: _Input, chunk: Any) -> Optional[dict]:
        """Everything but the encoding: parse, row keys, cleaning decisions,
        dropped rows, the kept rows' columns. Runs on the reader thread (the
        core and polars release the GIL), so it overlaps `finish`."""
        frame: pl.DataFrame = chunk.rows
        if len(chunk.dropped):
            self.dropped.append(
                chunk.dropped.with_columns(pl.lit(inp.index, pl.Int16).alias("input"))
            )
            inp.rows_in += int(chunk.dropped["input_rows"].sum())
        n = len(frame)
        if n == 0:
            return None
        inp.rows_in += int(frame["input_rows"].sum())
        rows, f = _prepare(chunk, self.null_text, self.config.threads)
        if chunk.repairs is not None:  # the reader's (lone surrogates in JSON)
            f["repairs"] = f["repairs"] | chunk.repairs
        labels, unlabelled = _labels(frame)
        cfg = self.config
        source = frame["source"]
        is_chat1m = (source == "chat1m").to_numpy()
        policed = ~unlabelled | is_chat1m

        reason = np.full(n, "", dtype=object)
        detail = np.full(n, "", dtype=object)

        def drop(mask: np.ndarray, name: str) -> None:
            hit = mask & (reason == "")
            reason[hit] = name

        for row, column, message in rows.errors():
            reason[row] = "bad_text"
            detail[row] = f"column {column}: {message}"
        # Labels: finite, non-negative, positive sum; renormalised otherwise.
        lab = labels[~unlabelled]
        with np.errstate(over="ignore", invalid="ignore"):  # [-1e308, -1e308, 1]: bad anyway
            sums = lab.sum(axis=1)
        bad = ~np.isfinite(lab).all(axis=1) | (lab < 0).any(axis=1) | ~(sums > 0)
        bad_rows = np.flatnonzero(~unlabelled)[bad]
        drop(np.isin(np.arange(n), bad_rows), "bad_labels")
        for r in bad_rows:
            if detail[r] == "":
                detail[r] = f"labels {labels[r].tolist()}"
        flags = np.zeros(n, dtype=np.uint8)
        ok = ~unlabelled
        ok[bad_rows] = False
        with np.errstate(over="ignore", invalid="ignore"):
            norm = ok & (np.abs(np.nan_to_num(labels.sum(axis=1)) - 1.0) > 1e-6)
        if norm.any():
            labels[norm] = labels[norm] / labels[norm].sum(axis=1, keepdims=True)
            flags[norm] |= FLAG_LABELS_NORMALISED
        empty_a, empty_b = f["empty_a"], f["empty_b"]
        identical = f["identical"] & ~(empty_a & empty_b)
        flags[empty_a] |= FLAG_EMPTY_A
        flags[empty_b] |= FLAG_EMPTY_B
        flags[identical] |= FLAG_IDENTICAL
        flags[f["empty_prompt"]] |= FLAG_EMPTY_PROMPT
        both = empty_a & empty_b & policed
        if cfg.both_empty == "drop":
            drop(both, "both_empty")
        one = (empty_a ^ empty_b) & policed
        if cfg.one_empty == "drop":
            drop(one, "one_empty")
        elif cfg.one_empty == "relabel":
            relabel = one & ~unlabelled & (reason == "")
            labels[relabel & empty_a] = (0.0, 1.0, 0.0)
            labels[relabel & empty_b] = (1.0, 0.0, 0.0)
            flags[relabel] |= FLAG_RELABELLED
        ident = identical & policed
        if cfg.identical == "drop":
            drop(ident, "identical")
        elif cfg.identical == "tie":
            relabel = ident & ~unlabelled & (reason == "")
            labels[relabel] = (0.0, 0.0, 1.0)
            flags[relabel] |= FLAG_RELABELLED
        repairs = f["repairs"]
        if cfg.ragged == "drop":
            drop(((repairs & REPAIR_RAGGED) != 0) & policed, "ragged")
        if cfg.repaired == "drop":
            text = REPAIR_NULL | REPAIR_SURROGATE | REPAIR_CLIPPED
            drop(((repairs & text) != 0) & policed, "repaired")

        kept = np.flatnonzero(reason == "")
        gone = np.flatnonzero(reason != "")
        if len(gone):
            sub = frame[gone]
            self.dropped.append(
                pl.DataFrame(
                    {
                        "source": sub["source"],
                        "id": sub["id"],
                        "row": sub["row"],
                        "input_rows": sub["input_rows"],
                        "reason": pl.Series(reason[gone].tolist(), dtype=pl.String),
                        "detail": pl.Series(detail[gone].tolist(), dtype=pl.String),
                    }
                ).with_columns(pl.lit(inp.index, pl.Int16).alias("input"))
            )
        if len(kept) == 0:
            return None
        self._count(flags[kept], repairs[kept])

        sub = frame[kept]
        lab_kept, unl_kept = labels[kept], unlabelled[kept]
        cls = np.where(unl_kept, 3, np.argmax(np.nan_to_num(lab_kept, nan=-1.0), axis=1))
        srcs = sub["source"]
        for name in srcs.unique().sort().to_list():
            self.priority.setdefault(name, len(self.priority))
        prio = srcs.replace_strict(self.priority, return_dtype=pl.Int32).to_numpy()
        meta = pl.DataFrame(
            {
                "source": srcs,
                "id": sub["id"],
                "row": sub["row"],
                "input_rows": sub["input_rows"],
                "input": np.full(len(kept), inp.index, dtype=np.int16),
                "prompt_key": f["prompt_key"][kept],
                "pair_key": f["pair_key"][kept],
                "cls": cls.astype(np.uint8),
                "prio": prio,
                "policed": policed[kept],
            }
        )
        columns: dict[str, Any] = {
            "id": sub["id"].to_arrow(),
            "source": srcs.to_arrow(),
            "input": pa.array(np.full(len(kept), inp.index, dtype=np.int16)),
            "row": sub["row"].to_arrow(),
            "input_rows": sub["input_rows"].to_arrow(),
            "model_a": sub["model_a"].to_arrow(),
            "model_b": sub["model_b"].to_arrow(),
            "labels": _float3(np.nan_to_num(lab_kept), unl_kept),
            "teacher_logits": sub["teacher_logits"]
            .cast(pl.List(pl.Array(pl.Float32, 3)))
            .to_arrow(),
            "flags": pa.array(flags[kept]),
            "turns": pa.array(f["turns"][kept]),
            "repairs": pa.array(repairs[kept]),
            "chars": pa.array(f["chars"][kept]),
        }
        return {"rows": rows, "kept": kept, "meta": meta, "columns": columns}

    def _count(self, flags: np.ndarray, repairs: np.ndarray, sign: int = 1) -> None:
        """Count the relabelled, normalised and repaired rows among kept ones
        (`sign` -1: rows dropped after all, at encoding)."""
        self.stats["relabelled"] += sign * int(((flags & FLAG_RELABELLED) != 0).sum())
        self.stats["labels_normalised"] += sign * int(((flags & FLAG_LABELS_NORMALISED) != 0).sum())
        self.stats["repaired"] += sign * int((repairs != 0).sum())
        for name, bit in REPAIR_KINDS.items():
            self.repairs[name] += sign * int(((repairs & bit) != 0).sum())

    def finish(self, ready: Optional[dict]) -> None:
        """Encode the kept rows of a prepared chunk and keep the part. A row
        the tokenizer cannot encode is dropped (`tokenize_error`), alone."""
        if ready is None:
            return
        cfg = self.config
        enc, skipped = self.encoder.encode_rows_skipping(
            ready["rows"], ready["kept"], swap="both" if cfg.swap else False
        )
        meta, columns = ready["meta"], ready["columns"]
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

    def _assemble(self, enc: Encoded, seq: np.ndarray, columns: dict) -> None:
        cfg = self.config
        columns = {"seq": pa.array(seq), **columns}
        if cfg.swap:
            e_ids, e_off, o_ids, o_off = _core.split_pairs(enc.input_ids, enc.offsets)
            even, odd = slice(0, None, 2), slice(1, None, 2)
            columns["input_ids"] = _binary(e_ids, e_off)
            columns["length"] = pa.array(np.diff(e_off).astype(np.int32))
            columns["turns_kept"] = pa.array(enc.turns_kept[even])
            columns["truncated"] = pa.array(enc.truncated[even])
            columns["full_length"] = pa.array(enc.full_length[even].astype(np.int32))
            columns["input_ids_swapped"] = _binary(o_ids, o_off)
            columns["length_swapped"] = pa.array(np.diff(o_off).astype(np.int32))
            columns["turns_kept_swapped"] = pa.array(enc.turns_kept[odd])
            columns["truncated_swapped"] = pa.array(enc.truncated[odd])
            columns["full_length_swapped"] = pa.array(enc.full_length[odd].astype(np.int32))
            self.stats["truncated"] += int(enc.truncated[even].sum())
        else:
            columns["input_ids"] = _binary(enc.input_ids, enc.offsets)
            columns["length"] = pa.array(enc.lengths.astype(np.int32))
            columns["turns_kept"] = pa.array(enc.turns_kept)
            columns["truncated"] = pa.array(enc.truncated)
            columns["full_length"] = pa.array(enc.full_length.astype(np.int32))
            self.stats["truncated"] += int(enc.truncated.sum())
        table = pa.table(columns)
        self._add_part(table)

    def _add_part(self, table: pa.Table) -> None:
        self.parts.append(table)
        self.memory += table.nbytes
        if self.memory > self.config.spill_bytes:
            self._spill()

    def _spill(self) -> None:
        """Move the parts held in memory to Arrow IPC files (read back
        memory-mapped when the shards are written)."""
        assert self.spill_dir is not None, "spill directory not set"
        for i, part in enumerate(self.parts):
            if isinstance(part, pa.Table):
                path = os.path.join(self.spill_dir, f"part-{i:06d}.arrow")
                with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, part.schema) as w:
                    w.write_table(part)
                self.parts[i] = path
        self.memory = 0
        _core.release_memory()


# --------------------------------------------------------------------------
# decisions over all rows


def _decide(meta: pl.DataFrame, config: BuildConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Duplicate ids, de-duplication and folds. Returns (kept: seq, fold) and
    the dropped rows."""
    meta = meta.sort(["prio", "seq"])
    reason = pl.lit(None, pl.String)
    dup_id = meta.select(pl.struct("source", "id").is_first_distinct().not_()).to_series()
    meta = meta.with_columns(dup_id.alias("dup_id"))
    exprs = [pl.when(pl.col("dup_id")).then(pl.lit("duplicate_id"))]
    detail = [pl.when(pl.col("dup_id")).then(pl.lit("id repeated in this source"))]
    if config.dedup != "none":
        pol = meta.filter(pl.col("policed") & ~pl.col("dup_id"))
        first_pair = pol.group_by("pair_key", maintain_order=True).agg(
            pl.col("id").first().alias("pair_first_id"), pl.col("seq").first().alias("pair_first")
        )
        meta = meta.join(first_pair, on="pair_key", how="left", maintain_order="left")
        dup_pair = pl.col("policed") & (pl.col("seq") != pl.col("pair_first"))
        exprs.append(pl.when(dup_pair).then(pl.lit("duplicate")))
        detail.append(
            pl.when(dup_pair).then(pl.format("same as kept row id {}", pl.col("pair_first_id")))
        )
        if config.dedup == "prompt":
            best = pol.group_by("prompt_key", maintain_order=True).agg(
                pl.col("prio").min().alias("best_prio"),
                pl.col("source").first().alias("best_source"),
            )
            meta = meta.join(best, on="prompt_key", how="left", maintain_order="left")
            dup_prompt = pl.col("policed") & (pl.col("prio") > pl.col("best_prio"))
            exprs.append(pl.when(dup_prompt).then(pl.lit("duplicate_prompt")))
            detail.append(
                pl.when(dup_prompt).then(pl.format("prompt also in {}", pl.col("best_source")))
            )
    meta = meta.with_columns(
        pl.coalesce(exprs + [reason]).alias("reason"),
        pl.coalesce(detail + [pl.lit("", pl.String)]).alias("detail"),
    )
    dropped = meta.filter(pl.col("reason").is_not_null())
    kept = meta.filter(pl.col("reason").is_null()).sort("seq")
    from ..folds import assign_folds

    folds = assign_folds(
        kept["prompt_key"].to_numpy(), kept["cls"].to_numpy(), config.folds, seed=config.seed
    )
    kept = kept.select("seq", "cls").with_columns(pl.Series("fold", folds, dtype=pl.Int8))
    dropped = dropped.select("source", "id", "row", "input_rows", "reason", "detail", "input")
    return kept, dropped


# --------------------------------------------------------------------------
# writing


def _write_shards(
    builder: _Builder, kept: pl.DataFrame, directory: Path, config: BuildConfig
) -> list[dict]:
    """The parts, less the rows dropped by the global decisions, with their
    folds, as `data-NNNNN.parquet` shards of `shard_rows` rows."""
    total = builder.seq
    keep = np.zeros(total, dtype=bool)
    fold = np.full(total, -1, dtype=np.int8)
    seqs = kept["seq"].to_numpy()
    keep[seqs] = True
    fold[seqs] = kept["fold"].to_numpy()
    compression = None if config.compression == "none" else config.compression
    shards: list[dict] = []
    pending: list[pa.Table] = []
    pending_rows = 0
    futures: list[Future] = []
    pool = ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1)))

    def write(tables: list[pa.Table], index: int) -> dict:
        table = pa.concat_tables(tables)
        name = f"data-{index:05d}.parquet"
        path = directory / name
        pq.write_table(
            table,
            path,
            compression=compression,
            use_dictionary=["source", "model_a", "model_b"],
            write_statistics=["fold", "source", "length"],
        )
        return {"file": name, "rows": table.num_rows, "bytes": path.stat().st_size}

    def flush(force: bool) -> None:
        nonlocal pending, pending_rows
        while pending_rows >= config.shard_rows or (force and pending_rows):
            take = min(config.shard_rows, pending_rows)
            batch: list[pa.Table] = []
            got = 0
            while got < take:
                t = pending[0]
                need = take - got
                if t.num_rows <= need:
                    batch.append(t)
                    got += t.num_rows
                    pending.pop(0)
                else:
                    batch.append(t.slice(0, need))
                    pending[0] = t.slice(need)
                    got += need
            pending_rows -= take
            futures.append(pool.submit(write, batch, len(futures)))

    try:
        for part in builder.parts:
            if isinstance(part, str):
                table = pa.ipc.open_file(pa.memory_map(part)).read_all()
            else:
                table = part
            seq = table.column("seq").to_numpy()
            mask = keep[seq]
            if not mask.all():
                table = table.filter(pa.array(mask))
                seq = seq[mask]
            table = table.drop_columns(["seq"])
            table = table.add_column(2, "fold", pa.array(fold[seq]))
            pending.append(table)
            pending_rows += table.num_rows
            flush(False)
        flush(True)
        shards = [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True)
    return shards


def _percentiles(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {}
    qs = (50, 90, 99)
    out = {f"p{q}": int(np.percentile(values, q)) for q in qs}
    out["max"] = int(values.max())
    out["mean"] = round(float(values.mean()), 1)
    return out


def build_dataset(
    config: BuildConfig,
    out: Union[str, os.PathLike],
    *,
    overwrite: bool = False,
    progress: Optional[Callable[[dict], None]] = None,
    encoder: Any = None,
) -> dict:
    """Build the dataset directory `out`; returns its manifest.

    `encoder`: an `af.Encoder` to use instead of building one from the
    config's tokenizer / template / strategy / max_length / encoder fields
    (which are then not used: the manifest's `encoder` section records what
    was).

    `progress`, when given, is called with a dict at each step, as
    `train(log=...)` is (docs/dataset.md, "Progress"): `{"stage": "read",
    "input": i, "path": ..., "format": ...}` when input `i` starts, then
    `{"stage": "read", "input": i, "rows": n, "total": t}` after each chunk
    (`n` input rows read so far, `t` the rows expected: the demo's count, or
    an estimate from the bytes read, or None), `{"stage": "dedup"}` and
    `{"stage": "write"}`. Without it the build prints nothing."""
    from .. import __version__
    from ..sources import detect_format, parse_input, read
    from ..sources.demo import demo_chunks

    config.validate()
    report = progress or _silent
    inputs: list[_Input] = []
    if config.inputs:
        for i, spec in enumerate(config.inputs):
            parsed = parse_input(str(spec))
            fmt = parsed.format or detect_format(parsed.path)
            inputs.append(_Input(i, parsed.path, fmt, size=os.path.getsize(parsed.path)))
    else:
        inputs.append(_Input(0, f"synth:{config.demo_rows}:{config.seed}", "synth"))
    # What the build reads: `out` may be none of them, nor hold one.
    read_paths = [inp.path for inp in inputs if inp.size is not None]
    tokenizer = encoder.tokenizer.source if encoder is not None else config.tokenizer
    if tokenizer and os.path.exists(tokenizer):
        read_paths.append(tokenizer)
    started = time.perf_counter()
    builder: Optional[_Builder] = None
    with publishing(out, "dataset", overwrite=overwrite, inputs=read_paths) as work:
        try:
            builder = _Builder(config, encoder)
            t_stage = time.perf_counter()
            builder.spill_dir = str(work / "spill")
            os.mkdir(builder.spill_dir)
            # Hash the inputs beside the work (hashlib releases the GIL).
            hasher = ThreadPoolExecutor(max_workers=1)
            hashes = {
                inp.index: hasher.submit(file_sha256, inp.path)
                for inp in inputs
                if inp.size is not None
            }
            try:
                for inp in inputs:
                    start = {"stage": "read", "input": inp.index}
                    report({**start, "path": inp.path, "format": inp.format})
                    if inp.format == "synth":
                        chunks = demo_chunks(config.demo_rows, config.seed, config.chunk_rows)
                        total: Optional[float] = float(config.demo_rows)
                    else:
                        chunks = read(
                            inp.path, inp.format, chunk_rows=config.chunk_rows, seed=config.seed
                        )
                        total = None
                    prepare = functools.partial(builder.prepare, inp)
                    seen_rows, seen_bytes, read_rows = 0, 0, 0
                    for chunk, ready in _prefetch(_ramp(chunks), prepare):
                        builder.finish(ready)
                        rows = len(chunk.rows) + len(chunk.dropped)
                        if inp.size and config.inputs:
                            # Rows in the file, estimated from the bytes per row so far.
                            seen_rows += rows
                            seen_bytes += chunk.rows.estimated_size()
                            if seen_bytes:
                                total = max(float(seen_rows), inp.size * seen_rows / seen_bytes)
                        read_rows += rows
                        report({**start, "rows": read_rows, "total": total})
                for inp in inputs:
                    if inp.index in hashes:
                        inp.sha256 = hashes[inp.index].result()
            finally:
                hasher.shutdown(wait=True)
            report({"stage": "dedup"})
            meta = (
                pl.concat(builder.metas)
                if builder.metas
                else pl.DataFrame(
                    schema={
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
                )
            )
            builder.drain()
            builder.timings["read_clean_encode"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            kept, late_dropped = _decide(meta, config)
            builder.timings["dedup_folds"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            report({"stage": "write"})
            shards = _write_shards(builder, kept, work, config)
            builder.timings["write_shards"] = time.perf_counter() - t_stage
            dropped = _dropped_frame(builder.dropped + [late_dropped])
            with replacing(work / DROPPED) as tmp:
                dropped.write_parquet(tmp, compression="zstd")
            shutil.rmtree(builder.spill_dir)
            tok = builder.tokenizer
            if tok.source and os.path.isfile(tok.source):
                tok_bytes = Path(tok.source).read_bytes()
            else:
                tok_bytes = tok.to_str().encode("utf-8")
            write_bytes(work / TOKENIZER, tok_bytes)
            builder.tokenizer_sha256 = hashlib.sha256(tok_bytes).hexdigest()
            manifest = _manifest(
                __version__, config, builder, inputs, kept, meta, dropped, shards, work, started
            )
            _check_not_empty(manifest, dropped)
            # The manifest is deterministic; how long the build took is not, so
            # it goes to build.json (and the returned dict).
            timings = {k: round(v, 3) for k, v in builder.timings.items()}
            timings["total"] = round(time.perf_counter() - started, 3)
            log = {"seconds": timings, "threads": config.threads}
            write_bytes(work / BUILD_LOG, (json.dumps(log) + "\n").encode())
            write_bytes(work / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        except BaseException:
            if builder is not None:
                builder._writer.shutdown(wait=True, cancel_futures=True)
            raise
    return dict(manifest, timings=timings)


def _silent(record: dict) -> None:
    pass


def _ramp(chunks: Iterator[Any], first: int = 1024) -> Iterator[Any]:
    """The first chunk cut into small pieces (1024, 2048, ... rows), so the
    encoder starts while the reader thread prepares the rest."""
    it = iter(chunks)
    head = next(it, None)
    if head is None:
        return
    start, size = 0, first
    dropped = head.dropped  # with the first piece
    while len(head.rows) - start > size:
        piece = head.slice(start, size)
        piece.dropped, dropped = dropped, dropped.clear()
        yield piece
        start += size
        size *= 2
    piece = head.slice(start)
    piece.dropped = dropped
    yield piece
    yield from it


def _prefetch(
    chunks: Iterator[Any], prepare: Callable[[Any], Any], depth: int = 2
) -> Iterator[tuple]:
    """Read and prepare the next chunks on a thread while the current one is
    encoded (polars and the core release the GIL)."""
    import queue

    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for c in chunks:
                if stop.is_set():
                    return
                q.put((c, prepare(c)))
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    t = threading.Thread(target=run, name="arena-fast-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except Exception:
                t.join(timeout=0.05)


_DROPPED_COLUMNS = {
    "input": pl.Int16,
    "source": pl.String,
    "id": pl.String,
    "row": pl.Int64,
    "input_rows": pl.Int32,
    "reason": pl.String,
    "detail": pl.String,
}


def _dropped_frame(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f.select([pl.col(c).cast(t) for c, t in _DROPPED_COLUMNS.items()]) for f in frames]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pl.DataFrame(schema=_DROPPED_COLUMNS)
    return pl.concat(frames).sort(["input", "row", "id"])


def _check_not_empty(manifest: dict, dropped: pl.DataFrame) -> None:
    """Never an empty or mostly-unreadable success. An `InputError` (so
    nothing is published) when the inputs hold no rows at all (a header-only
    CSV), when an input loses more than half its rows to reasons outside
    `POLICY_REASONS`, or when no row is kept."""
    unreadable = dropped.filter(~pl.col("reason").is_in(list(POLICY_REASONS)))
    for index, inp in enumerate(manifest["inputs"]):
        bad = unreadable.filter(pl.col("input") == index)
        lost = int(bad["input_rows"].sum() or 0)
        if inp["rows_in"] and 2 * lost > inp["rows_in"]:
            first = bad.row(0, named=True)
            raise InputError(
                f"{inp['path']}: {lost:,} of {inp['rows_in']:,} rows could not be read "
                f"({_reason_counts(bad)}); the first, row {first['row']}: "
                f"{first['reason']}: {first['detail']}"
            )
    counts = manifest["counts"]
    paths = ", ".join(inp["path"] for inp in manifest["inputs"])
    if counts["rows_in"] == 0:
        raise InputError(f"{paths}: no rows (a header only?); nothing to build")
    if counts["rows"] == 0:
        raise InputError(
            f"{paths}: every one of the {counts['rows_in']:,} input rows was dropped "
            f"({_reason_counts(dropped)}); nothing to build"
        )


def _reason_counts(dropped: pl.DataFrame) -> str:
    by = (
        dropped.group_by("reason")
        .agg(pl.col("input_rows").sum())
        .sort(["input_rows", "reason"], descending=[True, False])
    )
    return ", ".join(f"{reason} {n:,}" for reason, n in by.rows())


def _manifest(version, config, builder, inputs, kept, meta, dropped, shards, work, started) -> dict:
    counts_in = sum(inp.rows_in for inp in inputs)
    kept_meta = meta.join(kept.select("seq"), on="seq", how="semi")
    kept_input_rows = int(kept_meta["input_rows"].sum() or 0)
    dropped_input_rows = int(dropped["input_rows"].sum() or 0)
    by_reason = {
        r: int(n)
        for r, n in dropped.group_by("reason").agg(pl.col("input_rows").sum()).sort("reason").rows()
    }
    by_source = {}
    for src, n in kept_meta.group_by("source").len().sort("source").rows():
        by_source[src] = int(n)
    folds = {int(k): int(n) for k, n in kept.group_by("fold").len().sort("fold").rows()}
    cls_names = ["a", "b", "tie", "unlabelled"]
    labels = {cls_names[int(c)]: int(n) for c, n in kept.group_by("cls").len().sort("cls").rows()}
    per_input = []
    for inp in inputs:
        k_in = int(kept_meta.filter(pl.col("input") == inp.index)["input_rows"].sum() or 0)
        d_in = int(dropped.filter(pl.col("input") == inp.index)["input_rows"].sum() or 0)
        per_input.append(
            {
                "path": inp.path,
                "format": inp.format,
                "bytes": inp.size,
                "sha256": inp.sha256,
                "rows_in": inp.rows_in,
                "rows_kept": k_in,
                "rows_dropped": d_in,
            }
        )
    lengths = []
    for shard in shards:
        t = pq.read_table(work / shard["file"], columns=["length"])
        lengths.append(t.column("length").to_numpy())
    length = np.concatenate(lengths) if lengths else np.zeros(0, np.int32)
    for shard in shards:
        shard["sha256"] = file_sha256(work / shard["file"])
    fill = None
    if len(length) and int(length.max()) <= config.pack_tokens:
        from ..plan import plan_packs

        plan = plan_packs(
            length.astype(np.int64), config.pack_tokens, pair_swaps=False, shuffle=False
        )
        fill = round(plan.fill, 4)
    n_kept = int(len(kept))
    return {
        "format_version": FORMAT_VERSION,
        "arena_fast_version": version,
        # Without `threads`: it changes no output byte, so no manifest byte.
        "config": {k: v for k, v in config.to_dict().items() if k != "threads"},
        "encoder": builder.encoder.config(),
        "tokenizer": {
            "file": TOKENIZER,
            "sha256": builder.tokenizer_sha256,
            "source": builder.tokenizer.source,
        },
        "ids": "input_ids: binary, little-endian int32 per row",
        "swap": bool(config.swap),
        "folds": config.folds,
        "inputs": per_input,
        "counts": {
            "rows_in": counts_in,
            "rows": n_kept,
            "input_rows_kept": kept_input_rows,
            "input_rows_dropped": dropped_input_rows,
            "dropped": by_reason,
            "by_source": by_source,
            "folds": folds,
            "labels": labels,
            "relabelled": builder.stats["relabelled"],
            "labels_normalised": builder.stats["labels_normalised"],
            "repaired": builder.stats["repaired"],
            "repairs": builder.repairs,
        },
        "stats": {
            "tokens": int(length.sum()),
            "length": _percentiles(length),
            "truncated_share": round(float(builder.stats["truncated"]) / max(builder.seq, 1), 4),
            "pack_tokens": config.pack_tokens,
            "fill": fill,
        },
        "shards": shards,
        "dropped_file": DROPPED,
    }
