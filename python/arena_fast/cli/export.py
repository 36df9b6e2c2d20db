"""`arena-fast export`: a trained reward run (`train --objective reward`)
written as a Hugging Face folder that `AutoModelForSequenceClassification`
and `AutoTokenizer.from_pretrained` load as they are (TRL's PPO / GRPO
trainers, reward-serving code): `num_labels` 1, the LoRA adapter merged into
the weights, the head as `score.weight`, the run's tokenizer with its chat
template and a pad token no sequence ends with (docs/reward.md, "Exporting a
reward model"). A head transformers cannot hold exactly (a bias, the mlp
head) and classifier runs are refused rather than exported to score
differently."""

from __future__ import annotations

import argparse
import sys

from ._args import HelpFormatter, Switch
from ._terminal import printable


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a reward run as a Hugging Face AutoModelForSequenceClassification folder",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    # Not dest="run": cli.main calls args.run.
    p.add_argument(
        "source", metavar="RUN", help="a reward run directory written by `arena-fast train`"
    )
    p.add_argument("--out", required=True, help="the folder to write")
    p.add_argument(
        "--overwrite",
        action=Switch,
        help="replace an existing --out that is an earlier export (anything else is refused)",
    )
    p.add_argument(
        "--base-model",
        metavar="PATH",
        help="the folder of the run's base model where it is now (default: the path the run "
        "recorded); checked to be the same model",
    )
    p.add_argument(
        "--pad-token",
        metavar="TOKEN",
        help="the pad token (default: the tokenizer's own when no sequence ends with it, else "
        "a special pad / reserved / unused token); must be a special token",
    )
    p.add_argument(
        "--dtype",
        metavar="DTYPE",
        help="the weights' dtype: float32, bfloat16 or float16 (default: the dtype the run "
        "loads in: float32 on the CPU)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The torch layer: imported when the command runs, not by `arena-fast --help`.
    from ..export import export_reward_model

    result = export_reward_model(
        args.source,
        args.out,
        overwrite=args.overwrite,
        base_model=args.base_model,
        pad_token=args.pad_token,
        dtype=args.dtype,
    )
    merged = f"LoRA r={result['lora_r']} merged" if result["lora_r"] else "no LoRA"
    print(
        printable(
            f"arena-fast export: {result['architecture']} (num_labels 1, {merged}, "
            f"{result['dtype']}; pad {result['pad_token']!r} id {result['pad_token_id']}"
            f"{', chat template' if result['chat_template'] else ''}) -> {result['out']}"
        ),
        file=sys.stderr,
    )
    return 0
