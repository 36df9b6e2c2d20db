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
        return Lora(r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout)

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


def _plan(lengths: np.ndarray, config: TrainConfig, layout: str, pairs: bool, epoch: int):
    from .plan import plan_batches, plan_packs

    if layout == "packed":
        return plan_packs(
            lengths, config.max_tokens, pair_swaps=pairs, seed=config.seed, epoch=epoch
        )
    return plan_batches(
        lengths, config.max_tokens, order="grouped", pair_swaps=pairs, seed=config.seed, epoch=epoch
    )


def _batch(encoded, idx: np.ndarray, layout: str, labels: Optional[np.ndarray] = None) -> dict:
    from .collate import collate_packed, collate_padded

    if layout == "packed":
        return collate_packed(encoded, idx, labels)
    return collate_padded(encoded, idx, pad_id=0, side="right", labels=labels)


def evaluate(model, data, layout: str, max_tokens: int) -> dict:
    """Log loss and accuracy of `model` on `data` (an `ArenaDataset`; its
    labelled rows), and with swap TTA when it holds both orders."""
    import torch

    from .labels import tta_average
    from .plan import plan_batches

    model.eval()
    n = len(data)
    logits = np.zeros((n, 3), dtype=np.float64)
    plan = plan_batches(data.encoded, max_tokens, order="desc", pair_swaps=False)
    with torch.no_grad():
        for idx in plan:
            out = model(_batch(data.encoded, idx, layout))
            logits[idx] = out.double().cpu().numpy()
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    result = _scores(probs, data.labels, data.labelled)
    if data.swapped:
        p = tta_average(probs[0::2], probs[1::2])
        tta = _scores(p, data.labels[0::2], data.labelled[0::2])
        result["tta_log_loss"] = tta["log_loss"]
        result["tta_accuracy"] = tta["accuracy"]
    model.train()
    return result


