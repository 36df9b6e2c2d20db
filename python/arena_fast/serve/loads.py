"""Each run's scorer, loaded once per server: `Loads`, one value per
catalog name built by a function of its entry, in the background from the
server's start or on first use, with a lock per name and the error kept;
`load_judge`, the builder of a run's `Judge`. `Context.judges` (the pages)
and `Workbench` (Compare) share one `Loads`, so each run's model is loaded
once. No starlette here: `Workbench` works without a server."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Callable, Optional

from .catalog import Entry

__all__ = ["Loads", "load_judge"]


def load_judge(entry: Entry) -> Any:
    """The run `entry`'s `Judge` (imports the torch layer: seconds, the first
    time)."""
    from ..predict import Judge  # the torch layer, on first use

    return Judge(entry.path)


class Loads:
    """One value per catalog name (a run's `Judge`), built once by
    `build(lookup(name))` and kept for the server's life: in the background
    from the server's start (`start`) or on first use (`get`).

    Each name loads under its own lock: a `get` while that name loads waits
    for it, other names do not. What building raised (any `Exception`) is kept
    and raised again by every `get`, never tried again and never raised in the
    loading thread, so a run that cannot load never stops the server."""

    def __init__(self, lookup: Callable[[str], Entry], build: Callable[[Entry], Any]):
        self.lookup, self.build = lookup, build
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._done: dict[str, tuple[bool, Any]] = {}  # name -> (ok, value or exception)
        self._loading: set[str] = set()

    def _name_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(name, threading.Lock())

    def get(self, name: str) -> Any:
        """`name`'s value, built now if no one has (waiting for a load in
        progress); raises what building raised. `KeyError` for a name the
        catalog does not have, before anything is built."""
        entry = self.lookup(name)
        with self._name_lock(name):
            if name not in self._done:
                with self._lock:
                    self._loading.add(name)
                try:
                    self._done[name] = (True, self.build(entry))
                except Exception as exc:  # kept: every request for it says why
                    self._done[name] = (False, exc)
                finally:
                    with self._lock:
                        self._loading.discard(name)
            ok, value = self._done[name]
        if not ok:
            raise value
        return value

    def start(self, names: Iterable[str]) -> threading.Thread:
        """Loads `names` one after the other in a daemon thread (started, and
        returned); a name that fails keeps its error and the next one loads."""
        names = list(names)

        def load_all() -> None:
            for name in names:
                try:
                    self.get(name)
                except Exception:  # kept by get, shown where the run is used
                    pass

        thread = threading.Thread(target=load_all, name="arena-fast-preload", daemon=True)
        thread.start()
        return thread

    def state(self, name: str) -> dict[str, Optional[str]]:
        """`{"state": "ready" | "failed" | "loading" | "not loaded", "error":
        the message when failed, else None}`, without waiting."""
        with self._lock:
            loading = name in self._loading
            done = self._done.get(name)
        if done is None:
            return {"state": "loading" if loading else "not loaded", "error": None}
        ok, value = done
        return {"state": "ready", "error": None} if ok else {"state": "failed", "error": str(value)}
