"""Reward models as a setting of `TrainConfig` (`objective="reward"`): the
settings, the scalar head and its tie parameter, the loss of a step, the
refusals, and the held-out evaluation (docs/reward.md, "Training a reward
model"). Units on hand-made pair batches and on a cross dataset loaded with
both orders standing in for pairs; the end-to-end runs are in
tests/test_reward_demo.py."""

from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast import diagnostics  # noqa: E402
from arena_fast.cli import main as cli_main  # noqa: E402
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.errors import ArenaFastError, ConfigError  # noqa: E402
from arena_fast.infer import evaluate  # noqa: E402
from arena_fast.labels import label_space  # noqa: E402
from arena_fast.model import RewardHead, classifier_for  # noqa: E402
from arena_fast.objectives import batch_loss, check_objective, pair_positions  # noqa: E402
from arena_fast.reference import reward as ref  # noqa: E402
from arena_fast.reward_losses import (  # noqa: E402
    bradley_terry_loss,
    pairwise_accuracy,
    reward_probs,
    tie_nll,
)
from arena_fast.runs import write_run_config  # noqa: E402
from arena_fast.train import TrainConfig, _optimizer, step_gradients, train  # noqa: E402
from arena_fast.weights import load_checkpoint, load_weights, save_checkpoint, save_weights  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cross_pairs(tmp_path_factory):
    """A cross dataset built with both orders: rows 2i, 2i + 1 stand in for
    a pair's A and B rows in the units of the step (never end to end)."""
    root = tmp_path_factory.mktemp("reward")
    return build_rows(keyword_rows(60, 0), root, max_length=128, folds=5, swap=True)


def _reward(data=".", **kw) -> TrainConfig:
    return TrainConfig(data=str(data), objective="reward", **kw)


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"objective": "regress"}, "objective"),
        ({"objective": "reward", "tie_model": "bt"}, "tie_model"),
        ({"objective": "reward", "reward_margin": -0.5}, "reward_margin"),
        ({"objective": "reward", "reward_margin": float("nan")}, "reward_margin"),
        (
            {"objective": "reward", "center_rewards_coefficient": -1e-3},
            "center_rewards_coefficient",
        ),
        (
            {"objective": "reward", "center_rewards_coefficient": "0.01"},
            "center_rewards_coefficient",
        ),
        ({"objective": "reward", "swap": False}, "swap"),
        # the reward settings on a classifier are a mistake, not ignored
        ({"reward_margin": 1.0}, "reward_margin"),
        ({"center_rewards_coefficient": 0.01}, "center_rewards_coefficient"),
        ({"tie_model": "none"}, "tie_model"),
        ({"tie_lr": 0.5}, "tie_lr"),
        ({"objective": "reward", "tie_lr": 0}, "tie_lr"),
    ],
)
def test_bad_reward_settings_are_config_errors_naming_the_setting(settings, named):
    with pytest.raises(ConfigError, match=named):
        TrainConfig.from_dict({"data": "ds", **settings})


def test_reward_settings_default_to_a_classifier_and_round_trip(tmp_path):
    plain = TrainConfig(data="ds")
    plain.validate()
    assert (plain.objective, plain.tie_model) == ("classify", "davidson")
    assert (plain.reward_margin, plain.center_rewards_coefficient) == (0.0, 0.0)
    assert not plain.reward
    config = _reward(
        "ds", tie_model="rao_kupper", reward_margin=0.5, center_rewards_coefficient=0.01
    )
    config.validate()
    write_run_config(tmp_path, config)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["objective"] == "reward" and saved["tie_model"] == "rao_kupper"
    back = TrainConfig.from_dict(saved)
    assert dataclasses.replace(back, report_to=()) == config


