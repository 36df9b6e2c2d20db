"""A built dataset's manifest.json (docs/dataset.md, "The dataset
directory"): every setting that determines its bytes, the encoder and
tokenizer, the inputs, the counts of rows kept and dropped, the token
statistics and the shards with their sha256; and the check that a build
is not an empty or mostly-unreadable success. The schema that readers
check a manifest against is `dataset.schema`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from .. import _core
from ..errors import InputError
from ..files import file_sha256
from ..labels import DEFAULT_SPACE, describe_mapping
from ..outputs import DROPPED, TOKENIZER
from ..plan import plan_packs
from .config import FORMAT_VERSION, POLICY_REASONS, BuildConfig
from .parts import Builder
from .read import BuildInput

# The manifest's names of the kept rows' classes (`cls` 0 to 4: the label
# space's classes, then `clean.UNLABELLED`).
_CLASSES = ("a", "b", "tie", "both_bad", "unlabelled")


def make_manifest(
    config: BuildConfig,
    builder: Builder,
    tokenizer_sha256: str,
    inputs: list[BuildInput],
    kept: pl.DataFrame,
    meta: pl.DataFrame,
    dropped: pl.DataFrame,
    shards: list[dict],
    directory: Path,
) -> dict:
    """The manifest of the build in `directory`: `kept` and `dropped` as
    `dedup.decide` and `shards.write_dropped` give them, `meta` every row
    the builder encoded. Adds each shard's sha256 to `shards`."""
    kept_meta = meta.join(kept.select("seq"), on="seq", how="semi")
    length = _lengths(shards, directory)
    for shard in shards:
        shard["sha256"] = file_sha256(directory / shard["file"])
    space = builder.space or DEFAULT_SPACE
    return {
        "format_version": FORMAT_VERSION,
        "arena_fast_version": _core.__version__,
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
        # The label space (docs/dataset.md, "Label spaces"), and how each
        # input's labels were mapped to it when theirs differ.
        "label_space": space.name,
        "label_mapping": sorted(
            {describe_mapping(s, space) for s in builder.input_spaces.values() if s != space}
        ),
        "folds": config.folds,
        "inputs": [_input(inp, builder, kept_meta, dropped) for inp in inputs],
        "counts": _counts(builder, inputs, kept, kept_meta, dropped),
        "stats": _stats(length, builder, config),
        "shards": shards,
        "dropped_file": DROPPED,
    }


def _input(
    inp: BuildInput, builder: Builder, kept_meta: pl.DataFrame, dropped: pl.DataFrame
) -> dict:
    """One input's entry: what it is, and its rows in, kept and dropped."""
    k_in = int(kept_meta.filter(pl.col("input") == inp.index)["input_rows"].sum() or 0)
    d_in = int(dropped.filter(pl.col("input") == inp.index)["input_rows"].sum() or 0)
    return {
        "path": inp.path,
        "format": inp.format,
        "bytes": inp.size,
        "sha256": inp.sha256,
        "rows_in": builder.rows_in[inp.index],
        "rows_kept": k_in,
        "rows_dropped": d_in,
        "label_space": getattr(builder.input_spaces.get(inp.index), "name", None),
    }


def _counts(
    builder: Builder,
    inputs: list[BuildInput],
    kept: pl.DataFrame,
    kept_meta: pl.DataFrame,
    dropped: pl.DataFrame,
) -> dict:
    """Rows in, kept and dropped (by reason), kept by source, fold and
    class, and the cleaning's counters."""
    by_reason = {
        r: int(n)
        for r, n in dropped.group_by("reason").agg(pl.col("input_rows").sum()).sort("reason").rows()
    }
    by_source = {src: int(n) for src, n in kept_meta.group_by("source").len().sort("source").rows()}
    folds = {int(k): int(n) for k, n in kept.group_by("fold").len().sort("fold").rows()}
    labels = {_CLASSES[int(c)]: int(n) for c, n in kept.group_by("cls").len().sort("cls").rows()}
    return {
        "rows_in": sum(builder.rows_in[inp.index] for inp in inputs),
        "rows": int(len(kept)),
        "input_rows_kept": int(kept_meta["input_rows"].sum() or 0),
        "input_rows_dropped": int(dropped["input_rows"].sum() or 0),
        "dropped": by_reason,
        "by_source": by_source,
        "folds": folds,
        "labels": labels,
        "relabelled": builder.stats["relabelled"],
        "labels_normalised": builder.stats["labels_normalised"],
        "repaired": builder.stats["repaired"],
        "repairs": builder.repairs,
    }


def _lengths(shards: list[dict], directory: Path) -> np.ndarray:
    """The `length` column of every shard, in order."""
    lengths = []
    for shard in shards:
        t = pq.read_table(directory / shard["file"], columns=["length"])
        lengths.append(t.column("length").to_numpy())
    return np.concatenate(lengths) if lengths else np.zeros(0, np.int32)


def _stats(length: np.ndarray, builder: Builder, config: BuildConfig) -> dict:
    """Tokens, their percentiles per row, the truncated share and the fill
    of packs of `pack_tokens` (None when a row is longer)."""
    fill = None
    if len(length) and int(length.max()) <= config.pack_tokens:
        plan = plan_packs(
            length.astype(np.int64), config.pack_tokens, pair_swaps=False, shuffle=False
        )
        fill = round(plan.fill, 4)
    return {
        "tokens": int(length.sum()),
        "length": _percentiles(length),
        "truncated_share": round(float(builder.stats["truncated"]) / max(builder.seq, 1), 4),
        "pack_tokens": config.pack_tokens,
        "fill": fill,
    }


def _percentiles(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {}
    qs = (50, 90, 99)
    out = {f"p{q}": int(np.percentile(values, q)) for q in qs}
    out["max"] = int(values.max())
    out["mean"] = round(float(values.mean()), 1)
    return out


def check_not_empty(manifest: dict, dropped: pl.DataFrame) -> None:
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
