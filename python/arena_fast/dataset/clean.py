"""Cleaning one chunk of canonical rows (docs/dataset.md, "Cleaning"): parse
the texts in the core, read the labels, decide per row in the documented
order why it is dropped (the first reason wins) or what it is flagged,
relabelled or normalised to, and give the kept rows' columns.

Pure functions of a chunk and the `BuildConfig`; `parts.Builder` calls them
on the reader thread (the core and polars release the GIL, so this overlaps
the encoding of the chunk before)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import polars as pl
import pyarrow as pa

from ..encoded import REPAIR_CLIPPED, REPAIR_IMAGE, REPAIR_NULL, REPAIR_RAGGED, REPAIR_SURROGATE
from ..errors import ConfigError
from ..labels import LabelSpace, describe_mapping, map_logits, map_probs, space_of_width
from ..rows import rows_from_arrow
from ..sources import METADATA_SCHEMA
from .config import (
    FLAG_EMPTY_A,
    FLAG_EMPTY_B,
    FLAG_EMPTY_PROMPT,
    FLAG_IDENTICAL,
    FLAG_LABELS_NORMALISED,
    FLAG_RELABELLED,
    BuildConfig,
)

# The optional row metadata columns (`sources.METADATA_SCHEMA`: language,
# category, meta), written after the other shard columns when some row has them.
METADATA_COLUMNS = tuple(METADATA_SCHEMA)


def parse_chunk(chunk: Any, null_text: str, threads: Optional[int] = None) -> tuple[Any, dict]:
    """A chunk's texts parsed by the core (a `_core.Rows`), and its row features (keys,
    empty / identical, repairs, turns, characters); the reader's repairs
    (lone surrogates in JSON) are ORed into `repairs`."""
    frame = chunk.rows
    rows = rows_from_arrow(
        frame["prompt"],
        frame["response_a"],
        frame["response_b"],
        null_text=null_text,
        num_threads=threads,
    )
    features = rows.features(threads)
    if chunk.repairs is not None:
        features["repairs"] = features["repairs"] | chunk.repairs
    return rows, features


def read_labels(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) float64 labels (NaN where null; K the width of the column's
    Array type, 3 for another) and the null mask. A row of
    finite, non-negative values whose sum overflows (`[0, 1e308, 1e308]`)
    comes divided by its largest value, so that normalising it by its sum
    gives `[0, 0.5, 0.5]` rather than `[0, 0, 0]`."""
    col = frame["labels"]
    k = col.dtype.size if isinstance(col.dtype, pl.Array) else 3
    null = col.is_null().to_numpy()
    if len(col) == 0:
        return np.zeros((0, k)), null
    values = np.stack(
        [col.arr.get(i, null_on_oob=True).fill_null(np.nan).to_numpy() for i in range(k)],
        axis=1,
    ).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        fine = np.isfinite(values).all(axis=1) & (values >= 0).all(axis=1)
        overflow = fine & ~np.isfinite(values.sum(axis=1))
    if overflow.any():
        values[overflow] /= values[overflow].max(axis=1, keepdims=True)
    return values, null


@dataclass
class Cleaned:
    """A chunk's rows after cleaning. `reason` is "" for a kept row, else
    why it is dropped (its `detail` says more); `labels` are normalised or
    relabelled, `flags` and `repairs` are the kept rows' columns. Policies
    apply to `policed` rows: labelled ones and chat1m pairs."""

    reason: np.ndarray  # object: str
    detail: np.ndarray  # object: str
    labels: np.ndarray  # (n, K) float64 in the target label space, NaN where unlabelled
    unlabelled: np.ndarray  # bool
    policed: np.ndarray  # bool
    flags: np.ndarray  # uint8
    repairs: np.ndarray  # uint8
    space: LabelSpace  # the build's label space (the labels' K)

    def drop(self, mask: np.ndarray, reason: str) -> None:
        """Drop the rows of `mask` not dropped already (the first reason wins)."""
        self.reason[mask & (self.reason == "")] = reason

    def kept(self) -> np.ndarray:
        return np.flatnonzero(self.reason == "")

    def gone(self) -> np.ndarray:
        return np.flatnonzero(self.reason != "")


def clean_chunk(
    frame: pl.DataFrame,
    features: dict,
    errors: list,
    config: BuildConfig,
    spaces: Optional[tuple[LabelSpace, LabelSpace]] = None,
) -> Cleaned:
    """The cleaning of docs/dataset.md, in its order, for one chunk: text
    that did not parse (`errors`: the core's (row, column, message)),
    labels (in the data's label space, then mapped to the build's:
    `spaces` is (data, target); None: the labels' own width), then the
    policies of `config`."""
    n = len(frame)
    labels, unlabelled = read_labels(frame)
    if spaces is None:
        own = space_of_width(labels.shape[1])
        spaces = (own, own)
    cleaned = Cleaned(
        reason=np.full(n, "", dtype=object),
        detail=np.full(n, "", dtype=object),
        labels=labels,
        unlabelled=unlabelled,
        policed=~unlabelled | (frame["source"] == "chat1m").to_numpy(),
        flags=np.zeros(n, dtype=np.uint8),
        repairs=features["repairs"],
        space=spaces[0],
    )
    for row, column, message in errors:
        cleaned.reason[row] = "bad_text"
        cleaned.detail[row] = f"column {column}: {message}"
    _check_labels(cleaned)
    _map_space(cleaned, spaces[1])
    _flag_texts(cleaned, features)
    _apply_policies(cleaned, features, config)
    return cleaned


