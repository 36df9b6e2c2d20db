"""`af.merge.merge_runs(runs, out)`: the runs of k folds averaged key by key
into one run, as the 1st place did with its fold adapters; optionally merged
into the base weights.

Every tensor of `decoder.safetensors` (the LoRA A and B matrices, or every
decoder weight of a run trained without LoRA) and of `head.safetensors` is
the (weighted) mean of the runs' tensors of the same name. The A and B
matrices are averaged separately, not their product: the merged adapter's
delta is mean(B) @ mean(A), which is *not* the mean of the runs' deltas
mean(B @ A). The recipe works because runs of the same seed start from the
same base weights and the same A (B starts at zero), and fine-tuning moves
them only a little; average runs of one seed and one architecture only,
which `merge_runs` enforces.

The result is an ordinary run directory: `af.predict.load_run`, `predict`
and `Judge` read it unchanged. `merged.json` records where it came from (the
source runs, the sha256 of their `bundle.json`, the weights)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Optional, Union

import safetensors.torch
import torch
from safetensors import safe_open

from .base_model import locate, same_model
from .errors import ConfigError
from .files import file_sha256, publishing
from .model import classifier_for
from .outputs import MERGED
from .predict import load_run
from .runs import (
    BUNDLE,
    DECODER,
    HEAD,
    TOKENIZER,
    bundle_space,
    merged_training,
    read_bundle,
    read_run_config,
    trained_on,
    write_bundle_file,
    write_run_config,
)
from .tokenizer import Tokenizer
from .torch.quant import dequantized_weight
from .train_config import TrainConfig

__all__ = ["ARCHITECTURE_FIELDS", "MERGED", "merge_runs", "merged_classifier", "write_bundle_from"]

# The config.json fields that decide the model's shape and its base weights:
# the tiny models are randomly initialised from the seed, and LoRA's A too,
# so runs of different seeds do not share the weights their adapters adapt.
ARCHITECTURE_FIELDS = (
    "model",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_targets",
    "head",
    "softcap",
    "attn_implementation",
    "seed",
)
# The bundle fields that decide what the model's inputs and outputs mean.
_BUNDLE_FIELDS = ("encoder", "tokenizer_sha256", "labels")
_TENSOR_FILES = (DECODER, HEAD)


def merge_runs(
    runs: list[Union[str, os.PathLike]],
    out: Union[str, os.PathLike],
    *,
    merge_into_base: bool = False,
    weights: Optional[list[float]] = None,
    overwrite: bool = False,
    base_model: Optional[Union[str, os.PathLike]] = None,
) -> dict:
    """Average the trained runs `runs` (directories written by
    `arena-fast train`) key by key into the new run directory `out`.

    Args:
        runs: one or more runs of the same architecture and seed
            (`ARCHITECTURE_FIELDS` of config.json), trained on data encoded
            the same way (the bundle's encoder config, tokenizer sha256 and
            label order), with the same tensor names and shapes. Every file
            is checked against its run's `bundle.json` first.
        out: the merged run; built in a work directory beside it and renamed
            into place (`files.publishing`), so an interrupted merge leaves
            nothing that looks complete; never one of `runs` or a directory
            holding one; one merge writes it at a time.
        merge_into_base: fold the averaged LoRA adapter into the decoder's
            weights (peft's `merge_and_unload`): `out` is then stored as a
            run trained without LoRA (`lora_r = 0`, every decoder weight in
            `decoder.safetensors`) and needs no peft to predict; a quantised
            run's base is de-quantised first (docs/training.md). Runs trained
            without LoRA have nothing to merge: asking is a `ConfigError`.
        weights: one non-negative weight per run (normalised to sum 1;
            default: equal).
        overwrite: replace an existing non-empty `out`, which must be an
            earlier merge (a run whose bundle lists `merged.json`) holding
            nothing else.
        base_model: the folder of the runs' base model where it is now
            (`--base-model`), checked against the identity the runs recorded
            (`af.base_model.locate`); `merge_into_base` builds the model from
            it. Without it the recorded path is tried.

    Means are taken in float64 as `x_0 + sum_i w_i (x_i - x_0)` and cast back
    to the first run's dtype of each tensor, so k identical runs give back
    bit-identical tensors, whatever the dtype.

    Returns `{"out", "runs", "weights", "decoder_tensors", "head_tensors",
    "lora_r", "merged_into_base", "bundle"}`.
    """
    paths = [Path(r) for r in runs]
    out = Path(out)
    if not paths:
        raise ConfigError("merge: give at least one run")
    shares = _normalised(weights, len(paths))
    with publishing(out, "merge", overwrite=overwrite, inputs=paths, inputs_name="runs") as work:
        bundles, configs = _read_runs(paths)
        base = locate(paths[0], bundles[0], configs[0].model, base_model)
        lora_r = configs[0].lora_r
        if merge_into_base and not lora_r:
            raise ConfigError(
                f"{paths[0]}: trained without LoRA (lora_r = 0): there is no adapter to merge "
                "into the base weights; average the runs without merge_into_base (--merge)"
            )
        counts = {
            name: _average_file([run / name for run in paths], shares, work / name)
            for name in _TENSOR_FILES
        }
        shutil.copyfile(paths[0] / TOKENIZER, work / TOKENIZER)
        folds = {c.fold for c in configs}
        # A merge of several folds has no held-out fold of its own: every
        # fold's rows trained one of its sources.
        fold = folds.pop() if len(folds) == 1 else None
        config = dataclasses.replace(configs[0], fold=fold, out=str(out))
        if fold is None:  # what chose among evaluations of a held-out fold has none
            config = dataclasses.replace(config, save=None, eval_every=None, early_stopping=None)
        write_run_config(work, config)
        provenance = _provenance(paths, configs, shares)
        _write_json(work / MERGED, provenance)
        # What the merge trained on: its sources' folds (bundle.json trained_on).
        source = {
            **bundles[0],
            "trained_on": merged_training(
                [trained_on(b) for b in bundles], [c.fold for c in configs]
            ),
        }
        bundle = write_bundle_from(work, source)
        if merge_into_base:
            counts[DECODER] = _merge_into_base(work, base)
            # A float run now: lora_r and the quantisation are the adapter's and base's.
            provenance.update(merged_into_base=True, lora_r=lora_r, dequantized=config.quantization)
            config = dataclasses.replace(config, lora_r=0, quantization=None)
            write_run_config(work, config)
            _write_json(work / MERGED, provenance)
            bundle = write_bundle_from(work, source)
    return {
        "out": out,
        "runs": len(paths),
        "weights": shares,
        "decoder_tensors": counts[DECODER],
        "head_tensors": counts[HEAD],
        "lora_r": config.lora_r,
        "merged_into_base": merge_into_base,
        "bundle": bundle,
    }


def _read_runs(paths: list[Path]) -> tuple[list[dict], list[TrainConfig]]:
    """The runs' bundles (every file checked against its sha256) and
    settings, refused unless they can be averaged (`_check_compatible`)."""
    bundles, configs = [], []
    for run in paths:
        if not run.is_dir():
            raise ConfigError(f"{run}: not a training run directory")
        bundles.append(read_bundle(run))
        configs.append(read_run_config(run))
    _check_compatible(paths, [dataclasses.asdict(c) for c in configs], bundles)
    return bundles, configs


def _provenance(paths: list[Path], configs: list[TrainConfig], shares: list[float]) -> dict:
    """`merged.json`: how the merge was made and from which runs (their
    bundle's sha256, fold and weight)."""
    return {
        "format_version": 1,
        "method": "mean of each tensor (LoRA A and B averaged separately)",
        "merged_into_base": False,
        "sources": [
            {
                "run": str(run),
                "bundle_sha256": file_sha256(run / BUNDLE),
                "fold": c.fold,
                "weight": w,
            }
            for run, c, w in zip(paths, configs, shares)
        ],
    }


def write_bundle_from(out_dir: Union[str, os.PathLike], source: dict) -> dict:
    """`bundle.json` for a run directory whose weights were derived from runs
    rather than trained on a dataset: what the inputs and outputs mean
    (encoder config, tokenizer sha256, label order, dataset swap) and, when
    it holds one, `trained_on` (`runs.merged_training`: the sources' folds)
    come from `source` (a source run's bundle); the files, `merged.json`
    among them, are hashed (`runs.write_bundle_file`)."""
    return write_bundle_file(Path(out_dir), source, extra_files=(MERGED,))


def _normalised(weights: Optional[list[float]], k: int) -> list[float]:
    if weights is None:
        return [1.0 / k] * k
    weights = [float(w) for w in weights]
    if len(weights) != k:
        raise ConfigError(f"weights: {len(weights)} given for {k} runs (one per run)")
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise ConfigError(f"weights must be finite and non-negative, got {weights}")
    total = sum(weights)
    if total <= 0:
        raise ConfigError(f"weights must not all be zero, got {weights}")
    return [w / total for w in weights]


def _check_compatible(paths: list[Path], configs: list[dict], bundles: list[dict]) -> None:
    first = paths[0]
    for run, config, bundle in zip(paths[1:], configs[1:], bundles[1:]):
        for name in ARCHITECTURE_FIELDS:
            a, b = configs[0].get(name), config.get(name)
            if a != b:
                raise ConfigError(
                    f"{run}: config.json {name} = {b!r} differs from {first}'s {a!r}; "
                    "only runs of the same architecture and seed can be averaged"
                )
        ours_space, theirs_space = bundle_space(bundles[0], first), bundle_space(bundle, run)
        if ours_space != theirs_space:
            raise ConfigError(
                f"{run}: label space {theirs_space.name!r} differs from {first}'s "
                f"{ours_space.name!r}; only runs of one label space can be averaged"
            )
        for name in _BUNDLE_FIELDS:
            if bundles[0].get(name) != bundle.get(name):
                raise ConfigError(
                    f"{run}: bundle.json {name} differs from {first}'s; the runs were "
                    "trained on data encoded differently"
                )
        ours, theirs = bundles[0].get("base_model"), bundle.get("base_model")
        if isinstance(ours, dict) and isinstance(theirs, dict):
            if not same_model(ours, theirs):
                raise ConfigError(
                    f"{run}: trained on another base model than {first} "
                    f"({theirs.get('name')} vs {ours.get('name')}: bundle.json base_model "
                    "differs); only runs of the same base model can be averaged"
                )


def _average_file(files: list[Path], shares: list[float], dest: Path) -> int:
    """The weighted mean of the safetensors `files`, key by key, written to
    `dest`; returns the number of tensors. One tensor of each file is in
    memory at a time (plus the result), not k models."""
    with ExitStack() as stack:
        merged = _mean_tensors(files, shares, stack)
    safetensors.torch.save_file(merged, str(dest))
    return len(merged)


def _mean_tensors(files: list[Path], shares: list[float], stack) -> dict:
    handles = [stack.enter_context(safe_open(str(f), framework="pt")) for f in files]
    keys = list(handles[0].keys())
    for file, handle in zip(files[1:], handles[1:]):
        theirs = set(handle.keys())
        for key in keys:
            if key not in theirs:
                raise ConfigError(f"{file}: has no tensor {key!r} (which {files[0]} has)")
        extra = sorted(theirs - set(keys))
        if extra:
            raise ConfigError(f"{file}: has tensor {extra[0]!r}, which {files[0]} lacks")
        for key in keys:
            a, b = handles[0].get_slice(key).get_shape(), handle.get_slice(key).get_shape()
            if list(a) != list(b):
                raise ConfigError(f"{file}: tensor {key!r} has shape {b}, {files[0]} {a}")
    merged = {}
    for key in keys:
        first = handles[0].get_tensor(key)
        if not first.is_floating_point():
            for file, handle in zip(files[1:], handles[1:]):
                if not torch.equal(handle.get_tensor(key), first):
                    raise ConfigError(f"{file}: integer tensor {key!r} differs (not averaged)")
            merged[key] = first.contiguous()
            continue
        # x_0 + sum w_i (x_i - x_0): equal inputs give differences of exactly
        # zero, so identical runs come back bit for bit.
        base = first.to(torch.float64)
        acc = torch.zeros_like(base)
        for share, handle in zip(shares[1:], handles[1:]):
            acc += share * (handle.get_tensor(key).to(torch.float64) - base)
        merged[key] = (base + acc).to(first.dtype).contiguous()
    return merged


def _merge_into_base(work: Path, base: str) -> int:
    """Fold the adapter of the run in `work` into its decoder's weights (the
    base model `base`, located and checked) and store every decoder weight,
    as a run trained without LoRA is stored; returns the number of tensors.
    A quantised run's adapter is folded into the de-quantised weights it
    was trained on (`_dequantized`)."""
    # The tokenizer sizes the tiny models' vocabulary (the demo one would not).
    tokenizer = Tokenizer.from_file(work / TOKENIZER)
    model, _ = merged_classifier(work, tokenizer, base)
    weights = {n: p.detach().contiguous() for n, p in model.decoder.named_parameters()}
    safetensors.torch.save_file(weights, str(work / DECODER))
    return len(weights)


def merged_classifier(
    run: Union[str, os.PathLike],
    tokenizer: Tokenizer,
    base_model: Optional[Union[str, os.PathLike]] = None,
):
    """The classifier of the run directory `run` (`af.predict.load_run`)
    with its LoRA adapter folded into the decoder's weights (peft's
    `merge_and_unload`; a quantised run's base de-quantised first,
    `_dequantized`): `model.decoder` is then the plain transformers model.
    A run trained without LoRA comes back as it is. Returns `(model,
    config)`, `config` as the run recorded it. The one place runs are
    merged: `merge_runs(merge_into_base=True)` and `af.export` use it."""
    model, config = load_run(run, tokenizer=tokenizer, base_model=base_model)
    if not config.lora_r:
        return model, config
    if config.quantization is not None:
        base = locate(Path(run), read_bundle(Path(run)), config.model, base_model)
        model = _dequantized(model, dataclasses.replace(config, model=base), tokenizer)
    with torch.no_grad():
        model.decoder = model.decoder.merge_and_unload()
    return model, config


def _dequantized(model, config: TrainConfig, tokenizer: Tokenizer):
    """The float twin of the quantised classifier `model` (built from
    `config` without quantisation): every 4-bit / 8-bit weight de-quantised
    to float32 (`af.torch.quant.dequantized_weight`), every other tensor,
    the adapter and the head copied, so that folding the adapter in gives
    the model the run trained and evaluated, up to float rounding (the
    original float weights would differ from it by the quantisation error)."""
    twin = classifier_for(dataclasses.replace(config, quantization=None), tokenizer)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, param in twin.named_parameters():
            owner, _, attr = name.rpartition(".")
            source = modules[owner]
            value = dequantized_weight(source) if attr == "weight" else None
            param.copy_(getattr(source, attr) if value is None else value)
    return twin


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")
