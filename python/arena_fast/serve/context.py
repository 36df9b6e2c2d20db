"""What every view shares: the catalog, the templates and page rendering.

Every page gets `catalog` and `nav`: the links of the top bar (Compare,
each dataset, each run), each to the route of that name when a view module
defines it: `compare`, `dataset` (path parameter `name`) and `run` (path
parameter `name`). A route not (yet) defined gives no link."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import NoMatchFound
from starlette.templating import Jinja2Templates

from ..errors import ArenaFastError
from .catalog import Catalog, Entry

HERE = Path(__file__).resolve().parent


def templates() -> Jinja2Templates:
    """The views' templates (`serve/templates`), autoescaping every `.html`."""
    return Jinja2Templates(directory=str(HERE / "templates"))


@dataclass
class Context:
    """What every view needs: the catalog and the templates."""

    catalog: Catalog
    templates: Jinja2Templates

    def page(self, request: Request, name: str, status_code: int = 200, **values) -> Response:
        """Render the template `name` with `values` (escaped)."""
        values.setdefault("catalog", self.catalog)
        values.setdefault("nav", self.nav(request))
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
