"""`af.train.train(config)`: a preference classifier trained on a built
dataset (`build-dataset`), on packed or padded batches planned in Rust.

This is the core loop: layout from the attention implementation, steps
within a token budget with swap pairs kept together, AdamW with separate
learning rates for the decoder (or its LoRA adapters) and the head, cosine
schedule with warmup, cross-entropy on the dataset's label rows (hard labels
are one-hot rows; pseudo-labels are soft) or the distillation mix when the
dataset has teacher logits, and an evaluation of the held-out fold after each
epoch (log loss, accuracy, log loss with swap TTA) written as JSON lines.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .errors import ConfigError

__all__ = ["TrainConfig", "train", "evaluate"]


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class TrainConfig:
    """Everything a training run depends on; each field carries its help."""

    data: str = _help("a dataset directory written by `arena-fast build-dataset`", "")
    fold: Optional[int] = _help("held-out fold (None: train on every row, no evaluation)", 0)
    model: str = _help("tiny-gemma2, tiny-llama or a local model folder", "tiny-gemma2")
    lora_r: int = _help("LoRA rank (0: train every weight)", 0)
    lora_alpha: int = _help("LoRA alpha", 32)
    lora_dropout: float = _help("LoRA dropout", 0.05)
    lora_targets: str = _help(
        "modules LoRA adapts: all-linear, or comma-separated names (q_proj,v_proj)", "all-linear"
    )
    quantization: Optional[str] = _help(
        "None, 4bit (QLoRA: nf4, double quantisation, bf16 compute) or 8bit; CUDA only", None
    )
    gradient_checkpointing: bool = _help("recompute activations in the backward pass", False)
    softcap: bool = _help("Gemma-2 attention logit soft-capping (False turns it off)", True)
    head: str = _help("linear or mlp", "linear")
    attn_implementation: Optional[str] = _help("None: flash-attn varlen or arena_varlen", None)
    layout: str = _help("auto (packs for varlen kernels), packed or padded", "auto")
    epochs: int = _help("passes over the training rows", 1)
    lr: float = _help("learning rate of the decoder or its adapters", 2e-4)
    head_lr: Optional[float] = _help("learning rate of the head (None: lr)", None)
    weight_decay: float = _help("AdamW weight decay", 0.0)
    warmup: float = _help("share of the steps spent warming up", 0.05)
    max_tokens: int = _help("tokens per micro-batch (packs) or rows x longest (padded)", 8192)
    step_tokens: Optional[int] = _help(
        "tokens per optimizer step: micro-batches are accumulated until they reach it "
        "(None: one micro-batch per step)",
        None,
    )
    swap: Optional[bool] = _help("train on both A/B orders (None: when the dataset has them)", None)
    temperature: float = _help("distillation temperature (datasets with teacher logits)", 1.0)
    seed: int = _help("seed of the model, the plans and the order", 0)
    out: str = _help("run directory (metrics.jsonl, weights)", "run")
    log_every: int = _help("steps between training log lines", 10)
    max_seconds: Optional[float] = _help("stop training after this long (None: no limit)", None)
    max_steps: Optional[int] = _help("stop after this many optimizer steps (None: no limit)", None)
    checkpoint_every: Optional[int] = _help(
        "write a checkpoint every this many steps, and when stopped early (None: never)", None
    )
    resume: bool = _help("continue from the run directory's checkpoint when there is one", False)

    def validate(self) -> None:
        if not self.data:
            raise ConfigError("data: give a dataset directory (arena-fast build-dataset --out DIR)")
        if self.layout not in ("auto", "packed", "padded"):
            raise ConfigError(f"layout must be auto, packed or padded, got {self.layout!r}")
        for name in ("epochs", "max_tokens", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.step_tokens is not None and self.step_tokens < 1:
            raise ConfigError(f"step_tokens must be at least 1, got {self.step_tokens}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup must be in [0, 1), got {self.warmup}")

    def lora_settings(self):
        """The `af.model.Lora` these settings ask for (None: no LoRA)."""
        from .model import Lora

        if not self.lora_r:
            return None
        targets = self.lora_targets.strip()
        return Lora(
            r=self.lora_r,
            alpha=self.lora_alpha,
            dropout=self.lora_dropout,
            target_modules=targets
            if targets == "all-linear"
            else tuple(t.strip() for t in targets.split(",") if t.strip()),
        )

    def classifier(self, tokenizer):
        """The classifier these settings describe (`af.model.load_classifier`),
        before training: the same call for training and for rebuilding a run."""
        from .model import load_classifier

        return load_classifier(
            self.model,
            tokenizer=tokenizer,
            lora=self.lora_settings(),
            quantization=self.quantization,
            attn_implementation=self.attn_implementation,
            head=self.head,
            softcap=self.softcap,
            gradient_checkpointing=self.gradient_checkpointing,
            seed=self.seed,
        )

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"unknown training settings {sorted(unknown)}")
        return cls(**values)


def _layout(config: TrainConfig, attn: str) -> str:
    if config.layout != "auto":
        return config.layout
    from .torch.data import default_layout

    return default_layout(attn)


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
    from .predict import _softmax, dataset_predictions, predict_logits, prediction_table

    logits = predict_logits(model, data.encoded, layout, max_tokens)
    model.train()
    probs = _softmax(logits)
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
    writes; the other ranks return {}."""
    ranks = _Ranks()
    try:
        return _train(config, log, ranks)
    finally:
        ranks.close()


