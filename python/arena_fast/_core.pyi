"""Type stubs of the Rust extension `arena_fast._core` (see rust/arena-fast-py)."""

from collections.abc import Sequence
from typing import Any, Optional, final

import numpy as np

__all__ = [
    "Tokenizer",
    "ChatTemplate",
    "Encoder",
    "Rows",
    "split_pairs",
    "interleave_pairs",
    "template_preset",
    "plan_packs",
    "plan_batches",
    "assign_folds",
    "clip_csv_cells",
    "collate_packed",
    "collate_padded",
    "clear_word_cache",
    "release_memory",
    "_panic_for_tests",
    "__version__",
    "MAX_THREADS",
]

__version__: str
MAX_THREADS: int

@final
class Tokenizer:
    @staticmethod
    def from_file(path: str) -> Tokenizer: ...
    @staticmethod
    def from_str(json: str, fast_path: bool = True) -> Tokenizer: ...
    def encode(self, text: str, split_special_tokens: bool = True) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def token_to_id(self, token: str) -> Optional[int]: ...
    def id_to_token(self, id: int) -> Optional[str]: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def word_split(self) -> bool: ...
    @property
    def fast_path(self) -> str: ...
    @property
    def fast_path_reason(self) -> str: ...
    def to_str(self) -> str: ...

@final
class ChatTemplate:
    @staticmethod
    def from_file(path: str) -> ChatTemplate: ...
    @staticmethod
    def from_config_json(json: str, origin: str) -> ChatTemplate: ...
    def render(self, messages: Sequence[tuple[str, str]], add_generation_prompt: bool) -> str: ...
    def encode(
        self,
        tokenizer: Tokenizer,
        messages: Sequence[tuple[str, str]],
        add_generation_prompt: bool,
    ) -> list[int]: ...
    @property
    def source(self) -> str: ...
    @property
    def special_tokens(self) -> list[tuple[str, str]]: ...

@final
class Encoder:
    def __new__(
        cls,
        tokenizer: Tokenizer,
        template: Any,
        *,
        strategy: str,
        max_length: int,
        joint: bool,
        bos: Optional[int],
        eos: Optional[int],
        split_special_tokens: bool,
        null_text: str,
        num_threads: Optional[int],
        prompt_weight: float,
        min_segment_tokens: int,
        keep: str,
        keep_first_turns: int,
        tail_ratios: Sequence[float],
        min_tail_tokens: int,
        layout: str = "cross",
        strip: Sequence[bool] = ...,  # (False, False): strip neither field
    ) -> Encoder: ...
    def encode(
        self, prompts: Any, responses_a: Any, responses_b: Any, swap: str
    ) -> dict[str, np.ndarray]: ...
    def encode_json(
        self, prompts: Any, responses_a: Any, responses_b: Any, swap: str
    ) -> dict[str, np.ndarray]: ...
    def explain(
        self, prompt: Any, response_a: Any, response_b: Any, swapped: bool = False
    ) -> dict[str, Any]: ...
    def encode_rows(
        self, rows: Rows, idx: Optional[np.ndarray], swap: str, skip_failed: bool = False
    ) -> dict[str, Any]: ...

@final
class Rows:
    @staticmethod
    def from_arrow(
        # Arrow arrays (anything with `__arrow_c_array__`): large_string or
        # large_list<large_string>.
        prompt: Any,
        response_a: Any,
        response_b: Any,
        null_text: str = "",
        num_threads: Optional[int] = None,
    ) -> Rows: ...
    def __len__(self) -> int: ...
    def features(self, num_threads: Optional[int] = None) -> dict[str, np.ndarray]: ...
    def errors(self) -> list[tuple[int, str, str]]: ...
    def to_lists(self, idx: Optional[np.ndarray] = None) -> tuple[list, list, list]: ...

def split_pairs(
    input_ids: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
def interleave_pairs(
    input_ids: np.ndarray,
    offsets: np.ndarray,
    swapped_ids: np.ndarray,
    swapped_offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]: ...
def template_preset(name: str) -> dict[str, Any]: ...
def clear_word_cache() -> None: ...
def release_memory() -> None: ...
def _panic_for_tests(message: str, detach: bool = False) -> None: ...
def plan_packs(
    lengths: np.ndarray,
    max_tokens: int,
    strategy: str,
    pair_swaps: bool,
    seed: int,
    epoch: int,
    world_size: int,
    rank: int,
    drop_last: bool,
    shuffle: bool,
) -> dict[str, Any]: ...
def plan_batches(
    lengths: np.ndarray,
    max_tokens: int,
    max_rows: Optional[int],
    order: str,
    pair_swaps: bool,
    seed: int,
    epoch: int,
    world_size: int,
    rank: int,
    drop_last: bool,
    megabatch: int,
) -> dict[str, Any]: ...
def assign_folds(keys: np.ndarray, classes: np.ndarray, k: int, seed: int) -> np.ndarray: ...
def clip_csv_cells(
    path: str,
    copy: str,
    text_columns: list[str],
    read_columns: list[str],
    text_bytes: int,
    cell_bytes: int,
) -> Optional[dict[str, Any]]: ...
def collate_packed(
    input_ids: np.ndarray,
    offsets: np.ndarray,
    idx: np.ndarray,
    labels: Optional[np.ndarray] = None,
) -> dict[str, Any]: ...
def collate_padded(
    input_ids: np.ndarray,
    offsets: np.ndarray,
    idx: np.ndarray,
    pad_id: int,
    side: str = "right",
    pad_to_multiple_of: Optional[int] = None,
    labels: Optional[np.ndarray] = None,
) -> dict[str, Any]: ...
