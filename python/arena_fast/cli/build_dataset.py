"""`arena-fast build-dataset`: raw arena data -> a training-ready dataset
directory (parquet shards with token ids and folds, manifest.json,
dropped.parquet). With no --input and no --tokenizer it builds the demo
dataset from synthetic rows and the bundled tokenizer."""

from __future__ import annotations

import argparse
import sys

from ..dataset import BuildConfig, build_dataset
from ._args import HelpFormatter, Switch, int_at_least, thread_count
from ._progress import Progress
from ._terminal import printable

_positive = int_at_least(1)


def add_parser(sub) -> None:
    d = BuildConfig()

    p = sub.add_parser(
        "build-dataset",
        help="read, clean, de-duplicate, fold and encode arena data into a dataset directory",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH[:FORMAT]",
        help="an input file; FORMAT is kaggle, arena33k, ultrafeedback, chat1m or canonical "
        "(detected when left out); repeat for several",
    )
    io.add_argument("--out", default="arena-dataset", help="the dataset directory to write")
    io.add_argument(
        "--overwrite",
        action=Switch,
        help="replace an existing --out that is an earlier dataset (anything else is refused)",
    )
    io.add_argument(
        "--demo-rows", type=int, default=d.demo_rows, help="synthetic rows when no --input is given"
    )
    enc = p.add_argument_group("encoding")
    enc.add_argument("--tokenizer", help="tokenizer.json (default: the bundled demo tokenizer)")
    enc.add_argument("--template", default=d.template, help="rounds, pab, concat or tags")
    enc.add_argument("--strategy", default=d.strategy, help="fourth_place, fair, drop_oldest, none")
    enc.add_argument(
        "--max-length", type=_positive, default=d.max_length, help="token budget per row"
    )
    enc.add_argument("--swap", action=Switch, help="also store every row with A/B swapped")
    enc.add_argument("--threads", type=thread_count, default=None, help="encoder threads")
    clean = p.add_argument_group("cleaning (labelled rows and chat1m pairs)")
    clean.add_argument(
        "--both-empty",
        choices=("drop", "keep"),
        default=d.both_empty,
        help="rows where both answers are empty",
    )
    clean.add_argument(
        "--one-empty",
        choices=("keep", "relabel", "drop"),
        default=d.one_empty,
        help="rows where one answer is empty; relabel: a win for the side that answered "
        "(4th place)",
    )
    clean.add_argument(
        "--identical",
        choices=("drop", "tie", "keep"),
        default=d.identical,
        help="rows whose answers A and B are the same text; tie: relabelled a tie",
    )
    clean.add_argument(
        "--ragged",
        choices=("keep", "drop"),
        default=d.ragged,
        help="rows whose turn lists differ in length; keep: padded with empty turns",
    )
    clean.add_argument(
        "--repaired",
        choices=("keep", "drop"),
        default=d.repaired,
        help="rows whose text had a null turn or a lone surrogate",
    )
    clean.add_argument(
        "--dedup",
        choices=("prompt", "pair", "none"),
        default=d.dedup,
        help="prompt: drop rows whose prompt is in a higher-priority source, and repeated "
        "(prompt, answers); pair: only the latter",
    )
    clean.add_argument(
        "--priority",
        default=",".join(d.priority),
        help="source priority for de-duplication, highest first",
    )
    folds = p.add_argument_group("folds")
    folds.add_argument(
        "--folds", type=_positive, default=d.folds, help="K folds, grouped by prompt"
    )
    folds.add_argument("--seed", type=int, default=d.seed, help="seed of folds and A/B coins")
    tune = p.add_argument_group("tuning")
    tune.add_argument("--chunk-rows", type=_positive, default=d.chunk_rows, help="rows per chunk")
    tune.add_argument("--shard-rows", type=_positive, default=d.shard_rows, help="rows per shard")
    tune.add_argument(
        "--compression",
        choices=("zstd", "lz4", "snappy", "none"),
        default=d.compression,
        help="parquet compression of the shards",
    )
    tune.add_argument(
        "--pack-tokens", type=_positive, default=d.pack_tokens, help="pack size for the fill figure"
    )
    p.add_argument("--quiet", action=Switch, help="no progress, no summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = BuildConfig(
        inputs=list(args.input),
        tokenizer=args.tokenizer,
        template=args.template,
        strategy=args.strategy,
        max_length=args.max_length,
        swap=args.swap,
        folds=args.folds,
        seed=args.seed,
        both_empty=args.both_empty,
        one_empty=args.one_empty,
        identical=args.identical,
        ragged=args.ragged,
        repaired=args.repaired,
        dedup=args.dedup,
        priority=tuple(s.strip() for s in args.priority.split(",") if s.strip()),
        demo_rows=args.demo_rows,
        chunk_rows=args.chunk_rows,
        shard_rows=args.shard_rows,
        threads=args.threads,
        compression=args.compression,
        pack_tokens=args.pack_tokens,
    )
    progress = Progress(quiet=args.quiet)
    manifest = build_dataset(config, args.out, overwrite=args.overwrite, progress=progress)
    if not args.quiet:
        print(printable(summary(manifest, args.out), layout=True), file=sys.stdout)
    return 0


def summary(manifest: dict, out: str) -> str:
    """The end-of-build table: rows in, kept, dropped by reason, truncation,
    token percentiles, fill."""
    c = manifest["counts"]
    s = manifest["stats"]
    rows_in = c["rows_in"]

    def share(n: int) -> str:
        return f"{n / rows_in:6.1%}" if rows_in else "     -"

    lines = [f"dataset {out}: {c['rows']:,} rows in {len(manifest['shards'])} shard(s)"]
    lines.append(f"  {'input rows':<28}{rows_in:>10,}")
    lines.append(
        f"  {'kept (input rows)':<28}{c['input_rows_kept']:>10,}  {share(c['input_rows_kept'])}"
    )
    for reason, n in c["dropped"].items():
        lines.append(f"  {'dropped: ' + reason:<28}{n:>10,}  {share(n)}")
    lines.append(f"  {'relabelled':<28}{c['relabelled']:>10,}")
    kinds = ", ".join(f"{k} {n:,}" for k, n in c.get("repairs", {}).items() if n)
    lines.append(
        f"  {'text repaired (kept)':<28}{c['repaired']:>10,}" + (f"  ({kinds})" if kinds else "")
    )
    for src, n in c["by_source"].items():
        lines.append(f"  {'source: ' + src:<28}{n:>10,}")
    lines.append(
        "  labels                      " + "  ".join(f"{k} {v:,}" for k, v in c["labels"].items())
    )
    lines.append(
        "  folds                       " + "  ".join(f"{k}:{v:,}" for k, v in c["folds"].items())
    )
    length = s["length"]
    if length:
        lines.append(
            f"  {'tokens per row':<28}p50 {length['p50']:,}  p90 {length['p90']:,}  "
            f"p99 {length['p99']:,}  max {length['max']:,}  (total {s['tokens']:,})"
        )
    lines.append(f"  {'truncated':<28}{s['truncated_share']:>10.1%}")
    if s["fill"] is not None:
        lines.append(
            f"  {'fill at ' + format(s['pack_tokens'], ',') + ' tokens':<28}{s['fill']:>10.4f}"
        )
    if "timings" in manifest:
        lines.append(f"  {'built in':<28}{manifest['timings']['total']:>9.2f}s")
    return "\n".join(lines)
