"""Shared fixtures: the real tokenizers and Kaggle rows from ../shared, cached
reference encoders, and the hypothesis profiles.

../shared sits beside the repository checkout. Locally a missing ../shared
skips the tests that need it; in CI (CI=true) it must be there, so its
absence fails loudly instead of silently passing an empty suite."""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, settings

import arena_fast as af

# -- hypothesis -----------------------------------------------------------------
# "ci": reproducible (derandomize, no example database) and bounded; "dev":
# more, random examples for hunting bugs locally (HYPOTHESIS_PROFILE=dev).
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=20,
    suppress_health_check=_SLOW_DATA,
    print_blob=True,
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=100,
    suppress_health_check=_SLOW_DATA,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    # On a failure, hypothesis' pytest plugin imports libcst (to suggest an
    # @example patch), whose import warns through mypy_extensions; with
    # warnings as errors that would turn a test failure into INTERNALERROR.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )


# -- the shared directory -------------------------------------------------------
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
TOKENIZER_NAMES = ("gemma3", "llama3")


def _require_shared(path: Path) -> Path:
    """`path` (inside ../shared), or skip / fail when it is missing."""
    if path.exists():
        return path
    reason = f"{path} is missing: these tests need the shared data beside the checkout"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the CI machine always has it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require_shared(SHARED_DIR)


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    return _require_shared(shared_dir / "data")


def tokenizer_path(shared_dir: Path, name: str) -> Path:
    return _require_shared(shared_dir / "tokenizers" / name / "tokenizer.json")


class TokenizerCase:
    """One real tokenizer, loaded once per session in every form the tests need.

    Not a dataclass: hypothesis prints the fixture arguments of a failing
    example, and a dataclass is printed field by field (the JSON text is tens
    of MB, and the HypothesisWarning about it is an error here)."""

    def __init__(self, name: str, path: Path, json_text: str, hf_plain: Any, hf_split: Any):
        self.name = name
        self.path = path
        self.json_text = json_text
        self.tok = af.Tokenizer.from_file(path)
        probe = af.Encoder(self.tok, max_length=100_000)
        # BOS/EOS ids as resolved from tokenizer_config.json.
        self.bos: Optional[int] = probe.bos_token_id
        self.eos: Optional[int] = probe.eos_token_id
        self.hf_plain = hf_plain  # tokenizers.Tokenizer: special-token strings stay special
        self.hf_split = hf_split  # tokenizers.Tokenizer with encode_special_tokens=True

    def hf(self, split_special_tokens: bool):
        return self.hf_split if split_special_tokens else self.hf_plain

    def __repr__(self) -> str:
        return f"<TokenizerCase {self.name}>"


_CASES: dict[str, TokenizerCase] = {}


def load_case(shared_dir: Path, name: str) -> TokenizerCase:
    if name not in _CASES:
        from tokenizers import Tokenizer as HFTokenizer

        path = tokenizer_path(shared_dir, name)
        json_text = path.read_text(encoding="utf-8")
        hf_plain = HFTokenizer.from_str(json_text)
        hf_split = HFTokenizer.from_str(json_text)
        hf_split.encode_special_tokens = True
        for hf in (hf_plain, hf_split):
            hf.no_truncation()
            hf.no_padding()
        _CASES[name] = TokenizerCase(name, path, json_text, hf_plain, hf_split)
    return _CASES[name]


@pytest.fixture(scope="session")
def gemma(shared_dir: Path) -> TokenizerCase:
    return load_case(shared_dir, "gemma3")


@pytest.fixture(scope="session")
def llama(shared_dir: Path) -> TokenizerCase:
    return load_case(shared_dir, "llama3")


@pytest.fixture(scope="session")
def gemma_tok(gemma: TokenizerCase) -> af.Tokenizer:
    return gemma.tok


@pytest.fixture(scope="session")
def llama_tok(llama: TokenizerCase) -> af.Tokenizer:
    return llama.tok


@pytest.fixture(scope="session")
def gemma_json(gemma: TokenizerCase) -> str:
    return gemma.json_text


@pytest.fixture(scope="session")
def llama_json(llama: TokenizerCase) -> str:
    return llama.json_text


