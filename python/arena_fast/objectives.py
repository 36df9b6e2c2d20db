"""What a training run minimises (`TrainConfig.objective`; torch, the
`[train]` extra): the loss of one micro-batch for `af.train`'s steps, and
the checks a dataset must pass for the objective.

- `classify`: the cross-encoder's cross-entropy on the label rows (hard
  labels are one-hot rows, pseudo-labels soft), or the distillation mix
  when every row of the batch has teacher logits (`af.losses`).
- `reward`: a reward model (docs/reward.md, "Training a reward model").
  The dataset is of the separate layout: row 2i is the prompt with answer
  A, row 2i + 1 the prompt with answer B, the pair's label on row 2i. The
  model's head reads one reward per row (`RewardHead`); the loss of the
  pairs is `af.reward_losses.tie_nll` with the head's tie parameter
  (`tie_model` davidson or rao_kupper), or `bradley_terry_loss` (`tie_model`
  none: a tie counts half a win) plus the Davidson tie parameter's NLL on
  the rewards detached (it learns P(tie) without moving them, so the run
  still gives three probabilities). `reward_margin` and
  `center_rewards_coefficient` enter either.

The planner keeps rows 2i and 2i + 1 in one micro-batch (`pair_swaps`), so
every pair's two rows are in the batch the loss sees; `pair_positions`
finds them and refuses a batch that splits a pair."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from . import losses
from .errors import ConfigError
from .reward_losses import bradley_terry_loss
from .train_config import TrainConfig

__all__ = ["batch_loss", "check_objective", "pair_positions", "reward_loss"]


def check_objective(config: TrainConfig, data) -> None:
    """A ConfigError naming the dataset when it cannot train `config`'s
    objective: a reward run needs the separate layout (both orders loaded:
    rows 2i, 2i + 1) and no teacher logits (distillation is of class
    logits, which a reward model does not have); a classifier needs the
    cross layout (a row that holds both answers)."""
    if not config.reward:
        if data.layout == "separate":
            raise ConfigError(
                f"{data.path}: a dataset of the separate layout (a row per answer) trains "
                "reward models: set objective reward (--objective reward), or build a "
                "cross-layout dataset (a row holding both answers) for a classifier"
            )
        return
    if data.layout != "separate":
        raise ConfigError(
            f"{data.path}: objective reward needs a dataset of the separate layout (a row "
            f"per answer: prompt + A, prompt + B), and this one is {data.layout!r}; build "
            "one with `arena-fast build-dataset --layout separate` (or `--template chat`, "
            "the model's own chat template)"
        )
    if not data.swapped:
        raise ConfigError(
            f"{data.path}: a reward run reads each pair's two rows (2i and 2i + 1); load "
            "the dataset with both (swap: leave unset)"
        )
    if data.teacher_logits is not None:
        raise ConfigError(
            f"{data.path}: the dataset holds teacher logits, and objective is reward: "
            "distillation matches a classifier's class logits, which a reward model does "
            "not have; train a classifier (objective: classify) or build the dataset "
            "without teacher logits"
        )


def pair_positions(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in a batch of rows `idx` (row indices of the dataset) of
    each pair's A row (2i) and B row (2i + 1), in the order of the A rows.
    A ValueError when a row's partner is not in the batch (the planner
    keeps them together: this is never expected)."""
    idx = np.asarray(idx, dtype=np.int64)
    where = {int(r): j for j, r in enumerate(idx)}
    a = np.flatnonzero(idx % 2 == 0)
    b = np.array([where.get(int(idx[j]) + 1, -1) for j in a], dtype=np.int64)
    if len(a) * 2 != len(idx) or (b < 0).any():
        raise ValueError(
            "a batch of a reward run must hold both rows (2i, 2i + 1) of each pair; "
            f"rows {idx[:8].tolist()}... do not pair up"
        )
    return a, b


def reward_loss(
    rewards: torch.Tensor, label_rows: torch.Tensor, head, config: TrainConfig, space
) -> torch.Tensor:
    """The loss of pairs: `rewards` (n, 2) the A and B rewards of n pairs,
    `label_rows` (n, K) their label rows of label space `space`, `head` the
    model's `RewardHead` (its tie parameter)."""
    r_a, r_b = rewards[:, 0], rewards[:, 1]  # (n,)
    margin = config.reward_margin or None
    center = config.center_rewards_coefficient or None
    tie = head.tie
    if config.tie_model == "none":
        loss = bradley_terry_loss(
            r_a, r_b, label_rows, space=space, margin=margin, center_rewards_coefficient=center
        )
        # P(tie) learned on the rewards as they are, without moving them.
        return loss + tie(r_a.detach(), r_b.detach(), label_rows, space)
    return tie(r_a, r_b, label_rows, space, center_rewards_coefficient=center, margin=margin)


def batch_loss(
    model, logits: torch.Tensor, batch: dict, idx: np.ndarray, data, config: TrainConfig
) -> torch.Tensor:
    """The mean loss of one micro-batch (rows `idx` of `data`; `logits` the
    model's output for them) under `config.objective`. `model` may be
    wrapped in DistributedDataParallel (its `module` is the classifier)."""
    labels = torch.as_tensor(batch["labels"]).to(logits.device)
    if config.reward:
        a, b = pair_positions(idx)
        rewards = torch.stack([logits[a, 0], logits[b, 0]], dim=1)  # (n, 2)
        head = getattr(model, "module", model).head
        return reward_loss(rewards, labels[a], head, config, data.space)
    teacher: Optional[list] = data.teacher_logits
    if teacher is not None and all(teacher[i] is not None for i in idx):
        t = torch.tensor([teacher[i] for i in idx], dtype=torch.float32, device=logits.device)
        return losses.distillation_loss(logits, labels, t, temperature=config.temperature)
    return losses.cross_entropy(logits, labels)
