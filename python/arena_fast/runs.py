"""A training run's directory: its settings (`config.json`), weights
(`decoder.safetensors`, `head.safetensors`), checkpoint and `bundle.json`,
which lists every file with its sha256 and is written last, so a directory
without it is not a finished run.

This module owns the directory's format and imports no torch (`arena-fast
report` reads runs without it): the settings, the bundle, the checkpoint's
`state.json` and which checkpoint is complete. The tensors themselves are
written and read by `af.weights`, in the torch layer.

Everything read back from a run is untrusted: `read_bundle` refuses a listed
file that changed or lies outside the run, `read_run_config` checks the
settings (`TrainConfig.from_dict`) before a model is built from them, and a
checkpoint whose `state.json` is not `{"step": <integer>}` is a
`ConfigError` naming its file. Write failures (a full disk) are an
`ArenaFastError` naming the path."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Optional

from . import base_model
from ._core import __version__
from .dataset import read_manifest
from .errors import ArenaFastError, ConfigError
from .files import check_output, file_sha256, output_lock, replacing, write_bytes
from .labels import CLASS_COLUMNS, LABEL_SPACES, LabelSpace, label_space
from .outputs import (
    BUNDLE,
    CHECKPOINT,
    DECODER,
    HEAD,
    METRICS,
    PREDICTIONS,
    RUN_EXTRAS,
    RUN_FILES,
    TOKENIZER,
)
from .outputs import RUN_CONFIG as CONFIG
from .outputs import TOKENIZER as DATASET_TOKENIZER
from .train_config import TrainConfig

__all__ = [
    "BUNDLE",
    "CHECKPOINT",
    "CONFIG",
    "DECODER",
    "HEAD",
    "PREDICTIONS",
    "TOKENIZER",
    "LABEL_ORDER",
    "METRICS",
    "checkpoint_siblings",
    "build_settings",
    "bundle_space",
    "claiming",
    "dataset_identity",
    "dataset_sha256",
    "describe_differences",
    "describe_training",
    "merged_training",
    "read_bundle",
    "read_checkpoint_step",
    "read_run_config",
    "recorded_space",
    "resume_point",
    "trained_on",
    "write_bundle",
    "write_bundle_file",
    "write_checkpoint_step",
    "write_run_config",
    "writing",
]

# The bundle's label order of an `abt` run (a run of another space lists
# that space's columns).
LABEL_ORDER = CLASS_COLUMNS
_STATE = "state.json"  # a checkpoint's step, written last


@contextlib.contextmanager
def writing(path: Path, errors: tuple = ()) -> Iterator[None]:
    """Write failures in the block (a full disk, a read-only mount) as an
    ArenaFastError naming `path`: OSError, the RuntimeError torch raises for
    them, and `errors` (the classes other writers raise, e.g. safetensors'
    SafetensorError)."""
    try:
        yield
    except (OSError, RuntimeError, *errors) as exc:
        text = str(exc).strip()
        reason = getattr(exc, "strerror", None) or (text.splitlines()[0] if text else "")
        raise ArenaFastError(
            f"{path}: cannot write ({type(exc).__name__}: {reason or type(exc).__name__})"
        ) from None


@contextlib.contextmanager
def claiming(config: TrainConfig) -> Iterator[Path]:
    """The run directory `config.out`, checked and locked for the block
    (`files.check_output`, `files.output_lock`): it does not exist, is
    empty, or is a run of arena-fast that `resume` continues or `overwrite`
    replaces; anything else, the dataset, a directory holding it or one
    inside it, is refused before training; a second writer of the run fails
    at once."""
    out = check_output(
        config.out,
        "run",
        overwrite=config.overwrite or config.resume,
        inputs=[config.data],
        inputs_name="dataset",
    )
    data = Path(os.path.realpath(config.data))
    if data in Path(os.path.realpath(out)).parents:
        raise ConfigError(
            f"{config.out}: inside the dataset {config.data}; write the run beside the dataset"
        )
    with output_lock(out) as locked:
        yield locked


def write_run_config(out_dir: Path, config: TrainConfig) -> None:
    """The run's settings as `config.json` (every field, in field order),
    written atomically."""
    path = Path(out_dir) / CONFIG
    with writing(path):
        write_bytes(path, (json.dumps(dataclasses.asdict(config), indent=2) + "\n").encode())


def write_bundle(out_dir: Path, data) -> dict:
    """Make the run directory self-describing: the tokenizer the data was
    encoded with, the exact encoder config, the label order, the base model
    by identity (`base_model.identity` of `config.json`'s `model`, written
    first), the rows it trained on (`trained_on`: the dataset's identity,
    its fold count and `config.json`'s held-out `fold`), library versions
    and the sha256 of every file, in `bundle.json` (written last)."""
    path = out_dir / TOKENIZER
    with writing(path), replacing(path) as tmp:
        shutil.copyfile(data.path / DATASET_TOKENIZER, tmp)
    config = _read_json(out_dir / CONFIG)
    space = getattr(data, "space", None) or label_space(None)
    meaning = {
        "labels": list(space.columns),
        "label_space": space.name,
        "encoder": data.manifest["encoder"],
        "tokenizer_sha256": data.manifest["tokenizer"]["sha256"],
        "dataset_swap": bool(data.manifest.get("swap")),
        "base_model": base_model.identity(config["model"]),
        "trained_on": {
            "dataset_sha256": dataset_identity(data.manifest),
            "dataset": str(config.get("data") or data.path),
            "folds": int(data.manifest["folds"]),
            "held_out": config.get("fold"),
        },
    }
    return write_bundle_file(out_dir, meaning)


def dataset_sha256(data: Path) -> str:
    """A built dataset's identity (`dataset_identity`), from its checked
    `manifest.json`."""
    return dataset_identity(read_manifest(Path(data)))


def dataset_identity(manifest: dict) -> str:
    """A dataset's identity: the sha256 of its shards' sha256s, in order,
    from its manifest. The shards hold every row's id, fold, labels and
    token ids, so two builds holding the same rows in the same folds are the
    same dataset wherever they were built from (the manifest itself also
    records the inputs' paths and the library version), and any other rows,
    folds or encoding give another identity."""
    digests = [shard["sha256"] for shard in manifest["shards"]]
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def trained_on(bundle: dict, where: Any = BUNDLE) -> Optional[dict]:
    """Which rows a run trained on, from its bundle: `dataset_sha256` (the
    dataset's identity; None when unknown, a merge of runs of different
    datasets), `dataset` (its path as given to train, for people), `folds`
    (its fold count; None when unknown), `held_out` (the fold it did not
    train on; None: it trained on every row) and, for a merged run,
    `sources_held_out` (each source's held-out fold). None for a run
    written before runs recorded it; a record that is not what a run writes
    is a ConfigError naming `where` (the bundle's path) and the field."""
    record = bundle.get("trained_on")
    if record is None:
        return None
    _check_trained_on(record, Path(where))
    return dict(record)


def merged_training(records: list, folds: list) -> dict:
    """`trained_on` of a run merged from sources whose bundles say
    `records` (each one's `trained_on`; None where a source does not say)
    and whose held-out folds are `folds`: the dataset and fold count when
    every source names the same ones, the held-out fold when every source
    held out the same one (None otherwise: every row trained at least one
    source), and `sources_held_out`."""
    known = [r for r in records if r is not None]

    def common(key: str):
        values = {r.get(key) for r in known}
        return values.pop() if len(known) == len(records) and len(values) == 1 else None

    held = set(folds)
    return {
        "dataset_sha256": common("dataset_sha256"),
        "dataset": common("dataset"),
        "folds": common("folds"),
        "held_out": held.pop() if len(held) == 1 else None,
        "sources_held_out": list(folds),
    }


def describe_training(record: Optional[dict], fold: Optional[int] = None) -> str:
    """The rows a run trained on, in words, from its `trained_on` record
    (`fold`: its config.json's, for a run whose bundle does not say)."""
    if record is None:
        if fold is None:
            return "every row of its dataset (no held-out fold)"
        return f"every fold but {fold} (the run does not record which dataset)"
    sources, held = record.get("sources_held_out"), record.get("held_out")
    of = f" of {record['folds']}" if record.get("folds") else ""
    if sources is not None:
        named = sorted({-1 if f is None else f for f in sources})
        names = ", ".join("none" if f < 0 else str(f) for f in named)
        if held is not None:
            each = f"a merge of {len(sources)} runs, each holding out fold {held}"
            return f"every fold but {held}{of}: {each}"
        return (
            f"every row: a merge of {len(sources)} runs holding out folds {{{names}}}{of}, so "
            "each row trained at least one of them (no row is held out)"
        )
    if held is None:
        return "every row of its dataset (no held-out fold)"
    return f"every fold but {held}{of} (fold {held} held out)"


def write_bundle_file(out_dir: Path, meaning: dict, extra_files: tuple = ()) -> dict:
    """`bundle.json` of a run directory holding the run's files: `meaning`
    (labels, encoder, tokenizer_sha256, dataset_swap: what the inputs and
    outputs mean; base_model and trained_on, when it holds them), this
    process's library
    versions, and the sha256 of the run's files and of `extra_files` (which
    must exist). Written last, atomically."""
    versions = {"arena_fast": __version__}
    for lib in ("torch", "transformers", "peft", "safetensors"):
        try:
            versions[lib] = version(lib)
        except PackageNotFoundError:
            versions[lib] = None
    required = (*RUN_FILES, *extra_files)
    for name in required:
        if not (out_dir / name).is_file():
            raise ConfigError(f"{out_dir / name}: missing (a run needs it)")
    names = [*required, *(n for n in RUN_EXTRAS if (out_dir / n).is_file())]
    bundle = {
        "format_version": 1,
        "versions": versions,
        **{key: meaning[key] for key in ("labels", "encoder", "tokenizer_sha256", "dataset_swap")},
        **{
            key: meaning[key]
            for key in ("label_space", "base_model", "trained_on")
            if key in meaning
        },
        "files": {name: file_sha256(out_dir / name) for name in names},
    }
    with writing(out_dir / BUNDLE):
        write_bytes(out_dir / BUNDLE, (json.dumps(bundle, indent=2) + "\n").encode())
    return bundle


def build_settings(run: Path) -> dict:
    """What `build-dataset --like RUN` takes from a finished run (its bundle
    checked by `read_bundle`): `tokenizer` (the run's tokenizer.json),
    `encoder` (the encoder config its training data was built with, as
    `af.Encoder.from_config` reads it) and `swap` (whether that data held
    both A/B orders)."""
    run = Path(run)
    bundle = read_bundle(run)
    return {
        "tokenizer": str(run / TOKENIZER),
        "encoder": bundle["encoder"],
        "swap": bool(bundle.get("dataset_swap")),
    }


def describe_differences(run_settings: dict, data_settings: dict) -> list[str]:
    """Every setting on which a run and a dataset differ, as `name: run X,
    data Y` (nested settings by dotted name, e.g. `template.user`; a setting
    one side lacks shows as `missing`), in sorted order."""
    run_flat, data_flat = _flatten(run_settings), _flatten(data_settings)
    missing = "missing"
    return [
        f"{name}: run {run_flat.get(name, missing)!r}, data {data_flat.get(name, missing)!r}"
        for name in sorted(run_flat.keys() | data_flat.keys())
        if run_flat.get(name, missing) != data_flat.get(name, missing)
    ]


def _flatten(settings: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_bundle(run: Path) -> dict:
    """The run's `bundle.json`, after checking its fields' types and every
    file it lists against its sha256: a run whose files changed, that lists a
    file outside the run directory (an absolute path, `..`, a link leading
    out) or lacks one a run needs is refused."""
    run = Path(run)
    path = run / BUNDLE
    if not path.is_file():
        raise ConfigError(f"{run}: not a finished training run (no {BUNDLE})")
    bundle = _read_json(path)
    files = bundle.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise ConfigError(f"{path}: 'files' must map the run's file names to sha256 digests")
    for key, kind in (("encoder", dict), ("tokenizer_sha256", str)):
        if not isinstance(bundle.get(key), kind):
            raise ConfigError(f"{path}: {key!r} must be a {kind.__name__}")
    missing = [name for name in RUN_FILES if name not in files]
    if missing:
        raise ConfigError(f"{path}: does not list {missing} (every run has them)")
    bundle_space(bundle, path)
    if "trained_on" in bundle:
        _check_trained_on(bundle["trained_on"], path)
    root = run.resolve()
    for name, digest in files.items():
        file = run / name
        if (
            name in ("", ".", "..")
            or Path(name).name != name
            or "\\" in name
            or file.resolve().parent != root
        ):
            raise ConfigError(
                f"{path}: lists {name!r}, not a file directly inside the run directory"
            )
        if not file.is_file():
            raise ConfigError(f"{file}: listed in {BUNDLE} but missing")
        if file_sha256(file) != digest:
            raise ConfigError(f"{file}: sha256 differs from {BUNDLE} (the file was changed)")
    return bundle


def bundle_space(bundle: dict, path: Any = BUNDLE) -> LabelSpace:
    """The label space of a run's bundle: its `label_space`, whose columns
    its `labels` must list; a bundle written before label spaces has none
    and is `abt`. A ConfigError naming `path` otherwise."""
    name = bundle.get("label_space", "abt")
    if not isinstance(name, str) or name not in LABEL_SPACES:
        raise ConfigError(
            f"{path}: 'label_space' must be one of {', '.join(LABEL_SPACES)}, got {name!r:.40}"
        )
    space = LABEL_SPACES[name]
    labels = bundle.get("labels")
    if labels is not None and labels != list(space.columns):
        raise ConfigError(
            f"{path}: 'labels' {labels!r:.120} are not the columns of label space "
            f"{name!r} {list(space.columns)}"
        )
    return space


def recorded_space(run: Any) -> Optional[LabelSpace]:
    """The label space the bundle.json of `run` records, read without
    checking the run's files (a quick look before a model loads, e.g. to
    refuse a submission format early; `read_bundle` checks the run whole):
    None when the bundle cannot be read or names no valid space."""
    try:
        return bundle_space(_read_json(Path(run) / BUNDLE))
    except ConfigError:
        return None


def _check_trained_on(record: Any, path: Path) -> None:
    """A ConfigError naming the field of a `trained_on` record that is not
    what `write_bundle` / `merged_training` write."""
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: 'trained_on' must be an object")
    folds = record.get("folds")

    def fold(value: Any) -> bool:
        if value is None:
            return True
        if type(value) is not int or value < 0:
            return False
        return not isinstance(folds, int) or value < folds

    sources = record.get("sources_held_out")
    checks = {
        "dataset_sha256": isinstance(record.get("dataset_sha256"), (str, type(None))),
        "dataset": isinstance(record.get("dataset"), (str, type(None))),
        "folds": folds is None or (type(folds) is int and folds >= 1),
        "held_out": fold(record.get("held_out")),
        "sources_held_out": sources is None
        or (isinstance(sources, list) and all(fold(f) for f in sources)),
    }
    for name, ok in checks.items():
        if not ok:
            raise ConfigError(
                f"{path}: trained_on.{name} is {record.get(name)!r:.60}, not what a run records"
            )


def read_run_config(run: Path) -> TrainConfig:
    """The settings a run was trained with (its `config.json`), checked like
    any settings (`TrainConfig.from_dict`) before a model is built from them."""
    path = Path(run) / CONFIG
    values = _read_json(path)
    for name in _NO_LIMIT_WAS_ZERO:
        if values.get(name) == 0 and not isinstance(values.get(name), bool):
            values[name] = None  # a run written when 0 meant "no limit"
    try:
        return TrainConfig.from_dict(values)
    except ConfigError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {exc}") from None


# Settings of the training loop alone, where runs written before None became
# the only "no limit" stored 0.
_NO_LIMIT_WAS_ZERO = ("max_steps", "checkpoint_every", "max_seconds")


def _read_json(path: Path) -> Any:
    """A JSON object from `path`, or a ConfigError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


# -- checkpoints ------------------------------------------------------------------


def checkpoint_siblings(path: Path) -> tuple[Path, Path]:
    """`checkpoint.old` and `checkpoint.tmp` beside the checkpoint `path`:
    the previous checkpoint while a new one is renamed into place, and the
    new one while it is written."""
    return path.with_name(path.name + ".old"), path.with_name(path.name + ".tmp")


def write_checkpoint_step(directory: Path, step: int) -> None:
    """The checkpoint's `state.json` (`{"step": N}`), written last: a
    checkpoint directory without it is incomplete."""
    (Path(directory) / _STATE).write_text(json.dumps({"step": step}) + "\n")


def read_checkpoint_step(directory: Path) -> int:
    """The step a checkpoint was saved at, from its `state.json`; a
    ConfigError naming the file when it is not `{"step": <integer >= 0>}`."""
    path = Path(directory) / _STATE
    step = _read_json(path).get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ConfigError(f"{path}: 'step' must be a non-negative integer, got {step!r:.60}")
    return step


def resume_point(out_dir: Path) -> bool:
    """Make `out_dir/checkpoint` the newest complete checkpoint, for a run
    asked to resume; False when the run has none at all (a fresh start).
    `checkpoint.old` (a save killed between its two renames) is renamed back
    into place; `checkpoint.tmp` (a save killed while writing) is never
    trusted, and when it is all there is the resume is refused rather than
    silently starting again at step 1."""
    path = out_dir / CHECKPOINT
    old, tmp = checkpoint_siblings(path)
    if path.exists():
        return True  # complete (renamed into place last); load_checkpoint checks it
    if (old / _STATE).is_file():
        old.rename(path)
        shutil.rmtree(tmp, ignore_errors=True)
        return True
    leftovers = [p.name for p in (old, tmp) if p.exists()]
    if leftovers:
        raise ConfigError(
            f"{out_dir}: no complete checkpoint to resume from ({', '.join(leftovers)}: a save "
            "interrupted before it finished); remove them, or train without resume to start "
            "again at step 1"
        )
    return False
