"""arena_fast.checks: the one convention for argument checks (integers,
closed ranges, bools, thread counts, 1-D integer arrays, indices), and the
public functions that use it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import arena_fast as af
from arena_fast import checks
from arena_fast.checks import (
    I64_MAX,
    I64_MIN,
    MAX_THREADS,
    U64_MAX,
    as_array,
    check_bool,
    check_index,
    check_int,
    check_int_array,
    check_optional_int,
    check_threads,
    int64_array,
    is_integer,
)
from arena_fast.rows import rows_from_arrow

NUMPY_INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


# -- integers ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", NUMPY_INTS)
def test_numpy_integer_scalars_are_integers(dtype):
    assert is_integer(dtype(3))
    value = check_int("n", dtype(3), 0, 10)
    assert value == 3 and type(value) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False)])
def test_bools_are_not_integers_unless_allowed(value):
    assert not is_integer(value)
    with pytest.raises(af.ConfigError, match=r"^n must be an integer, got "):
        check_int("n", value, 0, 10)
    assert is_integer(value, allow_bool=True)
    assert check_int("n", value, 0, 10, allow_bool=True) == int(value)


@pytest.mark.parametrize("value", [1.0, 2.5, "3", b"3", None, [1], np.float64(1), 1 + 0j])
def test_other_types_are_refused_never_truncated(value):
    assert not is_integer(value)
    with pytest.raises(af.ConfigError) as info:
        check_int("max_tokens", value, 0, 10)
    assert str(info.value) == f"max_tokens must be an integer, got {value!r}"


def test_ranges_are_closed_at_both_ends():
    assert check_int("k", 1, 1, 127) == 1
    assert check_int("k", 127, 1, 127) == 127
    for value in (0, 128, -1):
        with pytest.raises(af.ConfigError) as info:
            check_int("k", value, 1, 127)
        assert str(info.value) == f"k must be in [1, 127], got {value}"


def test_the_ends_of_the_rust_types():
    assert check_int("seed", np.uint64(U64_MAX), 0, U64_MAX) == 2**64 - 1
    assert check_int("pad_id", np.int64(I64_MIN), I64_MIN, I64_MAX) == -(2**63)
    with pytest.raises(af.ConfigError, match=r"seed must be in \[0, 18446744073709551615\]"):
        check_int("seed", 2**64, 0, U64_MAX)
    with pytest.raises(af.ConfigError, match=r"got 9223372036854775808$"):
        check_int("pad_id", 2**63, I64_MIN, I64_MAX)


def test_the_error_class_is_chosen_by_the_caller():
    with pytest.raises(af.InputError, match="row must be in"):
        check_int("row", 5, 0, 3, error=af.InputError)
    with pytest.raises(af.InputError, match="row must be an integer"):
        check_int("row", "5", 0, 3, error=af.InputError)
    # Both are ValueErrors, for callers that catch those.
    assert issubclass(af.ConfigError, ValueError) and issubclass(af.InputError, ValueError)


def test_optional_integers():
    assert check_optional_int("max_rows", None, 1, 10) is None
    assert check_optional_int("max_rows", np.int32(4), 1, 10) == 4
    with pytest.raises(af.ConfigError, match=r"^max_rows must be None or an integer, got '4'$"):
        check_optional_int("max_rows", "4", 1, 10)
    with pytest.raises(af.ConfigError, match=r"^max_rows must be in \[1, 10\], got 0$"):
        check_optional_int("max_rows", 0, 1, 10)


# -- bools and thread counts -------------------------------------------------------------
def test_bools():
    assert check_bool("flag", True) is True
    assert check_bool("flag", np.bool_(False)) is False
    for value in (0, 1, "yes", None, np.int8(1)):
        with pytest.raises(af.ConfigError) as info:
            check_bool("flag", value)
        assert str(info.value) == f"flag must be a bool, got {value!r}"


def test_thread_counts():
    assert check_threads(None) is None
    assert check_threads(1) == 1 and check_threads(np.int64(MAX_THREADS)) == MAX_THREADS
    with pytest.raises(af.ConfigError, match=rf"^threads must be in \[1, {MAX_THREADS}\], got 0$"):
        check_threads(0, "threads")
    with pytest.raises(af.ConfigError, match=rf"^num_threads must be in \[1, {MAX_THREADS}\]"):
        check_threads(MAX_THREADS + 1)
    for value in (True, 2.0, "2"):
        with pytest.raises(af.ConfigError, match="num_threads must be None or an integer"):
            check_threads(value)
    # The encoder's names are the same objects (their documented home first).
    assert af.encoder.check_threads is check_threads and af.encoder.MAX_THREADS == MAX_THREADS


# -- indices -----------------------------------------------------------------------------
def test_indices_count_from_either_end():
    assert check_index("row", 0, 3) == 0 and check_index("row", np.int64(2), 3) == 2
    assert check_index("row", -1, 3) == 2 and check_index("row", -3, 3) == 0
    for value in (3, -4):
        with pytest.raises(IndexError) as info:
            check_index("step", value, 3)
        assert str(info.value) == f"step {value} out of range for 3 steps"
    with pytest.raises(IndexError):
        check_index("row", 0, 0)


@pytest.mark.parametrize("value", [1.0, "1", True, np.bool_(True), None])
def test_an_index_must_be_an_integer(value):
    with pytest.raises(TypeError, match="row index must be an integer"):
        check_index("row", value, 3)


def test_encoded_and_plan_index_alike():
    enc = af.Encoded.from_lists([[1, 2], [3], [4, 5, 6]])
    assert enc[np.uint8(2)].tolist() == [4, 5, 6] and enc[-3].tolist() == [1, 2]
    plan = af.plan_packs([3, 3, 3, 3], 6, pair_swaps=False, shuffle=False)
    assert plan[np.int32(-1)].tolist() == plan[len(plan) - 1].tolist()
    # Once Encoded[1.5] was row 1 and Encoded[True] row 1; Plan[1.5] a numpy error.
    for container, noun in ((enc, "row"), (plan, "step")):
        with pytest.raises(TypeError, match=f"{noun} index must be an integer"):
            container[1.5]
        with pytest.raises(TypeError):
            container[True]
        with pytest.raises(IndexError, match=rf"{noun} 9 out of range"):
            container[9]


# -- arrays ------------------------------------------------------------------------------
def test_a_ragged_list_is_an_input_error():
    with pytest.raises(af.InputError, match=r"^labels must be an array: "):
        as_array("labels", [[1], [1, 2]])
    with pytest.raises(af.InputError, match=r"^idx must be a 1-D integer array: "):
        check_int_array("idx", [[1], [1, 2]])


@pytest.mark.parametrize("dtype", NUMPY_INTS)
def test_integer_arrays_of_every_dtype(dtype):
    array = check_int_array("keys", np.arange(4, dtype=dtype))
    assert array.dtype == dtype
    out = int64_array("idx", np.arange(4, dtype=dtype)[::2])
    assert out.dtype == np.int64 and out.flags.c_contiguous and out.tolist() == [0, 2]


def test_integer_arrays_refuse_other_shapes_and_dtypes():
    with pytest.raises(
        af.InputError, match=r"^lengths must be one-dimensional, got shape \(1, 2\)$"
    ):
        check_int_array("lengths", [[1, 2]])
    with pytest.raises(af.InputError, match=r"^lengths must be one-dimensional, got shape \(\)$"):
        check_int_array("lengths", 3)
    for values, dtype in (([1.0, 2.0], "float64"), ([True, False], "bool"), (["a"], "<U1")):
        with pytest.raises(af.InputError) as info:
            check_int_array("lengths", values)
        assert str(info.value) == f"lengths must be integers, got dtype {dtype}"
    # Empty passes whatever numpy makes of it; int64_array gives int64.
    assert int64_array("idx", []).dtype == np.int64


def test_int64_arrays():
    ready = np.arange(5, dtype=np.int64)
    assert int64_array("idx", ready) is ready  # the per-step path: no copy
    strided = int64_array("idx", ready[::2])
    assert strided.flags.c_contiguous and strided.tolist() == [0, 2, 4]
    assert int64_array("idx", np.array([2**63 - 1], np.uint64)).tolist() == [2**63 - 1]
    with pytest.raises(af.InputError) as info:
        int64_array("idx", np.array([0, 2**63], np.uint64))
    assert str(info.value) == "idx: row 1 is 9223372036854775808, past the int64 range"


# -- the public functions use them -------------------------------------------------------
def test_public_functions_take_numpy_integers():
    enc = af.Encoded.from_lists([[1, 2], [3]])
    padded = af.collate_padded(enc, [0, 1], np.int32(0), pad_to_multiple_of=np.uint64(8))
    assert padded["input_ids"].shape == (2, 8)
    plan = af.plan_batches([2, 2], np.int64(8), max_rows=np.int16(2), megabatch=np.uint8(4))
    assert len(plan) == 1
    assert af.assign_folds([1, 2], [0, 1], np.int8(2), seed=np.uint64(U64_MAX)).dtype == np.int8
    tok = af.Tokenizer.demo()
    # Encoder and Tokenizer once took only Python ints (np.int64 was a ConfigError).
    encoder = af.Encoder(
        tok, max_length=np.int64(256), keep_first_turns=np.int32(1), bos_token=np.int64(1)
    )
    assert encoder.max_length == 256 and type(encoder.max_length) is int
    assert encoder.bos_token_id == 1 and type(encoder.bos_token_id) is int
    assert (
        encoder.config()
        == af.Encoder(tok, max_length=256, keep_first_turns=1, bos_token=1).config()
    )


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda enc: af.assign_folds([1], [0], True),
            af.ConfigError,
            "k (the number of folds) must be an integer, got True",
        ),
        (
            lambda enc: af.assign_folds([1], [0], 128),
            af.ConfigError,
            "k (the number of folds) must be in [1, 127], got 128",
        ),
        (
            lambda enc: af.assign_folds([1], [0], 2, seed=-1),
            af.ConfigError,
            "seed must be in [0, 18446744073709551615], got -1",
        ),
        (
            lambda enc: af.assign_folds([[1], [1, 2]], [0, 1], 2),
            af.InputError,
            "keys must be a 1-D integer array: ",
        ),
        (
            lambda enc: af.plan_packs([1], 0),
            af.ConfigError,
            "max_tokens must be in [1, 18446744073709551615], got 0",
        ),
        (
            lambda enc: af.plan_packs([1], 8, world_size=np.bool_(True)),
            af.ConfigError,
            "world_size must be an integer, got np.True_",
        ),
        (
            lambda enc: af.plan_batches([1], 8, max_rows=1.0),
            af.ConfigError,
            "max_rows must be None or an integer, got 1.0",
        ),
        (
            lambda enc: af.plan_packs([1.5], 8),
            af.InputError,
            "lengths must be integers, got dtype float64",
        ),
        (
            lambda enc: af.collate_packed(enc, [0.0]),
            af.InputError,
            "idx must be integers, got dtype float64",
        ),
        (
            lambda enc: af.collate_padded(enc, [0], True),
            af.ConfigError,
            "pad_id must be an integer, got True",
        ),
        (
            lambda enc: af.collate_padded(enc, [0], 0, pad_to_multiple_of=2**32),
            af.ConfigError,
            "pad_to_multiple_of must be in [1, 4294967295], got 4294967296",
        ),
        (
            lambda enc: af.swap_labels([0.0, 1.0]),
            af.InputError,
            "class ids must be integers, got dtype float64",
        ),
        (
            lambda enc: af.Encoder(af.Tokenizer.demo(), max_length=-1),
            af.ConfigError,
            "max_length must be in [0, 9223372036854775807], got -1",
        ),
        (
            lambda enc: af.Encoder(af.Tokenizer.demo(), min_tail_tokens=2**63),
            af.ConfigError,
            "min_tail_tokens must be in [0, 9223372036854775807]",
        ),
        (
            lambda enc: af.Encoder(af.Tokenizer.demo(), keep_first_turns="1"),
            af.ConfigError,
            "keep_first_turns must be an integer, got '1'",
        ),
        (
            lambda enc: af.Encoder(af.Tokenizer.demo(), split_special_tokens=1),
            af.ConfigError,
            "split_special_tokens must be a bool, got 1",
        ),
        (
            lambda enc: af.Encoder(af.Tokenizer.demo(), num_threads=True),
            af.ConfigError,
            "num_threads must be None or an integer, got True",
        ),
    ],
)
def test_public_functions_name_the_argument_and_the_value(call, error, message):
    enc = af.Encoded.from_lists([[1, 2], [3]])
    with pytest.raises(error) as info:
        call(enc)
    assert type(info.value) is error
    assert str(info.value).startswith(message)


def test_encode_rows_checks_its_row_indices():
    """Once `idx` went through np.ascontiguousarray(dtype=int64): [0.5] was
    row 0, [[0]] a TypeError from the extension, a uint64 past int64 a
    negative row."""
    col = pa.array(['["a"]', '["b"]'])
    rows = rows_from_arrow(col, col, col)
    encoder = af.Encoder(af.Tokenizer.demo(), max_length=256)
    assert len(encoder.encode_rows(rows, np.array([1, 0], np.int32))) == 2
    for bad, message in (
        ([0.5], "idx must be integers, got dtype float64"),
        ([[0]], "idx must be one-dimensional, got shape (1, 1)"),
        (np.array([2**63], np.uint64), "idx: row 0 is 9223372036854775808, past the int64 range"),
    ):
        for call in (encoder.encode_rows, encoder.encode_rows_skipping):
            with pytest.raises(af.InputError) as info:
                call(rows, bad)
            assert str(info.value) == message


def test_the_module_lists_what_it_defines():
    for name in checks.__all__:
        assert hasattr(checks, name), name