def _check_labels(c: Cleaned) -> None:
    """Labels must be finite, non-negative, of positive sum (`bad_labels`
    otherwise); those not summing to 1 are divided by their sum."""
    n = len(c.labels)
    lab = c.labels[~c.unlabelled]
    with np.errstate(over="ignore", invalid="ignore"):  # [-1e308, -1e308, 1]: bad anyway
        sums = lab.sum(axis=1)
    bad = ~np.isfinite(lab).all(axis=1) | (lab < 0).any(axis=1) | ~(sums > 0)
    bad_rows = np.flatnonzero(~c.unlabelled)[bad]
    c.drop(np.isin(np.arange(n), bad_rows), "bad_labels")
    for r in bad_rows:
        if c.detail[r] == "":
            c.detail[r] = f"labels {c.labels[r].tolist()}"
    ok = ~c.unlabelled
    ok[bad_rows] = False
    with np.errstate(over="ignore", invalid="ignore"):
        norm = ok & (np.abs(np.nan_to_num(c.labels.sum(axis=1)) - 1.0) > 1e-6)
    if norm.any():
        c.labels[norm] = c.labels[norm] / c.labels[norm].sum(axis=1, keepdims=True)
        c.flags[norm] |= FLAG_LABELS_NORMALISED


def _map_space(c: Cleaned, target: LabelSpace) -> None:
    """The labels mapped from the data's label space to `target` by the
    explicit rule of `af.labels.MAPPINGS`; a row left with nothing (a tie or
    both_bad mapped to `ab`) is dropped as `label_space`."""
    source = c.space
    c.space = target
    if source == target:
        return
    if c.unlabelled.all():
        c.labels = np.full((len(c.labels), target.k), np.nan)
        return
    mapped, lost = map_probs(c.labels, source, target)
    c.labels = mapped
    c.drop(lost, "label_space")
    for r in np.flatnonzero(lost & (c.detail == "")):
        c.detail[r] = f"{describe_mapping(source, target)}"


def mapped_teacher_logits(column: pl.Series, source: LabelSpace, target: LabelSpace) -> pa.Array:
    """`teacher_logits` (List(Array(Float64, K))) as float32 rows of
    `target`'s width, mapped by `af.labels.map_logits` when the spaces differ."""
    dtype = pl.List(pl.Array(pl.Float32, target.k))
    if source == target or column.null_count() == len(column):
        if source != target:
            return pl.Series(column.name, [None] * len(column), dtype=dtype).to_arrow()
        return column.cast(dtype).to_arrow()
    rows = [
        None if v is None else map_logits(np.asarray(v, np.float64), source, target).tolist()
        for v in column.to_list()
    ]
    return pl.Series(column.name, rows, dtype=dtype).to_arrow()


def _flag_texts(c: Cleaned, features: dict) -> None:
    """The flags of empty answers, identical answers and an empty prompt."""
    empty_a, empty_b = features["empty_a"], features["empty_b"]
    c.flags[empty_a] |= FLAG_EMPTY_A
    c.flags[empty_b] |= FLAG_EMPTY_B
    c.flags[features["identical"] & ~(empty_a & empty_b)] |= FLAG_IDENTICAL
    c.flags[features["empty_prompt"]] |= FLAG_EMPTY_PROMPT


def _apply_policies(c: Cleaned, features: dict, config: BuildConfig) -> None:
    """Steps 3 to 7 of the cleaning table: empty answers, identical answers,
    ragged turn lists, repaired text, each as `config` says."""
    empty_a, empty_b = features["empty_a"], features["empty_b"]
    identical = features["identical"] & ~(empty_a & empty_b)
    policed = c.policed
    if config.both_empty == "drop":
        c.drop(empty_a & empty_b & policed, "both_empty")
    one = (empty_a ^ empty_b) & policed
    if config.one_empty == "drop":
        c.drop(one, "one_empty")
    elif config.one_empty == "relabel":
        relabel = one & ~c.unlabelled & (c.reason == "")
        c.labels[relabel & empty_a] = c.space.onehot(1)
        c.labels[relabel & empty_b] = c.space.onehot(0)
        c.flags[relabel] |= FLAG_RELABELLED
    ident = identical & policed
    if config.identical == "drop":
        c.drop(ident, "identical")
    elif config.identical == "tie":
        if "tie" not in c.space.keys:
            raise ConfigError(
                f"identical='tie' relabels to a tie, which label space {c.space.name!r} lacks "
                "(use identical='drop' or 'keep')"
            )
        relabel = ident & ~c.unlabelled & (c.reason == "")
        c.labels[relabel] = c.space.onehot(2)
        c.flags[relabel] |= FLAG_RELABELLED
    if config.ragged == "drop":
        c.drop(((c.repairs & REPAIR_RAGGED) != 0) & policed, "ragged")
    if config.repaired == "drop":
        text = REPAIR_NULL | REPAIR_SURROGATE | REPAIR_CLIPPED | REPAIR_IMAGE
        c.drop(((c.repairs & text) != 0) & policed, "repaired")


