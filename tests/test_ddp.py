"""Multi-process training: 2 CPU processes on the gloo backend, started by
torchrun as a user would, each fed its share of the rank-sharded plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

WORKER = Path(__file__).with_name("_ddp_worker.py")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    return build_rows(keyword_rows(600, 0), root, max_length=128, folds=5, swap=True)


def _torchrun(*args: str, timeout: float = 300) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(WORKER), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]


def test_two_ranks_give_the_gradient_of_one_batch(dataset, tmp_path):
    """Uneven shares (rank 0: 8 + 4 rows in two micro-batches, rank 1: 12)
    sum to the gradient one process computes over all 24 rows."""
    from safetensors.torch import load_file

    from arena_fast.model import load_classifier
    from arena_fast.train import step_gradients

    _torchrun("grad", str(tmp_path), str(dataset))
    data = load_dataset(dataset, fold=0, split="train")
    torch.set_num_threads(1)
    model = load_classifier("tiny-gemma2", tokenizer=data.tokenizer(), seed=1)
    loss, sequences = step_gradients(
        model, data, [np.arange(24)], "packed", TrainConfig(data=str(dataset))
    )
    got = json.loads((tmp_path / "grad.json").read_text())
    assert got["sequences"] == sequences == 24
    assert got["loss"] == pytest.approx(loss, rel=1e-6)
    grads = load_file(str(tmp_path / "grad.safetensors"))
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-6, rtol=1e-4)


def test_two_process_run_sees_disjoint_shares_and_reaches_the_same_loss(dataset, tmp_path):
    settings = dict(data=str(dataset), epochs=3, lr=3e-3, log_every=1, seed=0)
    single = train(TrainConfig(**settings, max_tokens=2048, out=str(tmp_path / "one")))
    # Half the tokens per rank: about the same global step.
    ddp = {**settings, "max_tokens": 1024, "out": str(tmp_path / "two")}
    _torchrun("train", str(tmp_path), json.dumps(ddp))

    shares = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1])  # the same number of steps
    records = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if r.get("eval")]
    assert len(steps) == len(shares[0]) and len(evals) == 3  # rank 0 alone logs
    n = len(load_dataset(dataset, fold=0, split="train"))
    for epoch in range(3):
        mine = [
            sorted(i for s, rows in zip(steps, shares[r]) if s["epoch"] == epoch for i in rows)
            for r in (0, 1)
        ]
        assert not set(mine[0]) & set(mine[1])  # disjoint
        assert sorted(mine[0] + mine[1]) == list(range(n))  # every row once per epoch
        assert abs(len(mine[0]) - len(mine[1])) <= 0.2 * n  # a fair share each
        # Logged for the whole step: every row of the epoch counted once.
        assert sum(s["sequences"] for s in steps if s["epoch"] == epoch) == n
    # The same data and schedule: both learn the rule, to about the same loss
    # (the steps hold other rows, so the curves are not identical).
    assert single["log_loss"] <= 0.5 and evals[-1]["log_loss"] <= 0.5
    assert abs(evals[-1]["log_loss"] - single["log_loss"]) <= 0.15
    assert (tmp_path / "two" / "bundle.json").is_file()
