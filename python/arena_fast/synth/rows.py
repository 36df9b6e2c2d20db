"""Synthetic rows: the quirk plan, recurring prompts, one row in named steps
(models, turns, prompt, responses, quirk, label), and the public
``iter_rows`` / ``generate_rows`` / ``write_csv``."""

from __future__ import annotations

import bisect
import csv
import json
import math
import os
import random
import re
from collections.abc import Iterator
from typing import Optional, Union

from ..files import replacing
from ..sources.kaggle import COLUMNS as KAGGLE_COLUMNS
from .prefs import answer_text, draw_plan, length_level, preference_shares, side_context
from .prose import (
    Context,
    draw_context,
    prompt_text,
    response_text,
    special_prompt,
    special_reply,
    with_emoji,
)
from .stats import (
    BASE_SHARES,
    MODEL_CUM,
    MODEL_NAMES,
    MODEL_STRENGTH,
    P_MULTI,
    PROMPT_TABLE,
    QUIRKS,
    RESPONSE_TABLE,
    TURN_CUM,
    TURN_VALUES,
    level,
    phi,
    pick,
    quantile,
    split_total,
)

# The Kaggle train.csv header, as the Kaggle reader defines it.
COLUMNS = KAGGLE_COLUMNS

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
            ctx = draw_context(rng)
            target = quantile(PROMPT_TABLE, rng.random())
            got = (ctx, prompt_text(rng, ctx, target, 0))
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
    ma = pick(rng, MODEL_NAMES, MODEL_CUM)
    mb = ma
    while mb == ma:
        mb = pick(rng, MODEL_NAMES, MODEL_CUM)
    return ma, mb


def _turn_count(rng: random.Random, quirk: Optional[str]) -> int:
    turns = pick(rng, TURN_VALUES, TURN_CUM)
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
        and rng.random() < _PromptPool._SHARE / (1.0 - P_MULTI)
    ):
        ctx, first = pool.draw(rng)
        return ctx, [first]
    ctx = draw_context(rng, english=quirk == "special_tokens")
    total = quantile(PROMPT_TABLE, level(rng.random(), multi, rng))
    prompt = [prompt_text(rng, ctx, t, i) for i, t in enumerate(split_total(rng, total, turns, 2))]
    if quirk == "special_tokens":
        special = special_prompt(rng, ctx)
        prompt[0] = special if rng.random() < 0.6 else f"{prompt[0]}\n\n{special}"
    elif rng.random() < 0.01:
        prompt[0] = with_emoji(rng, prompt[0])
    return ctx, prompt


def _response_turns(
    rng: random.Random, ctx: Context, turns: int, quirk: Optional[str], plan: Optional[tuple]
) -> tuple:
    """The turns of response A and B. Their lengths are correlated (Gaussian
    copula, rho 0.5), each marginal following the table; multi-turn rows run
    longer. With a ``plan`` (``prefs.draw_plan``), each answer is written to
    its quality, its length level placed by ``prefs.length_level``."""
    multi = turns > 1
    za = rng.gauss(0.0, 1.0)
    zb = 0.5 * za + 0.8660254037844386 * rng.gauss(0.0, 1.0)
    sides = []
    for z, quality in zip((za, zb), plan or (None, None)):
        side_ctx = ctx
        if ctx.lang != "en" and rng.random() < 0.15:
            side_ctx = Context("en", ctx.topic, ctx.kind)
        u = phi(z)
        if quality is not None:
            u = length_level(u, quality)
            side_ctx = side_context(rng, side_ctx, quality)
        total = quantile(RESPONSE_TABLE, level(u, multi, rng))
        parts = split_total(rng, total, turns, 1)
        if quality is None:
            texts = [response_text(rng, side_ctx, t) for t in parts]
        else:
            texts = [answer_text(rng, side_ctx, t, quality) for t in parts]
        if rng.random() < 0.035:
            j = rng.randrange(len(texts))
            texts[j] = with_emoji(rng, texts[j], astral=False)
        sides.append(texts)
    ra, rb = sides
    if quirk == "special_tokens" and rng.random() < 0.5:
        ra[0] = special_reply(rng, ctx) + "\n\n" + ra[0]
    return ra, rb


