"""arena_fast: fast, exact data pipelines for pairwise preference classifiers
(the Chatbot Arena task: A wins / B wins / tie), with a Rust core."""

from ._core import __version__
from .encoded import REPAIR_NULL, REPAIR_RAGGED, REPAIR_SURROGATE, Encoded
from .encoder import STRATEGIES, TEMPLATES, Encoder, Template
from .errors import ArenaFastError, ConfigError, InputError, InternalError, TokenizerError
from .labels import swap_labels, tta_average, unswap_probs
from .tokenizer import Tokenizer

__all__ = [
    "__version__",
    "ArenaFastError",
    "ConfigError",
    "Encoded",
    "Encoder",
    "InputError",
    "InternalError",
    "REPAIR_NULL",
    "REPAIR_RAGGED",
    "REPAIR_SURROGATE",
    "STRATEGIES",
    "TEMPLATES",
    "Template",
    "Tokenizer",
    "TokenizerError",
    "swap_labels",
    "tta_average",
    "unswap_probs",
]
