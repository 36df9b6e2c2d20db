"""Shared fixtures of the `arena-fast serve` tests: a small built dataset and a
tiny run trained on it (one step: the tests check what the pages show of a
run, not how well it learned), made once per session.

    serve_dataset  keyword rows (1-2 turns, both A/B orders, 2 folds,
                   max_length 128) built into a dataset directory
    serve_run      a run trained one step on `serve_dataset` (fold 0), with
                   its valid_predictions.parquet
    serve_catalog  an `arena_fast.serve.Catalog` of the two
    serve_client   a Starlette `TestClient` over `create_app(serve_catalog)`

The view tests skip without the `[serve]` extra (a failure under CI=true)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategies import train_extra


@pytest.fixture(scope="session")
def serve_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="session")
def serve_dataset(serve_root: Path) -> Path:
    from keyword_rows import build_rows, keyword_rows

    rows = keyword_rows(60, 0, max_turns=2)
    return build_rows(rows, serve_root, "ds", max_length=128, folds=2, swap=True)


@pytest.fixture(scope="session")
def serve_run(serve_root: Path, serve_dataset: Path) -> Path:
    torch = train_extra("torch")
    train_extra("transformers")
    from arena_fast.train import TrainConfig, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = serve_root / "run"
        train(
            TrainConfig(
                data=str(serve_dataset), epochs=1, max_steps=1, max_tokens=2048, out=str(run)
            )
        )
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session")
def serve_catalog(serve_run: Path, serve_dataset: Path):
    train_extra("starlette", "serve")
    from arena_fast.serve import Catalog

    return Catalog.from_paths([serve_run], [serve_dataset])


@pytest.fixture(scope="session")
def serve_client(serve_catalog):
    from starlette.testclient import TestClient

    from arena_fast.serve import create_app

    with TestClient(create_app(serve_catalog)) as client:
        yield client
