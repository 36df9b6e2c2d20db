"""`af.report.write_report(runs)`: an HTML page with PNG plots of one or
more training runs, to open instead of reading `metrics.jsonl`.

Per run: the training loss per step with the held-out log loss (and with
swap TTA) at each evaluation, by step (`eval_every` ones too), the
evaluation whose weights the run kept marked, and from the held-out predictions
(`valid_predictions.parquet`, `af.diagnostics`) the summary numbers, a
reliability diagram with its ECE, the position flip rate overall and by
turns, the single-pass log losses next to the averaged one, the confusion
matrix, and the log loss by turns and by truncation; for a reward run
(`objective` reward) also its pairwise accuracy (ties left out, with the
pairs it is over), the log loss of the probabilities derived from its
rewards, its learned tie parameter (`tie_prob_of_equal_rewards`) and a
histogram of the reward margins r_a - r_b by true label
(`af.reward_tables`). Several runs (the k
fold runs of one model) also get one comparison: the held-out log loss per
fold as bars, their loss curves together, and the pooled out-of-fold
numbers (only for distinct held-out folds of one dataset with no id twice;
otherwise the page says why not). Extra prediction tables (`arena-fast
predict --predictions`) become further sections. Every score names the rows
it covers (held-out fold k, or all rows with how many trained the run, with
a warning), and a merged run is described as the merge of folds it is.
What a run lacks (no evaluation, no predictions, no labels) is said on the
page, and so is a metrics.jsonl line skipped because
it is not JSON or a step, epoch, time or loss in it is not a number.

The report is a directory: `index.html` (self-contained but for the PNGs
beside it) and the PNGs, built beside `out` and renamed into place by
`files.publishing`, replacing an older report (never a directory that is
not one, nor a run it reads; one writer at a time). The
same inputs give the same bytes: no timestamps, PNGs without software or
date metadata, drawn under matplotlib's default style whatever the user's
matplotlibrc.

The package: `sections` reads each run (config, bundle, metrics, held-out
predictions) or prediction table into a `Section` and derives the numbers
the page shows; `plots` draws the PNGs (matplotlib, the `[plot]` extra);
`page` writes the HTML."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from ..errors import ConfigError
from ..files import publishing
from ..outputs import GENERATOR_META, REPORT_DIR
from .page import render_page
from .plots import Plots
from .sections import load_predictions, load_run

__all__ = ["write_report", "REPORT_DIR", "GENERATOR_META"]

PathLike = Union[str, os.PathLike]


def write_report(
    runs: Sequence[PathLike],
    out: Optional[PathLike] = None,
    predictions: Optional[Sequence[PathLike]] = None,
    overwrite: bool = False,
) -> Path:
    """Write the report of the run directories `runs` (and of the extra
    prediction tables `predictions`) and return the path of its
    `index.html`. `out` defaults to `RUN/report` for one run; for several,
    to `report` in the directory holding them all (the fold runs
    `model/fold0` .. `model/fold4` give `model/report`), and must be given
    when they sit in different directories. An existing `out` is used
    when it is empty, and replaced when it is an earlier report and
    `overwrite` says so (as every output of arena-fast). Raises `ConfigError` for a
    directory that is not a run and when matplotlib is missing."""
    if not runs:
        raise ConfigError("give at least one run directory")
    out = Path(out) if out is not None else _default_out([Path(r) for r in runs])
    read = [*runs, *(predictions or ())]
    with publishing(out, "report", overwrite=overwrite, inputs=read) as work:
        sections = [load_run(Path(r), f"run{i}") for i, r in enumerate(runs, 1)]
        for i, p in enumerate(predictions or (), 1):
            sections.append(load_predictions(Path(p), f"pred{i}"))
        plots = Plots(work)  # before any file is written: a missing matplotlib fails first
        page = render_page(sections, len(runs), plots)
        (work / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def _default_out(runs: list) -> Path:
    if len(runs) == 1:
        return runs[0] / REPORT_DIR
    parents = {r.resolve().parent for r in runs}
    if len(parents) != 1:
        raise ConfigError(
            "these runs are in different directories: give the report's directory (out / --out)"
        )
    return parents.pop() / REPORT_DIR
