"""The dataset browser (see docs/serve.md, "Dataset browser"):

    GET /datasets/NAME                  rows, filtered and searched, 50 a page
                                        (fold, label, source, language,
                                        truncated, repaired, turns_min,
                                        turns_max, id (exact), q, text, page)
    GET /datasets/NAME/rows/N           row N (0-based, shard order, as
                                        `inspect --row N`): its fields and its
                                        encoded form in both orders (a separate-
                                        layout dataset: its A and B sides), cuts
                                        marked
    GET /datasets/NAME/dropped          dropped.parquet: rows per reason
                                        (reason, page)

The data is read by `tables.DatasetTable` and `dropped.DroppedTable`, one
of each per dataset, kept for the server's life. An unknown name or row is
a 404, a bad filter a 400 saying which."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import ArenaFastError, InputError
from .context import Context, OpenedOnUse
from .dropped import DroppedTable
from .query import PAGE_SIZE, warm_up
from .tables import DatasetTable


def _open_tables(path) -> tuple:
    """A dataset's rows and dropped rows (`tables.DatasetTable`, `dropped.DroppedTable`)."""
    table = DatasetTable(path)
    return table, DroppedTable(path, table.manifest)


def compare_url(**params) -> str:
    """A link to the Compare view (its URL contract: compare_views)."""
    return "/compare?" + urlencode(params)


def routes(ctx: Context) -> list[BaseRoute]:
    """This view's routes over `ctx.catalog`."""
    tables = OpenedOnUse(
        "dataset",
        ctx.catalog.dataset,
        lambda entry: _open_tables(entry.path),
    )
    if ctx.catalog.datasets:  # the first page need not pay for imports and compiling
        warm_up()
        for name in ("dataset.html", "dataset_row.html", "dropped.html"):
            ctx.templates.env.get_template(name)

    def dataset(request: Request) -> Response:
        name = request.path_params["name"]
        table, dropped = tables.get(name)
        facets = _reading(table.facets)  # a shard that cannot be read: a 500 saying why
        try:
            query = table.parse(request.query_params)
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        page = _reading(lambda: table.query(query))
        here = request.url_for("dataset", name=name)

        def link(**changes) -> str:
            return str(here.include_query_params(**query.params(**changes)))

        return ctx.page(
            request,
            "dataset.html",
            ds=name,
            table=table,
            facets=facets,
            query=query,
            page=page,
            page_size=PAGE_SIZE,
            prev=link(page=page.page - 1) if page.page > 1 else None,
            next=link(page=page.page + 1) if page.page < page.pages else None,
            more=link(page=page.page) if page.more else None,
            dropped=_reading(dropped.counts) if dropped.exists else None,
            compare_url=compare_url,
        )

    def dataset_row(request: Request) -> Response:
        name = request.path_params["name"]
        index = request.path_params["row"]
        table, _ = tables.get(name)
        if not 0 <= index < table.rows:
            raise HTTPException(
                404, f"dataset {name!r} has no row {index} (rows 0 to {table.rows - 1})"
            )
        row = _reading(lambda: table.row(index))
        return ctx.page(
            request,
            "dataset_row.html",
            ds=name,
            table=table,
            row=row,
            meta=_pretty(row.get("meta")),
            compare=compare_url(dataset=name, row=index),
            prev=index - 1 if index > 0 else None,
            next=index + 1 if index + 1 < table.rows else None,
        )

    def dataset_dropped(request: Request) -> Response:
        name = request.path_params["name"]
        table, dropped = tables.get(name)
        counts = _reading(dropped.counts)
        reason = request.query_params.get("reason") or None
        rows, pages, page = [], 1, 1
        if reason is not None:
            total = dict(counts).get(reason)
            if total is None:
                raise HTTPException(400, f"reason: {reason!r:.80} dropped no row of this dataset")
            pages = max(1, -(-total // PAGE_SIZE))
            page = _page_number(request.query_params.get("page", "1"), pages)
            start = (page - 1) * PAGE_SIZE
            rows = _reading(lambda: dropped.rows(reason, start, start + PAGE_SIZE))
        here = request.url_for("dataset_dropped", name=name)

        def link(**params) -> str:
            return str(here.include_query_params(**params))

        return ctx.page(
            request,
            "dropped.html",
            ds=name,
            table=table,
            exists=dropped.exists,
            counts=counts,
            reason=reason,
            rows=rows,
            page=page,
            pages=pages,
            link=link,
        )

    return [
        Route("/datasets/{name}", dataset, name="dataset"),
        Route("/datasets/{name}/rows/{row:int}", dataset_row, name="dataset_row"),
        Route("/datasets/{name}/dropped", dataset_dropped, name="dataset_dropped"),
    ]


def _reading(read):
    """`read()`, a dataset file that cannot be read being a 500 that says why."""
    try:
        return read()
    except ArenaFastError as exc:
        raise HTTPException(500, str(exc)) from None


def _page_number(raw: str, pages: int) -> int:
    try:
        page = int(raw)
    except ValueError:
        raise HTTPException(400, f"page: {raw!r:.40} is not a whole number") from None
    if not 1 <= page <= pages:
        raise HTTPException(400, f"page: {page} is outside [1, {pages}]")
    return page


def _pretty(meta):
    """A row's `meta` (JSON object text) indented, or as stored if not JSON."""
    if meta is None:
        return None
    try:
        return json.dumps(json.loads(meta), indent=2, ensure_ascii=False)
    except ValueError:
        return meta
