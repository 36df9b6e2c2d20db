"""The batch planner (docs/packing.md). Two layers: the invariants the
pure-Python reference (`arena_fast.reference.packing`) must keep, checked
on hand-worked examples and random inputs (the tests named *reference*), and
the Rust planner (`af.plan_packs`, `af.plan_batches`) equal to the reference
array for array, error class for error class, on random inputs."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Union

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from arena_fast.reference import SplitMix64
from arena_fast.reference import plan_batches as ref_plan_batches
from arena_fast.reference import plan_packs as ref_plan_packs
from arena_fast.reference.packing import BATCH_ORDERS, PACK_STRATEGIES

ARRAY_KEYS = ("indices", "offsets", "tokens", "cost", "rank_tokens", "dropped")
U64_MAX = 2**64 - 1


# -- helpers ---------------------------------------------------------------------------
def groups_of(plan: dict) -> list[list[int]]:
    """This rank's groups, as lists of rows, in step order."""
    idx, off = plan["indices"], plan["offsets"]
    return [idx[off[i] : off[i + 1]].tolist() for i in range(len(off) - 1)]


def all_ranks(planner: Callable[..., dict], lengths, **kwargs) -> list[dict]:
    world_size = kwargs.get("world_size", 1)
    return [planner(lengths, **kwargs, rank=r) for r in range(world_size)]


