"""`arena-fast serve` loads every run in the background from the server's
start (`serve.loads.Loads`, `create_app(preload=...)`, `--no-preload`):
the server answers at once, a request for a run still loading waits for it,
other runs do not, and a run that cannot load keeps its error without
stopping anything."""

from __future__ import annotations

import shutil
import threading
import time
import unittest.mock

import pytest

from strategies import train_extra

train_extra("starlette", "serve")

from starlette.testclient import TestClient  # noqa: E402

from arena_fast.serve import Catalog, create_app  # noqa: E402
from arena_fast.serve.loads import Loads  # noqa: E402


class Entry:
    def __init__(self, name):
        self.name = name


def lookup(name):
    if name not in ("a", "b", "bad"):
        raise KeyError(name)
    return Entry(name)


def test_loads_builds_once_and_keeps_errors():
    calls = []

    def build(entry):
        calls.append(entry.name)
        if entry.name == "bad":
            raise ValueError("no weights in bad")
        return entry.name.upper()

    loads = Loads(lookup, build)
    assert loads.state("a") == {"state": "not loaded", "error": None}
    assert loads.get("a") == "A" and loads.get("a") == "A"
    for _ in range(2):  # kept, not tried again
        with pytest.raises(ValueError, match="no weights in bad"):
            loads.get("bad")
    assert calls == ["a", "bad"]
    assert loads.state("a") == {"state": "ready", "error": None}
    assert loads.state("bad") == {"state": "failed", "error": "no weights in bad"}
    with pytest.raises(KeyError):
        loads.get("elsewhere")
    assert calls == ["a", "bad"]


def test_a_get_during_the_load_waits_for_it_and_other_names_do_not():
    release, started = threading.Event(), threading.Event()
    calls = []

    def build(entry):
        calls.append(entry.name)
        if entry.name == "a":
            started.set()
            assert release.wait(30)
        return entry.name

    loads = Loads(lookup, build)
    thread = loads.start(["a", "b"])
    assert started.wait(30)
    assert loads.state("a")["state"] == "loading"
    assert loads.get("b") == "b"  # not behind a's load
    got = []
    waiter = threading.Thread(target=lambda: got.append(loads.get("a")))
    waiter.start()
    time.sleep(0.2)
    assert got == [] and waiter.is_alive()  # waits for the load in progress
    release.set()
    waiter.join(30)
    thread.join(30)
    assert got == ["a"] and sorted(calls) == ["a", "b"]  # each built once


def test_the_background_thread_survives_a_failure():
    def build(entry):
        if entry.name == "bad":
            raise RuntimeError("cannot read bad")
        return entry.name

    loads = Loads(lookup, build)
    loads.start(["bad", "a"]).join(30)
    assert loads.state("bad") == {"state": "failed", "error": "cannot read bad"}
    assert loads.state("a") == {"state": "ready", "error": None}


def _wait_loaded(loads, name, seconds=120):
    deadline = time.monotonic() + seconds
    while loads.state(name)["state"] in ("loading", "not loaded"):
        assert time.monotonic() < deadline, "the preload never finished"
        time.sleep(0.05)
    return loads.state(name)


def test_the_server_preloads_its_runs_and_answers_at_once(serve_run, serve_dataset, tmp_path):
    train_extra("torch")
    from arena_fast.predict import Judge

    broken = tmp_path / "broken"
    shutil.copytree(serve_run, broken)
    (broken / "head.safetensors").write_bytes(b"not weights")
    app = create_app(Catalog.from_paths([serve_run, broken], [serve_dataset]))
    judges = app.state.context.judges
    with TestClient(app) as client:
        assert client.get("/").status_code == 200  # while the runs load
        assert _wait_loaded(judges, "run")["state"] == "ready"
        failed = _wait_loaded(judges, "broken")
        assert failed["state"] == "failed" and "head.safetensors" in failed["error"]
        assert isinstance(judges.get("run"), Judge)
        assert client.get("/").status_code == 200  # a failed run stops nothing
        page = client.get("/runs/broken").text  # its page says why
        assert 'id="load-error"' in page and "head.safetensors" in page
        assert 'id="load-error"' not in client.get("/runs/run").text
        body = {"prompt": ["q"], "response_a": ["river"], "response_b": ["stone"]}
        got = client.post("/api/compare", json={**body, "runs": ["run", "broken"]}).json()
        ok, bad = got["runs"]
        assert ok["result"]["verdict"] in ("model_a", "model_b", "tie")
        assert "head.safetensors" in bad["error"]
        # Compare scored with the preloaded Judge: the model is loaded once.
        loaded = judges.get("run")
        with unittest.mock.patch.object(
            loaded, "compare_many", wraps=loaded.compare_many
        ) as scored:
            client.post("/api/compare", json={**body, "runs": ["run"]})
        assert scored.call_count == 1


def test_no_preload_loads_nothing_until_asked(serve_run):
    app = create_app(Catalog.from_paths([serve_run]), preload=False)
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        time.sleep(0.2)
        assert app.state.context.judges.state("run") == {"state": "not loaded", "error": None}


@pytest.mark.parametrize("flags, preload", [([], True), (["--no-preload"], False)])
def test_the_cli_preloads_unless_told_not_to(monkeypatch, serve_run, flags, preload):
    uvicorn = pytest.importorskip("uvicorn")
    import arena_fast.serve as serve
    from arena_fast.cli import main

    seen = {}

    def fake_app(catalog, preload=True):
        seen["preload"] = preload
        return create_app(catalog, preload=False)

    class Server:  # returns at once instead of serving
        def __init__(self, config):
            pass

        def run(self, sockets):
            seen["served"] = True

    monkeypatch.setattr(serve, "create_app", fake_app)
    monkeypatch.setattr(uvicorn, "Server", Server)
    assert main(["serve", "--run", str(serve_run), "--port", "0", *flags]) == 0
    assert seen == {"preload": preload, "served": True}
