"""`af.report.write_report(runs)`: an HTML page with PNG plots of one or
more training runs, to open instead of reading `metrics.jsonl`.

Per run: the training loss per step with the held-out log loss (and with
swap TTA) after each epoch, and from the held-out predictions
(`valid_predictions.parquet`, `af.diagnostics`) the summary numbers, a
reliability diagram with its ECE, the position flip rate overall and by
turns, the single-pass log losses next to the averaged one, the confusion
matrix, and the log loss by turns and by truncation. Several runs (the k
fold runs of one model) also get one comparison: the held-out log loss per
fold as bars, their loss curves together, and the pooled out-of-fold
numbers. Extra prediction tables (`arena-fast predict --predictions`) become
further sections. What a run lacks (no evaluation, no predictions, no
labels) is said on the page, and so is a metrics.jsonl line skipped because
it is not JSON or a step, epoch, time or loss in it is not a number.

The report is a directory: `index.html` (self-contained but for the PNGs
beside it) and the PNGs, built beside `out` and renamed into place by
`files.publishing`, replacing an older report (never a directory that is
not one, nor a run it reads; one writer at a time). The
same inputs give the same bytes: no timestamps, PNGs without software or
date metadata, drawn under matplotlib's default style whatever the user's
matplotlibrc."""

from __future__ import annotations

import html
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .errors import ConfigError
from .files import publishing
from .labels import CLASS_NAMES
from .outputs import GENERATOR_META, REPORT_DIR
from .runs import BUNDLE, PREDICTIONS

__all__ = ["write_report", "REPORT_DIR", "GENERATOR_META"]

PathLike = Union[str, os.PathLike]
_COLORS = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")
_CHANCE = math.log(3.0)


@dataclass
class _Section:
    """One run or one prediction table, as the page shows it."""

    key: str  # prefix of its PNG names: no user text reaches a file name
    title: str
    path: str
    config: dict = field(default_factory=dict)
    bundle: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)  # training records, by step
    evals: list = field(default_factory=list)  # evaluation records, by epoch
    frame: Any = None
    summary: Optional[dict] = None
    notes: list = field(default_factory=list)
    is_run: bool = True


