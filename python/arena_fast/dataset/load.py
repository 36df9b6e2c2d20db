"""Loading a built dataset: `read_manifest` checks the manifest before
anything it lists is read, `load_dataset` reads the shards (memory-mapped)
into an `ArenaDataset` without re-tokenizing (docs/dataset.md, "Loading")."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..encoded import Encoded
from ..encoder import Encoder
from ..errors import ConfigError, InputError
from ..files import file_sha256, read_capped
from ..labels import DEFAULT_SPACE, LabelSpace, label_space
from ..outputs import MANIFEST, TOKENIZER
from ..pairs import interleave_pairs, interleave_rows, pair_rows
from ..tokenizer import Tokenizer
from .clean import METADATA_COLUMNS
from .config import (
    FLAG_EMPTY_A,
    FLAG_EMPTY_B,
    FORMAT_VERSION,
    SIDE_B,
    encoder_layout,
    pair_suffix,
)
from .schema import MAX_BYTES as MANIFEST_MAX_BYTES
from .schema import check_manifest
from .shard_check import check_shard_schema, check_values


@dataclass
class ArenaDataset:
    """Rows of a built dataset, ready for `plan_packs` / `plan_batches` and
    the collators. With `swapped`, rows come in pairs: for the `cross`
    layout, row 2i is row i in its original order and row 2i+1 its A/B swap
    (the layout of `swap="both"`), and `labels` follow; for the `separate`
    layout (`layout`), row 2i is row i's prompt + answer A and row 2i+1 its
    prompt + answer B (`encoded.is_swapped` marks the B side), and both
    rows hold the pair's `labels`, `label`, `flags` and `teacher_logits` as
    stored, A and B not exchanged (a reward model scores the pair as one).

    `labels` is (n, K) float32, NaN for unlabelled rows, K the classes of
    `space`, the dataset's label space (`ab`, `abt`, `abtx`: `af.labels`);
    `label` the class (0 A, 1 B, 2 tie, 3 both_bad, -1 unlabelled); `flags`
    the cleaning flags per row
    (`FLAG_EMPTY_A`, `FLAG_EMPTY_B`, `FLAG_IDENTICAL`, ...; docs/dataset.md).
    `metadata`: the row metadata columns the dataset holds (`language`,
    `category`, `meta` as JSON object text; a list per column, None where a
    row has none; a column no row has is absent): `column(name)` reads one
    as all None when absent."""

    encoded: Encoded
    labels: np.ndarray
    label: np.ndarray
    ids: list
    sources: list
    folds: np.ndarray
    teacher_logits: Optional[list]
    flags: np.ndarray
    swapped: bool
    manifest: dict
    path: Path
    space: LabelSpace = DEFAULT_SPACE
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.encoded)

    @property
    def layout(self) -> str:
        """`cross` (a row holds the prompt and both answers) or `separate`
        (the encoder's `layout="separate"`: with `swapped`, row 2i is the
        prompt with answer A and row 2i+1 the prompt with answer B, the
        input of reward models; docs/encoding.md). Manifests written before
        the separate layout existed are `cross`."""
        return encoder_layout(self.manifest.get("encoder", {}))

    def column(self, name: str) -> list:
        """A row metadata column (`METADATA_COLUMNS`: `language`, `category`,
        `meta`) per row, all None when the dataset holds none of it."""
        if name not in METADATA_COLUMNS:
            raise ConfigError(
                f"{name!r} is not a row metadata column ({', '.join(METADATA_COLUMNS)})"
            )
        return self.metadata.get(name) or [None] * len(self)

    @property
    def lengths(self) -> np.ndarray:
        return self.encoded.lengths

    @property
    def labelled(self) -> np.ndarray:
        return self.label >= 0

    def tokenizer(self):
        """The tokenizer the dataset was encoded with (stored beside it)."""
        return Tokenizer.from_file(self.path / TOKENIZER)

    def encoder(self, **overrides):
        """An `af.Encoder` that encodes exactly as this dataset was built."""
        tokenizer = self.tokenizer()
        try:
            return Encoder.from_config(tokenizer, self.manifest["encoder"], **overrides)
        except TypeError as exc:  # an option Encoder does not take
            raise InputError(f"{self.path / MANIFEST}: encoder: {exc}") from None

    def to_hf(self):
        """The rows as a Hugging Face `datasets.Dataset` (for `Dataset.map`,
        `transformers.Trainer`, `af.torch.hf.ArenaTrainer`), in this
        dataset's row order, one row per row here (with `swapped`, rows 2i
        and 2i + 1 are one conversation's two orders). Columns: `id`,
        `source`, `fold`, `label` (0 A, 1 B, 2 tie, 3 both_bad, -1
        unlabelled), `labels` (K probabilities; null when unlabelled), `input_ids` (token ids,
        `list<int32>`: the ids are handed to Arrow without a copy), `length`,
        `truncated`; `is_swapped` when `swapped` (in the separate layout:
        True for the B side), `teacher_logits`,
        `language`, `category` and `meta` when the dataset has them. Needs
        the `datasets` package (not in the core install: `pip install
        datasets`)."""
        try:
            # Optional: only this method needs it, and the core install lacks it.
            import datasets
        except ImportError:
            raise ConfigError(
                "ArenaDataset.to_hf() needs the datasets package (pip install datasets); "
                "the core install of arena_fast does not include it"
            ) from None
        labelled = self.labelled
        columns = {
            "id": pa.array(self.ids),
            "source": pa.array(self.sources, pa.string()),
            "fold": pa.array(self.folds),
            "label": pa.array(self.label),
            "labels": pa.array(
                [row if keep else None for row, keep in zip(self.labels.tolist(), labelled)],
                pa.list_(pa.float32()),
            ),
            "input_ids": self.encoded.to_arrow(large=len(self.encoded.input_ids) >= 2**31),
            "length": pa.array(self.lengths),
            "truncated": pa.array(self.encoded.truncated),
        }
        if self.swapped:
            columns["is_swapped"] = pa.array(self.encoded.is_swapped)
        if self.teacher_logits is not None:
            columns["teacher_logits"] = pa.array(
                self.teacher_logits, pa.list_(pa.list_(pa.float32()))
            )
        for name, values in self.metadata.items():
            columns[name] = pa.array(values, pa.string())
        return datasets.Dataset(pa.table(columns))

    def __repr__(self) -> str:
        return (
            f"<arena_fast.ArenaDataset rows={len(self)} space={self.space.name} "
            f"layout={self.layout} swapped={self.swapped} "
            f"labelled={int(self.labelled.sum())} path={self.path}>"
        )


def read_manifest(path: Union[str, os.PathLike]) -> dict:
    """The manifest of the dataset directory `path`, checked against its
    schema (`schema.check_manifest`) before anything it lists
    is read: an `InputError` naming the file and the field otherwise."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise InputError(f"{path}: not a dataset (no {MANIFEST}; an interrupted build leaves none)")
    data = read_capped(mpath, MANIFEST_MAX_BYTES, "a manifest build-dataset wrote", InputError)
    try:
        manifest = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        raise InputError(f"{mpath}: not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError(f"{mpath}: not valid JSON: nested too deeply") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{mpath}: a JSON {type(manifest).__name__}, expected an object")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise InputError(
            f"{mpath}: dataset format {version!r:.40}, this arena_fast reads {FORMAT_VERSION}"
        )
    check_manifest(manifest, mpath, path)
    return manifest


