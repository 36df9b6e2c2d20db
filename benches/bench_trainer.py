"""Training tokens/s of a tiny preset on the CPU inside Hugging Face's
`Trainer`: `af.torch.hf.ArenaTrainer` on our packs (and on length-grouped
padded batches) beside our own loop (`af.train`) and the stock padded
`Trainer` (issue 15, point 5; `--model` picks the preset, issue 16).

Rows: `arena-fast synth --seed 0` written as a Kaggle train.csv, built with
`build_dataset` (demo tokenizer, `--swap`: both A/B orders), as
`bench_train.py` builds them. Every case trains every row once per epoch
(no held-out fold, no evaluation) from the same initial weights
(`load_classifier(--model, seed=0)`, default tiny-gemma2), fp32, AdamW (lr 2e-4, no weight
decay), cosine with 5% warmup, no gradient clipping, one optimizer step per
batch.

Cases:

- `af.train`, packed + `arena_varlen` (the CPU default: `layout="auto"`);
- `ArenaTrainer`, packed + `arena_varlen` (`layout="auto"`): the same BFD
  packs of at most `--max-tokens` tokens (the same plan: same seed, swap
  pairs kept together), inside `Trainer`'s own loop;
- `ArenaTrainer`, padded (length-grouped, rows x longest <= `--max-tokens`)
  + the stock attention (eager for Gemma 2, which has no sdpa; sdpa else);
- the stock way: `Trainer` + `DataCollatorWithPadding`, random order,
  `ArenaForSequenceClassification` (the same classifier; its last token read
  from the attention mask) + the stock attention, fed `ArenaDataset.to_hf()` with its
  `input_ids` and `label` columns. Its batch size in rows is the packs' mean
  real tokens per step over the mean row length (the same real tokens per
  optimizer step on average).

Timed: the training loop only, from just before the first batch (inside
`train()`, after loading, model construction and planning; the Trainer's
`on_train_begin`) to the end of the last optimizer step. Cases run
interleaved, `--repeat` rounds; best of each, and each round's ratio to the
padded Trainer of the same round.

    python benches/bench_trainer.py --rows 120 --repeat 2 --out /tmp/results_trainer.json
    python benches/bench_trainer.py --model tiny-qwen2 --rows 80 --repeat 2
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import (  # noqa: E402
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import arena_fast as af  # noqa: E402
from _shared import (  # noqa: E402
    hf_tokenizer,
    quiet_process,
    stock_attention,
    synth_dataset,
    write_results,
)
from arena_fast.base_model import PRESETS  # noqa: E402
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.model import load_classifier  # noqa: E402
from arena_fast.torch.hf import ArenaForSequenceClassification, ArenaTrainer  # noqa: E402
from bench_train import loop_settings, run_ours  # noqa: E402


class Clock(TrainerCallback):
    """The loop's time: from on_train_begin to the last on_step_end."""

    def __init__(self) -> None:
        self.begin = 0.0
        self.steps: list[float] = []

    def on_train_begin(self, args, state, control, **kw):
        self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.steps.append(time.perf_counter())


def _training_args(name: str, args, work: Path, max_steps: Optional[int], **kw) -> dict:
    return dict(args=TrainingArguments(**loop_settings(name, args, work, max_steps), **kw))


def run_af_train(data: Path, args, work: Path, max_steps: Optional[int] = None) -> dict:
    """`bench_train.run_ours` (packed + `arena_varlen`) on `args.model`."""
    return run_ours(data, "auto", "arena_varlen", args, work, max_steps=max_steps)


def _run(trainer: Trainer, clock: Clock, start: float) -> dict:
    trainer.remove_callback(PrinterCallback)
    out = trainer.train()
    return {
        "seconds": clock.steps[-1] - clock.begin,
        "wall_seconds": time.perf_counter() - start,
        "steps": len(clock.steps),
        "mean_loss": float(out.training_loss),
    }


def run_arena_trainer(
    data: Path, layout: str, attn: str, args, work: Path, max_steps: Optional[int] = None
) -> dict:
    start = time.perf_counter()
    model = load_classifier(
        args.model, tokenizer=af.Tokenizer.demo(), attn_implementation=attn, seed=0
    )
    clock = Clock()
    trainer = ArenaTrainer(
        model=model,
        train_dataset=load_dataset(data),
        layout=layout,
        max_tokens=args.max_tokens,
        callbacks=[clock],
        **_training_args(f"arena-{layout}", args, work, max_steps),
    )
    result = _run(trainer, clock, start)
    result["layout"] = trainer.layout
    return result


def run_padded_trainer(
    data: Path, batch_size: int, args, work: Path, max_steps: Optional[int] = None
) -> dict:
    start = time.perf_counter()
    rows = load_dataset(data).to_hf().select_columns(["input_ids", "label"])
    model = load_classifier(
        args.model,
        tokenizer=af.Tokenizer.demo(),
        attn_implementation=stock_attention(args.model),
        seed=0,
    )
    stock = DataCollatorWithPadding(hf_tokenizer())
    computed = [0]

    def collate(features):
        batch = stock(features)
        computed[0] += batch["input_ids"].numel()
        return batch

    clock = Clock()
    trainer = Trainer(
        model=ArenaForSequenceClassification(model),
        train_dataset=rows,
        data_collator=collate,
        callbacks=[clock],
        **_training_args(
            "trainer-padded",
            args,
            work,
            max_steps,
            per_device_train_batch_size=batch_size,
            train_sampling_strategy="random",
        ),
    )
    result = _run(trainer, clock, start)
    result["computed_tokens"] = computed[0]
    return result


