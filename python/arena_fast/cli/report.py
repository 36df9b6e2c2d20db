"""`arena-fast report RUN [RUN ...]`: an HTML page with PNG plots of training
runs, to open in a browser instead of reading logs: loss curves, held-out log
loss per fold, calibration (reliability diagram, ECE), position flip rate,
confusion matrix, log loss by turns and by truncation.

One run: the page goes to RUN/report/index.html. Several runs (the k fold
runs of one model) share one page comparing them, in --out, by default
report/ in the directory that holds them all. --predictions adds tables
written by `arena-fast predict --predictions` as further sections. Every
score says which rows it covers (a table including rows its run trained on
is flagged); runs are pooled out of fold only when their held-out folds are
distinct, of one dataset, with no id twice. An older
report is replaced with --overwrite; a directory that is not a report never
is, nor a run being read (see docs/dataset.md, "Where a build writes"). Needs
matplotlib (pip install "arena-fast[plot]"). Prints the path of index.html."""

from __future__ import annotations

import argparse

from ._args import HelpFormatter, Switch
from ._terminal import printable


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="an HTML page with plots of one or more training runs",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "runs", nargs="+", metavar="RUN", help="run directories written by `arena-fast train`"
    )
    p.add_argument("--out", metavar="DIR", help="the report's directory (index.html and PNGs)")
    p.add_argument(
        "--predictions",
        nargs="+",
        action="extend",
        metavar="FILE",
        help="prediction tables (.parquet) from `arena-fast predict --predictions`",
    )
    p.add_argument(
        "--overwrite", action=Switch, help="replace an earlier report in --out (or RUN/report)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..report import write_report  # matplotlib: loaded by this command only

    print(
        printable(
            write_report(
                args.runs, out=args.out, predictions=args.predictions, overwrite=args.overwrite
            )
        )
    )
    return 0
