"""`arena-fast build-dataset`: raw arena data -> a training-ready dataset
directory (parquet shards with token ids and folds, manifest.json,
dropped.parquet). With no --input and no --tokenizer it builds the demo
dataset from synthetic rows and the bundled tokenizer."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Optional

from ..dataset import BuildConfig, build_dataset
from ..dataset.config import CHAT_TEMPLATE, LAYOUTS, encoder_layout
from ..encoder import TEMPLATES, Encoder, Template
from ..errors import ConfigError
from ..labels import LABEL_SPACES
from ..runs import build_settings
from ..sources import FORMAT_COLUMNS, FORMATS, parse_input
from ..sources.pairs import parse_mapping
from ..tokenizer import Tokenizer
from ._args import HelpFormatter, Switch, int_at_least, thread_count
from ._progress import Progress, build_bar
from ._terminal import printable

_positive = int_at_least(1)


class _Store(argparse.Action):
    """A value that --like's settings give way to only when typed: records
    its option in `args.given`."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = (*namespace.given, self.dest)


class _Switch(Switch):
    """`Switch`, recording its option in `args.given` like `_Store`."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        namespace.given = (*namespace.given, self.dest)


def add_parser(sub) -> None:
    d = BuildConfig()

    p = sub.add_parser(
        "build-dataset",
        help="read, clean, de-duplicate, fold and encode arena data into a dataset directory",
        description=__doc__,
        epilog=_formats_help(),
        formatter_class=HelpFormatter,
    )
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH[:FORMAT]",
        help="an input file (.csv, .parquet, .json, .jsonl, each also .gz / .zst); FORMAT one "
        "of the formats below (detected from the columns and the first record when left out); "
        "repeat for several",
    )
    io.add_argument(
        "--format",
        default=None,
        metavar="FORMAT",
        help="the format of every --input given without :FORMAT (instead of detecting it)",
    )
    io.add_argument("--out", default="arena-dataset", help="the dataset directory to write")
    io.add_argument(
        "--overwrite",
        action=Switch,
        help="replace an existing --out that is an earlier dataset (anything else is refused)",
    )
    io.add_argument(
        "--demo-rows", type=int, default=d.demo_rows, help="synthetic rows when no --input is given"
    )
    _add_reading(p.add_argument_group("reading"), d)
    _add_encoding(p.add_argument_group("encoding"), d)
    _add_cleaning(p.add_argument_group("cleaning (labelled rows and chat1m pairs)"), d)
    folds = p.add_argument_group("folds")
    folds.add_argument(
        "--folds", type=_positive, default=d.folds, help="K folds, grouped by prompt"
    )
    folds.add_argument("--seed", type=int, default=d.seed, help="seed of folds and A/B coins")
    tune = p.add_argument_group("tuning")
    tune.add_argument("--chunk-rows", type=_positive, default=d.chunk_rows, help="rows per chunk")
    tune.add_argument("--shard-rows", type=_positive, default=d.shard_rows, help="rows per shard")
    tune.add_argument(
        "--compression",
        choices=("zstd", "lz4", "snappy", "none"),
        default=d.compression,
        help="parquet compression of the shards",
    )
    tune.add_argument(
        "--pack-tokens", type=_positive, default=d.pack_tokens, help="pack size for the fill figure"
    )
    p.add_argument("--quiet", action=Switch, help="no progress, no summary")
    p.set_defaults(run=run, given=())


def _add_cleaning(clean, d: BuildConfig) -> None:
    """The cleaning policies, de-duplication and the label space."""
    clean.add_argument(
        "--both-empty",
        choices=("drop", "keep"),
        default=d.both_empty,
        help="rows where both answers are empty",
    )
    clean.add_argument(
        "--one-empty",
        choices=("keep", "relabel", "drop"),
        default=d.one_empty,
        help="rows where one answer is empty; relabel: a win for the side that answered "
        "(4th place)",
    )
    clean.add_argument(
        "--identical",
        choices=("drop", "tie", "keep"),
        default=d.identical,
        help="rows whose answers A and B are the same text; tie: relabelled a tie",
    )
    clean.add_argument(
        "--ragged",
        choices=("keep", "drop"),
        default=d.ragged,
        help="rows whose turn lists differ in length; keep: padded with empty turns",
    )
    clean.add_argument(
        "--repaired",
        choices=("keep", "drop"),
        default=d.repaired,
        help="rows whose text had a null turn or a lone surrogate",
    )
    clean.add_argument(
        "--dedup",
        choices=("prompt", "pair", "none"),
        default=d.dedup,
        help="prompt: drop rows whose prompt is in a higher-priority source, and repeated "
        "(prompt, answers); pair: only the latter",
    )
    _add_label_space(clean)
    clean.add_argument(
        "--priority",
        default=",".join(d.priority),
        help="source priority for de-duplication, highest first",
    )


def _add_label_space(group) -> None:
    group.add_argument(
        "--label-space",
        choices=tuple(LABEL_SPACES),
        default=None,
        help="the dataset's label space: ab (A/B), abt (A/B/tie), abtx (A/B/tie/both_bad); "
        "default: the inputs' (canonical labels of 2, 3 or 4 values; 3 for the other "
        "formats). Another space maps the labels explicitly: to ab by renormalising A and B "
        "(tie and both_bad rows dropped as label_space), abtx to abt by merging both_bad "
        "into tie; a wider space than the data's is refused",
    )


def _add_reading(group, d: BuildConfig) -> None:
    """The readers' choices (`sources.ReadOptions`)."""
    group.add_argument(
        "--images",
        choices=("strip", "drop"),
        default=d.images,
        help="image parts of typed content (arena-140k): strip them from the text (a counted "
        "repair) or drop the record (reason image)",
    )
    group.add_argument(
        "--map",
        type=_mapping,
        default=None,
        metavar="FIELD=COLUMN,...",
        help="the columns of a PATH:pairs input: prompt, a, b, and winner (or winner_model_a, "
        "winner_model_b, winner_tie); optional id, model_a, model_b, language, category",
    )
    group.add_argument(
        "--max-drop-share",
        type=float,
        default=d.max_drop_share,
        metavar="SHARE",
        help="fail when an input loses more than this share of its rows to drops other than "
        "de-duplication (docs/dataset.md, 'When a build fails')",
    )
    group.add_argument(
        "--allow-empty",
        action=Switch,
        help="succeed even when an input keeps no row",
    )
    group.add_argument(
        "--preference",
        choices=("better", "safer"),
        default=d.preference,
        help="PKU-SafeRLHF: the winner is the better or the safer response",
    )


