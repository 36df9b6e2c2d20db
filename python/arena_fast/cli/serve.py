"""`arena-fast serve`: a local web page to compare answers and look inside
datasets and runs (needs the `[serve]` extra: `pip install arena-fast[serve]`).

    arena-fast serve --run RUN --data DATASET            # http://127.0.0.1:8765

It shows only the runs and datasets given here, each under its folder's
name, and starts loading every run's model at once, in the background
(`--no-preload`: on its first compare). It listens on the loopback
interface: another `--host` (one that other machines can reach) needs
`--allow-remote` as well, since the page shows your data and runs your
models to anyone who can reach it."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from ..errors import ConfigError
from ._args import HelpFormatter, Switch, int_at_least, thread_count


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
        "--torch-threads",
        type=thread_count,
        default=1,
        help="torch threads of the runs' scoring (a tiny model gains little from more, and "
        "on a busy machine a second thread can cost several times the time)",
    )
    p.add_argument(
        "--preload",
        action=Switch,
        default=True,
        help="load every --run in the background as soon as the server starts (the page "
        "answers at once; a compare that comes before its run has loaded waits for it); "
        "--no-preload loads a run on its first compare instead",
    )
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


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0: any free port), or a
    ConfigError that says why not (the port taken, the address not this
    machine's)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    """The page's address for a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(args: argparse.Namespace) -> int:
    check_host(args.host, args.allow_remote)
    if args.port > 65535:
        raise ConfigError(f"--port must be in [0, 65535], got {args.port}")
    try:
        import uvicorn

        from ..serve import Catalog, create_app
    except ImportError as exc:
        raise ConfigError(
            f"arena-fast serve needs the [serve] extra ({exc.name} is missing): "
            "pip install 'arena-fast[serve]'"
        ) from None
    catalog = Catalog.from_paths(args.runs, args.datasets)  # each directory checked first
    if catalog.runs:
        import torch  # the torch layer: only a server with runs scores with it

        torch.set_num_threads(args.torch_threads)  # for every request's thread
    sock = listen(args.host, args.port)
    if not is_loopback(args.host):
        print(f"arena-fast serve: listening on {args.host}, beyond this machine", file=sys.stderr)
    print(
        f"arena-fast serve: {url_of(sock)} ({len(catalog.runs)} runs, "
        f"{len(catalog.datasets)} datasets; Ctrl-C stops it)",
        file=sys.stderr,
        flush=True,
    )
    app = create_app(catalog, preload=args.preload)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands the Ctrl-C it stopped on back
        pass
    finally:
        sock.close()
    print("arena-fast serve: stopped", file=sys.stderr)
    return 0
