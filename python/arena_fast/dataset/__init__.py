"""Datasets: `build_dataset` (raw arena data -> a directory of parquet
shards) and `load_dataset` (the shards back as an `af.Encoded` with labels).
The rules are in docs/dataset.md."""

from ..files import file_sha256 as file_sha256
from ..outputs import TOKENIZER as TOKENIZER
from .build import (
    DROP_REASONS,
    FORMAT_VERSION,
    SOURCE_PRIORITY,
    ArenaDataset,
    BuildConfig,
    build_dataset,
    load_dataset,
)

# Importable from here as before the split into modules.
from .build import FLAG_EMPTY_A as FLAG_EMPTY_A
from .build import FLAG_EMPTY_B as FLAG_EMPTY_B
from .build import FLAG_EMPTY_PROMPT as FLAG_EMPTY_PROMPT
from .build import FLAG_IDENTICAL as FLAG_IDENTICAL
from .build import FLAG_LABELS_NORMALISED as FLAG_LABELS_NORMALISED
from .build import FLAG_RELABELLED as FLAG_RELABELLED
from .build import POLICY_REASONS as POLICY_REASONS
from .build import REPAIR_KINDS as REPAIR_KINDS
from .build import Progress as Progress
from .build import read_manifest as read_manifest

__all__ = [
    "BuildConfig",
    "ArenaDataset",
    "build_dataset",
    "load_dataset",
    "DROP_REASONS",
    "SOURCE_PRIORITY",
    "FORMAT_VERSION",
]
