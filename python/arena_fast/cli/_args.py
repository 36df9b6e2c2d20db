"""Argument types shared by the sub-commands."""

from __future__ import annotations

import argparse
from typing import Callable

from ..checks import check_threads
from ..errors import ConfigError


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type`: an integer of at least `minimum`, else a usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


def thread_count(text: str) -> int:
    """An argparse `type` for --threads: an int in [1, MAX_THREADS] (the one
    check, `arena_fast.encoder.check_threads`), else a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    try:
        return check_threads(value, "the thread count")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


thread_count.__name__ = "thread count"
