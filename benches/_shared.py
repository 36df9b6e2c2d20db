"""What the training and prediction benchmarks share: the synth dataset they
build, the Hugging Face tokenizer of the demo vocabulary, and the stock
`Gemma2ForSequenceClassification` holding one of our classifiers' weights."""

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


def hf_gemma2_classifier(ours: Any, pad_id: int, attn: str = "eager"):
    """`Gemma2ForSequenceClassification` with exactly the weights of our
    tiny-gemma2 classifier `ours`: the body copied, `score` replaced by our
    head (a Linear with bias)."""
    import torch
    from transformers import Gemma2Config, Gemma2ForSequenceClassification

    from arena_fast.model import TINY

    kw = {k: v for k, v in TINY["tiny-gemma2"].items() if k != "model_type"}
    config = Gemma2Config(
        vocab_size=ours.decoder.config.vocab_size,
        pad_token_id=pad_id,
        num_labels=3,
        attn_implementation=attn,
        use_cache=False,
        **kw,
    )
    model = Gemma2ForSequenceClassification(config)
    result = model.model.load_state_dict(ours.decoder.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model.score = torch.nn.Linear(config.hidden_size, 3, bias=True)
    model.score.load_state_dict(ours.head.state_dict())
    return model


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
