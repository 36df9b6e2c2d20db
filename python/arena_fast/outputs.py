"""What arena_fast's outputs hold on disk, and how a complete one of each
kind is recognised: the one owner of these names, which the modules that
write the outputs (`dataset`, `runs`, `merge`, `report`, `cli.demo`) and
`files`, which decides what may be replaced, import. Nothing here imports
another module of the package.

Each kind is recognised by its own file, written last (a dataset's
`manifest.json`, a run's `config.json` or `bundle.json`, a merged run's
bundle listing `merged.json`, a report's `index.html` carrying the
generator tag, a demo's `demo.json`); outputs of earlier versions are
recognised the same way, so no extra marker file is needed."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Callable, Optional

__all__ = ["KINDS"]

# A dataset (`dataset.build_dataset`).
MANIFEST = "manifest.json"
DROPPED = "dropped.parquet"
TOKENIZER = "tokenizer.json"
BUILD_LOG = "build.json"

# A training run (`runs`): the files its bundle.json always lists, those it
# lists when the run has them (a run stopped early has no predictions), and
# its checkpoint directory.
CHECKPOINT = "checkpoint"
BUNDLE = "bundle.json"
PREDICTIONS = "valid_predictions.parquet"  # the held-out fold, after the last epoch
# Its settings, the trained decoder weights (the LoRA adapter, or every
# weight), the head's, the tokenizer its data was encoded with (TOKENIZER,
# as a dataset's), and a JSON line per logged step and evaluation.
RUN_CONFIG = "config.json"
DECODER = "decoder.safetensors"
HEAD = "head.safetensors"
METRICS = "metrics.jsonl"
RUN_FILES = (RUN_CONFIG, DECODER, HEAD, TOKENIZER)
RUN_EXTRAS = (METRICS, PREDICTIONS)
# What a run logs to trackers (`report_to`, `tracking`): TensorBoard's event
# files, W&B's offline runs. Not in bundle.json: they describe the run, not
# what it predicts with, and differ from one run to the next.
LOGS = "logs"
# A merged run (`merge`): a run whose bundle also lists this file.
MERGED = "merged.json"

# A report (`report`): RUN/report/index.html by default, marked by its tag.
REPORT_DIR = "report"
GENERATOR_META = '<meta name="generator" content="arena-fast report">'

# What `demo --out DIR` writes into DIR (`cli.demo`).
DEMO_MARKER = "demo.json"
DEMO_FILES = (
    DEMO_MARKER,
    "train.csv",
    "holdout.csv",
    "data",
    "holdout-data",
    "run",
    "submission.csv",
)


def _read_json(path: Path) -> object:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read(1 << 24))
    except (OSError, ValueError, RecursionError):
        return None


def _dataset_names(d: Path) -> Optional[set]:
    manifest = _read_json(d / MANIFEST)
    if not (isinstance(manifest, dict) and "format_version" in manifest):
        return None
    shards = manifest.get("shards")
    tokenizer = manifest.get("tokenizer")
    names = {MANIFEST, BUILD_LOG, manifest.get("dropped_file")}
    names.add(tokenizer.get("file") if isinstance(tokenizer, dict) else None)
    for shard in shards if isinstance(shards, list) else ():
        names.add(shard.get("file") if isinstance(shard, dict) else None)
    return {n for n in names if isinstance(n, str)}


def _run_names(d: Path) -> Optional[set]:
    config = _read_json(d / RUN_CONFIG)
    bundle = _read_json(d / BUNDLE)
    is_config = isinstance(config, dict) and {"data", "model", "out"} <= set(config)
    is_bundle = isinstance(bundle, dict) and isinstance(bundle.get("files"), dict)
    if not (is_config or is_bundle):
        return None
    names = {BUNDLE, MERGED, LOGS, *RUN_FILES, *RUN_EXTRAS}
    names.update(bundle["files"] if is_bundle else ())
    names.update(p.name for p in d.glob(f"{glob.escape(CHECKPOINT)}*"))  # .tmp / .old too
    if _report_names(d / REPORT_DIR) is not None:
        names.add(REPORT_DIR)
    return names


def _merge_names(d: Path) -> Optional[set]:
    bundle = _read_json(d / BUNDLE)
    if not (isinstance(bundle, dict) and MERGED in (bundle.get("files") or ())):
        return None
    return _run_names(d)


def _report_names(d: Path) -> Optional[set]:
    try:
        with open(d / "index.html", encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if GENERATOR_META not in head:
        return None
    return {"index.html", *(p.name for p in d.glob("*.png"))}


def _demo_names(d: Path) -> Optional[set]:
    marker = _read_json(d / DEMO_MARKER)
    if not (isinstance(marker, dict) and marker.get("written_by") == "arena-fast demo"):
        return None
    return set(DEMO_FILES)


# What `export RUN --out DIR` writes (`export`): a Hugging Face folder
# marked by this file, which lists the folder's other files.
EXPORT_MARKER = "arena_fast_export.json"


def _export_names(d: Path) -> Optional[set]:
    marker = _read_json(d / EXPORT_MARKER)
    if not (isinstance(marker, dict) and marker.get("written_by") == "arena-fast export"):
        return None
    files = marker.get("files")
    return (
        {EXPORT_MARKER, *(f for f in files if isinstance(f, str))}
        if isinstance(files, list)
        else None
    )


# kind -> (what it is called, the names of a complete output of that kind
# in a directory: None when the directory is not one).
KINDS: dict[str, tuple[str, Callable[[Path], Optional[set]]]] = {
    "dataset": ("an arena-fast dataset (no manifest.json of build-dataset)", _dataset_names),
    "run": ("an arena-fast training run (no config.json or bundle.json of train)", _run_names),
    "merge": ("an arena-fast merged run (no bundle.json listing merged.json)", _merge_names),
    "report": ("an arena-fast report (no index.html of report)", _report_names),
    "demo": ("a directory of arena-fast demo (no demo.json)", _demo_names),
    "export": ("an arena-fast export (no arena_fast_export.json of export)", _export_names),
}
