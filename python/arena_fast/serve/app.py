"""The ASGI application: Starlette routes, Jinja2 templates with
autoescaping on (every text from data is escaped), static files, and headers
that keep a page from running anything it did not ship (a Content Security
Policy with no inline scripts).

Why these parts: Starlette is a small, well-kept ASGI toolkit (routing,
requests, responses, a test client); Jinja2 escapes HTML by default; uvicorn
is the standard ASGI server. No HTTP is parsed here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .catalog import Catalog
from .compare_views import routes as compare_routes
from .context import HERE, Context, templates
from .dataset_views import routes as dataset_routes
from .run_views import routes as run_routes

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response (pure ASGI middleware)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(catalog: Catalog, preload: bool = True) -> Starlette:
    """The web app over `catalog` (see `arena_fast.serve`). With `preload`,
    every run's `Judge` starts loading in a background thread when the server
    starts (`Context.judges`); the server answers at once."""
    ctx = Context(catalog, templates())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if preload and catalog.runs:
            ctx.judges.start(catalog.runs)
        yield

    async def home(request: Request) -> Response:
        return ctx.page(request, "home.html")

    routes = [Route("/", home, name="home")]
    for view_routes in (compare_routes, dataset_routes, run_routes):
        routes += view_routes(ctx)
    routes.append(Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"))
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.context = ctx  # the judges' states, for tests and tools
    return app
