"""Training throughput of the tiny presets on the CPU: `af.train.train` with
packs + `arena_varlen` (the CPU default) against length-grouped padded
batches + the model's stock attention (sdpa; eager for Gemma 2, which has no
sdpa), per architecture, on the same rows (issue 16).

Rows: `arena-fast synth --seed 0` as a Kaggle train.csv, built with the demo
tokenizer (`rounds` / `fair`, both A/B orders; `benches/_shared.py`). Every
case trains every row for one epoch from the same initial weights
(`load_classifier(name, seed=0)`, full fine-tuning as bench_train), fp32,
AdamW lr 2e-4, 5% warmup, cosine, one step per batch of at most
`--max-tokens` tokens. Timed: `train()`'s own clock (after loading and
planning). The cases run interleaved, `--repeat` rounds, best of each;
tokens/s counts real tokens; the ratio is packed over padded, same model,
same run.

    python benches/bench_presets.py --rows 200 --repeat 2
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _shared import quiet_process, synth_dataset, write_results  # noqa: E402
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402

MODELS = ("tiny-gemma2", "tiny-gemma3", "tiny-qwen2")


def stock(model: str) -> str:
    return "eager" if model == "tiny-gemma2" else "sdpa"


def run(data: Path, model: str, layout: str, attn: str, args, work: Path) -> dict:
    records: list[dict] = []
    config = TrainConfig(
        data=str(data),
        fold=None,
        model=model,
        attn_implementation=attn,
        layout=layout,
        epochs=1,
        lr=2e-4,
        warmup=0.05,
        max_tokens=args.max_tokens,
        seed=0,
        out=str(work / f"run-{model}-{layout}"),
        overwrite=True,  # the rounds train into one directory
        log_every=1,
    )
    train(config, log=records.append)
    steps = [r for r in records if "loss" in r and not r.get("eval")]
    return {"seconds": steps[-1]["seconds"], "steps": len(steps)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rows", type=int, default=200, help="synth rows (x2 with swaps)")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="interleaved rounds; best of each")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    quiet_process(args.threads)
    work = Path(tempfile.mkdtemp(prefix="arena-fast-bench-presets-"))
    data = synth_dataset(work, args.rows, args.max_length)
    lengths = load_dataset(data).encoded.lengths
    tokens = int(lengths.sum())
    setup = {"sequences": len(lengths), "tokens": tokens, "mean_length": float(lengths.mean())}
    print(setup, flush=True)
    cases = [
        (model, layout, attn)
        for model in args.models.split(",")
        for layout, attn in (("packed", "arena_varlen"), ("padded", stock(model)))
    ]
    seconds: dict = {case: [] for case in cases}
    for _ in range(args.repeat):
        for case in cases:
            seconds[case].append(run(data, *case, args, work)["seconds"])
    results = []
    print("| model | packed + arena_varlen tokens/s | padded + stock tokens/s | packed / padded |")
    print("| --- | --- | --- | --- |")
    for model in args.models.split(","):
        best = {
            layout: min(seconds[(model, layout, attn)]) for (m, layout, attn) in cases if m == model
        }
        rate = {layout: tokens / s for layout, s in best.items()}
        print(
            f"| `{model}` | {rate['packed']:,.0f} | {rate['padded']:,.0f} ({stock(model)}) "
            f"| {best['padded'] / best['packed']:.2f}x |"
        )
        results.append({"model": model, "seconds": best, "tokens_per_s": rate})
    print(
        "rounds (s):", {f"{m} {lay}": np.round(v, 2).tolist() for (m, lay, _), v in seconds.items()}
    )
    write_results(args.out, args, setup, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
