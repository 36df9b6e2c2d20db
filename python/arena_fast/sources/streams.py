"""Bytes from a file: gzip / zstd told by their magic bytes and undone
while read (pyarrow's codecs, `pa.input_stream`: a dependency already, and
it reads zstd, which Python's standard library lacks before 3.14), the
compression-bomb bound every decompression is held to, temporary
decompressed copies, and the one-line errors that name the file when a
read fails."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tempfile
from pathlib import Path
from typing import IO, Any, Optional, Union

import pyarrow as pa

from ..errors import InputError
from ..text import shorten


def one_line(message: str, limit: int = 300) -> str:
    """A library error message (polars' run to many lines with hints) as one
    short line: the original error when polars quotes one, else the first
    paragraph, whitespace collapsed."""
    if "Original error:" in message:
        message = message.split("Original error:", 1)[1]
    else:
        message = message.strip().split("\n\n", 1)[0]
    message = " ".join(message.replace("`", "").split())
    return shorten(message, limit)


def input_error(path: Union[str, Path], exc: BaseException) -> InputError:
    """`exc` (from reading `path`) as a one-line InputError naming the file."""
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{path}: is a directory, not a file")
    return InputError(f"{path}: cannot read: {one_line(str(exc) or type(exc).__name__)}")


# A parquet column chunk may decompress to more than this only while it stays
# within PARQUET_MAX_EXPANSION times its stored size: text compresses a few
# times, while one value of 300 MB of repeated bytes fits in 12 KB and would
# be decoded whole (a page is decompressed at once) before any clip.
PARQUET_BOMB_BYTES = 64 << 20


PARQUET_MAX_EXPANSION = 100


# The compressions read, by magic bytes, and the suffixes they take.
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"))


COMPRESSED_SUFFIXES = (".gz", ".zst")


def compression(path: Union[str, Path]) -> Optional[str]:
    """ "gzip", "zstd" or None, from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise input_error(path, exc) from None
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def base_name(path: Union[str, Path]) -> str:
    """The lowercased file name without its .gz / .zst suffix."""
    name = Path(path).name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class _Raw(io.RawIOBase):
    """A pyarrow input stream as a raw Python stream (pyarrow's compressed
    streams have no readline)."""

    def __init__(self, stream: Any):
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


def open_binary(path: Union[str, Path]) -> IO[bytes]:
    """The file's bytes, decompressed while read when it is gzip or zstd."""
    codec = compression(path)
    try:
        if codec is None:
            return open(path, "rb")
        return io.BufferedReader(_Raw(pa.input_stream(str(path), compression=codec)), 1 << 16)
    except (OSError, pa.ArrowException) as exc:
        raise input_error(path, exc) from None


def read_bounded(path: Union[str, Path], stream: IO[bytes]) -> bytes:
    """All of `stream` (the decompressed bytes of `path`), refused past the
    compression-bomb bound of `check_parquet_expansion`."""
    limit = max(PARQUET_BOMB_BYTES, PARQUET_MAX_EXPANSION * os.path.getsize(path))
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _bomb(path)
    return data


def _bomb(path: Union[str, Path]) -> InputError:
    return InputError(
        f"{path}: decompresses to over {PARQUET_MAX_EXPANSION} times its size, past "
        f"{PARQUET_BOMB_BYTES >> 20} MiB: refused, as a compression bomb would be"
    )


def decompressed_copy(path: Union[str, Path], suffix: str) -> Optional[str]:
    """A temporary decompressed copy of a gzip / zstd file (None for a plain
    one), streamed to disk under the compression-bomb bound; the caller
    removes it (`remove_quietly`)."""
    if compression(path) is None:
        return None
    limit = max(PARQUET_BOMB_BYTES, PARQUET_MAX_EXPANSION * os.path.getsize(path))
    name = os.path.join(tempfile.gettempdir(), f"arena-fast-{os.getpid()}-{secrets.token_hex(8)}")
    name += suffix
    written = 0
    try:
        with open_binary(path) as src, open(name, "xb") as dst:
            while block := src.read(1 << 20):
                written += len(block)
                if written > limit:
                    raise _bomb(path)
                dst.write(block)
    except BaseException as exc:
        remove_quietly(name)
        if isinstance(exc, (OSError, pa.ArrowException)):
            raise input_error(path, exc) from None
        raise
    return name


def remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
