"""Synthetic Chatbot Arena rows in the Kaggle ``train.csv`` format.

Pure Python (no compiled code) and deterministic: the same ``(n, seed)``
gives the same rows, and ``write_csv`` the same bytes. The label follows what
the text shows (``prefs``): an answer that refuses loses to one that answers,
a truncated or off-topic answer loses to a complete one, two refusals (or two
good answers) tie, with about 10% label noise, symmetric in A and B; so a
small model learns from the rows (``preferences=False`` gives the earlier
rows, whose label barely depends on the text). The rows follow the
public statistics of the real 57k-row file (turns, characters, labels) and
carry its quirks at small but testable rates, so readers, encoders and
tokenizers can be exercised without downloading anything:

- ``null`` entries (``[null]`` on one side, on both sides, a ``null`` turn);
- empty responses spelled ``[]``, ``[""]``, ``["",""]`` or whitespace;
- identical A and B responses (some labelled as a win);
- prompts repeated across rows (a few prompts tens of times for large ``n``);
- ragged turn lists (a response list longer or shorter than the prompt list);
- lone surrogate escapes (``\\ud83d`` without its pair) in the JSON text;
- special-token strings (``<eos>``, ``<end_of_turn>``, ...) inside user text.

The text columns are JSON lists of strings written like the real file: pure
ASCII (``\\uXXXX`` escapes, emoji as surrogate pairs), compact separators and
escaped slashes (``\\/``). All text comes from the word lists and templates
of ``data/synth_words.json`` (shipped in the package, read once on import);
nothing is taken from the real data.

The package: ``stats`` (the shape of the real file: label shares, models,
quirk rates, turns, lengths, languages), ``prose`` (the word lists and the
builders of prompt and response text), ``prefs`` (the answer qualities of a
row, the label shares they give, the lengths they take), ``rows`` (a row in
named steps, the quirks, ``iter_rows`` / ``generate_rows`` / ``write_csv``).
"""

from __future__ import annotations

from .prefs import QUALITIES, preference_shares
from .prose import REFUSALS, SPECIAL_TOKEN_STRINGS
from .rows import COLUMNS, encode_turns, generate_rows, iter_rows, write_csv
from .stats import LABEL_SHARES, MODELS, QUIRKS

__all__ = [
    "COLUMNS",
    "LABEL_SHARES",
    "MODELS",
    "QUALITIES",
    "QUIRKS",
    "REFUSALS",
    "SPECIAL_TOKEN_STRINGS",
    "encode_turns",
    "generate_rows",
    "iter_rows",
    "preference_shares",
    "write_csv",
]
