"""`af.predict.predict(run, data)`: the probabilities of a trained run on a
built dataset, with swap TTA when the dataset holds both orders, written as a
Kaggle submission CSV.

The model is rebuilt from the run's `config.json` (the same architecture and
seed) and its trained weights (`decoder.safetensors`, `head.safetensors`);
the rows are the dataset's token ids, encoded once by `build-dataset`.
What training's evaluation shares with it (logits, probabilities, the
per-row table) is `af.infer`, re-exported here. A reward run (`objective`
reward) predicts each pair once, from its two rewards (`predict`, `Judge`;
docs/reward.md)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .base_model import locate
from .dataset import FLAG_EMPTY_A, FLAG_EMPTY_B, FLAG_IDENTICAL, load_dataset, read_manifest
from .encoder import Encoder
from .errors import ConfigError, InputError
from .files import file_sha256, replacing
from .infer import (
    dataset_predictions,
    pair_rewards,
    predict_logits,
    prediction_table,
    probabilities,
    reward_predictions,
    reward_probabilities,
    swap_passes,
)
from .labels import LabelSpace, space_of_width
from .model import classifier_for, default_attention
from .runs import (
    BUNDLE,
    build_settings,
    bundle_space,
    dataset_sha256,
    describe_differences,
    describe_training,
    read_bundle,
    read_run_config,
    recorded_space,
    trained_on,
)
from .sources import METADATA_SCHEMA, TEXT_COLUMNS, ReadOptions, read
from .sources.demo import demo_chunks
from .submission import write_submission
from .tokenizer import Tokenizer
from .torch.data import resolve_layout
from .weights import load_weights

__all__ = [
    "Judge",
    "dataset_predictions",
    "load_run",
    "prediction_table",
    "predict_logits",
    "predict",
    "probabilities",
    "postprocess_rules",
    "run_encoder",
    "SPLITS",
    "rows_to_score",
    "write_submission",
    "source_rows",
    "write_canonical",
]


def load_run(
    run: Union[str, os.PathLike],
    tokenizer: Any = None,
    base_model: Optional[Union[str, os.PathLike]] = None,
):
    """The classifier a run directory describes, with its trained weights
    (refused when a file differs from the run's `bundle.json`, and when its
    `config.json` holds settings `TrainConfig.validate` refuses: checked
    before the model is built, so a corrupted `lora_r` allocates nothing).

    The base model is the folder `base_model` when given, else the one the
    run recorded (`af.base_model.locate`: tried relative to the run, then as
    given), and must be the model the run was trained on (its recorded
    identity), or a ConfigError says what differs. Returns `(model, config)`
    with `config` as the run recorded it."""
    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"{run}: not a training run directory")
    bundle = read_bundle(run)  # every file matches its sha256, or the run is refused
    config = read_run_config(run)
    base = locate(run, bundle, config.model, base_model)
    space = bundle_space(bundle, run / BUNDLE)
    model = classifier_for(dataclasses.replace(config, model=base), tokenizer, space.k)
    load_weights(model, run)
    if torch.cuda.is_available() and config.quantization is None:
        model.to("cuda")
    model.eval()
    return model, config


def predict(
    run: Union[str, os.PathLike],
    data: Union[str, os.PathLike],
    *,
    tta: Optional[bool] = None,
    max_tokens: int = 8192,
    max_rows: Optional[int] = None,
    layout: Optional[str] = None,
    postprocess: bool = False,
    base_model: Optional[Union[str, os.PathLike]] = None,
    split: Optional[str] = None,
    progress: Optional[Callable[[dict], None]] = None,
) -> dict:
    """Probabilities for the rows of the dataset `data` that `split` names
    (`rows_to_score`: by default the run's held-out fold when `data` is the
    dataset it trained on, else every row): `ids`, `probs`
    (n, K; the swap-TTA average when `tta` (None: True) and the dataset
    has both orders),
    `logits` (of the original order) and, when the dataset has both orders,
    `probs_original` and `probs_swapped` (the swapped prediction mapped
    back); `label_space`, the run's (rows of K = its classes; data of
    another label space is refused); per row also `labels` (NaN when
    unlabelled), `turns`, `truncated` and `folds`, and `language` /
    `category` when the dataset carries that row metadata (the prediction
    table's columns, which `af.diagnostics.summarize` breaks scores down
    by). `postprocess` applies the 4th place's rules last
    (`postprocess_rules`). `base_model`: the folder of the run's base model
    where it is now (`load_run`). Which rows these are: `split`, `rows`
    (the prediction table's metadata, `af.diagnostics.ROWS_KEY`),
    `trained` (per row, whether the run trained on it; None when not
    known) and `notes` (what a user should know, e.g. that the run does not
    say which rows it trained on). `progress`: `af.infer.predict_logits`'s
    (`{"rows": done, "total": n}` as the batches are predicted).

    A reward run (`objective` "reward", on data of the separate layout:
    pair i is rows 2i and 2i + 1) gives one prediction per pair: `rewards`
    (n, 2, each answer's reward), `probs` from them by the run's tie
    parameter (`af.infer.reward_probabilities`), `tie_model` and
    `tie_prob_of_equal_rewards`, and no `logits`. It has no swap TTA (its
    probabilities mirror exactly when A and B exchange): `tta=True` is a
    ConfigError saying so."""
    bundle = read_bundle(Path(run))
    reward = _check_reward_tta(run, tta)
    rows = rows_to_score(run, bundle, data, split)
    if rows["split"] == "all":
        dataset = load_dataset(data, swap=None)
    else:
        dataset = load_dataset(data, fold=rows["held_out"], split=rows["split"], swap=None)
    _check_settings(run, bundle, data, dataset, tta is not False and not reward)
    model, config = load_run(run, tokenizer=dataset.tokenizer(), base_model=base_model)
    if layout is None:
        layout = _run_layout(config, model)
    logits = predict_logits(model, dataset.encoded, layout, max_tokens, max_rows, progress=progress)
    where = f"predicting {data} with {run}"
    if model.is_reward:
        rewards = pair_rewards(logits, dataset.ids, where)
        tie = model.head.tie
        probs = reward_probabilities(rewards, dataset.space, tie)
        out = reward_predictions(dataset, rewards, probs)
        out["tie_model"] = config.tie_model
        out["tie_prob_of_equal_rewards"] = tie.tie_prob_of_equal_rewards()
    else:
        out = dataset_predictions(dataset, logits, tta=tta is not False, where=where)
    out["dataset"] = Path(data)
    out["label_space"] = dataset.space.name
    out["split"], out["notes"] = rows["split"], rows.pop("notes")
    out["rows"] = rows
    out["trained"] = None
    if rows["own_dataset"]:
        held = rows["held_out"]
        out["trained"] = np.ones(len(out["ids"]), bool) if held is None else out["folds"] != held
    if postprocess:  # the flags of each pair's first row when rows come in twos
        paired = dataset.swapped or len(dataset.flags) == 2 * len(out["ids"])
        flags = dataset.flags[0::2] if paired else dataset.flags
        out["probs"], out["postprocessed"] = postprocess_rules(out["probs"], flags)
    return out


SPLITS = ("valid", "train", "all")
# Why a reward model has no swap TTA (a request for it is refused with this).
REWARD_NO_TTA = (
    "a reward model is symmetric by construction (exchanging A and B exchanges the two "
    "rewards, and its probabilities mirror exactly): swap TTA would give the same, so it "
    "does not apply"
)


def _check_reward_tta(run, tta: Optional[bool]) -> bool:
    """Whether `run` is a reward run (its config.json), refusing `tta=True`
    for one (`REWARD_NO_TTA`) before anything is loaded."""
    reward = read_run_config(run).reward
    if reward and tta:
        raise ConfigError(f"--tta (tta=True) with the reward run {run}: {REWARD_NO_TTA}")
    return reward


def rows_to_score(run, bundle: dict, data, split: Optional[str] = None) -> dict:
    """Which rows of the dataset `data` the run (whose checked `bundle` is
    given) scores, from what it trained on (`runs.trained_on`): `split`
    "valid" (its held-out fold), "train" (the folds it trained on) or "all";
    None: "valid" when `data` is the run's own dataset (the same rows in the
    same folds: `runs.dataset_sha256`) and the run has a held-out fold, else "all".
    "valid" and "train" on other data, or for a run without a held-out fold
    or that does not record its dataset, are a ConfigError saying why.

    Returns the table's `rows` metadata (`af.diagnostics.ROWS_KEY`: split,
    held_out, own_dataset, dataset, dataset_sha256, run) and `notes`."""
    if split is not None and split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r:.40}")
    read_manifest(data)  # a dataset, or an InputError naming it
    sha = dataset_sha256(Path(data))
    record = trained_on(bundle)
    known = record is not None and record.get("dataset_sha256") is not None
    own = (record["dataset_sha256"] == sha) if known else None
    held = record.get("held_out") if record is not None else None
    notes = []
    if split is None:
        split = "valid" if own and held is not None else "all"
        if record is None:
            notes.append(
                f"the run {run} does not say which rows it trained on (written before runs "
                "recorded it): scoring every row, which may include rows it trained on"
            )
    elif split != "all":
        why = None
        if record is None:
            why = "the run does not record which rows it trained on (written before runs did)"
        elif not known:
            why = f"the run does not record one dataset ({describe_training(record)})"
        elif not own:
            why = (
                f"{data} is not the dataset the run trained on ({record.get('dataset')}: its "
                "shards hold other rows, folds or token ids)"
            )
        elif held is None:
            why = f"the run has no held-out fold (it trained on {describe_training(record)})"
        if why:
            raise ConfigError(
                f"--split {split} (split={split!r}) with the run {run}: {why}; "
                "--split all scores every row"
            )
    return {
        "split": split,
        "held_out": held,
        "own_dataset": own,
        "dataset": str(data),
        "dataset_sha256": sha,
        "run": str(run),
        "notes": notes,
    }


def _check_settings(run, bundle: dict, data, dataset, tta: bool) -> None:
    """Refuse data encoded unlike the run (naming each differing setting with
    both values), and data without swapped rows for a run trained with swaps
    unless TTA is turned off explicitly; refuse data of another label space."""
    ours = bundle_space(bundle, Path(run) / BUNDLE)
    if dataset.space != ours:
        raise ConfigError(
            f"{data} holds label space {dataset.space.name!r} ({dataset.space.k} classes), the "
            f"run {run} was trained on {ours.name!r} ({ours.k} classes): build the data with "
            f"--label-space {ours.name} to map it explicitly, or predict with a run of its space"
        )
    run_settings = {"tokenizer_sha256": bundle["tokenizer_sha256"]}
    data_settings = {"tokenizer_sha256": dataset.manifest["tokenizer"]["sha256"]}
    if run_settings != data_settings:
        raise ConfigError(
            f"{data} was encoded with another tokenizer than the run {run} was trained on ("
            + "; ".join(describe_differences(run_settings, data_settings))
            + ")"
        )
    differences = describe_differences(bundle["encoder"], dataset.manifest["encoder"])
    if differences:
        raise ConfigError(
            f"{data} was encoded with other encoder settings than the run {run} was trained "
            f"on ({'; '.join(differences)}); build it with the run's settings"
        )
    if tta and bundle.get("dataset_swap") and not dataset.swapped:
        raise ConfigError(
            f"{data} has no swapped rows, but the run {run} was trained with swaps and "
            "predicts with swap TTA: rebuild the data with --swap, or pass --no-tta "
            "(tta=False) to predict the original order only"
        )


# The 4th place's rules: one answer empty -> the other side wins; A and B
# identical -> tie (docs: DOMAIN "Swap, TTA and post-processing").
EMPTY_SIDE = (0.04, 0.88, 0.08)  # A empty: B wins (A and B exchange when B is empty)
IDENTICAL = (0.06, 0.06, 0.88)


def postprocess_rules(probs: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities with the rules applied (on a copy) and the mask of the
    rows they changed. Rows with both answers empty are left alone. The
    rules' probabilities are of label space `abt`: other widths are refused."""
    out = np.array(probs, dtype=np.float64, copy=True)
    if out.ndim != 2 or out.shape[1] != 3:
        raise ConfigError(
            "the 4th place's rules (postprocess) give probabilities of label space 'abt'; "
            f"these predictions have {out.shape[-1] if out.ndim else 0} classes"
        )
    empty_a = (flags & FLAG_EMPTY_A) != 0
    empty_b = (flags & FLAG_EMPTY_B) != 0
    a_only, b_only = empty_a & ~empty_b, empty_b & ~empty_a
    identical = ((flags & FLAG_IDENTICAL) != 0) & ~(empty_a | empty_b)
    out[a_only] = EMPTY_SIDE
    out[b_only] = (EMPTY_SIDE[1], EMPTY_SIDE[0], EMPTY_SIDE[2])
    out[identical] = IDENTICAL
    return out, a_only | b_only | identical


