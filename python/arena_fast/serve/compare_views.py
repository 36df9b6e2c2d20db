"""The Compare view: a prompt (one or more turns) and answers A and B, scored
by each given run in both orders, and the encoded input as the model sees it.

URL contract (other views link here; keep these stable):

    GET  /compare                                  the empty form
    GET  /compare?dataset=NAME&row=N               prefilled from row N (0-based,
                                                   shard order, as `inspect --row N`)
                                                   of the dataset NAME
    GET  /compare?dataset=NAME&id=ID               the same, by the row's id
    GET  /compare?run=NAME&id=ID                   the row ID of the dataset the
                                                   run NAME was trained on (that
                                                   dataset must be given too, with
                                                   --data), scored by run NAME
    ...&run=NAME (repeatable)                      the runs ticked (default: all)
    POST /compare                                  the form (HTML, no JS needed):
                                                   prompt, response_a, response_b
                                                   (repeated fields: one per turn),
                                                   run (repeatable; none: encoding
                                                   only), encoder (for no run)
    POST /api/compare                              JSON {prompt, response_a,
                                                   response_b (str or list of turns),
                                                   runs: [names], encoder: name}
                                                   -> JSON (see `compare.compare`)

Names are those of `ctx.catalog` (`url_for` of the routes named
"compare" and "api_compare" builds these); an unknown name is a 404."""

from __future__ import annotations

import json
from typing import Optional

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import ArenaFastError, InputError, TokenizerError
from .compare import FIELDS, MAX_CHARS, MAX_TURNS, Pair, Workbench, read_pair
from .context import Context
from .prefill import prefill, run_dataset

# The largest request body read (the texts' bound, `MAX_CHARS`, in UTF-8, and room).
MAX_BODY = 4 * MAX_CHARS + 65536


class Refused(Exception):
    """A request refused with `status` and a message for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def routes(ctx: Context) -> list[BaseRoute]:
    """This view's routes over `ctx.catalog`."""
    bench = Workbench(ctx.catalog, ctx.judges)
    trained: dict = {}  # run name -> the served dataset it was trained on (read_bundle hashes)

    async def page(request: Request) -> Response:
        try:
            if request.method == "POST":
                form = await _form(request)
                values = _form_values(ctx, bench, form)
                if form.get("action") == "add_turn":
                    values["pair"] = _with_turn(values["pair"])
                else:
                    try:
                        values["result"] = await _compare(
                            bench, values["pair"], values["runs"], values["encoder"]
                        )
                    except Refused as exc:  # the form keeps what was typed
                        return ctx.page(
                            request, "compare.html", exc.status, **values, error=str(exc)
                        )
            else:
                values = await run_in_threadpool(_query_values, ctx, bench, request, trained)
        except Refused as exc:
            return ctx.page(
                request, "compare.html", exc.status, **_blank(ctx, bench), error=str(exc)
            )
        return ctx.page(request, "compare.html", **values)

    async def api(request: Request) -> Response:
        try:
            body = await _body(request)
            try:
                data = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise Refused(400, f"not JSON: {exc}") from None
            pair = _pair(data)
            runs = _run_names(ctx, data.get("runs", []))
            encoder = _encoder_key(bench, data.get("encoder"))
            result = await _compare(bench, pair, runs, encoder)
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return JSONResponse(result)

    return [
        Route("/compare", page, methods=["GET", "POST"], name="compare"),
        Route("/api/compare", api, methods=["POST"], name="api_compare"),
    ]


async def _compare(bench: Workbench, pair: Pair, runs: list, encoder: Optional[str]) -> dict:
    """`bench.compare` in the thread pool; an error of the encoding view
    alone (no run: a run's own error shows in its place) is refused with its
    message: 400 for the texts, 500 for what was served."""
    try:
        return await run_in_threadpool(bench.compare, pair, runs, encoder)
    except (InputError, TokenizerError) as exc:
        raise Refused(400, str(exc)) from None
    except ArenaFastError as exc:
        raise Refused(500, str(exc)) from None


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) past `MAX_BODY` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise Refused(413, f"the request is over {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(413, f"the request is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request):
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit() or int(declared) > MAX_BODY:
        raise Refused(413, f"a form must say its length, at most {MAX_BODY} bytes")
    return await request.form(max_files=0, max_fields=4 * MAX_TURNS + 16)


