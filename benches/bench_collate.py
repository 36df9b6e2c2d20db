"""Collation and batch planning against their peers, in one run on the same
sequences.

Peers: transformers' `DataCollatorWithFlattening` (packed) and
`DataCollatorWithPadding` (padded) fed the same batches as lists of token
ids, the way a `datasets` pipeline feeds them; our numpy reference
collators (`arena_fast.reference.collate`); and, for planning, random
padded batches and a global length sort. Sequences: the encoder's output on
`arena-fast synth --seed 0` rows, gemma3 tokenizer, max_length 2048,
`swap="both"`.

    python benches/bench_collate.py --rows 6000 --out /tmp/results_collate.json
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import arena_fast as af  # noqa: E402
from arena_fast.reference import collate as ref  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GEMMA = SHARED / "tokenizers" / "gemma3" / "tokenizer.json"


def per_call(fn, batches, repeat: int) -> float:
    """Best-of-`repeat` seconds per batch over all `batches`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for b in batches:
            fn(b)
        best = min(best, (time.perf_counter() - start) / len(batches))
    return best


def encode(rows: int, max_length: int) -> af.Encoded:
    from arena_fast.synth import generate_rows

    data = generate_rows(rows, seed=0)
    enc = af.Encoder(af.Tokenizer.from_file(GEMMA), max_length=max_length)
    return enc.encode(
        [r["prompt"] for r in data],
        [r["response_a"] for r in data],
        [r["response_b"] for r in data],
        swap="both",
    )


def bench_collate(encoded: af.Encoded, args) -> list[dict]:
    import torch
    from transformers import (
        DataCollatorWithFlattening,
        DataCollatorWithPadding,
        PreTrainedTokenizerFast,
    )

    from arena_fast.torch import to_torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, len(encoded), args.batch_size) for _ in range(args.batches)]
    rows = encoded.to_lists()
    features = [[{"input_ids": rows[i]} for i in b] for b in batches]
    padded_features = [
        [{"input_ids": rows[i], "attention_mask": [1] * len(rows[i])} for i in b] for b in batches
    ]
    flat = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_seq_idx=True)
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=str(GEMMA), pad_token="<pad>")
    pad_id = hf_tok.pad_token_id
    padder = DataCollatorWithPadding(hf_tok)
    ids, offsets = encoded.input_ids, encoded.offsets
    out = []

    def row(case, peer, ours, theirs, target):
        out.append(
            {
                "case": case,
                "peer": peer,
                "ours_us": ours * 1e6,
                "peer_us": theirs * 1e6,
                "ratio": theirs / ours,
                "target": target,
            }
        )

    # Same content first: ours equals the peer on one batch.
    mine = af.collate_packed(encoded, batches[0])
    theirs = flat(features[0])
    assert np.array_equal(mine["input_ids"], theirs["input_ids"].numpy())
    assert np.array_equal(mine["position_ids"], theirs["position_ids"].numpy())
    mine = af.collate_padded(encoded, batches[0], pad_id)
    theirs = padder(padded_features[0])
    assert np.array_equal(mine["input_ids"], theirs["input_ids"].numpy())
    assert np.array_equal(mine["attention_mask"], theirs["attention_mask"].numpy())

    r = args.repeat
    ours_np = per_call(lambda b: af.collate_packed(encoded, b), batches, r)
    ours_pt = per_call(lambda b: to_torch(af.collate_packed(encoded, b)), batches, r)
    hf = per_call(flat, features, r)
    numpy_ref = per_call(lambda b: ref.collate_packed(ids, offsets, b), batches, r)
    row("collate_packed (numpy out)", "DataCollatorWithFlattening (torch out)", ours_np, hf, 150)
    row("collate_packed + to_torch", "DataCollatorWithFlattening (torch out)", ours_pt, hf, None)
    row("collate_packed (numpy out)", "numpy reference collator", ours_np, numpy_ref, 3)

    ours_np = per_call(lambda b: af.collate_padded(encoded, b, pad_id), batches, r)
    ours_pt = per_call(lambda b: to_torch(af.collate_padded(encoded, b, pad_id)), batches, r)
    hf = per_call(padder, padded_features, r)
    numpy_ref = per_call(lambda b: ref.collate_padded(ids, offsets, b, pad_id), batches, r)
    row("collate_padded (numpy out)", "DataCollatorWithPadding (torch out)", ours_np, hf, 300)
    row("collate_padded + to_torch", "DataCollatorWithPadding (torch out)", ours_pt, hf, None)
    row("collate_padded (numpy out)", "numpy reference collator", ours_np, numpy_ref, 3)
    return out


def padded_fill(lengths: np.ndarray, batches) -> float:
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    return real / padded


def bench_plan(encoded: af.Encoded, args) -> dict:
    lengths = encoded.lengths
    n = len(lengths)
    out: dict = {"sequences": n, "tokens": int(lengths.sum())}
    plans = [
        af.plan_packs(lengths, 16384, pair_swaps=True, seed=0, world_size=2, rank=r)
        for r in range(2)
    ]
    start = time.perf_counter()
    af.plan_packs(lengths, 16384, pair_swaps=True, seed=0, world_size=2, rank=0)
    out["packs_bfd_2ranks"] = {
        "fill": plans[0].fill,
        "imbalance": plans[0].imbalance,
        "steps_per_rank": [len(p) for p in plans],
        "rank_tokens": plans[0].rank_tokens.tolist(),
        "seconds": time.perf_counter() - start,
    }
    for strategy in ("greedy", "sorted"):
        out[f"packs_{strategy}"] = af.plan_packs(lengths, 16384, strategy=strategy).fill
    # 1,000,000 lengths drawn (as swap pairs) from the same distribution.
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, n // 2, 500_000) * 2
    big = np.stack([lengths[pairs], lengths[pairs + 1]], axis=1).reshape(-1)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        big_plan = af.plan_packs(big, 16384, pair_swaps=True, world_size=2)
        best = min(best, time.perf_counter() - start)
    out["plan_1m_seconds"] = best
    out["plan_1m_fill"] = big_plan.fill
    # Padded: grouped plan vs random and sorted batches of 8.
    grouped = af.plan_batches(lengths, 16384, order="grouped", seed=0, world_size=2)
    out["batches_grouped_fill"] = grouped.fill
    out["batches_grouped_imbalance"] = grouped.imbalance
    order = rng.permutation(n)
    out["random_batches_of_8_fill"] = padded_fill(lengths, np.array_split(order, n // 8))
    order = np.argsort(-lengths, kind="stable")
    out["sorted_batches_of_8_fill"] = padded_fill(lengths, np.array_split(order, n // 8))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=6000, help="synth rows (x2 with swaps)")
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    if not GEMMA.is_file():
        print(f"needs {GEMMA} (the shared Gemma tokenizer)", file=sys.stderr)
        return 2
    encoded = encode(args.rows, args.max_length)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "collate": bench_collate(encoded, args),
        "plan": bench_plan(encoded, args),
    }
    print("| case | peer | ours us/batch | peer us/batch | ratio | target |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for r in results["collate"]:
        target = f">= {r['target']}x" if r["target"] else "-"
        print(
            f"| {r['case']} | {r['peer']} | {r['ours_us']:.1f} | {r['peer_us']:.1f} "
            f"| **{r['ratio']:.0f}x** | {target} |"
        )
    print(json.dumps(results["plan"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