def read_row(
    path: Union[str, os.PathLike],
    manifest: dict,
    index: Optional[int] = None,
    row_id: Optional[str] = None,
    columns: Optional[list] = None,
) -> dict:
    """One stored row of the dataset at `path` (its checked `manifest`): row
    `index` (0-based, in shard order, as `inspect --row` counts), or the row
    whose id is `row_id`, with `columns` (all when None) and `row`, its
    index. Reads one shard's rows (and the `id` column of the shards before
    it for `row_id`), never the whole dataset; an `InputError` when there is
    no such row."""
    path = Path(path)
    total = manifest["counts"]["rows"]
    if row_id is None and (index is None or not 0 <= index < total):
        raise InputError(f"row {index} is not in [0, {total})")
    offset = 0
    for shard in manifest["shards"]:
        file = path / shard["file"]
        if row_id is not None:
            ids = pq.read_table(file, columns=["id"]).column("id").to_pylist()
            local = ids.index(row_id) if row_id in ids else None
        else:
            local = index - offset if index < offset + shard["rows"] else None
        if local is not None:
            row = pq.read_table(file, columns=columns).slice(local, 1).to_pylist()[0]
            row["row"] = offset + local
            return row
        offset += shard["rows"]
    raise InputError(f"no row with id {row_id!r}")


def dataset_space(manifest: dict) -> LabelSpace:
    """The label space a dataset's manifest records (`abt` for a manifest
    written before label spaces)."""
    return label_space(manifest.get("label_space", DEFAULT_SPACE.name))


