"""`af.predict.predict(run, data)`: the probabilities of a trained run on a
built dataset, with swap TTA when the dataset holds both orders, written as a
Kaggle submission CSV.

The model is rebuilt from the run's `config.json` (the same architecture and
seed) and its trained weights (`decoder.safetensors`, `head.safetensors`);
the rows are the dataset's token ids, encoded once by `build-dataset`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .errors import ConfigError

__all__ = [
    "load_run",
    "predict_logits",
    "predict",
    "postprocess_rules",
    "run_encoder",
    "write_submission",
]


def load_run(run: Union[str, os.PathLike], tokenizer: Any = None):
    """The classifier a run directory describes, with its trained weights
    (refused when a file differs from the run's `bundle.json`)."""
    import torch
    from safetensors.torch import load_file

    from .model import load_classifier
    from .train import TrainConfig, read_bundle

    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"{run}: not a training run directory")
    read_bundle(run)  # every file matches its sha256, or the run is refused
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    model = load_classifier(
        config.model,
        tokenizer=tokenizer,
        lora=config.lora_settings(),
        attn_implementation=config.attn_implementation,
        head=config.head,
        seed=config.seed,
    )
    trained = load_file(str(run / "decoder.safetensors"))
    params = dict(model.decoder.named_parameters())
    missing = set(trained) - set(params)
    if missing:
        raise ConfigError(f"{run}: weights for parameters this model lacks: {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, value in trained.items():
            params[name].copy_(value)
    model.head.load_state_dict(load_file(str(run / "head.safetensors")))
    model.eval()
    return model, config


def predict_logits(
    model, encoded, layout: str = "padded", max_tokens: int = 8192, max_rows: Optional[int] = None
) -> np.ndarray:
    """Logits (n, 3) of every row of `encoded`, in row order, from
    length-sorted batches within `max_tokens` (and `max_rows`)."""
    import torch

    from .collate import collate_packed, collate_padded
    from .plan import plan_batches, plan_packs

    n = len(encoded)
    logits = np.zeros((n, 3), dtype=np.float64)
    if n == 0:
        return logits
    if layout == "packed" and max_rows is None:
        plan = plan_packs(encoded, max_tokens, pair_swaps=False, shuffle=False)
    else:
        plan = plan_batches(encoded, max_tokens, max_rows=max_rows, order="desc", pair_swaps=False)
    model.eval()
    with torch.no_grad():
        for idx in plan:
            if layout == "packed":
                batch = collate_packed(encoded, idx)
            else:
                batch = collate_padded(encoded, idx, pad_id=0, side="right")
            logits[idx] = model(batch).double().cpu().numpy()
    return logits


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predict(
    run: Union[str, os.PathLike],
    data: Union[str, os.PathLike],
    *,
    tta: bool = True,
    max_tokens: int = 8192,
    max_rows: Optional[int] = None,
    layout: Optional[str] = None,
    postprocess: bool = False,
) -> dict:
    """Probabilities for every row of the dataset `data`: `ids`, `probs`
    (n, 3; the swap-TTA average when `tta` and the dataset has both orders),
    `logits` (of the original order) and, with TTA, `probs_original` and
    `probs_swapped` (the swapped prediction mapped back). `postprocess`
    applies the 4th place's rules last (`postprocess_rules`)."""
    from .dataset import load_dataset
    from .labels import tta_average, unswap_probs

    dataset = load_dataset(data, swap=None)
    from .train import read_bundle

    bundle = read_bundle(Path(run))
    if dataset.manifest["tokenizer"]["sha256"] != bundle["tokenizer_sha256"]:
        raise ConfigError(
            f"{data} was encoded with another tokenizer than the run {run} was trained on"
        )
    if dataset.manifest["encoder"] != bundle["encoder"]:
        raise ConfigError(
            f"{data} was encoded with other encoder settings than the run {run} was trained "
            "on (template, strategy, max_length, special tokens); build it with the run's"
        )
    model, config = load_run(run, tokenizer=dataset.tokenizer())
    if layout is None:
        from .model import default_attention
        from .train import _layout

        layout = _layout(config, config.attn_implementation or default_attention())
    logits = predict_logits(model, dataset.encoded, layout, max_tokens, max_rows)
    probs = _softmax(logits)
    if dataset.swapped:
        original, swapped = probs[0::2], probs[1::2]
        out = {
            "ids": dataset.ids[0::2],
            "logits": logits[0::2],
            "probs_original": original,
            "probs_swapped": unswap_probs(swapped),
            "probs": tta_average(original, swapped) if tta else original,
        }
    else:
        out = {"ids": dataset.ids, "logits": logits, "probs": probs}
    if postprocess:
        flags = dataset.flags[0::2] if dataset.swapped else dataset.flags
        out["probs"], out["postprocessed"] = postprocess_rules(out["probs"], flags)
    return out


# The 4th place's rules: one answer empty -> the other side wins; A and B
# identical -> tie (docs: DOMAIN "Swap, TTA and post-processing").
EMPTY_SIDE = (0.04, 0.88, 0.08)  # A empty: B wins (A and B exchange when B is empty)
IDENTICAL = (0.06, 0.06, 0.88)


def postprocess_rules(probs: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities with the rules applied (on a copy) and the mask of the
    rows they changed. Rows with both answers empty are left alone."""
    from .dataset import FLAG_EMPTY_A, FLAG_EMPTY_B, FLAG_IDENTICAL

    out = np.array(probs, dtype=np.float64, copy=True)
    empty_a = (flags & FLAG_EMPTY_A) != 0
    empty_b = (flags & FLAG_EMPTY_B) != 0
    a_only, b_only = empty_a & ~empty_b, empty_b & ~empty_a
    identical = ((flags & FLAG_IDENTICAL) != 0) & ~(empty_a | empty_b)
    out[a_only] = EMPTY_SIDE
    out[b_only] = (EMPTY_SIDE[1], EMPTY_SIDE[0], EMPTY_SIDE[2])
    out[identical] = IDENTICAL
    return out, a_only | b_only | identical


def write_submission(path: Union[str, os.PathLike], ids, probs: np.ndarray) -> None:
    """`id, winner_model_a, winner_model_b, winner_tie`, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write("id,winner_model_a,winner_model_b,winner_tie\n")
            for i, p in zip(ids, probs):
                a, b, tie = (repr(float(x)) for x in p)  # shortest exact repr
                f.write(f"{i},{a},{b},{tie}\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_encoder(run: Union[str, os.PathLike]):
    """An `af.Encoder` that encodes exactly as the run's training data was
    (its tokenizer and encoder config, from the bundle)."""
    from .encoder import Encoder
    from .tokenizer import Tokenizer
    from .train import read_bundle

    run = Path(run)
    config = read_bundle(run)["encoder"]
    return Encoder.from_config(Tokenizer.from_file(run / "tokenizer.json"), config)
