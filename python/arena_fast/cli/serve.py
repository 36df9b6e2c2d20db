"""`arena-fast serve`: a local web page to compare answers and look inside
datasets and runs (needs the `[serve]` extra: `pip install arena-fast[serve]`).

    arena-fast serve --run RUN --data DATASET            # http://127.0.0.1:8765

It shows only the runs and datasets given here, each under its folder's
name. It listens on the loopback interface: another `--host` (one that other
machines can reach) needs `--allow-remote` as well, since the page shows your
data and runs your models to anyone who can reach it."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from ..errors import ConfigError
from ._args import HelpFormatter, Switch, int_at_least


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a local web app: compare answers, browse datasets, read runs",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--run",
        dest="runs",
        action="append",
        default=[],
        metavar="RUN",
        help="a run directory written by `arena-fast train` (repeatable)",
    )
    p.add_argument(
        "--data",
        dest="datasets",
        action="append",
        default=[],
        metavar="DATASET",
        help="a dataset directory written by `arena-fast build-dataset` (repeatable)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int_at_least(0), default=8765, help="the port (0: any free)")
    p.add_argument(
        "--allow-remote",
        action=Switch,
        help="allow a --host that is not a loopback address",
    )
    p.set_defaults(run=run)


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback `host` unless `allow_remote`."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"--host {host} can be reached from other machines, which could then read your "
            "data and run your models; pass --allow-remote as well to mean it"
        )


def run(args: argparse.Namespace) -> int:
    check_host(args.host, args.allow_remote)
    try:
        import uvicorn

        from ..serve import Catalog, create_app
    except ImportError as exc:
        raise ConfigError(
            f"arena-fast serve needs the [serve] extra ({exc.name} is missing): "
            "pip install 'arena-fast[serve]'"
        ) from None
    catalog = Catalog.from_paths(args.runs, args.datasets)
    if not is_loopback(args.host):
        print(f"arena-fast serve: listening on {args.host}, beyond this machine", file=sys.stderr)
    uvicorn.run(create_app(catalog), host=args.host, port=args.port, log_level="warning")
    return 0