def write_report(
    runs: Sequence[PathLike],
    out: Optional[PathLike] = None,
    predictions: Optional[Sequence[PathLike]] = None,
) -> Path:
    """Write the report of the run directories `runs` (and of the extra
    prediction tables `predictions`) and return the path of its
    `index.html`. `out` defaults to `RUN/report` for one run; for several,
    to `report` in the directory holding them all (the fold runs
    `model/fold0` .. `model/fold4` give `model/report`), and must be given
    when they sit in different directories. An existing `out` is replaced
    only when it is empty or an earlier report. Raises `ConfigError` for a
    directory that is not a run and when matplotlib is missing."""
    if not runs:
        raise ConfigError("give at least one run directory")
    out = Path(out) if out is not None else _default_out([Path(r) for r in runs])
    read = [*runs, *(predictions or ())]
    with publishing(out, "report", overwrite=True, inputs=read) as work:
        sections = [_load_run(Path(r), f"run{i}") for i, r in enumerate(runs, 1)]
        for i, p in enumerate(predictions or (), 1):
            sections.append(_load_predictions(Path(p), f"pred{i}"))
        plots = _Plots()  # before any file is written: a missing matplotlib fails first
        plots.folder = work
        page = _page(sections, len(runs), plots)
        (work / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


# -- inputs -----------------------------------------------------------------------


def _default_out(runs: list) -> Path:
    if len(runs) == 1:
        return runs[0] / REPORT_DIR
    parents = {r.resolve().parent for r in runs}
    if len(parents) != 1:
        raise ConfigError(
            "these runs are in different directories: give the report's directory (out / --out)"
        )
    return parents.pop() / REPORT_DIR


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable: {exc}") from None


def _load_run(run: Path, key: str) -> _Section:
    from .diagnostics import read_predictions, summarize

    if not (run / "config.json").is_file():
        raise ConfigError(f"{run}: not a training run (no config.json from `arena-fast train`)")
    config = _read_json(run / "config.json")
    if not isinstance(config, dict):
        raise ConfigError(f"{run / 'config.json'}: not a training config")
    title = run.resolve().name or str(run)
    sec = _Section(key=key, title=title, path=str(run), config=config)
    if (run / BUNDLE).is_file():
        bundle = _read_json(run / BUNDLE)
        sec.bundle = bundle if isinstance(bundle, dict) else {}
    _read_metrics(run / "metrics.jsonl", sec)
    held_out = config.get("fold") is not None
    if not sec.evals:
        sec.notes.append(
            "no evaluation records: the run stopped before its first evaluation"
            if held_out
            else "no evaluation records: the run has no held-out fold (fold None)"
        )
    if (run / PREDICTIONS).is_file():
        sec.frame = read_predictions(run / PREDICTIONS)
        sec.summary = summarize(sec.frame)
    elif not held_out:
        sec.notes.append("no held-out predictions: the run trained on every row (fold None)")
    elif not sec.evals:
        sec.notes.append("no held-out predictions: the run stopped before its first evaluation")
    else:
        sec.notes.append(f"no held-out predictions: {PREDICTIONS} is missing")
    return sec


def _read_metrics(path: Path, sec: _Section) -> None:
    """Training and evaluation records; a resumed run repeats the steps
    after its checkpoint, and the later record of a step (epoch) wins. A
    line that is not JSON (cut short by a crash) or a record whose numbers
    are not numbers (`_checked_record`) is skipped, and the page says how
    many and where the first one is."""
    if not path.is_file():
        sec.notes.append("no metrics.jsonl: the run wrote no records")
        return
    steps: dict = {}
    evals: dict = {}
    bad: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = _checked_record(json.loads(line))
            except (ValueError, RecursionError) as exc:
                bad.append(f"line {number}: {exc}")
                continue
            if record.get("eval"):
                evals[record.get("epoch")] = record
            elif "loss" in record and "step" in record:
                steps[record["step"]] = record
    sec.steps = [steps[k] for k in sorted(steps)]
    sec.evals = sorted(evals.values(), key=lambda r: (r.get("step") or 0, r.get("epoch") or 0))
    if bad:
        sec.notes.append(f"{path.name}: {len(bad)} unreadable record(s) skipped ({bad[0]})")
    if not sec.steps:
        sec.notes.append("no training loss records (fewer steps than log_every)")


# The fields of a metrics record the page reads: counters (finite, exact as
# float64) and losses (a diverged run's inf / nan is drawn as a gap).
_COUNTERS = ("step", "epoch", "seconds")
_LOSSES = ("loss", "log_loss", "tta_log_loss")


def _checked_record(record: Any) -> dict:
    """`record` with its counters and losses as numbers, or ValueError
    saying which field is not one."""
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    record = dict(record)
    for name in (*_COUNTERS, *_LOSSES):
        value = record.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} is {type(value).__name__}, not a number")
        if name in _COUNTERS and not (abs(value) <= 2**53 and math.isfinite(value)):
            raise ValueError(f"{name} {value!r:.30} is not a finite number below 2**53")
        if name in _LOSSES:
            try:
                value = float(value)
            except OverflowError:
                raise ValueError(f"{name} is not a float64") from None
            record[name] = value if math.isfinite(value) else math.nan
    return record


def _load_predictions(path: Path, key: str) -> _Section:
    from .diagnostics import read_predictions, summarize

    frame = read_predictions(path)
    sec = _Section(key=key, title=path.name, path=str(path), is_run=False, frame=frame)
    sec.summary = summarize(frame)
    return sec


# -- numbers ----------------------------------------------------------------------


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _column3(frame, name: str) -> Optional[np.ndarray]:
    if name not in frame.columns:
        return None
    return frame[name].to_numpy().astype(np.float64).reshape(len(frame), 3)


