"""Synthetic Chatbot Arena rows in the Kaggle ``train.csv`` format.

Pure Python (no compiled code) and deterministic: the same ``(n, seed)``
gives the same rows, and ``write_csv`` the same bytes. The rows follow the
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
nothing is taken from the real data. The distributions stay here, with the
code that draws from them.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from .files import replacing
from .sources.kaggle import COLUMNS as KAGGLE_COLUMNS

__all__ = [
    "COLUMNS",
    "LABEL_SHARES",
    "MODELS",
    "QUIRKS",
    "SPECIAL_TOKEN_STRINGS",
    "encode_turns",
    "generate_rows",
    "iter_rows",
    "write_csv",
]

# The Kaggle train.csv header, as the Kaggle reader defines it.
COLUMNS = KAGGLE_COLUMNS

# Shares of the real file: A wins, B wins, tie.
LABEL_SHARES = (0.349, 0.342, 0.309)

# What ordinary rows draw from: a little more tie than LABEL_SHARES, because the
# empty-side quirks below are rarely labelled a tie.
_BASE_SHARES = (0.3475, 0.3405, 0.312)

# (name, sampling weight, strength). Strength nudges the label a little so the
# synthetic data has a learnable signal; it is symmetric in A and B.
MODELS = (
    ("gpt-4-1106-preview", 7.0, 1.0),
    ("gpt-4-0125-preview", 2.5, 1.0),
    ("gpt-4-0613", 5.0, 0.8),
    ("gpt-4-0314", 3.5, 0.85),
    ("gpt-3.5-turbo-0613", 5.5, 0.4),
    ("gpt-3.5-turbo-0314", 2.5, 0.35),
    ("gpt-3.5-turbo-0125", 2.0, 0.4),
    ("gpt-3.5-turbo-1106", 2.0, 0.3),
    ("claude-3-opus-20240229", 2.0, 0.95),
    ("claude-3-sonnet-20240229", 2.0, 0.75),
    ("claude-3-haiku-20240307", 1.5, 0.6),
    ("claude-2.1", 5.0, 0.45),
    ("claude-2.0", 3.0, 0.5),
    ("claude-1", 4.5, 0.55),
    ("claude-instant-1", 3.5, 0.4),
    ("gemini-pro", 1.5, 0.5),
    ("gemini-pro-dev-api", 1.5, 0.55),
    ("palm-2", 2.0, -0.1),
    ("llama-3-70b-instruct", 1.5, 0.85),
    ("llama-3-8b-instruct", 1.0, 0.55),
    ("llama-2-70b-chat", 3.5, 0.3),
    ("llama-2-13b-chat", 3.0, 0.1),
    ("llama-2-7b-chat", 2.5, 0.0),
    ("codellama-34b-instruct", 1.2, 0.0),
    ("mixtral-8x7b-instruct-v0.1", 3.5, 0.55),
    ("mistral-medium", 3.5, 0.6),
    ("mistral-large-2402", 1.2, 0.65),
    ("mistral-7b-instruct", 2.0, 0.0),
    ("mistral-7b-instruct-v0.2", 1.2, 0.25),
    ("nous-hermes-2-mixtral-8x7b-dpo", 0.8, 0.4),
    ("openhermes-2.5-mistral-7b", 0.8, 0.2),
    ("zephyr-7b-beta", 2.0, 0.1),
    ("openchat-3.5", 1.2, 0.3),
    ("starling-lm-7b-alpha", 0.8, 0.35),
    ("yi-34b-chat", 1.5, 0.45),
    ("qwen-14b-chat", 1.2, 0.15),
    ("qwen1.5-72b-chat", 1.2, 0.55),
    ("deepseek-llm-67b-chat", 0.8, 0.4),
    ("solar-10.7b-instruct-v1.0", 0.8, 0.2),
    ("tulu-2-dpo-70b", 1.2, 0.3),
    ("wizardlm-70b", 1.5, 0.35),
    ("wizardlm-13b", 1.5, 0.1),
    ("vicuna-33b", 3.0, 0.2),
    ("vicuna-13b", 3.5, 0.0),
    ("vicuna-7b", 2.0, -0.15),
    ("koala-13b", 2.5, -0.3),
    ("alpaca-13b", 1.5, -0.5),
    ("guanaco-33b", 1.0, -0.1),
    ("mpt-30b-chat", 1.0, -0.05),
    ("mpt-7b-chat", 1.5, -0.4),
    ("oasst-pythia-12b", 2.0, -0.5),
    ("chatglm-6b", 1.2, -0.6),
    ("chatglm3-6b", 0.8, -0.3),
    ("stablelm-tuned-alpha-7b", 1.2, -0.8),
    ("dolly-v2-12b", 1.2, -0.9),
    ("fastchat-t5-3b", 1.2, -0.7),
    ("RWKV-4-Raven-14B", 1.2, -0.5),
    ("pplx-70b-online", 1.0, 0.2),
)

SPECIAL_TOKEN_STRINGS = (
    "<eos>",
    "<bos>",
    "<end_of_turn>",
    "<start_of_turn>user",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|im_start|>",
    "</s>",
)

# Quirks and the share of rows that carry each one. Counts are exact per call
# (stochastic rounding of rate * n), so 2,000 rows hold at least 3 of each.
QUIRKS = {
    "null_one_side": 0.0030,  # [null] as one response
    "null_both_sides": 0.0020,  # [null] as both responses
    "null_turn": 0.0015,  # a null turn inside both responses of a multi-turn row
    "empty_list": 0.0015,  # [] as one response
    "empty_string": 0.0020,  # [""] as one response
    "empty_both": 0.0015,  # [""] as both responses
    "empty_two_turns": 0.0015,  # ["",""] as one response of a two-turn row
    "whitespace": 0.0015,  # whitespace-only response
    "identical": 0.0015,  # response_b == response_a, mostly labelled a tie
    "identical_win": 0.0015,  # response_b == response_a, labelled as a win
    "ragged": 0.0030,  # a response list longer/shorter than the prompt list
    "lone_surrogate": 0.0020,  # an unpaired surrogate escape in the JSON text
    "special_tokens": 0.0040,  # special-token strings inside the user text
}

# ---------------------------------------------------------------------------
# Distributions (from the public EDA of the real file)
# ---------------------------------------------------------------------------

# Turns: 1 turn 86.9%, then 2: 4,673 / 3: 1,485 / 4: 607 / 5: 311 rows of 57,477,
# a tail to ~20 turns; mean ~1.24.
_TURN_WEIGHTS = (
    (1, 0.8690),
    (2, 0.0813),
    (3, 0.0258),
    (4, 0.0106),
    (5, 0.0054),
    (6, 0.0021),
    (7, 0.0013),
    (8, 0.00085),
    (9, 0.0006),
    (10, 0.00043),
    (11, 0.00034),
    (12, 0.00026),
    (13, 0.00021),
    (14, 0.00017),
    (15, 0.00013),
    (16, 0.00008),
    (17, 0.00006),
    (18, 0.00005),
    (19, 0.00004),
    (20, 0.00003),
)
_TURN_VALUES = tuple(t for t, _ in _TURN_WEIGHTS)
_TURN_CUM = tuple(sum(w for _, w in _TURN_WEIGHTS[: i + 1]) for i in range(len(_TURN_WEIGHTS)))
_P_MULTI = 1.0 - _TURN_WEIGHTS[0][1]

# Character quantiles of a whole prompt (all turns) and of one whole response
# (all turns): (quantile, characters), interpolated in log space.
_PROMPT_CHARS = (
    (0.0, 2),
    (0.01, 6),
    (0.05, 12),
    (0.10, 18),
    (0.25, 36),
    (0.50, 77),
    (0.75, 240),
    (0.90, 830),
    (0.95, 1500),
    (0.99, 5000),
    (0.999, 14000),
    (1.0, 32000),
)
_RESPONSE_CHARS = (
    (0.0, 1),
    (0.01, 8),
    (0.05, 70),
    (0.10, 170),
    (0.25, 500),
    (0.50, 1075),
    (0.75, 1760),
    (0.90, 2600),
    (0.95, 3500),
    (0.99, 6550),
    (0.999, 16000),
    (1.0, 37000),
)


def _table(points: tuple) -> tuple:
    return tuple(p for p, _ in points), tuple(math.log(v) for _, v in points)


_PROMPT_TABLE = _table(_PROMPT_CHARS)
_RESPONSE_TABLE = _table(_RESPONSE_CHARS)


def _quantile(table: tuple, w: float) -> int:
    probs, logs = table
    i = bisect.bisect_right(probs, w)
    if i <= 0:
        return int(math.exp(logs[0]))
    if i >= len(probs):
        return int(math.exp(logs[-1]))
    p0, p1 = probs[i - 1], probs[i]
    x = logs[i - 1] + (logs[i] - logs[i - 1]) * (w - p0) / (p1 - p0)
    return max(1, int(round(math.exp(x))))


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _level(u: float, multi: bool, rng: random.Random) -> float:
    """A quantile level that is uniform over all rows but higher for
    multi-turn rows: max(u, v) for those, then mapped through the mixture CDF
    F(x) = (1 - p) x + p x^2."""
    if multi:
        u = max(u, rng.random())
    return (1.0 - _P_MULTI) * u + _P_MULTI * u * u


# ---------------------------------------------------------------------------
# Word lists and templates (all invented), in data/synth_words.json
# ---------------------------------------------------------------------------

_WORDS_FILE = Path(__file__).parent / "data" / "synth_words.json"


def _frozen(value: Any) -> Any:
    """JSON lists as tuples, all the way down (the lists are constants)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _load_words() -> dict:
    with open(_WORDS_FILE, encoding="utf-8") as f:
        return _frozen(json.load(f))


