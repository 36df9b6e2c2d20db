"""Checkpoints are plain tensors: resuming from a checkpoint whose state
file carries code refuses it without running the code, and a truncated
weights file is a clear error."""

from __future__ import annotations

import dataclasses
import pickle
import shutil

import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")

from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ckpt")
    data = build_rows(keyword_rows(60, 0), root, max_length=96, folds=2, swap=True)
    config = TrainConfig(
        data=str(data), epochs=2, max_steps=2, checkpoint_every=1, out=str(root / "run")
    )
    train(config)
    return config


def test_a_checkpoint_carrying_code_is_refused_unrun(stopped_run, tmp_path):
    state = tmp_path.parent / "marker"
    checkpoint = tmp_path / "run" / "checkpoint"
    shutil.copytree(stopped_run.out, tmp_path / "run")
    with open(checkpoint / "state.pt", "wb") as f:
        pickle.dump({"optimizer": _Payload(str(state))}, f, protocol=2)
    config = dataclasses.replace(stopped_run, out=str(tmp_path / "run"), resume=True, max_steps=3)
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        train(config)
    assert not state.exists()  # the payload never ran


def test_a_truncated_checkpoint_is_a_clear_error(stopped_run, tmp_path):
    shutil.copytree(stopped_run.out, tmp_path / "run")
    weights = tmp_path / "run" / "checkpoint" / "trained.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    config = dataclasses.replace(stopped_run, out=str(tmp_path / "run"), resume=True, max_steps=3)
    with pytest.raises(ConfigError, match="trained.safetensors|not a readable checkpoint"):
        train(config)
