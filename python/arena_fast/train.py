"""`af.train.train(config)`: a preference classifier trained on a built
dataset (`build-dataset`), on packed or padded batches planned in Rust.

This is the core loop: layout from the attention implementation, steps
within a token budget with swap pairs kept together, AdamW with separate
learning rates for the decoder (or its LoRA adapters) and the head, cosine
schedule with warmup, cross-entropy on the dataset's label rows (hard labels
are one-hot rows; pseudo-labels are soft) or the distillation mix when the
dataset has teacher logits, and an evaluation of the held-out fold after each
epoch (log loss, accuracy, log loss with swap TTA) written as JSON lines.

The settings are `af.train_config.TrainConfig` (checked before anything is
loaded); the run directory's files are written by `af.runs`. What is not
finite is refused, never saved: a step whose loss is NaN or inf stops the
run with an `ArenaFastError` naming the step, and no `bundle.json` is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .errors import ArenaFastError, ConfigError, InputError
from .runs import (  # noqa: F401 (re-exported: where they were first defined)
    BUNDLE,
    CHECKPOINT,
    LABEL_ORDER,
    PREDICTIONS,
    claiming,
    load_checkpoint,
    read_bundle,
    resume_point,
    save_checkpoint,
    save_weights,
    write_bundle,
    write_bundle_file,
    writing,
)
from .train_config import TrainConfig

__all__ = ["TrainConfig", "train", "evaluate"]


def _check_training_rows(data, rows: np.ndarray, config: TrainConfig) -> None:
    """The rows a run trains on (`rows` of `data`) exist, and their labels and
    teacher logits are finite numbers of the right shape: an InputError
    naming the dataset and row before the model is built, never a crash or a
    NaN loss later."""
    where = f"{data.path}" + (f" (every fold but {config.fold})" if config.fold is not None else "")
    if not len(data):
        raise InputError(f"{data.path}: the dataset holds no rows; nothing to train on")
    if not len(rows):
        raise InputError(f"{where}: no labelled rows to train on")

    def row(i: int) -> str:
        return f"{data.path}: row {i // 2 if data.swapped else i} (id {data.ids[i]!r:.40})"

    labels = data.labels[rows]
    bad = ~(np.isfinite(labels) & (labels >= 0)).all(axis=1)
    if bad.any():
        i = int(rows[np.argmax(bad)])
        raise InputError(f"{row(i)}: labels {data.labels[i].tolist()} are not non-negative numbers")
    if data.teacher_logits is None:
        return
    given = [int(i) for i in rows if data.teacher_logits[i] is not None]
    try:  # one array when every row is well formed (the usual case)
        whole = np.asarray([data.teacher_logits[i] for i in given], dtype=np.float64)
        if whole.ndim == 3 and whole.shape[1] > 0 and whole.shape[2] == 3:
            if np.isfinite(whole).all():
                return
    except (TypeError, ValueError):  # ragged: the loop below names the row
        pass
    teachers = set()
    for i in given:
        value = data.teacher_logits[i]
        if value is None:
            continue
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.zeros((0, 0))
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != 3:
            raise InputError(
                f"{row(i)}: teacher_logits must be one or more rows of 3 numbers, got {value!r:.80}"
            )
        if not np.isfinite(arr).all():
            raise InputError(f"{row(i)}: teacher_logits {arr.tolist()!r:.80} are not finite")
        teachers.add(arr.shape[0])
    if len(teachers) > 1:
        raise InputError(
            f"{where}: rows carry {sorted(teachers)} teachers' logits; distillation needs "
            "the same teachers on every row"
        )


def _plan(lengths: np.ndarray, config: TrainConfig, layout: str, pairs: bool, epoch: int, ranks):
    """This rank's share of an epoch's micro-batches (every rank gets as many)."""
    from .plan import plan_batches, plan_packs

    shard = dict(seed=config.seed, epoch=epoch, world_size=ranks.world, rank=ranks.rank)
    if layout == "packed":
        return plan_packs(lengths, config.max_tokens, pair_swaps=pairs, **shard)
    return plan_batches(lengths, config.max_tokens, order="grouped", pair_swaps=pairs, **shard)


def _batch(encoded, idx: np.ndarray, layout: str, labels: Optional[np.ndarray] = None) -> dict:
    from .collate import collate_packed, collate_padded

    if layout == "packed":
        return collate_packed(encoded, idx, labels)
    return collate_padded(encoded, idx, pad_id=0, side="right", labels=labels)


def evaluate(model, data, layout: str, max_tokens: int, predictions: Optional[Path] = None) -> dict:
    """Log loss and accuracy of `model` on `data` (an `ArenaDataset`; its
    labelled rows), and with swap TTA when it holds both orders. With
    `predictions`, the per-row table (`af.diagnostics`) is written there."""
    from .labels import tta_average
    from .predict import dataset_predictions, predict_logits, prediction_table, probabilities

    logits = predict_logits(model, data.encoded, layout, max_tokens)
    model.train()
    probs = probabilities(logits, data.ids, f"evaluating {data.path}")
    result = _scores(probs, data.labels, data.labelled)
    if data.swapped:
        p = tta_average(probs[0::2], probs[1::2])
        tta = _scores(p, data.labels[0::2], data.labelled[0::2])
        result["tta_log_loss"] = tta["log_loss"]
        result["tta_accuracy"] = tta["accuracy"]
    if predictions is not None:
        from .diagnostics import write_predictions

        write_predictions(predictions, prediction_table(dataset_predictions(data, logits)))
    return result


def _scores(probs: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> dict:
    p = np.clip(probs[labelled], 1e-15, 1.0)
    y = labels[labelled].astype(np.float64)
    if len(p) == 0:
        return {"log_loss": float("nan"), "accuracy": float("nan"), "rows": 0}
    log_loss = float(-(y * np.log(p)).sum(axis=1).mean())
    accuracy = float((p.argmax(axis=1) == y.argmax(axis=1)).mean())
    return {"log_loss": log_loss, "accuracy": accuracy, "rows": int(len(p))}


class _Ranks:
    """The process group a run trains in: one process (`world == 1`), or the
    ranks `torchrun` / `accelerate launch` started (WORLD_SIZE > 1 in the
    environment), on gloo for the CPU and nccl for CUDA."""

    def __init__(self) -> None:
        import os

        import torch

        self.world, self.rank, self.local_rank, self.owned = 1, 0, 0, False
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self.owned = True  # ours to destroy at the end
        self.world, self.rank = dist.get_world_size(), dist.get_rank()
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the ranks (the values themselves with one)."""
        if self.world == 1:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return t.cpu().tolist()

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owned:
            import torch.distributed as dist

            dist.destroy_process_group()


