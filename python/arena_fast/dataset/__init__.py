"""Datasets: `build_dataset` (raw arena data -> a directory of parquet
shards) and `load_dataset` (the shards back as an `af.Encoded` with labels).
The rules are in docs/dataset.md."""

# Owned by files.py and outputs.py; importable from here as before.
from ..files import file_sha256 as file_sha256
from ..outputs import TOKENIZER as TOKENIZER
from .build import build_dataset
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
from .load import ArenaDataset, dataset_space, load_dataset, read_manifest, read_row

__all__ = [
    "BuildConfig",
    "ArenaDataset",
    "build_dataset",
    "load_dataset",
    "dataset_space",
    "read_manifest",
    "read_row",
    "DROP_REASONS",
    "POLICY_REASONS",
    "REPAIR_KINDS",
    "SOURCE_PRIORITY",
    "FORMAT_VERSION",
    "FLAG_EMPTY_A",
    "FLAG_EMPTY_B",
    "FLAG_IDENTICAL",
    "FLAG_RELABELLED",
    "FLAG_LABELS_NORMALISED",
    "FLAG_EMPTY_PROMPT",
]
