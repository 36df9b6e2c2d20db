"""Soak: encode, plan and collate 1,000,000 synthetic rows in a loop and
watch the resident memory, which must stay flat (no leak in the encoder, the
word cache, the planner or the collators).

The rows are a pool of distinct synthetic rows (`--pool`), encoded again
and again (`--rows` in all) with both A/B orders, each chunk planned into
packs and every pack collated, as a training data loader does. Resident
memory is read from /proc/self/statm after every chunk; reported: after the
first chunk (caches warm), the peak, and at the end.

    python benches/bench_soak.py --rows 1000000 --out /tmp/results_soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import arena_fast as af
from arena_fast.synth import generate_rows

COLUMNS = ("prompt", "response_a", "response_b")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows encoded in all")
    p.add_argument("--pool", type=int, default=20_000, help="distinct synthetic rows")
    p.add_argument("--chunk", type=int, default=5_000, help="rows per encode call")
    p.add_argument("--tokenizer", help="tokenizer.json (default: the bundled demo tokenizer)")
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)

    rows = generate_rows(args.pool, seed=0)
    pool = [[r[c] for r in rows] for c in COLUMNS]
    del rows
    tok = af.Tokenizer.from_file(args.tokenizer) if args.tokenizer else af.Tokenizer.demo()
    enc = af.Encoder(tok, max_length=args.max_length)
    labels = np.zeros(2 * args.chunk, dtype=np.int64)
    samples = []
    done = tokens = batches = 0
    started = time.perf_counter()
    while done < args.rows:
        lo = done % args.pool
        n = min(args.chunk, args.pool - lo, args.rows - done)
        out = enc.encode_json(*(c[lo : lo + n] for c in pool), swap="both")
        plan = af.plan_packs(out, 8192, seed=done)
        for idx in plan:
            batch = af.collate_packed(out, idx, labels[: len(out)])
            tokens += int(batch["input_ids"].shape[1])
            batches += 1
        done += n
        samples.append((done, rss_mb()))
    seconds = time.perf_counter() - started
    first, peak, end = samples[0][1], max(s for _, s in samples), samples[-1][1]
    # Growth over the second half: a leak grows with the rows; a plateau does not.
    half = samples[len(samples) // 2][1]
    result = {
        "rows": done,
        "sequences": 2 * done,
        "tokens_collated": tokens,
        "batches": batches,
        "seconds": round(seconds, 1),
        "rows_per_s": round(done / seconds),
        "rss_mb_after_first_chunk": round(first, 1),
        "rss_mb_at_half": round(half, 1),
        "rss_mb_peak": round(peak, 1),
        "rss_mb_end": round(end, 1),
        "growth_second_half_mb": round(end - half, 1),
    }
    print(json.dumps(result, indent=2))
    print(
        f"\n| rows | seconds | RSS after first chunk | at half | peak | end | "
        f"second-half growth |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        f"| {done:,} | {seconds:.0f} | {first:.0f} MB | {half:.0f} MB | {peak:.0f} MB | "
        f"{end:.0f} MB | {end - half:+.1f} MB |"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