_WORDS = _load_words()

# Topics and their nouns; the English sentence bank is drawn from these.
_TOPICS = _WORDS["topics"]
_TOPIC_NAMES = tuple(_TOPICS)
_CODE_TOPICS = ("programming", "machine learning")
_ADJ = _WORDS["adjectives"]
_ADV = _WORDS["adverbs"]
_VERB = _WORDS["verbs"]
_SENTENCE_TEMPLATES = _WORDS["sentence_templates"]

# Responses.
_OPENERS = _WORDS["openers"]
_CLOSERS = _WORDS["closers"]
_SHORT_REPLIES = _WORDS["short_replies"]
_POEM_LINES = _WORDS["poem_lines"]
_SPECIAL_REPLIES = _WORDS["special_replies"]

# Prompts: short ones, and templates by prompt kind with their slot fillers.
_SHORT_PROMPTS = _WORDS["short_prompts"]
_SHORT_TEMPLATES = _WORDS["short_templates"]
_PROMPT_TEMPLATES = _WORDS["prompt_templates"]
_PLANGS = _WORDS["programming_languages"]
_CODE_TASKS = _WORDS["code_tasks"]
_THINGS = _WORDS["things"]
_CHARACTERS = _WORDS["characters"]
_EVENTS = _WORDS["events"]
_PRODUCTS = _WORDS["products"]
_ROLES = _WORDS["roles"]
_ROLE_TASKS = _WORDS["role_tasks"]
_LONG_PROMPT_LEADS = _WORDS["long_prompt_leads"]
_LONG_CODE_LEADS = _WORDS["long_code_leads"]
_FOLLOWUPS = _WORDS["followups"]
_SPECIAL_PROMPTS = _WORDS["special_prompts"]

