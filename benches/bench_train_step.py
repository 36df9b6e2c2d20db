"""Training-step throughput of a tiny CPU model per batch layout, over the
same rows: which layout to use with which attention implementation.

Layouts: packed rows (`plan_packs` + `collate_packed`) with `arena_varlen`,
sdpa and eager attention; length-grouped padded batches (`plan_batches`,
order="grouped") with sdpa and eager; random padded batches of 8 with sdpa.
Each runs one epoch over the same encoded rows (`arena-fast synth --seed 0`,
the bundled demo tokenizer, `swap="both"`): forward, cross-entropy on the
last-token state, backward, AdamW step. Reported: real (non-padding) tokens
per second and the ratio to grouped padded sdpa.

    python benches/bench_train_step.py --rows 48 --out /tmp/results_train_step.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import arena_fast as af
import arena_fast.torch as aft


def encode(rows: int, max_length: int) -> af.Encoded:
    from arena_fast.synth import generate_rows

    data = generate_rows(rows, seed=0)
    enc = af.Encoder(af.Tokenizer.demo(), max_length=max_length)
    cols = [[r[c] for r in data] for c in ("prompt", "response_a", "response_b")]
    return enc.encode(*cols, swap="both")


def make_model(attn: str, args) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(
        vocab_size=8192,
        hidden_size=args.hidden,
        intermediate_size=2 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        attn_implementation=attn,
    )
    torch.manual_seed(0)
    return LlamaModel(config)


def batches_for(layout: str, encoded: af.Encoded, args) -> list[np.ndarray]:
    if layout == "packed":
        return list(af.plan_packs(encoded, args.max_tokens, seed=0))
    if layout == "grouped padded":
        return list(af.plan_batches(encoded, args.max_tokens, order="grouped", seed=0))
    order = np.random.default_rng(0).permutation(len(encoded))
    return [order[i : i + 8] for i in range(0, len(order), 8)]


def run(layout: str, attn: str, encoded: af.Encoded, labels: np.ndarray, args) -> dict:
    model = make_model(attn, args)
    head = torch.nn.Linear(args.hidden, 3)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    batches = batches_for(layout, encoded, args)
    packed = layout == "packed"
    real = padded = 0
    start = time.perf_counter()
    for idx in batches:
        if packed:
            batch = aft.to_torch(af.collate_packed(encoded, idx, labels))
        else:
            batch = aft.to_torch(af.collate_padded(encoded, idx, 0, labels=labels))
        pooled = aft.last_hidden(model, batch)  # (k, H)
        loss = torch.nn.functional.cross_entropy(head(pooled), batch["labels"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        real += int(encoded.lengths[idx].sum())
        padded += batch["input_ids"].numel()
    seconds = time.perf_counter() - start
    return {
        "layout": layout,
        "attention": attn,
        "steps": len(batches),
        "real_tokens": real,
        "fill": real / padded,
        "seconds": seconds,
        "tokens_per_s": real / seconds,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=48, help="synth rows (x2 with swaps)")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-packed-eager", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    aft.register()
    encoded = encode(args.rows, args.max_length)
    labels = np.arange(len(encoded), dtype=np.int64) % 3
    cases = [
        ("packed", "arena_varlen"),
        ("packed", "sdpa"),
        ("packed", "eager"),
        ("grouped padded", "sdpa"),
        ("grouped padded", "eager"),
        ("random padded", "sdpa"),
    ]
    if args.skip_packed_eager:
        cases.remove(("packed", "eager"))
    results = [run(layout, attn, encoded, labels, args) for layout, attn in cases]
    base = next(r for r in results if r["layout"] == "grouped padded" and r["attention"] == "sdpa")
    tokens = int(encoded.lengths.sum())
    print(f"{len(encoded)} sequences, {tokens} tokens, torch {torch.__version__}")
    print("| layout | attention | steps | fill | tokens/s | vs grouped padded sdpa |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['layout']} | {r['attention']} | {r['steps']} | {r['fill']:.3f} "
            f"| {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / base['tokens_per_s']:.2f}x |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
