"""The decisions that need every row of a build at once (docs/dataset.md,
"De-duplication and duplicate ids", "Folds"): which rows are duplicates of
a row ranked higher (by source priority, then input order), and the fold of
each row kept. They work on the builder's `meta` (keys, class, priority),
never on the texts."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..folds import assign_folds
from .clean import UNLABELLED
from .config import BuildConfig


def decide(meta: pl.DataFrame, config: BuildConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Duplicate ids, de-duplication and folds. Returns the kept rows
    (`seq`, `cls`, `fold`, in `seq` order) and the dropped ones (the columns
    of dropped.parquet)."""
    meta = _mark_duplicates(meta.sort(["prio", "seq"]), config)
    dropped = meta.filter(pl.col("reason").is_not_null())
    kept = meta.filter(pl.col("reason").is_null()).sort("seq")
    folds = assign_folds(
        kept["prompt_key"].to_numpy(),
        _fold_classes(kept["cls"].to_numpy()),
        config.folds,
        seed=config.seed,
    )
    kept = kept.select("seq", "cls").with_columns(pl.Series("fold", folds, dtype=pl.Int8))
    dropped = dropped.select("source", "id", "row", "input_rows", "reason", "detail", "input")
    return kept, dropped


def _fold_classes(cls: np.ndarray) -> np.ndarray:
    """The classes folds stratify by (0 A, 1 B, 2 tie, 3 unlabelled): a
    row's `cls` (`clean.UNLABELLED` for unlabelled), both_bad (3) counted
    with tie, the other outcome where neither answer won."""
    out = cls.astype(np.int64)
    return np.where(out == UNLABELLED, 3, np.where(out == 3, 2, out))


def _mark_duplicates(meta: pl.DataFrame, config: BuildConfig) -> pl.DataFrame:
    """`meta` (ranked: priority, then input order) with `reason` (null for a
    row kept) and `detail`: the first of `duplicate_id`, `duplicate` and
    `duplicate_prompt` that applies, as `config.dedup` asks. A row whose id
    an earlier row of its input holds (both labelled, or both unlabelled)
    goes whatever `config.dedup` is: as `duplicate` when it is that row's
    conversation (the same `pair_key`: nothing is lost), as `duplicate_id`
    when its texts differ."""
    # Labelled rows and unlabelled ones (data to predict) are told apart: a
    # test row that reuses a train row's id is kept, so that a submission
    # keeps every id; an id twice among either, in one input, is one row.
    # Ids are an input's own: two files of a format without an id column
    # (hh-rlhf splits: ids are row numbers) share ids and are other rows.
    meta = meta.with_columns((pl.col("cls") == UNLABELLED).alias("unlabelled"))
    holder = ["source", "input", "id", "unlabelled"]
    dup_id = meta.select(pl.struct(holder).is_first_distinct().not_()).to_series()
    meta = meta.with_columns(dup_id.alias("dup_id")).with_columns(
        (pl.col("pair_key") == pl.col("pair_key").first().over(holder)).alias("same_pair")
    )
    kind = pl.when(pl.col("unlabelled")).then(pl.lit("unlabelled")).otherwise(pl.lit("labelled"))
    repeat = pl.col("dup_id") & pl.col("same_pair")
    conflict = pl.col("dup_id") & ~pl.col("same_pair")
    exprs = [
        pl.when(repeat).then(pl.lit("duplicate")),
        pl.when(conflict).then(pl.lit("duplicate_id")),
    ]
    detail = [
        pl.when(repeat).then(pl.lit("the same id and conversation as an earlier row")),
        pl.when(conflict).then(
            pl.format("an earlier {} row of this input has this id, with other texts", kind)
        ),
    ]
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
    return meta.with_columns(
        pl.coalesce(exprs + [pl.lit(None, pl.String)]).alias("reason"),
        pl.coalesce(detail + [pl.lit("", pl.String)]).alias("detail"),
    )