# How people type a prompt: prefixes, suffixes, a bit of context.
_PROMPT_PREFIXES = _WORDS["prompt_prefixes"]
_PROMPT_SUFFIXES = _WORDS["prompt_suffixes"]
_CONTEXTS = _WORDS["contexts"]
_CITIES = _WORDS["cities"]
_RELATIVES = _WORDS["relatives"]
_PROMPT_EXTRAS = _WORDS["prompt_extras"]

# Code blocks: (language, template) and the names the templates take.
_CODE_SNIPPETS = tuple((s["language"], "\n".join(s["lines"])) for s in _WORDS["code_snippets"])
_FN_NAMES = _WORDS["function_names"]
_ARG_NAMES = _WORDS["argument_names"]
_TABLES = _WORDS["tables"]
_COLS = _WORDS["columns"]

# Emoji: outside the BMP (surrogate pairs in the JSON) and inside it.
_EMOJI_ASTRAL = _WORDS["emoji_astral"]
_EMOJI_BMP = _WORDS["emoji_bmp"]

# Non-English: (sentences, prompts, separator between sentences).
_LANGS = {
    lang: (v["sentences"], v["prompts"], v["separator"]) for lang, v in _WORDS["languages"].items()
}

# Prompt kinds and languages, with their shares of the rows.
_PROMPT_KINDS = (
    ("question", 0.40),
    ("code", 0.17),
    ("creative", 0.12),
    ("reasoning", 0.08),
    ("roleplay", 0.05),
    ("chat", 0.18),
)
_LANG_WEIGHTS = (
    ("en", 0.885),
    ("zh", 0.025),
    ("ru", 0.022),
    ("es", 0.015),
    ("de", 0.012),
    ("fr", 0.010),
    ("ja", 0.009),
    ("pt", 0.008),
    ("ko", 0.007),
    ("ar", 0.007),
)

# Block types of a response and their weights, by prompt kind.
_BLOCK_WEIGHTS = {
    "question": (("para", 45), ("numbered", 30), ("bullets", 10), ("section", 10), ("table", 5)),
    "code": (("code", 45), ("para", 35), ("numbered", 15), ("bullets", 5)),
    "creative": (("poem", 40), ("para", 60)),
    "reasoning": (("steps", 50), ("para", 50)),
    "roleplay": (("para", 80), ("bullets", 20)),
    "chat": (("para", 85), ("bullets", 10), ("section", 5)),
}


def _cum(pairs: tuple) -> tuple:
    names, cum, total = [], [], 0.0
    for name, w in pairs:
        total += w
        names.append(name)
        cum.append(total)
    return tuple(names), tuple(cum)


_BLOCK_CUM = {kind: _cum(pairs) for kind, pairs in _BLOCK_WEIGHTS.items()}
_KIND_NAMES, _KIND_CUM = _cum(_PROMPT_KINDS)
_LANG_NAMES, _LANG_CUM = _cum(_LANG_WEIGHTS)
_MODEL_NAMES = tuple(m[0] for m in MODELS)
_MODEL_STRENGTH = {m[0]: m[2] for m in MODELS}
_MODEL_CUM = _cum(tuple((m[0], m[1]) for m in MODELS))[1]


def _pick(rng: random.Random, names: tuple, cum: tuple) -> Any:
    return names[bisect.bisect_right(cum, rng.random() * cum[-1])]


