"""The `arena-fast` command. One module per sub-command; heavy imports stay
inside the commands that need them so `arena-fast --help` is instant.

How a command ends (`main`'s return value, the process exit status):

- 0: done. 2: a usage error (argparse's message, escaped).
- 1: an error of the input, the options or the system (`ArenaFastError`,
  including `InternalError`, whose message asks for a report; `OSError`;
  `MemoryError`): one line `arena-fast CMD: error: ...` on stderr, no
  traceback. A message that names a Python setting (`pass overwrite=True`)
  names the command's flag instead (`pass --overwrite`; `_args.flag_words`).
- 130: interrupted (SIGINT, Ctrl-C); 143: terminated (SIGTERM). Both raise an
  exception in the main thread, so every `finally` and `except BaseException`
  runs its cleanup (a build's `.OUT.building-*` work directory is removed),
  then one line `arena-fast CMD: interrupted` / `terminated`. SIGTERM raises
  `Terminated`, a `KeyboardInterrupt` subclass, so code that stops cleanly on
  Ctrl-C stops cleanly on SIGTERM too.
  A second SIGINT or SIGTERM during that cleanup ends the process at once
  (the next build clears what it leaves).
- 141: stdout closed early (`arena-fast inspect ... | head`): quietly.
- 70 (EX_SOFTWARE): any other exception is a bug in arena-fast, not bad
  input: its traceback, then `arena-fast CMD: internal error: ...`, so it
  can be reported. (Bad input that ends here is a defect to fix by raising an
  `ArenaFastError` where the input is read.)

Everything printed here is passed through `_terminal.printable`: error
messages quote ids, paths and cells, and a terminal must not obey them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import NoReturn, Optional

from .. import __version__
from ..errors import ArenaFastError
from . import (
    build_dataset,
    compare,
    demo,
    export,
    inspect,
    merge_adapters,
    predict,
    report,
    serve,
    synth,
    train,
)
from ._args import flag_words, option_strings
from ._terminal import printable

COMMANDS = (
    demo,
    synth,
    build_dataset,
    inspect,
    train,
    predict,
    compare,
    report,
    merge_adapters,
    export,
    serve,
)

EXIT_ERROR, EXIT_USAGE, EXIT_BUG = 1, 2, 70
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 130, 141, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by `arena-fast`'s handler so that
    cleanup runs (a `KeyboardInterrupt`: stopped where Ctrl-C is)."""


class _Parser(argparse.ArgumentParser):
    """argparse quotes arguments in its errors ("unrecognized arguments:
    ..."): escaped like every other message."""

    def error(self, message: str) -> NoReturn:
        super().error(printable(message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="arena-fast",
        description="Fast, exact data pipelines for pairwise preference (Chatbot Arena) models.",
    )
    parser.add_argument("--version", action="version", version=f"arena-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM `Terminated` in the main
    thread, once; a second signal while that unwinds exits at once. Only in
    the main thread (where Python runs handlers); the old handlers come back
    after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    exits = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}
    raised = []

    def handle(signum, frame):
        if raised:
            os._exit(exits[signum])
        raised.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    old = {signum: signal.signal(signum, handle) for signum in exits}
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def _say(line: str) -> None:
    print(printable(line), file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's
    last flush does not report it again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (redirected in-process)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Optional[Sequence[str]] = None) -> int:
    name = "arena-fast"
    options: frozenset = frozenset()
    with _signals_raise():
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            if not getattr(args, "run", None):
                parser.print_help(sys.stderr)
                return EXIT_USAGE
            name = f"arena-fast {args.command}"
            options = option_strings(parser, args.command)
            return int(args.run(args) or 0)
        except Terminated:
            _say(f"{name}: terminated")
            return EXIT_TERMINATED
        except KeyboardInterrupt:
            _say(f"{name}: interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        except (ArenaFastError, OSError) as exc:
            _say(f"{name}: error: {flag_words(str(exc), options)}")
            return EXIT_ERROR
        except MemoryError:
            _say(f"{name}: error: out of memory")
            return EXIT_ERROR
        except Exception as exc:
            print(printable(traceback.format_exc(), layout=True), file=sys.stderr, end="")
            _say(
                f"{name}: internal error: {type(exc).__name__}: {exc} (a bug in arena-fast; "
                "please report it with the traceback above)"
            )
            return EXIT_BUG