def _train(config: TrainConfig, log: Optional[Callable[[dict], None]], ranks: _Ranks) -> dict:
    import contextlib

    import torch

    from .dataset import load_dataset
    from .model import default_attention

    config.validate()
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
    attn = config.attn_implementation or default_attention()
    layout = _layout(config, attn)
    model = dataclasses.replace(config, attn_implementation=attn).classifier(train_set.tokenizer())
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
    # Train on labelled rows only; swap pairs stay together.
    labelled = train_set.labelled
    pairs = train_set.swapped
    lengths = train_set.encoded.lengths.copy()
    keep = labelled if not pairs else np.repeat(labelled[0::2] & labelled[1::2], 2)
    rows = np.flatnonzero(keep)
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
    out_dir = Path(config.out)
    if ranks.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(
            json.dumps(dataclasses.asdict(config), indent=2) + "\n"
        )
    started = time.perf_counter()
    step = 0
    if config.resume and (out_dir / CHECKPOINT / "state.json").is_file():
        step = _load_checkpoint(out_dir / CHECKPOINT, model, optimizer, scheduler)
    done = step  # optimizer steps already taken (skipped when resuming)
    if not done and ranks.main:  # a fresh run: no predictions of an earlier one stay behind
        (out_dir / PREDICTIONS).unlink(missing_ok=True)
    last: dict = {}
    stop = False

    def checkpoint() -> None:
        if ranks.main:
            _save_checkpoint(out_dir / CHECKPOINT, model, optimizer, scheduler, step)
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
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    checkpoint()
                late = (
                    bool(config.max_seconds) and time.perf_counter() - started > config.max_seconds
                )
                # Ranks stop together: one that ran out of time stops them all.
                if ranks.sum([float(late)])[0] > 0 or (
                    config.max_steps and step >= config.max_steps
                ):
                    stop = True
                    break
            if stop and config.checkpoint_every:
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
        _save(model, out_dir)
        write_bundle(out_dir, train_set)
    ranks.barrier()
    return last


CHECKPOINT = "checkpoint"
BUNDLE = "bundle.json"
PREDICTIONS = "valid_predictions.parquet"  # the held-out fold, after the last epoch
LABEL_ORDER = ("winner_model_a", "winner_model_b", "winner_tie")
_BUNDLE_FILES = ("config.json", "decoder.safetensors", "head.safetensors", "tokenizer.json")
# Listed too when the run has them (a run stopped early has no predictions).
_BUNDLE_EXTRAS = ("metrics.jsonl", PREDICTIONS)