def _flips(frame) -> list:
    """(name, flip rate, rows) overall and per turn bucket."""
    from .diagnostics import TURN_BUCKETS, flip_rate

    original, swapped = _column3(frame, "probs_original"), _column3(frame, "probs_swapped")
    if original is None or swapped is None:
        return []
    out = [("all", flip_rate(original, swapped), len(frame))]
    if "turns" in frame.columns:
        turns = frame["turns"].to_numpy()
        for lo, hi, name in TURN_BUCKETS:
            sel = (turns >= lo) & ((turns <= hi) if hi is not None else True)
            if sel.any():
                out.append((name, flip_rate(original[sel], swapped[sel]), int(sel.sum())))
    return out


def _fold_bars(sections: list) -> list:
    """(label, log loss, rows, color) per fold of each run's held-out table:
    the fold from the table's `fold` column, else from the run's config."""
    bars = []
    for i, sec in enumerate(sections):
        s = sec.summary
        if not s or "log_loss" not in s:
            continue
        color = _COLORS[i % len(_COLORS)]
        whole = {"rows": s["labelled"], "log_loss": s["log_loss"]}
        folds = s.get("by_fold") or {sec.config.get("fold"): whole}
        for fold, g in folds.items():
            bars.append((sec.title, fold, g["log_loss"], g["rows"], color))
    unique = len({b[1] for b in bars}) == len(bars) and None not in {b[1] for b in bars}
    return [
        (f"fold {f}" if unique else f"{t}\n{'all rows' if f is None else f'fold {f}'}", ll, n, c)
        for t, f, ll, n, c in bars
    ]


# -- plots ------------------------------------------------------------------------


class _Plots:
    """Figures on the Agg canvas, without pyplot (no global backend to
    switch), under matplotlib's default style so that a matplotlibrc cannot
    change a byte; PNGs carry no Software (version) entry."""

    def __init__(self) -> None:
        try:
            import matplotlib.style
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise ConfigError(
                'arena-fast report needs matplotlib: pip install "arena-fast[plot]"'
            ) from None
        self._style, self._canvas, self._figure = matplotlib.style, FigureCanvasAgg, Figure
        self.folder = Path(".")

    @contextmanager
    def figure(self, name: str, width: float = 7.0, height: float = 4.0) -> Iterator[Any]:
        with self._style.context("default"), warnings.catch_warnings():
            # A run named in a script DejaVu lacks shows boxes in a legend;
            # the page itself has the name.
            warnings.filterwarnings("ignore", "Glyph .* missing from", UserWarning)
            fig = self._figure(figsize=(width, height), layout="constrained")
            self._canvas(fig)
            yield fig
            fig.savefig(self.folder / name, dpi=100, metadata={"Software": None})


def _plain(text: str) -> str:
    """User text for matplotlib, which would read $...$ as TeX (and fail on
    bad TeX)."""
    return text.replace("$", r"\$")


def _loss_axes(ax, sec: _Section, color: str, label: str = "") -> None:
    if sec.steps:
        ax.plot(
            [r["step"] for r in sec.steps],
            [r["loss"] for r in sec.steps],
            color=color,
            linewidth=1,
            alpha=0.8,
            label=f"{label}training loss",
        )
    if sec.evals:
        steps = [r.get("step") for r in sec.evals]
        ax.plot(
            steps,
            [r.get("log_loss") for r in sec.evals],
            "o-",
            color=color,
            label=f"{label}held-out log loss",
        )
        if any("tta_log_loss" in r for r in sec.evals):
            ax.plot(
                steps,
                [r.get("tta_log_loss", float("nan")) for r in sec.evals],
                "s--",
                color=color,
                markerfacecolor="white",
                label=f"{label}held-out, swap TTA",
            )


