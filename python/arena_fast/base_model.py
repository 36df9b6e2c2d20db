"""The base model a run was trained on, by identity rather than by path, so
that a run folder copied anywhere (read-only too) still finds and checks it
(docs/training.md, "Moving a run").

`identity(name)` is what `bundle.json` records under `base_model`: the name
as given to `--model`, and for a local model folder its absolute path at
training time, the sha256 of its `config.json` and a fingerprint of each
weights file (`weights_fingerprint`). The built-in presets (`PRESETS`:
`tiny-gemma2`, `tiny-llama`, ...) are made from their name, the tokenizer and
the run's seed, so their name is their identity.

`locate(run, bundle, model, base_model)` finds the base of a run: the folder
`base_model` (`--base-model`) when given, else the recorded name tried
relative to the run, then as given, then at its recorded absolute path; the
folder found must have the recorded identity, or a ConfigError names the run,
the model it expects and what differs. Runs written before identities were
recorded load as they always did (from `config.json`'s `model`).

Imports no torch: `runs.write_bundle` records identities."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Union

from .errors import ConfigError
from .files import file_sha256

__all__ = [
    "same_model",
    "FINGERPRINT",
    "PRESETS",
    "TINY_GEMMA2",
    "TINY_GEMMA3",
    "TINY_LLAMA",
    "TINY_MISTRAL",
    "TINY_PHI3",
    "TINY_QWEN2",
    "TINY_QWEN3",
    "identity",
    "locate",
    "weights_fingerprint",
]

TINY_GEMMA2 = "tiny-gemma2"
TINY_GEMMA3 = "tiny-gemma3"
TINY_LLAMA = "tiny-llama"
TINY_QWEN2 = "tiny-qwen2"
TINY_QWEN3 = "tiny-qwen3"
TINY_MISTRAL = "tiny-mistral"
TINY_PHI3 = "tiny-phi3"
# The keys of af.model.TINY (one per architecture family), named here so that
# torch-free code (settings' help, the CLI) lists them without importing torch.
PRESETS = (TINY_GEMMA2, TINY_GEMMA3, TINY_LLAMA, TINY_QWEN2, TINY_QWEN3, TINY_MISTRAL, TINY_PHI3)

# How a weights file is fingerprinted (recorded, so a later method can be told
# apart): its size, and the sha256 of the size and of _SAMPLES blocks of
# _BLOCK bytes spread evenly from its first byte to its last (the whole file
# when it is smaller than that).
FINGERPRINT = "sampled-sha256-v1"
_BLOCK = 1 << 20
_SAMPLES = 16
_CONFIG = "config.json"
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")

PathLike = Union[str, os.PathLike]


def weights_fingerprint(path: PathLike) -> str:
    """The sampled sha256 of a weights file (`FINGERPRINT`): 16 MiB read at
    most, whatever its size. The first block holds a safetensors file's
    header (every tensor's name, dtype, shape and offset) and fine-tuning
    changes nearly every tensor, so another checkpoint of the same
    architecture differs in the sampled blocks too."""
    size = os.path.getsize(path)
    h = hashlib.sha256(f"{FINGERPRINT}:{size}:".encode())
    with open(path, "rb") as f:
        if size <= _BLOCK * _SAMPLES:
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
        else:
            for i in range(_SAMPLES):
                f.seek((size - _BLOCK) * i // (_SAMPLES - 1))
                h.update(f.read(_BLOCK))
    return h.hexdigest()


def _weight_files(folder: Path) -> list[Path]:
    """The weights transformers loads from `folder`: its safetensors files,
    else its `pytorch_model*.bin` files."""
    for pattern in _WEIGHT_PATTERNS:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def _folder_identity(folder: Path, label: Optional[str] = None) -> dict:
    """The sha256 of the folder's `config.json` and the fingerprint and size
    of each weights file; a ConfigError (naming `label`, default the folder)
    when it is not a model folder."""
    label = label or str(folder)
    config = folder / _CONFIG
    if not folder.is_dir() or not config.is_file():
        raise ConfigError(f"{label}: not a model folder (no {_CONFIG})")
    weights = _weight_files(folder)
    if not weights:
        raise ConfigError(f"{label}: not a model folder (no *.safetensors or *.bin weights)")
    return {
        "config_sha256": file_sha256(config),
        "weights_fingerprint": FINGERPRINT,
        "weights": {
            p.name: {"bytes": p.stat().st_size, "sha256": weights_fingerprint(p)} for p in weights
        },
    }


def identity(name: str) -> dict:
    """`bundle.json`'s `base_model` for the model `name` (`--model` as
    given): a preset's name, or a local folder's name, absolute path and
    identity (`_folder_identity`)."""
    if name in PRESETS:
        return {"name": name, "preset": True}
    return {
        "name": name,
        "preset": False,
        "path": os.path.abspath(name),
        **_folder_identity(Path(name)),
    }


# What identifies a base model in a recorded identity (not the name or the
# path it was found under).
_IDENTITY = ("preset", "config_sha256", "weights")


def same_model(a: dict, b: dict) -> bool:
    """Whether two recorded identities (`bundle.json`'s `base_model`) name
    the same base model."""
    return all(a.get(key) == b.get(key) for key in _IDENTITY)


def _difference(expected: dict, found: dict) -> Optional[str]:
    """What differs between two identities, in words; None when they agree."""
    if expected.get("config_sha256") != found["config_sha256"]:
        return (
            f"config sha256 differs (the run expects {str(expected.get('config_sha256'))[:16]}, "
            f"found {found['config_sha256'][:16]})"
        )
    want, got = expected.get("weights"), found["weights"]
    if not isinstance(want, dict) or set(want) != set(got):
        names = sorted(want) if isinstance(want, dict) else want
        return f"weights files differ (the run expects {names}, found {sorted(got)})"
    if expected.get("weights_fingerprint") != found["weights_fingerprint"]:
        return f"weights fingerprint method {expected.get('weights_fingerprint')!r} is unknown"
    for file, entry in got.items():
        if want[file] != entry:
            return f"weights {file} differ (size or sampled sha256)"
    return None


def locate(run: PathLike, bundle: dict, model: str, base_model: Optional[PathLike] = None) -> str:
    """The path (or preset name) to build the run's decoder from.

    `bundle` is the run's `bundle.json`, `model` its `config.json`'s `model`
    and `base_model` the folder the caller says holds the base (optional).
    Without a recorded identity (a run written before they were recorded)
    that is `base_model`, else `model`, unchecked, as before."""
    run = Path(run)
    recorded = bundle.get("base_model")
    if recorded is None:
        return str(base_model) if base_model is not None else model
    if not isinstance(recorded, dict) or not isinstance(recorded.get("name"), str):
        raise ConfigError(f"{run}/bundle.json: 'base_model' must be an object with a 'name'")
    name = recorded["name"]
    if recorded.get("preset"):
        if base_model is not None and str(base_model) != name:
            raise ConfigError(
                f"{run} was trained on the built-in {name} (made from its name and seed): "
                f"it needs no --base-model, and {base_model} is not {name}"
            )
        return name
    if base_model is not None:
        return _checked(Path(base_model), recorded, run, f"--base-model {base_model}")
    tried, mismatch = [], None
    candidates = [run / name, Path(name), Path(str(recorded.get("path", name)))]
    for path in candidates:
        if path in tried:
            continue
        tried.append(path)
        if (path / _CONFIG).is_file():
            try:
                return _checked(path, recorded, run, f"the base model found at {path}")
            except ConfigError as exc:
                mismatch = mismatch or exc
    if mismatch is not None:
        raise ConfigError(f"{mismatch}; pass --base-model PATH (the folder of {name})")
    raise ConfigError(
        f"{run}: its base model {name} is not found (tried {', '.join(map(str, tried))}); "
        "pass --base-model PATH (the folder of the model it was trained on)"
    )


def _checked(path: Path, recorded: dict, run: Path, what: str) -> str:
    """`path`, when it holds the model `recorded` identifies; else a
    ConfigError naming the run, the expected model and what differs."""
    found = _folder_identity(path, what)
    difference = _difference(recorded, found)
    if difference is not None:
        raise ConfigError(
            f"{what} is not the model the run {run} was trained on "
            f"({recorded['name']}, then at {recorded.get('path')}): {difference}"
        )
    return str(path)