# ---------------------------------------------------------------------------
# The sentence bank: built once from the templates with a fixed seed
# ---------------------------------------------------------------------------

_BANK: Optional[dict] = None
_BANK_SIZE = 240


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _bank() -> dict:
    global _BANK
    if _BANK is None:
        rng = random.Random(0x5EED)
        bank = {}
        for topic, nouns in _TOPICS.items():
            sentences = []
            for _ in range(_BANK_SIZE):
                a, b = rng.sample(nouns, 2)
                t = rng.choice(_SENTENCE_TEMPLATES)
                adj = rng.choice(_ADJ)
                sentences.append(
                    t.format(
                        A=_cap(a),
                        a=a,
                        b=b,
                        adj=adj,
                        a_adj=("an " if adj[0] in "aeiou" else "a ") + adj,
                        adv=rng.choice(_ADV),
                        verb=rng.choice(_VERB),
                        topic=topic,
                        num=rng.randint(2, 95),
                    )
                )
            bank[topic] = tuple(sentences)
        _BANK = bank
    return _BANK


# ---------------------------------------------------------------------------
# Text builders
# ---------------------------------------------------------------------------


class _Ctx:
    """Per-row choices shared by the prompt and the responses."""

    __slots__ = ("lang", "topic", "kind", "sentences", "sep")

    def __init__(self, lang: str, topic: str, kind: str):
        self.lang = lang
        self.topic = topic
        self.kind = kind
        if lang == "en":
            self.sentences = _bank()[topic]
            self.sep = " "
        else:
            self.sentences, _, self.sep = _LANGS[lang]


def _cut(text: str, target: int) -> str:
    """Trim to about ``target`` characters: at the sentence or line end
    nearest to it (within 10%), else at a space, else anywhere."""
    size = len(text)
    if size <= target:
        return text
    lo, hi = int(target * 0.9), int(target * 1.1) + 1
    best = -1
    b = max(text.rfind(". ", lo, target + 1), text.rfind("\n", lo, target + 1))
    if b >= lo:
        best = b + 1 if text[b] == "." else b
    ahead = [i for i in (text.find(". ", target, hi), text.find("\n", target, hi)) if i >= 0]
    if ahead:
        f = min(ahead)
        f = f + 1 if text[f] == "." else f
        if best < 0 or f - target < target - best:
            best = f
    if size <= hi and (best < 0 or size - target < target - best):
        return text
    if best < 0:
        best = max(text.rfind(" ", 0, target + 1), text.rfind("\n", 0, target + 1))
        if best < target * 0.8:
            best = target
    out = text[:best].rstrip()
    return out if out else text[: max(1, target)]


def _paragraph(rng: random.Random, ctx: _Ctx, budget: int) -> str:
    rand = rng.random
    goal = min(budget, 120 + int(rand() * 531))
    sentences = ctx.sentences
    k = len(sentences)
    parts = []
    n = -1
    while n < goal:
        s = sentences[int(rand() * k)]
        parts.append(s)
        n += len(s) + 1
    return ctx.sep.join(parts)


def _code_block(rng: random.Random) -> str:
    lang, template = rng.choice(_CODE_SNIPPETS)
    fn = rng.choice(_FN_NAMES)
    table = rng.choice(_TABLES)
    body = template.format(
        fn=fn,
        fnjs="".join(w.capitalize() if i else w for i, w in enumerate(fn.split("_"))),
        cls=_cap(rng.choice(_ARG_NAMES)[:-1]) + "Store",
        arg=rng.choice(_ARG_NAMES),
        table=table,
        Table=_cap(table),
        col=rng.choice(_COLS),
        k=rng.randint(3, 20),
    )
    return f"```{lang}\n{body}\n```"


def _block(rng: random.Random, ctx: _Ctx, kind: str, budget: int) -> str:
    sentences = ctx.sentences
    if kind == "para" or (ctx.lang != "en" and kind not in ("numbered", "bullets", "code")):
        return _paragraph(rng, ctx, budget)
    if kind in ("numbered", "bullets", "steps"):
        k = rng.randint(3, 7)
        items = []
        nouns = _TOPICS.get(ctx.topic, ())
        for i in range(k):
            s = rng.choice(sentences)
            if kind == "steps":
                items.append(f"{i + 1}. Step {i + 1}: {s}")
            elif kind == "numbered":
                if nouns and ctx.lang == "en" and rng.random() < 0.7:
                    items.append(f"{i + 1}. **{_cap(rng.choice(nouns))}:** {s}")
                else:
                    items.append(f"{i + 1}. {s}")
            else:
                items.append(f"{rng.choice('-*')} {s}")
        head = rng.choice(sentences) + "\n\n" if rng.random() < 0.5 else ""
        return head + "\n".join(items)
    if kind == "section":
        title = _cap(rng.choice(_TOPICS[ctx.topic]))
        return f"{rng.choice(('##', '###', '**'))} {title}\n\n{_paragraph(rng, ctx, budget)}"
    if kind == "table":
        nouns = _TOPICS[ctx.topic]
        rows = ["| Aspect | Option A | Option B |", "|---|---|---|"]
        for _ in range(rng.randint(2, 5)):
            rows.append(f"| {_cap(rng.choice(nouns))} | {rng.choice(_ADJ)} | {rng.choice(_ADJ)} |")
        return "\n".join(rows)
    if kind == "code":
        return _code_block(rng)
    if kind == "poem":
        start = rng.randrange(0, len(_POEM_LINES), 2)
        k = 2 * rng.randint(2, 4)
        lines = [_POEM_LINES[(start + i) % len(_POEM_LINES)] for i in range(k)]
        return "\n".join(lines)
    return _paragraph(rng, ctx, budget)