def run_encoder(run: Union[str, os.PathLike]):
    """An `af.Encoder` that encodes exactly as the run's training data was
    (its tokenizer and encoder config, from the bundle)."""
    settings = build_settings(run)
    return Encoder.from_config(Tokenizer.from_file(settings["tokenizer"]), settings["encoder"])


def _run_layout(config, model) -> str:
    """The run's layout for its model (padded where packing is not exact)."""
    return resolve_layout(config.layout, config.attn_implementation or default_attention(), model)


def _named(p: np.ndarray, space: LabelSpace) -> dict[str, float]:
    return {name: float(x) for name, x in zip(space.columns, p)}


class Judge:
    """A trained run loaded once, scoring pairs given as text: each pair is
    encoded as training encoded (the run's tokenizer and encoder config) in
    both orders, and the verdict is the swap-TTA average. A reward run
    (`self.reward`) scores each answer once (prompt + A, prompt + B: its
    encoder's separate layout) and gives the two rewards with the
    probabilities its tie parameter derives from them.

        judge = Judge("run")
        judge.compare("What is 2+2?", "4", "5")["winner_model_a"]

    A prompt or answer is a string (one turn) or a list of turns;
    `base_model` is the folder of the run's base model where it is now
    (`load_run`)."""

    def __init__(
        self,
        run: Union[str, os.PathLike],
        max_tokens: int = 8192,
        base_model: Optional[Union[str, os.PathLike]] = None,
    ):
        self.run = Path(run)
        self.encoder = run_encoder(self.run)
        self.model, self.config = load_run(
            self.run, tokenizer=self.encoder.tokenizer, base_model=base_model
        )
        self.layout = _run_layout(self.config, self.model)
        self.max_tokens = max_tokens
        self.reward = bool(self.model.is_reward)
        # The run's label space (a reward model's head is one reward wide: its bundle's).
        self.space = (
            recorded_space(self.run) if self.reward else space_of_width(self.model.num_classes)
        )

    def compare(self, prompt, response_a, response_b) -> dict:
        """One pair: see `compare_many`."""
        return self.compare_many(
            [{"prompt": prompt, "response_a": response_a, "response_b": response_b}]
        )[0]

    def compare_many(self, pairs) -> list[dict]:
        """Pairs as mappings with `prompt`, `response_a`, `response_b` (and an
        optional `id`, passed through). Per pair: the averaged probabilities
        (`winner_model_a`, `winner_model_b`, `winner_tie`: the columns of the
        run's label space, `self.space`), the `verdict`, each
        single pass (`original`, and `swapped` mapped back to this order),
        whether the two passes disagree (`flip`), and what the token budget
        cut: `tokens` of each order, `max_length`, `truncated`, `turns`,
        `turns_kept` and `full_length` (the tokens with nothing cut).

        A reward run's record (`self.reward`) has `reward_a` and `reward_b`
        (each answer's reward) and the probabilities of its label space
        derived from them (`af.infer.reward_probabilities`), the `verdict`,
        and the budget's keys of its two sequences (`tokens`, `turns_kept`
        of prompt + A and prompt + B; `full_length` of prompt + A); no
        single passes (a reward model has no swap TTA)."""
        pairs = list(pairs)
        columns = _pair_columns(pairs)
        if self.reward:
            return self._compare_rewards(pairs, columns)
        encoded = self.encoder.encode(
            columns["prompt"], columns["response_a"], columns["response_b"], swap="both"
        )
        logits = predict_logits(self.model, encoded, self.layout, self.max_tokens)
        ids = [pair.get("id", i) for i, pair in enumerate(pairs) for _ in (0, 1)]
        probs = probabilities(logits, ids, f"comparing with {self.run}")
        original, swapped, average = swap_passes(probs, self.space)
        out = []
        for i, pair in enumerate(pairs):
            o, s = 2 * i, 2 * i + 1
            record: dict[str, Any] = {"id": pair.get("id", i)}
            record.update(_named(average[i], self.space))
            record["verdict"] = self.space.verdicts[int(np.argmax(average[i]))]
            record["original"] = _named(original[i], self.space)
            record["swapped"] = _named(swapped[i], self.space)
            record["flip"] = bool(np.argmax(original[i]) != np.argmax(swapped[i]))
            record["tokens"] = [int(encoded.lengths[o]), int(encoded.lengths[s])]
            record["max_length"] = self.encoder.max_length
            record["truncated"] = bool(encoded.truncated[o] or encoded.truncated[s])
            record["turns"] = int(encoded.turns_total[o])
            record["turns_kept"] = [int(encoded.turns_kept[o]), int(encoded.turns_kept[s])]
            record["full_length"] = int(encoded.full_length[o])
            out.append(record)
        return out

    def _compare_rewards(self, pairs: list, columns: dict) -> list[dict]:
        """`compare_many` of a reward run: see there."""
        encoded = self.encoder.encode(
            columns["prompt"], columns["response_a"], columns["response_b"]
        )
        logits = predict_logits(self.model, encoded, self.layout, self.max_tokens)
        ids = [pair.get("id", i) for i, pair in enumerate(pairs) for _ in (0, 1)]
        rewards = pair_rewards(logits, ids, f"comparing with {self.run}")
        probs = reward_probabilities(rewards, self.space, self.model.head.tie)
        out = []
        for i, pair in enumerate(pairs):
            a, b = 2 * i, 2 * i + 1
            record: dict[str, Any] = {"id": pair.get("id", i)}
            record["reward_a"], record["reward_b"] = float(rewards[i, 0]), float(rewards[i, 1])
            record.update(_named(probs[i], self.space))
            record["verdict"] = self.space.verdicts[int(np.argmax(probs[i]))]
            record["tokens"] = [int(encoded.lengths[a]), int(encoded.lengths[b])]
            record["max_length"] = self.encoder.max_length
            record["truncated"] = bool(encoded.truncated[a] or encoded.truncated[b])
            record["turns"] = int(encoded.turns_total[a])
            record["turns_kept"] = [int(encoded.turns_kept[a]), int(encoded.turns_kept[b])]
            record["full_length"] = int(encoded.full_length[a])
            out.append(record)
        return out


