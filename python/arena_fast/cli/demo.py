"""`arena-fast demo`: the whole pipeline on built-in data, on the CPU, in a few
minutes, nothing downloaded: synthetic Kaggle-format rows -> build-dataset
(bundled tokenizer, both A/B orders) -> train `tiny-gemma2` on fold 0 ->
predict held-out synthetic rows with swap TTA -> score, printing the log loss
at each stage (needs the `[train]` extra).

`--encode-only` runs the encoder alone on synthetic rows or a Kaggle CSV
(`--input`, `--tokenizer`) and summarises what came out (no torch needed)."""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time

import numpy as np

from ..dataset import BuildConfig, build_dataset, load_dataset
from ..diagnostics import format_summary, log_loss, summarize
from ..encoded import REPAIR_NULL, REPAIR_RAGGED, REPAIR_SURROGATE
from ..encoder import Encoder
from ..errors import ConfigError, InputError
from ..files import check_output, output_lock, replacing
from ..outputs import DEMO_MARKER
from ..synth import generate_rows, write_csv
from ..tokenizer import Tokenizer
from ._args import HelpFormatter, Switch, int_at_least, thread_count
from ._progress import Progress, rows_bar, train_bar
from ._terminal import printable

# The pipeline demo's token budget: it trains on a CPU in a few minutes. The
# encoder's default (--encode-only, build-dataset) is BuildConfig's.
PIPELINE_MAX_LENGTH = 192
# What a cut answer keeps in the pipeline demo: its head and its tail, so the
# model sees both how an answer starts (a refusal) and how it ends (complete,
# or cut off mid-sentence): what the synthetic labels follow (docs/synth.md).
PIPELINE_KEEP = "head_tail"


