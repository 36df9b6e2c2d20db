"""What every view shares: the catalog, the templates and page rendering.

Every page gets `catalog` and `nav`: the links of the top bar (Compare,
each dataset, each run), each to the route of that name when a view module
defines it: `compare`, `dataset` (path parameter `name`) and `run` (path
parameter `name`). A route not (yet) defined gives no link.

`Context.judges` holds each run's scorer (`arena_fast.predict.Judge`), one
per run for the server's life (`Loads`): `create_app` starts loading every
run in a background thread when the server starts (`preload=True`, the
CLI's default; `--no-preload` turns it off), so the first compare does not
pay for importing torch and loading the model; a request for a run still
loading waits for it, and a run that failed keeps its error for every
request (`Loads.get`, `Loads.state`; every page gets `run_loads`, each
run's state)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import NoMatchFound
from starlette.templating import Jinja2Templates

from ..errors import ArenaFastError
from .catalog import Catalog, Entry
from .loads import Loads, load_judge

HERE = Path(__file__).resolve().parent


def templates() -> Jinja2Templates:
    """The views' templates (`serve/templates`), autoescaping every `.html`."""
    return Jinja2Templates(directory=str(HERE / "templates"))


@dataclass
class Context:
    """What every view needs: the catalog, the templates and each run's
    `Judge` (`judges`: loaded once, in the background from the server's start
    or on first use)."""

    catalog: Catalog
    templates: Jinja2Templates
    judges: Loads = field(init=False)

    def __post_init__(self) -> None:
        self.judges = Loads(self.catalog.run, load_judge)

    def page(self, request: Request, name: str, status_code: int = 200, **values) -> Response:
        """Render the template `name` with `values` (escaped), and `catalog`,
        `nav` and `run_loads` (each run's `Loads.state`)."""
        values.setdefault("catalog", self.catalog)
        values.setdefault("nav", self.nav(request))
        values.setdefault(
            "run_loads", {name: self.judges.state(name) for name in self.catalog.runs}
        )
        return self.templates.TemplateResponse(request, name, values, status_code=status_code)

    def nav(self, request: Request) -> list[dict]:
        """The top bar's links: `label`, `url` (a path), `kind` (compare,
        dataset, run) and `name`."""
        items = [("compare", "Compare", "compare", {})]
        items += [("dataset", name, "dataset", {"name": name}) for name in self.catalog.datasets]
        items += [("run", name, "run", {"name": name}) for name in self.catalog.runs]
        links = []
        for kind, label, route, params in items:
            try:
                url = request.app.url_path_for(route, **params)
            except NoMatchFound:
                continue
            name = params.get("name")
            links.append({"kind": kind, "label": label, "url": str(url), "name": name})
        return links


class OpenedOnUse:
    """What the views read of each run or dataset (its tables), opened from
    its catalog entry on first use and kept for the server's life, one per
    name: `lookup(name)` is the catalog's (a `KeyError` is a 404 naming the
    `kind`), `open(entry)` builds it (an `ArenaFastError` is a 500 with its
    message, and is tried again next time)."""

    def __init__(self, kind: str, lookup: Callable[[str], Entry], open: Callable[[Entry], Any]):
        self.kind, self.lookup, self.open = kind, lookup, open
        self._lock = threading.Lock()
        self._opened: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        try:
            entry = self.lookup(name)
        except KeyError:
            raise HTTPException(404, f"no {self.kind} named {name!r}") from None
        with self._lock:
            if name not in self._opened:
                try:
                    self._opened[name] = self.open(entry)
                except ArenaFastError as exc:
                    raise HTTPException(500, str(exc)) from None
            return self._opened[name]
