"""What every view shares: the catalog, the templates and page rendering."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .catalog import Catalog

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
        return self.templates.TemplateResponse(request, name, values, status_code=status_code)