def _add_encoding(enc, d: BuildConfig) -> None:
    """The encoding options (`--like RUN` and what it stands for)."""
    enc.add_argument(
        "--like",
        metavar="RUN",
        help="encode as the training data of this run was: its tokenizer, template, "
        "strategy, max length and swap (the flags below override them; not with --tokenizer)",
    )
    enc.add_argument("--tokenizer", help="tokenizer.json (default: the bundled demo tokenizer)")
    enc.add_argument(
        "--template",
        action=_Store,
        default=d.template,
        help=f"rounds, pab, concat or tags, or chat: the tokenizer's own chat template "
        f"(its tokenizer_config.json; implies --layout separate) (default: {d.template}, "
        "or the run's)",
    )
    enc.add_argument(
        "--layout",
        action=_Store,
        choices=LAYOUTS,
        default=None,
        help="cross: a row is one sequence, the prompt and both answers (a cross-encoder's "
        "input); separate: a row is two sequences, prompt + A and prompt + B (a reward "
        "model's input; both always stored, so not with --swap) (default: cross, separate "
        "for --template chat, or the run's)",
    )
    enc.add_argument(
        "--strategy",
        action=_Store,
        default=d.strategy,
        help=f"fourth_place, fair, drop_oldest, none (default: {d.strategy}, or the run's)",
    )
    enc.add_argument(
        "--max-length",
        action=_Store,
        type=_positive,
        default=d.max_length,
        help=f"token budget per row (default: {d.max_length}, or the run's)",
    )
    enc.add_argument(
        "--swap",
        action=_Switch,
        help="also store every row with A/B swapped (default: off, or the run's)",
    )
    enc.add_argument("--threads", type=thread_count, default=None, help="encoder threads")


