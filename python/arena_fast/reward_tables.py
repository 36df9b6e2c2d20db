"""A reward run's prediction tables: the two reward columns they carry
beside the probabilities (`REWARD_COLUMNS`, written by
`af.infer.prediction_table`), read back checked (`table_rewards`), and
what `predict`, `report` and `serve` show of them (`reward_summary`):
pairwise accuracy (ties left out, with the count of pairs it is over), the
log loss of the derived probabilities, and the reward margins r_a - r_b by
true label. numpy and polars only: no torch here."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .diagnostics import log_loss, pairwise_accuracy
from .errors import InputError
from .labels import space_of_width

__all__ = ["REWARD_COLUMNS", "table_rewards", "reward_summary", "format_reward_summary"]

# Each pair's two rewards, one float64 column per answer (finite).
REWARD_COLUMNS = ("reward_a", "reward_b")


def table_rewards(frame: Any, path: Any = "the prediction table") -> Optional[np.ndarray]:
    """The rewards (n, 2) of a prediction table (a polars frame, as
    `af.diagnostics.read_predictions` reads it) with both `REWARD_COLUMNS`
    (a reward run's); None when it has neither. An InputError naming
    `path`, the column and the row when one is missing or a value is not a
    finite number."""
    have = [name for name in REWARD_COLUMNS if name in frame.columns]
    if not have:
        return None
    if len(have) != len(REWARD_COLUMNS):
        missing = next(name for name in REWARD_COLUMNS if name not in have)
        raise InputError(f"{path}: column {have[0]!r} without {missing!r}")
    out = np.empty((len(frame), 2), dtype=np.float64)
    for j, name in enumerate(REWARD_COLUMNS):
        if not frame.schema[name].is_numeric():
            raise InputError(f"{path}: column {name!r} must hold numbers, got {frame.schema[name]}")
        values = frame[name].cast(float).fill_null(float("nan")).to_numpy()
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{path}: row {i}, column {name!r}: {values[i]!r} is not a reward")
        out[:, j] = values
    return out


def reward_summary(frame: Any, path: Any = "the prediction table") -> Optional[dict]:
    """What a reward run's prediction table says of its rewards; None for a
    table without rewards (a classifier's). `pairs`, `labelled`;
    `decided` (labelled pairs won by A or B: the pairs `pairwise_accuracy`
    is over, ties and both_bad left out), `pairwise_accuracy` (NaN when no
    pair is decided), `log_loss` of the table's probabilities on the
    labelled pairs (NaN without), `margin_mean` (of r_a - r_b, every
    pair), and `margins`: r_a - r_b of the labelled pairs by their true
    class name (the largest label entry) in the label space's order, a
    class without pairs left out."""
    rewards = table_rewards(frame, path)
    if rewards is None:
        return None
    n = len(frame)
    probs = frame["probs"].to_numpy().reshape(n, -1).astype(np.float64)
    space = space_of_width(probs.shape[1], "probs")
    if "labels" in frame.columns:
        labels = frame["labels"].to_numpy().reshape(n, -1).astype(np.float64)
    else:
        labels = np.full_like(probs, np.nan)
    labelled = ~np.isnan(labels).any(axis=1)
    margin = rewards[:, 0] - rewards[:, 1]
    truth = np.where(labelled[:, None], np.nan_to_num(labels), -np.inf).argmax(axis=1)
    margins = {}
    for k, name in enumerate(space.names):
        sel = labelled & (truth == k)
        if sel.any():
            margins[name] = margin[sel]
    return {
        "pairs": n,
        "labelled": int(labelled.sum()),
        "decided": int((labelled & (truth < 2)).sum()),
        "pairwise_accuracy": pairwise_accuracy(
            rewards[labelled, 0], rewards[labelled, 1], labels[labelled]
        )
        if labelled.any()
        else math.nan,
        "log_loss": log_loss(probs[labelled], labels[labelled]) if labelled.any() else math.nan,
        "margin_mean": float(margin.mean()) if n else math.nan,
        "margins": margins,
    }


def format_reward_summary(summary: dict, tie: Optional[dict] = None) -> str:
    """`reward_summary` (and the run's tie parameter `tie`: `tie_model`,
    `tie_prob_of_equal_rewards`) as aligned lines for a terminal."""

    def num(x: Any) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    lines = [
        f"pairwise acc  {num(summary['pairwise_accuracy'])} (over {summary['decided']:,} pairs "
        "won by A or B; ties left out)",
        f"log loss      {num(summary['log_loss'])} (the probabilities derived from the rewards, "
        f"{summary['labelled']:,} labelled pairs)",
        f"reward margin {num(summary['margin_mean'])} (mean r_a - r_b)",
    ]
    if tie:
        lines.append(
            f"tie           {tie.get('tie_model')}: P(tie) of equal rewards "
            f"{num(tie.get('tie_prob_of_equal_rewards'))}"
        )
    return "\n".join(lines)
