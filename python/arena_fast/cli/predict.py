"""`arena-fast predict`: a trained run's probabilities on a built dataset
(build it from test.csv with the run's tokenizer and settings, `--swap` for
swap TTA).

`--out` ending in .csv writes a submission of `--format`: `kaggle` (id,
winner_model_a, winner_model_b, winner_tie: label space abt) or `wsdm` (id,
winner = model_a / model_b: label space ab). A run of another label space
than the format's is refused unless `--map-labels` asks for the mapping
(renormalising A and B for wsdm; both_bad merged into tie for kaggle).
Ending in .parquet it writes the rows in the
canonical schema with `labels` = the probabilities and `teacher_logits` = the
logits, which `build-dataset` reads back as pseudo-labels or for
distillation (the rows' text is re-read from the dataset's inputs).
`--predictions` writes the per-row table that `arena-fast report` reads.
When the rows have labels, the diagnostics are printed: log loss, accuracy,
position flip rate, calibration (ECE), log loss by turns and by truncation.

A reward run (`train --objective reward`, on data built with `--layout
separate` or `--template chat`) gives one prediction per pair: the
probabilities its tie parameter derives from the two answers' rewards, and
the rewards themselves as the `--predictions` table's `reward_a` /
`reward_b` columns (the submission keeps its format). It has no swap TTA
(a reward model is symmetric by construction): `--tta` is refused for it.

`--split` picks the rows: on the dataset the run trained on, `valid` (its
held-out fold, the default) or `train` (the folds it trained on) or `all`;
other data (a test set) is always scored whole. Every printed score names
its rows, and rows the run trained on are flagged (these scores are not
held-out)."""

from __future__ import annotations

import argparse
import os
import sys

from ..diagnostics import describe_rows, format_summary, summarize, write_predictions
from ..errors import ConfigError
from ..files import check_file_output
from ..reward_tables import format_reward_summary, reward_summary
from ..runs import recorded_space
from ..submission import FORMATS, check_format
from ._args import HelpFormatter, Switch, int_at_least
from ._progress import Progress, rows_bar
from ._terminal import printable


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict a built dataset with a trained run (submission CSV or pseudo-label parquet)",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--run", dest="run_dir", required=True, help="a run directory written by `arena-fast train`"
    )
    p.add_argument("--data", required=True, help="a dataset directory (build-dataset)")
    p.add_argument(
        "--out",
        default="submission.csv",
        help="submission .csv, or canonical .parquet (probabilities and logits as labels)",
    )
    p.add_argument(
        "--format",
        choices=tuple(FORMATS),
        default="kaggle",
        help="the .csv submission: kaggle (three probabilities, label space abt) or wsdm "
        "(id,winner with model_a / model_b, label space ab)",
    )
    p.add_argument(
        "--map-labels",
        action=Switch,
        help="map the run's label space to the --format's explicitly (abt/abtx -> ab: "
        "renormalise A and B; abtx -> abt: both_bad merged into tie); without it a run of "
        "another space is refused",
    )
    p.add_argument("--predictions", help="also write the per-row prediction table (.parquet)")
    p.add_argument(
        "--overwrite", action=Switch, help="replace an existing --out or --predictions file"
    )
    p.add_argument(
        "--inputs",
        nargs="+",
        help="the dataset's input files where they are now (for a .parquet --out), "
        "in the manifest's order",
    )
    p.add_argument(
        "--tta",
        action=Switch,
        default=None,
        help="average the two A/B orders (swap TTA, the default when the data has both); "
        "--no-tta: the original order only (needed for data built without --swap when the "
        "run was trained with it); refused for a reward run, which has no swap TTA",
    )
    p.add_argument(
        "--postprocess",
        action=Switch,
        help="one answer empty: the other side wins (0.88); identical answers: tie (0.88)",
    )
    p.add_argument(
        "--split",
        choices=("valid", "train", "all"),
        help="which rows of the run's own dataset: valid (its held-out fold), train (the folds "
        "it trained on) or all (default: valid on the run's dataset when it has a held-out "
        "fold, else all; other data is always scored whole)",
    )
    p.add_argument("--max-tokens", type=int_at_least(1), default=8192, help="tokens per batch")
    p.add_argument(
        "--base-model",
        metavar="PATH",
        help="the folder of the run's base model where it is now (default: the path the run "
        "recorded, relative to the run, then as given); checked to be the same model",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The torch layer: imported when the command runs, not by `arena-fast --help`.
    from ..predict import predict, prediction_table, source_rows, write_canonical, write_submission

    kind = args.out.lower().rsplit(".", 1)[-1]
    if kind not in ("csv", "parquet"):
        raise ConfigError(f"--out must end in .csv or .parquet, got {args.out!r}")
    if args.predictions and os.path.abspath(args.predictions) == os.path.abspath(args.out):
        raise ConfigError("--predictions and --out name the same file; give two paths")
    for path in (args.out, args.predictions):  # before the model loads: a refusal costs nothing
        if path:
            check_file_output(
                path,
                overwrite=args.overwrite,
                inputs=[args.run_dir, args.data, *(args.inputs or ())],
            )
    space = recorded_space(args.run_dir) if kind == "csv" else None
    if space is not None:  # a submission the run cannot give is refused before the model loads
        check_format(space.name, args.format, args.map_labels)
    rows = source_rows(args.data, args.inputs) if kind == "parquet" else None
    progress = Progress(prefix="arena-fast predict")  # the batches: a bar, ETA
    try:
        result = predict(
            args.run_dir,
            args.data,
            tta=args.tta,
            max_tokens=args.max_tokens,
            postprocess=args.postprocess,
            base_model=args.base_model,
            split=args.split,
            progress=rows_bar(progress),
        )
    finally:
        progress.done()
    for note in result["notes"]:
        print(printable(f"arena-fast predict: note: {note}"), file=sys.stderr)
    if kind == "csv":
        write_submission(
            args.out,
            result["ids"],
            result["probs"],
            result["label_space"],
            format=args.format,
            map_labels=args.map_labels,
        )
    else:
        if len(rows) != len(result["ids"]):  # the split's rows, in the dataset's order
            rows = rows.filter(rows["id"].is_in(result["ids"]))
        if rows["id"].to_list() != [str(i) for i in result["ids"]]:
            raise ConfigError(f"{args.data}: its inputs' rows are not the rows predicted")
        write_canonical(args.out, rows, result["probs"], result.get("logits"))
    if "rewards" in result:
        tta = (
            f"reward model, {result['tie_model']} ties: P(tie) of equal rewards "
            f"{result['tie_prob_of_equal_rewards']:.4f}"
        )
    else:
        tta = "with swap TTA" if "probs_swapped" in result and args.tta is not False else "no TTA"
    frame = prediction_table(result)
    print(
        printable(
            f"arena-fast predict: {describe_rows(frame, result['rows'])} ({tta}) -> {args.out}"
        ),
        file=sys.stderr,
    )
    if args.predictions:
        write_predictions(args.predictions, frame, result["rows"])
        print(
            printable(f"arena-fast predict: per-row predictions -> {args.predictions}"),
            file=sys.stderr,
        )
    summary = summarize(frame, rows=result["rows"])
    if summary["labelled"] or "flip_rate" in summary:
        print(format_summary(summary), file=sys.stderr)
    rewards = reward_summary(frame)
    if rewards is not None:
        print(format_reward_summary(rewards, result), file=sys.stderr)
    return 0
