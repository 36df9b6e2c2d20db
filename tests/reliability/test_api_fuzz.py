"""Hypothesis over the public Python API with arguments of wrong types and
shapes: every call returns a valid result or raises `af.ArenaFastError`,
never anything else, never a crash.

The strategies draw wrong types, huge values and ragged shapes alike. The
examples that found F9-F16 (docs/reliability.md) are kept as tests below;
the ones that once killed the interpreter run in a subprocess under an
address-space limit. A new finding is pinned as a strict xfail example and
the strategy narrowed around it until its fix lands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arena_fast as af

TOK = af.Tokenizer.demo()
VOCAB = TOK.vocab_size
ERRORS = (af.ArenaFastError,)
MORE = settings(max_examples=200)  # cheap calls: more examples than the profile's

# -- strategies ---------------------------------------------------------------------------
# Text as it may arrive from Python: surrogates included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
# Text that can be UTF-8 (what options and templates are made of).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | ANY_TEXT
    | st.binary(max_size=6)
    | st.sampled_from([float("nan"), float("inf"), -1, 0, 2**31, 2**63, 2**64])
)
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


def _numpy_takes(value: Any) -> bool:
    """np.asarray accepts it (ragged lists: test_ragged_arrays_are_input_errors)."""
    try:
        np.asarray(value)
    except ValueError:
        return False
    return True


ARRAYISH = ANYTHING.filter(_numpy_takes)
# Option values of the wrong type that the options below reject with ConfigError today.
JUNK = (
    st.none()
    | st.floats()
    | TEXT
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
)
COUNT = st.integers(-(2**70), 2**70) | JUNK


def _options() -> st.SearchStrategy[dict]:
    values = {
        "template": st.sampled_from(af.TEMPLATES) | TEXT | st.none() | st.integers(),
        "strategy": st.sampled_from(af.STRATEGIES) | TEXT | JUNK,
        "max_length": st.integers(-(2**63), 2**63 - 1) | st.integers(1, 4096) | JUNK,
        "tokenize": st.sampled_from(["split", "joint"]) | TEXT | JUNK,
        "bos_token": st.sampled_from([None, False, True, "<bos>", "<eos>", "<nope>", 2, -1])
        | st.integers()
        | JUNK,
        "eos_token": st.sampled_from([None, False, "<eos>", 1, VOCAB, VOCAB - 1]) | JUNK,
        "split_special_tokens": st.booleans() | st.none() | st.integers() | TEXT,
        "null_text": TEXT,
        "num_threads": st.none() | st.integers(-3, 4),
        "prompt_weight": st.floats() | st.integers(-(10**6), 10**6),
        "min_segment_tokens": COUNT,
        "keep": st.sampled_from(["head", "head_tail"]) | TEXT,
        "keep_first_turns": COUNT,
        "tail_ratios": st.lists(st.floats() | st.integers(-3, 3), max_size=4).map(tuple),
        "min_tail_tokens": COUNT,
    }
    return st.fixed_dictionaries({}, optional=values)


TEMPLATES = st.builds(
    af.Template,
    begin=TEXT,
    end=TEXT,
    first_header=TEXT,
    header=TEXT | st.just("{i}" * 5),
    prompt_prefix=TEXT,
    a_prefix=TEXT,
    b_suffix=TEXT,
    marker=TEXT,
    join_turns=st.none() | TEXT,
)
SWAP = st.sampled_from([False, True, "both"])
TURN_ROWS = st.lists(st.lists(st.none() | ANY_TEXT, max_size=3), min_size=1, max_size=3)


# -- checks ----------------------------------------------------------------------------------
def outcome(call: Callable[[], Any], allowed: tuple = ERRORS) -> Any:
    """The call's result, or None when it raised one of `allowed`; any other
    exception fails the example, naming it."""
    try:
        return call()
    except allowed:
        return None
    except BaseException as exc:  # everything else is the finding
        raise AssertionError(f"{type(exc).__module__}.{type(exc).__name__}: {exc}") from exc


def check_encoded(out: af.Encoded, rows: int, swap: Any, max_length: int) -> None:
    """An `af.Encoded` that keeps every promise visible from outside."""
    n = rows * 2 if swap == "both" else rows
    assert len(out) == n
    offsets = np.asarray(out.offsets)
    assert offsets.dtype == np.int64 and offsets[0] == 0 and offsets[-1] == len(out.input_ids)
    assert (np.diff(offsets) >= 0).all()
    assert out.input_ids.dtype == np.int32
    assert ((out.input_ids >= 0) & (out.input_ids < VOCAB)).all()
    assert (out.lengths <= max_length).all(), (out.lengths, max_length)
    assert ((out.repairs >= 0) & (out.repairs <= 7)).all()
    assert (out.turns_kept <= out.turns_total).all()
    if swap == "both":
        assert out.is_swapped.tolist() == [False, True] * rows
    else:
        assert out.is_swapped.tolist() == [bool(swap)] * rows


def _encode_some(enc: af.Encoder, swap: Any) -> None:
    p, a, b = [["What is 2+2?", None]], [["4"]], [["Four, since 2+2=4.", "ok"]]
    out = outcome(lambda: enc.encode(p, a, b, swap=swap))
    if out is not None:
        check_encoded(out, 1, swap, enc.max_length)


# -- Encoder options and templates -----------------------------------------------------------
@given(options=_options(), swap=SWAP)
def test_encoder_options(options: dict, swap: Any) -> None:
    enc = outcome(lambda: af.Encoder(TOK, **options))
    if enc is not None:
        _encode_some(enc, swap)


@given(template=TEMPLATES, max_length=st.integers(1, 600), strategy=st.sampled_from(af.STRATEGIES))
def test_encoder_templates(template: af.Template, max_length: int, strategy: str) -> None:
    enc = outcome(
        lambda: af.Encoder(TOK, template=template, max_length=max_length, strategy=strategy)
    )
    if enc is not None:
        _encode_some(enc, "both")


@given(tokenizer=ANYTHING)
def test_encoder_tokenizer_argument(tokenizer: Any) -> None:
    outcome(lambda: af.Encoder(tokenizer))


# -- encode / encode_json with arbitrary Python objects ---------------------------------------
ENC = af.Encoder(TOK, max_length=96)
COLUMN = st.lists(ANYTHING, max_size=3) | ANYTHING | TURN_ROWS


@MORE
@given(p=COLUMN, a=COLUMN, b=COLUMN, swap=SWAP)
def test_encode_arbitrary_objects(p: Any, a: Any, b: Any, swap: Any) -> None:
    out = outcome(lambda: ENC.encode(p, a, b, swap=swap))
    if out is not None:
        check_encoded(out, len(p), swap, ENC.max_length)


@MORE
@given(p=COLUMN, a=COLUMN, b=COLUMN, swap=SWAP)
def test_encode_json_arbitrary_objects(p: Any, a: Any, b: Any, swap: Any) -> None:
    out = outcome(lambda: ENC.encode_json(p, a, b, swap=swap))
    if out is not None:
        check_encoded(out, len(p), swap, ENC.max_length)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=2),
    max_leaves=6,
)


@st.composite
def json_cells(draw) -> str:
    """Kaggle cells: JSON turn lists (lone surrogates as escapes), other JSON
    values, and either of those cut short or with a character changed."""
    value = draw(TURN_ROWS.map(lambda rows: rows[0]) | JSON_VALUES)
    text = json.dumps(value)
    how = draw(st.sampled_from(["as is", "as is", "cut", "poke"]))
    if how == "cut" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif how == "poke" and text:
        k = draw(st.integers(0, len(text) - 1))
        text = text[:k] + draw(st.sampled_from(list('[]",\\{}: \x00\ufeffnul'))) + text[k + 1 :]
    return text


@MORE
@given(cells=st.lists(st.tuples(json_cells(), json_cells(), json_cells()), max_size=3), swap=SWAP)
def test_encode_json_cells(cells: list, swap: Any) -> None:
    """Broken JSON is an InputError; a cell that parses as a list of strings
    and nulls encodes exactly as `encode` does with the parsed turns."""
    p, a, b = ([row[i] for row in cells] for i in range(3))
    out = outcome(lambda: ENC.encode_json(p, a, b, swap=swap))
    parsed = []
    for row in cells:
        try:
            turns = [json.loads(cell) for cell in row]
        except ValueError:
            break
        if not all(
            isinstance(t, list) and all(x is None or isinstance(x, str) for x in t) for t in turns
        ):
            break
        parsed.append(turns)
    if len(parsed) < len(cells):
        return
    assert out is not None, "every cell is a JSON list of strings and nulls"
    check_encoded(out, len(cells), swap, ENC.max_length)
    ref = ENC.encode(*([row[i] for row in parsed] for i in range(3)), swap=swap)
    assert out.to_lists() == ref.to_lists()
    assert out.repairs.tolist() == ref.repairs.tolist()


# -- planning ------------------------------------------------------------------------------------
def _lengths() -> st.SearchStrategy[Any]:
    dtypes = st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"])
    arrays = st.tuples(dtypes, st.lists(st.integers(-(2**70), 2**70), max_size=12)).map(
        lambda t: np.array([v % (1 << 64) for v in t[1]], dtype=np.uint64).astype(t[0])
    )
    return (
        st.lists(st.integers(1, 300), max_size=16)
        | st.lists(st.integers(-5, 2**62), max_size=6)
        | arrays
        | st.lists(st.floats(), max_size=3)
        | st.lists(st.lists(st.integers(0, 9), min_size=2, max_size=2), max_size=2)
        | ARRAYISH
    )


PLAN_INTS = st.integers(-(2**65), 2**65) | st.integers(0, 64) | JUNK | st.booleans()
RANKS = st.integers(-2, 1024) | st.sampled_from([2**20, 2**20 + 1, 2**40]) | JUNK


def _check_plan(plan: af.Plan, lengths: Any, kind: str, max_tokens: Any, world_size: Any) -> None:
    lengths = np.asarray(lengths).astype(np.int64)
    rows = plan.indices.tolist()
    assert all(0 <= r < len(lengths) for r in rows)
    if world_size == 1:
        assert sorted(rows + plan.dropped.tolist()) == list(range(len(lengths)))
    for group in plan:
        size = lengths[group]
        cost = size.sum() if kind == "packs" else len(group) * (size.max() if len(group) else 0)
        assert cost <= int(max_tokens)


@MORE
@given(
    lengths=_lengths(),
    max_tokens=PLAN_INTS,
    strategy=st.sampled_from(["bfd", "greedy", "sorted"]) | TEXT,
    pair_swaps=st.booleans(),
    seed=PLAN_INTS,
    epoch=PLAN_INTS,
    world_size=RANKS,
    rank=RANKS,
    drop_last=st.booleans(),
    shuffle=st.booleans(),
)
def test_plan_packs(
    lengths, max_tokens, strategy, pair_swaps, seed, epoch, world_size, rank, drop_last, shuffle
):
    plan = outcome(
        lambda: af.plan_packs(
            lengths,
            max_tokens,
            strategy,
            pair_swaps,
            seed,
            epoch,
            world_size,
            rank,
            drop_last,
            shuffle,
        )
    )
    if plan is not None:
        _check_plan(plan, lengths, "packs", max_tokens, world_size)


@MORE
@given(
    lengths=_lengths(),
    max_tokens=PLAN_INTS,
    max_rows=st.none() | PLAN_INTS,
    order=st.sampled_from(["grouped", "desc"]) | TEXT,
    seed=PLAN_INTS,
    pair_swaps=st.booleans(),
    world_size=RANKS,
    rank=RANKS,
    drop_last=st.booleans(),
    megabatch=PLAN_INTS,
)
def test_plan_batches(
    lengths, max_tokens, max_rows, order, seed, pair_swaps, world_size, rank, drop_last, megabatch
):
    plan = outcome(
        lambda: af.plan_batches(
            lengths,
            max_tokens,
            max_rows=max_rows,
            order=order,
            seed=seed,
            pair_swaps=pair_swaps,
            world_size=world_size,
            rank=rank,
            drop_last=drop_last,
            megabatch=megabatch,
        )
    )
    if plan is not None:
        _check_plan(plan, lengths, "batches", max_tokens, world_size)


# -- collating ------------------------------------------------------------------------------------
ROWS = st.lists(st.lists(st.integers(0, VOCAB - 1), min_size=0, max_size=6), min_size=1, max_size=5)
INDEX = (
    st.lists(st.integers(-8, 8), max_size=6)
    | st.lists(st.integers(-(2**64), 2**64), max_size=3).map(lambda v: np.array(v, dtype=object))
    | st.tuples(
        st.sampled_from(["int8", "uint8", "int32", "uint64", "float32", "bool"]),
        st.lists(st.integers(0, 4), max_size=4),
    ).map(lambda t: np.array(t[1]).astype(t[0]))
    | st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=1), max_size=2)
    | ARRAYISH
)


F32 = st.floats(width=32)
LABELS = (
    st.none()
    | st.lists(st.integers(-3, 5), max_size=6)
    | st.lists(st.lists(F32, min_size=3, max_size=3), max_size=6)
    | st.lists(st.lists(st.floats(), min_size=3, max_size=3), max_size=3)  # past float32 too
    | st.lists(st.lists(F32, min_size=2, max_size=2), max_size=3)
    | ARRAYISH
)


def _check_batch(batch: dict, enc: af.Encoded, idx: Any, kind: str) -> None:
    idx = np.asarray(idx).astype(np.int64)
    lengths = enc.lengths[idx]
    if kind == "packed":
        assert batch["input_ids"].shape == (1, int(lengths.sum()))
        assert batch["cu_seq_lens_q"].tolist() == [0, *np.cumsum(lengths).tolist()]
    else:
        assert batch["input_ids"].shape[0] == len(idx)
        assert batch["input_ids"].shape[1] >= int(lengths.max())
        assert batch["attention_mask"].sum(axis=1).tolist() == lengths.tolist()


@MORE
@given(rows=ROWS, idx=INDEX, labels=LABELS)
def test_collate_packed(rows, idx, labels):
    enc = af.Encoded.from_lists(rows)
    batch = outcome(lambda: af.collate_packed(enc, idx, labels))
    if batch is not None:
        _check_batch(batch, enc, idx, "packed")


@MORE
@given(
    rows=ROWS,
    idx=INDEX,
    labels=LABELS,
    pad_id=st.integers(-(2**63), 2**63 - 1),
    side=st.sampled_from(["right", "left"]) | TEXT | st.none(),
    multiple=st.none()
    | st.integers(-3, 1 << 12)
    | st.sampled_from([0, 2**27, 2**31, 2**32, 2**64, -(2**70)])
    | JUNK,
)
def test_collate_padded(rows, idx, labels, pad_id, side, multiple):
    enc = af.Encoded.from_lists(rows)
    batch = outcome(lambda: af.collate_padded(enc, idx, pad_id, side, multiple, labels))
    if batch is not None:
        _check_batch(batch, enc, idx, "padded")


# -- labels ------------------------------------------------------------------------------------
LABEL_ARRAYS = (
    st.lists(st.integers(-2, 4), max_size=5)
    | st.lists(st.lists(F32, min_size=3, max_size=3), max_size=4)
    | st.lists(st.lists(st.integers(), min_size=1, max_size=4), max_size=3)
    | st.tuples(
        st.sampled_from(["int8", "uint64", "float16", "bool"]),
        st.lists(st.integers(0, 2), max_size=4),
    ).map(lambda t: np.array(t[1]).astype(t[0]))
    | st.lists(st.lists(st.floats(), min_size=3, max_size=3), max_size=3)
    | ARRAYISH
)


@MORE
@given(y=LABEL_ARRAYS)
def test_swap_labels(y):
    out = outcome(lambda: af.swap_labels(y), ERRORS)
    if out is not None:
        arr = np.asarray(y)
        assert out.shape == arr.shape
        np.testing.assert_array_equal(af.swap_labels(out), arr)  # an involution


@MORE
@given(p=LABEL_ARRAYS, q=LABEL_ARRAYS)
def test_tta_average(p, q):
    out = outcome(lambda: af.tta_average(p, q), ERRORS)
    if out is not None:
        assert out.shape == np.asarray(p).shape and out.dtype == np.float64


@given(p=st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=1, max_size=5))
def test_tta_average_of_a_swap_is_symmetric(p):
    p = np.array(p)
    np.testing.assert_allclose(af.tta_average(p, af.swap_labels(p)), p)


# -- pinned findings: the examples that once failed (F9-F16) --------------------------------------
OPTION_TYPE_ERRORS = [
    ("num_threads", "2", "TypeError: '<' not supported (encoder.py checks num_threads < 1)"),
    ("num_threads", 1.5, "TypeError from the extension"),
    ("max_length", 10**20, "OverflowError: int too big to convert"),
    ("min_segment_tokens", 2**64, "OverflowError"),
    ("min_tail_tokens", 2**64, "OverflowError"),
    ("prompt_weight", "0.5x", "ValueError from float()"),
    ("prompt_weight", None, "TypeError from float()"),
    ("prompt_weight", 10**400, "OverflowError from float()"),
    ("tail_ratios", None, "TypeError: not iterable"),
    ("tail_ratios", ("a", 1, 1), "ValueError from float()"),
    ("keep", None, "TypeError from the extension"),
    ("keep", 1, "TypeError from the extension"),
    ("null_text", None, "TypeError from the extension"),
    ("null_text", 5, "TypeError from the extension"),
    ("null_text", "\ud83d", "UnicodeEncodeError from the extension"),
]


@pytest.mark.parametrize(
    "name, value",
    [pytest.param(n, v, id=f"{n}={v!r}"[:40]) for n, v, _r in OPTION_TYPE_ERRORS],
)
def test_bad_option_is_a_config_error(name: str, value: Any) -> None:
    """README: bad options raise af.ConfigError (an ArenaFastError)."""
    with pytest.raises(af.ConfigError):
        af.Encoder(TOK, **{name: value}).encode([["a"]], [["b"]], [["c"]])


@pytest.mark.parametrize("field", ["begin", "header", "marker", "join_turns"])
def test_template_field_of_the_wrong_type(field: str) -> None:
    with pytest.raises(af.ConfigError):
        af.Encoder(TOK, template=af.Template(**{field: 5}))


def test_template_with_a_lone_surrogate() -> None:
    with pytest.raises(af.ConfigError):
        af.Encoder(TOK, template=af.Template(begin="\ud83d"))


def test_absurd_thread_count_is_refused() -> None:
    code = "af.Encoder(af.Tokenizer.demo(), num_threads=10**6)"
    assert _survives(_RAISES.format(call=code), timeout=10).split() == ["raised", "ConfigError"]


@pytest.mark.parametrize("call", ["packs", "batches"])
def test_plan_mode_of_the_wrong_type(call: str) -> None:
    with pytest.raises(af.ConfigError):
        if call == "packs":
            af.plan_packs([4, 4], 16, strategy=None)
        else:
            af.plan_batches([4, 4], 16, order=None)


@pytest.mark.parametrize("encoded", [[[1, 2]], None, "ids"])
def test_collate_needs_an_encoded(encoded: Any) -> None:
    with pytest.raises(af.ArenaFastError):
        af.collate_packed(encoded, [0])


@pytest.mark.parametrize(
    "kwargs",
    [{"pad_id": "x"}, {"pad_id": None}, {"pad_to_multiple_of": "8"}, {"pad_to_multiple_of": 1.5}],
)
def test_collate_padded_option_types(kwargs: dict) -> None:
    enc = af.Encoded.from_lists([[1, 2], [3]])
    with pytest.raises(af.ConfigError):
        af.collate_padded(enc, [0, 1], **{"pad_id": 0, **kwargs})


@pytest.mark.parametrize("call", ["plan_packs", "collate_idx", "collate_labels"])
def test_ragged_arrays_are_input_errors(call: str) -> None:
    enc = af.Encoded.from_lists([[1, 2], [3]])
    with pytest.raises(af.InputError):
        if call == "plan_packs":
            af.plan_packs([[1], [1, 2]], 16)
        elif call == "collate_idx":
            af.collate_packed(enc, [[0], [0, 1]])
        else:
            af.collate_packed(enc, [0], labels=[[0.1], [0.2, 0.3]])


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda enc: af.plan_packs(np.array([3, 2**63], dtype=np.uint64), 16),
            "lengths: row 1 is 9223372036854775808, past the int64 range",
        ),
        (
            lambda enc: af.collate_packed(enc, np.array([0, 2**64 - 1], dtype=np.uint64)),
            "idx: row 1 is 18446744073709551615, past the int64 range",
        ),
        (
            lambda enc: af.collate_packed(
                enc, [0, 1], labels=np.array([0, 2**63], dtype=np.uint64)
            ),
            "labels: row 1 is 9223372036854775808",
        ),
        (
            lambda enc: af.collate_padded(enc, [0, 1], 0, labels=[[0.5, 0.5, 0.0], [1e39, 0, 0]]),
            "labels: row 1 holds a value past the float32 range",
        ),
        (lambda enc: af.swap_labels([[1, 2], [3]]), "labels must be an array"),
        (lambda enc: af.tta_average([["a", "b", "c"]], [[1, 2, 3]]), "p must hold numbers"),
    ],
)
def test_values_past_the_types_are_input_errors(call, message) -> None:
    """Once noted as judgement calls: uint64 past int64 read as negative,
    labels past float32 cast to inf with a RuntimeWarning, numpy's own
    ValueError from the label helpers. Now InputErrors naming the row."""
    enc = af.Encoded.from_lists([[1, 2], [3]])
    with pytest.raises(af.InputError) as info:
        call(enc)
    assert message in str(info.value)


def test_label_helpers_at_the_edges() -> None:
    assert af.swap_labels([]).tolist() == []
    big = af.tta_average([[1e308, 0, 0]], [[0, 1e308, 0]])  # (a + b) / 2 would overflow
    assert big.tolist() == [[1e308, 0.0, 0.0]]
    with pytest.raises(af.ConfigError, match="split_special_tokens must be a bool"):
        af.Encoder(TOK, split_special_tokens="x")


def _survives(code: str, timeout: float = 120) -> str:
    """Run `code` in a subprocess under a 16 GB address-space limit; its
    stdout (the test asserts what it printed). A process that dies or runs
    past `timeout` is the failure: its exit status and stderr tail are in
    the message."""
    preamble = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))\n"
        "import numpy as np\nimport arena_fast as af\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", preamble + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "RUST_BACKTRACE": "0"},
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"still running after {timeout} s (killed)") from exc
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-1500:]}"
    return done.stdout


_RAISES = """
try:
    {call}
    print("returned")
except (af.ArenaFastError, MemoryError) as exc:
    print("raised", type(exc).__name__)
"""


# F9 (fixed): the batch size is checked before allocating.
def test_huge_pad_to_multiple_of_does_not_kill_the_process() -> None:
    enc = "af.Encoded.from_lists([[1, 2], [3]])"
    call = f"af.collate_padded({enc}, [0, 1], 0, pad_to_multiple_of=2**32 - 1)"
    assert _survives(_RAISES.format(call=call)).split()[0] in ("raised", "returned")


# F10 (fixed): world_size is bounded (at most 2**20 ranks).
@pytest.mark.parametrize("call", ["plan_packs", "plan_batches"])
def test_huge_world_size_does_not_kill_the_process(call: str) -> None:
    code = f"af.{call}(np.array([5, 3, 8, 2]), 16, world_size=2**40, rank=0, drop_last=True)"
    assert _survives(_RAISES.format(call=code)).split()[0] in ("raised", "returned")


def test_survives_reports_a_clean_run() -> None:
    """The subprocess harness itself: a normal call returns."""
    assert _survives(_RAISES.format(call="af.swap_labels(np.array([0, 1]))")).strip() == "returned"
