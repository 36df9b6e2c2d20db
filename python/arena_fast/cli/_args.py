"""What the sub-commands share: argument types, the help formatter, the
boolean flag (`--x` / `--no-x`) and the wording of errors for the command
line (`flag_words`)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, Callable, Optional

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


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def boolean(text: str) -> bool:
    """An argparse `type`: true/false, yes/no, on/off or 1/0, else a usage error."""
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


class Switch(argparse.Action):
    """A boolean flag, the one spelling of every command: `--x` sets it,
    `--no-x` clears it. With `value=` (a parser such as `boolean`), `--x
    VALUE` is accepted too, for scripts written when `train` took `--resume
    true`: `--x` alone still means true."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        default: Any = False,
        help: Optional[str] = None,
        value: Optional[Callable[[str], Any]] = None,
        **kwargs: Any,
    ) -> None:
        strings = []
        for option in option_strings:
            strings.append(option)
            if option.startswith("--"):
                strings.append("--no-" + option[2:])
        self.value = value
        super().__init__(
            strings,
            dest,
            nargs="?" if value else 0,
            default=default,
            help=help,
            metavar="BOOL" if value else None,
            **kwargs,
        )

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string and option_string.startswith("--no-"):
            if values not in (None, []):  # nargs 0 gives []
                raise argparse.ArgumentError(self, f"{option_string} takes no value")
            setattr(namespace, self.dest, False)
        elif values is None or values == []:
            setattr(namespace, self.dest, True)
        else:
            setattr(namespace, self.dest, self.value(values))

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every command's: the description as written, and after an option's
    help its default, unless the help already says it or there is none to
    say (None, an empty list). A switch's default is on or off."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "(default" in text or not action.option_strings:
            return text
        if default is None or default is argparse.SUPPRESS or default == []:
            return text
        if isinstance(action, Switch) and isinstance(default, bool):
            return f"{text} (default: {'on' if default else 'off'})"
        return text + " (default: %(default)s)"

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, Switch) and action.value:
            on, off = action.option_strings
            return f"{on} [{action.metavar}], {off}"
        return super()._format_action_invocation(action)


# A library message names the Python setting (`pass overwrite=True`); through
# the command line the same error names the flag. The one translation.
_SETTING = re.compile(r"\bpass ([a-z_]+)=(True|False)( \(--[a-z-]+\))?")


def flag_words(message: str, options: Sequence[str]) -> str:
    """`message` with each `pass NAME=True|False` whose flag is among
    `options` (the command's option strings) as `pass --NAME` / `--no-NAME`."""

    def flag(match: re.Match) -> str:
        name = match.group(1).replace("_", "-")
        spelled = f"--{name}" if match.group(2) == "True" else f"--no-{name}"
        return f"pass {spelled}" if spelled in options else match.group(0)

    return _SETTING.sub(flag, message)


def option_strings(parser: argparse.ArgumentParser, command: str) -> frozenset:
    """Every option string of the sub-command `command` of `parser`."""
    for action in parser._actions:  # argparse keeps no public list
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            sub = action.choices[command]
            return frozenset(s for a in sub._actions for s in a.option_strings)
    return frozenset()