def _response_text(rng: random.Random, ctx: _Ctx, target: int) -> str:
    if target < 40:
        return _cut(rng.choice(_SHORT_REPLIES), target)
    names, cum = _BLOCK_CUM[ctx.kind]
    parts = []
    n = -2
    if ctx.lang == "en" and ctx.kind == "reasoning" and rng.random() < 0.5:
        parts.append(f"The answer is {rng.randint(0, 120)}.")
        n += len(parts[0]) + 2
    elif ctx.lang == "en" and rng.random() < 0.45:
        parts.append(rng.choice(_OPENERS))
        n += len(parts[0]) + 2
    while n < target:
        rem = target - n
        if rem < 200:
            kind = "para"
        else:
            kind = _pick(rng, names, cum)
            if kind == "code" and rem < 300:
                kind = "para"
        block = _block(rng, ctx, kind, rem)
        parts.append(block)
        n += len(block) + 2
        if ctx.lang == "en" and n < target - 80 and rng.random() < 0.04:
            closer = rng.choice(_CLOSERS)
            if n + len(closer) + 2 >= target:
                parts.append(closer)
                n += len(closer) + 2
    return _cut("\n\n".join(parts), target)


def _bare(task: str) -> str:
    """'reverses a string' -> 'reverse a string'."""
    verb, _, rest = task.partition(" ")
    if verb.endswith("ches") or verb.endswith("shes"):
        verb = verb[:-2]
    elif verb.endswith("s"):
        verb = verb[:-1]
    return f"{verb} {rest}"


def _sloppy(rng: random.Random, text: str, ctx: _Ctx) -> str:
    """How people type: a prefix, suffix or bit of context, lower case, no
    final punctuation."""
    r = rng.random() if ctx.lang == "en" else 1.0
    if r < 0.2:
        text = rng.choice(_PROMPT_PREFIXES) + text[:1].lower() + text[1:]
    elif r < 0.4:
        text = text + rng.choice(_PROMPT_SUFFIXES)
    elif r < 0.65:
        text = text + rng.choice(_CONTEXTS).format(
            age=rng.randint(12, 80),
            money=rng.randint(2, 500) * 10,
            k=rng.randint(2, 12),
            topic=ctx.topic,
            city=rng.choice(_CITIES),
            rel=rng.choice(_RELATIVES),
        )
    r = rng.random()
    if r < 0.2:
        text = text[:1].lower() + text[1:]
    elif r < 0.3 and text[-1:] in ".?":
        text = text[:-1]
    return text


def _fill_slots(rng: random.Random, template: str, ctx: _Ctx) -> str:
    nouns = _TOPICS[ctx.topic]
    a, b = rng.sample(nouns, 2)
    x = rng.randint(3, 120)
    return template.format(
        a=a,
        A=_cap(a),
        b=b,
        topic=ctx.topic,
        k=rng.randint(3, 10),
        plang=rng.choice(_PLANGS),
        task=rng.choice(_CODE_TASKS),
        taskbare=_bare(rng.choice(_CODE_TASKS)),
        thing=rng.choice(_THINGS),
        character=rng.choice(_CHARACTERS),
        event=rng.choice(_EVENTS),
        product=rng.choice(_PRODUCTS),
        role=rng.choice(_ROLES),
        roletask=rng.choice(_ROLE_TASKS),
        x=x,
        y=rng.randint(2, 9),
        z=rng.randint(x + 1, 400),
        tok=rng.choice(SPECIAL_TOKEN_STRINGS),
        tok2=rng.choice(SPECIAL_TOKEN_STRINGS),
    )


