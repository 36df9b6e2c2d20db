"""Losses and probabilities of reward models (torch; the `[train]` extra).

A reward model gives each answer of a pair a scalar reward, `r_a` and `r_b`
(shape (n,)). The formulas, the choices for ties and both_bad and their
sources are in docs/reward.md ("Reward models: the losses"); in short:

- Bradley-Terry: `P(A) = sigmoid(r_a - r_b)`; the loss of a pair won by A
  is `-log sigmoid(r_a - r_b - margin)` (TRL's `margin`), plus TRL's
  reward-centering term `c * mean((r_a + r_b)^2)`. A tie or both_bad label
  counts as half a win for each side.
- Ties: a Davidson or a Rao-Kupper model with one tie parameter `theta`
  gives `(n, 3)` log-probabilities of A, B, tie; both_bad is a tie for the
  likelihood (the `abtx -> abt` mapping of `af.labels`).
- `reward_log_probs` / `reward_probs` give the probability columns of a label
  space, so a reward model is scored like a classifier (the Kaggle log loss
  of `af.diagnostics.log_loss`); `pairwise_accuracy` is the reward
  benchmarks' score (ties excluded).

Labels are hard class ids (n,) of the label space (0 A, 1 B, 2 tie,
3 both_bad) or soft rows (n, K) of its K probabilities; `None` means "A
won every pair" (A is the chosen answer, TRL's layout). Every loss is linear
in the label rows, so a soft row's loss is the expectation of the hard ones.
Computation is in float32 at least (float64 stays float64), in log space, so
rewards up to |r| = 1e4 neither overflow nor give NaN.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F

from . import diagnostics
from .errors import ConfigError
from .labels import LabelSpace, label_space

__all__ = [
    "TIE_MODELS",
    "TieModel",
    "bradley_terry_loss",
    "center_penalty",
    "davidson_log_probs",
    "pairwise_accuracy",
    "rao_kupper_log_probs",
    "reward_log_probs",
    "reward_probs",
    "tie_log_probs",
    "tie_nll",
]

TIE_MODELS = ("davidson", "rao_kupper")

Space = Union[str, LabelSpace, None]
Number = Union[float, torch.Tensor]


# -- checks ----------------------------------------------------------------------


def _rewards(r_a: torch.Tensor, r_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both reward vectors, checked ((n,), same shape, floating point) and
    promoted to a common float dtype of at least float32."""
    for name, r in (("r_a", r_a), ("r_b", r_b)):
        if not isinstance(r, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch tensor of rewards (n,), got {type(r).__name__}"
            )
        if not r.is_floating_point():
            raise ValueError(f"{name} must hold floating-point rewards, got {r.dtype}")
    if r_a.ndim != 1 or r_a.shape != r_b.shape:
        raise ValueError(
            f"r_a and r_b must be rewards of shape (n,) each, got {tuple(r_a.shape)} and "
            f"{tuple(r_b.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(r_a.dtype, r_b.dtype), torch.float32)
    return r_a.to(dtype), r_b.to(dtype)


def _model(model: str) -> str:
    if model not in TIE_MODELS:
        raise ConfigError(f"tie model must be one of {', '.join(TIE_MODELS)}, got {model!r}")
    return model


def _theta(theta: Number, like: torch.Tensor, model: str) -> torch.Tensor:
    """The tie parameter as a 0-dim tensor of `like`'s dtype and device
    (gradients kept); ConfigError when it is not finite, or not positive for
    Rao-Kupper (its threshold `exp(theta)` must exceed 1)."""
    if isinstance(theta, torch.Tensor):
        if theta.numel() != 1:
            raise ConfigError(
                f"theta must be one number, got a tensor of shape {tuple(theta.shape)}"
            )
        t = theta.reshape(()).to(device=like.device, dtype=like.dtype)
    elif isinstance(theta, (int, float)) and not isinstance(theta, bool):
        t = torch.tensor(float(theta), dtype=like.dtype, device=like.device)
    else:
        raise ConfigError(f"theta must be a number or a one-element tensor, got {theta!r}")
    value = float(t.detach())  # as computed: 1e-50 is 0 in float32
    if not math.isfinite(value):
        raise ConfigError(f"theta must be finite, got {value}")
    if model == "rao_kupper" and not value > 0:
        raise ConfigError(
            f"the Rao-Kupper theta (the log of its threshold) must be > 0, got {value}; "
            "theta = 0 is Bradley-Terry without ties"
        )
    return t


def _label_rows(labels, space: LabelSpace, r: torch.Tensor) -> torch.Tensor:
    """Labels as (n, K) rows of `space` in `r`'s dtype: class ids become
    one-hot rows, soft rows are checked for their shape. `None`: A won."""
    n, k = r.shape[0], space.k
    if labels is None:
        return F.one_hot(torch.zeros(n, dtype=torch.long, device=r.device), k).to(r.dtype)
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a torch tensor, got {type(labels).__name__}")
    if labels.ndim == 1:
        if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
            raise ValueError(f"class ids must be integers, got {labels.dtype}")
        if labels.shape[0] != n:
            raise ValueError(f"labels have {labels.shape[0]} rows for {n} pairs")
        bad = ((labels < 0) | (labels >= k)).nonzero()
        if len(bad):
            row = int(bad[0, 0])
            raise ValueError(
                f"labels row {row}: class id {int(labels[row])} is outside label space "
                f"{space.name!r} (0 to {k - 1}: {', '.join(space.keys)})"
            )
        return F.one_hot(labels.long().to(r.device), k).to(r.dtype)
    if labels.ndim == 2 and labels.shape == (n, k):
        return labels.to(device=r.device, dtype=r.dtype)
    raise ValueError(
        f"labels must be class ids ({n},) or rows of label space {space.name!r} ({n}, {k}), "
        f"got shape {tuple(labels.shape)}"
    )


def _as_abt(y: torch.Tensor, space: LabelSpace) -> torch.Tensor:
    """Label rows (n, K) as (n, 3) rows of A, B, tie: `ab` has no tie (0),
    `abtx`'s both_bad joins tie."""
    if space.k == 2:
        return torch.cat([y, y.new_zeros(len(y), 1)], dim=1)
    if space.k == 4:
        return torch.cat([y[:, :2], y[:, 2:3] + y[:, 3:4]], dim=1)
    return y


def _margin(margin: Optional[Number], r: torch.Tensor) -> Union[float, torch.Tensor]:
    if margin is None:
        return 0.0
    if isinstance(margin, torch.Tensor):
        if margin.shape not in ((), (r.shape[0],)):
            raise ValueError(
                f"margin must be one number or one per pair ({r.shape[0]},), "
                f"got shape {tuple(margin.shape)}"
            )
        return margin.to(device=r.device, dtype=r.dtype)
    if isinstance(margin, (int, float)) and not isinstance(margin, bool) and math.isfinite(margin):
        return float(margin)
    raise ConfigError(f"margin must be a finite number or a tensor (n,), got {margin!r}")


# -- Bradley-Terry -----------------------------------------------------------------


def center_penalty(
    r_a: torch.Tensor, r_b: torch.Tensor, coefficient: Optional[float]
) -> torch.Tensor:
    """TRL's reward-centering term, `coefficient * mean((r_a + r_b)^2)` over the
    pairs (Eisenstein et al. 2023, Eq. 2; `RewardConfig.center_rewards_coefficient`,
    TRL's recommended value 0.01). It pulls the rewards towards mean zero,
    which no pairwise likelihood fixes (they see only differences). `None`
    or 0: no term (a zero tensor)."""
    r_a, r_b = _rewards(r_a, r_b)
    if coefficient is None:
        return r_a.new_zeros(())
    if (
        isinstance(coefficient, bool)
        or not isinstance(coefficient, (int, float))
        or not math.isfinite(coefficient)
        or coefficient < 0
    ):
        raise ConfigError(
            f"center_rewards_coefficient must be a finite number >= 0, got {coefficient!r}"
        )
    if coefficient == 0 or r_a.numel() == 0:
        return r_a.new_zeros(())
    return coefficient * ((r_a + r_b) ** 2).mean()


def bradley_terry_loss(
    r_a: torch.Tensor,
    r_b: torch.Tensor,
    labels=None,
    *,
    space: Space = None,
    margin: Optional[Number] = None,
    center_rewards_coefficient: Optional[float] = None,
) -> torch.Tensor:
    """Mean Bradley-Terry loss of the pairs.

    A pair won by A costs `-log sigmoid(r_a - r_b - m)`, one won by B
    `-log sigmoid(r_b - r_a - m)`; a tie or both_bad label costs the mean of
    the two (half a win each, minimised by equal rewards). `m` is `margin`:
    one number or one per pair, TRL's `margin` column (the winner must lead
    by `m`). With `labels=None` A won every pair, so
    `bradley_terry_loss(r_chosen, r_rejected, margin=m,
    center_rewards_coefficient=c)` is TRL's `RewardTrainer.compute_loss`
    (checked against TRL 1.16.0: `-logsigmoid(chosen - rejected - margin).mean()
    + c * mean((chosen + rejected) ** 2)`). `space` (default `abt`) is the
    label space of `labels`."""
    r_a, r_b = _rewards(r_a, r_b)
    space = label_space(space)
    y = _label_rows(labels, space, r_a)  # (n, K)
    m = _margin(margin, r_a)
    if len(r_a) == 0:
        raise ValueError("no pairs: the loss of an empty batch is undefined")
    d = r_a - r_b  # (n,)
    cost_a = -F.logsigmoid(d - m)  # (n,)
    cost_b = -F.logsigmoid(-d - m)
    even = y[:, 2:].sum(dim=1) / 2  # tie and both_bad: half a win each
    per_pair = (y[:, 0] + even) * cost_a + (y[:, 1] + even) * cost_b
    return per_pair.mean() + center_penalty(r_a, r_b, center_rewards_coefficient)


# -- tie models --------------------------------------------------------------------


def davidson_log_probs(r_a: torch.Tensor, r_b: torch.Tensor, theta: Number) -> torch.Tensor:
    """Log-probabilities (n, 3) of A, B, tie under Davidson's model:
    `P(A) = e^r_a / Z`, `P(B) = e^r_b / Z`, `P(tie) = nu e^((r_a + r_b) / 2) / Z`,
    `Z` their sum, `nu = exp(theta)` (any finite theta; theta -> -inf is
    Bradley-Terry). Equal rewards give `P(tie) = nu / (2 + nu)`."""
    r_a, r_b = _rewards(r_a, r_b)
    t = _theta(theta, r_a, "davidson")
    half = (r_a - r_b) / 2  # (n,): each exponent less (r_a + r_b) / 2, so nothing overflows
    exponents = torch.stack([half, -half, t.expand_as(half)], dim=1)  # (n, 3)
    return exponents.log_softmax(dim=1)


def rao_kupper_log_probs(r_a: torch.Tensor, r_b: torch.Tensor, theta: Number) -> torch.Tensor:
    """Log-probabilities (n, 3) of A, B, tie under Rao and Kupper's threshold
    model with threshold `eta = exp(theta) > 1` (theta > 0):
    `P(A) = e^r_a / (e^r_a + eta e^r_b) = sigmoid(r_a - r_b - theta)`, `P(B)`
    alike, `P(tie) = 1 - P(A) - P(B)`: a tie when the rewards differ by less
    than about theta. theta -> 0 is Bradley-Terry. Equal rewards give
    `P(tie) = tanh(theta / 2)`."""
    r_a, r_b = _rewards(r_a, r_b)
    t = _theta(theta, r_a, "rao_kupper")
    d = r_a - r_b  # (n,)
    log_a = F.logsigmoid(d - t)
    log_b = F.logsigmoid(-d - t)
    # P(tie) = (eta^2 - 1) / ((e^d + eta)(e^-d + eta)); log(eta^2 - 1) written
    # as 2 theta + log(1 - e^(-2 theta)), which neither overflows nor cancels.
    log_scale = 2 * t + torch.log(-torch.expm1(-2 * t))
    log_tie = log_scale - torch.logaddexp(d, t) - torch.logaddexp(-d, t)
    return torch.stack([log_a, log_b, log_tie], dim=1)


def tie_log_probs(
    r_a: torch.Tensor, r_b: torch.Tensor, theta: Number, model: str = "davidson"
) -> torch.Tensor:
    """Log-probabilities (n, 3) of A, B, tie under `model` (`davidson` or
    `rao_kupper`)."""
    if _model(model) == "davidson":
        return davidson_log_probs(r_a, r_b, theta)
    return rao_kupper_log_probs(r_a, r_b, theta)


def tie_nll(
    r_a: torch.Tensor,
    r_b: torch.Tensor,
    labels,
    theta: Number,
    *,
    model: str = "davidson",
    space: Space = None,
    margin: Optional[Number] = None,
    center_rewards_coefficient: Optional[float] = None,
) -> torch.Tensor:
    """Mean negative log-likelihood of the labels under the tie model, plus
    the optional centering term (`center_penalty`). Labels of `abtx` count
    both_bad as a tie (neither answer preferred); labels of `ab` have no tie
    (the model then learns that ties are rare). `margin` `m` (one number or
    one per pair) handicaps the winner as in `bradley_terry_loss`: a pair
    won by A costs `-log P(A)` at rewards `(r_a - m, r_b)`, one won by B
    `-log P(B)` at `(r_a, r_b - m)`; a tie has no winner and costs
    `-log P(tie)` at the rewards themselves."""
    space = label_space(space)
    log_p = tie_log_probs(r_a, r_b, theta, model)  # (n, 3)
    y = _as_abt(_label_rows(labels, space, log_p), space)  # (n, 3)
    if len(y) == 0:
        raise ValueError("no pairs: the loss of an empty batch is undefined")
    m = _margin(margin, log_p)
    if isinstance(m, torch.Tensor) or m != 0:
        ra, rb = _rewards(r_a, r_b)
        won_a = tie_log_probs(ra - m, rb, theta, model)[:, 0]  # (n,)
        won_b = tie_log_probs(ra, rb - m, theta, model)[:, 1]
        log_p = torch.stack([won_a, won_b, log_p[:, 2]], dim=1)
    nll = -(y * log_p).sum(dim=1).mean()
    return nll + center_penalty(r_a, r_b, center_rewards_coefficient)


# -- probabilities of a label space, and the benchmark score --------------------------------


def reward_log_probs(
    r_a: torch.Tensor,
    r_b: torch.Tensor,
    space: Space = None,
    *,
    model: str = "davidson",
    theta: Optional[Number] = None,
    both_bad_share: float = 0.5,
) -> torch.Tensor:
    """Log-probabilities (n, K) of the columns of label space `space`
    (default `abt`), to score a reward model like a classifier:

    - `ab`: Bradley-Terry, `[log sigmoid(r_a - r_b), log sigmoid(r_b - r_a)]`
      (`model` and `theta` unused; this is also Davidson's model
      renormalised over A and B).
    - `abt`: the tie model's (`theta` required).
    - `abtx`: the tie model's, its tie mass split into tie and both_bad as
      `1 - both_bad_share` and `both_bad_share` (in (0, 1)). Rewards of a
      pair cannot tell the two apart, so the split is fixed: set the share
      to the data's `both_bad / (tie + both_bad)`. Merging the two columns
      (`af.labels.map_probs(p, "abtx", "abt")`) gives back the `abt` rows."""
    space = label_space(space)
    if space.k == 2:
        r_a, r_b = _rewards(r_a, r_b)
        d = r_a - r_b
        return torch.stack([F.logsigmoid(d), F.logsigmoid(-d)], dim=1)
    if theta is None:
        raise ConfigError(f"label space {space.name!r} has ties: give the tie model's theta")
    log_p = tie_log_probs(r_a, r_b, theta, model)  # (n, 3)
    if space.k == 3:
        return log_p
    s = both_bad_share
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < 1:
        raise ConfigError(f"both_bad_share must be a number in (0, 1), got {s!r}")
    tie = log_p[:, 2:3]
    return torch.cat([log_p[:, :2], tie + math.log1p(-s), tie + math.log(s)], dim=1)


def reward_probs(
    r_a: torch.Tensor,
    r_b: torch.Tensor,
    space: Space = None,
    *,
    model: str = "davidson",
    theta: Optional[Number] = None,
    both_bad_share: float = 0.5,
) -> torch.Tensor:
    """`reward_log_probs` as probabilities (n, K); rows sum to 1."""
    return reward_log_probs(
        r_a, r_b, space, model=model, theta=theta, both_bad_share=both_bad_share
    ).exp()


def pairwise_accuracy(
    r_a: torch.Tensor, r_b: torch.Tensor, labels=None, *, space: Space = None
) -> float:
    """Share of the decided pairs (labelled A or B; a soft row by its argmax)
    whose winner got the strictly larger reward, as reward benchmarks
    (RewardBench) and TRL's `accuracy` metric count it: ties and both_bad
    are left out, equal rewards count as wrong. `labels=None`: A won every
    pair. NaN when no pair is decided. The formula is
    `af.diagnostics.pairwise_accuracy`'s (numpy), which this calls."""
    r_a, r_b = _rewards(r_a, r_b)
    y = _label_rows(labels, label_space(space), r_a)  # (n, K)
    return diagnostics.pairwise_accuracy(
        r_a.detach().cpu().double().numpy(),
        r_b.detach().cpu().double().numpy(),
        y.detach().cpu().double().numpy(),
    )


# -- the learnable tie parameter -----------------------------------------------------------


class TieModel(torch.nn.Module):
    """The tie parameter of a reward model, learnable.

    `model` is `davidson` (theta = the parameter, any real) or `rao_kupper`
    (theta = softplus(parameter) + 1e-6 > 0, so every step keeps it valid).
    It starts where two equal rewards give `P(tie) = tie_prob` (default 1/3:
    equal rewards start at 1/3 per class): Davidson `theta = log(2p / (1 -
    p))` (0 for 1/3), Rao-Kupper `theta = 2 atanh(p)` (log 2 for 1/3).
    Set `tie_prob` to the data's tie rate to start near the optimum."""

    _FLOOR = 1e-6  # Rao-Kupper's theta never reaches 0 (where P(tie) = 0)

    def __init__(self, model: str = "davidson", tie_prob: float = 1 / 3):
        super().__init__()
        self.model = _model(model)
        p = tie_prob
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 1:
            raise ConfigError(f"tie_prob must be a number in (0, 1), got {p!r}")
        if self.model == "davidson":
            raw = math.log(2 * p / (1 - p))
        else:
            theta = max(2 * math.atanh(p) - self._FLOOR, 1e-12)
            raw = theta + math.log(-math.expm1(-theta))  # the inverse of softplus
        self.raw = torch.nn.Parameter(torch.tensor(raw, dtype=torch.float32))

    @property
    def theta(self) -> torch.Tensor:
        """theta (0-dim, with gradients) as the functions of this module take it."""
        if self.model == "davidson":
            return self.raw
        return F.softplus(self.raw) + self._FLOOR

    def tie_prob_of_equal_rewards(self) -> float:
        """P(tie) of a pair with equal rewards, at the current theta."""
        t = float(self.theta.detach())
        return math.exp(t) / (2 + math.exp(t)) if self.model == "davidson" else math.tanh(t / 2)

    def log_probs(self, r_a: torch.Tensor, r_b: torch.Tensor) -> torch.Tensor:
        """`tie_log_probs` (n, 3) at this theta."""
        return tie_log_probs(r_a, r_b, self.theta, self.model)

    def probs(
        self, r_a: torch.Tensor, r_b: torch.Tensor, space: Space = None, both_bad_share: float = 0.5
    ) -> torch.Tensor:
        """`reward_probs` (n, K) of `space` at this theta."""
        return reward_probs(
            r_a, r_b, space, model=self.model, theta=self.theta, both_bad_share=both_bad_share
        )

    def forward(
        self,
        r_a: torch.Tensor,
        r_b: torch.Tensor,
        labels=None,
        space: Space = None,
        center_rewards_coefficient: Optional[float] = None,
        margin: Optional[Number] = None,
    ) -> torch.Tensor:
        """`tie_nll` of the labels at this theta (the training loss)."""
        return tie_nll(
            r_a,
            r_b,
            labels,
            self.theta,
            model=self.model,
            space=space,
            margin=margin,
            center_rewards_coefficient=center_rewards_coefficient,
        )

    def extra_repr(self) -> str:
        return f"model={self.model!r}, theta={float(self.theta.detach()):.4g}"
