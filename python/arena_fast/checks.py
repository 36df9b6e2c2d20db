"""Argument checks shared by the public functions (the start of one home for
them: integer, range and array checks with one convention)."""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["check_fits_int64"]


def check_fits_int64(name: str, array: np.ndarray) -> None:
    """An `InputError` naming the first row of an unsigned `array` past the
    int64 range (it would wrap to a negative in the cast)."""
    if array.dtype.kind == "u" and array.size and int(array.max()) >= 1 << 63:
        row = int(np.argmax(array >= np.uint64(1 << 63)))
        raise InputError(f"{name}: row {row} is {int(array[row])}, past the int64 range")
