"""Argument checks shared by the public functions: integers, closed ranges,
bools, thread counts, one-dimensional integer arrays and step/row indices.

One convention for all of them:

- An integer is a Python `int` or a numpy integer scalar (`np.int64(3)`);
  a bool, Python's or numpy's, is not one unless `allow_bool=True`; floats,
  strings and other types are refused, never truncated.
- Ranges are closed, `[low, high]`, both ends given (usually the range of
  the Rust type the value goes to: `U64_MAX`, `I64_MAX`, ...).
- Messages name the argument and the value: `"{name} must be an integer,
  got {value!r}"`, `"{name} must be in [{low}, {high}], got {value}"`.
- A setting raises `ConfigError` (the default `error`), an array of data
  `InputError`; both are ValueErrors.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from .errors import ConfigError, InputError

__all__ = [
    "U64_MAX",
    "I64_MIN",
    "I64_MAX",
    "MAX_THREADS",
    "is_integer",
    "check_int",
    "check_optional_int",
    "check_bool",
    "check_threads",
    "check_index",
    "as_array",
    "check_int_array",
    "int64_array",
    "check_fits_int64",
]

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
# The most threads any entry point starts (the core's constant; the core
# refuses more too).
MAX_THREADS: int = _core.MAX_THREADS

_INT64 = np.dtype(np.int64)


def is_integer(value: Any, *, allow_bool: bool = False) -> bool:
    """An int or a numpy integer scalar; a bool (Python's or numpy's) only
    with `allow_bool`."""
    if isinstance(value, (bool, np.bool_)):
        return allow_bool
    return isinstance(value, (int, np.integer))


def check_int(
    name: str,
    value: Any,
    low: int,
    high: int,
    *,
    error: type[Exception] = ConfigError,
    allow_bool: bool = False,
) -> int:
    """`value` as a Python int in [low, high], else `error` naming `name`."""
    if type(value) is not int:  # the usual case first: collate runs this every step
        if not is_integer(value, allow_bool=allow_bool):
            raise error(f"{name} must be an integer, got {value!r}")
        value = int(value)
    if not low <= value <= high:
        raise error(f"{name} must be in [{low}, {high}], got {value}")
    return value


def check_optional_int(
    name: str, value: Any, low: int, high: int, *, error: type[Exception] = ConfigError
) -> Optional[int]:
    """None, or `value` as a Python int in [low, high]."""
    if value is None:
        return None
    if not is_integer(value):
        raise error(f"{name} must be None or an integer, got {value!r}")
    return check_int(name, value, low, high, error=error)


def check_bool(name: str, value: Any, *, error: type[Exception] = ConfigError) -> bool:
    """`value` (a bool or a numpy bool) as a Python bool; 0, 1, "yes" and
    other truthy values are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_threads(value: Any, name: str = "num_threads") -> Optional[int]:
    """The one check of a thread count (Encoder, rows_from_arrow,
    BuildConfig.threads, the CLI's --threads): None (one thread) or an int in
    [1, MAX_THREADS], else a ConfigError naming the option `name`."""
    return check_optional_int(name, value, 1, MAX_THREADS)


def check_index(noun: str, value: Any, n: int) -> int:
    """`value` as a position among `n` items (negative counts from the end),
    as a sequence's `__getitem__` takes it: a TypeError unless an integer, an
    IndexError naming the `noun` ("row", "step") past either end."""
    if not is_integer(value):
        raise TypeError(f"{noun} index must be an integer, got {value!r}")
    i = int(value)
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"{noun} {int(value)} out of range for {n} {noun}s")
    return i


def as_array(name: str, value: Any, what: str = "an array") -> np.ndarray:
    """`np.asarray(value)`; a ragged nested list, which numpy refuses with a
    bare ValueError, is an InputError `"{name} must be {what}: ..."`."""
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise InputError(f"{name} must be {what}: {exc}") from None


def check_int_array(name: str, values: Any) -> np.ndarray:
    """`values` as a one-dimensional array of any integer dtype (not bool),
    else an InputError naming `name`. An empty array passes whatever its
    dtype (`[]` is float64 to numpy)."""
    array = as_array(name, values, "a 1-D integer array")
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise InputError(f"{name} must be integers, got dtype {array.dtype}")
    return array


def int64_array(name: str, values: Any) -> np.ndarray:
    """`values` as a contiguous int64 array, as the core takes row indices
    and lengths: a one-dimensional integer array (`check_int_array`) whose
    values fit int64 (`check_fits_int64`). An int64 array passes as it is."""
    if type(values) is np.ndarray and values.dtype == _INT64 and values.ndim == 1:
        return values if values.flags.c_contiguous else np.ascontiguousarray(values)
    array = check_int_array(name, values)
    check_fits_int64(name, array)
    return np.ascontiguousarray(array, dtype=np.int64)


def check_fits_int64(name: str, array: np.ndarray) -> None:
    """An `InputError` naming the first row of an unsigned `array` past the
    int64 range (it would wrap to a negative in the cast)."""
    if array.dtype.kind == "u" and array.size and int(array.max()) >= 1 << 63:
        row = int(np.argmax(array >= np.uint64(1 << 63)))
        raise InputError(f"{name}: row {row} is {int(array[row])}, past the int64 range")
