"""The report's HTML: the summary and runs tables, the comparison of
several runs, and one section per run or prediction table with its plots.
Every score says which rows it covers (the summary's "rows covered"
column, a line and a caption above each section's plots), a table holding
rows its run trained on is flagged, and each run's evaluations are listed
by step with the one whose weights it kept."""

from __future__ import annotations

import html
import math
from typing import Any, Optional

from .. import __version__
from ..diagnostics import GROUP_COLUMNS, GROUP_TOP, format_summary
from ..outputs import GENERATOR_META
from ..reward_tables import format_reward_summary
from .plots import (
    Plots,
    plot_confusion,
    plot_flips,
    plot_folds,
    plot_groups,
    plot_losses,
    plot_margins,
    plot_reliability,
)
from .sections import Section, fold_bars, pooled_summary


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


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
    "rows covered",
]


def _summary_row(title: str, s: Optional[dict], covers: str = "") -> list:
    if s is None:
        return [title, *["-"] * (len(_SUMMARY_HEAD) - 2), covers or "-"]
    keys = ("log_loss", "accuracy", "log_loss_original", "log_loss_swapped", "flip_rate")
    ece = s["calibration"]["ece"] if "calibration" in s else None
    row = [title, s["rows"], s["labelled"], *(_num(s.get(k)) for k in keys), _num(ece)]
    return [*row, covers or s.get("covers") or "-"]


def _kept_text(sec: Section) -> str:
    """The evaluation whose weights the run kept, in words."""
    kept = sec.kept
    if kept is None:
        return "-" if sec.saved is None else f"the last weights ({sec.saved.get('saved')})"
    text = f"step {_num(kept.get('step'))} ({(sec.saved or {}).get('saved')})"
    return f"{text}: log loss {_num(kept.get('log_loss'))}" if "log_loss" in kept else text


def _run_row(sec: Section) -> list:
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
        len(sec.evals),
        _kept_text(sec),
        sec.trained_on(),
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
    "evaluations",
    "kept weights",
    "trained on",
]
_EVAL_HEAD = ["step", "epoch", "log loss", "TTA log loss", "accuracy", "best so far", "kept"]


def _evals_html(sec: Section) -> list:
    """The run's evaluations by step (every `eval_every` one too), the kept
    one marked, and a line naming it."""
    if not sec.evals:
        return []
    kept_step = (sec.kept or {}).get("step")
    rows = [
        [
            _num(r.get("step")),
            _num(r.get("epoch")),
            _num(r.get("log_loss")),
            _num(r.get("tta_log_loss")),
            _num(r.get("accuracy")),
            "yes" if r.get("best") else "",
            "KEPT" if kept_step is not None and r.get("step") == kept_step else "",
        ]
        for r in sec.evals
    ]
    head = _EVAL_HEAD
    if sec.tie is not None:  # a reward run: its pairwise accuracy and tie parameter too
        head = [*_EVAL_HEAD[:5], *_REWARD_EVAL_HEAD, *_EVAL_HEAD[5:]]
        for row, r in zip(rows, sec.evals):
            row[5:5] = [_num(r.get(k)) for k in ("pairwise_accuracy", "tie_prob_of_equal_rewards")]
    line = f"<p>kept weights: {_e(_kept_text(sec))}</p>" if sec.saved is not None else ""
    return [
        line,
        f"<details><summary>{len(sec.evals)} held-out evaluations, by step</summary>"
        f"{_table(head, rows)}</details>",
    ]


_REWARD_EVAL_HEAD = ["pairwise accuracy", "P(tie) of equal rewards"]
_REWARD_HEAD = [
    "pairwise accuracy",
    "pairs it is over (won by A or B)",
    "log loss (derived probabilities)",
    "labelled pairs",
    "tie model",
    "P(tie) of equal rewards",
    "mean margin r_a - r_b",
]


def _reward_html(sec: Section, plots: Plots, covers: str) -> list:
    """A reward run's or table's section: pairwise accuracy (ties left out,
    with the pairs it is over), the log loss of the probabilities derived
    from the rewards, the run's learned tie parameter, and the histogram of
    reward margins by true label."""
    r, tie = sec.reward, sec.tie or {}
    parts = [f'<h3 id="{_e(sec.key)}-reward">reward model</h3>']
    if r is None:
        return [*parts, '<p class="note">no prediction table with rewards to score</p>']
    row = [
        _num(r["pairwise_accuracy"]),
        f"{r['decided']:,}",
        _num(r["log_loss"]),
        f"{r['labelled']:,}",
        tie.get("tie_model", "-"),
        _num(tie.get("tie_prob_of_equal_rewards")),
        _num(r["margin_mean"]),
    ]
    parts.append(_table(_REWARD_HEAD, [row]))
    parts.append(
        "<p>Pairwise accuracy: the share of the pairs won by A or B whose winner got the larger "
        "reward (ties and both_bad left out, equal rewards wrong), as reward benchmarks count "
        "it. The probabilities come from the two rewards and the learned tie parameter "
        "(P(tie) of two equal rewards). A reward model has no swap TTA: exchanging A and B "
        "exchanges the rewards.</p>"
    )
    if r["margins"]:
        name = f"{sec.key}-margins.png"
        plot_margins(plots, name, r["margins"], caption=covers)
        parts.append(_img(name, "reward margins by true label"))
    else:
        parts.append('<p class="note">no labelled pairs: no margins by label</p>')
    return parts