def dropped_rows(
    frame: pl.DataFrame, c: Cleaned, gone: np.ndarray, input_index: int
) -> pl.DataFrame:
    """The rows `gone` of the chunk as rows of dropped.parquet."""
    sub = frame[gone]
    return pl.DataFrame(
        {
            "source": sub["source"],
            "id": sub["id"],
            "row": sub["row"],
            "input_rows": sub["input_rows"],
            "reason": pl.Series(c.reason[gone].tolist(), dtype=pl.String),
            "detail": pl.Series(c.detail[gone].tolist(), dtype=pl.String),
        }
    ).with_columns(pl.lit(input_index, pl.Int16).alias("input"))


def kept_meta(
    frame: pl.DataFrame,
    features: dict,
    c: Cleaned,
    kept: np.ndarray,
    input_index: int,
    priority: np.ndarray,
) -> pl.DataFrame:
    """What de-duplication and folds need of the kept rows: ids, keys,
    class (`UNLABELLED`: unlabelled), source `priority` and whether
    policies apply."""
    sub = frame[kept]
    return pl.DataFrame(
        {
            "source": sub["source"],
            "id": sub["id"],
            "row": sub["row"],
            "input_rows": sub["input_rows"],
            "input": np.full(len(kept), input_index, dtype=np.int16),
            "prompt_key": features["prompt_key"][kept],
            "pair_key": features["pair_key"][kept],
            "cls": _classes(c, kept).astype(np.uint8),
            "prio": priority,
            "policed": c.policed[kept],
        }
    )


# The `cls` of an unlabelled row: past every label space's classes.
UNLABELLED = 4


def _classes(c: Cleaned, kept: np.ndarray) -> np.ndarray:
    """The kept rows' class: the argmax of the labels, `UNLABELLED` when
    unlabelled."""
    lab_kept, unl_kept = c.labels[kept], c.unlabelled[kept]
    if len(kept) == 0:
        return np.zeros(0, np.int64)
    return np.where(unl_kept, UNLABELLED, np.argmax(np.nan_to_num(lab_kept, nan=-1.0), axis=1))


def kept_columns(
    frame: pl.DataFrame,
    features: dict,
    c: Cleaned,
    kept: np.ndarray,
    input_index: int,
    source: LabelSpace,
) -> dict[str, Any]:
    """The kept rows' shard columns that do not come from the encoder, as
    Arrow arrays, in the shards' column order (`source`: the data's label
    space, which the teacher logits are mapped from), and last the row
    metadata columns the chunk carries (`METADATA_COLUMNS`; a reader without
    them leaves them out, `shards.write_shards` decides which are written)."""
    sub = frame[kept]
    metadata = {
        name: sub[name].cast(pl.String).to_arrow().cast(pa.string())
        for name in METADATA_COLUMNS
        if name in sub.columns
    }
    return {
        "id": sub["id"].to_arrow(),
        "source": sub["source"].to_arrow(),
        "input": pa.array(np.full(len(kept), input_index, dtype=np.int16)),
        "row": sub["row"].to_arrow(),
        "input_rows": sub["input_rows"].to_arrow(),
        "model_a": sub["model_a"].to_arrow(),
        "model_b": sub["model_b"].to_arrow(),
        "labels": _float_rows(np.nan_to_num(c.labels[kept]), c.unlabelled[kept]),
        "teacher_logits": mapped_teacher_logits(sub["teacher_logits"], source, c.space),
        "flags": pa.array(c.flags[kept]),
        "turns": pa.array(features["turns"][kept]),
        "repairs": pa.array(c.repairs[kept]),
        "chars": pa.array(features["chars"][kept]),
        **metadata,
    }


def _float_rows(values: np.ndarray, null: np.ndarray) -> pa.Array:
    """(n, K) values as fixed_size_list<float32, K>, null where `null`."""
    k = values.shape[1]
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    arr = pa.FixedSizeListArray.from_arrays(flat, k)
    if null.any():
        arr = pa.FixedSizeListArray.from_arrays(flat, k, mask=pa.array(null))
    return arr
