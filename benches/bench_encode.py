"""Encoder speed against its peers, measured in one run on the same rows.

Peers: `pairjudge` (PyPI) `competition_v1` and `balanced_v2` packing, Hugging
Face `tokenizers` batch encoding of the same texts, and our pure-Python
reference. Everything runs on one thread. Each timing is the best of
`--repeat` runs; our word cache is cleared before every run, so each one
starts cold like a fresh process.

    python benches/bench_encode.py --rows 20000 --out benches/results_encode.json
"""

from __future__ import annotations

import os

# One thread for every peer: must be set before tokenizers starts its pool.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import arena_fast as af  # noqa: E402
from arena_fast import _core  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GEMMA = SHARED / "tokenizers" / "gemma3" / "tokenizer.json"


def best_of(repeat: int, fn, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class HFAdapter:
    """What pairjudge expects of a tokenizer, over `tokenizers.Tokenizer`."""

    def __init__(self, tok, bos, eos):
        self.tok, self.bos_token_id, self.eos_token_id = tok, bos, eos

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": self.tok.encode(text, add_special_tokens=add_special_tokens).ids}


def load_rows(n: int, seed: int):
    """Synthetic rows plus the real Kaggle rows, as raw JSON cells."""
    from arena_fast.synth import generate_rows

    rows = [(r["prompt"], r["response_a"], r["response_b"]) for r in generate_rows(n, seed=seed)]
    real = SHARED / "data" / "kaggle_train_head100.csv"
    if real.is_file():
        with open(real, newline="", encoding="utf-8") as f:
            rows += [(r["prompt"], r["response_a"], r["response_b"]) for r in csv.DictReader(f)]
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference-rows", type=int, default=1000)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    if not GEMMA.is_file():
        print(f"needs {GEMMA} (the shared Gemma tokenizer)", file=sys.stderr)
        return 2
    from pairjudge import PackerConfig, PairPacker
    from tokenizers import Tokenizer as HFTokenizer

    from arena_fast.reference import ReferenceEncoder, parse_turn_list

    raw = load_rows(args.rows, args.seed)
    parsed = [tuple(parse_turn_list(c)[0] for c in row) for row in raw]
    # pairjudge accepts neither null turns nor ragged lists: compare on the rows
    # it accepts (nulls are already "" after parsing; drop ragged rows).
    rows = [r for r in parsed if len(r[0]) == len(r[1]) == len(r[2])]
    P, A, B = ([r[i] for r in rows] for i in range(3))
    n = len(rows)
    L = args.max_length

    tok = af.Tokenizer.from_file(GEMMA)
    hf = HFTokenizer.from_file(str(GEMMA))
    cold = _core.clear_word_cache
    results = {"rows": n, "max_length": L, "tokenizer": "gemma3", "threads": 1}
    table = []

    def record(name, ours_s, peer_name, peer_s, target=None, lower_is_better=False):
        ratio = (ours_s / peer_s) if lower_is_better else (peer_s / ours_s)
        results[name] = {
            "ours_s": ours_s,
            "peer": peer_name,
            "peer_s": peer_s,
            "ratio": ratio,
            "ours_rows_per_s": n / ours_s,
            "peer_rows_per_s": n / peer_s,
        }
        table.append((name, peer_name, n / ours_s, n / peer_s, ratio, target))

    # 1. fourth_place / joint vs pairjudge competition_v1 (identical ids).
    enc4 = af.Encoder(
        tok,
        template="rounds",
        strategy="fourth_place",
        max_length=L,
        tokenize="joint",
        split_special_tokens=False,
    )
    hf.encode_special_tokens = False
    adapter = HFAdapter(hf, enc4.bos_token_id, enc4.eos_token_id)
    packer = PairPacker(adapter, PackerConfig(max_length=L, packing_format="competition_v1"))
    ours = best_of(args.repeat, lambda: enc4.encode(P, A, B), cold)
    theirs = best_of(1, lambda: [packer.pack(p, a, b) for p, a, b in zip(P, A, B)])
    same = enc4.encode(P, A, B).to_lists() == [
        packer.pack(p, a, b).input_ids for p, a, b in zip(P, A, B)
    ]
    results["fourth_place_identical_to_pairjudge"] = same
    record("fourth_place/joint", ours, "pairjudge competition_v1", theirs, ">= 4x")

    # 2. fair / split with swap="both" vs pairjudge balanced_v2 on both orders.
    enc_fair = af.Encoder(tok, template="rounds", strategy="fair", max_length=L)
    packer2 = PairPacker(adapter, PackerConfig(max_length=L, packing_format="balanced_v2"))

    def pairjudge_both():
        for p, a, b in zip(P, A, B):
            packer2.pack(p, a, b)
            packer2.pack(p, b, a)

    ours = best_of(args.repeat, lambda: enc_fair.encode(P, A, B, swap="both"), cold)
    theirs = best_of(1, pairjudge_both)
    record("fair/split swap=both", ours, "pairjudge balanced_v2 x2", theirs, ">= 8x")

    # 3. fair / split (no swap) vs HF tokenizers encode_batch of the same texts.
    texts = [t for r in rows for field in r for t in field]
    hf.encode_special_tokens = True
    ours = best_of(args.repeat, lambda: enc_fair.encode(P, A, B), cold)
    theirs = best_of(args.repeat, lambda: hf.encode_batch(texts, add_special_tokens=False))
    record(
        "fair/split vs encode_batch",
        ours,
        "tokenizers encode_batch",
        theirs,
        "<= 0.6",
        lower_is_better=True,
    )

    # 4. Our pure-Python reference (same ids), on a subset: it is slow.
    k = min(args.reference_rows, n)
    ref = ReferenceEncoder(
        tok.to_str(),
        strategy="fair",
        max_length=L,
        bos_token_id=enc_fair.bos_token_id,
        eos_token_id=enc_fair.eos_token_id,
    )
    sub = (P[:k], A[:k], B[:k])
    ours = best_of(args.repeat, lambda: enc_fair.encode(*sub), cold)
    theirs = best_of(1, lambda: ref.encode(*sub))
    results["fair/split vs reference"] = {"rows": k, "ours_s": ours, "peer_s": theirs}
    table.append(
        ("fair/split (subset)", "pure-Python reference", k / ours, k / theirs, theirs / ours, None)
    )

    results["machine"] = {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    print(
        f"\n{n} rows ({args.rows} synthetic, seed {args.seed}, + real rows), "
        f"max_length {L}, gemma3 tokenizer, 1 thread"
    )
    print(f"{'case':30} {'peer':28} {'ours rows/s':>12} {'peer rows/s':>12} {'ratio':>8}  target")
    for name, peer, o, p, ratio, target in table:
        print(f"{name:30} {peer:28} {o:12,.0f} {p:12,.0f} {ratio:8.2f}  {target or ''}")
    print(f"fourth_place ids identical to pairjudge: {same}")
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
