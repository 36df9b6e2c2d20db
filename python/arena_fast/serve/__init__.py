"""`arena-fast serve`: a local web app beside training (the `[serve]` extra).

Three views over the runs and datasets named on the command line, never any
other file: Compare (a pair typed in, scored by each run in both orders, and
its encoded input with what the budget cut), the dataset browser and the run
view (the report and the prediction table, worst errors first).

Layout: `catalog` names what was given (requests address runs and datasets
by these names only); `app` builds the ASGI application (Starlette, Jinja2
templates that escape by default, uvicorn to serve it); one module per view
(`compare_views`, `dataset_views`, `run_views`) contributes its routes."""

from __future__ import annotations

from .app import create_app
from .catalog import Catalog

__all__ = ["Catalog", "create_app"]