@pytest.fixture(scope="session")
def tokenizer_cases(gemma: TokenizerCase, llama: TokenizerCase) -> dict[str, TokenizerCase]:
    return {"gemma3": gemma, "llama3": llama}


# -- the Kaggle rows -------------------------------------------------------------
TEXT_COLUMNS = ("prompt", "response_a", "response_b")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with _require_shared(path).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def kaggle_train_rows(data_dir: Path) -> list[dict[str, str]]:
    """The first 100 rows of the real train.csv, text columns as JSON strings."""
    return _read_csv(data_dir / "kaggle_train_head100.csv")


@pytest.fixture(scope="session")
def kaggle_test_rows(data_dir: Path) -> list[dict[str, str]]:
    """The real 3-row test.csv example."""
    return _read_csv(data_dir / "kaggle_test_example.csv")


@pytest.fixture(scope="session")
def kaggle_rows(kaggle_train_rows, kaggle_test_rows) -> list[dict[str, str]]:
    return kaggle_train_rows + kaggle_test_rows


def json_columns(rows: list[dict[str, str]]) -> tuple[list[str], list[str], list[str]]:
    p, a, b = ([row[c] for row in rows] for c in TEXT_COLUMNS)
    return p, a, b


# -- reference encoders ------------------------------------------------------------
@contextmanager
def _reuse_hf_tokenizers(markup, text):
    """ReferenceEncoder parses tokenizer.json twice (markup, then text) and
    that takes seconds for Gemma; hand it the session's tokenizers instead.
    They already carry the settings it applies (special tokens, no
    truncation/padding), so its behaviour is unchanged."""
    import tokenizers

    queue = [markup, text]

    class _Factory:
        @staticmethod
        def from_str(_json_text):
            return queue.pop(0)

    original = tokenizers.Tokenizer
    tokenizers.Tokenizer = _Factory
    try:
        yield
    finally:
        tokenizers.Tokenizer = original
    assert not queue, "ReferenceEncoder no longer loads two tokenizers: update conftest"


_REFERENCES: dict[tuple, Any] = {}


def reference_encoder(case: TokenizerCase, **options):
    """A cached `arena_fast.reference.ReferenceEncoder` over `case` with the
    given options (the same names as af.Encoder, bos/eos as ids)."""
    from arena_fast.reference import ReferenceEncoder

    key = (case.name, tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _REFERENCES:
        split = options.get("split_special_tokens", True)
        with _reuse_hf_tokenizers(case.hf_plain, case.hf(split)):
            _REFERENCES[key] = ReferenceEncoder(case.json_text, **options)
        if len(_REFERENCES) > 512:
            _REFERENCES.pop(next(iter(_REFERENCES)))
    return _REFERENCES[key]


def assert_same_encoded(actual: af.Encoded, expected: af.Encoded, context: str = "") -> None:
    """Every array of two `Encoded` equal; a failure names the first differing row."""
    got, want = actual.arrays(), expected.arrays()
    assert got.keys() == want.keys()
    if len(actual) != len(expected):
        raise AssertionError(f"{context}: {len(actual)} rows vs {len(expected)} expected")
    for i in range(len(expected)):
        a, e = actual[i].tolist(), expected[i].tolist()
        if a != e:
            first = next((k for k, (x, y) in enumerate(zip(a, e)) if x != y), min(len(a), len(e)))
            raise AssertionError(
                f"{context}: row {i} ids differ at position {first} (lengths {len(a)} vs "
                f"{len(e)} expected)\n  got      ...{a[max(first - 5, 0) : first + 8]}\n"
                f"  expected ...{e[max(first - 5, 0) : first + 8]}"
            )
    for name, value in want.items():
        assert got[name].dtype == value.dtype, f"{context}: {name} dtype {got[name].dtype}"
        assert got[name].tolist() == value.tolist(), (
            f"{context}: {name} differs:\n  got      {got[name].tolist()}\n"
            f"  expected {value.tolist()}"
        )


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module: tiny models gain nothing from more,
    and with two threads on two cores shared with another busy process,
    OpenMP's waiting made a module over 10x slower."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
