"""Reference: the budget strategies, from segment lengths to kept spans.

A turn is given as `seg` (tokens of prefix + text per field: prompt, A, B) and
`protect` (leading tokens of each segment that are never cut: the prefix).
A plan is a list of `(turn_index, cuts)` in conversation order, where a cut is
None (kept whole) or `(head, tail)`: keep `seg[:head] + marker + seg[len-tail:]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Frame:
    fixed: int  # BOS + begin + end + EOS
    headers: list[int]  # headers[k]: length of the header at position k + 1
    suffix: tuple[int, int, int]
    marker: int


@dataclass
class Budget:
    max_length: int
    strategy: str
    prompt_weight: float = 0.5
    min_segment_tokens: int = 32
    keep: str = "head"
    keep_first_turns: int = 0
    tail_ratios: tuple[float, float, float] = (0.2, 0.4, 0.4)
    min_tail_tokens: int = 80


@dataclass
class Plan:
    turns: list = field(default_factory=list)  # [(turn, [cut, cut, cut])]
    body_limit: int | None = None
    turns_kept: int = 0
    truncated: bool = False


def _protected(seg, protect, f):
    return min(protect[f], seg[f])


def _content(seg, protect, f):
    return seg[f] - _protected(seg, protect, f)


def water_fill(budget: int, sizes: list[int], weights: list[float], marker: int):
    """Weighted max-min fair split of `budget` tokens: returns [(kept, cut)].

    A segment is kept whole when that costs no more than its fair share plus
    the marker a cut would add; the level is raised as whole segments leave.
    """
    if sum(sizes) <= budget:
        return [(s, False) for s in sizes]
    active = list(range(len(sizes)))
    rest = budget
    level = 0.0
    while active:
        total_w = 0.0
        for j in active:
            total_w += weights[j]
        level = max((rest - marker * len(active)) / total_w, 0.0)
        whole = [j for j in active if sizes[j] <= math.floor(level * weights[j]) + marker]
        if not whole:
            break
        for j in whole:
            rest -= sizes[j]
        active = [j for j in active if j not in whole]
    alloc = [(s, False) for s in sizes]
    spent = 0
    for j in active:
        a = math.floor(level * weights[j])
        alloc[j] = (a, True)
        spent += a
    left = rest - marker * len(active) - spent
    for j in active:
        if left <= 0:
            break
        if alloc[j][0] + 1 + marker < sizes[j]:
            alloc[j] = (alloc[j][0] + 1, True)
            left -= 1
    return alloc


def _cut(cfg: Budget, protect: int, kept: int):
    if cfg.keep == "head":
        return (protect + kept, 0)
    return (protect + kept - kept // 2, kept // 2)


def _fill(cfg: Budget, turns, kept: list[int], budget: int, marker: int):
    sizes, weights = [], []
    for i in kept:
        seg, protect = turns[i]
        for f in range(3):
            sizes.append(_content(seg, protect, f))
            weights.append(cfg.prompt_weight if f == 0 else 1.0)
    alloc = water_fill(budget, sizes, weights, marker)
    plans = []
    for k, i in enumerate(kept):
        seg, protect = turns[i]
        cuts = []
        for f in range(3):
            a, is_cut = alloc[3 * k + f]
            cuts.append(_cut(cfg, _protected(seg, protect, f), a) if is_cut else None)
        plans.append((i, cuts))
    return plans


def _min_part(content: int, min_seg: int, marker: int) -> int:
    """Whole, or cut to `min_seg` plus the marker, whichever is shorter."""
    return min(content, min_seg + marker)


def _any_cut(plans) -> bool:
    return any(c is not None for _, cuts in plans for c in cuts)


def fourth_place(cfg: Budget, frame: Frame, turns) -> Plan:
    used = frame.fixed
    kept, truncated = [], False
    for i, (seg, _protect) in enumerate(turns):
        header = frame.headers[i]
        total = used + header + sum(seg[f] + frame.suffix[f] for f in range(3))
        if total <= cfg.max_length:
            kept.append((i, [None, None, None]))
            used = total
            continue
        rem = cfg.max_length - used - header - sum(frame.suffix) - 3 * frame.marker
        if rem >= cfg.min_tail_tokens:
            cuts = []
            for f in range(3):
                share = int(rem * cfg.tail_ratios[f])
                cuts.append((share, 0) if seg[f] > share else None)
            kept.append((i, cuts))
        truncated = True
        break
    return Plan(kept, None, len(kept), truncated or len(kept) < len(turns))


def fair(cfg: Budget, frame: Frame, turns) -> Plan:
    n = len(turns)
    if n == 0:
        return Plan()
    fixed = need = frame.fixed
    keep, fixed_at_keep = 0, 0
    for k in range(1, n + 1):
        seg, protect = turns[n - k]
        turn_fixed = frame.headers[k - 1] + sum(
            _protected(seg, protect, f) + frame.suffix[f] for f in range(3)
        )
        fixed += turn_fixed
        need += turn_fixed + sum(
            _min_part(_content(seg, protect, f), cfg.min_segment_tokens, frame.marker)
            for f in range(3)
        )
        if need > cfg.max_length and k > 1:
            break
        keep, fixed_at_keep = k, fixed
        if need > cfg.max_length:
            break
    kept = list(range(n - keep, n))
    plans = _fill(cfg, turns, kept, cfg.max_length - fixed_at_keep, frame.marker)
    return Plan(plans, None, keep, keep < n or _any_cut(plans))


def drop_oldest(cfg: Budget, frame: Frame, turns) -> Plan:
    n = len(turns)
    first = min(cfg.keep_first_turns, n)
    order = list(range(first)) + list(range(n - 1, first - 1, -1))
    used = frame.fixed
    plans = []
    for i in order:
        seg, protect = turns[i]
        header = frame.headers[len(plans)]
        full = sum(seg[f] + frame.suffix[f] for f in range(3))
        if used + header + full <= cfg.max_length:
            used += header + full
            plans.append((i, [None, None, None]))
            continue
        turn_fixed = sum(_protected(seg, protect, f) + frame.suffix[f] for f in range(3))
        budget = cfg.max_length - used - header - turn_fixed
        need = sum(
            _min_part(_content(seg, protect, f), cfg.min_segment_tokens, frame.marker)
            for f in range(3)
        )
        if budget >= need or not plans:
            plans.extend(_fill(cfg, turns, [i], budget, frame.marker))
        break
    plans.sort(key=lambda p: p[0])
    return Plan(plans, None, len(plans), len(plans) < n or _any_cut(plans))


def no_budget(cfg: Budget, frame: Frame, turns) -> Plan:
    limit = max(cfg.max_length - frame.fixed, 0)
    start = kept = 0
    for i, (seg, _protect) in enumerate(turns):
        end = start + frame.headers[i] + sum(seg[f] + frame.suffix[f] for f in range(3))
        if start < limit or end <= limit:
            kept += 1
        start = end
    truncated = start > limit
    plans = [(i, [None, None, None]) for i in range(len(turns))]
    return Plan(plans, limit if truncated else None, kept, truncated)


def share_prompt(plans: list[Plan], turns: list, marker: int) -> None:
    """The separate layout: `plans[0]` (prompt + A) and `plans[1]` (prompt + B),
    each planned alone over `turns[s]`, keep only the turns both kept; in each,
    both lay out the prompt as the plan that spends fewer tokens on it cuts it
    (A's on a tie: a whole segment costs its length, a cut one head + tail +
    marker). A `none` plan (a body limit) is left as it is."""
    if any(p.body_limit is not None for p in plans):
        return
    a, b = plans
    common = {i for i, _ in a.turns} & {i for i, _ in b.turns}
    a.turns = [t for t in a.turns if t[0] in common]
    b.turns = [t for t in b.turns if t[0] in common]

    def cost(cut, length):
        return length if cut is None else cut[0] + cut[1] + marker

    for (i, cuts_a), (_, cuts_b) in zip(a.turns, b.turns):
        length = turns[0][i][0][0]
        ca, cb = cuts_a[0], cuts_b[0]
        cuts_a[0] = cuts_b[0] = cb if cost(cb, length) < cost(ca, length) else ca
    for s, p in enumerate(plans):
        p.turns_kept = len(p.turns)
        p.truncated = p.turns_kept < len(turns[s]) or _any_cut(p.turns)


STRATEGIES = {
    "fourth_place": fourth_place,
    "fair": fair,
    "drop_oldest": drop_oldest,
    "none": no_budget,
}


def plan(cfg: Budget, frame: Frame, turns) -> Plan:
    """`turns`: a list of `(seg, protect)` triples per turn."""
    return STRATEGIES[cfg.strategy](cfg, frame, turns)