def _scores(probs: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> dict:
    p = np.clip(probs[labelled], 1e-15, 1.0)
    y = labels[labelled].astype(np.float64)
    if len(p) == 0:
        return {"log_loss": float("nan"), "accuracy": float("nan"), "rows": 0}
    log_loss = float(-(y * np.log(p)).sum(axis=1).mean())
    accuracy = float((p.argmax(axis=1) == y.argmax(axis=1)).mean())
    return {"log_loss": log_loss, "accuracy": accuracy, "rows": int(len(p))}


def train(config: TrainConfig, log: Optional[Callable[[dict], None]] = None) -> dict:
    """Train, evaluating the held-out fold after each epoch; returns the last
    evaluation (and writes `metrics.jsonl`, `config.json` and the weights
    under `config.out`)."""
    import torch

    from .dataset import load_dataset
    from .model import default_attention, load_classifier

    config.validate()
    torch.manual_seed(config.seed)
    train_set = (
        load_dataset(config.data, fold=config.fold, split="train", swap=config.swap)
        if config.fold is not None
        else load_dataset(config.data, swap=config.swap)
    )
    valid_set = (
        load_dataset(config.data, fold=config.fold, split="valid", swap=config.swap)
        if config.fold is not None
        else None
    )
    attn = config.attn_implementation or default_attention()
    layout = _layout(config, attn)
    model = load_classifier(
        config.model,
        tokenizer=train_set.tokenizer(),
        lora=config.lora_settings(),
        attn_implementation=attn,
        head=config.head,
        seed=config.seed,
    )
    model.train()
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
    plans = [_plan(lengths[rows], config, layout, pairs, epoch) for epoch in range(config.epochs)]
    steps_of = [accumulation_steps(p, config.step_tokens) for p in plans]
    total_steps = sum(len(s) for s in steps_of)
    warmup_steps = int(total_steps * config.warmup)

    def lr_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.jsonl"
    (out_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    started = time.perf_counter()
    step = 0
    if config.resume and (out_dir / CHECKPOINT / "state.json").is_file():
        step = _load_checkpoint(out_dir / CHECKPOINT, model, optimizer, scheduler)
    done = step  # optimizer steps already taken (skipped when resuming)
    last: dict = {}
    stop = False
    with open(metrics_path, "a" if done else "w", encoding="utf-8") as metrics:

        def emit(record: dict) -> None:
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
                    model, train_set, [rows[plan[j]] for j in micro], layout, config
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
                    _save_checkpoint(out_dir / CHECKPOINT, model, optimizer, scheduler, step)
                if (config.max_seconds and time.perf_counter() - started > config.max_seconds) or (
                    config.max_steps and step >= config.max_steps
                ):
                    stop = True
                    break
            if stop and config.checkpoint_every:
                _save_checkpoint(out_dir / CHECKPOINT, model, optimizer, scheduler, step)
            if stop:
                break  # interrupted mid-epoch: no evaluation of a partial epoch
            if valid_set is not None and len(valid_set):
                last = {
                    "epoch": epoch,
                    "step": step,
                    **evaluate(model, valid_set, layout, config.max_tokens),
                }
                emit({"eval": True, **last})
    _save(model, out_dir)
    write_bundle(out_dir, train_set)
    return last


CHECKPOINT = "checkpoint"
BUNDLE = "bundle.json"
LABEL_ORDER = ("winner_model_a", "winner_model_b", "winner_tie")
_BUNDLE_FILES = ("config.json", "decoder.safetensors", "head.safetensors", "tokenizer.json")


def write_bundle(out_dir: Path, data) -> dict:
    """Make the run directory self-describing: the tokenizer the data was
    encoded with, the exact encoder config, the label order, library
    versions and the sha256 of every file, in `bundle.json` (written last)."""
    import shutil
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__
    from .dataset import file_sha256

    shutil.copyfile(data.path / "tokenizer.json", out_dir / "tokenizer.json")
    versions = {"arena_fast": __version__}
    for lib in ("torch", "transformers", "peft", "safetensors"):
        try:
            versions[lib] = version(lib)
        except PackageNotFoundError:
            versions[lib] = None
    bundle = {
        "format_version": 1,
        "versions": versions,
        "labels": list(LABEL_ORDER),
        "encoder": data.manifest["encoder"],
        "tokenizer_sha256": data.manifest["tokenizer"]["sha256"],
        "dataset_swap": bool(data.manifest.get("swap")),
        "files": {name: file_sha256(out_dir / name) for name in _BUNDLE_FILES},
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
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(path / "trained.safetensors"))
    params = dict(model.trainable_parameters())
    if set(weights) != set(params):
        raise ConfigError(f"{path}: the checkpoint does not match this model's trained weights")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    state = torch.load(path / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return int(json.loads((path / "state.json").read_text())["step"])


def step_gradients(model, data, micro: list, layout: str, config: TrainConfig) -> tuple:
    """Backward passes of one optimizer step over the micro-batches `micro`
    (arrays of row indices of `data`). Each micro-batch's mean loss is
    weighted by its share of the step's sequences, so the gradient is the
    mean over all of them, as one batch holding them all would give. Returns
    (the step's mean loss, its sequences)."""
    sequences = sum(len(idx) for idx in micro)
    step_loss = 0.0
    for idx in micro:
        batch = _batch(data.encoded, idx, layout, data.labels)
        loss = _loss(model(batch), batch, idx, data.teacher_logits, config)
        (loss * (len(idx) / sequences)).backward()
        step_loss += loss.item() * len(idx) / sequences
    return step_loss, sequences


def accumulation_steps(plan, step_tokens: Optional[int]) -> list[list[int]]:
    """The plan's micro-batches grouped into optimizer steps: consecutive
    micro-batches until their tokens reach `step_tokens` (one each when None)."""
    if step_tokens is None:
        return [[j] for j in range(len(plan))]
    steps: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for j in range(len(plan)):
        current.append(j)
        tokens += int(plan.tokens[j])
        if tokens >= step_tokens:
            steps.append(current)
            current, tokens = [], 0
    if current:
        steps.append(current)
    return steps


def _loss(logits, batch: dict, idx: np.ndarray, teacher: Optional[list], config: TrainConfig):
    import torch

    from .losses import cross_entropy, distillation_loss

    labels = torch.as_tensor(batch["labels"])
    if teacher is not None and all(teacher[i] is not None for i in idx):
        t = torch.tensor([teacher[i] for i in idx], dtype=torch.float32)
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
