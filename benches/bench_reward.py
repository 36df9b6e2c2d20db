"""Reward-model training tokens/s on the CPU: our reward training (`af.train`
with `objective="reward"`: the pairs of a separate-layout dataset packed
padding-free, both answers of a pair in one pack, `arena_varlen`) against
TRL's `RewardTrainer` (chosen and rejected padded to the longest of the
batch), on the same rows, the same initial weights and the same steps
(issue 20).

Rows: `arena-fast synth --seed 0` written as a Kaggle train.csv, ties left
out (TRL's data has a chosen and a rejected answer; with no ties our
Bradley-Terry loss, `tie_model="none"`, is TRL's), built with `--layout
separate` (demo tokenizer): row 2i is the prompt with the chosen answer
(A), row 2i+1 with the rejected one, whichever won (the label). TRL gets
exactly these ids as `chosen_ids` / `rejected_ids` (its pre-tokenized
columns: no tokenization in its loop), chosen first.

Both start from the same weights: `load_classifier(--model, seed=0)` with
a reward head, copied into the stock `AutoModelForSequenceClassification`
of its architecture (`num_labels=1`; its `score` layer has no bias: a bias
of ours adds the same to both rewards of a pair, so it changes neither the
Bradley-Terry loss nor any gradient). fp32, AdamW (lr
`--lr`, no weight decay), cosine with the same warmup, no gradient
clipping, one optimizer step per batch, every pair once per epoch.

Cases:

- `af.train`, reward, packed + `arena_varlen` (packs of at most
  `--max-tokens` tokens, pairs kept together);
- TRL `RewardTrainer` at its defaults (gradient checkpointing on, the
  stock attention: eager for Gemma 2, sdpa else), `bf16=False` (there is
  no bf16 on this CPU path for ours either), batch size in pairs = the
  packs' mean real tokens per step over a pair's mean length (the same
  real tokens per optimizer step on average);
- the same without gradient checkpointing (TRL's fastest setting here).

The loss: ours logs its training loss with the tie parameter's term added
(`tie_model="none"` still learns P(tie), on the rewards detached), so the
loss compared is each trained model's Bradley-Terry loss on every pair
after the run, `mean(-log sigmoid(r_chosen - r_rejected))`, scored one
sequence at a time (no padding) for both.

Timed: the training loop only (ours: `train()`'s clock, after setup; TRL:
`on_train_begin` to the last `on_step_end`). Cases interleaved, `--repeat`
rounds, best of each, and each round's ratio to TRL's default. The fill is
real tokens over the tokens computed (ours: over the packs' capacity;
TRL: over batch x longest).

    python benches/bench_reward.py --rows 200 --repeat 2
    python benches/bench_reward.py --model tiny-llama --rows 200
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import copy  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    PrinterCallback,
)

import arena_fast as af  # noqa: E402
from _shared import hf_tokenizer, quiet_process, stock_attention, write_results  # noqa: E402
from arena_fast.dataset import BuildConfig, build_dataset, load_dataset  # noqa: E402
from arena_fast.model import load_classifier  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from bench_train import WARMUP, loop_settings  # noqa: E402
from bench_trainer import Clock, interleaved_rounds, training_flags  # noqa: E402


def pairs_dataset(root: Path, rows: int, max_length: int) -> Path:
    """`rows` synth rows (seed 0) without their ties, built in the separate
    layout with the demo tokenizer."""
    from arena_fast.synth import write_csv

    full, kept = root / "all.csv", root / "train.csv"
    write_csv(full, rows, seed=0)
    with full.open(newline="") as src, kept.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in reader if r["winner_tie"] != "1")
    out = root / "data"
    config = BuildConfig(inputs=[str(kept)], max_length=max_length, layout="separate", seed=0)
    build_dataset(config, out, overwrite=True)
    return out


def reward_model(name: str, attn: str):
    """Our reward model as `af.train` makes it (seed 0)."""
    model = load_classifier(name, tokenizer=af.Tokenizer.demo(), attn_implementation=attn, seed=0)
    model.set_reward("none")
    return model


def trl_model(name: str):
    """The stock `AutoModelForSequenceClassification` (num_labels 1) with our
    reward model's initial weights."""
    ours = reward_model(name, "eager")
    config = copy.deepcopy(ours.decoder.config)
    config.num_labels = 1
    config.use_cache = False
    model = AutoModelForSequenceClassification.from_config(
        config, attn_implementation=stock_attention(name)
    )
    result = model.base_model.load_state_dict(ours.decoder.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    score = ours.head.score
    assert isinstance(score, torch.nn.Linear), "the benchmark copies a linear head"
    with torch.no_grad():
        model.score.weight.copy_(score.weight)
    return model, score.bias is not None and bool(torch.any(score.bias != 0))


def bt_loss(rewards: np.ndarray, chosen_first: np.ndarray) -> float:
    """The Bradley-Terry loss of pairs from the rewards of rows 2i, 2i+1."""
    r_a, r_b = rewards[0::2], rewards[1::2]
    margin = np.where(chosen_first, r_a - r_b, r_b - r_a)
    return float(np.mean(np.logaddexp(0.0, -margin)))


def final_loss_ours(run: Path, data) -> float:
    """The trained run's Bradley-Terry loss, each row scored alone."""
    from arena_fast.infer import predict_logits
    from arena_fast.predict import load_run

    model, _ = load_run(run)
    rewards = predict_logits(model, data.encoded, layout="padded", max_rows=1)[:, 0]
    return bt_loss(rewards, data.label[0::2] == 0)


def final_loss_trl(model, data) -> float:
    """The trained TRL model's Bradley-Terry loss, each row scored alone."""
    model.eval()
    with torch.no_grad():
        rewards = np.array(
            [
                float(
                    model(
                        input_ids=torch.as_tensor(data.encoded[i], dtype=torch.long)[None]
                    ).logits[0, 0]
                )
                for i in range(len(data.encoded))
            ]
        )
    return bt_loss(rewards, data.label[0::2] == 0)


def run_ours(data: Path, args, work: Path, max_steps: Optional[int] = None) -> dict:
    records: list[dict] = []
    config = TrainConfig(
        data=str(data),
        fold=None,
        model=args.model,
        objective="reward",
        tie_model="none",
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=0.0,
        warmup=WARMUP,
        max_tokens=args.max_tokens,
        seed=0,
        out=str(work / "ours"),
        overwrite=True,
        log_every=1,
        max_steps=max_steps,
    )
    start = time.perf_counter()
    train(config, log=records.append)
    steps = [r for r in records if "loss" in r and not r.get("eval")]
    return {
        "seconds": steps[-1]["seconds"],
        "wall_seconds": time.perf_counter() - start,
        "steps": len(steps),
        "final_loss": final_loss_ours(Path(config.out), load_dataset(data)),
    }


def run_trl(
    data: Path, batch_size: int, checkpointing: bool, args, work: Path, max_steps=None
) -> dict:
    import datasets
    from trl import RewardConfig, RewardTrainer

    start = time.perf_counter()
    rows = load_dataset(data)
    enc = rows.encoded
    ids = [enc[i].tolist() for i in range(len(enc))]
    chosen, rejected = [], []
    for pair in range(len(ids) // 2):
        a, b = ids[2 * pair], ids[2 * pair + 1]
        a_won = rows.label[2 * pair] == 0
        chosen.append(a if a_won else b)
        rejected.append(b if a_won else a)
    table = datasets.Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})
    model, _ = trl_model(args.model)
    computed = [0]
    clock = Clock()
    config = RewardConfig(
        **loop_settings(f"trl-{checkpointing}", args, work, max_steps),
        per_device_train_batch_size=batch_size,
        gradient_checkpointing=checkpointing,
        bf16=False,
        max_length=None,
    )
    trainer = RewardTrainer(
        model=model,
        args=config,
        train_dataset=table,
        processing_class=hf_tokenizer(),
        callbacks=[clock],
    )
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        computed[0] += batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return {
        "seconds": clock.steps[-1] - clock.begin,
        "wall_seconds": time.perf_counter() - start,
        "steps": len(clock.steps),
        "final_loss": final_loss_trl(trainer.model, rows),
        "computed_tokens": computed[0],
    }


