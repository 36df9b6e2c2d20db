"""Losses of the preference classifiers (torch; the `[train]` extra).

Labels are hard class ids (0 A, 1 B, 2 tie, 3 both_bad) or soft rows of K
probabilities (pseudo-labels, the Kaggle winner columns), K the label
space's class count (2 ab, 3 abt, 4 abtx: `af.labels`), the logits' width.
Distillation follows the 1st place: for each teacher, KL(teacher ||
student) and a cosine term on the probabilities, at temperature T,
averaged with the cross-entropy on the labels: `(CE + sum_t (KL_t + cos_t)) / (1 + 2 * teachers)`.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .errors import ConfigError

__all__ = ["cross_entropy", "distillation_loss"]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (n, K) logits against class ids (n,) in
    0..K-1 or probability rows (n, K)."""
    if labels.ndim == 1:
        return F.cross_entropy(logits.float(), labels.long())
    if labels.shape != logits.shape:
        raise ValueError(f"labels {tuple(labels.shape)} do not match logits {tuple(logits.shape)}")
    return -(labels.float() * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def distillation_loss(
    logits: torch.Tensor,
    labels: Optional[torch.Tensor],
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> torch.Tensor:
    """The 1st place's mix. `teacher_logits` is (n, teachers, K), K the
    width of `logits` (the label space's class count).

    Per teacher t: `KL_t = T^2 * mean_i KL(softmax(z_t / T) || softmax(z / T))`
    and `cos_t = mean_i (1 - cos(softmax(z / T), softmax(z_t / T)))`. The loss
    is `(w_ce * CE + sum_t (w_kl * KL_t + w_cos * cos_t)) / (1 + 2 * teachers)`
    with `weights = (w_ce, w_kl, w_cos)`; without labels the CE term is left
    out (and the divisor is `2 * teachers`)."""
    k = logits.shape[-1]
    if teacher_logits.ndim != 3 or teacher_logits.shape[-1] != k:
        raise ValueError(
            f"teacher_logits must be (n, teachers, {k}) for logits of {k} classes, "
            f"got {tuple(teacher_logits.shape)}"
        )
    if teacher_logits.shape[0] != logits.shape[0]:
        raise ValueError("teacher_logits and logits have different row counts")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"temperature must be a finite positive number, got {temperature}")
    w_ce, w_kl, w_cos = weights
    t = float(temperature)
    student_log = F.log_softmax(logits.float() / t, dim=-1)  # (n, K)
    student = student_log.exp()
    teachers = teacher_logits.shape[1]
    total = logits.new_zeros((), dtype=torch.float32)
    for k in range(teachers):
        teacher_log = F.log_softmax(teacher_logits[:, k].float() / t, dim=-1)
        teacher = teacher_log.exp()
        kl = (teacher * (teacher_log - student_log)).sum(dim=-1).mean() * t * t
        cos = (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()
        total = total + w_kl * kl + w_cos * cos
    parts = 2 * teachers
    if labels is not None:
        total = total + w_ce * cross_entropy(logits, labels)
        parts += 1
    return total / parts
