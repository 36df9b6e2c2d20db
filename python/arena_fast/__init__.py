"""arena_fast: fast, exact data pipelines for pairwise preference classifiers
(the Chatbot Arena task: A wins / B wins / tie), with a Rust core."""

import importlib

from ._core import __version__
from .chat_template import ChatTemplate
from .collate import collate_packed, collate_padded
from .dataset import ArenaDataset, BuildConfig, build_dataset, load_dataset
from .encoded import (
    REPAIR_CLIPPED,
    REPAIR_IMAGE,
    REPAIR_NULL,
    REPAIR_RAGGED,
    REPAIR_SURROGATE,
    Encoded,
)
from .encoder import STRATEGIES, TEMPLATES, Encoder, Template
from .errors import ArenaFastError, ConfigError, InputError, InternalError, TokenizerError
from .folds import assign_folds
from .labels import swap_labels, tta_average, unswap_probs
from .notices import install as _install_notice_filters
from .plan import Plan, plan_batches, plan_packs
from .tokenizer import Tokenizer

__all__ = [
    "__version__",
    "ArenaDataset",
    "ArenaFastError",
    "BuildConfig",
    "ChatTemplate",
    "ConfigError",
    "Encoded",
    "Encoder",
    "InputError",
    "InternalError",
    "Plan",
    "REPAIR_CLIPPED",
    "REPAIR_IMAGE",
    "REPAIR_NULL",
    "REPAIR_RAGGED",
    "REPAIR_SURROGATE",
    "STRATEGIES",
    "TEMPLATES",
    "Template",
    "Tokenizer",
    "TokenizerError",
    "assign_folds",
    "build_dataset",
    "collate_packed",
    "collate_padded",
    "load_dataset",
    "plan_batches",
    "plan_packs",
    "swap_labels",
    "tta_average",
    "unswap_probs",
]

_install_notice_filters()  # before peft / transformers load bitsandbytes

# The torch layer (the `[train]` extra) and what builds on it load on first
# use, so that `import arena_fast` stays light: `af.model`, `af.train`, ...
# (the run format, settings and diagnostics, torch-free, load on use too).
_LAZY = (
    "model",
    "losses",
    "reward_losses",
    "torch",
    "train",
    "train_config",
    "runs",
    "base_model",
    "weights",
    "infer",
    "predict",
    "merge",
    "diagnostics",
    "report",
)


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'arena_fast' has no attribute {name!r}")
