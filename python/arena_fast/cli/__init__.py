"""The `arena-fast` command. One module per sub-command; heavy imports stay
inside the commands that need them so `arena-fast --help` is instant."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from . import build_dataset, compare, demo, inspect, merge_adapters, predict, report, synth, train

COMMANDS = (demo, synth, build_dataset, inspect, train, predict, compare, report, merge_adapters)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="arena-fast",
        description="Fast, exact data pipelines for pairwise preference (Chatbot Arena) models.",
    )
    parser.add_argument("--version", action="version", version=f"arena-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..errors import ArenaFastError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except ArenaFastError as exc:
        print(f"arena-fast {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"arena-fast {args.command}: error: {exc}", file=sys.stderr)
        return 1
