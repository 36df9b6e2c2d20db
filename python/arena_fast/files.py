"""The one writer of arena_fast's outputs: readers see the old output or the
whole new one, never a part; nothing but an output of ours is replaced; one
process writes an output at a time.

- `replacing(path)`: one file (a submission, a prediction table), written
  beside `path`, flushed to disk and renamed onto it; `write_bytes(path,
  data)` for bytes already in memory.
- `publishing(out, kind, ...)`: a directory output (a dataset, a merged run,
  a report), built in a work directory beside `out` and renamed into place.

    with publishing(out, "dataset", overwrite=overwrite, inputs=[csv]) as work:
        ...  # write the dataset's files into `work`

- `swap_in(work, path)`: the directory swap behind `publishing`, for a
  directory rotated inside an output (a run's checkpoint).
- `file_sha256(path)`: the digest that manifests and bundles record.
- `read_capped(path, max_bytes, what, error)`: a small file's bytes (a
  manifest, a settings file), refused when larger, never read whole.
- `check_file_output(path, overwrite=..., inputs=...)`: the same rules for
  a one-file output (a submission, a prediction table, a plot) before it is
  computed: an existing file is replaced only with `overwrite`, and never
  when it is a directory, a symbolic link, an input or inside one.
- `check_output` and `output_lock`, for an output written in place (a
  training run, whose checkpoints and metrics grow under `out`):

    out = check_output(config.out, "run", overwrite=..., inputs=[config.data])
    with output_lock(out):
        ...  # train into `out`

The rules (docs/dataset.md, "Where a build writes"):

- `out` may be used when it does not exist or is an empty directory. With
  `overwrite` it may also be a complete output of the same `kind`, made by
  arena_fast, and holding nothing else: `"dataset"` (a `manifest.json` of
  `build_dataset`; its shards, tokenizer, dropped rows and build log), `"run"`
  (a run's `config.json` or `bundle.json`, its weights, metrics, predictions,
  checkpoints and report; a merged run is a run too), `"merge"` (a run whose
  `bundle.json` lists `merged.json`), `"report"` (an `index.html` carrying the
  report's generator tag, and its PNGs). The outputs carry no extra marker
  file: each kind's own file, written last, already says it is complete,
  and outputs of earlier versions are recognised the same way. Anything
  else (a user's directory, a run where a dataset goes, a symbolic link, a
  file) is refused with a `ConfigError` naming the path and why, before any
  work is done.
- `out` is never one of the `inputs`, nor a directory holding one, nor `/`,
  the home directory or the working directory or one holding them.
- `output_lock(out)`: an exclusive `fcntl.flock` on `.NAME.lock` beside
  `out` for the whole write; a second writer of `out` fails at once with a
  `ConfigError` naming the holder's pid. The lock file goes when released.
- The publish re-checks `out` under the lock, renames an old output aside
  (`.NAME.old-PID`), the work directory (`.NAME.building-PID-*`) into place,
  and removes the old one. On any exception (KeyboardInterrupt and the
  SIGTERM the CLI turns into one included) the work directory is removed
  and the lock released.
- What killed processes left (`.NAME.building-PID-*`, `.NAME.old-PID`,
  `.NAME.tmp-PID-*` of `replacing`) is cleaned by the next writer of `NAME`
  when PID no longer runs; an old output whose replacement never arrived
  (a kill between the two renames) is put back.
- Durability: a file of `replacing` / `write_bytes` is fsynced before its
  rename and its directory after; `publishing` fsyncs every file of the
  work directory before the rename, so a published output survives a crash
  whole or not at all.
- Outputs honour the umask (directories 0o777, files 0o666 less the umask),
  as files written by hand would.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Union

from .errors import ConfigError
from .outputs import KINDS

__all__ = [
    "check_file_output",
    "check_output",
    "file_sha256",
    "fsync_tree",
    "output_lock",
    "publishing",
    "read_capped",
    "remove_abandoned",
    "replacing",
    "swap_in",
    "write_bytes",
]

PathLike = Union[str, os.PathLike]

# What a killed writer leaves beside NAME: `.NAME.KIND-PID[-RANDOM]`.
_LEFTOVER = re.compile(r"(building|old|tmp)-(\d+)(?:-\w+)?")
# Hidden entries of ours that may sit inside an output: temporaries and
# leftovers of the files and outputs written into it (a run's report).
_OURS_HIDDEN = re.compile(r"\..+\.(?:lock|tmp|(?:building|old|tmp|merging)-[\w-]+)")


# -- the checks -------------------------------------------------------------------


def _absolute(path: PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path)))


def _holds(outer: Path, inner: Path) -> bool:
    return outer == inner or outer in inner.parents


def _protected() -> list[tuple[Path, str]]:
    places = []
    try:
        places.append((Path(os.path.realpath(Path.home())), "the home directory"))
    except (KeyError, RuntimeError):
        pass
    places.append((Path(os.path.realpath(os.getcwd())), "the working directory"))
    return places


def check_output(
    out: PathLike,
    kind: str,
    *,
    overwrite: bool = False,
    inputs: Iterable[PathLike] = (),
    inputs_name: str = "inputs",
) -> Path:
    """Raise a `ConfigError` unless `out` may receive an output of `kind`
    (a key of `outputs.KINDS`) read from `inputs` (the rules in the module
    docstring); returns `out` as an absolute path. Reads nothing but `out`
    and its marker files."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    what, names_of = KINDS[kind]
    path = _absolute(out)
    real = Path(os.path.realpath(path))
    if real.parent == real:
        raise ConfigError(f"{out}: is the root directory; give the {kind} a directory of its own")
    for place, name in _protected():
        if _holds(real, place):
            raise ConfigError(
                f"{out}: is {name}" if real == place else f"{out}: holds {name} ({place})"
            )
    for inp in inputs:
        inner = Path(os.path.realpath(os.fspath(inp)))
        if real == inner:
            raise ConfigError(
                f"{out}: is one of the {inputs_name} being read; write the {kind} elsewhere"
            )
        if real in inner.parents:
            raise ConfigError(
                f"{out}: holds {inp}, one of the {inputs_name} being read; "
                f"write the {kind} elsewhere"
            )
    if path.is_symlink():
        raise ConfigError(f"{out}: is a symbolic link; give the directory it points to")
    if not path.exists():
        return path
    if path.is_dir() and not any(path.iterdir()):
        return path
    names = names_of(path) if path.is_dir() else None
    if names is None:
        raise ConfigError(
            f"{out}: exists and is not {what}; only an earlier {kind} written by "
            "arena-fast is ever replaced: choose another out"
        )
    if not overwrite:
        raise ConfigError(f"{out} already exists; pass overwrite=True (--overwrite)")
    foreign = sorted(
        p.name for p in path.iterdir() if p.name not in names and not _OURS_HIDDEN.fullmatch(p.name)
    )
    if foreign:
        raise ConfigError(
            f"{out}: holds {foreign[0]!r}, which is not part of the {kind}; refusing to "
            "replace it: move it away or choose another out"
        )
    return path


