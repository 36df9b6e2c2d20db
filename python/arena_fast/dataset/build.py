"""`build_dataset`: raw arena data -> a training-ready dataset directory
(docs/dataset.md). Each input streams through one pipeline, a chunk at a
time (`read.py`, `parts.py`):

    reader (sources) -> canonical frame -> Rows (Rust parse, keys, flags)
      -> cleaning policies (clean.py) -> Encoder.encode_rows -> a part (in
      memory, or spilled to an Arrow IPC file past `spill_bytes`)

then what needs every row at once is decided (duplicate ids,
de-duplication by source priority, folds: `dedup.py`) and the parts are
written out as parquet shards with their folds (`shards.py`), then the
dropped rows, the tokenizer, the manifest (`manifest.py`) and build.json.
The directory is built beside the target under a temporary name and renamed
into place only when `manifest.json` is written (`files.publishing`): an
interrupted build never leaves a directory that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ..files import publishing
from ..outputs import BUILD_LOG, DROPPED, MANIFEST, TOKENIZER
from ..tokenizer import Tokenizer
from .config import BuildConfig
from .dedup import decide
from .manifest import check_not_empty, make_manifest
from .parts import Builder
from .read import BuildInput, list_inputs, read_inputs
from .shards import write_dropped, write_shards

__all__ = ["build_dataset"]


def build_dataset(
    config: BuildConfig,
    out: Union[str, os.PathLike],
    *,
    overwrite: bool = False,
    progress: Optional[Callable[[dict], None]] = None,
    encoder: Any = None,
) -> dict:
    """Build the dataset directory `out`; returns its manifest.

    `encoder`: an `af.Encoder` to use instead of building one from the
    config's tokenizer / template / strategy / max_length / encoder fields
    (which are then not used: the manifest's `encoder` section records what
    was).

    `progress`, when given, is called with a dict at each step, as
    `train(log=...)` is (docs/dataset.md, "Progress"): `{"stage": "read",
    "input": i, "path": ..., "format": ...}` when input `i` starts, then
    `{"stage": "read", "input": i, "rows": n, "total": t}` after each chunk
    (`n` input rows read so far, `t` the rows expected: the demo's count, or
    an estimate from the bytes read, or None), `{"stage": "dedup"}` and
    `{"stage": "write"}`. Without it the build prints nothing."""
    config.validate()
    report = progress or _silent
    inputs = list_inputs(config)
    tokenizer = encoder.tokenizer.source if encoder is not None else config.tokenizer
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    with publishing(out, "dataset", overwrite=overwrite, inputs=_paths(inputs, tokenizer)) as work:
        with Builder(config, spill_dir=work / "spill", encoder=encoder) as builder:
            with _timed(seconds, "read_clean_encode"):
                read_inputs(builder, inputs, config, report)
                report({"stage": "dedup"})
                builder.drain()
                meta = builder.meta()
            with _timed(seconds, "dedup_folds"):
                kept, late_dropped = decide(meta, config)
            report({"stage": "write"})
            with _timed(seconds, "write_shards"):
                classes = builder.space.k if builder.space else 3
                shards = write_shards(builder.parts, builder.seq, kept, work, config, classes)
        dropped = write_dropped(builder.dropped + [late_dropped], work / DROPPED)
        tokenizer_sha256 = _write_tokenizer(builder.tokenizer, work / TOKENIZER)
        manifest = make_manifest(
            config, builder, tokenizer_sha256, inputs, kept, meta, dropped, shards, work
        )
        check_not_empty(manifest, dropped, config)
        # The manifest is deterministic; how long the build took is not, so
        # it goes to build.json (and the returned dict).
        timings = {k: round(v, 3) for k, v in seconds.items()}
        timings["total"] = round(time.perf_counter() - started, 3)
        log = {
            "seconds": timings,
            "threads": config.threads,
            # What the build was allowed to drop (not in the manifest: they
            # decide success, not bytes).
            "max_drop_share": config.max_drop_share,
            "allow_empty": config.allow_empty,
        }
        # Plain writes: `publishing` makes the work directory appear whole
        # (fsynced, then renamed), so its files need no rename of their own.
        (work / BUILD_LOG).write_bytes((json.dumps(log) + "\n").encode())
        (work / MANIFEST).write_bytes((json.dumps(manifest, indent=2) + "\n").encode())
    return dict(manifest, timings=timings)


def _silent(record: dict) -> None:
    pass


def _paths(inputs: list[BuildInput], tokenizer: Optional[str]) -> list[str]:
    """The files a build reads: `out` may be none of them, nor hold one."""
    paths = [inp.path for inp in inputs if inp.size is not None]
    if tokenizer and os.path.exists(tokenizer):
        paths.append(tokenizer)
    return paths


@contextlib.contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[stage] = time.perf_counter() - start


def _write_tokenizer(tok: Tokenizer, path: Path) -> str:
    """A byte copy of the tokenizer's file (its JSON when it has none) at
    `path`; returns its sha256."""
    if tok.source and os.path.isfile(tok.source):
        data = Path(tok.source).read_bytes()
    else:
        data = tok.to_str().encode("utf-8")
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
