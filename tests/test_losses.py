"""Losses against values computed by hand (math, no torch) on fixed examples."""

from __future__ import annotations

import math

import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")

from arena_fast.losses import cross_entropy, distillation_loss  # noqa: E402


def softmax(z, t=1.0):
    e = [math.exp(x / t) for x in z]
    s = sum(e)
    return [x / s for x in e]


def test_cross_entropy_hard_and_soft():
    z = [[2.0, 0.5, -1.0], [0.0, 0.0, 1.0]]
    logits = torch.tensor(z)
    hard = cross_entropy(logits, torch.tensor([0, 2]))
    want = -(math.log(softmax(z[0])[0]) + math.log(softmax(z[1])[2])) / 2
    assert hard.item() == pytest.approx(want, rel=1e-6)
    soft_labels = [[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]]
    soft = cross_entropy(logits, torch.tensor(soft_labels))
    want = (
        -sum(
            sum(y * math.log(p) for y, p in zip(ys, softmax(zs))) for ys, zs in zip(soft_labels, z)
        )
        / 2
    )
    assert soft.item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_distillation_matches_a_hand_computed_value(temperature):
    z = [[1.0, -0.5, 0.2], [-1.0, 2.0, 0.0]]
    teachers = [
        [[2.0, 0.0, -1.0], [1.5, 0.5, 0.0]],  # row 0: teacher 1, teacher 2
        [[0.0, 1.0, 0.0], [-0.5, 1.5, 0.5]],  # row 1
    ]
    labels = [0, 1]
    t = temperature
    kl = [0.0, 0.0]
    cos = [0.0, 0.0]
    for i in range(2):
        s = softmax(z[i], t)
        for k in range(2):
            p = softmax(teachers[i][k], t)
            kl[k] += sum(pj * math.log(pj / sj) for pj, sj in zip(p, s)) * t * t / 2
            dot = sum(a * b for a, b in zip(s, p))
            norm = math.sqrt(sum(a * a for a in s)) * math.sqrt(sum(b * b for b in p))
            cos[k] += (1 - dot / norm) / 2
    ce = -(math.log(softmax(z[0])[0]) + math.log(softmax(z[1])[1])) / 2
    want = (ce + kl[0] + cos[0] + kl[1] + cos[1]) / 5
    got = distillation_loss(
        torch.tensor(z), torch.tensor(labels), torch.tensor(teachers), temperature=t
    )
    assert got.item() == pytest.approx(want, rel=1e-5)
    # Without labels: the teacher terms only.
    got = distillation_loss(torch.tensor(z), None, torch.tensor(teachers), temperature=t)
    assert got.item() == pytest.approx((kl[0] + cos[0] + kl[1] + cos[1]) / 4, rel=1e-5)


def test_distillation_is_zero_when_the_student_is_the_teacher_and_errors():
    z = torch.tensor([[0.3, -0.2, 1.0]])
    assert distillation_loss(z, None, z[:, None, :]).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        distillation_loss(z, None, z)
    with pytest.raises(ValueError):
        distillation_loss(z, None, z[:, None, :], temperature=0)
