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

from ..errors import InputError
from ..files import file_sha256, publishing, replacing, write_bytes
from ..outputs import BUILD_LOG, DROPPED, MANIFEST, TOKENIZER
from .config import (
    DROP_REASONS,
    FORMAT_VERSION,
    POLICY_REASONS,
    SOURCE_PRIORITY,
    BuildConfig,
)
from .load import ArenaDataset, load_dataset
from .parts import Builder

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
    builder: Builder, kept: pl.DataFrame, directory: Path, config: BuildConfig
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
    timings: dict[str, float] = {}
    with publishing(out, "dataset", overwrite=overwrite, inputs=read_paths) as work:
        with Builder(config, spill_dir=work / "spill", encoder=encoder) as builder:
            t_stage = time.perf_counter()
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
                    clean = functools.partial(builder.clean, inp.index)
                    seen_rows, seen_bytes, read_rows = 0, 0, 0
                    for chunk, ready in _prefetch(_ramp(chunks), clean):
                        builder.encode(ready)
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
            builder.drain()
            meta = builder.meta()
            timings["read_clean_encode"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            kept, late_dropped = _decide(meta, config)
            timings["dedup_folds"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            report({"stage": "write"})
            shards = _write_shards(builder, kept, work, config)
            timings["write_shards"] = time.perf_counter() - t_stage
        dropped = _dropped_frame(builder.dropped + [late_dropped])
        with replacing(work / DROPPED) as tmp:
            dropped.write_parquet(tmp, compression="zstd")
        tok = builder.tokenizer
        if tok.source and os.path.isfile(tok.source):
            tok_bytes = Path(tok.source).read_bytes()
        else:
            tok_bytes = tok.to_str().encode("utf-8")
        write_bytes(work / TOKENIZER, tok_bytes)
        tokenizer_sha256 = hashlib.sha256(tok_bytes).hexdigest()
        manifest = _manifest(
            __version__,
            config,
            builder,
            tokenizer_sha256,
            inputs,
            kept,
            meta,
            dropped,
            shards,
            work,
        )
        _check_not_empty(manifest, dropped)
        # The manifest is deterministic; how long the build took is not, so
        # it goes to build.json (and the returned dict).
        timings = {k: round(v, 3) for k, v in timings.items()}
        timings["total"] = round(time.perf_counter() - started, 3)
        log = {"seconds": timings, "threads": config.threads}
        write_bytes(work / BUILD_LOG, (json.dumps(log) + "\n").encode())
        write_bytes(work / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
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


def _manifest(
    version, config, builder, tokenizer_sha256, inputs, kept, meta, dropped, shards, work
) -> dict:
    counts_in = sum(builder.rows_in[inp.index] for inp in inputs)
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
                "rows_in": builder.rows_in[inp.index],
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
            "sha256": tokenizer_sha256,
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
