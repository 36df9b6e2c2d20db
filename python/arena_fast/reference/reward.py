"""Reference: the losses and probabilities of reward models, from
docs/reward.md ("Reward models: the losses"), in plain Python floats (math
only; no torch). Each formula is written as the papers state it, per pair,
with the exponentials shifted by their largest exponent so moderate rewards
(|r| up to a few hundred) do not overflow: the oracle `af.reward_losses`
(log space, vectorised) is held equal to.

Pairs are lists of floats; labels are rows of K probabilities (one-hot for a
hard label), K the label space's class count (2 ab, 3 abt, 4 abtx)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

__all__ = [
    "bradley_terry_loss",
    "bradley_terry_probs",
    "center_penalty",
    "davidson_probs",
    "nll",
    "pairwise_accuracy",
    "rao_kupper_probs",
    "reward_probs",
    "tie_nll",
]

Rows = Sequence[Sequence[float]]


def bradley_terry_probs(r_a: float, r_b: float) -> tuple[float, float]:
    """Bradley & Terry (1952): P(A beats B) = pi_a / (pi_a + pi_b), pi = e^r."""
    top = max(r_a, r_b)
    pi_a, pi_b = math.exp(r_a - top), math.exp(r_b - top)
    return pi_a / (pi_a + pi_b), pi_b / (pi_a + pi_b)


def davidson_probs(r_a: float, r_b: float, theta: float) -> tuple[float, float, float]:
    """Davidson (1970): P(A) : P(B) : P(tie) = pi_a : pi_b : nu sqrt(pi_a pi_b),
    pi = e^r, nu = e^theta."""
    exponents = (r_a, r_b, theta + (r_a + r_b) / 2)
    top = max(exponents)
    weights = [math.exp(e - top) for e in exponents]
    z = sum(weights)
    return weights[0] / z, weights[1] / z, weights[2] / z


def rao_kupper_probs(r_a: float, r_b: float, theta: float) -> tuple[float, float, float]:
    """Rao & Kupper (1967) with threshold eta = e^theta > 1:
    P(A) = pi_a / (pi_a + eta pi_b), P(B) = pi_b / (pi_b + eta pi_a),
    P(tie) = (eta^2 - 1) pi_a pi_b / ((pi_a + eta pi_b)(pi_b + eta pi_a))."""
    eta = math.exp(theta)
    top = max(r_a, r_b)
    pi_a, pi_b = math.exp(r_a - top), math.exp(r_b - top)
    p_a = pi_a / (pi_a + eta * pi_b)
    p_b = pi_b / (pi_b + eta * pi_a)
    p_tie = (eta * eta - 1) * pi_a * pi_b / ((pi_a + eta * pi_b) * (pi_b + eta * pi_a))
    return p_a, p_b, p_tie


def _tie_probs(r_a: float, r_b: float, theta: float, model: str) -> tuple[float, float, float]:
    if model == "davidson":
        return davidson_probs(r_a, r_b, theta)
    if model == "rao_kupper":
        return rao_kupper_probs(r_a, r_b, theta)
    raise ValueError(f"unknown tie model {model!r}")


def reward_probs(
    r_a: float,
    r_b: float,
    k: int,
    model: str = "davidson",
    theta: Optional[float] = None,
    both_bad_share: float = 0.5,
) -> list[float]:
    """The K probability columns of one pair: Bradley-Terry for K = 2, the
    tie model for K = 3, and for K = 4 the tie model's tie split into tie
    (1 - share) and both_bad (share)."""
    if k == 2:
        return list(bradley_terry_probs(r_a, r_b))
    p_a, p_b, p_tie = _tie_probs(r_a, r_b, theta, model)
    if k == 3:
        return [p_a, p_b, p_tie]
    return [p_a, p_b, p_tie * (1 - both_bad_share), p_tie * both_bad_share]


def center_penalty(r_a: Sequence[float], r_b: Sequence[float], coefficient) -> float:
    """coefficient * mean over pairs of (r_a + r_b)^2 (0 when None)."""
    if not coefficient:
        return 0.0
    return coefficient * sum((a + b) ** 2 for a, b in zip(r_a, r_b)) / len(r_a)


def bradley_terry_loss(
    r_a: Sequence[float],
    r_b: Sequence[float],
    labels: Rows,
    margins: Optional[Sequence[float]] = None,
    center: Optional[float] = None,
) -> float:
    """Mean over pairs of the expected cost under the label row: A winning
    costs -log P(A beats B by the margin) = -log(1 / (1 + e^-(r_a - r_b - m))),
    B winning the mirror image, tie and both_bad half of each."""
    total = 0.0
    for i, (a, b, y) in enumerate(zip(r_a, r_b, labels)):
        m = margins[i] if margins is not None else 0.0
        cost_a = -math.log(bradley_terry_probs(a - m, b)[0])
        cost_b = -math.log(bradley_terry_probs(b - m, a)[0])
        even = sum(y[2:]) / 2
        total += (y[0] + even) * cost_a + (y[1] + even) * cost_b
    return total / len(r_a) + center_penalty(r_a, r_b, center)


def nll(probs: Rows, labels: Rows) -> float:
    """Mean over rows of -sum_c y_c log p_c (terms with y_c = 0 left out)."""
    total = 0.0
    for p, y in zip(probs, labels):
        total -= sum(yc * math.log(pc) for pc, yc in zip(p, y) if yc)
    return total / len(probs)


def tie_nll(
    r_a: Sequence[float],
    r_b: Sequence[float],
    labels: Rows,
    theta: float,
    model: str = "davidson",
    center: Optional[float] = None,
    margins: Optional[Sequence[float]] = None,
) -> float:
    """NLL of the tie model against label rows of any space: `ab` rows have
    no tie, `abtx` rows count both_bad as tie. With margins, A winning costs
    -log P(A) with r_a lowered by the margin, B winning -log P(B) with r_b
    lowered, a tie -log P(tie) of the rewards themselves."""
    merged = [[y[0], y[1], sum(y[2:])] for y in labels]
    probs = []
    for i, (a, b) in enumerate(zip(r_a, r_b)):
        m = margins[i] if margins is not None else 0.0
        probs.append(
            (
                _tie_probs(a - m, b, theta, model)[0],
                _tie_probs(a, b - m, theta, model)[1],
                _tie_probs(a, b, theta, model)[2],
            )
        )
    return nll(probs, merged) + center_penalty(r_a, r_b, center)


def pairwise_accuracy(r_a: Sequence[float], r_b: Sequence[float], labels: Rows) -> float:
    """Among pairs whose label row's largest entry (the first, on equal
    entries) is A or B: the share whose winner has the strictly larger reward.
    NaN when there is none."""
    right = decided = 0
    for a, b, y in zip(r_a, r_b, labels):
        winner = max(range(len(y)), key=lambda c: (y[c], -c))
        if winner > 1:
            continue
        decided += 1
        right += (a > b) if winner == 0 else (b > a)
    return right / decided if decided else float("nan")
