"""A built dataset read for browsing, a page at a time (no web code here).

`DatasetTable` opens a dataset by its manifest. A first page without a
filter reads only the shard holding its rows (the count is the manifest's).
The first filter reads, once, only the small columns filters need (fold,
labels, source, language, truncated, repairs and flags, turns, length) of
every shard into numpy arrays kept for the life of the server: a 1M-row
dataset costs about 20 MB and a filter is a mask. A page of rows reads its
text columns (id, models, metadata) from the shards that hold those rows
only, and a row's `input_ids` are read only when that row is shown or
decoded by a text search. Nothing reads a whole shard's ids to list rows.
Every read goes through `_columns`: a shard that cannot be read is an
`InputError` naming it.

The shards hold no texts, only ids: `text` search decodes the ids of the
rows the other filters keep, in order, a slice at a time, and stops once it
has the page (and one row more); its count of matches is a lower bound
until the scan reaches the end (`Page.exact`). `q` searches the columns
that are text (id, model names, language, category, meta) in full."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..dataset import dataset_space, read_manifest
from ..dataset.clean import METADATA_COLUMNS
from ..dataset.config import SIDE_B, SWAPPED, pair_suffix
from ..encoder import Template
from ..errors import InputError
from ..outputs import TOKENIZER
from ..row_view import FIELDS, SIDE_FIELDS, blocks, split_row
from ..tokenizer import Tokenizer
from .query import (
    NONE,
    PAGE_SIZE,
    Page,
    RowQuery,
    parse_choice,
    parse_int,
    parse_search,
    parse_yes_no,
)

SCAN_SECONDS = 1.0  # text search: decoding time spent per request at most
SCAN_CHUNK = 256  # text search: rows decoded between two looks at the clock
TEXT_COLUMNS = ("id", "model_a", "model_b", *METADATA_COLUMNS)
_SMALL = ("fold", "labels", "source", "truncated", "repairs", "flags", "turns", "length")
_SMALL += ("turns_kept",)
_SMALL_B = ("length" + SIDE_B, "truncated" + SIDE_B, "input_ids" + SIDE_B)  # separate layout


class DatasetTable:
    """One dataset, read a page at a time (see the module's docstring).
    Safe to share between a server's threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.space = dataset_space(self.manifest)
        self.rows = self.manifest["counts"]["rows"]
        self.swap = bool(self.manifest.get("swap"))
        # The separate layout: each row is two sequences, prompt + A
        # (`input_ids`) and prompt + B (`input_ids_b`).
        self.separate = pair_suffix(self.manifest) == SIDE_B
        # The tokenizer's own chat template: its pieces are named as such.
        self.chat = self.manifest["encoder"].get("chat_template") is not None
        self.files = [self.path / s["file"] for s in self.manifest["shards"]]
        self.starts = np.cumsum([0] + [s["rows"] for s in self.manifest["shards"]])
        self.template = Template(**self.manifest["encoder"]["template"])
        # (shard, columns, rows) of the latest text and ids reads: what a page cost
        self.reads: deque = deque(maxlen=1024)
        self._lock = threading.Lock()
        self._small: Optional[dict] = None
        self._language_counts: Optional[list] = None
        self._tokenizer: Optional[Tokenizer] = None
        self._cache: OrderedDict = OrderedDict()  # searches: q masks and text scans

    # -- the small columns, read once --------------------------------------------------
    @property
    def small(self) -> dict:
        """The filter columns of every row as numpy arrays (read on first use)."""
        with self._lock:
            if self._small is None:
                self._small = self._read_small()
            return self._small

    @property
    def small_read(self) -> bool:
        """Whether the small columns of every shard were read (the first
        filter reads them; a first page without one does not)."""
        return self._small is not None

    def _read_small(self) -> dict:
        """Every shard's small columns (read on a few threads: pyarrow and
        numpy release the GIL), the strings as codes into shared names."""
        threads = max(1, min(4, os.cpu_count() or 1, len(self.files)))
        with ThreadPoolExecutor(max_workers=threads) as pool:
            shards = list(pool.map(self._shard_small, range(len(self.files))))
        small: dict = {}
        for name in ("fold", "label", "truncated", "repaired", "turns", "turns_kept", "length"):
            small[name] = np.concatenate([s[name] for s in shards]) if shards else np.zeros(0)
        for name in ("source", "language"):
            names: dict = {}
            codes = []
            for shard in shards:
                indices, values = shard[name]
                mapping = [names.setdefault(v, len(names)) for v in values] + [-1]
                codes.append(np.asarray(mapping, dtype=np.int32)[indices])
            small[name] = np.concatenate(codes) if codes else np.zeros(0, np.int32)
            small[f"{name}_names"] = list(names)
        return small

    def _shard_small(self, i: int) -> dict:
        """The small columns of shard `i` as numpy arrays; `source` and
        `language` as (indices into the shard's values, -1 for null; values)."""
        side_b = list(_SMALL_B[:2]) if self.separate else []
        t = self._columns(i, [*_SMALL, "language", *side_b])
        has_language = "language" in t.column_names
        repairs = t.column("repairs").to_numpy().astype(np.int64)
        out = {
            "fold": t.column("fold").to_numpy().astype(np.int16),
            "label": self._classes(t.column("labels")),
            "truncated": t.column("truncated").to_numpy(zero_copy_only=False),
            "repaired": (repairs | t.column("flags").to_numpy()) != 0,
        }
        for name in ("turns", "turns_kept", "length"):
            out[name] = t.column(name).to_numpy().astype(np.int32)
        if self.separate:  # a row's tokens are both sides'; either side cut, it is cut
            out["length"] += t.column("length" + SIDE_B).to_numpy().astype(np.int32)
            out["truncated"] = out["truncated"] | t.column("truncated" + SIDE_B).to_numpy(
                zero_copy_only=False
            )
        out["source"] = _dictionary(t.column("source"))
        if has_language:
            out["language"] = _dictionary(t.column("language"))
        else:
            out["language"] = (np.full(t.num_rows, -1, dtype=np.int64), [])
        return out

    def _open(self, file: Path, i: int) -> pq.ParquetFile:
        try:
            pf = pq.ParquetFile(file, memory_map=True, read_dictionary=["source"])
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{file}: cannot read the shard: {exc}") from None
        want = self.manifest["shards"][i]["rows"]
        if pf.metadata.num_rows != want:
            raise InputError(f"{file}: {pf.metadata.num_rows} rows, the manifest says {want}")
        required = _SMALL + (_SMALL_B if self.separate else ())
        missing = [c for c in required if c not in pf.schema_arrow.names]
        if missing:
            raise InputError(f"{file}: not a dataset shard: no column {missing[0]!r}")
        return pf

    def _columns(self, i: int, columns: list) -> pa.Table:
        """Those of `columns` that shard `i` has (checked against the
        manifest); an InputError naming the shard when it cannot be read."""
        pf = self._open(self.files[i], i)
        try:
            names = [c for c in columns if c in pf.schema_arrow.names]
            return pf.read(columns=names, use_threads=False)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{self.files[i]}: cannot read the shard: {exc}") from None

    def _classes(self, labels: pa.ChunkedArray) -> np.ndarray:
        k = self.space.k
        arr = labels.combine_chunks()
        child = arr.values.slice(arr.offset * k, len(arr) * k)
        values = child.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, k)
        label = np.full(len(values), -1, dtype=np.int8)
        known = ~np.isnan(values).any(axis=1) & ~arr.is_null().to_numpy(zero_copy_only=False)
        label[known] = values[known].argmax(axis=1)
        return label

    def facets(self) -> dict:
        """What the filters can take, with the rows of each value: the
        sources from the small columns, or before they are read from the
        manifest's counts; the languages from the small columns, or from the
        language column alone."""
        s = self._small
        if s is not None:
            sources = _counted(s["source"], s["source_names"])
            languages = _counted(s["language"], s["language_names"])
        else:
            by_source = self.manifest["counts"]["by_source"].items()
            sources = sorted(((k, v) for k, v in by_source if v), key=_facet_order)
            languages = self._languages()
        return {
            "folds": list(range(self.manifest["folds"])),
            "labels": list(zip(self.space.keys, self.space.names)),
            "sources": sources,
            "languages": languages,
        }

    def _languages(self) -> list:
        """(language, rows) from the language column of every shard alone."""
        with self._lock:
            if self._language_counts is None:
                counts: dict = {}
                for i, shard in enumerate(self.manifest["shards"]):
                    table = self._columns(i, ["language"])
                    if "language" not in table.column_names:
                        counts[None] = counts.get(None, 0) + shard["rows"]
                        continue
                    column = table.column("language")
                    for item in pc.value_counts(column.combine_chunks()).to_pylist():
                        value = item["values"]
                        counts[value] = counts.get(value, 0) + int(item["counts"])
                self._language_counts = sorted(counts.items(), key=_facet_order)
            return self._language_counts

    # -- queries -------------------------------------------------------------------------
    def parse(self, params: Mapping[str, str]) -> RowQuery:
        """A `RowQuery` from URL parameters; InputError naming a bad one."""
        facets = self.facets()
        values: dict[str, Any] = {}
        known = {f.name for f in fields(RowQuery)}
        for name, raw in params.items():
            if name not in known:
                raise InputError(f"{name}: not a filter of this page")
            if raw == "":
                continue
            values[name] = self._value(name, raw, facets)
        query = RowQuery(**values)
        if None not in (query.turns_min, query.turns_max) and query.turns_min > query.turns_max:
            raise InputError("turns_min is greater than turns_max")
        return query

    def _value(self, name: str, raw: str, facets: dict) -> Any:
        if name == "fold":
            return parse_int(raw, name, 0, self.manifest["folds"] - 1)
        if name == "label":
            return parse_choice(raw, (*self.space.keys, NONE), name)
        if name == "source":
            return parse_choice(raw, [n for n, _ in facets["sources"]], name)
        if name == "language":
            return parse_choice(
                raw, [n for n, _ in facets["languages"] if n is not None] + [NONE], name
            )
        if name in ("truncated", "repaired"):
            return parse_yes_no(raw, name)
        if name in ("turns_min", "turns_max"):
            return parse_int(raw, name, 0, 1 << 30)
        if name == "page":
            return parse_int(raw, name, 1, 1 << 40)
        return parse_search(raw, name)

    def mask(self, query: RowQuery) -> np.ndarray:
        """The rows the filters and `q` keep (not the text search)."""
        s = self.small
        keep = np.ones(self.rows, dtype=bool)
        if query.fold is not None:
            keep &= s["fold"] == query.fold
        if query.label is not None:
            cls = -1 if query.label == NONE else self.space.keys.index(query.label)
            keep &= s["label"] == cls
        for name in ("source", "language"):
            value = getattr(query, name)
            if value is not None:
                names = s[f"{name}_names"]
                if name == "language" and value == NONE:
                    code = -1
                else:
                    code = names.index(value) if value in names else -2
                keep &= s[name] == code
        for name in ("truncated", "repaired"):
            value = getattr(query, name)
            if value is not None:
                keep &= s[name] == value
        if query.turns_min is not None:
            keep &= s["turns"] >= query.turns_min
        if query.turns_max is not None:
            keep &= s["turns"] <= query.turns_max
        if query.id:
            keep &= self._id_mask(query.id)
        if query.q:
            keep &= self._q_mask(query.q)
        return keep

    def query(self, query: RowQuery, page_size: int = PAGE_SIZE) -> Page:
        """The page `query.page` of the rows `query` keeps, in row order."""
        first = (query.page - 1) * page_size
        if query.params(page=1) or self._small is not None:
            candidates = np.flatnonzero(self.mask(query))
        else:  # the small columns are not needed (yet): a first page opens at once
            candidates = None
        if query.text:
            scan = self._scan(query, candidates, first + page_size + 1)
            found = scan.matches
            chosen = found[first : first + page_size]
            total, exact = len(found), scan.done
            extra = dict(scanned=scan.next, candidates=len(candidates))
        elif candidates is None:  # no filter: the first rows, the manifest's count
            chosen = list(range(first, min(first + page_size, self.rows)))
            total, exact, extra = self.rows, True, {}
        else:
            chosen = candidates[first : first + page_size].tolist()
            total, exact, extra = len(candidates), True, {}
        pages = max(1, -(-total // page_size))
        if not exact and len(found) > first + page_size:
            pages = max(pages, query.page + 1)
        return Page(self.page_rows(chosen), total, query.page, pages, exact, **extra)

    def page_rows(self, indices: list) -> list:
        """The rows `indices`: their small columns and their text columns
        (read from the shards holding them only)."""
        small = self._small_rows(indices)
        text = self._text_columns(indices)
        out = []
        for j, (i, row) in enumerate(zip(indices, small)):
            label = row.pop("label")
            row.update(
                index=int(i),
                label=self.space.keys[label] if label >= 0 else None,
                label_name=self.space.names[label] if label >= 0 else None,
            )
            row.update({name: values[j] for name, values in text.items()})
            out.append(row)
        return out

    def _small_rows(self, indices: list) -> list:
        """The small columns of rows `indices` (a dict each): from those
        read once, or before they are from the shards holding these rows."""
        scalars = ("fold", "label", "turns", "turns_kept", "length")
        flags = ("truncated", "repaired")

        def row(s: dict, i: int, source, language) -> dict:
            out = {name: int(s[name][i]) for name in scalars}
            out.update({name: bool(s[name][i]) for name in flags})
            return {**out, "source": source, "language": language}

        s = self._small
        if s is not None:
            return [
                row(s, i, _name(s["source_names"], s["source"][i]),
                    _name(s["language_names"], s["language"][i]))
                for i in indices
            ]  # fmt: skip
        out: list = [None] * len(indices)
        for shard, (where, local) in self._by_shard(indices).items():
            s = self._shard_small(shard)
            for pos, i in zip(where, local):
                source = _name(s["source"][1], s["source"][0][i])
                out[pos] = row(s, i, source, _name(s["language"][1], s["language"][0][i]))
        return out

    def _by_shard(self, indices: list) -> dict:
        """Row numbers grouped by shard: {shard: (positions in `indices`, local rows)}."""
        groups: dict = {}
        shards = np.searchsorted(self.starts, indices, side="right") - 1
        for pos, (i, shard) in enumerate(zip(indices, shards)):
            where, local = groups.setdefault(int(shard), ([], []))
            where.append(pos)
            local.append(int(i) - int(self.starts[shard]))
        return groups

    def _read(self, shard: int, columns: list, local: list) -> pa.Table:
        table = self._columns(shard, columns).take(pa.array(local))
        self.reads.append((shard, tuple(table.column_names), len(local)))
        return table

    def _text_columns(self, indices: list) -> dict:
        out = {name: [None] * len(indices) for name in TEXT_COLUMNS}
        for shard, (where, local) in self._by_shard(indices).items():
            table = self._read(shard, list(TEXT_COLUMNS), local)
            for name in table.column_names:
                for pos, value in zip(where, table.column(name).to_pylist()):
                    out[name][pos] = value
        return out

    # -- searches ------------------------------------------------------------------------
    def _cached(self, key, make):
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = make()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > 16:
                self._cache.popitem(last=False)
        return value

    def _q_mask(self, q: str) -> np.ndarray:
        """Rows whose id, model names or metadata hold `q` (any case)."""

        def make() -> np.ndarray:
            parts = []
            for shard in range(len(self.files)):
                table = self._columns(shard, list(TEXT_COLUMNS))
                self.reads.append((shard, tuple(table.column_names), table.num_rows))
                hit = np.zeros(table.num_rows, dtype=bool)
                for name in table.column_names:
                    found = pc.match_substring(table.column(name), q, ignore_case=True)
                    hit |= found.fill_null(False).to_numpy(zero_copy_only=False)
                parts.append(hit)
            return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)

        return self._cached(("q", q), make)

    def _id_mask(self, ident: str) -> np.ndarray:
        """Rows whose id is `ident`."""

        def make() -> np.ndarray:
            parts = []
            for shard in range(len(self.files)):
                column = self._columns(shard, ["id"]).column("id")
                self.reads.append((shard, ("id",), len(column)))
                parts.append(pc.equal(column, ident).fill_null(False).to_numpy())
            return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)

        return self._cached(("id", ident), make)

    def _scan(self, query: RowQuery, candidates: np.ndarray, want: int) -> _Scan:
        """The text search of `query` carried on until it has `want` matches,
        the end, or `SCAN_SECONDS` spent in this call."""
        scan = self._cached(("text", replace(query, page=1)), lambda: _Scan())
        with scan.lock:
            deadline = time.perf_counter() + SCAN_SECONDS
            needle = query.text.casefold()
            while not scan.done and len(scan.matches) < want:
                chunk = candidates[scan.next : scan.next + SCAN_CHUNK].tolist()
                if not chunk:
                    scan.done = True
                    break
                for i, text in zip(chunk, self._texts(chunk)):
                    if needle in text.casefold():
                        scan.matches.append(i)
                scan.next += len(chunk)
                scan.done = scan.next >= len(candidates)
                if time.perf_counter() > deadline:
                    break
            return scan

    def _texts(self, indices: list) -> list:
        """Rows `indices` decoded, for the text search: both sides of a
        separate-layout row (answer B is only in its B side)."""
        texts = [self.tokenizer.decode(ids.tolist()) for ids in self.ids_of(indices)]
        if self.separate:
            sides = self.ids_of(indices, SIDE_B)
            texts = [f"{a}\n{self.tokenizer.decode(b.tolist())}" for a, b in zip(texts, sides)]
        return texts

    # -- one row -------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Tokenizer:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = Tokenizer.from_file(self.path / TOKENIZER)
            return self._tokenizer

    def ids_of(self, indices: list, suffix: str = "") -> list:
        """The ids of rows `indices` as int32 arrays: of their first sequence,
        or with `suffix` of their second (`_swapped`: the A/B swap; `_b`:
        the B side of the separate layout)."""
        column = "input_ids" + suffix
        out: list = [None] * len(indices)
        for shard, (where, local) in self._by_shard(indices).items():
            values = self._read(shard, [column], local).column(column)
            for pos, value in zip(where, values.to_pylist()):
                out[pos] = np.frombuffer(value, dtype="<i4")
        return out

    def check_row(self, index: int) -> None:
        if not 0 <= index < self.rows:
            raise IndexError(f"row {index} is not in [0, {self.rows})")

    def row(self, index: int) -> dict:
        """Row `index` with its text columns, labels and, per sequence it has
        (its `original` order and `swapped` with --swap; its sides `a` and
        `b` in the separate layout), its encoded form split into turns."""
        self.check_row(index)
        shard = int(np.searchsorted(self.starts, index, side="right") - 1)
        local = index - int(self.starts[shard])
        columns = [*TEXT_COLUMNS, "source", "fold", "labels", "repairs", "flags", "turns"]
        for _, suffix, _ in self._sequences():
            columns += [f"{c}{suffix}" for c in ("length", "turns_kept", "truncated")]
            columns.append(f"full_length{suffix}")
        row = self._read(shard, columns, [local]).to_pylist()[0]
        row["index"] = index
        labels = row["labels"]
        row["labels_named"] = (
            None if labels is None else list(zip(self.space.names, [float(x) for x in labels]))
        )
        row["orders"] = [self._order(index, row, *seq) for seq in self._sequences()]
        return row

    def _sequences(self) -> list:
        """(name, column suffix, title) of each sequence a row holds."""
        if self.separate:
            return [
                ("a", "", "A side: the prompt with response A"),
                ("b", SIDE_B, "B side: the prompt with response B"),
            ]
        orders = [("original", "", "Original order")]
        if self.swap:
            orders.append(("swapped", SWAPPED, "Swapped order (B's answer first)"))
        return orders

    def _order(self, index: int, row: dict, name: str, suffix: str, title: str) -> dict:
        ids = self.ids_of([index], suffix)[0]
        enc = self.manifest["encoder"]
        fields = SIDE_FIELDS[name.upper()] if self.separate else FIELDS
        spans = split_row(
            ids,
            self.tokenizer,
            self.template,
            enc["bos_token_id"],
            enc["eos_token_id"],
            fields=len(fields),
        )
        swapped = suffix == SWAPPED
        models = (row["model_b"], row["model_a"]) if swapped else (row["model_a"], row["model_b"])
        if self.separate:  # one answer, that side's model
            models = (row["model_a"] if name == "a" else row["model_b"],)
        return {
            "name": name,
            "title": title,
            "swapped": swapped,
            "length": row[f"length{suffix}"],
            "full_length": row[f"full_length{suffix}"],
            "turns_kept": row[f"turns_kept{suffix}"],
            "truncated": row[f"truncated{suffix}"],
            "models": models,
            "blocks": blocks(self.tokenizer, ids, spans, fields, chat=self.chat),
        }


@dataclass
class _Scan:
    """A text search carried on across requests: the matches so far, the
    next candidate to decode, whether it reached the end."""

    matches: list = field(default_factory=list)
    next: int = 0
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _dictionary(column: pa.ChunkedArray) -> tuple:
    """A string column as (indices into its values, -1 for null; values)."""
    column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    indices = column.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return indices, column.dictionary.to_pylist()


def _name(names: list, code) -> Optional[str]:
    """The value a code stands for (None for -1, a null)."""
    return names[int(code)] if code >= 0 else None


def _facet_order(item: tuple) -> tuple:
    """Most rows first, then by value, None last."""
    return (-item[1], item[0] is None, item[0] or "")


def _counted(codes: np.ndarray, names: list) -> list:
    """(name, rows) per value, most rows first; (None, rows) for null ones."""
    counts = np.bincount(codes + 1, minlength=len(names) + 1)
    out = [(name, int(counts[i + 1])) for i, name in enumerate(names) if counts[i + 1]]
    if counts[0]:
        out.append((None, int(counts[0])))
    return sorted(out, key=_facet_order)