def load_dataset(
    path: Union[str, os.PathLike],
    fold: Optional[int] = None,
    split: str = "train",
    *,
    swap: Optional[bool] = None,
    sources: Optional[Sequence[str]] = None,
    verify: bool = False,
) -> ArenaDataset:
    """Rows of a built dataset as an `ArenaDataset` (an `af.Encoded` and its
    labels), without re-tokenizing.

    `fold` None: every row (split ignored). Otherwise `split="train"` is every
    fold but `fold`, `"valid"` that fold. `swap`: interleave each row with its
    A/B swap (rows 2i, 2i+1); None does so when the dataset has them.
    A dataset of the separate layout always gives each row as its two
    sides, rows 2i (prompt + A) and 2i + 1 (prompt + B), each with the
    pair's labels as stored (`swapped` True, `is_swapped` marking the B
    side): `swap` None or True; False is a ConfigError.
    `sources` keeps only those sources. `verify` checks each shard's sha256."""
    path = Path(path)
    manifest = read_manifest(path)
    swap = _check_request(path, manifest, fold, split, swap)
    suffix = pair_suffix(manifest) if swap else None
    space = dataset_space(manifest)
    tables = [
        _read_shard(path / shard["file"], shard, fold, split, suffix, sources, verify, space.k)
        for shard in manifest["shards"]
    ]
    table = pa.concat_tables(tables) if tables else None
    rows = _stored_rows(table, path, space.k)
    has_teacher = any(t is not None for t in rows.teacher_logits)
    if suffix == SIDE_B and rows.n:
        rows = _interleave_sides(rows, _second_sequences(table, path, suffix))
    elif swap and rows.n:
        rows = _interleave_swapped(rows, _second_sequences(table, path, suffix), space)
    return ArenaDataset(
        encoded=Encoded(rows.encoded),
        labels=rows.labels,
        label=rows.label,
        ids=rows.ids,
        sources=rows.sources,
        folds=rows.folds,
        teacher_logits=rows.teacher_logits if has_teacher else None,
        flags=rows.flags,
        swapped=bool(swap),
        manifest=manifest,
        path=path,
        space=space,
        metadata=rows.metadata,
    )


def _check_request(
    path: Path, manifest: dict, fold: Optional[int], split: str, swap: Optional[bool]
) -> bool:
    """A ConfigError for a split, fold or swap the dataset cannot give;
    returns `swap` with None resolved (swapped rows when the dataset has them)."""
    if split not in ("train", "valid"):
        raise ConfigError(f"split must be 'train' or 'valid', got {split!r}")
    if fold is not None and (
        isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < manifest["folds"]
    ):
        raise ConfigError(f"fold must be an int in [0, {manifest['folds']}), got {fold!r}")
    if pair_suffix(manifest) == SIDE_B:
        if swap is False:
            raise ConfigError(
                f"{path} is a dataset of the separate layout: each row is its two sides, "
                "prompt + A and prompt + B, always given as rows 2i and 2i + 1 (swap=None or "
                "True); swap=False (one sequence per row) has no meaning for it"
            )
        return True
    has_swap = bool(manifest.get("swap"))
    if swap is None:
        swap = has_swap
    if swap and not has_swap:
        raise ConfigError(f"{path} was built without --swap; it holds no swapped rows")
    return swap


def _read_shard(
    file: Path,
    shard: dict,
    fold: Optional[int],
    split: str,
    suffix: Optional[str],
    sources: Optional[Sequence[str]],
    verify: bool,
    classes: int,
) -> pa.Table:
    """The rows of one shard in the requested folds and sources, after its
    size (and sha256 with `verify`), row count and schema agree with the
    manifest's entry `shard` (`suffix`: that of the second sequence's
    columns read, `_swapped` or `_b`; None reads one sequence)."""
    if not file.is_file():
        raise InputError(f"{file}: shard listed in the manifest is missing")
    if file.stat().st_size != shard["bytes"]:
        raise InputError(f"{file}: size differs from the manifest (modified or truncated)")
    if verify and file_sha256(file) != shard["sha256"]:
        raise InputError(f"{file}: sha256 differs from the manifest")
    filters = None
    if fold is not None:
        filters = [("fold", "!=" if split == "train" else "==", fold)]
    hint = "" if verify else " (verify=True checks the shards' sha256)"
    try:
        held = pq.ParquetFile(file, memory_map=True).metadata.num_rows
        t = pq.read_table(file, memory_map=True, filters=filters)
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{file}: cannot read the shard: {first}{hint}") from None
    if held != shard["rows"]:
        raise InputError(f"{file}: {held} rows, the manifest says {shard['rows']}{hint}")
    check_shard_schema(t.schema, file, suffix, hint, classes)
    if sources is not None:
        t = t.filter(pa.compute.is_in(t.column("source"), pa.array(list(sources))))
    return t


