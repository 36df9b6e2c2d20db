"""A large dataset made cheaply, for the dataset browser's tests and
benchmark (benches/bench_serve_data.py): a small real build's shard schema,
manifest and tokenizer, and N rows written straight with pyarrow, each with
a few real ids (a row of the small build, cut to its first and last ids),
in shards of `shard_rows`. The manifest is one `read_manifest` accepts
(counts that add up, each shard's size and sha256)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from arena_fast.files import file_sha256
from keyword_rows import build_rows, keyword_rows

SOURCES = ("kaggle", "arena140k", "wsdm")
MODELS = ("gpt-4o", "claude-3", "llama-3-70b", "gemma-2-9b", "<b>bold</b>")
LANGUAGES = ("en", "de", None, "fr")


def write_big_dataset(root: Path, rows: int, shard_rows: int = 16384) -> Path:
    """A dataset of `rows` rows at ROOT/big (built once per ROOT)."""
    out = root / "big"
    if (out / "manifest.json").is_file():
        return out
    small = build_rows(keyword_rows(6, 0), root, "big-seed", max_length=96, folds=5, swap=True)
    template = pq.read_table(small / "data-00000.parquet")
    manifest = json.loads((small / "manifest.json").read_text())
    out.mkdir()
    for name in ("tokenizer.json", "dropped.parquet"):
        shutil.copyfile(small / name, out / name)
    ids = [
        np.frombuffer(v, "<i4")[[0, 1, 2, 3, -2, -1]].tobytes()
        for v in template.column("input_ids").to_pylist()
    ]
    shards = []
    for start in range(0, rows, shard_rows):
        table = _shard(template.schema, start, min(rows, start + shard_rows), ids)
        name = f"data-{len(shards):05d}.parquet"
        pq.write_table(table, out / name)
        shards.append(
            {
                "file": name,
                "rows": table.num_rows,
                "bytes": (out / name).stat().st_size,
                "sha256": file_sha256(out / name),
            }
        )
    _count(manifest, rows, shards)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _shard(schema: pa.Schema, start: int, stop: int, ids: list) -> pa.Table:
    i = np.arange(start, stop)
    n = len(i)
    label = i % 3
    labels = np.zeros((n, 3), dtype=np.float32)
    labels[np.arange(n), label] = 1.0
    data = np.frombuffer(b"".join(ids[j % len(ids)] for j in range(n)), dtype=np.uint8)
    offsets = np.arange(n + 1, dtype=np.int32) * len(ids[0])
    binary = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    columns = {
        "id": pa.array([f"r{j}" for j in i], pa.large_string()),
        "source": pa.array([SOURCES[j % 3] for j in i], pa.large_string()),
        "fold": pa.array((i % 5).astype(np.int8)),
        "input": pa.array(np.zeros(n, np.int16)),
        "row": pa.array(i.astype(np.int64)),
        "input_rows": pa.array(np.ones(n, np.int32)),
        "model_a": pa.array([MODELS[j % 5] for j in i], pa.large_string()),
        "model_b": pa.array([MODELS[(j + 1) % 5] for j in i], pa.large_string()),
        "labels": pa.FixedSizeListArray.from_arrays(pa.array(labels.ravel()), 3),
        "teacher_logits": pa.nulls(n, schema.field("teacher_logits").type),
        "flags": pa.array((i % 7 == 0).astype(np.uint8)),
        "turns": pa.array((1 + i % 4).astype(np.int32)),
        "repairs": pa.array(np.zeros(n, np.uint8)),
        "chars": pa.array(np.full(n, 100, np.int64)),
    }
    for suffix in ("", "_swapped"):
        columns[f"input_ids{suffix}"] = binary
        columns[f"length{suffix}"] = pa.array(np.full(n, 6, np.int32))
        columns[f"turns_kept{suffix}"] = pa.array(np.ones(n, np.int32))
        columns[f"truncated{suffix}"] = pa.array(i % 4 > 0)
        columns[f"full_length{suffix}"] = pa.array((6 + i % 50).astype(np.int32))
    fields = [schema.field(name) for name in schema.names]
    table = pa.table({f.name: columns[f.name] for f in fields}).cast(pa.schema(fields))
    language = pa.array([LANGUAGES[j % 4] for j in i], pa.string())
    return table.append_column(pa.field("language", pa.string()), language)


def _count(manifest: dict, rows: int, shards: list) -> None:
    i = np.arange(rows)
    counts = manifest["counts"]
    counts["rows"] = counts["input_rows_kept"] = rows
    counts["rows_in"] = rows + counts["input_rows_dropped"]
    counts["by_source"] = {s: int((i % 3 == k).sum()) for k, s in enumerate(SOURCES)}
    counts["folds"] = {str(f): int((i % 5 == f).sum()) for f in range(5)}
    counts["labels"] = {key: int((i % 3 == k).sum()) for k, key in enumerate(("a", "b", "tie"))}
    manifest["shards"] = shards
