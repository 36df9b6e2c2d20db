"""Hypothesis strategies for arena rows: texts that stress a tokenizer and
turn lists with the quirks of the real Kaggle data (None turns, ragged lists,
lone surrogates, special-token strings inside user text)."""

from __future__ import annotations

import json

from hypothesis import strategies as st

import arena_fast as af

# Special-token strings of Gemma and Llama-3, and the templates' own markup,
# as they show up inside user text.
SPECIAL_STRINGS = (
    "<eos>",
    "<bos>",
    "<pad>",
    "<unk>",
    "<mask>",
    "<end_of_turn>",
    "<start_of_turn>user",
    "<start_of_turn>model\n",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>assistant<|end_header_id|>",
)
MARKUP_STRINGS = (
    "<table>",
    "</td>",
    "<br/>",
    '<div class="x">',
    "<PROMPT>",
    "</RESPONSE A>",
    "## Round 2:",
    "\n### Prompt:\n",
    "......",
    '"""',
    "```python\ndef f(x):\n    return x\n```",
    ">\u2581</",
    "\\u00e9",
    "{i}",
)
UNICODE_STRINGS = (
    "中文字符",
    "こんにちは",
    "안녕하세요",
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "🇫🇷",
    "é",
    "e\u0301",
    "Ñandú",
    "שלום",
    "مرحبا",
    "\u200f",
    "\u200b",
    "\ufeff",
    "\ufffd",
    "\u2581",
    "\u00a0",
    "\u3000",
)
WHITESPACE_STRINGS = (" ", "  ", "\n", "\n\n", "\t", "\r\n", " \n ", "\t\t ")
# In a Python str these are lone surrogates (also the "pair": two lone chars).
SURROGATE_STRINGS = ("\ud83d", "\udc00", "\udfff", "\ud83d\ude00", "\ude00\ud83d")

_words = st.text(
    st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFFF), min_size=1, max_size=10
)
_ascii_words = st.text("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789.,;:!?'-()", max_size=12)
_whitespace_runs = st.builds(
    lambda ch, n: ch * n, st.sampled_from(" \n\t"), st.integers(min_value=1, max_value=40)
)


def pieces(surrogates: bool = True, specials: bool = True) -> st.SearchStrategy[str]:
    options = [
        _ascii_words,
        _ascii_words,
        _words,
        _whitespace_runs,
        st.sampled_from(WHITESPACE_STRINGS),
        st.sampled_from(UNICODE_STRINGS),
        st.sampled_from(MARKUP_STRINGS),
    ]
    if specials:
        options.append(st.sampled_from(SPECIAL_STRINGS))
    if surrogates:
        options.append(st.sampled_from(SURROGATE_STRINGS))
    return st.one_of(options)


