"""Reward-model losses (`af.reward_losses`, docs/reward.md): equal to the
pure-Python reference (`arena_fast.reference.reward`) on random pairs and
labels, and their properties: probabilities that sum to 1, the A/B swap,
Bradley-Terry as the tie models' limit, finite gradients at extreme and
equal rewards, TRL's margin and centering terms, soft labels as the
expectation of hard ones, both_bad as a tie, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import train_extra

torch = train_extra("torch")

from arena_fast.diagnostics import log_loss  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.labels import LABEL_SPACES, map_probs  # noqa: E402
from arena_fast.reference import reward as ref  # noqa: E402
from arena_fast.reward_losses import (  # noqa: E402
    TIE_MODELS,
    TieModel,
    bradley_terry_loss,
    center_penalty,
    pairwise_accuracy,
    reward_log_probs,
    reward_probs,
    tie_log_probs,
    tie_nll,
)

F64 = torch.float64
SPACES = tuple(LABEL_SPACES)  # ab, abt, abtx
# theta per model: Davidson any real, Rao-Kupper > 0.
THETAS = {
    "davidson": st.floats(-4, 4),
    "rao_kupper": st.floats(0.01, 4),
}
moderate = st.floats(-30, 30)
extreme = st.sampled_from([0.0, 1e-7, -3.5, 50.0, -700.0, 1e4, -1e4]) | st.floats(-1e4, 1e4)


@st.composite
def batches(draw, rewards=moderate, hard=None):
    """(r_a, r_b, labels as lists of rows, labels as a tensor, space)."""
    space = LABEL_SPACES[draw(st.sampled_from(SPACES))]
    n = draw(st.integers(1, 6))
    r_a = draw(st.lists(rewards, min_size=n, max_size=n))
    r_b = [
        a if draw(st.booleans()) and i % 2 else draw(rewards)  # some equal rewards
        for i, a in enumerate(r_a)
    ]
    if hard if hard is not None else draw(st.booleans()):
        ids = draw(st.lists(st.integers(0, space.k - 1), min_size=n, max_size=n))
        rows = [list(space.onehot(c)) for c in ids]
        tensor = torch.tensor(ids)
    else:
        raw = draw(
            st.lists(
                st.lists(st.floats(0, 1), min_size=space.k, max_size=space.k).filter(
                    lambda r: sum(r) > 0.01
                ),
                min_size=n,
                max_size=n,
            )
        )
        rows = [[v / sum(r) for v in r] for r in raw]
        tensor = torch.tensor(rows, dtype=F64)
    return r_a, r_b, rows, tensor, space


def t64(values):
    return torch.tensor(values, dtype=F64)


# -- equal to the reference -------------------------------------------------------------


@given(batches(), st.sampled_from(TIE_MODELS), st.data())
def test_tie_models_equal_the_reference(batch, model, data):
    r_a, r_b, rows, labels, space = batch
    theta = data.draw(THETAS[model])
    got = tie_log_probs(t64(r_a), t64(r_b), theta, model).exp()
    want = [ref.reward_probs(a, b, 3, model, theta) for a, b in zip(r_a, r_b)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)
    loss = tie_nll(t64(r_a), t64(r_b), labels, theta, model=model, space=space)
    assert loss.item() == pytest.approx(ref.tie_nll(r_a, r_b, rows, theta, model), rel=1e-9)
    share = data.draw(st.floats(0.01, 0.99))
    got = reward_probs(t64(r_a), t64(r_b), space, model=model, theta=theta, both_bad_share=share)
    want = [ref.reward_probs(a, b, space.k, model, theta, share) for a, b in zip(r_a, r_b)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)


@given(batches(), st.sampled_from(TIE_MODELS), st.data())
def test_tie_nll_with_margins_equals_the_reference(batch, model, data):
    r_a, r_b, rows, labels, space = batch
    theta = data.draw(THETAS[model])
    margins = data.draw(st.lists(st.floats(0, 3), min_size=len(r_a), max_size=len(r_a)))
    center = data.draw(st.none() | st.floats(0, 1))
    got = tie_nll(
        t64(r_a),
        t64(r_b),
        labels,
        theta,
        model=model,
        space=space,
        margin=t64(margins),
        center_rewards_coefficient=center,
    )
    want = ref.tie_nll(r_a, r_b, rows, theta, model, center, margins)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)
    # one number is a margin for every pair; 0 is no margin
    one = tie_nll(t64(r_a), t64(r_b), labels, theta, model=model, space=space, margin=0.5)
    assert one.item() == pytest.approx(
        ref.tie_nll(r_a, r_b, rows, theta, model, margins=[0.5] * len(r_a)), rel=1e-9
    )
    zero = tie_nll(t64(r_a), t64(r_b), labels, theta, model=model, space=space, margin=0.0)
    assert zero.item() == pytest.approx(ref.tie_nll(r_a, r_b, rows, theta, model), rel=1e-9)


@given(batches(), st.data())
def test_bradley_terry_equals_the_reference(batch, data):
    r_a, r_b, rows, labels, space = batch
    margins = data.draw(
        st.none() | st.lists(st.floats(-3, 3), min_size=len(r_a), max_size=len(r_a))
    )
    center = data.draw(st.none() | st.floats(0, 1))
    got = bradley_terry_loss(
        t64(r_a),
        t64(r_b),
        labels,
        space=space,
        margin=None if margins is None else t64(margins),
        center_rewards_coefficient=center,
    )
    want = ref.bradley_terry_loss(r_a, r_b, rows, margins, center)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert pairwise_accuracy(t64(r_a), t64(r_b), labels, space=space) == pytest.approx(
        ref.pairwise_accuracy(r_a, r_b, rows), nan_ok=True
    )


# -- probabilities ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@given(batch=batches(rewards=extreme), model=st.sampled_from(TIE_MODELS), data=st.data())
def test_probabilities_are_finite_sum_to_one_and_lie_in_the_unit_interval(
    dtype, batch, model, data
):
    r_a, r_b, _, labels, space = batch
    theta = data.draw(THETAS[model])
    a, b = torch.tensor(r_a, dtype=dtype), torch.tensor(r_b, dtype=dtype)
    log_p = reward_log_probs(a, b, space, model=model, theta=theta)
    assert log_p.dtype == dtype and log_p.shape == (len(r_a), space.k)
    assert torch.isfinite(log_p).all() and (log_p <= 1e-6).all()
    p = log_p.exp()
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(dim=1).double().numpy(), 1.0, rtol=1e-5)
    assert torch.isfinite(tie_nll(a, b, labels, theta, model=model, space=space))
    assert torch.isfinite(bradley_terry_loss(a, b, labels, space=space))


@given(batches(), st.sampled_from(TIE_MODELS), st.data())
def test_swapping_a_and_b_mirrors_probabilities_and_losses(batch, model, data):
    r_a, r_b, _, labels, space = batch
    theta = data.draw(THETAS[model])
    a, b = t64(r_a), t64(r_b)
    kw = dict(model=model, theta=theta)
    p = reward_probs(a, b, space, **kw).numpy()
    p_swapped = reward_probs(b, a, space, **kw).numpy()
    np.testing.assert_allclose(space.unswap_probs(p_swapped), p, rtol=1e-12, atol=1e-300)
    swapped = torch.from_numpy(space.swap_labels(labels.numpy()))
    for loss in (
        lambda x, y, lab: tie_nll(x, y, lab, theta, model=model, space=space),
        lambda x, y, lab: bradley_terry_loss(x, y, lab, space=space, margin=0.5),
    ):
        assert loss(b, a, swapped).item() == pytest.approx(loss(a, b, labels).item(), rel=1e-12)
    assert pairwise_accuracy(b, a, swapped, space=space) == pytest.approx(
        pairwise_accuracy(a, b, labels, space=space), nan_ok=True
    )


@given(st.lists(moderate, min_size=1, max_size=6), st.lists(moderate, min_size=6, max_size=6))
def test_bradley_terry_is_the_tie_models_limit_without_ties(r_a, r_b):
    a, b = t64(r_a), t64(r_b[: len(r_a)])
    bt = reward_probs(a, b, "ab").numpy()
    for model, theta in (("davidson", -60.0), ("rao_kupper", 1e-12)):
        p = tie_log_probs(a, b, theta, model).exp().numpy()
        np.testing.assert_allclose(p[:, :2], bt, rtol=1e-9, atol=1e-15)
        assert (p[:, 2] < 1e-11).all()
        wins = torch.tensor([i % 2 for i in range(len(r_a))])
        assert tie_nll(a, b, wins, theta, model=model, space="ab").item() == pytest.approx(
            bradley_terry_loss(a, b, wins, space="ab").item(), rel=1e-9, abs=1e-11
        )


@given(batches(), st.floats(-4, 4))
def test_ab_columns_are_davidson_renormalised_and_abtx_merges_back_to_abt(batch, theta):
    r_a, r_b, *_ = batch
    a, b = t64(r_a), t64(r_b)
    abt = reward_probs(a, b, "abt", theta=theta).numpy()
    renormalised, lost = map_probs(abt, "abt", "ab")
    assert not lost.any()
    np.testing.assert_allclose(reward_probs(a, b, "ab").numpy(), renormalised, rtol=1e-9)
    for model in TIE_MODELS:
        t = abs(theta) + 0.01
        abt = reward_probs(a, b, "abt", model=model, theta=t).numpy()
        abtx = reward_probs(a, b, "abtx", model=model, theta=t, both_bad_share=0.2).numpy()
        np.testing.assert_allclose(map_probs(abtx, "abtx", "abt")[0], abt, rtol=1e-12)
        np.testing.assert_allclose(abtx[:, 3] / (abtx[:, 2] + abtx[:, 3]), 0.2, rtol=1e-9)


def test_extreme_and_equal_rewards_give_the_limits_without_overflow_or_nan():
    a = torch.tensor([1e4, -1e4, 0.0, 7.0, 1e4], dtype=torch.float32)
    b = torch.tensor([-1e4, 1e4, 0.0, 7.0, 1e4], dtype=torch.float32)
    d = tie_log_probs(a, b, 0.0, "davidson").exp()
    np.testing.assert_allclose(d[:2].numpy(), [[1, 0, 0], [0, 1, 0]], atol=1e-30)
    np.testing.assert_allclose(d[2:].numpy(), 1 / 3, rtol=1e-6)  # nu = 1: uniform
    rk = tie_log_probs(a, b, math.log(2), "rao_kupper").exp()
    np.testing.assert_allclose(rk[2:, 2].numpy(), 1 / 3, rtol=1e-6)  # tanh(log(2) / 2)
    np.testing.assert_allclose(rk[:2].numpy(), [[1, 0, 0], [0, 1, 0]], atol=1e-30)
    assert bradley_terry_loss(a[:1], b[:1]).item() == 0.0
    assert bradley_terry_loss(b[:1], a[:1]).item() == pytest.approx(2e4)


def test_the_kaggle_log_loss_of_the_probabilities_is_the_tie_models_nll():
    a, b = t64([0.3, -1.0, 2.0, 0.0]), t64([0.0, 0.5, -2.0, 0.0])
    labels = torch.tensor([0, 1, 2, 2])
    for model, theta in (("davidson", -0.4), ("rao_kupper", 0.9)):
        p = reward_probs(a, b, "abt", model=model, theta=theta).numpy()
        onehot = np.eye(3)[labels.numpy()]
        want = tie_nll(a, b, labels, theta, model=model).item()
        assert log_loss(p, onehot) == pytest.approx(want, rel=1e-9)
    # Half-precision rewards are promoted: the loss is float32.
    half = bradley_terry_loss(a.bfloat16(), b.bfloat16(), labels)
    assert half.dtype == torch.float32


# -- gradients ------------------------------------------------------------------------------

POINTS = [(0.0, 0.0), (3.0, 3.0), (1e4, -1e4), (-1e4, 1e4), (1e4, 1e4), (0.5, -2.0)]


@pytest.mark.parametrize(
    "model,theta",
    [("davidson", -1.5), ("davidson", 2.0), ("rao_kupper", 0.05), ("rao_kupper", 3.0)],
)
def test_gradients_pass_gradcheck_and_are_finite_at_extreme_and_equal_rewards(model, theta):
    a = t64([p[0] for p in POINTS]).requires_grad_()
    b = t64([p[1] for p in POINTS]).requires_grad_()
    t = torch.tensor(theta, dtype=F64, requires_grad=True)
    soft = torch.softmax(torch.arange(len(POINTS) * 3, dtype=F64).reshape(-1, 3).cos(), dim=1)
    margin = t64([0.5] * len(POINTS))

    def losses(x, y, th):
        return (
            tie_nll(x, y, soft, th, model=model, space="abt"),
            bradley_terry_loss(x, y, soft, space="abt", margin=margin),
            tie_log_probs(x, y, th, model).sum(),
        )

    assert torch.autograd.gradcheck(losses, (a, b, t), fast_mode=True)
    for f32 in (False, True):
        x, y, th = ((v.detach().float() if f32 else v.detach()).requires_grad_() for v in (a, b, t))
        # Centering (a polynomial, 4e6 at these rewards: too large for finite
        # differences) joins the finiteness check only.
        total = sum(losses(x, y, th)) + center_penalty(x, y, 0.01)
        grads = torch.autograd.grad(total, (x, y, th))
        assert all(torch.isfinite(g).all() for g in grads)


# -- margin, centering, soft labels -------------------------------------------------------------


def test_margin_and_centering_change_the_loss_as_trl_defines_them():
    a, b = t64([2.0, -1.0, 0.5]), t64([1.0, 0.0, 0.5])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    plain = -sum(math.log(sig(x - y)) for x, y in zip(a.tolist(), b.tolist())) / 3
    assert bradley_terry_loss(a, b).item() == pytest.approx(plain, rel=1e-12)
    m = [1.0, 0.0, 2.0]
    want = -sum(math.log(sig(x - y - mm)) for x, y, mm in zip(a.tolist(), b.tolist(), m)) / 3
    assert bradley_terry_loss(a, b, margin=t64(m)).item() == pytest.approx(want, rel=1e-12)
    one = -sum(math.log(sig(x - y - 1.0)) for x, y in zip(a.tolist(), b.tolist())) / 3
    assert bradley_terry_loss(a, b, margin=1.0).item() == pytest.approx(one, rel=1e-12)
    center = 0.01 * ((2 + 1) ** 2 + (-1 + 0) ** 2 + (0.5 + 0.5) ** 2) / 3
    assert center_penalty(a, b, 0.01).item() == pytest.approx(center, rel=1e-12)
    with_center = bradley_terry_loss(a, b, center_rewards_coefficient=0.01).item()
    assert with_center == pytest.approx(plain + center, rel=1e-12)
    nll = tie_nll(a, b, None, 0.3).item()
    assert tie_nll(a, b, None, 0.3, center_rewards_coefficient=0.01).item() == pytest.approx(
        nll + center, rel=1e-12
    )
    # Shifting every reward leaves the pairwise terms alone; only centering sees it.
    assert bradley_terry_loss(a + 5, b + 5).item() == pytest.approx(plain, rel=1e-12)
    assert center_penalty(a - 0.75, b - 0.75, 1.0) < center_penalty(a, b, 1.0)


@given(batches(hard=False), st.sampled_from(TIE_MODELS), st.data())
def test_soft_labels_are_the_expectation_of_hard_ones(batch, model, data):
    r_a, r_b, rows, labels, space = batch
    theta = data.draw(THETAS[model])
    a, b = t64(r_a), t64(r_b)
    margin = t64(data.draw(st.lists(st.floats(-2, 2), min_size=len(r_a), max_size=len(r_a))))
    for loss in (
        lambda x, y, lab, m: tie_nll(x, y, lab, theta, model=model, space=space),
        lambda x, y, lab, m: bradley_terry_loss(x, y, lab, space=space, margin=m),
    ):
        for i, row in enumerate(rows):
            one = slice(i, i + 1)
            expected = sum(
                row[c] * loss(a[one], b[one], torch.tensor([c]), margin[one]).item()
                for c in range(space.k)
            )
            got = loss(a[one], b[one], labels[one], margin[one]).item()
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_both_bad_is_a_tie_for_the_likelihood_and_half_a_win_each_for_bradley_terry():
    a, b = t64([1.0, -2.0]), t64([0.0, 0.5])
    tie, both_bad = torch.tensor([2, 2]), torch.tensor([3, 3])
    for model, theta in (("davidson", 0.2), ("rao_kupper", 0.8)):
        kw = dict(model=model, space="abtx")
        assert tie_nll(a, b, both_bad, theta, **kw).item() == tie_nll(a, b, tie, theta, **kw).item()
    assert bradley_terry_loss(a, b, both_bad, space="abtx").item() == pytest.approx(
        bradley_terry_loss(a, b, t64([[0.5, 0.5, 0, 0]] * 2), space="abtx").item(), rel=1e-12
    )
    # Pairwise accuracy leaves ties and both_bad out, counts equal rewards as wrong.
    labels = torch.tensor([0, 1, 2, 3, 0])
    r_a, r_b = t64([1.0, 1.0, 5.0, 5.0, 2.0]), t64([0.0, 2.0, 0.0, 0.0, 2.0])
    assert pairwise_accuracy(r_a, r_b, labels, space="abtx") == pytest.approx(2 / 3)
    assert math.isnan(pairwise_accuracy(r_a[2:4], r_b[2:4], labels[2:4], space="abtx"))
    assert pairwise_accuracy(r_a, r_b) == pytest.approx(3 / 5)  # labels None: A won each pair


# -- the learnable tie parameter ---------------------------------------------------------------


@pytest.mark.parametrize("model", TIE_MODELS)
def test_tie_model_starts_at_its_tie_prob_and_learns_the_tie_rate(model):
    assert TieModel(model).tie_prob_of_equal_rewards() == pytest.approx(1 / 3, rel=1e-6)
    tm = TieModel(model, tie_prob=0.1)
    zero = torch.zeros(1)
    assert tm.log_probs(zero, zero).exp()[0, 2].item() == pytest.approx(0.1, rel=1e-5)
    assert tm.probs(zero, zero, "abtx").sum().item() == pytest.approx(1.0, rel=1e-6)
    # Equal rewards, 40% ties: maximum likelihood puts P(tie | equal) at 0.4.
    labels = torch.tensor([0, 1, 2, 2, 0, 1, 2, 2, 0, 1])
    r = torch.zeros(10)
    opt = torch.optim.LBFGS(tm.parameters(), max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = tm(r, r, labels)
        loss.backward()
        return loss

    opt.step(closure)
    assert tm.tie_prob_of_equal_rewards() == pytest.approx(0.4, abs=1e-4)
    assert model in repr(tm)


def test_rao_kupper_tie_model_stays_valid_when_the_data_has_no_ties():
    tm = TieModel("rao_kupper")
    with torch.no_grad():
        tm.raw.fill_(-200.0)  # softplus underflows to 0 in float32
    assert tm.theta.item() > 0
    loss = tm(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), "ab")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(tm.raw.grad)


# -- errors ---------------------------------------------------------------------------------------


def test_bad_input_is_a_clear_error():
    a, b = t64([0.0, 1.0]), t64([1.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        tie_nll(a, t64([1.0]), None, 0.0)
    with pytest.raises(ValueError, match=r"\(n,\)"):
        bradley_terry_loss(a[:, None], b[:, None])
    with pytest.raises(ValueError, match="floating"):
        bradley_terry_loss(torch.tensor([1, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="row 1: class id 2 is outside label space 'ab'"):
        bradley_terry_loss(a, b, torch.tensor([0, 2]), space="ab")
    with pytest.raises(ValueError, match="outside label space 'abt'"):
        tie_nll(a, b, torch.tensor([-1, 0]), 0.0)
    with pytest.raises(ValueError, match="integers"):
        tie_nll(a, b, t64([0.0, 1.0]), 0.0)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        tie_nll(a, b, t64([[0.5, 0.5, 0.0]] * 2), 0.0, space="abtx")
    with pytest.raises(ValueError, match="2 rows for"):
        tie_nll(t64([0.0]), t64([0.0]), torch.tensor([0, 1]), 0.0)
    with pytest.raises(ValueError, match="margin"):
        bradley_terry_loss(a, b, margin=t64([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="empty"):
        bradley_terry_loss(t64([]), t64([]))
    for theta in (math.nan, math.inf, torch.tensor(-math.inf)):
        with pytest.raises(ConfigError, match="finite"):
            tie_log_probs(a, b, theta)
    with pytest.raises(ConfigError, match="> 0"):
        tie_log_probs(a, b, 0.0, "rao_kupper")
    with pytest.raises(ConfigError, match="> 0"):  # positive, but 0 in float32
        tie_log_probs(a.float(), b.float(), 1e-50, "rao_kupper")
    with pytest.raises(ConfigError, match="tie model"):
        tie_log_probs(a, b, 0.0, "thurstone")
    with pytest.raises(ConfigError, match="theta"):
        reward_probs(a, b, "abt")
    with pytest.raises(ConfigError, match="both_bad_share"):
        reward_probs(a, b, "abtx", theta=0.0, both_bad_share=0.0)
    with pytest.raises(ConfigError, match="label space"):
        reward_probs(a, b, "abx", theta=0.0)
    with pytest.raises(ConfigError, match="center_rewards_coefficient"):
        bradley_terry_loss(a, b, center_rewards_coefficient=-0.1)
    with pytest.raises(ConfigError, match="margin"):
        bradley_terry_loss(a, b, margin=math.nan)
    with pytest.raises(ConfigError, match="tie_prob"):
        TieModel(tie_prob=1.0)


@pytest.mark.gpu
@pytest.mark.parametrize("model", TIE_MODELS)
def test_cuda_rewards_with_cpu_labels_give_the_cpu_losses(model):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    a, b = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([0.0, 0.5, -2.0, 0.0])
    labels, margin = torch.tensor([0, 1, 2, 0]), torch.tensor([0.1, 0.2, 0.0, 0.3])
    tm = TieModel(model, tie_prob=0.3)
    want = (tm(a, b, labels, "abt", 0.01), bradley_terry_loss(a, b, labels, margin=margin))
    tm_cuda = TieModel(model, tie_prob=0.3).cuda()
    a_cuda, b_cuda = a.cuda().requires_grad_(), b.cuda().requires_grad_()
    got = (
        tm_cuda(a_cuda, b_cuda, labels, "abt", 0.01),
        bradley_terry_loss(a_cuda, b_cuda, labels, margin=margin.cuda()),
    )
    for g, w in zip(got, want):
        assert g.device.type == "cuda"
        assert g.item() == pytest.approx(w.item(), rel=1e-5)
    sum(got).backward()
    assert torch.isfinite(a_cuda.grad).all() and torch.isfinite(tm_cuda.raw.grad)
    probs = tm_cuda.probs(a_cuda, b_cuda, "abtx").detach().cpu()
    np.testing.assert_allclose(probs.sum(dim=1).numpy(), 1.0, rtol=1e-6)
    accuracy = pairwise_accuracy(a_cuda, b_cuda, labels)
    assert accuracy == pairwise_accuracy(a, b, labels)
