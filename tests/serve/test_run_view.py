"""The run view of `arena-fast serve` (`serve.run_views`,
`serve.run_tables`): the prediction table sorted by each row's log loss
(checked against a loss computed here), its filters and pages, the report
served from the run's own report directory only and under a policy with no
script, escaping, 404s and 400s."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from strategies import train_extra

train_extra("starlette", "serve")
train_extra("httpx", "test")

from markupsafe import escape  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from arena_fast.diagnostics import (  # noqa: E402
    log_loss,
    prediction_frame,
    row_losses,
    write_predictions,
)
from arena_fast.outputs import GENERATOR_META, PREDICTIONS, RUN_CONFIG  # noqa: E402
from arena_fast.serve import Catalog, create_app  # noqa: E402
from arena_fast.serve.run_views import REPORT_CSP  # noqa: E402

XSS = ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">', "javascript:alert(3)"]
N = 130


def _predictions(seed: int = 0):
    """N rows: probabilities and one-hot labels (a few unlabelled), ids
    some of which are XSS attempts, languages, turns, folds, truncation."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=N)
    labels = np.eye(3)[rng.integers(0, 3, size=N)]
    labels[[5, 17, 99]] = np.nan
    ids = [f"row-{i}" for i in range(N)]
    ids[:3] = XSS
    language = [("en", "de", None, XSS[0])[i % 4] for i in range(N)]
    frame = prediction_frame(
        ids,
        probs,
        labels=labels,
        turns=[1 + i % 3 for i in range(N)],
        truncated=[i % 4 == 0 for i in range(N)],
        fold=[i % 2 for i in range(N)],
        language=language,
    )
    return frame, probs, labels


def _fake_run(root, name: str, config: dict):
    """A run directory with `config` and a prediction table, no weights:
    what the run view reads."""
    run = root / name
    run.mkdir()
    (run / RUN_CONFIG).write_text(json.dumps(config))
    frame, probs, labels = _predictions()
    write_predictions(run / PREDICTIONS, frame)
    return run, probs, labels