def _groups_html(column: str, groups: dict) -> str:
    """The scores by one row metadata column (`diagnostics.by_group`) as a
    table, with what its groups are."""
    rows = [
        [name, g["rows"], g["labelled"], _num(g["log_loss"]), _num(g["accuracy"]),
         _num(g.get("flip_rate"))]
        for name, g in groups.items()
    ]  # fmt: skip
    note = (
        f"The {GROUP_TOP} {column} values with the most rows; (other) pools the rest, "
        f"(none) the rows without one."
    )
    if column == "category":
        note += ' A row of several categories ("math,if") counts under each.'
    return f'<h3 id="by-{column}">by {_e(column)}</h3><p>{_e(note)}</p>' + _table(
        [column, "rows", "labelled", "log loss", "accuracy", "flip rate"], rows
    )


def _section_html(sec: Section, plots: Plots) -> list:
    parts = [f'<h2 id="{sec.key}">{_e(sec.title)}</h2>', f'<p class="path">{_e(sec.path)}</p>']
    parts += [f'<p class="note">{_e(note)}</p>' for note in sec.notes]
    if sec.is_run and (sec.steps or sec.evals):
        name = f"{sec.key}-loss.png"
        plot_losses(plots, name, [sec], "training loss and held-out log loss")
        parts.append(_img(name, "loss curve"))
    parts += _evals_html(sec)
    s = sec.summary
    if s is None:
        return parts + (_reward_html(sec, plots, "") if sec.tie is not None else [])
    covers = sec.covers
    parts.append(f"<p>The scores below cover: <strong>{_e(covers)}</strong></p>")
    if sec.reward is not None or sec.tie is not None:
        parts += _reward_html(sec, plots, covers)
    if not s["labelled"]:
        parts.append(
            '<p class="note">no labelled rows: log loss, calibration and the confusion matrix '
            "need labels</p>"
        )
    if len(s.get("by_fold") or {}) >= 2:
        name = f"{sec.key}-folds.png"
        whole = Section(key="", title="", path="", summary=s, frame=sec.frame)
        title = "log loss per fold" if sec.trained_rows else "held-out log loss per fold"
        plot_folds(plots, name, fold_bars([whole]), title, caption=covers)
        parts.append(_img(name, "log loss per fold"))
    if "calibration" in s:
        name = f"{sec.key}-reliability.png"
        plot_reliability(plots, name, s["calibration"], caption=covers)
        parts.append(_img(name, "reliability diagram"))
    if "flip_rate" in s:
        name = f"{sec.key}-flips.png"
        plot_flips(plots, name, sec.frame, s, caption=covers)
        parts.append(_img(name, "flip rate"))
    elif sec.reward is not None:
        parts.append('<p class="note">a reward model: one pass, no swap TTA or flip rate</p>')
    else:
        parts.append('<p class="note">one order predicted only: no flip rate</p>')
    if "confusion" in s:
        name = f"{sec.key}-confusion.png"
        plot_confusion(plots, name, s["confusion"], caption=covers)
        parts.append(_img(name, "confusion matrix"))
    if s.get("by_turns") or s.get("by_truncation"):
        name = f"{sec.key}-groups.png"
        plot_groups(plots, name, s, caption=covers)
        parts.append(_img(name, "log loss by turns and by truncation"))
    for column in GROUP_COLUMNS:
        if s.get(f"by_{column}"):
            parts.append(_groups_html(column, s[f"by_{column}"]))
    text = format_summary(s)
    if sec.reward is not None:
        text += "\n" + format_reward_summary(sec.reward, sec.tie)
    parts.append(f"<details><summary>numbers</summary><pre>{_e(text)}</pre></details>")
    return parts


def render_page(sections: list, n_runs: int, plots: Plots) -> str:
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
    rows = [_summary_row(s.title, s.summary, s.covers) for s in sections]
    pooled, pooled_note = pooled_summary(runs) if n_runs > 1 else (None, "")
    if pooled is not None:
        rows.append(_summary_row("all runs pooled (out of fold)", pooled, pooled_note))
    parts.append(_table(_SUMMARY_HEAD, rows))
    if pooled is None and pooled_note:
        parts.append(f'<p class="note">{_e(pooled_note)}</p>')
    for sec in sections:
        if sec.trained_rows:
            parts.append(f'<p class="note">WARNING: {_e(sec.title)}: {_e(sec.covers)}</p>')
    parts.append(
        "<p>Log loss, accuracy, ECE and the confusion matrix use the final probabilities "
        "(the average of both orders when both were predicted); the single passes are beside "
        "them. Flip rate: the share of rows whose verdict changes when A and B are "
        "swapped. ECE: 10 equal bins of the top label's confidence.</p>"
    )
    parts += ["<h2>Runs</h2>", _table(_RUN_HEAD, [_run_row(s) for s in runs])]
    if n_runs > 1:
        parts.append('<h2 id="comparison">Comparison</h2>')
        bars = fold_bars(runs)
        if bars:
            plot_folds(plots, "compare-folds.png", bars)
            parts.append(_img("compare-folds.png", "held-out log loss per fold"))
            parts.append(
                _table(["run / fold", "rows", "log loss"], [[b[0], b[2], _num(b[1])] for b in bars])
            )
        else:
            parts.append('<p class="note">no run has labelled held-out predictions</p>')
        if any(s.steps or s.evals for s in runs):
            plot_losses(plots, "compare-loss.png", runs, "loss curves of every run")
            parts.append(_img("compare-loss.png", "loss curves"))
    for sec in sections:
        parts += _section_html(sec, plots)
    parts.append(f'<p class="path">{_e(f"written by arena-fast {__version__}")}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
