"""The report's PNGs, drawn with matplotlib (the `[plot]` extra). Without
it the module still imports, and `Plots()` raises the `ConfigError` that
names the extra. A plot of scores takes a `caption`: the rows they cover
(`Section.covers`), drawn above it."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..labels import LABEL_SPACES, space_of_width
from .sections import COLORS, Section, flip_rates

try:
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter
except ImportError:  # not installed: Plots() says which extra to install
    matplotlib = None


class Plots:
    """Figures on the Agg canvas, without pyplot (no global backend to
    switch), under matplotlib's default style so that a matplotlibrc cannot
    change a byte; PNGs carry no Software (version) entry."""

    def __init__(self, folder: Path) -> None:
        if matplotlib is None:
            raise ConfigError('arena-fast report needs matplotlib: pip install "arena-fast[plot]"')
        self.folder = folder  # where the PNGs go

    @contextmanager
    def figure(
        self, name: str, width: float = 7.0, height: float = 4.0, caption: str = ""
    ) -> Iterator[Any]:
        with matplotlib.style.context("default"), warnings.catch_warnings():
            # A run named in a script DejaVu lacks shows boxes in a legend;
            # the page itself has the name.
            warnings.filterwarnings("ignore", "Glyph .* missing from", UserWarning)
            fig = Figure(figsize=(width, height), layout="constrained")
            FigureCanvasAgg(fig)
            if caption:
                fig.suptitle(_plain(f"rows: {caption}"), fontsize="small")
            yield fig
            fig.savefig(self.folder / name, dpi=100, metadata={"Software": None})


def _plain(text: str) -> str:
    """User text for matplotlib, which would read $...$ as TeX (and fail on
    bad TeX)."""
    return text.replace("$", r"\$")


def _loss_axes(ax, sec: Section, color: str, label: str = "") -> None:
    if sec.steps:
        ax.plot(
            [r["step"] for r in sec.steps],
            [r["loss"] for r in sec.steps],
            color=color,
            linewidth=1,
            alpha=0.8,
            marker="." if len(sec.steps) < 3 else None,  # a line of one point draws nothing
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
    kept = sec.kept
    if kept is not None and kept.get("step") is not None and kept.get("log_loss") is not None:
        how = (sec.saved or {}).get("saved")
        ax.plot(
            [kept["step"]],
            [kept["log_loss"]],
            "*",
            color=color,
            markersize=16,
            markeredgecolor="black",
            label=f"{label}kept weights ({how}, step {kept['step']})",
        )


def _classes(sections: list) -> int:
    """K of the sections' label space (their summaries'; 3 when none says)."""
    for sec in sections:
        name = (getattr(sec, "summary", None) or {}).get("label_space")
        if name in LABEL_SPACES:
            return LABEL_SPACES[name].k
    return 3


def plot_losses(plots: Plots, name: str, sections: list, title: str) -> None:
    with plots.figure(name) as fig:
        ax = fig.add_subplot()
        for i, sec in enumerate(sections):
            label = f"{_plain(sec.title)}: " if len(sections) > 1 else ""
            _loss_axes(ax, sec, COLORS[i % len(COLORS)], label)
        # Chance: the log loss of uniform probabilities over the space's classes.
        k = _classes(sections)
        ax.axhline(math.log(k), color="grey", linestyle=":", label=f"chance (ln {k})")
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


def plot_folds(
    plots: Plots,
    name: str,
    bars: list,
    title: str = "held-out log loss per fold",
    caption: str = "",
) -> None:
    width = max(5.0, 1.2 * len(bars) + 2)
    with plots.figure(name, width=width, height=4.0, caption=caption) as fig:
        ax = fig.add_subplot()
        labels, values, rows, colors = zip(*bars)
        _bars(ax, [_plain(x) for x in labels], list(values), list(colors), rows=list(rows))
        mean = float(np.nanmean(values))
        ax.axhline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.4f}")
        ax.set_ylabel("log loss")
        ax.set_title(title)
        ax.legend(fontsize="small", loc="lower right")


def plot_reliability(plots: Plots, name: str, cal: dict, caption: str = "") -> None:
    edges = np.asarray(cal["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    filled = [i for i, n in enumerate(cal["rows"]) if n]
    with plots.figure(name, width=6.5, height=6.5, caption=caption) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        top.bar(
            centers[filled],
            [cal["accuracy"][i] for i in filled],
            width=width * 0.9,
            color=COLORS[0],
            alpha=0.5,
            label="accuracy per bin",
        )
        top.plot(
            [cal["confidence"][i] for i in filled],
            [cal["accuracy"][i] for i in filled],
            "o",
            color=COLORS[1],
            label="mean confidence vs accuracy",
        )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1.03)
        top.set_ylabel("accuracy")
        top.set_title(f"reliability of the top label (ECE {cal['ece']:.4f})")
        fig.legend(fontsize="small", loc="outside lower center", ncols=3)
        top.grid(alpha=0.3)
        bottom.bar(centers, cal["rows"], width=width * 0.9, color=COLORS[6])
        bottom.set_xlabel("confidence (largest probability)")
        bottom.set_ylabel("rows")


def plot_confusion(plots: Plots, name: str, matrix: list, caption: str = "") -> None:
    m = np.asarray(matrix, dtype=np.int64)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    with plots.figure(name, width=5.0, height=4.5, caption=caption) as fig:
        ax = fig.add_subplot()
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        names = space_of_width(len(m)).names
        for i in range(len(m)):
            for j in range(len(m)):
                color = "white" if share[i, j] > 0.6 else "black"
                text = f"{m[i, j]}\n{share[i, j]:.0%}"
                ax.text(j, i, text, ha="center", va="center", color=color)
        ax.set_xticks(range(len(m)), names)
        ax.set_yticks(range(len(m)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("label")
        ax.set_title("confusion matrix (counts, share of the label's row)")


def plot_flips(plots: Plots, name: str, frame, summary: dict, caption: str = "") -> None:
    flips = flip_rates(frame)
    passes = [
        (label, summary[key])
        for key, label in (
            ("log_loss_original", "original\norder alone"),
            ("log_loss_swapped", "swapped\nalone"),
            ("log_loss", "averaged\n(swap TTA)"),
        )
        if key in summary
    ]
    with plots.figure(name, width=10.0 if passes else 6.0, height=4.0, caption=caption) as fig:
        axes = fig.subplots(1, 2 if passes else 1, squeeze=False)[0]
        labels, rates, rows = zip(*flips)
        _bars(axes[0], list(labels), list(rates), COLORS[0], "{:.1%}", list(rows), floor=0.05)
        axes[0].yaxis.set_major_formatter(PercentFormatter(1.0))
        axes[0].set_xlabel("turns")
        axes[0].set_ylabel("flip rate")
        axes[0].set_title("flip rate: verdict changes under A/B swap")
        if passes:
            _bars(axes[1], [p[0] for p in passes], [p[1] for p in passes], COLORS[2])
            axes[1].set_ylabel("log loss")
            axes[1].set_title("single passes and their average")


def plot_groups(plots: Plots, name: str, summary: dict, caption: str = "") -> None:
    groups = [
        (key, title)
        for key, title in (("by_turns", "by number of turns"), ("by_truncation", "by truncation"))
        if summary.get(key)
    ]
    with plots.figure(name, width=5.0 * len(groups), height=4.0, caption=caption) as fig:
        for ax, (key, title) in zip(fig.subplots(1, len(groups), squeeze=False)[0], groups):
            items = list(summary[key].items())
            _bars(
                ax,
                [k for k, _ in items],
                [g["log_loss"] for _, g in items],
                COLORS[3],
                rows=[g["rows"] for _, g in items],
            )
            if key == "by_turns":
                ax.set_xlabel("turns")
            ax.set_ylabel("log loss")
            ax.set_title(f"log loss {title}")


def plot_margins(plots: Plots, name: str, margins: dict, caption: str = "") -> None:
    """A reward model's margins r_a - r_b as histograms by true label
    (`reward_tables.reward_summary`'s `margins`: label name -> margins),
    on shared bins, a line at 0 (A's reward above B's to its right)."""
    values = [np.asarray(m, dtype=np.float64) for m in margins.values()]
    lo = min((float(v.min()) for v in values if len(v)), default=-1.0)
    hi = max((float(v.max()) for v in values if len(v)), default=1.0)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 31)
    with plots.figure(name, width=7.0, height=4.0, caption=caption) as fig:
        ax = fig.add_subplot()
        for i, (label, v) in enumerate(zip(margins, values)):
            ax.hist(
                v,
                bins=bins,
                histtype="stepfilled",
                alpha=0.45,
                color=COLORS[i % len(COLORS)],
                label=f"{_plain(label)} ({len(v)})",
            )
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("reward margin r_a - r_b")
        ax.set_ylabel("pairs")
        ax.set_title("reward margins by true label")
        if values:
            ax.legend(fontsize="small")
