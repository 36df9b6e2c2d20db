"""The compare view's routes (built by its owner; see `arena_fast.serve`)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from .context import Context


def routes(ctx: Context) -> list[BaseRoute]:
    """This view's routes over `ctx.catalog`."""
    return []
