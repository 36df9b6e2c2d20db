"""Training throughput of tiny-gemma2 on the CPU: `af.train.train` in each
layout against a plain transformers `Trainer`, on the same rows (issue 5).

Rows: `arena-fast synth --seed 0` written as a Kaggle train.csv, built with
`build_dataset` (demo tokenizer, `rounds` / `fair`, `--swap`: both A/B
orders). Every case trains every row of the dataset (no held-out fold, no
evaluation) for the same epochs, from the same initial weights
(`load_classifier("tiny-gemma2", seed=0)`), fp32, AdamW (`torch.optim.AdamW`,
lr 2e-4, no weight decay, cosine schedule, 5% warmup, no gradient clipping),
one optimizer step per batch.

Cases:

- ours, packed + `arena_varlen` (the CPU default: `layout="auto"`): BFD packs
  of at most `--max-tokens` tokens, swap pairs in the same step;
- ours, padded (length-grouped, `plan_batches(order="grouped")`, rows x
  longest <= `--max-tokens`) + eager (Gemma-2 has no sdpa in transformers:
  `_supports_sdpa = False`, soft-capping);
- transformers `Trainer` + `DataCollatorWithPadding`, random order
  (`train_sampling_strategy="random"`, what `group_by_length=False` was),
  `Gemma2ForSequenceClassification` with the same body weights, eager
  attention, the same head (Linear with bias), fed a `datasets.Dataset` of the
  same token ids and labels. Its batch size in rows is our packed layout's
  mean real tokens per step divided by the mean row length (so both see the
  same real tokens per optimizer step on average).

Timed: the training loop only, for every case alike: from just before the
first batch is collated (our `train()` after loading, model construction and
planning; the Trainer's `on_train_begin`, after its dataloader and optimizer
are made) to the end of the last optimizer step. One-time setup (dataset
build, model construction, saving the run) is outside; the end-to-end wall
time of each case is reported beside it. Cases run interleaved, `--repeat`
rounds, best of each.

    python benches/bench_train.py --rows 400 --epochs 1 --out /tmp/results_train.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import arena_fast as af  # noqa: E402
from _shared import (  # noqa: E402
    hf_gemma2_classifier,
    hf_tokenizer,
    quiet_process,
    synth_dataset,
    write_results,
)
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.model import load_classifier  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402

WARMUP = 0.05


def run_ours(
    data: Path, layout: str, attn: str, args, work: Path, max_steps: Optional[int] = None
) -> dict:
    records: list[dict] = []
    config = TrainConfig(
        data=str(data),
        fold=None,
        model=getattr(args, "model", "tiny-gemma2"),
        attn_implementation=attn,
        layout=layout,
        epochs=args.epochs,
        lr=args.lr,
        warmup=WARMUP,
        max_tokens=args.max_tokens,
        seed=0,
        out=str(work / f"run-{layout}-{attn}"),
        overwrite=True,  # the rounds of --repeat train into one directory
        log_every=1,
        max_steps=max_steps,
    )
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    train(config, log=records.append)
    wall = time.perf_counter() - start
    end = resource.getrusage(resource.RUSAGE_SELF)
    steps = [r for r in records if "loss" in r and not r.get("eval")]
    return {
        "seconds": steps[-1]["seconds"],  # train()'s clock starts after setup
        "wall_seconds": wall,
        "steps": len(steps),
        "sequences": sum(r["sequences"] for r in steps),
        "mean_loss": float(np.mean([r["loss"] for r in steps])),
        "user_seconds": end.ru_utime - cpu.ru_utime,
        "sys_seconds": end.ru_stime - cpu.ru_stime,
        "page_faults": end.ru_minflt - cpu.ru_minflt,
        "collate_seconds": None,
    }


def loop_settings(name: str, args, work: Path, max_steps: Optional[int]) -> dict:
    """The `TrainingArguments` fields every Trainer case shares (ours, the
    stock one, TRL's `RewardConfig`): `af.train`'s schedule and optimizer,
    no clipping, the CPU, nothing logged, saved or evaluated."""
    return dict(
        output_dir=str(work / name),
        num_train_epochs=args.epochs,
        max_steps=max_steps or -1,
        learning_rate=args.lr,
        weight_decay=0.0,
        lr_scheduler_type="cosine",
        warmup_steps=WARMUP,
        optim="adamw_torch",
        max_grad_norm=0.0,  # af.train does not clip
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )


def run_trainer(
    data: Path, attn: str, batch_size: int, args, work: Path, max_steps: Optional[int] = None
) -> dict:
    import datasets
    from transformers import (
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    start = time.perf_counter()
    ds = load_dataset(data)
    rows = datasets.Dataset.from_dict(
        {"input_ids": ds.encoded.to_lists(), "labels": ds.label.astype(np.int64).tolist()}
    )
    tok = hf_tokenizer()
    ours = load_classifier(
        "tiny-gemma2", tokenizer=af.Tokenizer.demo(), attn_implementation="eager", seed=0
    )
    model = hf_gemma2_classifier(ours, tok.pad_token_id, attn)
    collator = DataCollatorWithPadding(tok)
    computed = [0, 0.0]

    def collate(features):
        t = time.perf_counter()
        batch = collator(features)
        computed[1] += time.perf_counter() - t
        computed[0] += batch["input_ids"].numel()
        return batch

    marks: dict = {"steps": [], "threads": None}

    class Clock(TrainerCallback):
        def on_train_begin(self, args_, state, control, **kw):
            marks["threads"] = torch.get_num_threads()
            marks["begin"] = time.perf_counter()

        def on_step_end(self, args_, state, control, **kw):
            marks["steps"].append(time.perf_counter())

    targs = TrainingArguments(
        **loop_settings(f"trainer-{attn}", args, work, max_steps),
        per_device_train_batch_size=batch_size,
        train_sampling_strategy="random",  # group_by_length=False
        bf16=False,
        fp16=False,
    )
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=rows,
        data_collator=collate,
        callbacks=[Clock()],
    )
    trainer.remove_callback(PrinterCallback)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    out = trainer.train()
    wall = time.perf_counter() - start
    end = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": marks["steps"][-1] - marks["begin"],
        "wall_seconds": wall,
        "steps": len(marks["steps"]),
        "sequences": len(rows) * args.epochs if not max_steps else None,
        "computed_tokens": computed[0],
        "mean_loss": float(out.training_loss),
        "threads_in_loop": marks["threads"],
        "user_seconds": end.ru_utime - cpu.ru_utime,
        "sys_seconds": end.ru_stime - cpu.ru_stime,
        "page_faults": end.ru_minflt - cpu.ru_minflt,
        "collate_seconds": computed[1],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400, help="synth rows (x2 with swaps)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for all")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; best of each")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--batch-size", type=int, help="Trainer rows per batch (default: matched)")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    quiet_process(args.threads)
    import transformers

    work = Path(tempfile.mkdtemp(prefix="arena-fast-bench-train-"))
    data = synth_dataset(work, args.rows, args.max_length)
    ds = load_dataset(data)
    lengths = ds.encoded.lengths.astype(np.int64)
    tokens = int(lengths.sum())
    packs = af.plan_packs(lengths, args.max_tokens, pair_swaps=True, seed=0)
    grouped = af.plan_batches(lengths, args.max_tokens, order="grouped", pair_swaps=True, seed=0)
    batch_size = args.batch_size or max(1, round(tokens / len(packs) / lengths.mean()))
    setup = {
        "sequences": len(lengths),
        "tokens": tokens,
        "mean_length": float(lengths.mean()),
        "truncated_share": float(ds.encoded.truncated.mean()),
        "packed_steps": len(packs),
        "packed_tokens_per_step": tokens / len(packs),
        "grouped_steps": len(grouped),
        "grouped_fill": grouped.fill,
        "trainer_batch_size": batch_size,
    }
    print(json.dumps(setup), flush=True)

    cases = {
        "ours packed + arena_varlen (default)": lambda: run_ours(
            data, "auto", "arena_varlen", args, work
        ),
        "ours padded grouped + eager": lambda: run_ours(data, "padded", "eager", args, work),
        f"Trainer + DataCollatorWithPadding, random, bs {batch_size}, eager": lambda: run_trainer(
            data, "eager", batch_size, args, work
        ),
    }
    if args.warmup:  # process warm-up (allocator, lazy initialisation), untimed
        run_ours(data, "auto", "arena_varlen", args, work, max_steps=2)
        run_ours(data, "padded", "eager", args, work, max_steps=2)
        run_trainer(data, "eager", batch_size, args, work, max_steps=2)
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for rnd in range(args.repeat):
        for name, fn in cases.items():
            r = fn()
            runs[name].append(r)
            print(
                f"round {rnd}: {name}: {r['seconds']:.2f} s loop, {r['wall_seconds']:.2f} s wall, "
                f"{r['steps']} steps, {tokens * args.epochs / r['seconds']:,.0f} tokens/s",
                flush=True,
            )
    real = tokens * args.epochs
    results = []
    for name, rs in runs.items():
        best = min(rs, key=lambda r: r["seconds"])
        seconds = [r["seconds"] for r in rs]
        assert best["sequences"] == len(lengths) * args.epochs, (name, best["sequences"])
        if "computed_tokens" in best:
            fill = real / best["computed_tokens"]
        elif "packed" in name:
            fill = 1.0
        else:
            fill = grouped.fill
        results.append(
            {
                "case": name,
                "steps": best["steps"],
                "fill": fill,
                "seconds": seconds,
                "best_seconds": best["seconds"],
                "spread": (max(seconds) - min(seconds)) / min(seconds),
                "tokens_per_s": real / best["seconds"],
                "wall_seconds": min(r["wall_seconds"] for r in rs),
                "mean_loss": best["mean_loss"],
                "user_seconds": best["user_seconds"],
                "sys_seconds": best["sys_seconds"],
                "page_faults": best["page_faults"],
                "collate_seconds": best["collate_seconds"],
                "threads_in_loop": best.get("threads_in_loop", torch.get_num_threads()),
            }
        )
    base = results[-1]
    for r in results:
        r["vs_trainer"] = r["tokens_per_s"] / base["tokens_per_s"]
        r["vs_trainer_wall"] = base["wall_seconds"] / r["wall_seconds"]
        # Paired: each round's Trainer time over this case's time in the same round.
        r["round_ratios"] = [t / s for s, t in zip(r["seconds"], base["seconds"])]
    print(
        f"\n{len(lengths)} sequences, {tokens:,} tokens x {args.epochs} epochs, max_length "
        f"{args.max_length}, max_tokens {args.max_tokens}, {args.threads} thread(s), "
        f"torch {torch.__version__}, transformers {transformers.__version__}, best of {args.repeat}"
    )
    print(
        "| case | steps | fill | real tokens/s | vs Trainer | loop s (runs) | wall s "
        "| per-round ratios (median) | wall vs Trainer | user / sys s | page faults | mean loss |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | --- | ---: | ---: |")
    for r in results:
        runs_s = ", ".join(f"{s:.1f}" for s in r["seconds"])
        rr = ", ".join(f"{x:.2f}" for x in r["round_ratios"])
        print(
            f"| {r['case']} | {r['steps']} | {r['fill']:.3f} | {r['tokens_per_s']:,.0f} "
            f"| **{r['vs_trainer']:.2f}x** | {runs_s} | {r['wall_seconds']:.1f} "
            f"| {rr} ({np.median(r['round_ratios']):.2f}) "
            f"| {r['vs_trainer_wall']:.2f}x | {r['user_seconds']:.1f} / {r['sys_seconds']:.1f} "
            f"| {r['page_faults'] / 1e6:.2f} M | {r['mean_loss']:.4f} |"
        )
    trainer = results[-1]
    print(
        f"Trainer collation (DataCollatorWithPadding + datasets row fetch not included): "
        f"{trainer['collate_seconds']:.2f} s of {trainer['best_seconds']:.1f} s; "
        f"threads in its loop: {trainer['threads_in_loop']}"
    )
    write_results(args.out, args, setup, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