def _prompt_text(rng: random.Random, ctx: _Ctx, target: int, turn: int) -> str:
    if ctx.lang != "en":
        text = _sloppy(rng, _fill_slots(rng, rng.choice(_LANGS[ctx.lang][1]), ctx), ctx)
        if rng.random() < 0.4:
            text = text + ctx.sep + rng.choice(ctx.sentences)
        if len(text) < target - 20:
            text = text + "\n\n" + _paragraph(rng, ctx, target - len(text) - 2)
            return _cut(text, target)
        return text
    if turn > 0:
        text = _fill_slots(rng, rng.choice(_FOLLOWUPS), ctx)
    elif target <= 30:
        if rng.random() < 0.05:
            return rng.choice(_SHORT_PROMPTS)
        # The closest of a few short questions; never cut a question short.
        text = _fill_slots(rng, rng.choice(_SHORT_TEMPLATES), ctx)
        for _ in range(2):
            other = _fill_slots(rng, rng.choice(_SHORT_TEMPLATES), ctx)
            if abs(len(other) - target) < abs(len(text) - target):
                text = other
        return _sloppy(rng, text, ctx)
    else:
        templates = _PROMPT_TEMPLATES[ctx.kind]
        text = _fill_slots(rng, rng.choice(templates), ctx)
        if target < 90:
            for _ in range(2):
                other = _fill_slots(rng, rng.choice(templates), ctx)
                if abs(len(other) - target) < abs(len(text) - target):
                    text = other
        text = _sloppy(rng, text, ctx)
        if text.endswith(":") or text.startswith(("Why does this code", "why does this code")):
            text = text + "\n\n" + _code_block(rng)
    if len(text) >= target - 10:
        return text
    if target - len(text) < 160:
        parts = [text]
        n = len(text)
        for e in rng.sample(_PROMPT_EXTRAS, rng.randint(0, 2)):
            if n >= target - 10:
                break
            parts.append(e)
            n += len(e) + 1
        while n < target - 10:
            e = rng.choice(ctx.sentences)
            parts.append(e)
            n += len(e) + 1
        return _cut(" ".join(parts), target)
    # A long prompt: an instruction and pasted material (text or code).
    if ctx.kind == "code" or (ctx.topic in _CODE_TOPICS and rng.random() < 0.5):
        lead = rng.choice(_LONG_CODE_LEADS)
        paste_kinds = ("code", "code", "para")
    else:
        lead = rng.choice(_LONG_PROMPT_LEADS)
        paste_kinds = ("para", "para", "numbered", "section")
    head = text if rng.random() < 0.5 else lead
    pasted = []
    n = len(head) + 2
    while n < target:
        block = _block(rng, ctx, rng.choice(paste_kinds), target - n)
        pasted.append(block)
        n += len(block) + 2
    return _cut(head + "\n\n" + "\n\n".join(pasted), target)


def _split(rng: random.Random, total: int, turns: int, minimum: int) -> list:
    if turns == 1:
        return [total]
    weights = [rng.random() + 0.25 for _ in range(turns)]
    s = sum(weights)
    return [max(minimum, int(total * w / s)) for w in weights]


def _with_emoji(rng: random.Random, text: str, astral: bool = True) -> str:
    e = rng.choice(_EMOJI_ASTRAL) if astral or rng.random() < 0.6 else rng.choice(_EMOJI_BMP)
    r = rng.random()
    if r < 0.5:
        return f"{text} {e}"
    if r < 0.75:
        return f"{e} {text}"
    i = text.find(". ")
    if i < 0:
        return f"{text} {e}"
    return f"{text[: i + 1]} {e}{text[i + 1 :]}"


# ---------------------------------------------------------------------------
# JSON as the real file writes it
# ---------------------------------------------------------------------------