def train(config: TrainConfig, log: Optional[Callable[[dict], None]] = None) -> dict:
    """Train, evaluating the held-out fold after each epoch; returns the last
    evaluation (and writes `metrics.jsonl`, `config.json` and the weights
    under `config.out`).

    Under `torchrun --nproc_per_node N` (or `accelerate launch`) every rank
    trains on its share of each step of the rank-sharded plan, gradients are
    averaged by DistributedDataParallel so that a step's gradient is the mean
    over the sequences of all ranks, and rank 0 alone evaluates, logs and
    writes; the other ranks return {}.

    Before anything is loaded the settings are checked
    (`TrainConfig.validate`) and so is `config.out` (`runs.claiming`: a new
    or empty directory, or a run of arena-fast, which is resumed or
    replaced; never the dataset or a directory holding it), which rank 0
    then holds locked until the run ends."""
    import contextlib

    config.validate()
    ranks = _Ranks()
    try:
        with contextlib.ExitStack() as stack:
            if ranks.main:
                stack.enter_context(claiming(config))
            return _train(config, log, ranks)
    finally:
        ranks.close()


def _train(config: TrainConfig, log: Optional[Callable[[dict], None]], ranks: _Ranks) -> dict:
    import contextlib

    import torch

    from .dataset import load_dataset
    from .model import classifier_for, default_attention
    from .torch.data import resolve_layout

    out_dir = Path(config.out)
    torch.manual_seed(config.seed)
    train_set = (
        load_dataset(config.data, fold=config.fold, split="train", swap=config.swap)
        if config.fold is not None
        else load_dataset(config.data, swap=config.swap)
    )
    valid_set = (
        load_dataset(config.data, fold=config.fold, split="valid", swap=config.swap)
        if config.fold is not None and ranks.main
        else None
    )
    # Train on labelled rows only; swap pairs stay together.
    labelled = train_set.labelled
    pairs = train_set.swapped
    keep = labelled if not pairs else np.repeat(labelled[0::2] & labelled[1::2], 2)
    rows = np.flatnonzero(keep)
    _check_training_rows(train_set, rows, config)
    if config.resume and ranks.main:
        resume_point(out_dir)  # refuses an incomplete one before the model is built
    attn = config.attn_implementation or default_attention()
    layout = resolve_layout(config.layout, attn)
    model = classifier_for(
        dataclasses.replace(config, attn_implementation=attn), train_set.tokenizer()
    )
    if torch.cuda.is_available() and config.quantization is None:
        model.to(torch.device("cuda", ranks.local_rank))
    model.train()
    forward = model
    if ranks.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [ranks.local_rank] if torch.cuda.is_available() else None
        forward = DistributedDataParallel(model, device_ids=device_ids)
        torch.manual_seed(config.seed + ranks.rank)  # dropout differs by rank
    head_params = [p for n, p in model.trainable_parameters() if n.startswith("head.")]
    body_params = [p for n, p in model.trainable_parameters() if not n.startswith("head.")]
    optimizer = torch.optim.AdamW(
        [
            {"params": body_params, "lr": config.lr},
            {"params": head_params, "lr": config.head_lr or config.lr},
        ],
        weight_decay=config.weight_decay,
    )
    lengths = train_set.encoded.lengths.copy()
    plans = [
        _plan(lengths[rows], config, layout, pairs, epoch, ranks) for epoch in range(config.epochs)
    ]
    # Every rank groups micro-batches into the same optimizer steps: by the
    # tokens of all ranks together.
    steps_of = [
        accumulation_steps(np.asarray(ranks.sum([float(t) for t in p.tokens])), config.step_tokens)
        for p in plans
    ]
    total_steps = sum(len(s) for s in steps_of)
    warmup_steps = int(total_steps * config.warmup)

    def lr_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    if ranks.main:
        with writing(out_dir / "config.json"):
            out_dir.mkdir(parents=True, exist_ok=True)
            # Until the run finishes, the directory is not a finished run.
            (out_dir / BUNDLE).unlink(missing_ok=True)
            (out_dir / "config.json").write_text(
                json.dumps(dataclasses.asdict(config), indent=2) + "\n"
            )
    started = time.perf_counter()
    step = 0
    if config.resume:
        # Rank 0 chose the checkpoint (promoting checkpoint.old); all load it.
        ranks.barrier()
        if (out_dir / CHECKPOINT).is_dir():
            step = load_checkpoint(out_dir / CHECKPOINT, model, optimizer, scheduler)
            if step > total_steps:
                raise ConfigError(
                    f"{out_dir / CHECKPOINT}: saved at step {step}, past the {total_steps} "
                    "steps of this run's settings (changed since it was saved?)"
                )
    done = step  # optimizer steps already taken (skipped when resuming)
    if not done and ranks.main:  # a fresh run: no predictions of an earlier one stay behind
        (out_dir / PREDICTIONS).unlink(missing_ok=True)
    last: dict = {}
    stop = False

    def checkpoint() -> None:
        if ranks.main:
            save_checkpoint(out_dir / CHECKPOINT, model, optimizer, scheduler, step)
        ranks.barrier()

    with contextlib.ExitStack() as stack:
        metrics = (
            stack.enter_context(
                open(out_dir / "metrics.jsonl", "a" if done else "w", encoding="utf-8")
            )
            if ranks.main
            else None
        )

        def emit(record: dict) -> None:
            if metrics is None:
                return
            record = {"seconds": round(time.perf_counter() - started, 3), **record}
            with writing(out_dir / "metrics.jsonl"):
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            if log is not None:
                log(record)

        seen = 0
        for epoch, plan in enumerate(plans):
            if seen + len(steps_of[epoch]) <= done:
                seen += len(steps_of[epoch])  # an epoch finished before the resume
                continue
            for micro in steps_of[epoch]:
                seen += 1
                if seen <= done:
                    continue
                optimizer.zero_grad(set_to_none=True)
                step_loss, sequences = step_gradients(
                    forward, train_set, [rows[plan[j]] for j in micro], layout, config, ranks
                )
                if not math.isfinite(step_loss):  # the same sum on every rank: all stop
                    raise ArenaFastError(
                        f"step {step + 1} (epoch {epoch}): the loss is {step_loss}; training "
                        f"stopped and no finished run was written to {out_dir} (a learning "
                        "rate too high for this model, or labels / teacher logits that "
                        "overflow)"
                    )
                optimizer.step()
                scheduler.step()
                step += 1
                if step % config.log_every == 0:
                    emit(
                        {
                            "epoch": epoch,
                            "step": step,
                            "loss": step_loss,
                            "lr": scheduler.get_last_lr()[0],
                            "sequences": int(sequences),
                        }
                    )
                if config.checkpoint_every is not None and step % config.checkpoint_every == 0:
                    checkpoint()
                late = (
                    config.max_seconds is not None
                    and time.perf_counter() - started > config.max_seconds
                )
                # Ranks stop together: one that ran out of time stops them all.
                if ranks.sum([float(late)])[0] > 0 or (
                    config.max_steps is not None and step >= config.max_steps
                ):
                    stop = True
                    break
            if stop and config.checkpoint_every is not None:
                checkpoint()
            if stop:
                break  # interrupted mid-epoch: no evaluation of a partial epoch
            if valid_set is not None and len(valid_set):
                last = {
                    "epoch": epoch,
                    "step": step,
                    **evaluate(
                        model,
                        valid_set,
                        layout,
                        config.max_tokens,
                        predictions=out_dir / PREDICTIONS,
                    ),
                }
                emit({"eval": True, **last})
            ranks.barrier()  # the others wait while rank 0 evaluates
    if ranks.main:
        save_weights(model, out_dir, step)
        write_bundle(out_dir, train_set)
    ranks.barrier()
    return last


