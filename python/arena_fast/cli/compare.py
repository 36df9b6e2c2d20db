"""`arena-fast compare`: score pairs with a trained run, in both A/B orders.

    arena-fast compare --run RUN "prompt" "answer A" "answer B"
    arena-fast compare --run RUN < pairs.jsonl

With three texts, one pair; without, JSON on standard input: one object per
line (JSON lines) or one JSON array, each with `prompt`, `response_a`,
`response_b` (a string, or a list of turns) and an optional `id`. One JSON
line per pair goes to standard output: the swap-averaged probabilities
(`winner_model_a`, `winner_model_b`, `winner_tie`), the `verdict`, each
single pass (`original`, `swapped` mapped back), `flip` (the two passes
disagree), and what the run's token budget cut (`tokens`, `max_length`,
`truncated`, `turns`, `turns_kept`, `full_length`).

A reward run scores each answer once (prompt + A, prompt + B): its lines
hold `reward_a` and `reward_b`, the probabilities its tie parameter derives
from them, the `verdict` and the budget's keys of the two sequences (no
single passes: a reward model has no swap TTA)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ConfigError, InputError
from ._args import HelpFormatter, int_at_least


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="score a prompt and two answers with a trained run (both orders, averaged)",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--run",
        "--model",
        dest="run_dir",
        metavar="RUN",
        required=True,
        help="a run directory written by `arena-fast train` (as in predict; --model is the "
        "older spelling)",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="prompt, answer A, answer B")
    p.add_argument("--max-tokens", type=int_at_least(1), default=8192, help="tokens per batch")
    p.add_argument(
        "--base-model",
        metavar="PATH",
        help="the folder of the run's base model where it is now (default: the path the run "
        "recorded, relative to the run, then as given); checked to be the same model",
    )
    p.set_defaults(run=run)


def read_pairs(text: str) -> list:
    """Pairs from JSON text: an array of objects, or one object per line."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        try:
            pairs = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"standard input: not a JSON array: {exc}") from None
        return list(pairs)
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            pairs.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            raise InputError(f"standard input, line {number}: not JSON: {exc}") from None
    return pairs


def run(args: argparse.Namespace) -> int:
    # The torch layer: imported when the command runs, not by `arena-fast --help`.
    from ..predict import Judge

    if args.texts and len(args.texts) != 3:
        raise ConfigError(f"give three texts (prompt, answer A, answer B), got {len(args.texts)}")
    if args.texts:
        pairs = [dict(zip(("prompt", "response_a", "response_b"), args.texts))]
    else:
        if sys.stdin.isatty():
            print("arena-fast compare: reading JSON pairs from standard input", file=sys.stderr)
        pairs = read_pairs(sys.stdin.read())
    judge = Judge(args.run_dir, max_tokens=args.max_tokens, base_model=args.base_model)
    for record in judge.compare_many(pairs):
        sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    return 0
