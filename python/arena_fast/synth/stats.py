"""The shape of the real train.csv that the synthetic rows follow (from its
public EDA): label shares, models and their strength, quirk rates, turns per
row, characters per prompt and response, languages and prompt kinds; and the
draws from those distributions."""

from __future__ import annotations

import bisect
import math
import random
from typing import Any

# Shares of the real file: A wins, B wins, tie.
LABEL_SHARES = (0.349, 0.342, 0.309)

# What ordinary rows draw from without preferences (`iter_rows(...,
# preferences=False)`; with them, `prefs` sets the shares): a little more tie
# than LABEL_SHARES, because the empty-side quirks below are rarely a tie.
BASE_SHARES = (0.3475, 0.3405, 0.312)

# (name, sampling weight, strength). Without preferences, strength nudges the
# label a little (symmetric in A and B); with them, the text decides.
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
TURN_VALUES = tuple(t for t, _ in _TURN_WEIGHTS)
TURN_CUM = tuple(sum(w for _, w in _TURN_WEIGHTS[: i + 1]) for i in range(len(_TURN_WEIGHTS)))
P_MULTI = 1.0 - _TURN_WEIGHTS[0][1]

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


PROMPT_TABLE = _table(_PROMPT_CHARS)
RESPONSE_TABLE = _table(_RESPONSE_CHARS)


def quantile(table: tuple, w: float) -> int:
    """The characters at quantile level ``w`` of a ``_table``."""
    probs, logs = table
    i = bisect.bisect_right(probs, w)
    if i <= 0:
        return int(math.exp(logs[0]))
    if i >= len(probs):
        return int(math.exp(logs[-1]))
    p0, p1 = probs[i - 1], probs[i]
    x = logs[i - 1] + (logs[i] - logs[i - 1]) * (w - p0) / (p1 - p0)
    return max(1, int(round(math.exp(x))))


def phi(z: float) -> float:
    """The standard normal CDF."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def level(u: float, multi: bool, rng: random.Random) -> float:
    """A quantile level that is uniform over all rows but higher for
    multi-turn rows: max(u, v) for those, then mapped through the mixture CDF
    F(x) = (1 - p) x + p x^2."""
    if multi:
        u = max(u, rng.random())
    return (1.0 - P_MULTI) * u + P_MULTI * u * u


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


def cumulative(pairs: tuple) -> tuple:
    """``((name, weight), ...)`` as ``(names, cumulative weights)`` for ``pick``."""
    names, cum, total = [], [], 0.0
    for name, w in pairs:
        total += w
        names.append(name)
        cum.append(total)
    return tuple(names), tuple(cum)


KIND_NAMES, KIND_CUM = cumulative(_PROMPT_KINDS)
LANG_NAMES, LANG_CUM = cumulative(_LANG_WEIGHTS)
MODEL_NAMES = tuple(m[0] for m in MODELS)
MODEL_STRENGTH = {m[0]: m[2] for m in MODELS}
MODEL_CUM = cumulative(tuple((m[0], m[1]) for m in MODELS))[1]


def pick(rng: random.Random, names: tuple, cum: tuple) -> Any:
    """One of ``names``, drawn by the cumulative weights ``cum``."""
    return names[bisect.bisect_right(cum, rng.random() * cum[-1])]


def split_total(rng: random.Random, total: int, turns: int, minimum: int) -> list:
    """``total`` characters shared at random among ``turns`` turns, each at
    least ``minimum``."""
    if turns == 1:
        return [total]
    weights = [rng.random() + 0.25 for _ in range(turns)]
    s = sum(weights)
    return [max(minimum, int(total * w / s)) for w in weights]
