"""One rank of the 2-process gloo runs in test_ddp.py, started by torchrun.

    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        tests/_ddp_worker.py train OUT '{"data": ..., ...}'
    ... tests/_ddp_worker.py grad OUT DATASET

`train`: `af.train.train` with the given TrainConfig, recording the rows
each rank trained on into OUT/rank{R}.json. `grad`: one accumulated step of
`step_gradients` over uneven shares of 24 rows (rank 0: two micro-batches of
8 and 4 rows, rank 1: one of 12), the resulting gradients of rank 0 saved
to OUT/grad.safetensors with the step's loss."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from arena_fast import train as training
from arena_fast.torch.ranks import Ranks


def record_and_train(out: Path, settings: dict) -> None:
    seen: list[list[int]] = []
    real = training.step_gradients

    def recording(model, data, micro, layout, config, ranks=None):
        seen.append([int(i) for idx in micro for i in idx])
        return real(model, data, micro, layout, config, ranks)

    training.step_gradients = recording
    training.train(training.TrainConfig(**settings))
    (out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(seen))


def one_step(out: Path, dataset: str) -> None:
    from safetensors.torch import save_file
    from torch.nn.parallel import DistributedDataParallel

    from arena_fast.dataset import load_dataset
    from arena_fast.model import load_classifier

    ranks = Ranks()
    data = load_dataset(dataset, fold=0, split="train")
    model = load_classifier("tiny-gemma2", tokenizer=data.tokenizer(), seed=1)
    rows = np.arange(24)
    share = [rows[:8], rows[8:12]] if ranks.rank == 0 else [rows[12:]]
    config = training.TrainConfig(data=dataset)
    loss, sequences = training.step_gradients(
        DistributedDataParallel(model), data, share, "packed", config, ranks
    )
    if ranks.main:
        grads = {n: p.grad.contiguous() for n, p in model.named_parameters()}
        save_file(grads, str(out / "grad.safetensors"))
        (out / "grad.json").write_text(json.dumps({"loss": loss, "sequences": sequences}))
    ranks.close()


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "train":
        record_and_train(out, json.loads(sys.argv[3]))
    else:
        one_step(out, sys.argv[3])
