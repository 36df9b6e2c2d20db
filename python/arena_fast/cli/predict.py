"""`arena-fast predict`: a trained run's probabilities on a built dataset
(build it from test.csv with the run's tokenizer and settings, `--swap` for
swap TTA), written as a Kaggle submission CSV (id, winner_model_a,
winner_model_b, winner_tie)."""

from __future__ import annotations

import argparse
import sys

from ._args import int_at_least


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict a built dataset with a trained run and write a submission CSV",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--run", dest="run_dir", required=True, help="a run directory written by `arena-fast train`"
    )
    p.add_argument("--data", required=True, help="a dataset directory (build-dataset)")
    p.add_argument("--out", default="submission.csv", help="the submission CSV to write")
    p.add_argument("--no-tta", action="store_true", help="the original order only")
    p.add_argument(
        "--postprocess",
        action="store_true",
        help="one answer empty: the other side wins (0.88); identical answers: tie (0.88)",
    )
    p.add_argument("--max-tokens", type=int_at_least(1), default=8192, help="tokens per batch")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..predict import predict, write_submission

    result = predict(
        args.run_dir,
        args.data,
        tta=not args.no_tta,
        max_tokens=args.max_tokens,
        postprocess=args.postprocess,
    )
    write_submission(args.out, result["ids"], result["probs"])
    tta = "with swap TTA" if "probs_swapped" in result and not args.no_tta else "no TTA"
    print(f"arena-fast predict: {len(result['ids'])} rows ({tta}) -> {args.out}", file=sys.stderr)
    return 0
