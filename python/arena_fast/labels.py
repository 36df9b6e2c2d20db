"""Label spaces and labels under A/B swap (docs/dataset.md, "Label spaces").

A dataset and a run carry one label space:

    ab    2 classes: 0 = A wins, 1 = B wins                (WSDM Cup)
    abt   3 classes: ... 2 = tie                           (Kaggle; the default)
    abtx  4 classes: ... 3 = both_bad                      (arena-human-preference-140k)

Class order is this everywhere (label rows, logits, a bundle's label order, a
submission's columns). Swapping A and B maps 0 <-> 1 and keeps tie and
both_bad. Moving labels or predictions from one space to another is explicit:
`map_probs` / `map_logits` with a `(source, target)` pair of `MAPPINGS`,
never implied by a width. The module-level `swap_labels`, `unswap_probs` and
`tta_average` work in `abt` unless given another space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .checks import as_array, check_int_array
from .errors import ConfigError, InputError

__all__ = [
    "CLASS_COLUMNS",
    "CLASS_KEYS",
    "CLASS_NAMES",
    "DEFAULT_SPACE",
    "LABEL_SPACES",
    "MAPPINGS",
    "LabelSpace",
    "VERDICTS",
    "label_space",
    "map_logits",
    "map_probs",
    "describe_mapping",
    "space_of_width",
    "swap_labels",
    "unswap_probs",
    "tta_average",
]

# Per class, in the one class order: the Kaggle-style column, the short key
# (a manifest's label counts, a diagnostics table), the name people read, the
# verdict (`compare`, a WSDM submission's `winner`).
_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie", "winner_both_bad")
_KEYS = ("a", "b", "tie", "both_bad")
_NAMES = ("A wins", "B wins", "tie", "both bad")
_VERDICTS = ("model_a", "model_b", "tie", "both_bad")


@dataclass(frozen=True)
class LabelSpace:
    """One label space: its name and its K classes (the first K of
    a, b, tie, both_bad)."""

    name: str
    k: int

    @property
    def columns(self) -> tuple[str, ...]:
        return _COLUMNS[: self.k]

    @property
    def keys(self) -> tuple[str, ...]:
        return _KEYS[: self.k]

    @property
    def names(self) -> tuple[str, ...]:
        return _NAMES[: self.k]

    @property
    def verdicts(self) -> tuple[str, ...]:
        return _VERDICTS[: self.k]

    @property
    def permutation(self) -> list[int]:
        """The swap as a column permutation: A <-> B, the rest kept."""
        return [1, 0, *range(2, self.k)]

    @property
    def metric(self) -> str:
        """The score a run of this space is selected by (`af.selection`):
        `accuracy` for `ab` (the WSDM Cup's score), `log_loss` otherwise
        (the Kaggle competition's)."""
        return "accuracy" if self.k == 2 else "log_loss"

    def __str__(self) -> str:
        return self.name

    def check_rows(self, name: str, value: Any) -> np.ndarray:
        """`value` as (n, K) rows of this space; InputError otherwise."""
        arr = as_array(name, value)
        if arr.ndim != 2 or arr.shape[1] != self.k:
            raise InputError(
                f"{name}: expected rows of {self.k} values (n, {self.k}) for label space "
                f"{self.name!r}, got shape {arr.shape}"
            )
        return arr

    def swap_labels(self, y) -> np.ndarray:
        """Labels of the swapped rows: class ids (n,) map 0 <-> 1 (tie and
        both_bad kept); probability or logit rows (n, K) exchange their first
        two columns."""
        arr = as_array("labels", y)
        if arr.ndim == 1:
            if arr.size == 0:
                return np.zeros(0, dtype=np.int64)
            check_int_array("class ids", arr)
            if arr.min() < 0 or arr.max() >= self.k:
                raise InputError(
                    f"class ids of label space {self.name!r} must be 0 to {self.k - 1} "
                    f"({', '.join(self.keys)})"
                )
            out = arr.copy()
            out[arr == 0] = 1
            out[arr == 1] = 0
            return out
        if arr.ndim == 2 and arr.shape[1] == self.k:
            return arr[:, self.permutation]
        raise InputError(
            f"expected class ids (n,) or rows of {self.k} values (n, {self.k}) for label "
            f"space {self.name!r}, got shape {arr.shape}"
        )

    def unswap_probs(self, p_swapped) -> np.ndarray:
        """Predictions made on swapped inputs, in the original order."""
        arr = as_array("p_swapped", p_swapped)
        if arr.ndim != 2 or arr.shape[1] != self.k:
            raise InputError(
                f"expected probability rows (n, {self.k}) for label space {self.name!r}, "
                f"got shape {arr.shape}"
            )
        return arr[:, self.permutation]

    def tta_average(self, p, p_swapped) -> np.ndarray:
        """Swap test-time augmentation: the mean of the original prediction
        and the swapped prediction mapped back."""
        a = _numbers(p, "p")
        b = _numbers(self.unswap_probs(p_swapped), "p_swapped")
        if a.shape != b.shape:
            raise InputError(f"shapes differ: {a.shape} vs {b.shape}")
        with np.errstate(invalid="ignore"):  # inf and -inf average to NaN, as they should
            return a / 2.0 + b / 2.0  # not (a + b) / 2, which overflows near the float64 maximum

    def onehot(self, cls: int) -> tuple[float, ...]:
        """The label row of class `cls`."""
        return tuple(1.0 if i == cls else 0.0 for i in range(self.k))


LABEL_SPACES = {
    s.name: s for s in (LabelSpace("ab", 2), LabelSpace("abt", 3), LabelSpace("abtx", 4))
}
DEFAULT_SPACE = LABEL_SPACES["abt"]
_BY_WIDTH = {s.k: s for s in LABEL_SPACES.values()}


def label_space(value: Union[str, LabelSpace, None]) -> LabelSpace:
    """The `LabelSpace` named `value` (None: `abt`); ConfigError otherwise."""
    if value is None:
        return DEFAULT_SPACE
    if isinstance(value, LabelSpace):
        return value
    if isinstance(value, str) and value in LABEL_SPACES:
        return LABEL_SPACES[value]
    raise ConfigError(f"label space must be one of {', '.join(LABEL_SPACES)}, got {value!r}")


def space_of_width(k: int, where: str = "labels") -> LabelSpace:
    """The space of label rows of width `k` (2: ab, 3: abt, 4: abtx)."""
    if k not in _BY_WIDTH:
        raise InputError(f"{where}: rows of {k} values fit no label space (2: ab, 3: abt, 4: abtx)")
    return _BY_WIDTH[k]


# The explicit mappings between spaces, by (source, target): what each does.
# Narrowing to `ab` renormalises A and B, so a row with no A/B share (a pure
# tie or both_bad) has no `ab` label: `map_probs` reports it as lost.
# `abtx -> abt` merges both_bad into tie (neither answer won). Widening (a
# class the data never had) is refused unless `widen=True`: its classes get 0.
MAPPINGS = {
    ("abt", "ab"): "renormalise A and B (rows with no A/B share are lost)",
    ("abtx", "ab"): "renormalise A and B (rows with no A/B share are lost)",
    ("abtx", "abt"): "merge both_bad into tie",
    ("ab", "abt"): "widen: tie gets 0 (only on request)",
    ("ab", "abtx"): "widen: tie and both_bad get 0 (only on request)",
    ("abt", "abtx"): "widen: both_bad gets 0 (only on request)",
}


def describe_mapping(source, target) -> str:
    """`'abt -> ab: renormalise A and B ...'`: what mapping `source` to
    `target` does (for a manifest or a message)."""
    s, t = label_space(source), label_space(target)
    if s == t:
        return f"{s.name}: unchanged"
    return f"{s.name} -> {t.name}: {MAPPINGS[(s.name, t.name)]}"


def _check_mapping(s: LabelSpace, t: LabelSpace, widen: bool) -> None:
    if t.k > s.k and not widen:
        raise ConfigError(
            f"label space {s.name!r} cannot become {t.name!r}: the data has no "
            f"{', '.join(t.keys[s.k :])} class ({MAPPINGS[(s.name, t.name)]}: pass widen=True "
            "to ask for it)"
        )


def map_probs(p, source, target, *, widen: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Probability (or label) rows of space `source` as rows of `target`,
    by the rule of `MAPPINGS`; returns `(rows, lost)`, `lost` (n,) bool the
    rows with nothing left to renormalise (their row is NaN). Rows of NaN
    (unlabelled) stay NaN and are not lost."""
    s, t = label_space(source), label_space(target)
    arr = _numbers(s.check_rows("probabilities", p), "probabilities")
    lost = np.zeros(len(arr), dtype=bool)
    if s == t:
        return arr.copy(), lost
    _check_mapping(s, t, widen)
    if t.k > s.k:
        return np.concatenate([arr, np.zeros((len(arr), t.k - s.k))], axis=1), lost
    if t.name == "abt":  # abtx -> abt
        return np.concatenate([arr[:, :2], arr[:, 2:3] + arr[:, 3:4]], axis=1), lost
    ab = arr[:, :2]
    total = ab.sum(axis=1, keepdims=True)
    lost = ~np.isnan(total[:, 0]) & ~(total[:, 0] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ab / total
    out[lost] = np.nan
    return out, lost


def map_logits(logits, source, target) -> np.ndarray:
    """Logit rows (..., K) of `source` as logits of `target` whose softmax
    is `map_probs` of theirs: narrowing to `ab` keeps A and B (a softmax over
    them renormalises), `abtx -> abt` puts logsumexp(tie, both_bad) as tie.
    Widening is refused: a logit for a class never predicted means nothing."""
    s, t = label_space(source), label_space(target)
    arr = _numbers(logits, "logits")
    if arr.ndim < 1 or arr.shape[-1] != s.k:
        raise InputError(f"logits: expected rows of {s.k} values, got shape {arr.shape}")
    if s == t:
        return arr.copy()
    _check_mapping(s, t, widen=False)
    if t.k > s.k:
        raise ConfigError(f"logits of label space {s.name!r} cannot be widened to {t.name!r}")
    if t.name == "abt":
        return np.concatenate([arr[..., :2], np.logaddexp(arr[..., 2:3], arr[..., 3:4])], axis=-1)
    return arr[..., :2].copy()


# The `abt` names, kept for the code and users that predate label spaces.
CLASS_COLUMNS = DEFAULT_SPACE.columns
CLASS_KEYS = DEFAULT_SPACE.keys
CLASS_NAMES = DEFAULT_SPACE.names
VERDICTS = DEFAULT_SPACE.verdicts


def swap_labels(y, space: Union[str, LabelSpace, None] = None) -> np.ndarray:
    """`LabelSpace.swap_labels` in `space` (default `abt`)."""
    return label_space(space).swap_labels(y)


def unswap_probs(p_swapped, space: Union[str, LabelSpace, None] = None) -> np.ndarray:
    """`LabelSpace.unswap_probs` in `space` (default `abt`): for `abt`,
    `[p_b', p_a', p_tie']`."""
    return label_space(space).unswap_probs(p_swapped)


def tta_average(p, p_swapped, space: Union[str, LabelSpace, None] = None) -> np.ndarray:
    """`LabelSpace.tta_average` in `space` (default `abt`)."""
    return label_space(space).tta_average(p, p_swapped)


def _numbers(value: Any, name: str) -> np.ndarray:
    arr = as_array(name, value)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)
