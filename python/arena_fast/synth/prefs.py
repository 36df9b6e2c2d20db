"""Text-visible preferences of the synthetic rows.

Each row draws a plan: the quality of answer A and of answer B, one of

- ``good``: a complete, on-topic answer (it ends where a sentence ends);
- ``truncated``: stops mid-sentence, inside a word;
- ``off_topic``: about another topic (in English when the prompt is not);
- ``refusal``: declines ("I'm sorry, but I can't help with that request."),
  with a short lecture when it runs longer.

``good`` ranks first, ``truncated`` and ``off_topic`` second, ``refusal``
last. The label follows the ranks with a little noise (``WIN_SHARES``,
``EQUAL_SHARES``): the better answer wins 92% of the time, two answers of the
same rank (both good, both refusing, ...) tie 90% of the time. Everything is
symmetric in A and B: the plan table draws each unequal pair in both orders
with the same weight, and the shares of (B, A) are those of (A, B) with A and
B exchanged.

The answers keep the length distribution of ``stats``: a truncated or
off-topic answer takes its length from the bottom ``FLAWED_SHARE`` of the
quantile levels, a refusal from the next ones up to ``DEGRADED_SHARE``, a good
answer from the rest, so the mixture is the table's (and worse answers are
shorter, as in the real file, where long answers win more often)."""

from __future__ import annotations

import random

from .prose import Context, good_text, off_topic_context, refusal_text, truncated_text
from .stats import cumulative, pick

QUALITIES = ("good", "truncated", "off_topic", "refusal")
RANK = {"good": 2, "truncated": 1, "off_topic": 1, "refusal": 0}

# (better side wins, worse side wins, tie) and (A, B, tie) for equal ranks.
WIN_SHARES = (0.92, 0.03, 0.05)
EQUAL_SHARES = (0.05, 0.05, 0.90)

# Unordered pairs of qualities and their share of the rows; an unequal pair is
# drawn as (x, y) or (y, x) with half the weight each. The equal-rank rows
# (0.315) are the ties, the rest a clear winner.
_PAIRS = (
    (("good", "good"), 0.23),
    (("refusal", "refusal"), 0.055),
    (("truncated", "truncated"), 0.02),
    (("off_topic", "off_topic"), 0.005),
    (("truncated", "off_topic"), 0.005),
    (("good", "refusal"), 0.30),
    (("good", "truncated"), 0.23),
    (("good", "off_topic"), 0.06),
    (("truncated", "refusal"), 0.07),
    (("off_topic", "refusal"), 0.025),
)


def _ordered(pairs: tuple) -> tuple:
    out = []
    for (x, y), w in pairs:
        if x == y:
            out.append(((x, y), w))
        else:
            out.extend((((x, y), w / 2), ((y, x), w / 2)))
    return tuple(out)


PLANS = _ordered(_PAIRS)
_PLAN_NAMES, _PLAN_CUM = cumulative(PLANS)


def _share(qualities: tuple) -> float:
    return sum(w * ((x in qualities) + (y in qualities)) for (x, y), w in PLANS) / 2


# The shares of answers that are truncated or off topic, and that are not good:
# what the length levels make room for.
FLAWED_SHARE = _share(("truncated", "off_topic"))
DEGRADED_SHARE = _share(("truncated", "off_topic", "refusal"))


def draw_plan(rng: random.Random) -> tuple:
    """(quality of A, quality of B) for one row."""
    return pick(rng, _PLAN_NAMES, _PLAN_CUM)


def preference_shares(quality_a: str, quality_b: str) -> tuple:
    """(P(A wins), P(B wins), P(tie)) of a row with these answer qualities."""
    ra, rb = RANK[quality_a], RANK[quality_b]
    if ra == rb:
        return EQUAL_SHARES
    win, lose, tie = WIN_SHARES
    return (win, lose, tie) if ra > rb else (lose, win, tie)


def length_level(u: float, quality: str) -> float:
    """The quantile level of an answer's length: the uniform ``u`` mapped to
    the bottom ``FLAWED_SHARE`` of the levels for a truncated or off-topic
    answer (short: its end shows), the next ones up to ``DEGRADED_SHARE``
    for a refusal, the rest for a good answer."""
    if quality == "good":
        return DEGRADED_SHARE + (1.0 - DEGRADED_SHARE) * u
    if quality == "refusal":
        return FLAWED_SHARE + (DEGRADED_SHARE - FLAWED_SHARE) * u
    return FLAWED_SHARE * u


def side_context(rng: random.Random, ctx: Context, quality: str) -> Context:
    """The context an answer of this quality is written from."""
    return off_topic_context(rng, ctx) if quality == "off_topic" else ctx


def answer_text(rng: random.Random, ctx: Context, target: int, quality: str) -> str:
    """One turn of an answer of ``quality``, about ``target`` characters."""
    if quality == "refusal":
        return refusal_text(rng, target)
    if quality == "truncated":
        return truncated_text(rng, ctx, target)
    return good_text(rng, ctx, target)
