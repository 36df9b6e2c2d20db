"""Which evaluation a run keeps (`save: best|last`), early stopping,
`eval_every`, and `max_steps` sizing the schedule and ending evaluated
(issue 15, point 3). The held-out log loss is scripted (the real
evaluation runs, its score is replaced) so that the best one is known."""

from __future__ import annotations

import json

import polars as pl
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from safetensors.torch import load_file  # noqa: E402

import arena_fast.train as train_module  # noqa: E402
from arena_fast.cli import main as cli_main  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.runs import read_bundle  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("best")
    return build_rows(keyword_rows(200, 0), root, max_length=128, folds=5, swap=False)


class Scripted:
    """`train`'s held-out evaluation with `loss(step)` as its log loss (the
    real evaluation runs); remembers, per evaluated step, the head's
    weights and the predictions the evaluation wrote. `log` follows the
    steps (log_every 1)."""

    def __init__(self, monkeypatch, loss):
        self.loss, self.heads, self.probs, self.step = loss, {}, {}, 0
        real = train_module.evaluate

        def evaluate(model, data, layout, max_tokens, predictions=None):
            result = real(model, data, layout, max_tokens, predictions=predictions)
            self.heads[self.step] = {k: v.clone() for k, v in model.head.state_dict().items()}
            self.probs[self.step] = pl.read_parquet(predictions)
            return {**result, "log_loss": self.loss(self.step)}

        monkeypatch.setattr(train_module, "evaluate", evaluate)

    def log(self, record: dict) -> None:
        if "loss" in record:
            self.step = record["step"]


def _run(data, out, script=None, **kw):
    logs = []

    def log(record):
        logs.append(record)
        if script is not None:
            script.log(record)

    config = dict(data=str(data), max_tokens=512, lr=3e-3, log_every=1, out=str(out))
    result = train(TrainConfig(**{**config, **kw}), log=log)
    return result, logs


def _head(run):
    return load_file(str(run / "head.safetensors"))


def _same_head(run, expected):
    saved = _head(run)
    return set(saved) == set(expected) and all(torch.equal(saved[k], expected[k]) for k in expected)


