"""`arena-fast inspect DIR`: what a built dataset holds. Without --row, the
build summary; with --row N, that row decoded turn by turn, special tokens
and cut markers made visible; --plot writes the token length distribution
(tokens per row before and after truncation) as a PNG.

Everything shown comes from the dataset (ids, model names, texts, the
manifest) and is printed through `_terminal.printable`: control characters
and bidi overrides appear as escapes (`\\x1b`, `\\u202e`), never reach the
terminal; a turn keeps its line breaks and tabs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow.parquet as pq

from ..dataset import read_manifest, read_row
from ..dataset.config import SIDE_B, encoder_layout, pair_suffix
from ..encoder import Template
from ..errors import ConfigError
from ..files import check_file_output, replacing
from ..labels import label_space
from ..outputs import TOKENIZER
from ..row_view import render_row
from ..tokenizer import Tokenizer
from ._args import HelpFormatter, Switch
from ._terminal import printable
from .build_dataset import summary


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="summarise a dataset directory, show a decoded row, plot lengths",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("path", metavar="DIR", help="a directory written by build-dataset")
    p.add_argument("--row", type=int, help="show this row (0-based, in shard order)")
    p.add_argument(
        "--swapped",
        action=Switch,
        help="show the row's A/B swap (a dataset built with --swap; a separate-layout "
        "dataset's row shows its two sequences, prompt + A and prompt + B, without it)",
    )
    p.add_argument("--plot", metavar="PNG", help="write the length distribution to this file")
    p.add_argument("--overwrite", action=Switch, help="replace an existing --plot file")
    p.set_defaults(run=run)


def _read_row(path, manifest: dict, index: int, swapped: bool) -> dict:
    total = manifest["counts"]["rows"]
    if not 0 <= index < total:
        raise ConfigError(f"--row must be in [0, {total}), got {index}")
    separate = pair_suffix(manifest) == SIDE_B
    if swapped and separate:
        raise ConfigError(
            "--swapped: this dataset is of the separate layout, whose rows have no A/B swap; "
            "--row shows both of a row's sequences (prompt + A, prompt + B)"
        )
    row = read_row(path, manifest, index)
    column = "input_ids_swapped" if swapped else "input_ids"
    if column not in row:
        raise ConfigError("this dataset was built without --swap")
    row["ids"] = np.frombuffer(row[column], dtype="<i4").tolist()
    if separate:
        row["ids_b"] = np.frombuffer(row["input_ids" + SIDE_B], dtype="<i4").tolist()
    return row


def swapped_labels(labels, space) -> Optional[list]:
    """A row's labels under the A/B swap of its dataset's label space
    (`space`: the manifest's; None for a manifest from before label
    spaces, `abt`); None (unlabelled) stays None."""
    if labels is None:
        return None
    return label_space(space).swap_labels(np.array([labels], dtype=np.float64))[0].tolist()


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    manifest = read_manifest(path)
    if args.plot:  # before anything is printed: a refused --plot costs nothing
        check_file_output(args.plot, overwrite=args.overwrite, inputs=[path], inputs_name="dataset")
    if args.row is None:
        print(printable(summary(manifest, str(path)), layout=True))
        enc = manifest["encoder"]
        if enc.get("chat_template") is not None:
            shown = f"the tokenizer's chat template ({len(enc['chat_template']):,} characters)"
        else:
            shown = f"template {enc['template']['first_header']!r}..."
        _print_line(
            f"  encoder: {shown} layout {encoder_layout(enc)} strategy "
            f"{enc['strategy']} max_length {enc['max_length']}; tokenizer sha256 "
            f"{manifest['tokenizer']['sha256'][:16]}"
        )
        tok = Tokenizer.from_file(path / TOKENIZER)
        _print_line(f"  tokenizer: {tok.fast_path} ({tok.fast_path_reason})")
    else:
        row = _read_row(path, manifest, args.row, args.swapped)
        tok = Tokenizer.from_file(path / TOKENIZER)
        template = Template(**manifest["encoder"]["template"])
        labels, model_a, model_b = row["labels"], row["model_a"], row["model_b"]
        if args.swapped:  # the header of the row shown: B's answer first
            labels = swapped_labels(labels, manifest.get("label_space"))
            model_a, model_b = model_b, model_a
        _print_line(
            f"row {args.row}: id {row['id']}  source {row['source']}  fold {row['fold']}  "
            f"labels {labels}  models {model_a} vs {model_b}"
        )
        if "ids_b" in row:  # the separate layout: the row's two sequences
            for side, suffix in (("A", ""), ("B", SIDE_B)):
                _print_line(f"----- {side} side: the prompt with answer {side} -----")
                _print_sequence(row, suffix, "")
                shown = dict(row, ids=row["ids" + suffix], turns_kept=row["turns_kept" + suffix])
                print(printable(render_row(shown, tok, template, template.marker), layout=True))
        else:
            suffix = "_swapped" if args.swapped else ""
            _print_sequence(row, suffix, "  (A/B swapped)" if args.swapped else "")
            print(printable(render_row(row, tok, template, template.marker), layout=True))
    if args.plot:
        plot_lengths(path, manifest, args.plot)
        print(printable(f"wrote {args.plot}"), file=sys.stderr)
    return 0


def _print_sequence(row: dict, suffix: str, note: str) -> None:
    """The counts of one of a row's sequences (`suffix` that of its columns)."""
    _print_line(
        f"  tokens {row['length' + suffix]}  turns {row['turns_kept' + suffix]}/"
        f"{row['turns']} kept  truncated {row['truncated' + suffix]}  "
        f"repairs {row['repairs']}  flags {row['flags']}{note}"
    )


