"""A dataset row back into Compare's form: the turns of its prompt and
answers, as the dataset kept them.

A built dataset stores token ids, not text (docs/dataset.md), so the texts
are decoded from the row's ids (the original A/B order) and split into turns
and fields at the template's own pieces (headers, prefixes, suffixes:
`row_view.split_row`). What the budget cut stays cut (the kept head, the
marker, the kept tail) and dropped turns are absent; a text that itself
holds a template piece's ids may split at the wrong place.
A template that joins turns (`concat`) gives one turn per field."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..dataset import TOKENIZER, read_manifest
from ..dataset import read_row as read_stored_row
from ..encoder import Template
from ..row_view import split_row
from ..runs import dataset_sha256, read_bundle, trained_on
from ..tokenizer import Tokenizer
from .catalog import Catalog
from .compare import FIELDS

ROW_COLUMNS = ["id", "model_a", "model_b", "labels", "input_ids"]


def read_row(path: Path, index: Optional[int] = None, row_id: Optional[str] = None) -> dict:
    """Row `index` (0-based, shard order, as `inspect --row`) of the dataset
    at `path`, or the row whose id is `row_id`, with its `manifest`; an
    `InputError` when there is none (`dataset.load.read_row`)."""
    manifest = read_manifest(path)
    row = read_stored_row(path, manifest, index, row_id, ROW_COLUMNS)
    row["manifest"] = manifest
    return row


def turn_texts(ids: list, tokenizer, config: dict) -> dict:
    """The prompt and answers of a stored row (its ids, original order, as
    the dataset's encoder `config` wrote them), turn by turn: each field's
    kept text with its cut markers (`row_view.split_row`'s text and marker
    pieces), decoded."""
    template = Template(**config["template"])
    spans = split_row(ids, tokenizer, template, config["bos_token_id"], config["eos_token_id"])
    pieces: dict[tuple, list] = {}
    for span in spans:
        if span.kind in ("text", "marker") and span.turn is not None:
            pieces.setdefault((span.turn, span.field or 0), []).extend(ids[span.start : span.stop])
    turns = sorted({turn for turn, _ in pieces}) or [1]
    return {
        name: [tokenizer.decode(pieces.get((turn, field), [])) for turn in turns]
        for field, name in enumerate(FIELDS)
    }


def prefill(path: Path, index: Optional[int] = None, row_id: Optional[str] = None) -> dict:
    """The form's texts for a dataset row (see the module's docstring), with
    the row's `id`, `row`, `labels`, `models` and a `note`."""
    row = read_row(path, index, row_id)
    manifest = row.pop("manifest")
    ids = np.frombuffer(row.pop("input_ids"), dtype="<i4").tolist()
    fields = turn_texts(ids, Tokenizer.from_file(path / TOKENIZER), manifest["encoder"])
    return {
        **fields,
        "id": row["id"],
        "row": row["row"],
        "labels": row["labels"],
        "models": [row["model_a"], row["model_b"]],
        "note": (
            "decoded from the dataset's token ids: a cut text holds the marker, dropped "
            "turns are absent"
        ),
    }


def run_dataset(catalog: Catalog, run: str) -> Optional[str]:
    """The name of the catalog's dataset the run `run` was trained on (the
    same `dataset_sha256`), None when none of them is."""
    record = trained_on(read_bundle(catalog.run(run).path))
    want = record and record.get("dataset_sha256")
    if not want:
        return None
    for name, entry in catalog.datasets.items():
        if dataset_sha256(entry.path) == want:
            return name
    return None