def test_cli_offers_the_reward_flags(capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--objective", "--tie-model", "--reward-margin", "--center-rewards-coefficient"):
        assert flag in text
    assert "TRL recommends 0.01" in text
    # the flags reach TrainConfig (train itself replaced: no dataset here)
    import arena_fast.train as train_module

    seen = []
    monkeypatch.setattr(train_module, "train", lambda config, **kw: seen.append(config) or {})
    argv = ["train", "--data", "ds", "--objective", "reward", "--tie-model", "none"]
    argv += ["--reward-margin", "0.25", "--center-rewards-coefficient", "0.01", "--quiet"]
    assert cli_main(argv) == 0
    (config,) = seen
    assert config.reward and config.tie_model == "none"
    assert (config.reward_margin, config.center_rewards_coefficient) == (0.25, 0.01)
    assert cli_main(["train", "--data", "ds", "--tie-model", "rao", "--objective", "reward"]) == 1
    assert "tie_model" in capsys.readouterr().err


# -- the head and its tie parameter --------------------------------------------------------


@pytest.mark.parametrize("head", ["linear", "mlp"])
@pytest.mark.parametrize("tie_model", ["davidson", "rao_kupper", "none"])
def test_a_reward_model_has_a_scalar_head_and_a_float32_tie_parameter(cross_pairs, head, tie_model):
    data = load_dataset(cross_pairs)
    config = _reward(cross_pairs, head=head, tie_model=tie_model)
    model = classifier_for(config, data.tokenizer(), data.space.k)
    assert model.is_reward and isinstance(model.head, RewardHead)
    assert model.num_classes == 1
    tie = dict(model.trainable_parameters())["head.tie.raw"]
    assert tie.dtype == torch.float32 and tie.shape == ()
    assert model.head.tie.model == ("davidson" if tie_model == "none" else tie_model)
    from arena_fast.torch.data import ArenaBatches

    batch = ArenaBatches(data.encoded, data.labels, "padded", pad_id=model.pad_id)[np.arange(4)]
    assert model(batch).shape == (4, 1)
    # a classifier of the same settings is what it always was
    plain = classifier_for(dataclasses.replace(config, objective="classify", tie_model="davidson"),
                           data.tokenizer(), 3)  # fmt: skip
    assert not plain.is_reward and plain.head.out_features if head == "linear" else True


def test_set_classes_still_takes_label_space_widths_only(cross_pairs):
    data = load_dataset(cross_pairs)
    model = classifier_for(TrainConfig(data=str(cross_pairs)), data.tokenizer(), 3)
    for width in (0, 1, 5):
        with pytest.raises(ArenaFastError, match="num_classes: rows of"):
            model.set_classes(width)
    model.set_reward("davidson")
    model.set_classes(2)  # back to a classifier: the reward head is replaced
    assert not model.is_reward and model.num_classes == 2


def test_the_tie_parameter_is_not_decayed_and_is_saved_and_restored(cross_pairs, tmp_path):
    data = load_dataset(cross_pairs)
    config = _reward(cross_pairs, weight_decay=0.1, head_lr=1e-2, tie_lr=0.05)
    model = classifier_for(config, data.tokenizer(), data.space.k)
    optimizer = _optimizer(model, config)
    tie = model.head.tie.raw
    (group,) = [g for g in optimizer.param_groups if any(p is tie for p in g["params"])]
    assert group["weight_decay"] == 0.0 and group["params"] == [tie] and group["lr"] == 0.05
    others = [g for g in optimizer.param_groups if g is not group]
    assert all(g["weight_decay"] == 0.1 for g in others)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(
        model.trainable_parameters()
    )
    # a classifier's optimizer has its two groups, as before
    plain = classifier_for(TrainConfig(data=str(cross_pairs)), data.tokenizer(), 3)
    assert len(_optimizer(plain, TrainConfig(data="ds")).param_groups) == 2

    with torch.no_grad():
        tie.fill_(0.75)
    save_weights(model, tmp_path, step=1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    save_checkpoint(tmp_path / "checkpoint", model, optimizer, scheduler, 3)
    fresh = classifier_for(config, data.tokenizer(), data.space.k)
    assert float(fresh.head.tie.raw.detach()) != 0.75
    load_weights(fresh, tmp_path)
    assert float(fresh.head.tie.raw.detach()) == 0.75
    resumed = classifier_for(config, data.tokenizer(), data.space.k)
    opt2 = _optimizer(resumed, config)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0)
    assert load_checkpoint(tmp_path / "checkpoint", resumed, opt2, sched2) == 3
    assert float(resumed.head.tie.raw.detach()) == 0.75


# -- the loss of a step --------------------------------------------------------------------


def _stub_data(labels, space="abt"):
    return types.SimpleNamespace(labels=labels, space=label_space(space), teacher_logits=None)


@pytest.mark.parametrize("tie_model", ["davidson", "rao_kupper", "none"])
def test_the_loss_of_a_hand_made_batch_is_reward_losses(tie_model):
    """Rows in any order within the batch; the pair's label is row 2i's."""
    torch.manual_seed(0)
    idx = np.array([5, 2, 0, 4, 3, 1])  # pairs (0, 1), (2, 3), (4, 5), shuffled
    rewards = torch.randn(6, 1, dtype=torch.float32, requires_grad=True)
    labels = torch.tensor(np.eye(3)[[0, 0, 1, 1, 2, 2]], dtype=torch.float32)  # rows 0..5
    labels[5] = torch.tensor([0.2, 0.5, 0.3])  # a soft row on a B row: not read
    batch = {"labels": labels[idx]}
    config = _reward(tie_model=tie_model, reward_margin=0.3, center_rewards_coefficient=0.01)
    head = RewardHead("linear", 8, tie_model)
    with torch.no_grad():
        head.tie.raw.fill_(0.4)
    model = types.SimpleNamespace(head=head)
    got = batch_loss(model, rewards, batch, idx, _stub_data(labels), config)

    pos = {int(r): j for j, r in enumerate(idx)}
    r_a = torch.stack([rewards[pos[r], 0] for r in (0, 2, 4)])
    r_b = torch.stack([rewards[pos[r + 1], 0] for r in (0, 2, 4)])
    y = labels[[0, 2, 4]]
    if tie_model == "none":
        want = bradley_terry_loss(r_a, r_b, y, margin=0.3, center_rewards_coefficient=0.01)
        want = want + tie_nll(r_a.detach(), r_b.detach(), y, head.tie.theta)
    else:
        want = tie_nll(
            r_a,
            r_b,
            y,
            head.tie.theta,
            model=tie_model,
            margin=0.3,
            center_rewards_coefficient=0.01,
        )
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    got.backward()
    assert head.tie.raw.grad is not None and torch.isfinite(head.tie.raw.grad)
    assert rewards.grad is not None and torch.isfinite(rewards.grad).all()


def test_a_batch_that_splits_a_pair_is_refused():
    assert [list(x) for x in pair_positions(np.array([3, 2, 0, 1]))] == [[1, 2], [0, 3]]
    for idx in ([0, 1, 2], [0, 2], [1, 2]):
        with pytest.raises(ValueError, match="pair"):
            pair_positions(np.array(idx))


def test_step_gradients_of_a_reward_model_on_pairs(cross_pairs):
    """The step's loss is the mean of the micro-batches' reward losses,
    weighted by their rows, and the tie parameter gets its gradient."""
    data = load_dataset(cross_pairs, swap=True)
    config = _reward(cross_pairs, reward_margin=0.1)
    model = classifier_for(config, data.tokenizer(), data.space.k)
    model.train()
    micro = [np.array([0, 1, 2, 3]), np.array([7, 6, 4, 5, 9, 8])]
    loss, sequences = step_gradients(model, data, micro, "padded", config)
    assert sequences == 10 and model.head.tie.raw.grad is not None
    from arena_fast.torch.data import ArenaBatches

    model.eval()  # no dropout in the tiny models: the same rewards
    batches = ArenaBatches(data.encoded, data.labels, "padded", pad_id=model.pad_id)
    with torch.no_grad():
        want = sum(
            batch_loss(model, model(batches[idx]), batches[idx], idx, data, config).item()
            * len(idx)
            / 10
            for idx in micro
        )
    assert loss == pytest.approx(want, rel=1e-5)


# -- refusals --------------------------------------------------------------------------------


def test_a_reward_run_refuses_a_cross_dataset_naming_it(cross_pairs, tmp_path):
    with pytest.raises(ConfigError, match=r"layout separate.*template chat") as info:
        train(_reward(cross_pairs, out=str(tmp_path / "run")))
    assert str(cross_pairs) in str(info.value)
    assert not (tmp_path / "run" / "bundle.json").exists()


def test_a_reward_run_refuses_teacher_logits():
    data = types.SimpleNamespace(
        path="ds", layout="separate", swapped=True, teacher_logits=[None, [[0.0, 1.0, 0.0]]]
    )
    with pytest.raises(ConfigError, match="ds: .*teacher logits.*distillation"):
        check_objective(_reward(), data)
    data.layout = "cross"
    check_objective(TrainConfig(data="ds"), data)  # a classifier distils as before
    data.layout = "separate"
    data.teacher_logits = None
    check_objective(_reward(), data)


def test_a_classifier_refuses_a_dataset_of_the_separate_layout():
    data = types.SimpleNamespace(path="pairs", layout="separate", swapped=True, teacher_logits=None)
    with pytest.raises(ConfigError, match="pairs: .*separate layout.*objective reward"):
        check_objective(TrainConfig(data="pairs"), data)


# -- the evaluation ---------------------------------------------------------------------------


def test_evaluate_scores_a_reward_model_on_its_pairs(cross_pairs, tmp_path):
    data = load_dataset(cross_pairs, fold=0, split="valid", swap=True)
    config = _reward(cross_pairs, tie_model="rao_kupper")
    model = classifier_for(config, data.tokenizer(), data.space.k)
    result = evaluate(model, data, "padded", 4096, predictions=tmp_path / "p.parquet")
    assert model.training  # left in training mode
    assert "tta_log_loss" not in result  # a reward model is symmetric: no swap TTA
    assert result["rows"] == len(data) // 2
    from arena_fast.infer import predict_logits

    rewards = predict_logits(model, data.encoded, "padded", 4096)[:, 0]
    r_a, r_b = torch.tensor(rewards[0::2]), torch.tensor(rewards[1::2])
    probs = reward_probs(
        r_a, r_b, "abt", model="rao_kupper", theta=model.head.tie.theta.detach().double()
    )
    y = data.labels[0::2].astype(np.float64)
    assert result["log_loss"] == pytest.approx(diagnostics.log_loss(probs.numpy(), y), rel=1e-6)
    assert result["pairwise_accuracy"] == pairwise_accuracy(r_a, r_b, torch.tensor(y))
    assert result["theta"] == pytest.approx(float(model.head.tie.theta.detach()))
    table = diagnostics.read_predictions(tmp_path / "p.parquet")
    assert len(table) == len(data) // 2 and "logits" not in table.columns
    np.testing.assert_allclose(np.stack(table["probs"].to_numpy()), probs.numpy(), rtol=1e-9)


# -- pairwise accuracy, one formula ------------------------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.floats(-5, 5),
            st.floats(-5, 5),
            st.lists(st.floats(0, 1), min_size=3, max_size=3).filter(lambda r: sum(r) > 0.01),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_numpy_pairwise_accuracy_equals_the_reference(pairs):
    r_a = [p[0] for p in pairs]
    r_b = [p[1] for p in pairs]
    rows = [p[2] for p in pairs]
    got = diagnostics.pairwise_accuracy(np.array(r_a), np.array(r_b), np.array(rows))
    assert got == pytest.approx(ref.pairwise_accuracy(r_a, r_b, rows), nan_ok=True)


def test_numpy_pairwise_accuracy_leaves_out_unlabelled_rows_and_counts_equal_as_wrong():
    labels = np.array([[1, 0, 0], [0, 1, 0], [np.nan] * 3, [0, 0, 1], [1, 0, 0]], dtype=float)
    r_a = np.array([2.0, 2.0, 0.0, 5.0, 1.0])
    r_b = np.array([1.0, 1.0, 9.0, 0.0, 1.0])
    # decided: rows 0 (right), 1 (wrong), 4 (equal: wrong)
    assert diagnostics.pairwise_accuracy(r_a, r_b, labels) == pytest.approx(1 / 3)
    assert diagnostics.pairwise_accuracy(r_a, r_b) == pytest.approx(3 / 5)  # A won every pair
    assert np.isnan(diagnostics.pairwise_accuracy(r_a[2:4], r_b[2:4], labels[2:4]))