def _print_line(text: str) -> None:
    """One line of fields: a newline or tab inside an id or a model name is
    escaped too."""
    print(printable(text))


def plot_lengths(path, manifest: dict, out: str) -> None:
    """Histograms of tokens per sequence (per row; per side of a row in the
    separate layout) as encoded (after truncation, budget
    marked) and as they would be with nothing cut (`full_length`). matplotlib
    (the `[plot]` extra) is imported here, by --plot only: every command
    imports this module."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("--plot needs matplotlib: pip install 'arena-fast[plot]'") from exc
    lengths, fulls, truncated = [], [], []
    # A separate-layout row is two sequences: both sides are counted.
    suffixes = ("", SIDE_B) if pair_suffix(manifest) == SIDE_B else ("",)
    names = [f"{c}{s}" for s in suffixes for c in ("length", "full_length", "truncated")]
    for shard in manifest["shards"]:
        t = pq.read_table(path / shard["file"], columns=names)
        for s in suffixes:
            lengths.append(t.column("length" + s).to_numpy())
            fulls.append(t.column("full_length" + s).to_numpy())
            truncated.append(t.column("truncated" + s).to_numpy())
    length = np.concatenate(lengths) if lengths else np.zeros(0)
    full = np.concatenate(fulls) if fulls else np.zeros(0)
    trunc = np.concatenate(truncated) if truncated else np.zeros(0, bool)
    max_length = manifest["encoder"]["max_length"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.hist(length, bins=60, color="#4477aa")
    ax1.axvline(max_length, color="#cc3311", linestyle="--", label=f"max_length {max_length}")
    ax1.set_title(f"tokens per row after truncation ({trunc.mean():.1%} truncated)")
    ax1.set_xlabel("tokens")
    ax1.legend()
    top = max(int(full.max()) if len(full) else 1, max_length)
    bins = np.linspace(0, top, 80)
    ax2.hist(full, bins=bins, color="#228833", alpha=0.6, label="before truncation")
    ax2.hist(length, bins=bins, color="#4477aa", alpha=0.6, label="after truncation")
    ax2.axvline(max_length, color="#cc3311", linestyle="--")
    ax2.set_yscale("log")
    ax2.set_title("tokens per row, before and after truncation")
    ax2.set_xlabel("tokens")
    ax2.legend()
    fig.tight_layout()
    with replacing(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