def _plot_losses(plots: _Plots, name: str, sections: list, title: str) -> None:
    with plots.figure(name) as fig:
        ax = fig.add_subplot()
        for i, sec in enumerate(sections):
            label = f"{_plain(sec.title)}: " if len(sections) > 1 else ""
            _loss_axes(ax, sec, _COLORS[i % len(_COLORS)], label)
        ax.axhline(_CHANCE, color="grey", linestyle=":", label="chance (ln 3)")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss / log loss")
        ax.set_title(title)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)


def _bars(
    ax, labels: list, values: list, colors: Any, fmt: str = "{:.4f}", rows=None, floor=1e-3
) -> None:
    heights = [0.0 if v is None or math.isnan(v) else v for v in values]
    container = ax.bar(range(len(labels)), heights, color=colors)
    texts = [
        ("-" if v is None or math.isnan(v) else fmt.format(v))
        + (f"\n{rows[i]} rows" if rows is not None else "")
        for i, v in enumerate(values)
    ]
    ax.bar_label(container, texts, fontsize="small")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, max([*heights, floor]) * 1.3)
    ax.grid(axis="y", alpha=0.3)


def _plot_folds(plots: _Plots, name: str, bars: list) -> None:
    with plots.figure(name, width=max(5.0, 1.2 * len(bars) + 2), height=4.0) as fig:
        ax = fig.add_subplot()
        labels, values, rows, colors = zip(*bars)
        _bars(ax, [_plain(x) for x in labels], list(values), list(colors), rows=list(rows))
        mean = float(np.nanmean(values))
        ax.axhline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.4f}")
        ax.set_ylabel("log loss")
        ax.set_title("held-out log loss per fold")
        ax.legend(fontsize="small", loc="lower right")


