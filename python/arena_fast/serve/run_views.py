"""The run view (see docs/serve.md, "Run view"):

    GET /runs/NAME                      the run's settings, its report (in a
                                        sandboxed frame) and its held-out
                                        predictions, worst log loss first,
                                        filtered (fold, label, predicted,
                                        wrong, language, truncated, turns_min,
                                        turns_max, q) and 50 a page; each row
                                        opens in Compare (/compare?run=NAME&id=ID)
    GET /runs/NAME/report/FILE          a file of the run's report
                                        (index.html or a PNG of RUN/report)

The report page is `arena-fast report`'s own HTML: it carries an inline
stylesheet and no script, so it is served with a policy of its own that
allows inline styles and images from here, and no script at all
(`REPORT_CSP`), and shown in a frame with `sandbox`. A file is looked up by
name in the report directory's listing; no request path reaches the file
system."""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import ArenaFastError, InputError
from .context import Context, OpenedOnUse
from .dataset_views import compare_url
from .query import PAGE_SIZE
from .run_tables import RunTable

REPORT_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)


def dataset_of(ctx: Context, settings: dict):
    """The catalog's name of the dataset the run was trained on, if given."""
    data = settings.get("data")
    if not data:
        return None
    try:
        path = Path(data).resolve()
    except (OSError, RuntimeError):
        return None
    for name, entry in ctx.catalog.datasets.items():
        if entry.path == path:
            return name
    return None


def routes(ctx: Context) -> list[BaseRoute]:
    """This view's routes over `ctx.catalog`."""
    runs = OpenedOnUse("run", ctx.catalog.run, lambda entry: RunTable(entry.path))

    def run(request: Request) -> Response:
        name = request.path_params["name"]
        table = runs.get(name)
        settings = table.settings()
        try:
            predictions = table.predictions()
        except ArenaFastError as exc:  # a prediction table that cannot be read
            raise HTTPException(500, str(exc)) from None
        try:
            query = table.parse(request.query_params)
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        rows, total = table.query(query) if predictions is not None else ([], 0)
        pages = max(1, -(-total // PAGE_SIZE))
        here = request.url_for("run", name=name)

        def link(**changes) -> str:
            return str(here.include_query_params(**query.params(**changes)))

        return ctx.page(
            request,
            "run.html",
            run=name,
            path=str(table.path),
            settings=settings,
            has_report=table.has_report(),
            predictions=predictions,
            classes=list(zip(predictions["space"].keys, predictions["space"].names))
            if predictions
            else [],
            query=query,
            rows=rows,
            total=total,
            pages=pages,
            prev=link(page=query.page - 1) if query.page > 1 else None,
            next=link(page=query.page + 1) if query.page < pages else None,
            dataset=dataset_of(ctx, settings),
            compare_url=compare_url,
        )

    def run_report(request: Request) -> Response:
        name = request.path_params["name"]
        table = runs.get(name)
        file = table.report_file(request.path_params["file"])
        if file is None:
            raise HTTPException(404, f"run {name!r} has no report file by that name")
        return FileResponse(file, headers={"Content-Security-Policy": REPORT_CSP})

    return [
        Route("/runs/{name}", run, name="run"),
        Route("/runs/{name}/report/{file}", run_report, name="run_report"),
    ]