def run(args: argparse.Namespace) -> int:
    encoder, encoding = like_run(args) if args.like else (None, _encoding(args, args))
    config = BuildConfig(
        inputs=_inputs(args.input, args.format),
        **encoding,
        folds=args.folds,
        seed=args.seed,
        both_empty=args.both_empty,
        one_empty=args.one_empty,
        identical=args.identical,
        ragged=args.ragged,
        repaired=args.repaired,
        dedup=args.dedup,
        priority=tuple(s.strip() for s in args.priority.split(",") if s.strip()),
        demo_rows=args.demo_rows,
        chunk_rows=args.chunk_rows,
        shard_rows=args.shard_rows,
        threads=args.threads,
        compression=args.compression,
        pack_tokens=args.pack_tokens,
        label_space=args.label_space,
        images=args.images,
        preference=args.preference,
        mapping=args.map,
        max_drop_share=args.max_drop_share,
        allow_empty=args.allow_empty,
    )
    progress = Progress(quiet=args.quiet)
    try:
        show = build_bar(progress)
        manifest = build_dataset(
            config, args.out, overwrite=args.overwrite, progress=show, encoder=encoder
        )
    finally:
        progress.done()
    if not args.quiet:
        print(printable(summary(manifest, args.out), layout=True), file=sys.stdout)
    return 0