def training_flags(doc: str, rows: int, rows_help: str) -> argparse.ArgumentParser:
    """The flags the Trainer benchmarks share (preset, rows, epochs,
    lengths, lr, threads, rounds, JSON out)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--model", default="tiny-gemma2", choices=PRESETS, help="the preset")
    ap.add_argument("--rows", type=int, default=rows, help=rows_help)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for all")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved rounds; best of each")
    ap.add_argument("--out", help="write the results as JSON here")
    return ap


def interleaved_rounds(cases: dict, repeat: int, tokens: int) -> dict[str, list[dict]]:
    """Each case once for 2 steps (process warm-up: allocator, lazy
    initialisation; untimed), then `repeat` rounds of every case in turn,
    each run printed (its loop time, steps, `tokens` per second, and its
    `final_loss` when it has one); the runs of each case."""
    for fn in cases.values():
        fn(2)
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for rnd in range(repeat):
        for name, fn in cases.items():
            r = fn()
            runs[name].append(r)
            loss = f", final BT loss {r['final_loss']:.4f}" if "final_loss" in r else ""
            print(
                f"round {rnd}: {name}: {r['seconds']:.2f} s loop, {r['steps']} steps, "
                f"{tokens / r['seconds']:,.0f} tokens/s{loss}",
                flush=True,
            )
    return runs


def main(argv=None) -> int:
    args = training_flags(__doc__, 120, "synth rows (x2 with swaps)").parse_args(argv)
    quiet_process(args.threads)
    import transformers

    work = Path(tempfile.mkdtemp(prefix="arena-fast-bench-trainer-"))
    data = synth_dataset(work, args.rows, args.max_length)
    lengths = load_dataset(data).encoded.lengths.astype(np.int64)
    tokens = int(lengths.sum())
    packs = af.plan_packs(lengths, args.max_tokens, pair_swaps=True, seed=0)
    grouped = af.plan_batches(lengths, args.max_tokens, order="grouped", pair_swaps=True, seed=0)
    batch_size = max(1, round(tokens / len(packs) / lengths.mean()))
    setup = {
        "sequences": len(lengths),
        "tokens": tokens,
        "mean_length": float(lengths.mean()),
        "packed_steps": len(packs),
        "grouped_steps": len(grouped),
        "grouped_fill": grouped.fill,
        "trainer_batch_size": batch_size,
    }
    print(setup, flush=True)
    stock = stock_attention(args.model)
    cases = {
        "af.train, packed + arena_varlen": lambda steps=None: run_af_train(data, args, work, steps),
        "ArenaTrainer, packed + arena_varlen": lambda steps=None: run_arena_trainer(
            data, "auto", "arena_varlen", args, work, steps
        ),
        f"ArenaTrainer, padded grouped + {stock}": lambda steps=None: run_arena_trainer(
            data, "padded", stock, args, work, steps
        ),
        f"Trainer + DataCollatorWithPadding, random, bs {batch_size}, {stock}": (
            lambda steps=None: run_padded_trainer(data, batch_size, args, work, steps)
        ),
    }
    runs = interleaved_rounds(cases, args.repeat, tokens * args.epochs)
    results = _table(runs, tokens * args.epochs, grouped.fill)
    print(
        f"\n{args.model}: {len(lengths)} sequences, {tokens:,} tokens x {args.epochs} epochs, "
        f"max_length {args.max_length}, max_tokens {args.max_tokens}, {args.threads} thread(s), "
        f"torch {torch.__version__}, transformers {transformers.__version__}, best of {args.repeat}"
    )
    print(
        "| case | steps | fill | real tokens/s | vs padded Trainer | loop s (runs) "
        "| per-round ratios | mean loss |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    for r in results:
        print(
            f"| {r['case']} | {r['steps']} | {r['fill']:.3f} | {r['tokens_per_s']:,.0f} "
            f"| **{r['vs_trainer']:.2f}x** | {', '.join(f'{s:.1f}' for s in r['seconds'])} "
            f"| {', '.join(f'{x:.2f}' for x in r['round_ratios'])} | {r['mean_loss']:.4f} |"
        )
    write_results(args.out, args, setup, results)
    return 0


def _table(runs: dict, real: int, grouped_fill: float) -> list[dict]:
    """Each case's best round, its tokens/s and its ratios to the padded
    Trainer (the last case): of the best rounds, and round by round."""
    results = []
    for name, rs in runs.items():
        best = min(rs, key=lambda r: r["seconds"])
        if "computed_tokens" in best:
            fill = real / best["computed_tokens"]
        else:
            fill = 1.0 if "packed" in name else grouped_fill
        results.append(
            {
                "case": name,
                "steps": best["steps"],
                "fill": fill,
                "seconds": [r["seconds"] for r in rs],
                "tokens_per_s": real / best["seconds"],
                "mean_loss": best["mean_loss"],
            }
        )
    base = results[-1]
    for r in results:
        r["vs_trainer"] = r["tokens_per_s"] / base["tokens_per_s"]
        r["round_ratios"] = [t / s for s, t in zip(r["seconds"], base["seconds"])]
    return results


if __name__ == "__main__":
    sys.exit(main())
