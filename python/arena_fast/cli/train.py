"""`arena-fast train`: a preference classifier (or, with `--objective
reward`, a reward model: docs/reward.md) on a built dataset. Every
setting of `af.train.TrainConfig` is an option (its help text and range are
the field's); `--config run.yaml` loads them from YAML first (a mapping of
settings, at most 1 MiB, no anchors or aliases), and options given on the
command line override the file. Every setting is checked (type, range,
finite) before the dataset is read: a bad one is an error naming it."""

from __future__ import annotations

import argparse
import dataclasses
import typing

# The settings, not the trainer: `arena-fast --help` builds this parser and
# must not import torch (`..train` is imported when the command runs).
from ..train_config import TrainConfig, read_config_file
from ._args import HelpFormatter, Switch, boolean, thread_count
from ._progress import Progress, train_bar


def _base(field: dataclasses.Field) -> tuple[type, bool]:
    """The type of a TrainConfig field without Optional, and whether it is Optional."""
    hint = typing.get_type_hints(TrainConfig)[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return (args[0] if args else hint), type(None) in typing.get_args(hint)


def _kind(field: dataclasses.Field) -> typing.Callable[[str], typing.Any]:
    """The argparse type of a TrainConfig field (Optional[X] accepts "none";
    a list of names is comma-separated, "none" naming none)."""
    base, optional = _base(field)
    listed = typing.get_origin(typing.get_type_hints(TrainConfig)[field.name]) is tuple

    def parse(text: str) -> typing.Any:
        if listed:
            return tuple(n.strip() for n in text.split(",") if n.strip() not in ("", "none"))
        if optional and text.lower() in ("none", "null", ""):
            return None
        if base is bool:
            return boolean(text)
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {base.__name__}: {text!r}") from None

    return parse


def _shown(default: typing.Any) -> str:
    return "none" if default == () else repr(default)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a preference classifier or a reward model on a built dataset",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--config", help="a YAML file of TrainConfig settings")
    p.add_argument("--quiet", action=Switch, help="no log lines, no progress bar")
    p.add_argument(
        "--torch-threads",
        type=thread_count,
        default=None,
        help="torch threads (default: torch's, one per core); 1 for the tiny models on a "
        "busy machine, where more threads can cost several times the time",
    )
    for field in dataclasses.fields(TrainConfig):
        bounds = field.metadata.get("bounds")
        limits = f"{bounds}; " if bounds is not None else ""
        # A bool setting is a switch (--resume / --no-resume); --resume true
        # is accepted too, as it always was.
        kind = dict(action=Switch, value=_kind(field)) if _base(field)[0] is bool else {}
        p.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=None if kind else _kind(field),
            default=argparse.SUPPRESS,
            **kind,
            help=f"{field.metadata.get('help', '')} ({limits}default: {_shown(field.default)})",
        )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    values: dict = read_config_file(args.config) if args.config else {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values.update({k: v for k, v in vars(args).items() if k in names})
    config = TrainConfig.from_dict(values)
    # torch (seconds, and most of the process's memory) only once the
    # settings are known to be good: a bad file or option fails without it.
    import torch

    from ..train import train

    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    progress = Progress(quiet=args.quiet, prefix="arena-fast train", unit="steps")
    try:
        result = train(config, log=lambda r: progress.write(_line(r)), progress=train_bar(progress))
    finally:
        progress.done()
    if result and not args.quiet:
        print(_final(result, config.fold))
    return 0


def _final(result: dict, fold) -> str:
    """The kept evaluation, naming the rows it covers (stdout's one line)."""
    scores = ", ".join(
        f"{name.replace('_', ' ')} {result[name]:.4f}"
        for name in ("log_loss", "accuracy", "tta_log_loss", "pairwise_accuracy")
        if name in result
    )
    # A reward run's rows are its pairs (each two rows of the dataset).
    unit = "pairs" if "pairwise_accuracy" in result else "rows"
    where = f"held-out fold {fold}"
    if "rows" in result:
        where += f": {result['rows']} {unit}"
    return f"final (step {result.get('step')}, {where}): {scores}"


def _line(record: dict) -> str:
    """A log record (`train`'s `log=`) as a line of text."""
    if record.get("eval"):
        text = (
            f"epoch {record['epoch']}, step {record['step']}: log loss "
            f"{record['log_loss']:.4f}, accuracy {record['accuracy']:.3f}"
        )
        if "tta_log_loss" in record:
            text += f", with swap TTA {record['tta_log_loss']:.4f}"
        if "pairwise_accuracy" in record:
            text += f", pairwise accuracy {record['pairwise_accuracy']:.3f}"
        if record.get("best"):
            text += " (best so far)"
    elif "stopped" in record:
        text = f"stopped at step {record['step']} ({record['stopped'].replace('_', ' ')})"
    elif "saved" in record:
        kept = record["kept"]
        step = kept.get("step", record["step"])
        text = f"saved the weights of step {step} ({record['saved']}"
        text += f": log loss {kept['log_loss']:.4f})" if "log_loss" in kept else ")"
    else:
        text = f"step {record['step']}: loss {record['loss']:.4f}, lr {record['lr']:.2e}"
    return f"{text} ({record['seconds']:.1f} s)"
