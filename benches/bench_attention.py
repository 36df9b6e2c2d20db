"""Packed against padded batches on the CPU: what the attention costs.

A tiny random Llama (GQA) runs forward + backward on the same sequences laid
out as one packed row or as a right-padded batch, with each attention
implementation: "arena_varlen" (per-sequence sdpa from cu_seq_lens), and
transformers' sdpa and eager (which, on a packed row, compute attention over
the whole row under a block-diagonal mask). The loss is the pooled last-token
hidden states dotted with a fixed vector, as a classifier head would see them.
The warm-up run of each case is checked against padded sdpa; each timing is
the best of --repeat runs after it, taken round-robin over the cases (a case
whose warm-up took over --slow seconds, packed eager, keeps its warm-up
time); tokens/s counts real tokens. CPU timings
vary by 20-50% from run to run on a shared machine.

    PYTHONPATH=python python benches/bench_attention.py --threads 2
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch
import transformers
from transformers import LlamaConfig, LlamaModel

from arena_fast.torch.attention import register
from arena_fast.torch.packed import last_hidden, pool_last


def packed_batch(seqs):
    lens = np.array([len(s) for s in seqs])
    cu = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    return {
        "input_ids": np.concatenate(seqs)[None],
        "position_ids": np.concatenate([np.arange(n) for n in lens])[None],
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu,
        "max_length_q": int(lens.max()),
        "max_length_k": int(lens.max()),
        "last_index": (cu[1:] - 1).astype(np.int64),
    }


def padded_batch(seqs, pad_id=0):
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for b, s in enumerate(seqs):
        ids[b, : len(s)], mask[b, : len(s)] = s, 1
    last = np.array([len(s) - 1 for s in seqs], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "last_index": last}


def packed_no_kwargs(model, batch):
    """A packed row the way stock sdpa/eager take it: restarting position_ids,
    no mask, no cache, no cu_seq_lens."""
    out = model(
        input_ids=torch.as_tensor(batch["input_ids"]),
        position_ids=torch.as_tensor(batch["position_ids"]),
        use_cache=False,
    )
    return pool_last(out.last_hidden_state, batch["last_index"], packed=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", type=int, default=16)
    ap.add_argument("--min-len", type=int, default=100)
    ap.add_argument("--max-len", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--slow", type=float, default=10.0, help="time once a case slower than this")
    ap.add_argument("--skip-eager-packed", action="store_true", help="the slowest row")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    lens = rng.integers(args.min_len, args.max_len + 1, size=args.sequences)
    seqs = [rng.integers(1, args.vocab, size=n).astype(np.int64) for n in lens]
    packed, padded = packed_batch(seqs), padded_batch(seqs)

    name = register()
    cfg = LlamaConfig(
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        intermediate_size=args.intermediate,
        vocab_size=args.vocab,
        max_position_embeddings=max(2048, args.max_len),
    )
    model = LlamaModel(cfg).train()  # attention_dropout is 0: train mode changes nothing else
    w = torch.randn(args.hidden, generator=torch.Generator().manual_seed(1))

    cases = [  # (layout, attention, pooled hidden (k, H))
        ("packed", name, lambda: last_hidden(model, packed)),
        ("packed", "sdpa", lambda: packed_no_kwargs(model, packed)),
        ("packed", "eager", lambda: packed_no_kwargs(model, packed)),
        ("padded", "sdpa", lambda: last_hidden(model, padded)),
        ("padded", "eager", lambda: last_hidden(model, padded)),
        ("padded", name, lambda: last_hidden(model, padded)),
    ]
    if args.skip_eager_packed:
        cases = [c for c in cases if c[:2] != ("packed", "eager")]

    model.set_attn_implementation("sdpa")
    with torch.no_grad():
        reference = last_hidden(model, padded)

    def step(pooled):
        """One forward + backward: (seconds, pooled hidden (k, H))."""
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        h = pooled()
        (h @ w).sum().backward()
        return time.perf_counter() - start, h.detach()

    # Warm-up (and check) every case, then time them round-robin, so that a
    # slow spell of the machine does not land on one case only. A case whose
    # warm-up took over --slow seconds keeps that time: warm-up costs little
    # next to it, and timing it again would double the bench's run time.
    checked = {}  # (layout, attention) -> (warm-up seconds, max diff)
    for layout, impl, pooled in cases:
        model.set_attn_implementation(impl)
        warm, h = step(pooled)
        err = (h - reference).abs().max().item()
        if err > 1e-4:
            raise SystemExit(f"{layout} {impl}: differs from padded sdpa by {err:.2e}")
        checked[layout, impl] = (warm, err)
        print(f"{layout} {impl}: warm-up {warm:.3f} s", file=sys.stderr, flush=True)
    times = {key: [] for key in checked}
    for _ in range(args.repeat):
        for layout, impl, pooled in cases:
            if checked[layout, impl][0] <= args.slow:
                model.set_attn_implementation(impl)
                times[layout, impl].append(step(pooled)[0])
    rows = [  # (layout, attention, seconds, max diff)
        (*key, min(times[key] or [checked[key][0]]), checked[key][1]) for key in checked
    ]

    tokens = int(lens.sum())
    base = next(t for layout, impl, t, _ in rows if (layout, impl) == ("padded", "sdpa"))
    width = padded["input_ids"].shape[1]
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{platform.processor() or platform.machine()}, {args.threads} threads; "
        f"Llama hidden {args.hidden}, {args.layers} layers, {args.heads} heads / "
        f"{args.kv_heads} kv heads; {args.sequences} sequences of {args.min_len}-{args.max_len} "
        f"tokens: {tokens} tokens, padded {args.sequences} x {width} = {args.sequences * width}; "
        f"forward + backward, best of {args.repeat} (warm-up only if over {args.slow:g} s)\n"
    )
    print("| layout | attention | time (s) | tokens/s | vs padded sdpa | max diff |")
    print("|---|---|---:|---:|---:|---:|")
    for layout, impl, t, err in rows:
        print(f"| {layout} | {impl} | {t:.3f} | {tokens / t:,.0f} | {base / t:.2f}x | {err:.1e} |")


if __name__ == "__main__":
    main()