@dataclass
class _Rows:
    """What `ArenaDataset` holds per row, before it is one: the `Encoded`
    fields and the row's labels, class, id, source, fold, teacher logits and
    flags."""

    encoded: dict
    labels: np.ndarray
    label: np.ndarray
    ids: list
    sources: list
    folds: np.ndarray
    teacher_logits: list
    flags: np.ndarray
    metadata: dict

    @property
    def n(self) -> int:
        return len(self.label)


def _stored_rows(table: Optional[pa.Table], path: Path, k: int) -> _Rows:
    """The rows as the shards store them (in their original A/B order),
    their labels (K = `k` classes) checked (`shard_check.check_values`)."""
    n = table.num_rows if table is not None else 0
    ids, offsets = np.zeros(0, np.int32), np.zeros(1, np.int64)
    labels = np.zeros((0, k), np.float32)
    if n:
        ids, offsets = _ids_of(table.column("input_ids"), path)
        lab_col = table.column("labels").combine_chunks()
        # The child holds a (zero) slot for null rows too.
        start = lab_col.offset * k
        values = lab_col.values.to_numpy(zero_copy_only=False)[start : start + k * n]
        labels = values.reshape(-1, k).astype(np.float32)
        unlabelled = lab_col.is_null().to_numpy(zero_copy_only=False)
        check_values(table, labels, unlabelled, path)
        labels[unlabelled] = np.nan
    label = np.where(np.isnan(labels).any(axis=1), -1, np.argmax(np.nan_to_num(labels), axis=1))
    label = label.astype(np.int8) if n else np.zeros(0, np.int8)

    def col(name: str, dtype) -> np.ndarray:
        return table.column(name).to_numpy().astype(dtype) if n else np.zeros(0, dtype)

    return _Rows(
        encoded={
            "input_ids": ids,
            "offsets": offsets,
            "turns_total": col("turns", np.int32),
            "turns_kept": col("turns_kept", np.int32),
            "truncated": col("truncated", bool),
            "full_length": col("full_length", np.int64),
            "repairs": col("repairs", np.uint8),
            "is_swapped": np.zeros(n, dtype=bool),
            "source_row": np.arange(n, dtype=np.int64),
        },
        labels=labels,
        label=label,
        ids=table.column("id").to_pylist() if n else [],
        sources=table.column("source").to_pylist() if n else [],
        folds=table.column("fold").to_numpy() if n else np.zeros(0, np.int8),
        teacher_logits=table.column("teacher_logits").to_pylist() if n else [],
        flags=col("flags", np.uint8),
        metadata={
            name: table.column(name).to_pylist()
            for name in METADATA_COLUMNS
            if n and name in table.column_names
        },
    )


def _second_sequences(table: pa.Table, path: Path, suffix: str) -> dict:
    """The columns of each row's second sequence (`suffix` `_swapped`: its
    encoding with A and B exchanged; `_b`: its B side)."""
    ids, offsets = _ids_of(table.column("input_ids" + suffix), path)
    return {
        "input_ids": ids,
        "offsets": offsets,
        "turns_kept": table.column("turns_kept" + suffix).to_numpy().astype(np.int32),
        "truncated": table.column("truncated" + suffix).to_numpy().astype(bool),
        "full_length": table.column("full_length" + suffix).to_numpy().astype(np.int64),
    }


def _interleaved_encoding(fields: dict, second: dict) -> dict:
    """The `Encoded` fields of rows 2i (`fields`, a row's first sequence)
    and 2i + 1 (`second`: its A/B swap, or its B side)."""
    n = len(fields["turns_total"])
    e_ids, e_off = interleave_pairs(
        fields["input_ids"], fields["offsets"], second["input_ids"], second["offsets"]
    )
    is_swapped, source_row = pair_rows(2 * n)
    return {
        "input_ids": e_ids,
        "offsets": e_off,
        "turns_total": np.repeat(fields["turns_total"], 2),
        "turns_kept": interleave_rows(fields["turns_kept"], second["turns_kept"]),
        "truncated": interleave_rows(fields["truncated"], second["truncated"]),
        "full_length": interleave_rows(fields["full_length"], second["full_length"]),
        "repairs": np.repeat(fields["repairs"], 2),
        "is_swapped": is_swapped,
        "source_row": source_row,
    }


