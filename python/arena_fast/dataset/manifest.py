"""A built dataset's manifest.json (docs/dataset.md, "The dataset
directory"): every setting that determines its bytes, the encoder and
tokenizer, the inputs, the counts of rows kept and dropped, the token
statistics and the shards with their sha256; and the check that a build
is not an empty or mostly-unreadable success. The schema that readers
check a manifest against is `dataset.schema`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from .. import _core
from ..errors import InputError
from ..files import file_sha256
from ..labels import DEFAULT_SPACE, describe_mapping
from ..outputs import DROPPED, TOKENIZER
from ..pairs import interleave_rows
from ..plan import plan_packs
from .clean import UNLABELLED
from .config import (
    DUPLICATE_REASONS,
    FORMAT_VERSION,
    POLICY_REASONS,
    SIDE_B,
    UNCOUNTED_REASONS,
    BuildConfig,
)
from .parts import Builder
from .read import BuildInput

# Settings kept out of the manifest's `config`: they change no output byte
# (`threads`), or decide whether the build succeeds, not what it writes
# (build.json records them).
NOT_RECORDED = ("threads", "max_drop_share", "allow_empty")

# The manifest's names of the kept rows' classes (`cls` 0 to 4: the label
# space's classes, then `clean.UNLABELLED`).
_CLASSES = ("a", "b", "tie", "both_bad", "unlabelled")
# The manifest's word on how the ids are stored.
_IDS = "input_ids: binary, little-endian int32 per row"
_IDS_SEPARATE = (
    "input_ids (prompt + answer A), input_ids_b (prompt + answer B): binary, "
    "little-endian int32 per row"
)


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
    separate = config.layout == "separate"
    length = _lengths(shards, directory, separate)
    for shard in shards:
        shard["sha256"] = file_sha256(directory / shard["file"])
    space = builder.space or DEFAULT_SPACE
    return {
        "format_version": FORMAT_VERSION,
        "arena_fast_version": _core.__version__,
        # Without `threads`: it changes no output byte, so no manifest byte.
        "config": {k: v for k, v in config.to_dict().items() if k not in NOT_RECORDED},
        "encoder": builder.encoder.config(),
        "tokenizer": {
            "file": TOKENIZER,
            "sha256": tokenizer_sha256,
            "source": builder.tokenizer.source,
        },
        "ids": _IDS_SEPARATE if separate else _IDS,
        "swap": bool(config.swap),
        # The label space (docs/dataset.md, "Label spaces"), and how each
        # input's labels were mapped to it when theirs differ.
        "label_space": space.name,
        "label_mapping": sorted(
            {describe_mapping(s, space) for s in builder.input_spaces.values() if s != space}
        ),
        "folds": config.folds,
        "inputs": [_input(inp, config, builder, kept_meta, dropped) for inp in inputs],
        "counts": _counts(builder, inputs, kept, kept_meta, dropped),
        "stats": _stats(length, builder, config, separate),
        "shards": shards,
        "dropped_file": DROPPED,
    }


def _input(
    inp: BuildInput,
    config: BuildConfig,
    builder: Builder,
    kept_meta: pl.DataFrame,
    dropped: pl.DataFrame,
) -> dict:
    """One input's entry: what it is (its format, and how that was chosen:
    `format_chosen`), its label space, and its rows in, kept and dropped."""
    k_in = int(kept_meta.filter(pl.col("input") == inp.index)["input_rows"].sum() or 0)
    d_in = int(dropped.filter(pl.col("input") == inp.index)["input_rows"].sum() or 0)
    return {
        "path": inp.path,
        "format": inp.format,
        "format_chosen": _format_chosen(inp, config),
        "bytes": inp.size,
        "sha256": inp.sha256,
        "rows_in": builder.rows_in[inp.index],
        "rows_kept": k_in,
        "rows_dropped": d_in,
        "label_space": getattr(builder.input_spaces.get(inp.index), "name", None),
    }


def _format_chosen(inp: BuildInput, config: BuildConfig) -> str:
    """How an input's format was chosen: `given` (PATH:FORMAT, --format),
    `demo` for the demo rows, else why detection chose it
    (`BuildInput.detected`)."""
    if not config.inputs:
        return "demo"
    return inp.detected or "given"


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
        "ids_shared": _ids_shared(kept_meta),
        "relabelled": builder.stats["relabelled"],
        "labels_normalised": builder.stats["labels_normalised"],
        "repaired": builder.stats["repaired"],
        "repairs": builder.repairs,
    }


def _ids_shared(kept_meta: pl.DataFrame) -> int:
    """Unlabelled rows kept whose source and id a labelled row kept holds
    too (docs/dataset.md, "De-duplication and duplicate ids")."""
    unlabelled = pl.col("cls") == UNLABELLED
    labelled = kept_meta.filter(~unlabelled).select("source", "id")
    return len(kept_meta.filter(unlabelled).join(labelled, on=["source", "id"], how="semi"))


def _lengths(shards: list[dict], directory: Path, separate: bool) -> np.ndarray:
    """The `length` column of every shard, in order; for the separate
    layout both sides' (`length`, `length_b`) interleaved as training reads
    them (rows 2i, 2i + 1)."""
    names = ["length", "length" + SIDE_B] if separate else ["length"]
    lengths = []
    for shard in shards:
        t = pq.read_table(directory / shard["file"], columns=names)
        if separate:
            lengths.append(interleave_rows(*(t.column(c).to_numpy() for c in names)))
        else:
            lengths.append(t.column("length").to_numpy())
    return np.concatenate(lengths) if lengths else np.zeros(0, np.int32)


def _stats(length: np.ndarray, builder: Builder, config: BuildConfig, separate: bool) -> dict:
    """Tokens, their percentiles per sequence (per row; per side of a row
    in the separate layout), the truncated share and the fill of packs of
    `pack_tokens` (None when a sequence, or a separate row's pair of sides,
    which training keeps in one pack, is longer)."""
    fill = None
    if len(length):
        longest = (length[0::2] + length[1::2]) if separate else length
    if len(length) and int(longest.max()) <= config.pack_tokens:
        plan = plan_packs(
            length.astype(np.int64), config.pack_tokens, pair_swaps=separate, shuffle=False
        )
        fill = round(plan.fill, 4)
    sequences = builder.seq * (2 if separate else 1)
    return {
        "tokens": int(length.sum()),
        "length": _percentiles(length),
        "truncated_share": round(float(builder.stats["truncated"]) / max(sequences, 1), 4),
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


def check_not_empty(manifest: dict, dropped: pl.DataFrame, config: BuildConfig) -> None:
    """Never an empty or mostly-dropped success (docs/dataset.md, "When a
    build fails"). An `InputError` (so nothing is published) when:

    - the inputs hold no row, or the build keeps none;
    - an input keeps none of its rows and none of them is a duplicate of a
      row kept (`DUPLICATE_REASONS`: a file whose rows are in the dataset
      already, from a source of higher priority or an earlier input, adds
      nothing and loses nothing; its other drops are judged by the share);
    - an input loses more than `config.max_drop_share` of its rows (counted
      in input rows) to reasons outside `UNCOUNTED_REASONS`.

    `config.allow_empty` accepts the first two. The error names the input,
    the top drop reasons with one example row each (row, id, detail), what
    keeps such rows where a setting does, and the flag that accepts it."""
    counts = manifest["counts"]
    if not config.allow_empty:
        paths = ", ".join(inp["path"] for inp in manifest["inputs"])
        if counts["rows_in"] == 0:
            raise InputError(
                f"{paths}: no rows (a header only?); nothing to build "
                "(--allow-empty, allow_empty=True, accepts it)"
            )
        if counts["rows"] == 0:
            raise InputError(
                f"{paths}: every one of the {counts['rows_in']:,} input rows was dropped; "
                f"nothing to build. {_explain(dropped, manifest['inputs'])} "
                "(--allow-empty, allow_empty=True, accepts an empty dataset)"
            )
    for index, inp in enumerate(manifest["inputs"]):
        mine = dropped.filter(pl.col("input") == index)
        if not config.allow_empty and inp["rows_kept"] == 0:
            if inp["rows_in"] == 0:
                raise InputError(
                    f"{inp['path']}: no rows (a header only?) "
                    "(--allow-empty, allow_empty=True, accepts an input that adds none)"
                )
            if not mine["reason"].is_in(list(DUPLICATE_REASONS)).any():
                raise InputError(
                    f"{inp['path']}: none of its {inp['rows_in']:,} rows was kept. "
                    f"{_explain(mine, [inp])} "
                    "(--allow-empty, allow_empty=True, accepts an input that adds none)"
                )
        counted = mine.filter(~pl.col("reason").is_in(list(UNCOUNTED_REASONS)))
        lost = int(counted["input_rows"].sum() or 0)
        if inp["rows_in"] and lost > config.max_drop_share * inp["rows_in"]:
            share = lost / inp["rows_in"]
            raise InputError(
                f"{inp['path']}: {lost:,} of its {inp['rows_in']:,} rows ({share:.0%}) were "
                f"dropped, more than max_drop_share {config.max_drop_share:g}. "
                f"{_explain(counted, [inp])} (--max-drop-share {_above(share)}, "
                f"max_drop_share={_above(share)}, accepts it)"
            )


# What keeps the rows a reason drops, where a setting does.
_REMEDIES = {
    "label_space": "ties and both_bad rows have no A/B share in label space ab: "
    "--label-space abt keeps them",
    "duplicate_id": "rows of one source repeat an id with other texts: its ids are not unique "
    "(row numbers? two files of one source numbered alike? give each its own ids)",
    "chat1m_unpaired": "lmsys-chat-1m conversations become rows only as pairs, two models' "
    "answers to one prompt, and a sample of conversations seldom holds a prompt twice: build "
    "from the whole file, or sample whole prompts",
    "chat1m_identical": "the models that answered a prompt answered it the same",
    "both_empty": "--both-empty keep keeps them",
    "one_empty": "--one-empty keep keeps them",
    "identical": "--identical tie or keep keeps them",
    "ragged": "--ragged keep keeps them",
    "repaired": "--repaired keep keeps them",
    "image": "--images strip keeps their text",
}


_CHAT1M_PAIRING = ("chat1m_unpaired", "chat1m_identical")


def _explain(dropped: pl.DataFrame, inputs: list[dict], top: int = 3) -> str:
    """The top `top` drop reasons of `dropped` (in input rows), one example
    row each, and what keeps such rows."""
    by = (
        dropped.sort("input", "row")
        .group_by("reason", maintain_order=True)
        .agg(pl.col("input_rows").sum().alias("n"), pl.all().first())
        .sort(["n", "reason"], descending=[True, False])
    )
    parts, remedies = [], []
    if by["reason"].is_in(list(_CHAT1M_PAIRING)).all():
        remedies.append("no pair: no prompt here was answered by two models with other answers")
    for r in by.head(top).iter_rows(named=True):
        ident = "" if r["id"] is None else f", id {r['id']!r:.60}"
        detail = f": {r['detail']:.200}" if r["detail"] else ""
        parts.append(f"{r['reason']} {r['n']:,} (e.g. row {r['row']}{ident}{detail})")
        remedy = _REMEDIES.get(r["reason"])
        if remedy is None and r["reason"] not in POLICY_REASONS:
            remedy = _unreadable(inputs)
        if remedy and remedy not in remedies:
            remedies.append(remedy)
    more = f"; {len(by) - top} more reasons in dropped.parquet" if len(by) > top else ""
    said = f"Dropped: {'; '.join(parts)}{more}."
    if not remedies:
        return said
    advice = "; ".join(remedies)
    return f"{said} {advice[0].upper()}{advice[1:]}."


def _unreadable(inputs: list[dict]) -> str:
    """What to check when rows could not be read: the format they were read
    as, and how it was chosen."""
    read_as = ", ".join(f"{inp['format']} ({inp.get('format_chosen', 'given')})" for inp in inputs)
    return f"rows not read as {read_as}: check the format (PATH:FORMAT or --format sets it)"


def _above(share: float) -> str:
    """A threshold just above `share`, to 2 places."""
    return f"{min(1.0, math.floor(share * 100 + 1) / 100):.2f}"