def _pair_columns(pairs) -> dict[str, list]:
    """The prompts and answers of `pairs` (`Judge.compare_many`'s) as lists
    of turns per field, or an InputError naming the pair and field."""
    columns: dict[str, list] = {"prompt": [], "response_a": [], "response_b": []}
    for i, pair in enumerate(pairs):
        if not hasattr(pair, "get"):
            raise InputError(f"pair {i}: expected an object, got {type(pair).__name__}")
        for name, values in columns.items():
            value = pair.get(name)
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(
                isinstance(t, str) or t is None for t in value
            ):
                raise InputError(
                    f"pair {i}: {name!r} must be a string or a list of strings "
                    f"(turns), got {type(value).__name__}"
                )
            values.append(value)
    return columns


def source_rows(
    data: Union[str, os.PathLike], inputs: Optional[list] = None
) -> Any:  # pl.DataFrame
    """The text of every row of the dataset `data`, in its row order (one
    row per input row, the original A/B order): `id, source, model_a,
    model_b, prompt, response_a, response_b` and the row metadata columns
    (`language`, `category`, `meta`) an input carries (null for the rows of
    one without), re-read from the inputs the
    manifest lists (`inputs`: their paths now, in the manifest's order, when
    the files moved). A file whose sha256 differs from the manifest's is
    refused: its rows may not be the rows that were encoded."""
    data = Path(data)
    manifest = read_manifest(data)
    listed = manifest["inputs"]
    if inputs is not None and len(inputs) != len(listed):
        raise ConfigError(
            f"{data} was built from {len(listed)} inputs; {len(inputs)} paths were given"
        )
    tables = [
        pq.read_table(data / shard["file"], columns=["id", "input", "row"])
        for shard in manifest["shards"]
    ]
    keys = (
        pl.from_arrow(pa.concat_tables(tables))
        if tables
        else pl.DataFrame(schema={"id": pl.String, "input": pl.Int16, "row": pl.Int64})
    )
    keys = keys.with_row_index("_order")
    wanted = ["id", "source", "model_a", "model_b", *TEXT_COLUMNS]
    parts = []
    for index, entry in enumerate(listed):
        need = keys.filter(pl.col("input") == index)
        if not len(need):
            continue
        if entry["format"] == "synth":
            _, n, seed = entry["path"].split(":")
            chunks = demo_chunks(int(n), int(seed), 16384)
        else:
            path = inputs[index] if inputs is not None else entry["path"]
            if not Path(path).is_file():
                raise InputError(
                    f"{path}: input of {data} not found; give the inputs' paths now "
                    "(--inputs) to read the rows' text"
                )
            if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
                raise InputError(
                    f"{path}: sha256 differs from the one {data}/manifest.json recorded "
                    "(the file changed since the dataset was built)"
                )
            config = manifest["config"]
            options = ReadOptions(
                images=config.get("images", "strip"),
                preference=config.get("preference", "better"),
                mapping=config.get("mapping"),
            )
            chunks = read(path, entry["format"], seed=int(config.get("seed", 0)), options=options)
        rows = need.select("_order", "row")
        found = []
        for chunk in chunks:
            hit = chunk.rows.join(rows, on="row", how="inner")
            if len(hit):
                metadata = [c for c in METADATA_SCHEMA if c in hit.columns]
                found.append(hit.select("_order", *wanted, *metadata))
        if found:
            parts.append(_same_text_kind(found))
    frame = _same_text_kind(parts) if parts else None
    got = 0 if frame is None else len(frame)
    if got != len(keys):
        raise InputError(f"{data}: {len(keys) - got} rows were not found again in its inputs")
    metadata = [c for c in METADATA_SCHEMA if c in frame.columns]
    return frame.sort("_order").select(*wanted, *metadata)


