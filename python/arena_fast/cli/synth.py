"""`arena-fast synth`: write synthetic Chatbot Arena rows as a Kaggle train.csv.

The rows follow the public statistics of the real file (turns, lengths,
labels) and carry its quirks (null and empty responses, identical answers,
repeated prompts, ragged turn lists, lone surrogates, special-token strings).
The label follows what the text shows: a refusal loses to an answer, a
truncated or off-topic answer to a complete one, equal answers tie, with a
little noise (`--no-preferences`: the earlier rows, whose label barely depends
on the text). Same --rows, --seed and --preferences, same bytes."""

from __future__ import annotations

import argparse
import sys
import time

from ..files import check_file_output
from ..synth import write_csv
from ._args import HelpFormatter, Switch, int_at_least
from ._terminal import printable

_non_negative = int_at_least(0)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write synthetic Kaggle-format arena rows to a CSV file",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--rows", type=_non_negative, default=1000, help="rows to write")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--preferences",
        action=Switch,
        default=True,
        help="labels that follow the text (docs/synth.md); --no-preferences: the earlier rows",
    )
    p.add_argument("--out", required=True, help="output CSV path (written atomically)")
    p.add_argument("--overwrite", action=Switch, help="replace an existing --out file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_file_output(args.out, overwrite=args.overwrite)
    start = time.perf_counter()
    try:
        count = write_csv(args.out, args.rows, seed=args.seed, preferences=args.preferences)
    except OSError as exc:
        message = f"arena-fast synth: error: cannot write {args.out}: {exc}"
        print(printable(message), file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    message = f"arena-fast synth: wrote {count} rows (seed {args.seed}) to {args.out}"
    message += f" in {seconds:.2f} s"
    print(printable(message), file=sys.stderr)
    return 0
