"""`arena-fast demo`: the whole encoder on built-in data, no download needed:
synthetic Kaggle-format rows, the bundled tokenizer, a summary of what came out."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="encode synthetic arena rows with the bundled tokenizer and summarise",
        description=__doc__,
    )
    p.add_argument("--rows", type=int, default=5000, help="synthetic rows to generate")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows")
    p.add_argument("--input", help="a Kaggle train.csv / test.csv instead of synthetic rows")
    p.add_argument("--tokenizer", help="tokenizer.json (default: the bundled demo tokenizer)")
    p.add_argument("--template", default="rounds", help="rounds, pab, concat or tags")
    p.add_argument("--strategy", default="fair", help="fourth_place, fair, drop_oldest, none")
    p.add_argument("--max-length", type=int, default=1024, help="token budget per row")
    p.add_argument("--swap", action="store_true", help="also encode every row with A/B swapped")
    p.add_argument("--threads", type=int, default=None, help="encoder threads (default 1)")
    p.add_argument("--out", help="write the encoded rows to this .npz file")
    p.set_defaults(run=run)


def _read_csv(path: str) -> tuple[list[str], list[str], list[str]]:
    import csv

    from ..errors import InputError

    csv.field_size_limit(1 << 30)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"prompt", "response_a", "response_b"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: missing columns {sorted(missing)}")
        rows = list(reader)
    return (
        [r["prompt"] for r in rows],
        [r["response_a"] for r in rows],
        [r["response_b"] for r in rows],
    )


def _percentiles(values, qs=(50, 90, 99, 100)) -> str:
    import numpy as np

    if len(values) == 0:
        return "-"
    return "  ".join(f"p{q}={int(np.percentile(values, q))}" for q in qs)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import REPAIR_NULL, REPAIR_RAGGED, REPAIR_SURROGATE, Encoder, Tokenizer

    if args.input:
        prompts, a, b = _read_csv(args.input)
        source = args.input
    else:
        from ..synth import generate_rows

        rows = generate_rows(args.rows, seed=args.seed)
        prompts = [r["prompt"] for r in rows]
        a = [r["response_a"] for r in rows]
        b = [r["response_b"] for r in rows]
        source = f"synthetic (seed {args.seed})"
    tok = Tokenizer.from_file(args.tokenizer) if args.tokenizer else Tokenizer.demo()
    enc = Encoder(
        tok,
        template=args.template,
        strategy=args.strategy,
        max_length=args.max_length,
        num_threads=args.threads,
    )
    start = time.perf_counter()
    out = enc.encode_json(prompts, a, b, swap="both" if args.swap else False)
    seconds = time.perf_counter() - start
    lengths = out.lengths
    n = len(prompts)
    lines = [
        f"source        {source}: {n} rows",
        f"tokenizer     {tok.source or 'from JSON'} (vocab {tok.vocab_size}, "
        f"word cache {'on' if tok.word_split else 'off'})",
        f"encoder       template={args.template} strategy={args.strategy} "
        f"max_length={args.max_length} swap={'both' if args.swap else 'no'}",
        f"encoded       {len(out)} rows, {len(out.input_ids)} tokens in {seconds:.3f} s "
        f"({n / max(seconds, 1e-9):,.0f} rows/s)",
        f"lengths       {_percentiles(lengths)}",
        f"truncated     {int(out.truncated.sum())} rows ({out.truncated.mean():.1%}); "
        f"turns dropped in {int((out.turns_kept < out.turns_total).sum())}",
        f"repaired      {int(out.repaired.sum())} rows: "
        f"null {int(((out.repairs & REPAIR_NULL) != 0).sum())}, "
        f"lone surrogate {int(((out.repairs & REPAIR_SURROGATE) != 0).sum())}, "
        f"ragged {int(((out.repairs & REPAIR_RAGGED) != 0).sum())}",
        f"turns         {_percentiles(out.turns_total)}",
    ]
    print("\n".join(lines))
    if len(out):
        print("\nrow 0, decoded:\n" + tok.decode(out[0]))
    if args.out:
        directory = os.path.dirname(os.path.abspath(args.out))
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **out.arrays())
            os.replace(tmp, args.out)
        except BaseException:
            os.unlink(tmp)
            raise
        print(f"\nwrote {args.out}", file=sys.stderr)
    return 0