def write_bundle(out_dir: Path, data) -> dict:
    """Make the run directory self-describing: the tokenizer the data was
    encoded with, the exact encoder config, the label order, library
    versions and the sha256 of every file, in `bundle.json` (written last)."""
    import shutil

    shutil.copyfile(data.path / "tokenizer.json", out_dir / "tokenizer.json")
    meaning = {
        "labels": list(LABEL_ORDER),
        "encoder": data.manifest["encoder"],
        "tokenizer_sha256": data.manifest["tokenizer"]["sha256"],
        "dataset_swap": bool(data.manifest.get("swap")),
    }
    return write_bundle_file(out_dir, meaning)


def write_bundle_file(out_dir: Path, meaning: dict, extra_files: tuple = ()) -> dict:
    """`bundle.json` of a run directory holding the run's files: `meaning`
    (labels, encoder, tokenizer_sha256, dataset_swap: what the inputs and
    outputs mean), this process's library versions, and the sha256 of the
    run's files and of `extra_files` (which must exist). Written last,
    atomically."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__
    from .dataset import file_sha256

    versions = {"arena_fast": __version__}
    for lib in ("torch", "transformers", "peft", "safetensors"):
        try:
            versions[lib] = version(lib)
        except PackageNotFoundError:
            versions[lib] = None
    required = (*_BUNDLE_FILES, *extra_files)
    for name in required:
        if not (out_dir / name).is_file():
            raise ConfigError(f"{out_dir / name}: missing (a run needs it)")
    names = [*required, *(n for n in _BUNDLE_EXTRAS if (out_dir / n).is_file())]
    bundle = {
        "format_version": 1,
        "versions": versions,
        **{key: meaning[key] for key in ("labels", "encoder", "tokenizer_sha256", "dataset_swap")},
        "files": {name: file_sha256(out_dir / name) for name in names},
    }
    tmp = out_dir / f".{BUNDLE}.tmp"
    tmp.write_text(json.dumps(bundle, indent=2) + "\n")
    tmp.replace(out_dir / BUNDLE)
    return bundle


def read_bundle(run: Path) -> dict:
    """The run's `bundle.json`, after checking every file against its sha256:
    a run whose files changed is refused."""
    from .dataset import file_sha256

    path = run / BUNDLE
    if not path.is_file():
        raise ConfigError(f"{run}: not a finished training run (no {BUNDLE})")
    bundle = json.loads(path.read_text())
    for name, digest in bundle["files"].items():
        file = run / name
        if not file.is_file():
            raise ConfigError(f"{file}: listed in {BUNDLE} but missing")
        if file_sha256(file) != digest:
            raise ConfigError(f"{file}: sha256 differs from {BUNDLE} (the file was changed)")
    return bundle


def _save_checkpoint(path: Path, model, optimizer, scheduler, step: int) -> None:
    """Trained weights (safetensors), optimizer and scheduler state and the
    RNG, written to a temporary directory and renamed into place."""
    import shutil

    import torch
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {n: p.detach().contiguous() for n, p in model.trainable_parameters()}
    save_file(weights, str(tmp / "trained.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        },
        tmp / "state.pt",
    )
    (tmp / "state.json").write_text(json.dumps({"step": step}) + "\n")
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(path: Path, model, optimizer, scheduler) -> int:
    """Restore a checkpoint (tensors only: `weights_only=True`); returns its step."""
    import pickle

    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        weights = load_file(str(path / "trained.safetensors"))
        # Tensors and plain containers only: a checkpoint is not trusted code.
        state = torch.load(path / "state.pt", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError, SafetensorError) as exc:
        raise ConfigError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    params = dict(model.trainable_parameters())
    if set(weights) != set(params):
        raise ConfigError(f"{path}: the checkpoint does not match this model's trained weights")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return int(json.loads((path / "state.json").read_text())["step"])


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


def _save(model, out_dir: Path) -> None:
    """The head and the trained decoder weights (the LoRA adapter, or every
    weight) as safetensors."""
    from safetensors.torch import save_file

    head = {k: v.detach().contiguous() for k, v in model.head.state_dict().items()}
    save_file(head, str(out_dir / "head.safetensors"))
    trained = {
        n: p.detach().contiguous() for n, p in model.decoder.named_parameters() if p.requires_grad
    }
    save_file(trained, str(out_dir / "decoder.safetensors"))
