"""The text of synthetic prompts and responses: the word lists and templates
of ``data/synth_words.json`` (all invented, read once on import), the English
sentence bank built from them, and the builders of prompts, responses and
their blocks (paragraphs, lists, tables, code, poems) to a target length."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Optional

from .stats import KIND_CUM, KIND_NAMES, LANG_CUM, LANG_NAMES, cumulative, pick

# Special-token strings that users paste into prompts (the special_tokens quirk).
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

# ---------------------------------------------------------------------------
# Word lists and templates (all invented), in data/synth_words.json
# ---------------------------------------------------------------------------

_WORDS_FILE = Path(__file__).parent.parent / "data" / "synth_words.json"


def _frozen(value: Any) -> Any:
    """JSON lists as tuples, all the way down (the lists are constants)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _load_words(path: Path = _WORDS_FILE) -> dict:
    with open(path, encoding="utf-8") as f:
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

# Block types of a response and their weights, by prompt kind.
_BLOCK_WEIGHTS = {
    "question": (("para", 45), ("numbered", 30), ("bullets", 10), ("section", 10), ("table", 5)),
    "code": (("code", 45), ("para", 35), ("numbered", 15), ("bullets", 5)),
    "creative": (("poem", 40), ("para", 60)),
    "reasoning": (("steps", 50), ("para", 50)),
    "roleplay": (("para", 80), ("bullets", 20)),
    "chat": (("para", 85), ("bullets", 10), ("section", 5)),
}
_BLOCK_CUM = {kind: cumulative(pairs) for kind, pairs in _BLOCK_WEIGHTS.items()}

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


class Context:
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


def draw_context(rng: random.Random, english: bool = False) -> Context:
    """A row's language (English when ``english``: the language is drawn all
    the same), prompt kind and topic."""
    lang = pick(rng, LANG_NAMES, LANG_CUM)
    if english:
        lang = "en"
    kind = pick(rng, KIND_NAMES, KIND_CUM)
    topic = rng.choice(_CODE_TOPICS if kind == "code" else _TOPIC_NAMES)
    return Context(lang, topic, kind)


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


def _paragraph(rng: random.Random, ctx: Context, budget: int) -> str:
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


def _block(rng: random.Random, ctx: Context, kind: str, budget: int) -> str:
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


def response_text(rng: random.Random, ctx: Context, target: int) -> str:
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
            kind = pick(rng, names, cum)
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


def _sloppy(rng: random.Random, text: str, ctx: Context) -> str:
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


def _fill_slots(rng: random.Random, template: str, ctx: Context) -> str:
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


def special_prompt(rng: random.Random, ctx: Context) -> str:
    """A prompt holding special-token strings (``<eos>``, ``<|im_start|>``, ...)."""
    return _fill_slots(rng, rng.choice(_SPECIAL_PROMPTS), ctx)


def special_reply(rng: random.Random, ctx: Context) -> str:
    """A reply that mentions special-token strings."""
    return _fill_slots(rng, rng.choice(_SPECIAL_REPLIES), ctx)


def prompt_text(rng: random.Random, ctx: Context, target: int, turn: int) -> str:
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


def with_emoji(rng: random.Random, text: str, astral: bool = True) -> str:
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
# Answers made worse on purpose (``synth.prefs``): refusals, truncated and
# off-topic answers; and good answers that end where a sentence ends
# ---------------------------------------------------------------------------

_PREFS_FILE = Path(__file__).parent.parent / "data" / "synth_prefs.json"
_PREFS = _load_words(_PREFS_FILE)
REFUSALS = _PREFS["refusals"]
_LECTURES = _PREFS["lectures"]
_REFUSING = ("sorry", "cannot", "can't", "unable")
_GOOD_SHORT = tuple(s for s in _SHORT_REPLIES if not any(w in s for w in _REFUSING))
# How a complete answer may end (a sentence, a code block, a table row, ...).
_COMPLETE_ENDS = tuple(".!?)`|*:\"'\u3002\uff01\uff1f")


def refusal_text(rng: random.Random, target: int) -> str:
    """A refusal, followed by a short lecture when ``target`` leaves room:
    about ``target`` characters, never cut inside the refusal itself."""
    parts = [rng.choice(REFUSALS)]
    n = len(parts[0])
    while n < target - 40:
        lecture = rng.choice(_LECTURES)
        parts.append(lecture)
        n += len(lecture) + 1
    return " ".join(parts)


def good_text(rng: random.Random, ctx: Context, target: int) -> str:
    """An answer that is complete: it ends where a sentence (or block) ends,
    and a short one is never a refusal."""
    if target < 40:
        return _cut(rng.choice(_GOOD_SHORT), target)
    text = response_text(rng, ctx, target)
    if text.endswith(_COMPLETE_ENDS) or text[-1:].isdigit():
        return text
    end = max(text.rfind(". "), text.rfind("\n"))
    if end >= 0.7 * len(text):
        return text[: end + 1].rstrip()
    return text + "."


def truncated_text(rng: random.Random, ctx: Context, target: int) -> str:
    """An answer that stops mid-sentence, inside a word (no final punctuation),
    about ``target`` characters long."""
    text = response_text(rng, ctx, max(target, 12)).rstrip(" \n.!?:)`|*")
    word = text.rfind(" ")
    if word > 0 and len(text) - word > 3:
        text = text[: len(text) - rng.randint(1, len(text) - word - 2)]
    elif word > 0:
        text = text[:word]
    return text.rstrip(" \n.,;!?:)`|*\u3002")


def off_topic_context(rng: random.Random, ctx: Context) -> Context:
    """An English context on another topic (a chat or question answer when
    the prompt asked for code): what an off-topic answer is written from."""
    topic = rng.choice(tuple(t for t in _TOPIC_NAMES if t != ctx.topic and t not in _CODE_TOPICS))
    return Context("en", topic, "question" if ctx.kind == "code" else ctx.kind)
