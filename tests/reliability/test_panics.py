"""A Rust panic crosses into Python only as `af.InternalError`.

Every binding body runs under `guarded` (with the GIL) or `detached` (without
it) in rust/arena-fast-py/src/errors.rs. `_core._panic_for_tests` panics on
purpose through each of the two, so these tests prove the mapping: an
`InternalError` (an ordinary `Exception`, not pyo3's `PanicException`, a
`BaseException`), and an interpreter that carries on, GIL state included."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import arena_fast as af
from arena_fast import _core


@pytest.mark.parametrize("detach", [False, True], ids=["with-gil", "detached"])
def test_a_panic_is_an_internal_error(detach: bool) -> None:
    with pytest.raises(af.InternalError, match=r"^internal error \(please report\): boom 1$"):
        _core._panic_for_tests("boom 1", detach=detach)


@pytest.mark.parametrize("detach", [False, True], ids=["with-gil", "detached"])
def test_the_interpreter_survives_a_panic(detach: bool) -> None:
    """Repeated panics, then ordinary calls that release the GIL again."""
    for k in range(3):
        # An Exception, not pyo3's PanicException (a BaseException).
        with pytest.raises(Exception) as caught:
            _core._panic_for_tests(f"boom {k}", detach=detach)
        assert type(caught.value) is af.InternalError
        assert isinstance(caught.value, af.ArenaFastError)
    tok = af.Tokenizer.demo()
    assert tok.decode(tok.encode("hello world")) == "hello world"
    enc = af.Encoder(tok, max_length=256, num_threads=2).encode([["a"]], [["b"]], [["c"]])
    assert len(enc) == 1


def test_a_panic_does_not_end_the_process() -> None:
    code = textwrap.dedent(
        """
        import arena_fast as af
        from arena_fast import _core
        for detach in (False, True):
            try:
                _core._panic_for_tests("boom", detach=detach)
            except af.InternalError as exc:
                print("raised", type(exc).__name__)
        print("alive", af.Tokenizer.demo().vocab_size > 0)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == ["raised InternalError"] * 2 + ["alive True"]