def _pair(values) -> Pair:
    try:
        return read_pair(values)
    except ArenaFastError as exc:
        raise Refused(400, str(exc)) from None


def _run_names(ctx: Context, names) -> list[str]:
    """The runs asked for, each one of the catalog's (404 otherwise: a name
    never reaches the file system)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Refused(400, "runs must be a list of run names")
    for name in names:
        if name not in ctx.catalog.runs:
            raise Refused(404, f"no run called {name!r} is served")
    return list(dict.fromkeys(names))


def _encoder_key(bench: Workbench, key) -> Optional[str]:
    if key is None or key == "":
        return None
    if not isinstance(key, str) or key not in dict(bench.encoder_choices()):
        raise Refused(404, f"no encoder called {key!r} is served")
    return key


def _form_values(ctx: Context, bench: Workbench, form) -> dict:
    return {
        **_blank(ctx, bench),
        "pair": _pair({name: form.getlist(name) for name in FIELDS}),
        "runs": _run_names(ctx, form.getlist("run")),
        "encoder": _encoder_key(bench, form.get("encoder")),
    }


def _with_turn(pair: Pair) -> Pair:
    if len(pair.prompt) >= MAX_TURNS:
        raise Refused(400, f"at most {MAX_TURNS} turns")
    return Pair(*(list(getattr(pair, name)) + [""] for name in FIELDS))


def _blank(ctx: Context, bench: Workbench) -> dict:
    """The empty form: one turn, every run ticked."""
    return {
        "pair": Pair([""], [""], [""]),
        "runs": list(ctx.catalog.runs),
        "encoder": None,
        "choices": bench.encoder_choices(),
        "max_turns": MAX_TURNS,
    }


def _query_values(ctx: Context, bench: Workbench, request: Request, trained: dict) -> dict:
    """The form for `GET /compare`, prefilled from a dataset row when the
    query names one (see the module's docstring)."""
    query = request.query_params
    runs = query.getlist("run")
    for name in runs:
        if name not in ctx.catalog.runs:
            raise Refused(404, f"no run called {name!r} is served")
    values = _blank(ctx, bench)
    if runs:
        values["runs"] = list(dict.fromkeys(runs))
    dataset = query.get("dataset")
    if dataset is None and runs and (query.get("id") is not None or query.get("row") is not None):
        if runs[0] not in trained:
            try:
                trained[runs[0]] = run_dataset(ctx.catalog, runs[0])
            except ArenaFastError as exc:  # a run whose files changed: say so
                raise Refused(500, f"run {runs[0]}: {exc}") from None
        dataset = trained[runs[0]]
        if dataset is None:
            raise Refused(
                404,
                f"the dataset run {runs[0]!r} was trained on is not served: start "
                "`arena-fast serve` with --data DATASET to open its rows",
            )
    if dataset is None:
        return values
    if dataset not in ctx.catalog.datasets:
        raise Refused(404, f"no dataset called {dataset!r} is served")
    row, row_id = query.get("row"), query.get("id")
    if row is not None and not (row.isdigit() and len(row) < 19):
        raise Refused(400, f"row must be a row number, got {row!r}")
    if row is None and row_id is None:
        raise Refused(400, "give the row (row=N or id=ID)")
    try:
        filled = prefill(
            ctx.catalog.dataset(dataset).path,
            int(row) if row is not None else None,
            row_id if row is None else None,
        )
    except ArenaFastError as exc:
        raise Refused(404, f"dataset {dataset}: {exc}") from None
    values["pair"] = Pair(*(filled[name] for name in FIELDS))
    values["source"] = {"dataset": dataset, **{k: filled[k] for k in ("id", "row", "labels")}}
    values["source"]["models"], values["source"]["note"] = filled["models"], filled["note"]
    return values
