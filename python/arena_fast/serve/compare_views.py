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

from starlette.routing import BaseRoute

from .context import Context


def routes(ctx: Context) -> list[BaseRoute]:
    """This view's routes over `ctx.catalog`."""
    return []
