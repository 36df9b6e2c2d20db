"""Inference, shared by training (the held-out evaluation) and prediction:
a model's logits over encoded rows, their probabilities, a dataset's
per-conversation result with swap TTA, its prediction table, and the
evaluation of a held-out fold (torch; the `[train]` extra).

Batches are planned and collated by `arena_fast.torch` (`inference_plan`,
`ArenaBatches`), as for training; metrics are `af.diagnostics`'. Logits that
are not finite are refused, never turned into probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import polars as pl
import torch

from .diagnostics import (
    GROUP_COLUMNS,
    accuracy,
    log_loss,
    pairwise_accuracy,
    prediction_frame,
    write_predictions,
)
from .errors import InputError
from .labels import LabelSpace, space_of_width
from .reward_losses import reward_probs
from .reward_tables import REWARD_COLUMNS
from .runs import dataset_identity
from .torch.data import ArenaBatches, inference_plan

__all__ = [
    "dataset_predictions",
    "pair_rewards",
    "reward_predictions",
    "reward_probabilities",
    "evaluate",
    "predict_logits",
    "prediction_table",
    "probabilities",
    "swap_passes",
]


def predict_logits(
    model,
    encoded,
    layout: str = "padded",
    max_tokens: int = 8192,
    max_rows: Optional[int] = None,
    pad_id: Optional[int] = None,
    progress: Optional[Callable[[dict], None]] = None,
) -> np.ndarray:
    """Logits (n, K) of every row of `encoded`, in row order (K the
    model's classes, `model.num_classes`: its label space's), from
    length-sorted batches within `max_tokens` (and `max_rows`). Padded
    batches are filled with `pad_id` (default: the model's, `model.pad_id`).
    `progress`, when given, gets `{"rows": done, "total": n}` before the
    first batch and after each one."""
    n = len(encoded)
    logits = np.zeros((n, getattr(model, "num_classes", 3)), dtype=np.float64)
    if n == 0:
        return logits
    plan = inference_plan(encoded, max_tokens, layout, max_rows)
    if pad_id is None:
        pad_id = getattr(model, "pad_id", None)
    batches = ArenaBatches(encoded, layout=layout, pad_id=pad_id)
    model.eval()
    done = 0
    if progress is not None:
        progress({"rows": done, "total": n})
    with torch.no_grad():
        for idx in plan:
            out = model(batches[idx]).double().cpu().numpy()
            if out.shape[1:] != logits.shape[1:]:  # a model without `num_classes`
                logits = np.zeros((n, *out.shape[1:]), dtype=np.float64)
            logits[idx] = out
            done += len(idx)
            if progress is not None:
                progress({"rows": done, "total": n})
    return logits


def probabilities(logits: np.ndarray, ids=None, where: str = "predict") -> np.ndarray:
    """The softmax of (n, K) logits. A row whose logits are not all finite
    (weights gone NaN, a numeric overflow) is an InputError naming `where`,
    the row and its id (`ids[row]`): never a NaN probability."""
    logits = np.asarray(logits, dtype=np.float64)
    _check_finite(logits, ids, where, "logits")
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def swap_passes(
    probs: np.ndarray, space: Optional[LabelSpace] = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities of rows in both orders (row 2i the original, 2i + 1 the
    swapped) as three (n, K) arrays in the original order: the original
    pass, the swapped pass mapped back, and their swap-TTA average, by the
    swap of `space` (default: the space of the rows' width)."""
    space = space or space_of_width(probs.shape[1], "probabilities")
    original, swapped = probs[0::2], probs[1::2]
    return original, space.unswap_probs(swapped), space.tta_average(original, swapped)


def dataset_predictions(
    dataset, logits: np.ndarray, tta: bool = True, where: Optional[str] = None
) -> dict:
    """The per-conversation result of `predict` from the logits of every row
    of `dataset` (an `ArenaDataset`; both orders when it holds them).
    Non-finite logits are refused (`probabilities`; `where` names the work)."""
    probs = probabilities(logits, dataset.ids, where or f"predicting {dataset.path}")
    first = slice(0, None, 2) if dataset.swapped else slice(None)
    out: dict[str, Any] = {
        "ids": dataset.ids[first],
        "logits": logits[first],
        "labels": dataset.labels[first].astype(np.float64),
        "turns": dataset.encoded.turns_total[first],
        "truncated": dataset.encoded.truncated[first],
        "folds": dataset.folds[first],
    }
    # The row metadata scores are broken down by (`af.diagnostics.GROUP_COLUMNS`).
    metadata = getattr(dataset, "metadata", None) or {}
    for name in GROUP_COLUMNS:
        if name in metadata:
            out[name] = metadata[name][first]
    if dataset.swapped:
        original, swapped, average = swap_passes(probs, getattr(dataset, "space", None))
        out["probs_original"] = original
        out["probs_swapped"] = swapped
        out["probs"] = average if tta else original
    else:
        out["probs"] = probs
    return out


def prediction_table(result: dict):
    """`predict`'s result as the per-row table of `af.diagnostics`
    (`write_predictions`, `summarize`, `arena-fast report`), with the
    `trained` column when the result says which rows the run trained on
    (its `rows` are the table's metadata: `write_predictions(path, table,
    result["rows"])`). A reward model's result (`rewards`, (n, 2)) adds
    each pair's two rewards (`reward_tables.REWARD_COLUMNS`: `reward_a`,
    `reward_b`) after the class columns; a classifier's table is as before."""
    frame = prediction_frame(
        result["ids"],
        result["probs"],
        probs_original=result.get("probs_original"),
        probs_swapped=result.get("probs_swapped"),
        logits=result.get("logits"),
        labels=result["labels"],
        turns=result["turns"],
        truncated=result["truncated"],
        fold=result["folds"],
        trained=result.get("trained"),
        language=result.get("language"),
        category=result.get("category"),
    )
    rewards = result.get("rewards")
    if rewards is None:
        return frame
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.shape != (len(frame), 2):
        raise ValueError(f"rewards: expected shape ({len(frame)}, 2), got {rewards.shape}")
    return frame.with_columns(
        [pl.Series(name, rewards[:, j], dtype=pl.Float64) for j, name in enumerate(REWARD_COLUMNS)]
    )


def pair_rewards(logits: np.ndarray, ids=None, where: str = "predict") -> np.ndarray:
    """A reward model's output for the rows of a dataset of the separate
    layout (row 2i the prompt with answer A, row 2i + 1 with answer B;
    `logits` (2n, 1), `predict_logits`'s) as rewards (n, 2): each pair's
    A and B rewards. Rewards that are not finite are an InputError naming
    `where`, the row and its id."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 1 or len(logits) % 2:
        raise ValueError(f"a reward model's output is (2n, 1), got shape {logits.shape}")
    _check_finite(logits, ids, where, "reward")
    return logits[:, 0].reshape(-1, 2)


def _check_finite(values: np.ndarray, ids, where: str, what: str) -> None:
    """An InputError naming `where`, the first row of `values` (n, K) that
    is not all finite and its id (`ids[row]`), and how many rows are such."""
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        name = f" (id {ids[i]!r:.40})" if ids is not None else ""
        shown = values[i].tolist()
        raise InputError(
            f"{where}: row {i}{name}: the model's {what} {shown} are not finite "
            f"({int(bad.sum())} rows such); no probabilities written"
        )


def reward_probabilities(rewards: np.ndarray, space: LabelSpace, tie) -> np.ndarray:
    """Probabilities (n, K) of label space `space` from a reward model's
    pairs (`rewards` (n, 2)), by `af.reward_losses.reward_probs` with the
    model's tie parameter (`tie`: its `RewardHead.tie`, a `TieModel`). No
    swap TTA: exchanging A and B exchanges the two rewards, and the
    probabilities mirror exactly, so a second pass would give the same."""
    r = torch.as_tensor(rewards, dtype=torch.float64)
    with torch.no_grad():
        theta = tie.theta.detach().double().cpu()
        return reward_probs(r[:, 0], r[:, 1], space, model=tie.model, theta=theta).numpy()


def reward_predictions(dataset, rewards: np.ndarray, probs: np.ndarray) -> dict:
    """A reward model's per-pair result for `dataset` (of the separate
    layout: pair i is rows 2i and 2i + 1), as `dataset_predictions` gives a
    classifier's: the same keys but `logits` (a reward model has no class
    logits), with `rewards` (n, 2): each pair's A and B rewards."""
    first = slice(0, None, 2)
    out: dict[str, Any] = {
        "ids": dataset.ids[first],
        "rewards": rewards,
        "probs": probs,
        "labels": dataset.labels[first].astype(np.float64),
        "turns": dataset.encoded.turns_total[first],
        "truncated": dataset.encoded.truncated[first] | dataset.encoded.truncated[1::2],
        "folds": dataset.folds[first],
    }
    metadata = getattr(dataset, "metadata", None) or {}
    for name in GROUP_COLUMNS:
        if name in metadata:
            out[name] = metadata[name][first]
    return out