def _plot_reliability(plots: _Plots, name: str, cal: dict) -> None:
    edges = np.asarray(cal["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    filled = [i for i, n in enumerate(cal["rows"]) if n]
    with plots.figure(name, width=6.5, height=6.5) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        top.bar(
            centers[filled],
            [cal["accuracy"][i] for i in filled],
            width=width * 0.9,
            color=_COLORS[0],
            alpha=0.5,
            label="accuracy per bin",
        )
        top.plot(
            [cal["confidence"][i] for i in filled],
            [cal["accuracy"][i] for i in filled],
            "o",
            color=_COLORS[1],
            label="mean confidence vs accuracy",
        )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1.03)
        top.set_ylabel("accuracy")
        top.set_title(f"reliability of the top label (ECE {cal['ece']:.4f})")
        fig.legend(fontsize="small", loc="outside lower center", ncols=3)
        top.grid(alpha=0.3)
        bottom.bar(centers, cal["rows"], width=width * 0.9, color=_COLORS[6])
        bottom.set_xlabel("confidence (largest probability)")
        bottom.set_ylabel("rows")


def _plot_confusion(plots: _Plots, name: str, matrix: list) -> None:
    m = np.asarray(matrix, dtype=np.int64)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    with plots.figure(name, width=5.0, height=4.5) as fig:
        ax = fig.add_subplot()
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(3):
            for j in range(3):
                color = "white" if share[i, j] > 0.6 else "black"
                text = f"{m[i, j]}\n{share[i, j]:.0%}"
                ax.text(j, i, text, ha="center", va="center", color=color)
        ax.set_xticks(range(3), CLASS_NAMES)
        ax.set_yticks(range(3), CLASS_NAMES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("label")
        ax.set_title("confusion matrix (counts, share of the label's row)")


def _plot_flips(plots: _Plots, name: str, frame, summary: dict) -> None:
    from matplotlib.ticker import PercentFormatter

    flips = _flips(frame)
    passes = [
        (label, summary[key])
        for key, label in (
            ("log_loss_original", "original\norder alone"),
            ("log_loss_swapped", "swapped\nalone"),
            ("log_loss", "averaged\n(swap TTA)"),
        )
        if key in summary
    ]
    with plots.figure(name, width=10.0 if passes else 6.0, height=4.0) as fig:
        axes = fig.subplots(1, 2 if passes else 1, squeeze=False)[0]
        labels, rates, rows = zip(*flips)
        _bars(axes[0], list(labels), list(rates), _COLORS[0], "{:.1%}", list(rows), floor=0.05)
        axes[0].yaxis.set_major_formatter(PercentFormatter(1.0))
        axes[0].set_xlabel("turns")
        axes[0].set_ylabel("flip rate")
        axes[0].set_title("flip rate: verdict changes under A/B swap")
        if passes:
            _bars(axes[1], [p[0] for p in passes], [p[1] for p in passes], _COLORS[2])
            axes[1].set_ylabel("log loss")
            axes[1].set_title("single passes and their average")


def _plot_groups(plots: _Plots, name: str, summary: dict) -> None:
    groups = [
        (key, title)
        for key, title in (("by_turns", "by number of turns"), ("by_truncation", "by truncation"))
        if summary.get(key)
    ]
    with plots.figure(name, width=5.0 * len(groups), height=4.0) as fig:
        for ax, (key, title) in zip(fig.subplots(1, len(groups), squeeze=False)[0], groups):
            items = list(summary[key].items())
            _bars(
                ax,
                [k for k, _ in items],
                [g["log_loss"] for _, g in items],
                _COLORS[3],
                rows=[g["rows"] for _, g in items],
            )
            if key == "by_turns":
                ax.set_xlabel("turns")
            ax.set_ylabel("log loss")
            ax.set_title(f"log loss {title}")


# -- the page ---------------------------------------------------------------------

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em}
td{text-align:right}td:first-child{text-align:left}th{background:#f3f3f3}
.note{color:#a33}.path{color:#666;font-family:monospace}img{max-width:100%;margin:.5em 0}
pre{background:#f7f7f7;padding:.6em}"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(head: list, rows: list) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _img(name: str, alt: str) -> str:
    return f'<img src="{_e(name)}" alt="{_e(alt)}">'


_SUMMARY_HEAD = [
    "",
    "rows",
    "labelled",
    "log loss",
    "accuracy",
    "original order alone",
    "swapped alone",
    "flip rate",
    "ECE",
]


def _summary_row(title: str, s: Optional[dict]) -> list:
    if s is None:
        return [title, *["-"] * (len(_SUMMARY_HEAD) - 1)]
    keys = ("log_loss", "accuracy", "log_loss_original", "log_loss_swapped", "flip_rate")
    ece = s["calibration"]["ece"] if "calibration" in s else None
    return [title, s["rows"], s["labelled"], *(_num(s.get(k)) for k in keys), _num(ece)]


def _run_row(sec: _Section) -> list:
    c, last = sec.config, (sec.evals[-1] if sec.evals else {})
    encoder = sec.bundle.get("encoder") or {}
    steps = max([r.get("step") or 0 for r in (*sec.steps, *sec.evals)], default=None)
    seconds = max([r.get("seconds") or 0.0 for r in (*sec.steps, *sec.evals)], default=None)
    return [
        sec.title,
        c.get("model"),
        c.get("fold"),
        c.get("lora_r"),
        encoder.get("max_length", "-"),
        encoder.get("strategy", "-"),
        c.get("epochs"),
        c.get("lr"),
        _num(steps),
        _num(seconds, 1),
        _num(last.get("log_loss")),
        _num(last.get("tta_log_loss")),
    ]


_RUN_HEAD = [
    "run",
    "model",
    "fold",
    "lora_r",
    "max_length",
    "strategy",
    "epochs",
    "lr",
    "steps",
    "seconds",
    "last eval log loss",
    "last eval TTA log loss",
]


def _pooled(sections: list) -> Optional[dict]:
    """The out-of-fold summary: every run's held-out rows together (when
    the tables share their columns)."""
    import polars as pl

    from .diagnostics import summarize

    frames = [s.frame for s in sections if s.frame is not None]
    if len(frames) < 2 or len({tuple(f.schema.items()) for f in frames}) != 1:
        return None
    return summarize(pl.concat(frames, how="vertical"))


def _section_html(sec: _Section, plots: _Plots) -> list:
    from .diagnostics import format_summary

    parts = [f'<h2 id="{sec.key}">{_e(sec.title)}</h2>', f'<p class="path">{_e(sec.path)}</p>']
    parts += [f'<p class="note">{_e(note)}</p>' for note in sec.notes]
    if sec.is_run and (sec.steps or sec.evals):
        name = f"{sec.key}-loss.png"
        _plot_losses(plots, name, [sec], "training loss and held-out log loss")
        parts.append(_img(name, "loss curve"))
    s = sec.summary
    if s is None:
        return parts
    if not s["labelled"]:
        parts.append(
            '<p class="note">no labelled rows: log loss, calibration and the confusion matrix '
            "need labels</p>"
        )
    if len(s.get("by_fold") or {}) >= 2:
        name = f"{sec.key}-folds.png"
        _plot_folds(plots, name, _fold_bars([_Section(key="", title="", path="", summary=s)]))
        parts.append(_img(name, "log loss per fold"))
    if "calibration" in s:
        name = f"{sec.key}-reliability.png"
        _plot_reliability(plots, name, s["calibration"])
        parts.append(_img(name, "reliability diagram"))
    if "flip_rate" in s:
        name = f"{sec.key}-flips.png"
        _plot_flips(plots, name, sec.frame, s)
        parts.append(_img(name, "flip rate"))
    else:
        parts.append('<p class="note">one order predicted only: no flip rate</p>')
    if "confusion" in s:
        name = f"{sec.key}-confusion.png"
        _plot_confusion(plots, name, s["confusion"])
        parts.append(_img(name, "confusion matrix"))
    if s.get("by_turns") or s.get("by_truncation"):
        name = f"{sec.key}-groups.png"
        _plot_groups(plots, name, s)
        parts.append(_img(name, "log loss by turns and by truncation"))
    parts.append(f"<details><summary>numbers</summary><pre>{_e(format_summary(s))}</pre></details>")
    return parts


def _page(sections: list, n_runs: int, plots: _Plots) -> str:
    from . import __version__

    runs = sections[:n_runs]
    title = runs[0].title if n_runs == 1 else f"{n_runs} runs"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        GENERATOR_META,
        f"<title>{_e(f'arena-fast report: {title}')}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(f'arena-fast report: {title}')}</h1>",
        "<h2>Summary</h2>",
    ]
    rows = [_summary_row(s.title, s.summary) for s in sections]
    pooled = _pooled(runs) if n_runs > 1 else None
    if pooled is not None:
        rows.append(_summary_row("all runs pooled (out of fold)", pooled))
    parts.append(_table(_SUMMARY_HEAD, rows))
    parts.append(
        "<p>Log loss, accuracy, ECE and the confusion matrix use the final probabilities "
        "(the average of both orders when both were predicted); the single passes are beside "
        "them. Flip rate: the share of rows whose verdict changes when A and B are "
        "swapped. ECE: 10 equal bins of the top label's confidence.</p>"
    )
    parts += ["<h2>Runs</h2>", _table(_RUN_HEAD, [_run_row(s) for s in runs])]
    if n_runs > 1:
        parts.append('<h2 id="comparison">Comparison</h2>')
        bars = _fold_bars(runs)
        if bars:
            _plot_folds(plots, "compare-folds.png", bars)
            parts.append(_img("compare-folds.png", "held-out log loss per fold"))
            parts.append(
                _table(["run / fold", "rows", "log loss"], [[b[0], b[2], _num(b[1])] for b in bars])
            )
        else:
            parts.append('<p class="note">no run has labelled held-out predictions</p>')
        if any(s.steps or s.evals for s in runs):
            _plot_losses(plots, "compare-loss.png", runs, "loss curves of every run")
            parts.append(_img("compare-loss.png", "loss curves"))
    for sec in sections:
        parts += _section_html(sec, plots)
    parts.append(f'<p class="path">{_e(f"written by arena-fast {__version__}")}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
