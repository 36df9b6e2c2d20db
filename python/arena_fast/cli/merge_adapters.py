"""`arena-fast merge-adapters`: the runs of k folds (same architecture, seed
and data encoding) averaged key by key into one run: the LoRA A and B
matrices separately (not their product; the 1st place's recipe) and the
heads. `--merge` folds the averaged adapter into the base weights and
stores the result as a run without LoRA. The output is a run directory that
`arena-fast predict` reads; `merged.json` in it names the sources, and its
`bundle.json` the rows they trained on (`trained_on`: the sources' held-out
folds; a merge of runs of different folds has no held-out row, so
`predict` scores every row of the dataset and says that they were trained
on)."""

from __future__ import annotations

import argparse
import sys

from ..runs import describe_training
from ._args import HelpFormatter, Switch
from ._terminal import printable


def add_parser(sub) -> None:
    p = sub.add_parser(
        "merge-adapters",
        help="average the LoRA adapters and heads of several runs into one run",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    # Not dest="run": cli.main calls args.run.
    p.add_argument(
        "runs", nargs="+", metavar="RUN", help="run directories written by `arena-fast train`"
    )
    p.add_argument("--out", required=True, help="the merged run directory")
    p.add_argument(
        "--merge",
        action=Switch,
        help="fold the averaged adapter into the base weights (a run with lora_r 0)",
    )
    p.add_argument(
        "--weights",
        nargs="+",
        type=float,
        metavar="W",
        help="one weight per run, normalised to sum 1 (default: equal)",
    )
    p.add_argument(
        "--overwrite",
        action=Switch,
        help="replace an existing --out that is an earlier merge (anything else is refused)",
    )
    p.add_argument(
        "--base-model",
        metavar="PATH",
        help="the folder of the runs' base model where it is now (default: the path the runs "
        "recorded); checked to be the same model; --merge builds the model from it",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The torch layer: imported when the command runs, not by `arena-fast --help`.
    from ..merge import merge_runs

    result = merge_runs(
        args.runs,
        args.out,
        merge_into_base=args.merge,
        weights=args.weights,
        overwrite=args.overwrite,
        base_model=args.base_model,
    )
    shares = ", ".join(f"{w:.3g}" for w in result["weights"])
    kind = (
        f"merged into the base weights ({result['decoder_tensors']} decoder tensors)"
        if result["merged_into_base"]
        else f"{result['decoder_tensors']} decoder tensors"
        + (f", LoRA r={result['lora_r']}" if result["lora_r"] else ", no LoRA")
    )
    trained = describe_training(result["bundle"].get("trained_on"))
    print(
        printable(
            f"arena-fast merge-adapters: {result['runs']} runs averaged (weights {shares}; "
            f"{kind}; {result['head_tensors']} head tensors) -> {result['out']}; "
            f"trained on {trained}"
        ),
        file=sys.stderr,
    )
    return 0