def _label_shares(ma: str, mb: str, ra: list, rb: list) -> tuple:
    """(P(A wins), P(B wins)): the base shares, nudged by model strength and
    response length."""
    sa, sb = MODEL_STRENGTH[ma], MODEL_STRENGTH[mb]
    ratio = math.log((_text_len(ra) + 50.0) / (_text_len(rb) + 50.0))
    d = 0.07 * math.tanh(sa - sb) + 0.08 * math.tanh(0.8 * ratio)
    return BASE_SHARES[0] + d, BASE_SHARES[1] - d


def _apply_quirk(
    rng: random.Random, quirk: Optional[str], ctx: Context, prompt: list, ra: list, rb: list
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
            target.append(response_text(rng, ctx, rng.randint(20, 400)))
    elif quirk == "lone_surrogate":
        broken_field = rng.choice(("response_a", "response_b", "prompt"))
        turns_list = {"response_a": ra, "response_b": rb, "prompt": prompt}[broken_field]
        j = rng.randrange(len(turns_list))
        turns_list[j] = with_emoji(rng, turns_list[j] or "")
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


def _make_row(
    rng: random.Random, row_id: int, quirk: Optional[str], pool: _PromptPool, plan: Optional[tuple]
) -> dict:
    # The steps draw from `rng` in this order; any change changes the bytes.
    ma, mb = _pick_models(rng)
    turns = _turn_count(rng, quirk)
    ctx, prompt = _prompt_turns(rng, quirk, turns, pool)
    ra, rb = _response_turns(rng, ctx, turns, quirk, plan)
    if plan is None:
        pa, pb = _label_shares(ma, mb, ra, rb)
    else:
        pa, pb, _ = preference_shares(*plan)
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


def iter_rows(n: int, seed: int = 0, *, preferences: bool = True) -> Iterator[dict]:
    """Yield ``n`` synthetic rows (dicts with the keys of ``COLUMNS``; the text
    columns are JSON strings, the labels 0/1 ints), ids ascending like the real
    file. Deterministic in ``(n, seed, preferences)``; the arguments are
    checked at once.

    With ``preferences`` (the default) the label follows what the text shows
    (``synth.prefs``: a refusal loses to an answer, a truncated or off-topic
    answer to a complete one, equal answers tie, with a little noise). Without,
    the rows are those written before the preferences came: the label
    barely depends on the text (model strength and length nudge it); the demo
    tokenizer was trained on those."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _rows(n, seed, bool(preferences))


def _rows(n: int, seed: int, preferences: bool) -> Iterator[dict]:
    rng = random.Random(f"arena_fast.synth:{seed}")
    # The plans come from a stream of their own: `rng` draws what it drew
    # before the preferences, so preferences=False gives the same bytes.
    plans = random.Random(f"arena_fast.synth.prefs:{seed}")
    ids = sorted(rng.sample(range(1 << 32), n))
    quirks = _plan_quirks(rng, n)
    pool = _PromptPool(n)
    for i in range(n):
        plan = draw_plan(plans) if preferences else None
        yield _make_row(rng, ids[i], quirks.get(i), pool, plan)


def generate_rows(n: int, seed: int = 0, *, preferences: bool = True) -> list:
    """``n`` synthetic rows as a list of dicts (see ``iter_rows``)."""
    return list(iter_rows(n, seed, preferences=preferences))


def write_csv(
    path: Union[str, os.PathLike], n: int, seed: int = 0, *, preferences: bool = True
) -> int:
    """Write ``n`` synthetic rows to ``path`` as a Kaggle train.csv (header,
    QUOTE_MINIMAL, ``\\n`` line ends), atomically and durably
    (``arena_fast.files.replacing``). Same ``(n, seed, preferences)``, same
    bytes. Returns the number of rows written."""
    rows = iter_rows(n, seed, preferences=preferences)
    count = 0
    with replacing(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS])
            count += 1
    return count
