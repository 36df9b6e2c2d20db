"""What a build reads, and how: the inputs of a `BuildConfig` (files, or the
demo rows), streamed a chunk at a time through a reader thread that cleans
each chunk while the main thread encodes the one before, their sha256
computed on a thread beside."""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..files import file_sha256
from ..sources import parse_input, read
from ..sources.demo import SOURCE as DEMO_SOURCE
from ..sources.demo import demo_chunks
from .config import BuildConfig
from .parts import Builder


@dataclass
class BuildInput:
    """One input of a build: its index in `BuildConfig.inputs`, its path
    (`synth:ROWS:SEED` for the demo rows) and format, and for a file its
    size and, once read, its sha256. `detected`: why the format was chosen
    when detected (`sources.Detection.reason`), None when given
    (PATH:FORMAT, which --format gives) and for the demo rows."""

    index: int
    path: str
    format: str
    size: Optional[int] = None
    sha256: Optional[str] = None
    detected: Optional[str] = None


def list_inputs(config: BuildConfig) -> list[BuildInput]:
    """The config's inputs, their formats detected where not given; the
    demo rows when it names none."""
    if not config.inputs:
        return [BuildInput(0, f"{DEMO_SOURCE}:{config.demo_rows}:{config.seed}", DEMO_SOURCE)]
    inputs = []
    for i, spec in enumerate(config.inputs):
        parsed = parse_input(str(spec))
        size = os.path.getsize(parsed.path)
        inputs.append(BuildInput(i, parsed.path, parsed.format, size, detected=parsed.detected))
    return inputs


def read_inputs(
    builder: Builder, inputs: list[BuildInput], config: BuildConfig, report: Callable[[dict], None]
) -> None:
    """Every input through `builder`, in order; sets each file's sha256."""
    # Hash the inputs beside the work (hashlib releases the GIL).
    hasher = ThreadPoolExecutor(max_workers=1)
    hashes = {
        inp.index: hasher.submit(file_sha256, inp.path) for inp in inputs if inp.size is not None
    }
    try:
        for inp in inputs:
            _read_input(builder, inp, config, report)
        for inp in inputs:
            if inp.index in hashes:
                inp.sha256 = hashes[inp.index].result()
    finally:
        hasher.shutdown(wait=True)


def _read_input(
    builder: Builder, inp: BuildInput, config: BuildConfig, report: Callable[[dict], None]
) -> None:
    """One input's chunks cleaned on the reader thread and encoded here,
    reporting the rows read (docs/dataset.md, "Progress")."""
    start = {"stage": "read", "input": inp.index}
    report({**start, "path": inp.path, "format": inp.format})
    total: Optional[float]
    if inp.format == DEMO_SOURCE:
        chunks = demo_chunks(config.demo_rows, config.seed, config.chunk_rows)
        total = float(config.demo_rows)
    else:
        chunks = read(
            inp.path,
            inp.format,
            chunk_rows=config.chunk_rows,
            seed=config.seed,
            options=config.read_options(),
        )
        total = None
    clean = functools.partial(builder.clean, inp.index)
    rows_read, bytes_read = 0, 0
    for chunk, ready in _prefetch(_ramp(chunks), clean):
        builder.encode(ready)
        rows_read += len(chunk.rows) + len(chunk.dropped)
        if inp.size:
            # Rows in the file, estimated from the bytes per row so far.
            bytes_read += chunk.rows.estimated_size()
            if bytes_read:
                total = max(float(rows_read), inp.size * rows_read / bytes_read)
        report({**start, "rows": rows_read, "total": total})


def _ramp(chunks: Iterator[Any], first: int = 1024) -> Iterator[Any]:
    """The first chunk cut into small pieces (1024, 2048, ... rows), so the
    encoder starts while the reader thread prepares the rest."""
    it = iter(chunks)
    head = next(it, None)
    if head is None:
        return
    start, size = 0, first
    dropped = head.dropped  # with the first piece
    while len(head.rows) - start > size:
        piece = head.slice(start, size)
        piece.dropped, dropped = dropped, dropped.clear()
        yield piece
        start += size
        size *= 2
    piece = head.slice(start)
    piece.dropped = dropped
    yield piece
    yield from it


def _prefetch(
    chunks: Iterator[Any], prepare: Callable[[Any], Any], depth: int = 2
) -> Iterator[tuple]:
    """Read and prepare the next chunks on a thread while the current one is
    encoded (polars and the core release the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for c in chunks:
                if stop.is_set():
                    return
                q.put((c, prepare(c)))
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    t = threading.Thread(target=run, name="arena-fast-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except Exception:
                t.join(timeout=0.05)