def _mapping(text: str) -> dict:
    """`--map`'s value (`sources.pairs.parse_mapping`), its error argparse's."""
    try:
        return parse_mapping(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--map: ")) from None


def _formats_help() -> str:
    """The formats and what identifies each, for the help's epilog."""
    width = max(map(len, FORMATS))
    lines = [f"  {name:<{width}}  {FORMAT_COLUMNS[name]}" for name in FORMATS]
    return "formats (detected in this order; docs/dataset.md, 'Sources'):\n" + "\n".join(lines)


def _inputs(specs: list, format: Optional[str]) -> list:
    """The --input specs, `format` given to those without a :FORMAT of their own."""
    if format is None:
        return list(specs)
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: formats are {', '.join(FORMATS)}")
    given = (parse_input(s, format) for s in specs)  # format given: nothing detected
    return [f"{inp.path}:{inp.format}" for inp in given]


def _encoding(args: argparse.Namespace, base) -> dict:
    """The encoding settings: each flag typed, else `base`'s."""
    names = ("tokenizer", "template", "layout", "strategy", "max_length", "swap")
    return {k: getattr(args if k in args.given else base, k) for k in names}


def like_run(args: argparse.Namespace) -> tuple:
    """`--like RUN`: the `af.Encoder` the run's training data was encoded
    with (its tokenizer.json and the bundle's encoder config), with the
    flags given overriding its template, strategy and max length, and the
    build settings that describe it (swap: the run's unless given)."""
    if args.tokenizer:
        raise ConfigError("--like uses the run's tokenizer; drop --tokenizer or --like")
    like = build_settings(args.like)
    cfg = dict(like["encoder"])
    layout = encoder_layout(cfg)
    if "layout" in args.given and args.layout != layout:
        raise ConfigError(
            f"--like: the run encodes with the {layout} layout; --layout {args.layout} cannot "
            "change that (give --tokenizer and the encoding flags instead of --like)"
        )
    if "template" in args.given and cfg.get("chat_template") is not None:
        raise ConfigError(
            "--like: the run encodes with its tokenizer's chat template; --template cannot "
            "change that (give --tokenizer and the encoding flags instead of --like)"
        )
    if "template" in args.given:
        if args.template not in TEMPLATES:
            raise ConfigError(f"unknown template {args.template!r}; presets are {TEMPLATES}")
        cfg["template"] = dataclasses.asdict(Template.preset(args.template))
    overrides = {"num_threads": args.threads}
    for name in ("strategy", "max_length"):
        if name in args.given:
            overrides[name] = getattr(args, name)
    encoder = Encoder.from_config(Tokenizer.from_file(like["tokenizer"]), cfg, **overrides)
    # The build settings recorded beside the encoder: the preset the template is, when one.
    template = next(
        (n for n in TEMPLATES if dataclasses.asdict(Template.preset(n)) == cfg["template"]),
        BuildConfig().template,
    )
    if cfg.get("chat_template") is not None:
        template = CHAT_TEMPLATE
    run_side = BuildConfig(
        tokenizer=like["tokenizer"],
        template=template,
        layout=layout,
        strategy=cfg["strategy"],
        max_length=cfg["max_length"],
        swap=like["swap"],
    )
    return encoder, _encoding(args, run_side)


def summary(manifest: dict, out: str) -> str:
    """The end-of-build table: rows in, kept, dropped by reason, truncation,
    token percentiles, fill."""
    c = manifest["counts"]
    s = manifest["stats"]
    rows_in = c["rows_in"]

    def share(n: int) -> str:
        return f"{n / rows_in:6.1%}" if rows_in else "     -"

    lines = [f"dataset {out}: {c['rows']:,} rows in {len(manifest['shards'])} shard(s)"]
    for i, inp in enumerate(manifest.get("inputs", [])):
        chosen = inp.get("format_chosen", "given")
        chosen = chosen if chosen in ("given", "demo") else f"detected: {chosen}"
        lines.append(f"  input {i}: {inp['path']}: format {inp['format']} ({chosen})")
    lines.append(f"  {'input rows':<28}{rows_in:>10,}")
    lines.append(
        f"  {'kept (input rows)':<28}{c['input_rows_kept']:>10,}  {share(c['input_rows_kept'])}"
    )
    for reason, n in c["dropped"].items():
        lines.append(f"  {'dropped: ' + reason:<28}{n:>10,}  {share(n)}")
    lines.append(f"  {'relabelled':<28}{c['relabelled']:>10,}")
    kinds = ", ".join(f"{k} {n:,}" for k, n in c.get("repairs", {}).items() if n)
    lines.append(
        f"  {'text repaired (kept)':<28}{c['repaired']:>10,}" + (f"  ({kinds})" if kinds else "")
    )
    for src, n in c["by_source"].items():
        lines.append(f"  {'source: ' + src:<28}{n:>10,}")
    lines.append(
        "  labels                      " + "  ".join(f"{k} {v:,}" for k, v in c["labels"].items())
    )
    # Read by `inspect` from a manifest that may be hand-edited: shown as found.
    lines.append(f"  {'label space':<28}{str(manifest.get('label_space', 'abt')):>10.40}")
    mappings = manifest.get("label_mapping")
    for mapping in mappings if isinstance(mappings, list) else []:
        lines.append(f"  {'label mapping':<28}{str(mapping):.200}")
    lines.append(
        "  folds                       " + "  ".join(f"{k}:{v:,}" for k, v in c["folds"].items())
    )
    separate = encoder_layout(manifest.get("encoder") or {}) == "separate"
    if separate:
        lines.append(f"  {'layout':<28}  separate (each row: prompt + A, prompt + B)")
    length = s["length"]
    if length:
        per = "tokens per side" if separate else "tokens per row"
        lines.append(
            f"  {per:<28}p50 {length['p50']:,}  p90 {length['p90']:,}  "
            f"p99 {length['p99']:,}  max {length['max']:,}  (total {s['tokens']:,})"
        )
    lines.append(f"  {'truncated':<28}{s['truncated_share']:>10.1%}")
    if s["fill"] is not None:
        lines.append(
            f"  {'fill at ' + format(s['pack_tokens'], ',') + ' tokens':<28}{s['fill']:>10.4f}"
        )
    if "timings" in manifest:
        lines.append(f"  {'built in':<28}{manifest['timings']['total']:>9.2f}s")
    return "\n".join(lines)