def test_settings_need_a_fold_and_a_known_choice(small_dataset):
    base = {"data": str(small_dataset)}
    for kw, words in [
        ({"fold": None, "save": "best"}, "save: best keeps"),
        ({"fold": None, "early_stopping": 2}, "early_stopping counts"),
        ({"fold": None, "eval_every": 5}, "eval_every evaluates"),
        ({"save": "first"}, "save must be one of"),
        ({"early_stopping": 0}, "early_stopping must be >= 1"),
        ({"eval_every": 0}, "eval_every must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=words):
            TrainConfig(**base, **kw).validate()
    assert TrainConfig(**base).save_mode() == "best"
    assert TrainConfig(**base, fold=None).save_mode() == "last"
    TrainConfig(**base, fold=None, save="last").validate()


def test_cli_offers_the_settings_with_help(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--save", "--early-stopping", "--eval-every"):
        assert flag in text
    assert "lowest held-out log loss" in text


@pytest.mark.slow
def test_the_best_evaluation_is_saved_not_the_last(small_dataset, tmp_path, monkeypatch):
    """Epoch 1 scores best; epoch 2 is worse: the run keeps epoch 1's
    weights and predictions, and says so in metrics.jsonl."""
    losses = {}

    def loss(step):
        losses.setdefault(step, [0.7, 0.3, 0.9][len(losses)])
        return losses[step]

    script = Scripted(monkeypatch, loss)
    out = tmp_path / "run"
    result, logs = _run(small_dataset, out, script, epochs=3)
    evals = [r for r in logs if r.get("eval")]
    assert [r["log_loss"] for r in evals] == [0.7, 0.3, 0.9]
    best_step = evals[1]["step"]
    assert result["step"] == best_step and result["log_loss"] == 0.3
    assert _same_head(out, script.heads[best_step])
    assert not _same_head(out, script.heads[evals[2]["step"]])
    kept = pl.read_parquet(out / "valid_predictions.parquet")
    assert kept.equals(script.probs[best_step])
    assert [r["best"] for r in evals] == [True, True, False]
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["saved"] == "best" and records[-1]["kept"]["step"] == best_step
    read_bundle(out)  # a finished run whose files are the kept ones
    assert not list(out.glob("checkpoint*"))  # no checkpoints asked: nothing left beside

    # save: last keeps the last evaluation's weights and predictions.
    losses.clear()
    result, logs = _run(small_dataset, tmp_path / "last", script, epochs=3, save="last")
    last_step = [r for r in logs if r.get("eval")][-1]["step"]
    assert result["step"] == last_step and result["log_loss"] == 0.9
    assert _same_head(tmp_path / "last", script.heads[last_step])


def test_max_steps_sizes_the_schedule_and_ends_evaluated(small_dataset, tmp_path):
    result, logs = _run(small_dataset, tmp_path / "run", epochs=2, max_steps=5, warmup=0.0)
    steps = [r for r in logs if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5]
    # The cosine ends at 0 on the last step (it was 0.9x the rate there).
    assert steps[-1]["lr"] < 1e-6 < steps[-2]["lr"]
    evals = [r for r in logs if r.get("eval")]
    assert evals and evals[-1]["step"] == 5 and result["step"] == 5
    assert {"stopped": "max_steps", "step": 5} == {
        k: v for k, v in logs[-2].items() if k in ("stopped", "step")
    }


def test_early_stopping_stops_after_patience(small_dataset, tmp_path, monkeypatch):
    """Evaluated every step: the first is best, the next two are worse, so
    patience 2 stops at step 3 and keeps step 1's weights."""
    script = Scripted(monkeypatch, lambda step: 0.5 + step / 10)
    out = tmp_path / "run"
    result, logs = _run(small_dataset, out, script, epochs=3, eval_every=1, early_stopping=2)
    assert [r["step"] for r in logs if "loss" in r] == [1, 2, 3]
    assert [r["step"] for r in logs if r.get("eval")] == [1, 2, 3]
    assert any(r.get("stopped") == "early_stopping" for r in logs)
    assert result["step"] == 1
    assert _same_head(out, script.heads[1])


@pytest.mark.slow
def test_the_best_weights_survive_a_resume(small_dataset, tmp_path, monkeypatch):
    """A run killed after its best evaluation and resumed from its
    checkpoint keeps that evaluation, as the uninterrupted run does."""
    script = Scripted(monkeypatch, lambda step: 0.1 if step == 4 else 1 + step / 100)
    settings = dict(epochs=2, eval_every=2, checkpoint_every=3)
    whole, _ = _run(small_dataset, tmp_path / "whole", script, **settings)
    assert whole["step"] == 4
    best_head = script.heads[4]

    class Killed(Exception):
        pass

    def kill_at_7(record):  # after the checkpoint of step 6
        script.log(record)
        if record.get("step") == 7 and "loss" in record:
            raise Killed

    out = tmp_path / "cut"
    config = dict(data=str(small_dataset), max_tokens=512, lr=3e-3, log_every=1, out=str(out))
    with pytest.raises(Killed):
        train(TrainConfig(**config, **settings), log=kill_at_7)
    assert (out / "checkpoint.best" / "head.safetensors").is_file()
    script.heads.clear()
    resumed, logs = _run(small_dataset, out, script, resume=True, **settings)
    assert 4 not in script.heads  # not evaluated again: kept from before the kill
    assert resumed == whole
    assert _same_head(out, best_head) and _same_head(tmp_path / "whole", best_head)
    read_bundle(out)


def test_selection_counts_and_reads_back_its_state(tmp_path):
    """`save: last` with patience 2: the best record, the evaluations since
    it and the last step counted survive into a resumed run's selection; an
    evaluation it repeats changes nothing; a damaged file is a ConfigError."""
    from arena_fast.selection import SELECTION, Selection

    first = Selection(tmp_path, "last", 2)
    flags = [first.add(None, {"step": s, "log_loss": x})["best"] for s, x in [(2, 0.5), (4, 0.6)]]
    assert flags == [True, False] and not first.should_stop()
    again = Selection(tmp_path, "last", 2)
    again.start(resumed=True)
    assert (again.best["step"], again.since, again.evaluated) == (2, 1, 4)
    assert again.add(None, {"step": 4, "log_loss": 0.1}).get("repeated")  # already counted
    assert again.best["step"] == 2 and not again.should_stop()
    again.add(None, {"step": 6, "log_loss": 0.7})
    assert again.should_stop()
    for text in ("[1]", '{"best": null, "since": "1", "evaluated": 4}', "{"):
        (tmp_path / SELECTION).write_text(text)
        with pytest.raises(ConfigError, match=SELECTION):
            Selection(tmp_path, "last", 2).start(resumed=True)
    Selection(tmp_path, "last", 2).start(resumed=False)  # a fresh start removes it
    assert not (tmp_path / SELECTION).exists()