_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def encode_turns(turns: list) -> str:
    """A list of turns (str or None) as JSON text like the real file: pure
    ASCII, compact separators, slashes escaped."""
    return json.dumps(turns, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def _break_surrogate(text: str, rng: random.Random) -> str:
    """Remove one half of the first escaped surrogate pair in JSON text."""
    m = _SURROGATE_PAIR.search(text)
    if m is None:
        return text
    keep = m.group(1) if rng.random() < 0.75 else m.group(2)
    return text[: m.start()] + "\\u" + keep + text[m.end() :]


# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------


def _plan_quirks(rng: random.Random, n: int) -> dict:
    counts = [(name, int(rate * n + rng.random())) for name, rate in QUIRKS.items()]
    total = min(n, sum(c for _, c in counts))
    indices = rng.sample(range(n), total)
    plan, pos = {}, 0
    for name, c in counts:
        for i in indices[pos : pos + c]:
            plan[i] = name
        pos += c
    return plan


class _PromptPool:
    """Prompts that recur across rows, with Zipf-like popularity: 7% of the
    rows draw from a pool of n / 4 prompts. With the chance repeats of short
    prompts, 57k rows hold ~51.6k unique prompts (as the real file does) and
    the most common one recurs 15-20 times in 5k rows, 30-70 in 20k, ~90 in
    57k."""

    _SHARE = 0.07
    _EXPONENT = 0.7

    def __init__(self, n: int):
        size = max(20, n // 4)
        cum, total = [], 0.0
        for i in range(size):
            total += 1.0 / (i + 1) ** self._EXPONENT
            cum.append(total)
        self.cum = cum
        self.prompts: dict = {}

    def draw(self, rng: random.Random) -> tuple:
        i = bisect.bisect_right(self.cum, rng.random() * self.cum[-1])
        got = self.prompts.get(i)
        if got is None:
            lang = _pick(rng, _LANG_NAMES, _LANG_CUM)
            kind = _pick(rng, _KIND_NAMES, _KIND_CUM)
            topic = rng.choice(_CODE_TOPICS if kind == "code" else _TOPIC_NAMES)
            ctx = _Ctx(lang, topic, kind)
            target = _quantile(_PROMPT_TABLE, rng.random())
            got = (ctx, _prompt_text(rng, ctx, target, 0))
            self.prompts[i] = got
        return got


def _label(rng: random.Random, pa: float, pb: float) -> tuple:
    r = rng.random()
    if r < pa:
        return 1, 0, 0
    if r < pa + pb:
        return 0, 1, 0
    return 0, 0, 1


def _text_len(turns: list) -> int:
    return sum(len(t) for t in turns if t)


def _pick_models(rng: random.Random) -> tuple:
    """Two different models, drawn by their sampling weights."""
    ma = _pick(rng, _MODEL_NAMES, _MODEL_CUM)
    mb = ma
    while mb == ma:
        mb = _pick(rng, _MODEL_NAMES, _MODEL_CUM)
    return ma, mb


def _turn_count(rng: random.Random, quirk: Optional[str]) -> int:
    turns = _pick(rng, _TURN_VALUES, _TURN_CUM)
    if quirk == "empty_two_turns":
        return 2
    if quirk == "null_turn" and turns < 2:
        return 2 + (rng.random() < 0.3)
    return turns


def _prompt_turns(rng: random.Random, quirk: Optional[str], turns: int, pool: _PromptPool) -> tuple:
    """The row's context and prompt turns: a recurring prompt from the pool
    (single-turn rows only), or a fresh one."""
    multi = turns > 1
    if (
        not multi
        and quirk != "special_tokens"
        and rng.random() < _PromptPool._SHARE / (1.0 - _P_MULTI)
    ):
        ctx, first = pool.draw(rng)
        return ctx, [first]
    lang = _pick(rng, _LANG_NAMES, _LANG_CUM)
    if quirk == "special_tokens":
        lang = "en"
    kind = _pick(rng, _KIND_NAMES, _KIND_CUM)
    topic = rng.choice(_CODE_TOPICS if kind == "code" else _TOPIC_NAMES)
    ctx = _Ctx(lang, topic, kind)
    total = _quantile(_PROMPT_TABLE, _level(rng.random(), multi, rng))
    prompt = [_prompt_text(rng, ctx, t, i) for i, t in enumerate(_split(rng, total, turns, 2))]
    if quirk == "special_tokens":
        special = _fill_slots(rng, rng.choice(_SPECIAL_PROMPTS), ctx)
        prompt[0] = special if rng.random() < 0.6 else f"{prompt[0]}\n\n{special}"
    elif rng.random() < 0.01:
        prompt[0] = _with_emoji(rng, prompt[0])
    return ctx, prompt


def _response_turns(rng: random.Random, ctx: _Ctx, turns: int, quirk: Optional[str]) -> tuple:
    """The turns of response A and B. Their lengths are correlated (Gaussian
    copula, rho 0.5), each marginal following the table; multi-turn rows run
    longer."""
    multi = turns > 1
    za = rng.gauss(0.0, 1.0)
    zb = 0.5 * za + 0.8660254037844386 * rng.gauss(0.0, 1.0)
    sides = []
    for z in (za, zb):
        side_ctx = ctx
        if ctx.lang != "en" and rng.random() < 0.15:
            side_ctx = _Ctx("en", ctx.topic, ctx.kind)
        total = _quantile(_RESPONSE_TABLE, _level(_phi(z), multi, rng))
        texts = [_response_text(rng, side_ctx, t) for t in _split(rng, total, turns, 1)]
        if rng.random() < 0.035:
            j = rng.randrange(len(texts))
            texts[j] = _with_emoji(rng, texts[j], astral=False)
        sides.append(texts)
    ra, rb = sides
    if quirk == "special_tokens" and rng.random() < 0.5:
        ra[0] = _fill_slots(rng, rng.choice(_SPECIAL_REPLIES), ctx) + "\n\n" + ra[0]
    return ra, rb


def _label_shares(ma: str, mb: str, ra: list, rb: list) -> tuple:
    """(P(A wins), P(B wins)): the base shares, nudged by model strength and
    response length."""
    sa, sb = _MODEL_STRENGTH[ma], _MODEL_STRENGTH[mb]
    ratio = math.log((_text_len(ra) + 50.0) / (_text_len(rb) + 50.0))
    d = 0.07 * math.tanh(sa - sb) + 0.08 * math.tanh(0.8 * ratio)
    return _BASE_SHARES[0] + d, _BASE_SHARES[1] - d


def _apply_quirk(
    rng: random.Random, quirk: Optional[str], ctx: _Ctx, prompt: list, ra: list, rb: list
) -> tuple:
    """The row's quirk put into its turns (the lists may change in place).
    Returns (ra, rb, side, broken_field): side is True when A is the odd one;
    broken_field names the column whose JSON text loses half a surrogate pair."""
    side = rng.random() < 0.5
    broken_field = None
    if quirk == "null_one_side":
        ra, rb = ([None], rb) if side else (ra, [None])
    elif quirk == "null_both_sides":
        ra, rb = [None], [None]
    elif quirk == "null_turn":
        j = rng.randrange(len(ra))
        ra[j] = None
        rb[j] = None
    elif quirk == "empty_list":
        ra, rb = ([], rb) if side else (ra, [])
    elif quirk == "empty_string":
        ra, rb = ([""], rb) if side else (ra, [""])
    elif quirk == "empty_both":
        ra, rb = [""], [""]
    elif quirk == "empty_two_turns":
        ra, rb = (["", ""], rb) if side else (ra, ["", ""])
    elif quirk == "whitespace":
        blank = [rng.choice((" ", "\n", "  \n\n ", "\t", "   "))]
        ra, rb = (blank, rb) if side else (ra, blank)
    elif quirk in ("identical", "identical_win"):
        rb = list(ra)
    elif quirk == "ragged":
        target = ra if side else rb
        if len(target) > 1 and rng.random() < 0.6:
            target.pop()
        else:
            target.append(_response_text(rng, ctx, rng.randint(20, 400)))
    elif quirk == "lone_surrogate":
        broken_field = rng.choice(("response_a", "response_b", "prompt"))
        turns_list = {"response_a": ra, "response_b": rb, "prompt": prompt}[broken_field]
        j = rng.randrange(len(turns_list))
        turns_list[j] = _with_emoji(rng, turns_list[j] or "")
    return ra, rb, side, broken_field


def _quirk_shares(quirk: Optional[str], side: bool, pa: float, pb: float) -> tuple:
    """The label shares of a row with a quirk that sets them, else (pa, pb)."""
    if quirk in ("null_one_side", "empty_list", "empty_string", "empty_two_turns", "whitespace"):
        # The empty side usually loses (what the 4th-place post-processing assumes).
        pe, po = 0.04, 0.88
        return (pe, po) if side else (po, pe)
    if quirk in ("null_both_sides", "empty_both"):
        return 0.25, 0.25
    if quirk == "identical":
        return 0.1, 0.1
    if quirk == "identical_win":
        return 0.5, 0.5
    return pa, pb


def _make_row(rng: random.Random, row_id: int, quirk: Optional[str], pool: _PromptPool) -> dict:
    # The steps draw from `rng` in this order; any change changes the bytes.
    ma, mb = _pick_models(rng)
    turns = _turn_count(rng, quirk)
    ctx, prompt = _prompt_turns(rng, quirk, turns, pool)
    ra, rb = _response_turns(rng, ctx, turns, quirk)
    pa, pb = _label_shares(ma, mb, ra, rb)
    ra, rb, side, broken_field = _apply_quirk(rng, quirk, ctx, prompt, ra, rb)
    wa, wb, wt = _label(rng, *_quirk_shares(quirk, side, pa, pb))
    row = {
        "id": row_id,
        "model_a": ma,
        "model_b": mb,
        "prompt": encode_turns(prompt),
        "response_a": encode_turns(ra),
        "response_b": encode_turns(rb),
        "winner_model_a": wa,
        "winner_model_b": wb,
        "winner_tie": wt,
    }
    if broken_field is not None:
        row[broken_field] = _break_surrogate(row[broken_field], rng)
    return row


def iter_rows(n: int, seed: int = 0) -> Iterator[dict]:
    """Yield ``n`` synthetic rows (dicts with the keys of ``COLUMNS``; the text
    columns are JSON strings, the labels 0/1 ints), ids ascending like the real
    file. Deterministic in ``(n, seed)``; the arguments are checked at once."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _rows(n, seed)


def _rows(n: int, seed: int) -> Iterator[dict]:
    rng = random.Random(f"arena_fast.synth:{seed}")
    ids = sorted(rng.sample(range(1 << 32), n))
    quirks = _plan_quirks(rng, n)
    pool = _PromptPool(n)
    for i in range(n):
        yield _make_row(rng, ids[i], quirks.get(i), pool)


def generate_rows(n: int, seed: int = 0) -> list:
    """``n`` synthetic rows as a list of dicts (see ``iter_rows``)."""
    return list(iter_rows(n, seed))


def write_csv(path: Union[str, os.PathLike], n: int, seed: int = 0) -> int:
    """Write ``n`` synthetic rows to ``path`` as a Kaggle train.csv (header,
    QUOTE_MINIMAL, ``\\n`` line ends), atomically and durably
    (``arena_fast.files.replacing``). Same ``(n, seed)``, same bytes.
    Returns the number of rows written."""
    rows = iter_rows(n, seed)
    count = 0
    with replacing(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
            count += 1
    return count
