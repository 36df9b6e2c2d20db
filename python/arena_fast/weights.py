"""A run's tensors on disk (the torch layer): the trained weights
(`decoder.safetensors`: the LoRA adapter, or every decoder weight of a run
without LoRA; `head.safetensors`) and a checkpoint's (`trained.safetensors`,
and `state.pt`: the optimizer, scheduler and RNG state), written and read
back into a model.

Where they go and what else a run holds (`config.json`, `bundle.json`, the
checkpoint's `state.json`, which checkpoint is complete) is `af.runs`, which
imports no torch. What is read is untrusted: weights that do not fit the
model and checkpoints that are not tensors and plain containers are a
`ConfigError` naming the file; weights that are not finite are never saved;
a failed write (a full disk) is an `ArenaFastError` naming the file."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from .errors import ArenaFastError, ConfigError
from .files import fsync_tree, replacing, swap_in
from .runs import (
    DECODER,
    HEAD,
    checkpoint_siblings,
    read_checkpoint_step,
    write_checkpoint_step,
    writing,
)

__all__ = ["load_checkpoint", "load_weights", "save_checkpoint", "save_weights"]

_TRAINED = "trained.safetensors"  # in a checkpoint: every trained weight, head included
_STATE = "state.pt"
# safetensors reports a failed write (ENOSPC) as its own class.
_WRITE_ERRORS = (SafetensorError,)


def save_weights(model, out_dir: Path, step: int) -> None:
    """The head and the trained decoder weights (the LoRA adapter, or every
    weight) as safetensors, each written atomically (`files.replacing`);
    weights that are not finite are refused (`step` names when)."""
    for name, p in model.trainable_parameters():
        if not bool(torch.isfinite(p).all()):
            raise ArenaFastError(
                f"{out_dir}: after step {step} the trained weight {name} holds NaN or inf; "
                "no finished run written (lower the learning rate)"
            )
    head = {k: v.detach().contiguous() for k, v in model.head.state_dict().items()}
    _save(head, Path(out_dir) / HEAD)
    trained = {
        n: p.detach().contiguous() for n, p in model.decoder.named_parameters() if p.requires_grad
    }
    _save(trained, Path(out_dir) / DECODER)


def _save(tensors: dict, path: Path) -> None:
    with writing(path, _WRITE_ERRORS), replacing(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp))


def load_weights(model, run: Path) -> None:
    """The trained weights of the run directory `run` copied into `model`
    (built from the run's `config.json`): a ConfigError naming the run when
    they are unreadable, name a parameter the model lacks or have another
    shape."""
    try:
        trained = safetensors.torch.load_file(str(run / DECODER))
        head = safetensors.torch.load_file(str(run / HEAD))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"{run}: unreadable weights ({type(exc).__name__}: {exc})") from None
    params = dict(model.decoder.named_parameters())
    missing = set(trained) - set(params)
    if missing:
        raise ConfigError(f"{run}: weights for parameters this model lacks: {sorted(missing)[:3]}")
    try:
        with torch.no_grad():
            for name, value in trained.items():
                params[name].copy_(value)
        model.head.load_state_dict(head)
    except RuntimeError as exc:  # shapes of another model
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{run}: the weights do not fit its config.json: {first}") from None


def save_checkpoint(path: Path, model, optimizer, scheduler, step: int) -> None:
    """Trained weights (safetensors), optimizer and scheduler state and the
    RNG, written to `checkpoint.tmp` (`state.json` last), flushed to disk and
    renamed into place. The previous checkpoint stays as `checkpoint.old`
    until the new one is in place, so at every moment one complete
    checkpoint exists."""
    old, tmp = checkpoint_siblings(path)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with writing(tmp, _WRITE_ERRORS):
            tmp.mkdir(parents=True)
            weights = {n: p.detach().contiguous() for n, p in model.trainable_parameters()}
            safetensors.torch.save_file(weights, str(tmp / _TRAINED))
            torch.save(
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                },
                tmp / _STATE,
            )
            write_checkpoint_step(tmp, step)
            fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with writing(path):
        swap_in(tmp, path, old=old)


def load_checkpoint(path: Path, model, optimizer, scheduler) -> int:
    """Restore a checkpoint (tensors only: `weights_only=True`); returns its
    step. A checkpoint that is unreadable, of the wrong types or of another
    model is a ConfigError naming the file."""
    step = read_checkpoint_step(path)
    try:
        weights = safetensors.torch.load_file(str(path / _TRAINED))
        # Tensors and plain containers only: a checkpoint is not trusted code.
        state: Any = torch.load(path / _STATE, weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError, SafetensorError) as exc:
        raise ConfigError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    params = dict(model.trainable_parameters())
    if set(weights) != set(params) or any(weights[n].shape != params[n].shape for n in params):
        raise ConfigError(f"{path}: the checkpoint does not match this model's trained weights")
    if not isinstance(state, dict) or not {"optimizer", "scheduler", "rng"} <= set(state):
        raise ConfigError(f"{path / _STATE}: not a checkpoint state (optimizer, scheduler, rng)")
    try:
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"{path / _STATE}: does not fit this run's optimizer ({type(exc).__name__}: "
            f"{str(exc)[:200]})"
        ) from None
    return step
