"""What the training and prediction benchmarks share: the synth dataset they
build, the Hugging Face tokenizer of the demo vocabulary, the stock attention
of a preset, and the stock `AutoModelForSequenceClassification` holding one of
our classifiers' weights (any preset: Gemma 2, Qwen 2, Gemma 3, ...)."""

from __future__ import annotations

import json
import logging
import os
import platform
import warnings
from pathlib import Path
from typing import Any, Optional

import arena_fast as af
from arena_fast.dataset import BuildConfig, build_dataset

DEMO_TOKENIZER = Path(af.__file__).parent / "data" / "demo_tokenizer" / "tokenizer.json"


def synth_dataset(root: Path, rows: int, max_length: int, **build: Any) -> Path:
    """`rows` synth rows (seed 0) as a Kaggle train.csv under `root`, built
    with `swap=True` and `build`'s other BuildConfig fields; the dataset path."""
    from arena_fast.synth import write_csv

    csv = root / "train.csv"
    write_csv(csv, rows, seed=0)
    out = root / "data"
    config = BuildConfig(inputs=[str(csv)], max_length=max_length, swap=True, seed=0, **build)
    build_dataset(config, out, overwrite=True)
    return out


def hf_tokenizer():
    """The demo vocabulary as a transformers fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(DEMO_TOKENIZER),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def stock_attention(model: str) -> str:
    """The stock transformers attention a padded batch of the preset `model`
    runs with: sdpa, but eager for Gemma 2 (its soft-capping has no sdpa)."""
    return "eager" if model == "tiny-gemma2" else "sdpa"


def hf_classifier(ours: Any, pad_id: int, attn: str = "eager"):
    """The stock `AutoModelForSequenceClassification` of `ours`'s
    architecture (`Gemma2ForSequenceClassification`,
    `Qwen2ForSequenceClassification`, ...) with exactly the weights of our
    classifier `ours`: the body copied, `score` replaced by our head (a
    Linear with bias); `attn` its attention implementation."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(ours.decoder.config)
    config.num_labels = 3
    config.pad_token_id = pad_id
    config.use_cache = False
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation=attn)
    result = model.base_model.load_state_dict(ours.decoder.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model.score = torch.nn.Linear(config.hidden_size, 3, bias=True)
    model.score.load_state_dict(ours.head.state_dict())
    return model


# bench_train.py's name for it (tiny-gemma2 there).
hf_gemma2_classifier = hf_classifier


def write_results(
    out: Optional[str], args: Any, setup: dict, results: list, **versions: str
) -> None:
    """The run as JSON at `out` (when given): machine, torch and
    transformers versions and `versions`' others, the arguments, the setup
    and the results."""
    if not out:
        return
    import torch
    import transformers

    payload = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        **versions,
        "args": vars(args),
        "setup": setup,
        "results": results,
    }
    Path(out).write_text(json.dumps(payload, indent=1))


def quiet_process(threads: int) -> None:
    """`threads` for torch and the Rust pool alike; transformers, bitsandbytes
    and warnings silenced, so the tables are all a run prints."""
    import torch
    import transformers

    torch.set_num_threads(threads)
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