def step_gradients(model, data, micro: list, layout: str, config: TrainConfig, ranks=None) -> tuple:
    """Backward passes of one optimizer step over the micro-batches `micro`
    (arrays of row indices of `data`). Each micro-batch's mean loss is
    weighted by its share of the step's sequences, so the gradient is the
    mean over all of them, as one batch holding them all would give; over
    several ranks (`model` wrapped in DistributedDataParallel, which averages
    the ranks' gradients) the share is of all ranks' sequences, and
    gradients are synchronised once, after the last micro-batch. Returns
    (the step's mean loss, its sequences), over all ranks."""
    import contextlib

    world = 1 if ranks is None else ranks.world
    mine = sum(len(idx) for idx in micro)
    sequences = mine if world == 1 else ranks.sum([float(mine)])[0]
    step_loss = 0.0
    for j, idx in enumerate(micro):
        last = j == len(micro) - 1
        quiet = model.no_sync() if world > 1 and not last else contextlib.nullcontext()
        with quiet:
            batch = _batch(data.encoded, idx, layout, data.labels)
            loss = _loss(model(batch), batch, idx, data.teacher_logits, config)
            (loss * (len(idx) * world / sequences)).backward()
        step_loss += loss.item() * len(idx) / sequences
    if world > 1:
        step_loss = ranks.sum([step_loss])[0]
    return step_loss, sequences


def accumulation_steps(plan, step_tokens: Optional[int]) -> list[list[int]]:
    """The plan's micro-batches (a plan, or its tokens per micro-batch)
    grouped into optimizer steps: consecutive micro-batches until their
    tokens reach `step_tokens` (one each when None)."""
    sizes = np.asarray(getattr(plan, "tokens", plan))
    if step_tokens is None:
        return [[j] for j in range(len(sizes))]
    steps: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for j in range(len(sizes)):
        current.append(j)
        tokens += int(sizes[j])
        if tokens >= step_tokens:
            steps.append(current)
            current, tokens = [], 0
    if current:
        steps.append(current)
    return steps


def _loss(logits, batch: dict, idx: np.ndarray, teacher: Optional[list], config: TrainConfig):
    import torch

    from .losses import cross_entropy, distillation_loss

    labels = torch.as_tensor(batch["labels"]).to(logits.device)
    if teacher is not None and all(teacher[i] is not None for i in idx):
        t = torch.tensor([teacher[i] for i in idx], dtype=torch.float32, device=logits.device)
        return distillation_loss(logits, labels, t, temperature=config.temperature)
    return cross_entropy(logits, labels)