def evaluate(model, data, layout: str, max_tokens: int, predictions: Optional[Path] = None) -> dict:
    """Log loss and accuracy of `model` on `data` (an `ArenaDataset`; its
    labelled rows), and with swap TTA when it holds both orders. A reward
    model (`model.is_reward`; `data` of the separate layout) is scored on
    its pairs: the log loss and accuracy of `reward_probabilities` (with
    its tie parameter, `theta` in the result; no swap TTA, which a reward
    model does not need) and `pairwise_accuracy` (ties left out). With
    `predictions`, the per-row table (`af.diagnostics`) is written there,
    as held-out rows (`trained` False, split "valid": `data` is the
    held-out fold of the run's dataset). The model is left in training
    mode."""
    logits = predict_logits(model, data.encoded, layout, max_tokens)
    model.train()
    where = f"evaluating {data.path}"
    if getattr(model, "is_reward", False):
        rewards = pair_rewards(logits, data.ids, where)
        probs = reward_probabilities(rewards, data.space, model.head.tie)
        labels, labelled = data.labels[0::2], data.labelled[0::2]
        result = _scores(probs, labels, labelled)
        result["pairwise_accuracy"] = pairwise_accuracy(
            rewards[labelled, 0], rewards[labelled, 1], labels[labelled]
        )
        result["theta"] = float(model.head.tie.theta.detach())
        result["tie_prob_of_equal_rewards"] = model.head.tie.tie_prob_of_equal_rewards()
        table = reward_predictions(data, rewards, probs) if predictions is not None else None
    else:
        probs = probabilities(logits, data.ids, where)
        result = _scores(probs, data.labels, data.labelled)
        if data.swapped:
            average = swap_passes(probs, getattr(data, "space", None))[2]
            tta = _scores(average, data.labels[0::2], data.labelled[0::2])
            result["tta_log_loss"] = tta["log_loss"]
            result["tta_accuracy"] = tta["accuracy"]
        table = dataset_predictions(data, logits) if predictions is not None else None
    if table is not None:
        _write_held_out(predictions, table, data)
    return result


def _write_held_out(path: Path, table: dict, data) -> None:
    """The held-out predictions `table` (`dataset_predictions`' or
    `reward_predictions`') written to `path`, marked as the run's own
    held-out rows."""
    table["trained"] = np.zeros(len(table["ids"]), dtype=bool)
    folds = np.unique(table["folds"])
    rows = {
        "split": "valid",
        "held_out": int(folds[0]) if len(folds) == 1 else None,
        "own_dataset": True,
        "dataset": str(data.path),
        "dataset_sha256": dataset_identity(data.manifest),
    }
    write_predictions(path, prediction_table(table), rows)


def _scores(probs: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> dict:
    p, y = probs[labelled], labels[labelled].astype(np.float64)
    return {"log_loss": log_loss(p, y), "accuracy": accuracy(p, y), "rows": int(len(p))}