def main(argv=None) -> int:
    args = training_flags(__doc__, 200, "synth rows (ties left out)").parse_args(argv)
    quiet_process(args.threads)
    import transformers
    import trl

    work = Path(tempfile.mkdtemp(prefix="arena-fast-bench-reward-"))
    data = pairs_dataset(work, args.rows, args.max_length)
    lengths = load_dataset(data).encoded.lengths.astype(np.int64)
    tokens = int(lengths.sum())
    packs = af.plan_packs(lengths, args.max_tokens, pair_swaps=True, seed=0)
    pair_tokens = lengths[0::2] + lengths[1::2]
    batch_size = max(1, round(tokens / len(packs) / pair_tokens.mean()))
    _, had_bias = trl_model(args.model)
    setup = {
        "pairs": len(lengths) // 2,
        "tokens": tokens,
        "mean_pair_tokens": float(pair_tokens.mean()),
        "packed_steps": len(packs),
        "pack_fill": tokens / (len(packs) * args.max_tokens),
        "trl_batch_pairs": batch_size,
        "our_head_bias_nonzero": had_bias,
    }
    print(setup, flush=True)
    cases = {
        "af.train reward, packed + arena_varlen": lambda steps=None: run_ours(
            data, args, work, steps
        ),
        f"TRL RewardTrainer, no checkpointing, {batch_size} pairs": (
            lambda steps=None: run_trl(data, batch_size, False, args, work, steps)
        ),
        f"TRL RewardTrainer defaults, {batch_size} pairs": (
            lambda steps=None: run_trl(data, batch_size, True, args, work, steps)
        ),
    }
    runs = interleaved_rounds(cases, args.repeat, tokens * args.epochs)
    results = _table(runs, tokens * args.epochs, setup["pack_fill"])
    print(
        f"\n{args.model}: {setup['pairs']} pairs, {tokens:,} tokens x {args.epochs} epochs, "
        f"max_length {args.max_length}, max_tokens {args.max_tokens}, {args.threads} thread(s), "
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"trl {trl.__version__}, best of {args.repeat}"
    )
    print(
        "| case | steps | fill | real tokens/s | vs TRL defaults | loop s (runs) | final BT loss |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        print(
            f"| {r['case']} | {r['steps']} | {r['fill']:.3f} | {r['tokens_per_s']:,.0f} "
            f"| **{r['vs_trl']:.2f}x** | {', '.join(f'{s:.1f}' for s in r['seconds'])} "
            f"| {r['final_loss']:.4f} |"
        )
    write_results(args.out, args, setup, results, trl=trl.__version__)
    return 0


def _table(runs: dict, real: int, pack_fill: float) -> list[dict]:
    """Each case's best round, its tokens/s and its ratio to TRL's defaults
    (the last case)."""
    results = []
    for name, rs in runs.items():
        best = min(rs, key=lambda r: r["seconds"])
        fill = real / best["computed_tokens"] if "computed_tokens" in best else pack_fill
        results.append(
            {
                "case": name,
                "steps": best["steps"],
                "fill": fill,
                "seconds": [r["seconds"] for r in rs],
                "tokens_per_s": real / best["seconds"],
                "final_loss": best["final_loss"],
            }
        )
    base = results[-1]
    for r in results:
        r["vs_trl"] = r["tokens_per_s"] / base["tokens_per_s"]
    return results


if __name__ == "__main__":
    sys.exit(main())
