"""lmsys/chatbot_arena_conversations (the "33k" file) and
lmarena-ai/arena-human-preference-100k (the same layout with `language`,
`is_code`, `category_tag`, ...): parquet, a JSON array, JSON lines or CSV
(conversations and category_tag as JSON text in their cells).
Records are checked one by one in Python (33k rows take well under a
second), so a malformed conversation drops its record instead of failing
the file. `tie (bothbad)` is a tie (label space `abt`, the Kaggle
competition's convention); `language`, `category_tag` and the other per-row
fields are row metadata (`sources.lmarena`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Union

from ._common import (
    READ_DEFAULTS,
    Chunk,
    ReadOptions,
    check_columns,
    stream_records,
)
from .containers import (
    columns_of,
)
from .lmarena import METADATA_COLUMNS, add_battle

__all__ = ["read", "WINNERS"]

SOURCE = "arena33k"
REQUIRED = ("conversation_a", "conversation_b", "winner")
COLUMNS = ("question_id", "model_a", "model_b", *REQUIRED, *METADATA_COLUMNS)
# CSV: the conversations and the typed metadata (not the ids / timestamp text) as JSON.
CSV_JSON = (*REQUIRED[:2], "category_tag", "is_code", "evaluation_order", "tstamp", "turn")
WINNERS: dict[str, list[float]] = {
    "model_a": [1.0, 0.0, 0.0],
    "model_b": [0.0, 1.0, 0.0],
    "tie": [0.0, 0.0, 1.0],
    "tie (bothbad)": [0.0, 0.0, 1.0],
}


def read(
    path: Union[str, Path],
    *,
    chunk_rows: int = 16384,
    seed: int = 0,
    options: ReadOptions = READ_DEFAULTS,
) -> Iterator[Chunk]:
    """Chunks of canonical rows from an arena33k file. The prompt is the user
    turns of conversation_a (conversation_b repeats them), each side's
    answers its assistant turns; `winner` gives the labels. `seed` is unused
    (the file already fixes A and B)."""
    names = columns_of(path)
    check_columns(path, SOURCE, names, REQUIRED)
    return stream_records(
        path,
        COLUMNS,
        chunk_rows,
        SOURCE,
        lambda r, row, out: add_battle(
            r, row, out, names, id_column="question_id", winners=WINNERS
        ),
        csv_json=CSV_JSON,
    )
