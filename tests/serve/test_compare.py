"""`arena-fast serve`, the Compare view (`arena_fast.serve.compare_views`):
the JSON API against `Judge.compare`, the HTML form without JavaScript, the
encoding view with and without a run, prefill from a dataset row, escaping,
names that never reach the file system, and 20 concurrent requests against
a live uvicorn server."""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from strategies import train_extra

train_extra("starlette", "serve")
train_extra("torch")

import polars as pl  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.predict import Judge, run_encoder  # noqa: E402
from arena_fast.serve import Catalog, create_app  # noqa: E402
from arena_fast.serve.compare import MAX_TURNS  # noqa: E402

XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)"]
LONG = " ".join(["garden river stone"] * 120)


def pair(**changes) -> dict:
    out = {
        "prompt": ["question one", "question two"],
        "response_a": ["river stone", "lamp zebra"],
        "response_b": ["cloud apple", "music paper"],
    }
    out.update(changes)
    return out


def api(client, body: dict, status: int = 200) -> dict:
    response = client.post("/api/compare", json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_the_api_answers_what_judge_compare_answers(serve_client, serve_run):
    body = pair()
    got = api(serve_client, {**body, "runs": ["run"]})
    assert got["pair"] == body
    [run] = got["runs"]
    want = Judge(serve_run).compare(body["prompt"], body["response_a"], body["response_b"])
    assert run["name"] == "run" and run["result"] == want
    # The probabilities in both orders, the swap-TTA average, the verdict, the flip.
    for key in ("original", "swapped", "verdict", "flip", "winner_model_a", "winner_tie"):
        assert key in run["result"]
    encoding = got["encodings"][run["encoding"]]
    assert encoding["max_length"] == 128
    original, swapped = encoding["orders"]["original"], encoding["orders"]["swapped"]
    assert original["length"] == want["tokens"][0] and swapped["length"] == want["tokens"][1]
    assert original["turns_kept"] == want["turns_kept"][0] and original["turns"] == 2


def test_the_encoding_explains_every_id_and_marks_the_cut(serve_client, serve_run):
    body = pair(prompt=["question one", LONG], response_a=["a", LONG], response_b=["b", "c"])
    got = api(serve_client, {**body, "runs": ["run"]})
    encoder = run_encoder(serve_run)
    for order, swap in (("original", False), ("swapped", True)):
        ex = got["encodings"]["run:run"]["orders"][order]
        want = encoder.encode([body["prompt"]], [body["response_a"]], [body["response_b"]], swap)
        assert ex["ids"] == want.to_lists()[0]
        assert ex["truncated"] and ex["length"] <= 128 < ex["full_length"]
        # The spans cover the ids in order, each decoded.
        assert ex["spans"][0]["start"] == 0 and ex["spans"][-1]["stop"] == ex["length"]
        for a, b in zip(ex["spans"], ex["spans"][1:]):
            assert a["stop"] == b["start"]
        assert any(s["kind"] == "marker" for s in ex["spans"])
        cut = [f for t in ex["turn_views"] for f in t["fields"] if f["cut"] and f["kept"]]
        assert cut and all(f["kept"] < f["tokens"] for f in cut)
        labels = [f["label"] for f in ex["turn_views"][-1]["fields"]]
        assert labels == (["Prompt", "A", "B"] if not swap else ["Prompt", "B", "A"])
    # The HTML form (no JavaScript) renders the same, the cut marked.
    page = serve_client.post("/compare", data={**body, "run": "run", "action": "compare"})
    assert page.status_code == 200
    assert 'data-kind="marker"' in page.text and 'class="field cut"' in page.text
    assert 'class="cut-flag"' in page.text
    assert page.text.count('class="order"') == 2


def test_the_form_scores_each_ticked_run_side_by_side(serve_run, serve_dataset, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(serve_run, broken)
    (broken / "head.safetensors").write_bytes(b"not weights")
    catalog = Catalog.from_paths([serve_run, serve_run, broken], [serve_dataset])
    assert list(catalog.runs) == ["run", "run-2", "broken"]
    with TestClient(create_app(catalog)) as client:
        got = api(client, {**pair(), "runs": ["run", "run-2", "broken"]})
        first, second, bad = got["runs"]
        assert first["result"] == second["result"]
        # One tokenizer and encoder config: one encoding, shown once for both.
        assert list(got["encodings"]) == ["run:run"]
        assert got["encodings"]["run:run"]["label"] == "run run, run run-2"
        assert "error" in bad and "head.safetensors" in bad["error"]
        page = client.post(
            "/compare", data={**pair(), "run": ["run", "run-2", "broken"], "action": "compare"}
        )
        html = page.text
        assert page.status_code == 200
        assert re.findall(r'class="run-result" data-run="([^"]+)"', html) == [
            "run",
            "run-2",
            "broken",
        ]
        assert html.count('class="verdict"') == 2 and html.count('class="run-error"') == 1
        values = re.findall(r'data-pass="average">.*?data-value="([^"]+)"', html, re.S)
        assert float(values[0]) == first["result"]["winner_model_a"]


def test_without_a_run_the_encoding_view_alone(serve_dataset, serve_run):
    catalog = Catalog.from_paths([], [serve_dataset])
    with TestClient(create_app(catalog)) as client:
        page = client.get("/compare")
        assert page.status_code == 200 and "No run given" in page.text
        assert re.findall(r'<option value="([^"]+)"', page.text) == ["data:ds", "demo"]
        for key in ("data:ds", "demo"):
            got = api(client, {**pair(), "runs": [], "encoder": key})
            assert got["runs"] == [] and list(got["encodings"]) == [key]
        # The dataset's encoder encodes as the dataset was built.
        ex = api(client, pair())["encodings"]["data:ds"]["orders"]["original"]
        want = load_dataset(serve_dataset).encoder().encode(*([v] for v in pair().values()))
        assert ex["ids"] == want.to_lists()[0]
        page = client.post("/compare", data={**pair(), "encoder": "demo", "action": "compare"})
        assert page.status_code == 200
        assert 'data-encoder="demo"' in page.text and 'id="verdicts"' not in page.text
        api(client, {**pair(), "encoder": "data:elsewhere"}, 404)
        api(client, {**pair(), "encoder": "/etc/passwd"}, 404)
    # A run's encoder, without scoring: no model is loaded for it.
    with TestClient(create_app(Catalog.from_paths([serve_run]))) as client:
        got = api(client, {**pair(), "encoder": "run:run"})
        assert got["encodings"]["run:run"]["max_length"] == 128


def test_a_dataset_row_opens_in_compare(serve_client, serve_dataset):
    source = pl.read_parquet(serve_dataset.parent / "ds.parquet")
    first = pq.read_table(sorted(serve_dataset.glob("data-*.parquet"))[0], columns=["id"])
    row_id = first.column("id")[3].as_py()
    want = source.filter(pl.col("id") == row_id).to_dicts()[0]
    kept = pq.read_table(sorted(serve_dataset.glob("data-*.parquet"))[0], columns=["turns_kept"])
    kept = kept.column("turns_kept")[3].as_py()
    for query in ("dataset=ds&row=3", f"dataset=ds&id={row_id}", f"run=run&id={row_id}"):
        page = serve_client.get(f"/compare?{query}")
        assert page.status_code == 200, query
        html = page.text
        assert f"<code>{row_id}</code>" in html
        for name in ("prompt", "response_a", "response_b"):
            texts = re.findall(rf'<textarea name="{name}" rows="\d">\n(.*?)</textarea>', html, re.S)
            # The turns the dataset kept (the newest), as they were written.
            assert texts == list(want[name])[-kept:], (query, name)
    assert serve_client.get("/compare?dataset=ds&row=100000").status_code == 404
    assert serve_client.get("/compare?dataset=ds&row=-1").status_code == 400
    assert serve_client.get("/compare?dataset=ds&id=nope").status_code == 404
    assert serve_client.get("/compare?dataset=nope&row=0").status_code == 404


def test_a_run_whose_dataset_is_not_served_says_so(serve_run):
    with TestClient(create_app(Catalog.from_paths([serve_run]))) as client:
        page = client.get("/compare?run=run&id=3")
        assert page.status_code == 404 and "--data" in page.text


def test_a_broken_run_opening_a_row_says_why(serve_run, serve_dataset, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(serve_run, broken)
    (broken / "head.safetensors").write_bytes(b"not weights")
    with TestClient(create_app(Catalog.from_paths([broken], [serve_dataset]))) as client:
        page = client.get("/compare?run=broken&id=3")
        assert page.status_code == 500 and "head.safetensors" in page.text


def test_adding_a_turn_without_javascript(serve_client):
    page = serve_client.post("/compare", data={**pair(), "action": "add_turn"})
    assert page.status_code == 200
    assert page.text.count('<fieldset class="turn">') == 3
    assert 'id="results"></div>' in page.text  # nothing scored yet


@pytest.mark.parametrize("where", ["prompt", "response_a", "response_b"])
def test_texts_come_back_escaped(serve_client, where):
    body = pair(**{where: ["the first turn", " ".join(XSS)]})  # the last turn is kept
    page = serve_client.post("/compare", data={**body, "run": "run", "action": "compare"})
    html = page.text
    assert page.status_code == 200
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript' not in html and "src=x" not in html.replace("&lt;img src=x", "")
    got = api(serve_client, {**body, "runs": ["run"]})
    assert got["pair"][where] == body[where]
    texts = [s["text"] for s in got["encodings"]["run:run"]["orders"]["original"]["spans"]]
    assert any("<script>" in t for t in texts)  # data, as JSON: the page's JS sets textContent


def test_run_names_are_made_safe_and_escaped(serve_run, tmp_path):
    runs = []
    for i, name in enumerate(XSS):
        path = tmp_path / str(i) / name.replace("/", "_")
        shutil.copytree(serve_run, path)
        runs.append(path)
    catalog = Catalog.from_paths(runs)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", name) for name in catalog.runs)
    with TestClient(create_app(catalog)) as client:
        for url in ("/", "/compare"):
            html = client.get(url).text
            assert "<script>alert" not in html and "<img src" not in html
            assert 'href="javascript' not in html


def test_the_page_runs_only_its_own_script(serve_client):
    page = serve_client.get("/compare")
    html = page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(re.search(r'src="[^"]+/static/compare\.js"', s) for s in scripts)
    assert "</script>" in html and re.search(r"<script[^>]*>[^<]+</script>", html) is None
    assert " style=" not in html and re.search(r"\son[a-z]+=", html) is None
    assert serve_client.get("/static/compare.js").status_code == 200


@contextmanager
def opened_files():
    """The paths `open` is called on while the block runs (an audit hook:
    it stays installed, and records only while a block is open)."""
    seen: list = []
    state = opened_files.__dict__.setdefault("state", {"on": None})
    if not state.get("hooked"):

        def hook(event, args):
            if event == "open" and state["on"] is not None:
                state["on"].append(str(args[0]))

        sys.addaudithook(hook)
        state["hooked"] = True
    state["on"] = seen
    try:
        yield seen
    finally:
        state["on"] = None


@pytest.mark.parametrize(
    "name", ["../run", "/etc/passwd", "run/../../x", "..", "%2e%2e", "nope", "RUN"]
)
def test_unknown_names_are_404_and_never_touch_the_file_system(serve_client, serve_run, name):
    api(serve_client, pair(runs=["run"]))  # everything the known run needs, loaded
    with opened_files() as seen:
        got = api(serve_client, {**pair(), "runs": [name]}, 404)
        assert "no run called" in got["error"]
        api(serve_client, {**pair(), "runs": ["run", name]}, 404)
        api(serve_client, {**pair(), "encoder": f"run:{name}"}, 404)
        page = serve_client.get("/compare", params={"run": name})
        assert page.status_code == 404
        page = serve_client.get("/compare", params={"dataset": name, "row": "0"})
        assert page.status_code == 404
    assert not [p for p in seen if "passwd" in p or ".." in p or str(serve_run.parent) in p]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"prompt": 3, "response_a": "a", "response_b": "b"}, 400, "prompt must be"),
        ({"prompt": ["p"] * (MAX_TURNS + 1)}, 400, "turns, at most"),
        ({"prompt": "p", "runs": "run"}, 400, "runs must be a list"),
        ([1, 2], 400, "expected an object"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(serve_client, body, status, message):
    assert message in api(serve_client, body, status)["error"]


def test_a_lone_surrogate_is_repaired_as_the_encoder_repairs_it(serve_client):
    body = b'{"prompt": "\\ud800 x", "response_a": "a", "response_b": "b", "runs": ["run"]}'
    got = serve_client.post(
        "/api/compare", content=body, headers={"content-type": "application/json"}
    )
    assert got.status_code == 200 and got.json()["pair"]["prompt"] == ["\ufffd x"]
    assert "error" not in got.json()["runs"][0]


def test_malformed_and_huge_bodies_are_refused(serve_client):
    bad = serve_client.post(
        "/api/compare", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    huge = serve_client.post("/api/compare", content=b"x" * (5 * 1024 * 1024))
    assert huge.status_code == 413


@contextmanager
def live_server(catalog):
    """`create_app(catalog)` under uvicorn on a free loopback port."""
    uvicorn = train_extra("uvicorn", "serve")
    config = uvicorn.Config(create_app(catalog), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.02)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


def test_twenty_concurrent_requests_all_succeed(serve_catalog):
    with live_server(serve_catalog) as url:
        bodies = [
            {**pair(response_a=["river", f"stone {i}"]), "runs": ["run"] if i % 2 else []}
            for i in range(20)
        ]
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda b: post(url + "/api/compare", b), bodies))
        assert [status for status, _ in answers] == [200] * 20
        for body, (_, got) in zip(bodies, answers):
            assert got["pair"]["response_a"] == body["response_a"]
            assert len(got["runs"]) == len(body["runs"])
        # Each answer is its own request's: the same as asked alone.
        assert post(url + "/api/compare", bodies[5])[1] == answers[5][1]