def _same_text_kind(frames: list) -> Any:
    """Concatenate frames whose text columns may be JSON text (Kaggle) in
    some and lists of turns in others: lists become JSON text when mixed."""
    for name in TEXT_COLUMNS:
        kinds = {f.schema[name] == pl.String for f in frames}
        if len(kinds) > 1:
            frames = [
                f
                if f.schema[name] == pl.String
                else f.with_columns(
                    pl.col(name).map_elements(
                        lambda turns: json.dumps(list(turns), ensure_ascii=False),
                        return_dtype=pl.String,
                    )
                )
                for f in frames
            ]
    # An input without row metadata has none of its columns: null there.
    return pl.concat(frames, how="diagonal_relaxed")


def write_canonical(
    path: Union[str, os.PathLike], rows, probs: np.ndarray, logits: Optional[np.ndarray]
) -> None:
    """Rows (`source_rows`) with the predictions, in the canonical schema
    that `build-dataset` reads: `labels` = the probabilities (pseudo-labels),
    `teacher_logits` = one teacher, these logits (none for a reward run's
    predictions, `logits` None: a reward model has no class logits).
    Written atomically."""
    n_logits = len(probs) if logits is None else len(logits)
    if len(rows) != len(probs) or len(probs) != n_logits:
        raise ConfigError(f"{len(rows)} rows, {len(probs)} probabilities, {n_logits} logits")
    k = np.shape(probs)[1] if np.ndim(probs) == 2 else 3  # the label space's classes
    columns = [pl.Series("labels", np.asarray(probs, np.float64), dtype=pl.Array(pl.Float64, k))]
    if logits is not None:
        columns.append(
            pl.Series(
                "teacher_logits",
                np.asarray(logits, np.float64)[:, None, :],
                dtype=pl.List(pl.Array(pl.Float64, k)),
            )
        )
    frame = rows.with_columns(columns)
    with replacing(path) as tmp:
        frame.write_parquet(tmp)