@st.composite
def texts(
    draw, surrogates: bool = True, specials: bool = True, long: bool = True, max_chars=20_000
) -> str:
    """Mostly short mixed texts; some empty or whitespace-only; a few long
    ones (repeated pieces) up to `max_chars` characters."""
    kind = draw(st.integers(min_value=0, max_value=19))
    piece = pieces(surrogates, specials)
    if kind == 0:
        return ""
    if kind == 1:
        return draw(st.sampled_from(WHITESPACE_STRINGS + ("   \n\n\t ",)))
    if kind == 2 and long:
        unit = "".join(draw(st.lists(piece, min_size=1, max_size=6))) or "x"
        size = draw(st.sampled_from((300, 1500, 6000, max_chars)))
        return (unit * (size // len(unit) + 1))[:size]
    return "".join(draw(st.lists(piece, max_size=14)))


@st.composite
def turn_counts(draw) -> int:
    """0 to 40 turns, mostly 1 to 3 (as in the real data)."""
    kind = draw(st.integers(min_value=0, max_value=9))
    if kind < 6:
        return draw(st.integers(min_value=1, max_value=3))
    if kind < 8:
        return draw(st.integers(min_value=0, max_value=8))
    return draw(st.integers(min_value=0, max_value=40))


@st.composite
def cells(draw, n: int, nulls: bool = True, surrogates: bool = True, specials: bool = True):
    """One column of one row: a list of `n` turns (str or None); with
    `nulls`, sometimes a None cell, and a bare str when n == 1."""
    kind = draw(st.integers(min_value=0, max_value=29))
    text = texts(surrogates, specials, long=n <= 4)
    if nulls and kind == 0:
        return None
    if kind == 1 and n == 1:
        return draw(text)
    turn = st.one_of(st.none(), text) if nulls and kind < 8 else text
    return [draw(turn) for _ in range(n)]


@st.composite
def rows(
    draw, nulls: bool = True, ragged: bool = True, surrogates: bool = True, specials: bool = True
):
    """One arena row: (prompt turns, A turns, B turns)."""
    n = draw(turn_counts())
    lengths = [n, n, n]
    if ragged and draw(st.integers(min_value=0, max_value=7)) == 0:
        lengths = [draw(st.integers(min_value=0, max_value=n + 2)) for _ in range(3)]
    return tuple(draw(cells(k, nulls, surrogates, specials)) for k in lengths)


@st.composite
def batches(draw, min_rows: int = 1, max_rows: int = 3, **row_options):
    """Columns (prompts, responses_a, responses_b) of a few rows."""
    batch = draw(st.lists(rows(**row_options), min_size=min_rows, max_size=max_rows))
    return tuple(list(column) for column in zip(*batch)) if batch else ([], [], [])


# -- JSON cells (encode_json) ------------------------------------------------------
HANDMADE_JSON_CELLS = (
    "[]",
    "[null]",
    "[null, null]",
    '[""]',
    '["",""]',
    '["  "]',
    '["a\\ud83db"]',
    '["\\ud83d"]',
    '["\\udc00x"]',
    '["\\ud83d\\ude00 ok"]',
    '["\\ude00\\ud83d"]',
    '["a\\/b", null, "c"]',
    '[ "spaced" ,\n null ]',
    '["\\u00e9\\n\\t\\"quoted\\" \\\\ back"]',
    '["<eos> and <end_of_turn> and <|begin_of_text|>"]',
    '["\\u4e2d\\u6587", "\\u0645\\u0631\\u062d\\u0628\\u0627"]',
)


@st.composite
def json_cells(draw, n: int) -> str:
    """A Kaggle JSON-list cell of `n` turns (or a hand-made quirky one)."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(st.sampled_from(HANDMADE_JSON_CELLS))
    value = draw(cells(n))
    if value is None:
        value = [None] * n
    elif isinstance(value, str):
        value = [value]
    # The real CSV is pure ASCII; a str built in Python may hold raw unicode.
    ascii_only = draw(st.integers(min_value=0, max_value=4)) > 0
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def json_batches(draw, max_rows: int = 3):
    batch = []
    for _ in range(draw(st.integers(min_value=1, max_value=max_rows))):
        n = draw(turn_counts())
        lengths = [n, n, n]
        if draw(st.integers(min_value=0, max_value=7)) == 0:
            lengths = [draw(st.integers(min_value=0, max_value=n + 2)) for _ in range(3)]
        batch.append(tuple(draw(json_cells(k)) for k in lengths))
    return tuple(list(column) for column in zip(*batch))


# -- templates ------------------------------------------------------------------------
# Custom layouts beside the presets: special tokens in the markup, suffixes,
# headers with {i}, an unusual marker, and joined turns.
CUSTOM_TEMPLATES = {
    "custom": af.Template(
        begin="<start_of_turn>user\nJudge the answers.\n",
        end="\nVerdict:<end_of_turn>\n",
        first_header="[Turn {i}]",
        header="\n[Turn {i} of the kept]",
        prompt_prefix="Q: ",
        prompt_suffix="\n",
        a_prefix="A: ",
        a_suffix=" |",
        b_prefix="B:",
        b_suffix="<eos>",
        marker=" [...] ",
    ),
    "custom_joined": af.Template(
        begin="Compare.\n",
        end="\nWinner:",
        prompt_prefix="<user>",
        prompt_suffix="</user>",
        a_prefix="<a>",
        a_suffix="</a>\n",
        b_prefix="<b>",
        b_suffix="</b>",
        marker="\u2026",
        join_turns="\n---\n",
    ),
}
TEMPLATE_NAMES = tuple(af.TEMPLATES) + tuple(CUSTOM_TEMPLATES)


def template_of(name: str):
    """The value to pass as `template=`: a preset name or an af.Template."""
    return CUSTOM_TEMPLATES.get(name, name)


def train_extra(name: str, extra: str = "train"):
    """Import `name` from an extra (`train`: torch, transformers; `serve`:
    starlette, uvicorn): skipped with a reason on a machine without it, but a
    failure in CI (CI=true), where `.ci/run` installs the extras, so the
    suite never goes green by skipping."""
    import importlib
    import os

    import pytest

    try:
        return importlib.import_module(name)
    except ImportError as e:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip(f"needs the {extra} extra ({name}): {e}", allow_module_level=True)
