"""Prediction diagnostics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena_fast.diagnostics import (
    confusion,
    flip_rate,
    format_summary,
    log_loss,
    prediction_frame,
    read_predictions,
    reliability,
    summarize,
    write_predictions,
)

A, B, T = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]


def test_log_loss_and_flip_rate_by_hand():
    p = np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2]])
    y = np.array([A, [0.0, 0.5, 0.5]])
    expected = (-math.log(0.5) + -(0.5 * math.log(0.6) + 0.5 * math.log(0.2))) / 2
    assert log_loss(p, y) == pytest.approx(expected, rel=1e-12)
    # Clipped at 1e-15: a confident miss is large but finite.
    assert math.isfinite(log_loss(np.array([[1.0, 0.0, 0.0]]), np.array([B])))
    assert math.isnan(log_loss(np.zeros((0, 3)), np.zeros((0, 3))))
    original = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    swapped = np.array([[0.6, 0.3, 0.1], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.4, 0.5, 0.1]])
    assert flip_rate(original, swapped) == 0.5


def test_reliability_bins_and_ece_by_hand():
    # Confidences 0.9, 0.9 (one right), 0.5 (right), 0.35 (wrong).
    p = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.35, 0.33, 0.32]])
    y = np.array([A, B, A, T])
    cal = reliability(p, y, bins=10)
    assert cal["rows"] == [0, 0, 0, 1, 1, 0, 0, 0, 2, 0]  # 0.35 -> (0.3, 0.4], 0.5 -> (0.4, 0.5]
    assert cal["accuracy"][8] == 0.5 and cal["confidence"][8] == pytest.approx(0.9)
    assert cal["accuracy"][3] == 0.0 and cal["accuracy"][4] == 1.0
    assert cal["confidence"][0] is None
    ece = (2 * abs(0.5 - 0.9) + abs(1.0 - 0.5) + abs(0.0 - 0.35)) / 4
    assert cal["ece"] == pytest.approx(ece, rel=1e-12)
    assert confusion(p, y) == [[2, 0, 0], [1, 0, 0], [1, 0, 0]]


def test_summary_groups_and_round_trip(tmp_path):
    ids = ["r0", "r1", "r2", "r3", "r4"]
    probs = np.array(
        [[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2], [1 / 3] * 3]
    )
    original = probs.copy()
    swapped = probs.copy()
    swapped[3] = [0.2, 0.6, 0.2]  # one verdict flips
    labels = np.array([A, B, A, T, [np.nan] * 3])
    frame = prediction_frame(
        ids,
        probs,
        probs_original=original,
        probs_swapped=swapped,
        logits=np.log(probs),
        labels=labels,
        turns=[1, 2, 3, 7, 1],
        truncated=[False, True, False, True, False],
        fold=[0, 0, 1, 1, -1],
    )
    s = summarize(frame)
    assert s["rows"] == 5 and s["labelled"] == 4
    assert s["flip_rate"] == pytest.approx(1 / 5)  # over every row with both passes
    y = labels[:4]
    assert s["log_loss"] == pytest.approx(log_loss(probs[:4], y))
    assert s["accuracy"] == 0.5
    assert s["log_loss_swapped"] == pytest.approx(log_loss(swapped[:4], y))
    assert set(s["by_turns"]) == {"1", "2", "3-4", "5+"}
    assert s["by_turns"]["5+"] == {"rows": 1, "log_loss": pytest.approx(-math.log(0.2))}
    assert s["by_truncation"]["truncated"]["rows"] == 2
    assert s["by_truncation"]["kept"]["log_loss"] == pytest.approx(
        log_loss(probs[[0, 2]], y[[0, 2]])
    )
    assert set(s["by_fold"]) == {0, 1}
    text = format_summary(s)
    assert "flip rate     0.2000" in text and "by turns" in text and "ECE" in text

    path = tmp_path / "sub" / "pred.parquet"
    write_predictions(path, frame)
    back = read_predictions(path)
    assert back.equals(frame)
    assert not list(path.parent.glob(".*tmp"))  # the temporary file was renamed


def test_unlabelled_and_single_pass_tables():
    frame = prediction_frame(["x"], [[0.2, 0.3, 0.5]], labels=[[np.nan] * 3])
    s = summarize(frame)
    assert s == {"rows": 1, "label_space": "abt", "labelled": 0}
    with pytest.raises(ValueError, match="shape"):
        prediction_frame(["x", "y"], [[0.2, 0.3, 0.5]])


def test_read_predictions_refuses_other_files(tmp_path):
    from arena_fast.errors import InputError

    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="x.parquet"):
        read_predictions(bad)