@pytest.fixture(scope="module")
def runs(tmp_path_factory, serve_run, serve_dataset):
    root = tmp_path_factory.mktemp("run_view")
    config = json.loads((serve_run / RUN_CONFIG).read_text())
    fake, probs, labels = _fake_run(root, "fake", config)
    report = fake / "report"
    report.mkdir()
    (report / "index.html").write_text(
        f"<!DOCTYPE html><html><head>{GENERATOR_META}<style>b{{color:red}}</style></head>"
        '<body><img src="run1-loss.png" alt="loss"></body></html>'
    )
    (report / "run1-loss.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (report / "notes.txt").write_text("not a report file")
    (root / "secret.png").write_bytes(b"\x89PNG secret")
    (report / "link.png").symlink_to(root / "secret.png")
    bare = root / "bare"
    bare.mkdir()
    shutil.copyfile(serve_run / RUN_CONFIG, bare / RUN_CONFIG)
    catalog = Catalog.from_paths([serve_run, fake, bare], [serve_dataset])
    return {"catalog": catalog, "probs": probs, "labels": labels, "real": serve_run.name}


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(create_app(runs["catalog"])) as c:
        yield c


def _get(client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, (url, r.text[:300])
    return r.text


def _losses(page: str) -> list:
    return [float(x) for x in re.findall(r'data-loss="([0-9.eE+-]+)"', page)]


def test_row_losses_are_the_log_loss_of_each_row():
    _, probs, labels = _predictions()
    labelled = ~np.isnan(labels).any(axis=1)
    mine = -np.log(probs[labelled][labels[labelled] == 1])  # the true class's probability
    got = row_losses(probs[labelled], labels[labelled])
    assert np.allclose(got, mine)
    assert np.isclose(got.mean(), log_loss(probs[labelled], labels[labelled]))


def test_predictions_sorted_by_loss_worst_first(client, runs):
    probs, labels = runs["probs"], runs["labels"]
    labelled = ~np.isnan(labels).any(axis=1)
    loss = np.full(N, np.nan)
    loss[labelled] = -np.log(probs[labelled][labels[labelled] == 1])
    order = sorted(np.flatnonzero(labelled), key=lambda i: -loss[i])
    seen_ids, seen_losses = [], []
    for page in (1, 2, 3):
        text = _get(client, f"/runs/fake?page={page}")
        assert 'data-total="130"' in text
        seen_ids += re.findall(r'<td class="id">([^<]*)</td>', text)
        seen_losses += _losses(text)
    assert np.allclose(seen_losses, loss[order])
    ids = [f"row-{i}" for i in range(N)]
    ids[:3] = XSS
    assert seen_ids[: len(order)] == [str(escape(ids[i])) for i in order]
    assert seen_ids[len(order) :] == [str(escape(ids[i])) for i in (5, 17, 99)]  # unlabelled last


@pytest.mark.parametrize(
    "params, keep",
    [
        ("fold=1", lambda i, p, y: i % 2 == 1),
        ("label=b", lambda i, p, y: not np.isnan(y).any() and y.argmax() == 1),
        ("label=none", lambda i, p, y: np.isnan(y).any()),
        ("predicted=tie", lambda i, p, y: p.argmax() == 2),
        ("wrong=yes", lambda i, p, y: not np.isnan(y).any() and p.argmax() != y.argmax()),
        ("wrong=no", lambda i, p, y: not np.isnan(y).any() and p.argmax() == y.argmax()),
        ("language=de", lambda i, p, y: i % 4 == 1),
        ("truncated=yes", lambda i, p, y: i % 4 == 0),
        ("turns_min=2&turns_max=2", lambda i, p, y: i % 3 == 1),
        ("q=ROW-12", lambda i, p, y: f"row-{i}".startswith("row-12")),
        (
            "fold=0&wrong=yes&turns_min=3",
            lambda i, p, y: (
                i % 2 == 0 and i % 3 == 2 and not np.isnan(y).any() and p.argmax() != y.argmax()
            ),
        ),  # fmt: skip
    ],
)
def test_prediction_filters(client, runs, params, keep):
    probs, labels = runs["probs"], runs["labels"]
    want = sum(bool(keep(i, probs[i], labels[i])) for i in range(N))
    page = _get(client, f"/runs/fake?{params}")
    assert f'data-total="{want}"' in page
    assert 0 < want < N


def test_rows_open_in_compare_and_the_dataset(client, runs):
    page = _get(client, "/runs/fake?q=row-42")
    assert 'href="/compare?run=fake&amp;id=row-42"' in page
    dataset = next(iter(runs["catalog"].datasets))
    assert f'href="http://testserver/datasets/{dataset}?id=row-42"' in page


def test_the_real_run_lists_its_predictions_and_asks_for_a_report(client, runs):
    name = runs["real"]
    page = _get(client, f"/runs/{name}")
    losses = _losses(page)
    assert losses and losses == sorted(losses, reverse=True)
    assert 'id="no-report"' in page and "arena-fast report" in page
    assert 'id="settings"' in page and "tiny-gemma2" in page
    page = _get(client, "/runs/bare")
    assert 'id="no-predictions"' in page


def test_report_is_served_from_its_directory_only_without_scripts(client):
    page = _get(client, "/runs/fake")
    assert re.search(
        r'<iframe class="report" id="report" sandbox src="[^"]*/runs/fake/report/index.html"', page
    )
    r = client.get("/runs/fake/report/index.html")
    assert r.status_code == 200 and GENERATOR_META in r.text
    assert r.headers["content-security-policy"] == REPORT_CSP
    assert "script-src 'none'" in REPORT_CSP and "sandbox" in REPORT_CSP
    r = client.get("/runs/fake/report/run1-loss.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    outside = ("..%2Fsecret.png", "..%2F..%2Fsecret.png", "%2Fetc%2Fpasswd", "config.json")
    for name in ("notes.txt", "link.png", *outside, "valid_predictions.parquet"):
        assert client.get(f"/runs/fake/report/{name}").status_code == 404, name
    assert client.get("/runs/fake/report/../config.json").status_code == 404
    assert client.get("/runs/bare/report/index.html").status_code == 404


def test_ids_and_languages_are_escaped(client):
    for url in (
        "/runs/fake?q=script",
        "/runs/fake?q=onerror",
        "/runs/fake?q=javascript",
        "/runs/fake",
    ):
        page = _get(client, url)
        assert "<script>alert" not in page and "<img src=x" not in page
        assert 'href="javascript' not in page
    page = _get(client, "/runs/fake?q=script")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "id=%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in page  # the Compare link, encoded
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in _get(client, "/runs/fake?q=onerror")


@pytest.mark.parametrize(
    "url, status, says",
    [
        ("/runs/nope", 404, "no run named"),
        ("/runs/nope/report/index.html", 404, "no run named"),
        ("/runs/fake?fold=x", 400, "fold: 'x' is not a whole number"),
        ("/runs/fake?label=win", 400, "label: 'win' is not one of"),
        ("/runs/fake?predicted=none", 400, "predicted: 'none' is not one of"),
        ("/runs/fake?wrong=maybe", 400, "wrong"),
        ("/runs/fake?language=xx", 400, "language: 'xx' is not one of"),
        ("/runs/fake?turns_min=3&turns_max=1", 400, "turns_min is greater"),
        ("/runs/fake?page=0", 400, "page: 0 is outside"),
        ("/runs/fake?sort=id", 400, "sort: not a filter"),
    ],
)
def test_bad_requests(client, url, status, says):
    r = client.get(url)
    assert r.status_code == status
    assert says in r.text and "Traceback" not in r.text


def test_a_broken_prediction_table_is_a_500_that_says_why(tmp_path, serve_run):
    run = tmp_path / "broken"
    run.mkdir()
    shutil.copyfile(serve_run / RUN_CONFIG, run / RUN_CONFIG)
    (run / PREDICTIONS).write_bytes(b"not parquet")
    with TestClient(create_app(Catalog.from_paths([run], []))) as c:
        r = c.get("/runs/broken")
        assert r.status_code == 500
        assert PREDICTIONS in r.text and "Traceback" not in r.text