def add_parser(sub) -> None:
    d = BuildConfig()  # the encoder's defaults are build-dataset's (one owner)
    p = sub.add_parser(
        "demo",
        help="synth -> build-dataset -> train tiny-gemma2 -> predict -> score, on the CPU",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--rows", type=int_at_least(1), default=3000, help="synthetic training rows")
    p.add_argument(
        "--test-rows", type=int_at_least(1), default=500, help="held-out synthetic rows to score"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows and training")
    p.add_argument("--epochs", type=int_at_least(1), default=3, help="training epochs")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate")
    p.add_argument(
        "--torch-threads",
        type=thread_count,
        default=1,
        help="torch threads of training and prediction (the tiny model gains little from "
        "more, and on a busy machine a second thread can cost several times the time)",
    )
    p.add_argument("--model", default="tiny-gemma2", help="tiny-gemma2, tiny-llama or a folder")
    p.add_argument(
        "--out",
        help="keep the datasets, run and submission here: a new or empty directory, or an "
        "earlier demo's (default: a temp dir)",
    )
    p.add_argument("--encode-only", action=Switch, help="the encoder alone (no torch)")
    p.add_argument("--input", help="with --encode-only: a Kaggle train.csv / test.csv")
    p.add_argument("--tokenizer", help="tokenizer.json (default: the bundled demo tokenizer)")
    p.add_argument("--template", default=d.template, help="rounds, pab, concat or tags")
    p.add_argument("--strategy", default=d.strategy, help="fourth_place, fair, drop_oldest, none")
    p.add_argument(
        "--max-length",
        type=int_at_least(1),
        help=f"token budget per row (default: {d.max_length}, build-dataset's; the pipeline "
        f"demo: {PIPELINE_MAX_LENGTH}, to train on a CPU in minutes)",
    )
    p.add_argument("--swap", action=Switch, help="with --encode-only: both A/B orders")
    p.add_argument("--threads", type=thread_count, default=None, help="encoder threads (default 1)")
    p.add_argument("--npz", help="with --encode-only: write the encoded rows to this .npz file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.max_length is None:
        args.max_length = BuildConfig().max_length if args.encode_only else PIPELINE_MAX_LENGTH
    if args.encode_only:
        return _encode_only(args)
    if args.input:
        raise ConfigError("--input is for --encode-only; the pipeline demo makes its own rows")
    try:
        import torch
    except ImportError:
        raise ConfigError(
            'the pipeline demo trains a model: pip install "arena-fast[train]" '
            "(or run `arena-fast demo --encode-only`)"
        ) from None
    threads = torch.get_num_threads()
    torch.set_num_threads(args.torch_threads)  # the caller's count comes back below
    try:
        return _run_pipeline(args)
    finally:
        torch.set_num_threads(threads)


def _run_pipeline(args: argparse.Namespace) -> int:
    if args.out:
        # Its own files only: never a user's train.csv or submission.csv.
        check_output(args.out, "demo", overwrite=True)
        with output_lock(args.out):
            check_output(args.out, "demo", overwrite=True)
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, DEMO_MARKER), "w", encoding="utf-8") as f:
                f.write('{"written_by": "arena-fast demo"}\n')
            return _pipeline(args, args.out)
    with tempfile.TemporaryDirectory(prefix="arena-fast-demo-") as work:
        return _pipeline(args, work)


def _say(stage: str, text: str) -> None:
    print(printable(f"[{stage:<7}] {text}"), flush=True)


def _pipeline(args: argparse.Namespace, work: str) -> int:
    # The torch layer: loaded by the pipeline demo only (here and in _score).
    from ..train import TrainConfig, train

    started = time.perf_counter()
    train_csv, test_csv = os.path.join(work, "train.csv"), os.path.join(work, "holdout.csv")
    write_csv(train_csv, args.rows, seed=args.seed)
    write_csv(test_csv, args.test_rows, seed=args.seed + 1)
    _say("synth", f"{args.rows} training rows, {args.test_rows} held-out rows (Kaggle format)")

    common = dict(
        tokenizer=args.tokenizer,
        template=args.template,
        strategy=args.strategy,
        max_length=args.max_length,
        swap=True,
        seed=args.seed,
        threads=args.threads,
        encoder={"keep": PIPELINE_KEEP},
    )
    data, holdout = os.path.join(work, "data"), os.path.join(work, "holdout-data")
    built = build_dataset(BuildConfig(inputs=[train_csv], **common), data, overwrite=True)
    build_dataset(BuildConfig(inputs=[test_csv], **common), holdout, overwrite=True)
    counts = built["counts"]
    _say(
        "build",
        f"{counts['rows']} of {counts['rows_in']} rows kept, "
        f"{counts['input_rows_dropped']} dropped "
        f"(reasons in {data}/dropped.parquet); both A/B orders, max_length {args.max_length}, "
        f"cut answers keep their {PIPELINE_KEEP.replace('_', ' and ')}",
    )
    train_rows = load_dataset(data, fold=0, split="train", swap=False)
    valid_rows = load_dataset(data, fold=0, split="valid", swap=False)
    prior = np.nanmean(train_rows.labels, axis=0)
    labelled = valid_rows.labels[valid_rows.labelled].astype(np.float64)
    prior_loss = log_loss(np.tile(prior, (len(labelled), 1)), labelled)
    _say(
        "score",
        f"before training: uniform {math.log(3):.4f}, class prior {prior_loss:.4f} "
        f"(fold 0, {len(labelled)} rows)",
    )

    steps = Progress(prefix="arena-fast demo", unit="steps")  # a bar on stderr

    def log(record: dict) -> None:
        if record.get("eval"):
            with steps.paused():  # a line on stdout, the bar redrawn below it
                _say(
                    "train",
                    f"epoch {record['epoch']}: fold-0 log loss {record['log_loss']:.4f}, "
                    f"with swap TTA {record.get('tta_log_loss', float('nan')):.4f} "
                    f"({record['seconds']:.0f} s)",
                )

    run_dir = os.path.join(work, "run")
    config = TrainConfig(
        data=data,
        fold=0,
        model=args.model,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        out=run_dir,
        overwrite=True,  # the run of an earlier demo in --out
        log_every=20,  # training loss in metrics.jsonl (for `arena-fast report`), not printed
    )
    try:
        train(config, log=log, progress=train_bar(steps))
    finally:
        steps.done()
    _score(run_dir, holdout, prior, work)
    where = f"kept in {work}" if args.out else "in a temporary directory, removed"
    _say("done", f"{time.perf_counter() - started:.0f} s; datasets, run and submission {where}")
    return 0


def _score(run_dir: str, holdout: str, prior: np.ndarray, work: str) -> None:
    """Predict the held-out rows with swap TTA, write the submission, print
    the scores: before training (uniform, the class prior) and after."""
    from ..predict import postprocess_rules, predict, prediction_table, write_submission

    rows = Progress(prefix="arena-fast demo")
    try:
        result = predict(run_dir, holdout, progress=rows_bar(rows, "predicting held-out rows"))
    finally:
        rows.done()
    table = summarize(prediction_table(result))
    # predict(postprocess=True)'s rules, on these probabilities (no second pass).
    held = load_dataset(holdout, swap=None)
    ruled, changed = postprocess_rules(
        result["probs"], held.flags[0::2] if held.swapped else held.flags
    )
    labels = result["labels"]
    mask = ~np.isnan(labels).any(axis=1)
    single = log_loss(result["probs_original"][mask], labels[mask])
    _say(
        "predict",
        f"{len(result['ids'])} held-out rows: log loss {table['log_loss']:.4f} with swap TTA, "
        f"{single:.4f} original order alone, "
        f"{log_loss(ruled[mask], labels[mask]):.4f} with --postprocess "
        f"({int(changed.sum())} rows changed)",
    )
    submission = os.path.join(work, "submission.csv")
    write_submission(submission, result["ids"], result["probs"])
    print(format_summary(table))
    held_prior = log_loss(np.tile(prior, (int(mask.sum()), 1)), labels[mask])
    _say(
        "result",
        f"held-out log loss {math.log(3):.4f} (uniform), {held_prior:.4f} (class prior) "
        f"before training -> {table['log_loss']:.4f} after; flip rate {table['flip_rate']:.3f} "
        f"(verdict changes under the A/B swap)",
    )


def _read_csv(path: str) -> tuple[list[str], list[str], list[str]]:
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
    if len(values) == 0:
        return "-"
    return "  ".join(f"p{q}={int(np.percentile(values, q))}" for q in qs)


def _encode_only(args: argparse.Namespace) -> int:
    if args.input:
        prompts, a, b = _read_csv(args.input)
        source = args.input
    else:
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
        f"tokenizer     {tok.source or 'from JSON'} (vocab {tok.vocab_size}; "
        f"{tok.fast_path}: {tok.fast_path_reason})",
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
    print(printable("\n".join(lines), layout=True))
    if len(out):
        print(printable("\nrow 0, decoded:\n" + tok.decode(out[0]), layout=True))
    if args.npz:
        with replacing(args.npz) as tmp, open(tmp, "wb") as f:
            np.savez(f, **out.arrays())
        print("\n" + printable(f"wrote {args.npz}"), file=sys.stderr)
    return 0
