"""What a page of the dataset browser or the run view asks for: the query
parameters parsed and checked (a bad one is an `InputError` naming it, which
the views answer with a 400), the query and the page it gives."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import pyarrow as pa

from ..errors import InputError

PAGE_SIZE = 50
MAX_SEARCH = 200  # characters of a search
NONE = "none"  # the filter value of "no label" / "no language"


@dataclass(frozen=True)
class RowQuery:
    """What a page of rows shows: filters (None: any), searches, the page."""

    fold: Optional[int] = None
    label: Optional[str] = None  # a class key of the label space, or NONE
    source: Optional[str] = None
    language: Optional[str] = None  # a language, or NONE
    truncated: Optional[bool] = None
    repaired: Optional[bool] = None
    turns_min: Optional[int] = None
    turns_max: Optional[int] = None
    id: str = ""  # exactly this id
    q: str = ""
    text: str = ""
    page: int = 1

    def params(self, **changes) -> dict:
        """The query as URL parameters (those set), with `changes`."""
        out = {}
        for f in fields(self):
            value = changes.get(f.name, getattr(self, f.name))
            if value is None or value == "" or (f.name == "page" and value == 1):
                continue
            out[f.name] = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        return out


@dataclass
class Page:
    """A page of rows: each a dict of its columns and `index` (its row
    number); `total` matches (a lower bound unless `exact`); `scanned` of
    `candidates` rows decoded by a text search, which has `more` to search
    when it stopped (for time) before it filled this page."""

    rows: list
    total: int
    page: int
    pages: int
    exact: bool = True
    scanned: int = 0
    candidates: int = 0

    @property
    def more(self) -> bool:
        return not self.exact and self.scanned < self.candidates and self.pages <= self.page


def warm_up() -> None:
    """pyarrow imports pandas (when it is installed) the first time it
    converts a column to numpy, which costs a third of a second or more:
    done when the server starts rather than by its first page."""
    pa.array([0]).to_numpy()


def parse_choice(value: str, allowed, name: str) -> str:
    if value not in allowed:
        shown = ", ".join(sorted(str(a) for a in allowed)[:20])
        raise InputError(f"{name}: {value!r:.60} is not one of: {shown}")
    return value


def parse_int(value: str, name: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"{name}: {value!r:.40} is not a whole number") from None
    if not lo <= n <= hi:
        raise InputError(f"{name}: {n} is outside [{lo}, {hi}]")
    return n


def parse_yes_no(value: str, name: str) -> bool:
    return parse_choice(value, ("yes", "no"), name) == "yes"


def parse_search(value: str, name: str) -> str:
    if len(value) > MAX_SEARCH:
        raise InputError(f"{name}: at most {MAX_SEARCH} characters")
    return value.strip()