def check_file_output(
    out: PathLike,
    *,
    overwrite: bool = False,
    inputs: Iterable[PathLike] = (),
    inputs_name: str = "inputs",
) -> Path:
    """Raise a `ConfigError` unless the one-file output `out` may be
    written: it is not a directory or a symbolic link, not one of `inputs`
    nor inside one (a dataset or run directory being read), and, when it
    exists, `overwrite` says to replace it. Returns `out` as an absolute
    path. Checked before any work, so a refusal costs nothing."""
    path = _absolute(out)
    real = Path(os.path.realpath(path))
    for inp in inputs:
        inner = Path(os.path.realpath(os.fspath(inp)))
        if _holds(inner, real):
            where = "is" if real == inner else f"is inside {inp},"
            raise ConfigError(
                f"{out}: {where} one of the {inputs_name} being read; write elsewhere"
            )
    if path.is_symlink():
        raise ConfigError(f"{out}: is a symbolic link; give the file it points to")
    if path.is_dir():
        raise ConfigError(f"{out}: is a directory; give a file path")
    if path.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass overwrite=True (--overwrite)")
    return path


# -- one writer -------------------------------------------------------------------


@contextmanager
def output_lock(out: PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of `out` (`.NAME.lock` beside it; its parent
    is created) for the block; yields `out` as an absolute path. Raises a
    `ConfigError` at once when another process (or another block of this
    one) holds it."""
    path = _absolute(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"another arena-fast process is writing {out} (pid {holder}); "
                "wait for it to finish or choose another out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # A holder removes the file as it lets go: the lock taken may be of
        # a file no longer there, which would not exclude the next writer.
        try:
            held = os.stat(lock)
            mine = os.fstat(fd)
            if (held.st_dev, held.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        try:
            os.unlink(lock)
        finally:
            os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_abandoned(out: PathLike) -> None:
    """Delete what killed writers of `out` left beside it
    (`.NAME.building-PID-*`, `.NAME.old-PID`, `.NAME.tmp-PID-*`) when PID no
    longer runs; a live process's are left alone. An old output whose
    replacement never arrived (`out` missing) is put back instead."""
    path = _absolute(out)
    for left in path.parent.glob(f".{glob.escape(path.name)}.*"):
        found = _LEFTOVER.fullmatch(left.name[len(path.name) + 2 :])
        if not found or _alive(int(found[2])):
            continue
        if found[1] == "old" and not os.path.lexists(path):
            os.replace(left, path)
        elif left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)
        else:
            left.unlink(missing_ok=True)


def _fresh_name(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(directory: PathLike) -> None:
    """Flush every regular file under `directory`, then each directory, to
    disk: what a rename that publishes the directory needs first."""
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                _fsync_file(path)
        _fsync_dir(Path(root))


def swap_in(work: PathLike, path: PathLike, *, old: PathLike | None = None) -> None:
    """The directory `work` renamed onto `path`: an empty directory is
    replaced in the rename itself; an existing `path` first steps aside to
    `old` (by default `.NAME.old-PID`, which `remove_abandoned` puts back if
    the process dies before the new one is in place) and goes once the new
    one is in place. The parent directory is fsynced after."""
    work, path = Path(work), Path(path)
    aside = None
    if os.path.lexists(path) and not (path.is_dir() and not any(path.iterdir())):
        aside = Path(old) if old is not None else path.with_name(f".{path.name}.old-{os.getpid()}")
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside)
        os.replace(path, aside)
    try:
        os.replace(work, path)
    except BaseException:
        if aside is not None:
            os.replace(aside, path)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(path.parent)


@contextmanager
def publishing(
    out: PathLike,
    kind: str,
    *,
    overwrite: bool = False,
    inputs: Iterable[PathLike] = (),
    inputs_name: str = "inputs",
) -> Iterator[Path]:
    """Check `out` (`check_output`), lock it (`output_lock`), clean what
    killed writers left (`remove_abandoned`) and yield a new work directory
    beside it; when the block ends, check `out` again and rename the work
    directory into place. When the block raises (or the publish is
    refused), the work directory is removed and `out` is untouched."""
    inputs = list(inputs)

    def check() -> Path:
        return check_output(out, kind, overwrite=overwrite, inputs=inputs, inputs_name=inputs_name)

    check()
    with output_lock(out) as path:
        remove_abandoned(path)
        check()  # another writer may have published while this one started
        work = _fresh_name(path, "building")
        try:
            os.mkdir(work, 0o777)
            yield work
            fsync_tree(work)
            check()
            swap_in(work, path)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise


@contextmanager
def replacing(path: PathLike) -> Iterator[Path]:
    """A new empty file beside `path` (its parent is created) to write to;
    flushed to disk and renamed onto `path` when the block ends, removed
    when it raises. Its name, `.NAME.tmp-PID-*`, lets a later call clean it
    after a kill.

        with replacing("out/submission.csv") as tmp:
            frame.write_csv(tmp)
    """
    path = _absolute(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(path)
    while True:
        tmp = _fresh_name(path, "tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes(path: PathLike, data: bytes) -> None:
    """`data` as the whole new content of `path`, atomically and durably
    (`replacing`)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def file_sha256(path: PathLike) -> str:
    """The sha256 of a file's bytes (read in 4 MB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def read_capped(path: PathLike, max_bytes: int, what: str, error: type[Exception]) -> bytes:
    """The bytes of the small file `path` (a manifest, a settings file),
    never more than `max_bytes + 1` of them read: `error` naming the path
    when it cannot be read or holds more (`what` it should have been, for
    that message: "a settings file")."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(f"{path}: larger than {max_bytes} bytes; not {what}")
    return data