def check_plan(plans: list[dict], lengths, kind: str, kwargs: dict) -> None:
    """Every promise of docs/packing.md that can be checked from the outside,
    over the plans of all ranks of one call."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    world_size = len(plans)
    max_tokens = kwargs["max_tokens"]
    pair_swaps = kwargs.get("pair_swaps", True)
    max_rows = kwargs.get("max_rows")
    first = plans[0]
    steps = len(first["offsets"]) - 1
    seen: list[int] = list(first["dropped"])
    for rank, plan in enumerate(plans):
        for key in ARRAY_KEYS:
            assert plan[key].dtype == np.int64, key
            assert plan[key].ndim == 1, key
        assert isinstance(plan["fill"], float) and isinstance(plan["imbalance"], float)
        assert isinstance(plan["num_groups"], int)
        # Shared facts are the same on every rank; every rank has as many steps.
        assert len(plan["offsets"]) - 1 == steps, "ranks differ in step count"
        for key in ("rank_tokens", "dropped"):
            np.testing.assert_array_equal(plan[key], first[key])
        for key in ("fill", "imbalance", "num_groups"):
            assert plan[key] == first[key], key
        assert plan["offsets"][0] == 0 and plan["offsets"][-1] == len(plan["indices"])
        assert (np.diff(plan["offsets"]) > 0).all(), "an empty group"
        assert len(plan["tokens"]) == len(plan["cost"]) == steps
        assert plan["rank_tokens"][rank] == plan["tokens"].sum()
        for g, rows in enumerate(groups_of(plan)):
            real = int(lengths[rows].sum())
            assert plan["tokens"][g] == real
            if kind == "packs":
                assert plan["cost"][g] == real <= max_tokens, "pack over capacity"
            else:
                padded = len(rows) * int(lengths[rows].max())
                assert plan["cost"][g] == padded <= max_tokens, "batch over capacity"
                assert max_rows is None or len(rows) <= max_rows
            if pair_swaps:  # units whole, their rows ascending: 2u then 2u + 1
                pairs = np.asarray(rows).reshape(-1, 2)
                assert (pairs[:, 0] % 2 == 0).all() and (pairs[:, 1] == pairs[:, 0] + 1).all()
        seen.extend(plan["indices"].tolist())
    assert sorted(seen) == list(range(n)), "a row lost or repeated"
    dropped = first["dropped"]
    assert (np.diff(dropped) > 0).all()
    if pair_swaps and len(dropped):
        pairs = dropped.reshape(-1, 2)
        assert (pairs[:, 0] % 2 == 0).all() and (pairs[:, 1] == pairs[:, 0] + 1).all()
    if not kwargs.get("drop_last", False):
        assert len(dropped) == 0
    assert first["num_groups"] == steps * world_size
    # The reported figures, recomputed from the groups.
    costs = np.array([p["cost"] for p in plans], dtype=np.int64).reshape(world_size, steps)
    tokens = int(sum(p["tokens"].sum() for p in plans))
    if steps == 0:
        assert first["fill"] == 0.0 and first["imbalance"] == 0.0
        return
    capacity = steps * world_size * max_tokens if kind == "packs" else int(costs.sum())
    assert first["fill"] == float(tokens) / float(capacity)
    if world_size == 1:
        assert first["imbalance"] == 0.0
    else:
        sum_max = int(costs.max(axis=0).sum())
        assert first["imbalance"] == float(sum_max * world_size) / float(costs.sum()) - 1.0
        # Point 4: in step t the heaviest group goes to rank (-t) mod W.
        for t in range(steps):
            assert costs[(-t) % world_size, t] == costs[:, t].max()


# -- SplitMix64 ------------------------------------------------------------------------
def test_splitmix64_reference_test_vector():
    # The published outputs of SplitMix64 from state 0 (Vigna's splitmix64.c).
    rng = SplitMix64.from_state(0)
    assert [rng.next() for _ in range(5)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
        0xF88BB8A8724C81EC,
        0x1B39896A51A8749B,
    ]


def test_splitmix64_reference_seeding():
    for seed, epoch in [(0, 0), (0, 1), (12345, 7), (U64_MAX, U64_MAX)]:
        raw = SplitMix64.from_state(seed)
        want = raw.next() ^ epoch
        assert SplitMix64(seed, epoch).state == want
        a, b = SplitMix64(seed, epoch), SplitMix64.from_state(want)
        assert [a.next() for _ in range(4)] == [b.next() for _ in range(4)]


def test_splitmix64_reference_below_and_shuffle():
    rng = SplitMix64(3, 4)
    assert all(rng.below(1) == 0 for _ in range(10))
    for n in (2, 3, 10, 2**63 + 1, 2**64 - 1):
        assert all(0 <= rng.below(n) < n for _ in range(50))
    counts = np.bincount([rng.below(6) for _ in range(6000)], minlength=6)
    assert counts.min() > 850 and counts.max() < 1150
    items = list(range(100))
    rng.shuffle(items)
    assert sorted(items) == list(range(100)) and items != list(range(100))
    # below(n) rejects raw draws under (2^64 - n) mod n: none for a power of 2.
    replay, again = SplitMix64(3, 4), SplitMix64(3, 4)
    assert [again.below(8) for _ in range(5)] == [replay.next() % 8 for _ in range(5)]


# -- hand-worked examples --------------------------------------------------------------
LENGTHS6 = [5, 3, 4, 2, 6, 1]  # one row per unit in these examples


def packs6(strategy: str, **kwargs) -> list[list[int]]:
    kwargs.setdefault("shuffle", False)
    plan = ref_plan_packs(LENGTHS6, 10, strategy, pair_swaps=False, **kwargs)
    return groups_of(plan)


def test_plan_packs_reference_worked_examples():
    # greedy, index order: 5+3 | 4+2 | 6+1
    assert packs6("greedy") == [[0, 1], [2, 3], [4, 5]]
    # sorted: 6 | 5+4 | 3+2+1
    assert packs6("sorted") == [[4], [0, 2], [1, 3, 5]]
    # bfd: 6 -> p0 (room 4); 5 -> p1 (5); 4 -> p0, the tighter fit (0);
    # 3 -> p1 (2); 2 -> p1 (0); 1 -> p2.
    assert packs6("bfd") == [[4, 2], [0, 1, 3], [5]]
    # bfd ties go to the lowest pack id: 6, 6 -> rooms 4, 4; 3 -> p0.
    plan = ref_plan_packs([6, 6, 3], 10, "bfd", pair_swaps=False, shuffle=False)
    assert groups_of(plan) == [[0, 2], [1]]
    # Swap pairs: units (0, 1) and (2, 3) cost 8 and 6; bfd puts the heavier first.
    plan = ref_plan_packs([5, 3, 4, 2], 10, "bfd", shuffle=False)
    assert groups_of(plan) == [[0, 1], [2, 3]]
    assert plan["tokens"].tolist() == [8, 6] and plan["fill"] == 14 / 20


def test_plan_packs_reference_split_and_drop():
    # greedy gives 5+3 | 4+2 | 6+1 (costs 8, 6, 7); two ranks need an even count.
    # Split: every group has 2 units, the lowest position is split: 5 | 3 | 4+2 | 6+1.
    # Creation order: steps (5, 3), (6, 7); step 1 sorted is (7, 6) and rank 0
    # takes entry (0 + 1) mod 2, the 6.
    common = dict(max_tokens=10, strategy="greedy", pair_swaps=False, world_size=2)
    rank0, rank1 = all_ranks(ref_plan_packs, LENGTHS6, **common, shuffle=False)
    assert groups_of(rank0) == [[0], [2, 3]] and groups_of(rank1) == [[1], [4, 5]]
    assert rank0["cost"].tolist() == [5, 6] and rank1["cost"].tolist() == [3, 7]
    assert rank0["rank_tokens"].tolist() == [11, 10]
    assert rank0["num_groups"] == 4 and rank0["fill"] == 21 / 40
    assert rank0["imbalance"] == float((5 + 7) * 2) / 21.0 - 1.0
    # drop_last without shuffling drops the last group created.
    plan = ref_plan_packs(LENGTHS6, **common, shuffle=False, drop_last=True)
    assert plan["dropped"].tolist() == [4, 5] and plan["num_groups"] == 2
    # drop_last when shuffling drops the cheapest group: 4+2.
    plan = ref_plan_packs(LENGTHS6, **common, shuffle=True, drop_last=True)
    assert plan["dropped"].tolist() == [2, 3] and plan["num_groups"] == 2
    # Too few units to split for 4 ranks: an error, not a silent empty rank.
    with pytest.raises(af.ConfigError):
        ref_plan_packs([1, 1, 1], 10, "greedy", pair_swaps=False, world_size=4)
    # ... unless the remainder is dropped: then nothing is left at all.
    plan = ref_plan_packs([1, 1, 1], 10, "greedy", pair_swaps=False, world_size=4, drop_last=True)
    assert plan["num_groups"] == 0 and plan["dropped"].tolist() == [0, 1, 2]
    assert len(plan["offsets"]) == 1 and plan["fill"] == 0.0


def test_plan_batches_reference_worked_examples():
    lengths = [3, 9, 4, 4, 2, 8]
    # desc: 9 | 8 4 | 4 3 2 (padded 9, 16, 12).
    plan = ref_plan_batches(lengths, 16, order="desc", pair_swaps=False)
    assert groups_of(plan) == [[1], [5, 2], [3, 0, 4]]
    assert plan["cost"].tolist() == [9, 16, 12] and plan["tokens"].tolist() == [9, 12, 9]
    assert plan["fill"] == 30 / 37
    plan = ref_plan_batches(lengths, 16, max_rows=2, order="desc", pair_swaps=False)
    assert groups_of(plan) == [[1], [5, 2], [3, 0], [4]]
    # A pair counts two rows: (9, 4) pads to 2 x 9.
    plan = ref_plan_batches([9, 4, 3, 3], 18, order="desc")
    assert groups_of(plan) == [[0, 1], [2, 3]] and plan["cost"].tolist() == [18, 6]


def test_plan_batches_reference_megabatches():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 200, size=300).tolist()
    # megabatch=1: every unit is cut alone.
    plan = ref_plan_batches(lengths, 4096, megabatch=1, pair_swaps=False)
    assert plan["num_groups"] == 300
    # One mega-batch holding everything: the cuts see the same longest-row
    # sequence as "desc", so the batch sizes agree (the rows may differ on ties).
    grouped = ref_plan_batches(lengths, 4096, megabatch=300, pair_swaps=False)
    desc = ref_plan_batches(lengths, 4096, order="desc", pair_swaps=False)
    assert sorted(grouped["cost"].tolist()) == sorted(desc["cost"].tolist())
    # "grouped" depends on the unit shuffle, which the (seed, epoch) drives.
    other = ref_plan_batches(lengths, 4096, megabatch=16, pair_swaps=False, epoch=1)
    again = ref_plan_batches(lengths, 4096, megabatch=16, pair_swaps=False, epoch=0)
    first = ref_plan_batches(lengths, 4096, megabatch=16, pair_swaps=False)
    np.testing.assert_array_equal(first["indices"], again["indices"])
    assert other["indices"].tolist() != first["indices"].tolist()


def test_plan_reference_errors():
    ok = [4, 4, 4, 4]
    for kwargs in (
        dict(max_tokens=0),
        dict(strategy="first_fit"),
        dict(world_size=0),
        dict(world_size=2, rank=2),
        dict(rank=-1),
        dict(seed=-1),
        dict(seed=2**64),
        dict(epoch=2**64),
    ):
        with pytest.raises(af.ConfigError):
            ref_plan_packs(ok, **kwargs)
    for kwargs in (dict(order="asc"), dict(megabatch=0), dict(max_rows=0)):
        with pytest.raises(af.ConfigError):
            ref_plan_batches(ok, 64, **kwargs)
    with pytest.raises(af.ConfigError, match="even"):
        ref_plan_packs([4, 4, 4], 64)
    for bad in ([4, 0], [4, -3]):
        with pytest.raises(af.InputError, match="row 1"):
            ref_plan_packs(bad, 64, pair_swaps=False)
    lengths = [1] * 6 + [2500, 2500]
    msg = "rows 6 and 7 (a swap pair) need 5000 tokens together, more than max_tokens=4096"
    with pytest.raises(af.InputError) as info:
        ref_plan_packs(lengths, 4096)
    assert str(info.value) == msg
    with pytest.raises(af.InputError, match="row 6 needs 2500 tokens,"):
        ref_plan_packs(lengths, 2000, pair_swaps=False)
    with pytest.raises(af.InputError, match="rows 6 and 7"):
        ref_plan_batches(lengths, 4096)  # 2 x 2500 padded
    with pytest.raises(af.InputError, match="rows 0 and 1"):
        ref_plan_batches(lengths, 4096, max_rows=1)
    # Empty input: an empty plan, on every rank.
    for plan in all_ranks(ref_plan_packs, [], max_tokens=64, world_size=3):
        assert len(plan["offsets"]) == 1 and plan["num_groups"] == 0
        assert plan["rank_tokens"].tolist() == [0, 0, 0]


def realistic_lengths(n_pairs: int, seed: int = 0) -> np.ndarray:
    """Arena-like rows: log-normal lengths (median ~550 tokens) truncated at
    2048, both orders of a pair within a few tokens of each other."""
    rng = np.random.default_rng(seed)
    base = np.clip(rng.lognormal(6.3, 0.9, n_pairs), 40, 2048).astype(np.int64)
    other = np.clip(base + rng.integers(-3, 4, n_pairs), 1, 2048)
    return np.stack([base, other], axis=1).reshape(-1)


def test_plan_packs_reference_realistic_fill_and_speed():
    lengths = realistic_lengths(10_000)  # 20k rows
    start = time.perf_counter()
    plans = all_ranks(ref_plan_packs, lengths, max_tokens=16384, world_size=4)
    elapsed = time.perf_counter() - start
    assert elapsed < 20, f"the reference took {elapsed:.1f}s for 4 x 20k rows"
    check_plan(plans, lengths, "packs", dict(max_tokens=16384))
    assert plans[0]["fill"] >= 0.99
    assert plans[0]["imbalance"] < 0.02
    greedy = ref_plan_packs(lengths, 16384, "greedy")
    assert greedy["fill"] < plans[0]["fill"]


def test_plan_reference_determinism_and_epochs():
    lengths = realistic_lengths(3000, seed=5)
    base = dict(max_tokens=16384, world_size=2, rank=1)
    a = ref_plan_packs(lengths, **base, seed=7, epoch=3)
    b = ref_plan_packs(lengths, **base, seed=7, epoch=3)
    c = ref_plan_packs(lengths, **base, seed=7, epoch=4)
    d = ref_plan_packs(lengths, **base, seed=8, epoch=3)
    assert a["num_groups"] > 50
    for key in ARRAY_KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["indices"].tolist() != c["indices"].tolist()
    assert a["indices"].tolist() != d["indices"].tolist()
    # Pack composition depends on the lengths only: the epoch reorders packs.
    both = [
        all_ranks(ref_plan_packs, lengths, max_tokens=16384, world_size=2, epoch=epoch)
        for epoch in (3, 4)
    ]
    compositions = [sorted(tuple(g) for p in plans for g in groups_of(p)) for plans in both]
    assert compositions[0] == compositions[1]
    # Without shuffling the epoch changes nothing.
    e0 = ref_plan_packs(lengths, 16384, shuffle=False, epoch=0)
    e1 = ref_plan_packs(lengths, 16384, shuffle=False, epoch=1)
    np.testing.assert_array_equal(e0["indices"], e1["indices"])
    g0 = ref_plan_batches(lengths, 16384, epoch=0, world_size=2)
    g1 = ref_plan_batches(lengths, 16384, epoch=1, world_size=2)
    assert g0["indices"].tolist() != g1["indices"].tolist()


# -- random cases ----------------------------------------------------------------------
FAULTS = (
    "max_tokens",
    "world_size",
    "rank",
    "seed",
    "epoch",
    "name",
    "odd_rows",
    "zero_length",
    "negative_length",
    "too_long",
    "megabatch",
    "max_rows",
    "pair_max_rows",
)


@st.composite
def plan_cases(draw, kind: str) -> tuple[list[int], dict[str, Any], Optional[str]]:
    """(lengths, keyword arguments without rank, fault): valid arguments, or
    with one fault injected (its name says which)."""
    pair_swaps = draw(st.booleans())
    per_unit = 2 if pair_swaps else 1
    max_tokens = draw(st.one_of(st.integers(2, 40), st.sampled_from((64, 100, 512, 4096, 16384))))
    cap = max(max_tokens // per_unit, 1)
    shape = draw(st.sampled_from(("uniform", "short", "few", "long")))
    if shape == "uniform":
        length = st.integers(1, cap)
    elif shape == "short":
        length = st.integers(1, max(cap // 8, 1))
    elif shape == "few":
        length = st.sampled_from(draw(st.lists(st.integers(1, cap), min_size=1, max_size=3)))
    else:
        length = st.integers(max(cap // 2, 1), cap)
    n_units = draw(st.integers(0, 60))
    lengths = draw(st.lists(length, min_size=n_units * per_unit, max_size=n_units * per_unit))
    kwargs: dict[str, Any] = dict(
        max_tokens=max_tokens,
        pair_swaps=pair_swaps,
        world_size=draw(st.sampled_from((1, 1, 2, 3, 4, 8))),
        drop_last=draw(st.booleans()),
        seed=draw(st.one_of(st.integers(0, 5), st.integers(0, U64_MAX))),
        epoch=draw(st.one_of(st.integers(0, 5), st.integers(0, U64_MAX))),
    )
    if kind == "packs":
        kwargs["strategy"] = draw(st.sampled_from(PACK_STRATEGIES))
        kwargs["shuffle"] = draw(st.booleans())
    else:
        kwargs["order"] = draw(st.sampled_from(BATCH_ORDERS))
        kwargs["max_rows"] = draw(st.one_of(st.none(), st.integers(per_unit, 12)))
        kwargs["megabatch"] = draw(st.sampled_from((1, 2, 3, 8, 512)))
    fault = draw(st.sampled_from((None,) * 10 + FAULTS))
    if fault == "max_tokens":
        kwargs["max_tokens"] = draw(st.sampled_from((0, -1)))
    elif fault == "world_size":
        kwargs["world_size"] = 0
    elif fault == "rank":
        kwargs["rank"] = draw(st.sampled_from((-1, kwargs["world_size"])))
    elif fault in ("seed", "epoch"):
        kwargs[fault] = draw(st.sampled_from((-1, 2**64)))
    elif fault == "name":
        kwargs["strategy" if kind == "packs" else "order"] = "nope"
    elif fault == "odd_rows" and pair_swaps:
        lengths.append(1)
    elif fault in ("zero_length", "negative_length", "too_long") and lengths:
        at = draw(st.integers(0, len(lengths) - 1))
        lengths[at] = {"zero_length": 0, "negative_length": -5}.get(fault, max_tokens + 1)
    elif fault == "megabatch" and kind == "batches":
        kwargs["megabatch"] = 0
    elif fault == "max_rows" and kind == "batches":
        kwargs["max_rows"] = 0
    elif fault == "pair_max_rows" and kind == "batches" and pair_swaps and lengths:
        kwargs["max_rows"] = 1
    else:
        fault = None
    return lengths, kwargs, fault


PLANNERS = {"packs": ref_plan_packs, "batches": ref_plan_batches}


def outcome(planner: Callable[..., Any], lengths, kwargs: dict) -> Any:
    """The plan, or the class of the exception raised."""
    try:
        return planner(lengths, **kwargs)
    except Exception as exc:  # the class is what is compared
        return type(exc)


def ranks_of(kwargs: dict) -> list[dict]:
    if "rank" in kwargs:
        return [kwargs]
    world_size = kwargs["world_size"]
    return [dict(kwargs, rank=r) for r in range(max(world_size, 1))]


@pytest.mark.parametrize("kind", ["packs", "batches"])
@given(data=st.data())
def test_plan_reference_invariants(kind, data):
    lengths, kwargs, fault = data.draw(plan_cases(kind), label="case")
    results = [outcome(PLANNERS[kind], lengths, kw) for kw in ranks_of(kwargs)]
    if fault is not None:
        assert all(isinstance(r, type) and issubclass(r, af.ArenaFastError) for r in results)
        return
    if isinstance(results[0], type):
        # The one error a valid-looking call can meet: too few units to split.
        assert all(r is af.ConfigError for r in results)
        assert not kwargs["drop_last"] and kwargs["world_size"] > 1
        return
    check_plan(results, lengths, kind, kwargs)


def plan_as_dict(plan) -> dict:
    """The attributes of an `af` plan, with the sequence protocol checked."""
    out = {key: getattr(plan, key) for key in (*ARRAY_KEYS, "fill", "imbalance", "num_groups")}
    assert len(plan) == len(out["offsets"]) - 1
    groups = list(plan)
    assert len(groups) == len(plan)
    for i, rows in enumerate(groups):
        np.testing.assert_array_equal(
            rows, out["indices"][out["offsets"][i] : out["offsets"][i + 1]]
        )
    return out


def assert_same_plan(got: Any, want: Union[dict, type], context: str) -> None:
    if isinstance(want, type) or isinstance(got, type):
        assert got is want, f"{context}: got {got}, the reference gives {want}"
        return
    got = plan_as_dict(got)
    for key in ARRAY_KEYS:
        assert isinstance(got[key], np.ndarray), f"{context}: {key} is {type(got[key])}"
        assert got[key].dtype == np.int64, f"{context}: {key} dtype {got[key].dtype}"
        np.testing.assert_array_equal(got[key], want[key], err_msg=f"{context}: {key}")
    for key in ("fill", "imbalance"):
        assert isinstance(got[key], float), f"{context}: {key} is {type(got[key])}"
        assert got[key] == want[key], f"{context}: {key} {got[key]!r} != {want[key]!r}"
    assert type(got["num_groups"]) is int and got["num_groups"] == want["num_groups"], context


RUST_PLANNERS = {"packs": lambda: af.plan_packs, "batches": lambda: af.plan_batches}


@pytest.mark.parametrize("kind", ["packs", "batches"])
@given(data=st.data())
def test_rust_planner_equals_oracle(kind, data):
    lengths, kwargs, fault = data.draw(plan_cases(kind), label="case")
    as_array = data.draw(st.booleans(), label="lengths as numpy")
    given_lengths = np.asarray(lengths, dtype=np.int64) if as_array else lengths
    rust = RUST_PLANNERS[kind]()
    for kw in ranks_of(kwargs):
        context = f"{kind} lengths={lengths} {kw} fault={fault}"
        want = outcome(PLANNERS[kind], lengths, kw)
        got = outcome(rust, given_lengths, kw)
        assert_same_plan(got, want, context)


@pytest.mark.parametrize("world_size", [1, 3, 8])
def test_rust_planner_equals_oracle_realistic(world_size):
    lengths = realistic_lengths(10_000, seed=world_size)
    for rank in sorted({0, world_size - 1}):
        common = dict(world_size=world_size, rank=rank, seed=11, epoch=2)
        for strategy in PACK_STRATEGIES:
            for drop_last in (False, True):
                kw = dict(common, max_tokens=16384, strategy=strategy, drop_last=drop_last)
                assert_same_plan(
                    af.plan_packs(lengths, **kw), ref_plan_packs(lengths, **kw), f"packs {kw}"
                )
        for order in BATCH_ORDERS:
            for max_rows in (None, 16):
                kw = dict(common, max_tokens=8192, order=order, max_rows=max_rows)
                assert_same_plan(
                    af.plan_batches(lengths, **kw),
                    ref_plan_batches(lengths, **kw),
                    f"batches {kw}",
                )


def test_rust_planner_error_messages():
    lengths = [1] * 6 + [2500, 2500]
    with pytest.raises(af.InputError, match=r"rows 6 and 7"):
        af.plan_packs(lengths, max_tokens=4096)
    with pytest.raises(af.InputError, match=r"rows 6 and 7"):
        af.plan_batches(lengths, max_tokens=4096)
    with pytest.raises(af.InputError, match=r"row 1\b"):
        af.plan_packs([4, 0], max_tokens=64, pair_swaps=False)
    with pytest.raises(af.ConfigError):
        af.plan_packs([1, 1, 1], max_tokens=10, strategy="greedy", pair_swaps=False, world_size=4)


ODD_INPUTS = [
    # Two faults at once: a bad length is reported before an odd pairing.
    ("packs", [4, 0, 4], dict(max_tokens=64)),
    ("packs", [100, 1, 1], dict(max_tokens=64)),
    ("packs", [1, 100, 0, 1], dict(max_tokens=64)),
    ("packs", [0, 1], dict(max_tokens=64, strategy="x")),
    ("batches", [100, 1, 1, 1], dict(max_tokens=64, max_rows=1)),
    ("batches", [1, 0], dict(max_tokens=64, max_rows=1)),
    ("batches", [1, 1, 1], dict(max_tokens=64, max_rows=1)),
    # Empty input still has its arguments checked.
    ("packs", [], dict(max_tokens=0)),
    ("packs", [], dict(world_size=2, rank=5)),
    ("batches", [], dict(max_tokens=64, max_rows=0)),
    ("batches", [], dict(max_tokens=64, max_rows=1)),
    ("batches", [1, 1], dict(max_tokens=64, order="desc", megabatch=0)),
    # Types: lengths must be 1-D integers; integer arguments must be integers.
    ("packs", [1.0, 1.0], {}),
    ("packs", [True, True], {}),
    ("packs", [[1, 1]], {}),
    ("packs", np.array([3, 4], dtype=np.int32), {}),
    ("packs", np.array([3, 4], dtype=np.uint16), {}),
    ("packs", [1, 1], dict(seed=np.uint64(U64_MAX), epoch=np.int64(3))),
    ("packs", [1, 1], dict(max_tokens=64.0)),
    ("packs", [1, 1], dict(world_size=True)),
    ("batches", [1, 1], dict(max_tokens=64, megabatch=2.5)),
]


@pytest.mark.parametrize("kind,lengths,kwargs", ODD_INPUTS)
def test_rust_planner_odd_inputs(kind, lengths, kwargs):
    if kind == "batches":
        kwargs = dict({"max_tokens": 64}, **kwargs)
    want = outcome(PLANNERS[kind], lengths, kwargs)
    got = outcome(RUST_PLANNERS[kind](), lengths, kwargs)
    assert_same_plan(got, want, f"{kind} {lengths!r} {kwargs}")


def test_rust_planner_takes_encoded():
    rows = [[1] * n for n in realistic_lengths(200, seed=3).tolist()]
    enc = af.Encoded.from_lists(rows, swap_pairs=True)
    kw = dict(max_tokens=4096, world_size=2, rank=1)
    assert_same_plan(af.plan_packs(enc, **kw), ref_plan_packs(enc, **kw), "packs")
    assert_same_plan(af.plan_batches(enc, **kw), ref_plan_batches(enc, **kw), "batches")


def test_desc_plan_restores_row_order():
    lengths = np.array([5, 9, 1, 7, 7, 3, 8, 2], dtype=np.int64)
    plan = af.plan_batches(lengths, max_tokens=16, order="desc", pair_swaps=False)
    # Longest first over the whole set: the plan order is sorted by length.
    assert lengths[plan.indices].tolist() == sorted(lengths.tolist(), reverse=True)
    predictions = lengths[plan.indices] * 10.0  # one value per row, in plan order
    np.testing.assert_array_equal(plan.restore(predictions), lengths * 10.0)
    probs = np.stack([predictions, -predictions, predictions], axis=1)
    assert plan.restore(probs).shape == (8, 3)
    with pytest.raises(af.InputError, match="values"):
        plan.restore(predictions[:-1])
    # A rank restores only its rows; the others stay NaN until gathered.
    half = af.plan_batches(lengths, 16, order="desc", pair_swaps=False, world_size=2, rank=1)
    restored = half.restore(lengths[half.indices].astype(float))
    assert np.isnan(restored).sum() == 8 - len(half.indices)
    np.testing.assert_array_equal(restored[half.indices], lengths[half.indices])


def test_plan_object_views_and_repr():
    plan = af.plan_packs(np.full(10, 3), max_tokens=7, pair_swaps=True, seed=4)
    assert len(plan) == len(list(plan)) == plan.num_groups == 5
    assert plan[0].tolist() == next(iter(plan)).tolist()
    assert plan[-1].tolist() == list(plan)[-1].tolist()
    with pytest.raises(IndexError):
        plan[5]
    assert plan.rows_per_step.tolist() == [2] * 5
    assert "packs" in repr(plan) and "fill=" in repr(plan)