def _interleave_sides(rows: _Rows, side_b: dict) -> _Rows:
    """A separate-layout row as its two sides, rows 2i (prompt + A) and
    2i + 1 (prompt + B, `is_swapped` True), as the encoder's
    `layout="separate"` lays them out. Both rows keep the pair's labels,
    class, flags and teacher logits as stored, A and B not exchanged: they
    describe the pair, which a reward model scores as one (docs/dataset.md,
    "Layouts")."""
    return _Rows(
        encoded=_interleaved_encoding(rows.encoded, side_b),
        labels=np.repeat(rows.labels, 2, axis=0),
        label=np.repeat(rows.label, 2),
        ids=[i for i in rows.ids for _ in (0, 1)],
        sources=[s for s in rows.sources for _ in (0, 1)],
        folds=np.repeat(rows.folds, 2),
        teacher_logits=[t for t in rows.teacher_logits for _ in (0, 1)],
        flags=np.repeat(rows.flags, 2),
        metadata={k: [v for v in values for _ in (0, 1)] for k, values in rows.metadata.items()},
    )


def _interleave_swapped(rows: _Rows, swapped: dict, space: LabelSpace) -> _Rows:
    """Each row followed by its A/B swap (rows 2i, 2i+1, as `swap="both"`
    lays them out): the ids and per-order fields from `swapped`, and the
    labels, class, flags and teacher logits with A and B exchanged."""
    encoded = _interleaved_encoding(rows.encoded, swapped)
    label = rows.label
    # class ids, unlabelled rows' included (which swap_labels refuses)
    swapped_label = np.where(label == 0, 1, np.where(label == 1, 0, label))
    # A and B exchange in the swapped row: so do their "empty" flags.
    flags = rows.flags
    swapped_flags = (flags & ~np.uint8(FLAG_EMPTY_A | FLAG_EMPTY_B)) | (
        ((flags & FLAG_EMPTY_A) != 0) * np.uint8(FLAG_EMPTY_B)
        | ((flags & FLAG_EMPTY_B) != 0) * np.uint8(FLAG_EMPTY_A)
    ).astype(np.uint8)
    return _Rows(
        encoded=encoded,
        labels=interleave_rows(rows.labels, space.swap_labels(rows.labels)),
        label=interleave_rows(label, swapped_label).astype(np.int8),
        ids=[i for i in rows.ids for _ in (0, 1)],
        sources=[s for s in rows.sources for _ in (0, 1)],
        folds=np.repeat(rows.folds, 2),
        # A swapped row's teacher logits exchange A and B too.
        teacher_logits=[
            x
            for t in rows.teacher_logits
            for x in (t, None if t is None else space.swap_labels(t).tolist())
        ],
        flags=interleave_rows(flags, swapped_flags),
        metadata={k: [v for v in values for _ in (0, 1)] for k, values in rows.metadata.items()},
    )


def _ids_of(column: pa.ChunkedArray, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """A binary column of little-endian int32 rows as flat ids + offsets
    (the ids are a view of the Arrow buffer when there is one chunk; the
    chunks of several shards are copied into one array, which may pass the
    2 GiB that one binary array's offsets reach)."""
    if column.num_chunks == 1:
        return _chunk_ids(column.chunk(0), where)
    parts = [_chunk_ids(chunk, where) for chunk in column.chunks]
    ids = np.concatenate([p[0] for p in parts] or [np.zeros(0, np.int32)])
    lengths = np.concatenate([np.diff(p[1]) for p in parts] or [np.zeros(0, np.int64)])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets


def _chunk_ids(arr: pa.Array, where: Path) -> tuple[np.ndarray, np.ndarray]:
    if len(arr) == 0:  # a shard whose rows another fold holds
        return np.zeros(0, np.int32), np.zeros(1, np.int64)
    if arr.type == pa.large_binary():
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    else:
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
    data = arr.buffers()[2]
    start, end = int(offsets[0]), int(offsets[-1])
    if ((offsets - start) % 4).any():
        raise InputError(f"{where}: input_ids: a row is not a whole number of int32 values")
    ids = (
        np.frombuffer(data, dtype="<i4", count=(end - start) // 4, offset=start)
        if data
        else (np.zeros(0, np.int32))
    )
    return ids, (offsets - start) // 4
