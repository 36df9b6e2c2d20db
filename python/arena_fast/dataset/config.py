"""What a dataset is built from and what its rows can carry: `BuildConfig`
(every setting that determines a dataset's bytes), the source priority of
de-duplication, the drop reasons, the `flags` bits and the text repairs the
manifest counts, and the on-disk format version (docs/dataset.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from ..checks import I64_MAX, check_bool, check_int, check_threads
from ..encoded import REPAIR_CLIPPED, REPAIR_IMAGE, REPAIR_NULL, REPAIR_RAGGED, REPAIR_SURROGATE
from ..encoder import DEFAULT_MAX_LENGTH
from ..errors import ConfigError
from ..folds import MAX_FOLDS
from ..labels import label_space
from ..sources import DROP_REASONS as READER_DROP_REASONS
from ..sources import ReadOptions

# The version of the directory layout (manifest, shards) that build writes
# and load reads.
FORMAT_VERSION = 1

# How a row becomes sequences (docs/dataset.md, "Layouts"): `cross`, one
# sequence holding the prompt and both answers (a cross-encoder's input);
# `separate`, two sequences, prompt + A and prompt + B (a reward model's),
# stored as `input_ids` and `input_ids_b`. The chat template implies it.
LAYOUTS = ("cross", "separate")
# The template that renders each side as the tokenizer's own chat template.
CHAT_TEMPLATE = "chat"
# The suffix of the second sequence of a row's pair in the shards: its A/B
# swap (cross layout with swap), or its B side (separate layout).
SWAPPED = "_swapped"
SIDE_B = "_b"


def encoder_layout(encoder_config: dict) -> str:
    """The layout an encoder config (`Encoder.config()`, a manifest's
    `encoder`) encodes in: `cross` when it predates layouts."""
    return encoder_config.get("layout") or "cross"


def pair_suffix(manifest: dict) -> Optional[str]:
    """The suffix of the shard columns of each row's second sequence in the
    dataset whose manifest this is: `SIDE_B` (separate layout), `SWAPPED`
    (cross layout built with swap), None (one sequence per row)."""
    if encoder_layout(manifest.get("encoder") or {}) == "separate":
        return SIDE_B
    return SWAPPED if manifest.get("swap") else None


# De-duplication keeps the row of the source listed first.
SOURCE_PRIORITY = (
    *("kaggle", "synth", "arena140k", "arena33k", "wsdm", "helpsteer", "ultrafeedback"),
    *("pku_saferlhf", "hh_rlhf", "pairs", "canonical", "chat1m"),
)

# Why a row is not in the dataset: the readers' reasons, then cleaning's and
# de-duplication's (docs/dataset.md, "Drop reasons").
DROP_REASONS = {
    **READER_DROP_REASONS,
    "bad_text": "a text column is not a JSON list of strings (the detail says where)",
    "bad_labels": "labels negative, NaN, all zero, or not K numbers (K of the file's label space)",
    "label_space": "a label with no A/B share (a tie, both_bad) in a build mapped to label "
    "space ab (--label-space ab): A and B are renormalised, and such a row has nothing left",
    "both_empty": "both answers empty (policy --both-empty drop)",
    "one_empty": "one answer empty (policy --one-empty drop)",
    "identical": "A and B identical (policy --identical drop)",
    "ragged": "turn lists of different lengths (policy --ragged drop)",
    "repaired": "text repaired: null turn, lone surrogate, clipped turn or stripped image "
    "(policy --repaired drop)",
    "duplicate_id": "an earlier row of the same input, both labelled or both unlabelled, has "
    "this id and other texts (a test row reusing a train row's id is kept)",
    "duplicate": "the same prompt and answers (in either order) are in a row kept earlier, "
    "or in an earlier row of the same input and id",
    "duplicate_prompt": "the prompt is in a source of higher priority (--dedup prompt)",
    "tokenize_error": "the tokenizer cannot encode a text: its regex went over its budget "
    "(the detail names the column)",
}
# Reasons that follow a policy the user chose, a duplicate, or a source's
# pairing of conversations: a build may lose many rows to these. Every other
# reason means a row could not be read, and an input that loses more than
# half its rows that way fails the build.
POLICY_REASONS = frozenset(
    (
        *("both_empty", "one_empty", "identical", "ragged", "repaired"),
        *("duplicate", "duplicate_id", "duplicate_prompt"),
        *("chat1m_unpaired", "chat1m_identical"),
        "label_space",
    )
)
# Drops that do not count toward an input's drop share (`max_drop_share`):
# de-duplication keeps the same conversation or prompt from another row, and
# chat1m's pairing leaves most conversations of a file without a partner by
# design. Every other reason counts: the readers' (a row not read), the
# cleaning policies', `label_space` and `duplicate_id` (docs/dataset.md,
# "When a build fails").
UNCOUNTED_REASONS = frozenset(
    ("duplicate", "duplicate_prompt", "chat1m_unpaired", "chat1m_identical")
)
# Drops of de-duplication: an input that keeps no row but lost some to these
# adds no row of its own, and that is no failure (its rows are in the
# dataset already).
DUPLICATE_REASONS = frozenset(("duplicate", "duplicate_prompt"))

# The text repairs counted in the manifest (`counts.repairs`), by bit of
# `repairs`; a row can have several (docs/encoding.md).
REPAIR_KINDS = {
    "null": REPAIR_NULL,
    "surrogate": REPAIR_SURROGATE,
    "ragged": REPAIR_RAGGED,
    "clipped": REPAIR_CLIPPED,
    "image": REPAIR_IMAGE,
}

# Bits of the `flags` column.
FLAG_EMPTY_A = 1
FLAG_EMPTY_B = 2
FLAG_IDENTICAL = 4
FLAG_RELABELLED = 8
FLAG_LABELS_NORMALISED = 16
FLAG_EMPTY_PROMPT = 32

_POLICIES = {
    "both_empty": ("drop", "keep"),
    "one_empty": ("keep", "relabel", "drop"),
    "identical": ("drop", "tie", "keep"),
    "ragged": ("keep", "drop"),
    "repaired": ("keep", "drop"),
    "dedup": ("prompt", "pair", "none"),
    "images": ("strip", "drop"),
    "preference": ("better", "safer"),
}


@dataclass
class BuildConfig:
    """Everything that determines a dataset's bytes (stored in the manifest).

    `inputs` are `PATH` or `PATH:FORMAT`; none builds the demo dataset from
    `demo_rows` synthetic rows (seed `seed`). `tokenizer` None means the
    bundled demo tokenizer. `encoder` holds further `af.Encoder` options.
    Cleaning policies apply to labelled rows and chat1m pairs; unlabelled rows
    of other sources (data to predict) are only dropped when unreadable, so a
    submission keeps every id.

    `label_space` (`ab`, `abt`, `abtx`: `af.labels`) is the dataset's label
    space; None takes the inputs' (canonical `labels` of 2, 3 or 4 values; 3
    for the other formats), which must then agree. A space other than the
    data's maps it explicitly (`af.labels.MAPPINGS`, recorded in the
    manifest): `abt`/`abtx` -> `ab` renormalises A and B (a row with no A/B
    share is dropped as `label_space`), `abtx` -> `abt` merges both_bad into
    tie; a wider space than the data's is refused.

    `images`, `preference` and `mapping` are the readers' choices
    (`sources.ReadOptions`): image parts of typed content stripped (a
    counted repair) or their records dropped; PKU-SafeRLHF's better or safer
    response; the generic `pairs` reader's field -> column mapping.

    `layout` (`LAYOUTS`): `cross` stores each row as one sequence
    (`input_ids`; with `swap`, its A/B swap too, `input_ids_swapped`);
    `separate` stores its two sides, prompt + A (`input_ids`) and prompt + B
    (`input_ids_b`), always both, so `swap` is refused with it. None (the
    default) is `cross`, or `separate` for `template="chat"` (the
    tokenizer's own chat template), which implies it; `validate` resolves
    it, and refuses `layout="cross"` with the chat template.

    `max_drop_share` (in [0, 1]) and `allow_empty` decide whether a build
    succeeds, not its bytes, so they are kept out of the manifest (as
    `threads` is) and recorded in build.json: a build fails (`InputError`,
    nothing published) when it keeps no row, when an input keeps none of its
    rows, or when an input loses more than `max_drop_share` of its rows to
    reasons outside `UNCOUNTED_REASONS`; `allow_empty` accepts the empty
    cases, a higher share the lossy ones (docs/dataset.md, "When a build
    fails")."""

    inputs: list = field(default_factory=list)
    tokenizer: Optional[str] = None
    template: str = "rounds"
    layout: Optional[str] = None
    strategy: str = "fair"
    max_length: int = DEFAULT_MAX_LENGTH
    encoder: dict = field(default_factory=dict)
    swap: bool = False
    folds: int = 5
    seed: int = 0
    both_empty: str = "drop"
    one_empty: str = "keep"
    identical: str = "drop"
    ragged: str = "keep"
    repaired: str = "keep"
    dedup: str = "prompt"
    priority: Sequence[str] = SOURCE_PRIORITY
    demo_rows: int = 2000
    chunk_rows: int = 8192
    shard_rows: int = 16384
    threads: Optional[int] = None
    compression: str = "zstd"
    spill_bytes: int = 384 << 20
    pack_tokens: int = 16384
    label_space: Optional[str] = None
    images: str = "strip"
    preference: str = "better"
    mapping: Optional[dict] = None
    max_drop_share: float = 0.5
    allow_empty: bool = False

    def read_options(self) -> ReadOptions:
        """What the readers are told of this config."""
        return ReadOptions(images=self.images, preference=self.preference, mapping=self.mapping)

    def validate(self) -> None:
        self._check_layout()
        for name, allowed in _POLICIES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        # Stored back as Python ints: the manifest is JSON.
        for name in ("chunk_rows", "shard_rows", "max_length", "pack_tokens"):
            setattr(self, name, check_int(name, getattr(self, name), 1, I64_MAX))
        self.folds = check_int("folds", self.folds, 1, MAX_FOLDS)
        self.demo_rows = check_int("demo_rows", self.demo_rows, 0, I64_MAX)
        check_threads(self.threads, "threads")
        self.allow_empty = check_bool("allow_empty", self.allow_empty)
        share = self.max_drop_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ConfigError(f"max_drop_share must be a number in [0, 1], got {share!r:.40}")
        self.max_drop_share = float(share)
        if self.label_space is not None:
            self.label_space = label_space(self.label_space).name
        if self.compression not in ("zstd", "lz4", "snappy", "none"):
            raise ConfigError(
                f"compression must be zstd, lz4, snappy or none: {self.compression!r}"
            )

    def _check_layout(self) -> None:
        """`layout` one of `LAYOUTS`, `separate` for the chat template, and
        no `swap` with it (its pairs are the two sides, always stored)."""
        if isinstance(self.encoder, dict) and "layout" in self.encoder:
            raise ConfigError("encoder: give the layout as BuildConfig.layout (--layout)")
        chat = self.template == CHAT_TEMPLATE
        if self.layout is None:
            self.layout = "separate" if chat else "cross"
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {LAYOUTS}, got {self.layout!r:.40}")
        if chat and self.layout != "separate":
            raise ConfigError(
                "template 'chat' renders each answer in a sequence of its own: it implies "
                "layout 'separate' (--layout cross cannot be used with --template chat)"
            )
        if self.layout == "separate" and self.swap:
            raise ConfigError(
                "--swap (swap=True) with layout 'separate': a separate-layout dataset always "
                "stores both sides of each row (prompt + A in input_ids, prompt + B in "
                "input_ids_b), so there is no A/B swap to add; drop --swap"
            )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["priority"] = list(self.priority)
        return d
