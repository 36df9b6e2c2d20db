"""`af.train.train(config)`: a preference classifier trained on a built
dataset (`build-dataset`), on packed or padded batches planned in Rust; or,
with `objective="reward"`, a reward model on a dataset of the separate
layout (the loss of each objective is `af.objectives`'; docs/reward.md).

This is the core loop: layout from the attention implementation, steps
within a token budget with swap pairs kept together, AdamW with separate
learning rates for the decoder (or its LoRA adapters) and the head, cosine
schedule with warmup, cross-entropy on the dataset's label rows (hard labels
are one-hot rows; pseudo-labels are soft) or the distillation mix when the
dataset has teacher logits, and an evaluation of the held-out fold after each
epoch, every `eval_every` steps and when the run stops early (log loss,
accuracy, log loss with swap TTA) written as JSON lines; the run keeps the
best evaluation's weights or the last (`save`, `af.selection`) and may stop
early (`early_stopping`).

The settings are `af.train_config.TrainConfig` (checked before anything is
loaded); the run directory's format is `af.runs`, its tensors `af.weights`;
batches are planned and collated by `arena_fast.torch` (`PlanSampler`,
`ArenaBatches`), the evaluation is `af.infer.evaluate`. What is not
finite is refused, never saved: a step whose loss is NaN or inf stops the
run with an `ArenaFastError` naming the step, and no `bundle.json` is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from .dataset import load_dataset
from .errors import ArenaFastError, ConfigError, InputError
from .infer import evaluate
from .model import classifier_for, default_attention
from .objectives import batch_loss, check_objective
from .runs import (  # noqa: F401 (re-exported: where they were first defined)
    BUNDLE,
    CHECKPOINT,
    CONFIG,
    LABEL_ORDER,
    METRICS,
    PREDICTIONS,
    claiming,
    read_bundle,
    resume_point,
    write_bundle,
    write_bundle_file,
    write_run_config,
    writing,
)
from .selection import Selection
from .torch.data import ArenaBatches, PlanSampler, resolve_layout
from .torch.ranks import Ranks
from .tracking import check_available, tracking
from .train_config import TrainConfig
from .weights import load_checkpoint, save_checkpoint

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
    k = data.space.k
    try:  # one array when every row is well formed (the usual case)
        whole = np.asarray([data.teacher_logits[i] for i in given], dtype=np.float64)
        if whole.ndim == 3 and whole.shape[1] > 0 and whole.shape[2] == k:
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
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != k:
            raise InputError(
                f"{row(i)}: teacher_logits must be one or more rows of {k} numbers (label space "
                f"{data.space.name!r}), got {value!r:.80}"
            )
        if not np.isfinite(arr).all():
            raise InputError(f"{row(i)}: teacher_logits {arr.tolist()!r:.80} are not finite")
        teachers.add(arr.shape[0])
    if len(teachers) > 1:
        raise InputError(
            f"{where}: rows carry {sorted(teachers)} teachers' logits; distillation needs "
            "the same teachers on every row"
        )


def train(
    config: TrainConfig,
    log: Optional[Callable[[dict], None]] = None,
    progress: Optional[Callable[[dict], None]] = None,
) -> dict:
    """Train, evaluating the held-out fold after each epoch (and every
    `eval_every` steps); returns the kept evaluation's record (`save`: the
    best or the last; {} without a fold) and writes `metrics.jsonl`,
    `config.json` and the kept weights under `config.out`.

    Under `torchrun --nproc_per_node N` (or `accelerate launch`) every rank
    trains on its share of each step of the rank-sharded plan, gradients are
    averaged by DistributedDataParallel so that a step's gradient is the mean
    over the sequences of all ranks, and rank 0 alone evaluates, logs and
    writes; the other ranks return {}.

    Before anything is loaded the settings are checked
    (`TrainConfig.validate`) and so is `config.out` (`runs.claiming`: a new
    or empty directory, or a run of arena-fast, which is resumed or
    replaced; never the dataset or a directory holding it), which rank 0
    then holds locked until the run ends.

    The records `log` gets are also sent to the trackers `report_to` names
    (`af.tracking`; a tracker whose package is missing is a ConfigError
    before anything is loaded). `progress`, when given, gets `{"step": n,
    "total": t}` (with the step's `loss` and `lr` after a step) when the
    run starts and after each optimizer step, and `{"stage": "evaluate",
    "step": n}` before each held-out evaluation (docs/training.md)."""
    config.validate()
    check_available(config)
    ranks = Ranks()
    try:
        with contextlib.ExitStack() as stack:
            if ranks.main:
                stack.enter_context(claiming(config))
            return _train(config, log, ranks, progress)
    finally:
        ranks.close()


@dataclasses.dataclass
class _Run:
    """What a run trains with, made by `_train`'s first steps, and where it
    is (`step`: optimizer steps taken)."""

    config: TrainConfig
    ranks: Ranks
    out_dir: Path
    train_set: Any
    valid_set: Any  # the held-out fold, on rank 0 alone (None otherwise)
    rows: np.ndarray  # the rows of train_set it trains on
    layout: str
    model: Any
    forward: Any  # the model, or DistributedDataParallel around it
    optimizer: Any
    scheduler: Any
    plans: list  # per epoch, this rank's micro-batches (indices into rows)
    steps_of: list  # per epoch, the micro-batches of each optimizer step
    selection: Selection  # the evaluations, the one kept (rank 0 writes)
    total_steps: int  # the optimizer steps the schedule is sized for
    progress: Callable[[dict], None]  # `train`'s progress (rank 0), or nothing
    started: float = 0.0
    step: int = 0
    evaluated: int = -1  # the step of the last evaluation


def _train(config: TrainConfig, log: Optional[Callable], ranks: Ranks, progress) -> dict:
    """The run in its steps: data, rows, model, optimizer, every epoch's plan
    and its optimizer steps, schedule, the run directory, the resume point,
    the epochs, the weights and bundle (rank 0)."""
    out_dir = Path(config.out)
    torch.manual_seed(config.seed)
    train_set, valid_set = _datasets(config, ranks)
    check_objective(config, train_set)
    rows = _training_rows(train_set)
    _check_training_rows(train_set, rows, config)
    if config.resume and ranks.main:
        resume_point(out_dir)  # refuses an incomplete one before the model is built
    layout, model, forward = _model(config, train_set, ranks)
    optimizer = _optimizer(model, config)
    plans = _plans(train_set, rows, layout, config, ranks)
    # Every rank groups micro-batches into the same optimizer steps: by the
    # tokens of all ranks together.
    steps_of = [
        accumulation_steps(np.asarray(ranks.sum([float(t) for t in p.tokens])), config.step_tokens)
        for p in plans
    ]
    total_steps = sum(len(s) for s in steps_of)
    if config.max_steps is not None:  # the schedule ends where the run does
        total_steps = min(total_steps, config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _warmup_cosine(total_steps, int(total_steps * config.warmup))
    )
    if ranks.main:
        _start_run_directory(out_dir, config)
    run = _Run(
        config=config,
        ranks=ranks,
        out_dir=out_dir,
        train_set=train_set,
        valid_set=valid_set,
        rows=rows,
        layout=layout,
        model=model,
        forward=forward,
        optimizer=optimizer,
        scheduler=scheduler,
        plans=plans,
        steps_of=steps_of,
        # A reward run is kept by the Kaggle log loss of its probabilities
        # (`af.infer.evaluate`), whatever its label space.
        selection=Selection(
            out_dir,
            config.save_mode(),
            config.early_stopping,
            "log_loss" if config.reward else train_set.space.metric,
        ),
        total_steps=total_steps,
        progress=progress if progress is not None and ranks.main else lambda record: None,
        started=time.perf_counter(),
    )
    done = _resume(run, total_steps)
    run.progress({"step": done, "total": total_steps})
    kept = _epochs(run, done, log)
    if ranks.main:
        write_bundle(out_dir, train_set)
    ranks.barrier()
    return kept


def _datasets(config: TrainConfig, ranks: Ranks) -> tuple:
    """The rows to train on (every fold but `config.fold`, or all) and the
    held-out fold (rank 0 evaluates it; None without a fold)."""
    if config.fold is None:
        return load_dataset(config.data, swap=config.swap), None
    train_set = load_dataset(config.data, fold=config.fold, split="train", swap=config.swap)
    valid_set = (
        load_dataset(config.data, fold=config.fold, split="valid", swap=config.swap)
        if ranks.main
        else None
    )
    return train_set, valid_set


def _training_rows(data) -> np.ndarray:
    """The labelled rows of `data`; swap pairs stay together (both kept only
    when both are labelled)."""
    labelled = data.labelled
    keep = labelled if not data.swapped else np.repeat(labelled[0::2] & labelled[1::2], 2)
    return np.flatnonzero(keep)


def _model(config: TrainConfig, data, ranks: Ranks) -> tuple:
    """(layout, model, forward): the batch layout, the classifier in training
    mode on this rank's device, and what the steps call (the model, or
    DistributedDataParallel around it over several ranks)."""
    attn = config.attn_implementation or default_attention()
    model = classifier_for(
        dataclasses.replace(config, attn_implementation=attn), data.tokenizer(), data.space.k
    )
    layout = resolve_layout(config.layout, attn, model)  # padded where packing is not exact
    if torch.cuda.is_available() and config.quantization is None:
        model.to(torch.device("cuda", ranks.local_rank))
    model.train()
    forward = model
    if ranks.world > 1:
        device_ids = [ranks.local_rank] if torch.cuda.is_available() else None
        forward = DistributedDataParallel(model, device_ids=device_ids)
        torch.manual_seed(config.seed + ranks.rank)  # dropout differs by rank
    return layout, model, forward


# A reward model's tie parameter (`RewardHead.tie`): a property of the data
# (how often pairs tie), not a weight to shrink, so never decayed.
_NO_DECAY = ("head.tie.",)


def _optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with the decoder's (or its adapters') learning rate and the
    head's (`head_lr`, default `lr`); `weight_decay` on every trained weight
    but a reward model's tie parameter (`_NO_DECAY`, in a third group at
    `tie_lr`, present only when the model has one)."""
    named = model.trainable_parameters()
    head_lr = config.head_lr or config.lr
    head = [p for n, p in named if n.startswith("head.") and not n.startswith(_NO_DECAY)]
    groups = [
        {"params": [p for n, p in named if not n.startswith("head.")], "lr": config.lr},
        {"params": head, "lr": head_lr},
    ]
    kept = [p for n, p in named if n.startswith(_NO_DECAY)]
    if kept:
        groups.append({"params": kept, "lr": config.tie_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _plans(data, rows: np.ndarray, layout: str, config: TrainConfig, ranks: Ranks) -> list:
    """Every epoch's plan, made up front: this rank's share of the epoch's
    micro-batches over `rows` (every rank gets as many), swap pairs kept
    together."""
    sampler = PlanSampler(
        data.encoded.lengths[rows],
        config.max_tokens,
        layout,
        seed=config.seed,
        world_size=ranks.world,
        rank=ranks.rank,
        pair_swaps=data.swapped,
    )
    plans = []
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        plans.append(sampler.plan)
    return plans


def _warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """The learning rate's factor at each step: a linear warmup over
    `warmup_steps`, then a cosine decay to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _start_run_directory(out_dir: Path, config: TrainConfig) -> None:
    """The run's `config.json`; until the run finishes, the directory is not
    a finished run (no `bundle.json`)."""
    with writing(out_dir / CONFIG):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / BUNDLE).unlink(missing_ok=True)
    write_run_config(out_dir, config)


def _resume(run: _Run, total_steps: int) -> int:
    """The optimizer steps already taken: those of the checkpoint a resumed
    run continues from (rank 0 chose it, promoting checkpoint.old; every
    rank loads it), else 0, and then no predictions or selection of an
    earlier run stay behind; a resumed run reads its selection back (the
    best evaluation so far, `af.selection`)."""
    if run.config.resume:
        run.ranks.barrier()
        path = run.out_dir / CHECKPOINT
        if path.is_dir():
            run.step = load_checkpoint(path, run.model, run.optimizer, run.scheduler)
            if run.step > total_steps:
                raise ConfigError(
                    f"{path}: saved at step {run.step}, past the {total_steps} "
                    "steps of this run's settings (changed since it was saved?)"
                )
    if run.ranks.main:
        run.selection.start(resumed=run.step > 0)
    return run.step


def _epochs(run: _Run, done: int, log: Optional[Callable[[dict], None]]) -> dict:
    """The epochs' optimizer steps, skipping the `done` ones, with the
    held-out evaluation after each epoch, every `eval_every` steps and when
    the run stops early (`max_steps`, `max_seconds`, `early_stopping`); then
    the kept evaluation's weights (`save`), whose record it returns ({}
    without one). A run stopped early is checkpointed after its evaluation."""
    config = run.config
    with _metrics(run, done > 0, log) as emit:
        seen, stopped = 0, None
        for epoch, plan in enumerate(run.plans):
            steps = run.steps_of[epoch]
            if seen + len(steps) <= done:
                seen += len(steps)  # an epoch finished before the resume
                continue
            for k, micro in enumerate(steps):
                seen += 1
                if seen <= done:
                    continue
                _optimizer_step(run, epoch, [run.rows[plan[j]] for j in micro], emit)
                every = config.eval_every is not None and run.step % config.eval_every == 0
                if k == len(steps) - 1 or every:
                    _evaluate(run, epoch, emit)
                stopped = _stopping(run)
                if stopped:
                    break
            if stopped:
                if run.evaluated != run.step:
                    _evaluate(run, epoch, emit)  # a stopped run ends evaluated
                emit({"stopped": stopped, "step": run.step, "epoch": epoch})
                if config.checkpoint_every is not None:
                    _checkpoint(run)
                break
        kept: dict = {}
        if run.ranks.main:
            kept = run.selection.finish(
                run.model, run.step, keep_files=config.checkpoint_every is not None
            )
            emit({"saved": run.selection.save, "step": run.step, "kept": kept})
    return kept


def _evaluate(run: _Run, epoch: int, emit: Callable[[dict], None]) -> None:
    """The held-out evaluation (rank 0, when the run has a fold), given to
    the selection and logged with `best`; the other ranks wait."""
    if run.valid_set is not None and len(run.valid_set):
        run.progress({"stage": "evaluate", "step": run.step})
        record = {
            "epoch": epoch,
            "step": run.step,
            **evaluate(
                run.model,
                run.valid_set,
                run.layout,
                run.config.max_tokens,
                predictions=run.selection.candidate,
            ),
        }
        emit({"eval": True, **run.selection.add(run.model, record)})
    run.evaluated = run.step
    run.ranks.barrier()  # the others wait while rank 0 evaluates


def _optimizer_step(run: _Run, epoch: int, micro: list, emit: Callable[[dict], None]) -> None:
    """One optimizer step over the micro-batches `micro` (arrays of rows of
    the training set), logged every `log_every` steps and checkpointed every
    `checkpoint_every`. A loss that is not finite stops the run."""
    config, optimizer = run.config, run.optimizer
    optimizer.zero_grad(set_to_none=True)
    step_loss, sequences = step_gradients(
        run.forward, run.train_set, micro, run.layout, config, run.ranks
    )
    if not math.isfinite(step_loss):  # the same sum on every rank: all stop
        raise ArenaFastError(
            f"step {run.step + 1} (epoch {epoch}): the loss is {step_loss}; training "
            f"stopped and no finished run was written to {run.out_dir} (a learning "
            "rate too high for this model, or labels / teacher logits that "
            "overflow)"
        )
    optimizer.step()
    run.scheduler.step()
    run.step += 1
    lr = run.scheduler.get_last_lr()[0]
    run.progress({"step": run.step, "total": run.total_steps, "loss": step_loss, "lr": lr})
    if run.step % config.log_every == 0:
        record = {"epoch": epoch, "step": run.step, "loss": step_loss, "lr": lr}
        emit({**record, "sequences": int(sequences)})
    if config.checkpoint_every is not None and run.step % config.checkpoint_every == 0:
        _checkpoint(run)


def _stopping(run: _Run) -> Optional[str]:
    """Why the run stops after this step, or None: `max_steps` reached,
    `max_seconds` passed on any rank, or `early_stopping` evaluations
    without improvement on rank 0 (ranks stop together)."""
    config = run.config
    late = config.max_seconds is not None and time.perf_counter() - run.started > config.max_seconds
    early = run.ranks.main and run.selection.should_stop()
    late_sum, early_sum = run.ranks.sum([float(late), float(early)])
    if config.max_steps is not None and run.step >= config.max_steps:
        return "max_steps"
    if early_sum > 0:
        return "early_stopping"
    return "max_seconds" if late_sum > 0 else None


def _checkpoint(run: _Run) -> None:
    if run.ranks.main:
        save_checkpoint(run.out_dir / CHECKPOINT, run.model, run.optimizer, run.scheduler, run.step)
    run.ranks.barrier()


@contextlib.contextmanager
def _metrics(run: _Run, append: bool, log: Optional[Callable[[dict], None]]) -> Iterator:
    """`emit(record)` for the block: on rank 0 the record, with the seconds
    since the run started, is appended to `metrics.jsonl` (flushed at once),
    sent to the trackers (`af.tracking`) and given to `log`; other ranks
    drop it."""
    if not run.ranks.main:
        yield lambda record: None
        return
    path = run.out_dir / METRICS
    with contextlib.ExitStack() as stack:
        metrics = stack.enter_context(open(path, "a" if append else "w", encoding="utf-8"))
        track = stack.enter_context(tracking(run.config, run.out_dir, run.step))

        def emit(record: dict) -> None:
            record = {"seconds": round(time.perf_counter() - run.started, 3), **record}
            with writing(path):
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            track(record)
            if log is not None:
                log(record)

        yield emit


def step_gradients(model, data, micro: list, layout: str, config: TrainConfig, ranks=None) -> tuple:
    """Backward passes of one optimizer step over the micro-batches `micro`
    (arrays of row indices of `data`). Each micro-batch's mean loss is
    weighted by its share of the step's sequences, so the gradient is the
    mean over all of them, as one batch holding them all would give; over
    several ranks (`model` wrapped in DistributedDataParallel, which averages
    the ranks' gradients) the share is of all ranks' sequences, and
    gradients are synchronised once, after the last micro-batch. Returns
    (the step's mean loss, its sequences), over all ranks."""
    world = 1 if ranks is None else ranks.world
    # DistributedDataParallel keeps the model it wraps as `module`.
    pad_id = getattr(getattr(model, "module", model), "pad_id", None)
    batches = ArenaBatches(data.encoded, data.labels, layout, pad_id=pad_id)
    mine = sum(len(idx) for idx in micro)
    sequences = mine if world == 1 else ranks.sum([float(mine)])[0]
    step_loss = 0.0
    for j, idx in enumerate(micro):
        last = j == len(micro) - 1
        quiet = model.no_sync() if world > 1 and not last else contextlib.nullcontext()
        with quiet:
            batch = batches[idx]
            loss = batch_loss(model, model(batch), batch, idx, data, config)
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
