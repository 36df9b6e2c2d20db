"""`af.Encoder` and `af.Encoded`: the budget invariants of each strategy, swap
pairs, diagnostics and repairs, pickling and worker processes, BOS/EOS and
special-token handling, errors, and the template presets."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from conftest import TOKENIZER_NAMES, assert_same_encoded
from strategies import TEMPLATE_NAMES, batches, template_of

SMALL_ROWS = (
    [["What is 2+2?", "And 3+3?"], ["Hello"]],
    [["4", "6"], ["Hi there, how can I help?"]],
    [["Four.", "Six, of course."], ["Hey!"]],
)


# -- budget invariants ------------------------------------------------------------
@given(data=st.data())
def test_length_never_exceeds_max_length(tokenizer_cases, data):
    case = tokenizer_cases[data.draw(st.sampled_from(TOKENIZER_NAMES), label="tokenizer")]
    options = dict(
        template=template_of(data.draw(st.sampled_from(TEMPLATE_NAMES), label="template")),
        tokenize=data.draw(st.sampled_from(("split", "joint")), label="tokenize"),
        keep=data.draw(st.sampled_from(("head", "head_tail")), label="keep"),
        split_special_tokens=data.draw(st.booleans(), label="split_special_tokens"),
    )
    max_length = data.draw(st.sampled_from((90, 128, 300, 777, 2048)), label="max_length")
    rows = data.draw(batches(max_rows=4), label="rows")
    unbudgeted = af.Encoder(case.tok, strategy="none", max_length=1_000_000, **options)
    full = unbudgeted.encode(*rows)
    # The tokens after the body: tok(end) and EOS.
    tail = len(case.hf_plain.encode(unbudgeted.template.end, add_special_tokens=False).ids)
    tail += case.eos is not None
    for strategy in af.STRATEGIES:
        out = af.Encoder(case.tok, strategy=strategy, max_length=max_length, **options).encode(
            *rows
        )
        context = f"{case.name} {strategy} max_length={max_length} {options}"
        assert out.lengths.max(initial=0) <= max_length, f"{context}: {out.lengths.tolist()}"
        for i in range(len(out)):
            row, whole = out[i].tolist(), full[i].tolist()
            if not out.truncated[i]:
                # Nothing cut or dropped: the same ids as the unbudgeted layout.
                assert row == whole, f"{context}: row {i}"
                assert out.turns_kept[i] == out.turns_total[i], f"{context}: row {i}"
            if strategy == "none":
                assert bool(out.truncated[i]) == (len(whole) > max_length), f"{context}: row {i}"
                assert len(row) == min(len(whole), max_length), f"{context}: row {i}"
                cut = len(row) - tail
                assert row[:cut] == whole[:cut], f"{context}: row {i} body"
                assert row[cut:] == whole[len(whole) - tail :], f"{context}: row {i} end"
            if strategy in ("fair", "drop_oldest") and out.turns_total[i] > 0:
                assert out.turns_kept[i] >= 1, f"{context}: row {i} keeps no turn"


@st.composite
def tagged_rows(draw, max_turns: int = 8):
    """Rows of plain texts whose heads name their turn and field ("T3A "), so
    a decoded row shows which turns and fields were kept."""
    n = draw(st.integers(min_value=1, max_value=max_turns))
    word = st.sampled_from(("lorem ", "ipsum dolor ", "sit amet,\n", "consectetur ", "elit. "))
    size = st.sampled_from((0, 0, 10, 60, 300, 1500, 6000))
    columns = []
    for field in "PAB":
        turns = []
        for i in range(n):
            body = draw(word) * (draw(size) // 5 + 1)
            turns.append(f"T{i}{field} {body}")
        columns.append(turns)
    return columns


def _ident_positions(text: str, template: af.Template, turn: int) -> list[int]:
    return [
        text.find(f"{prefix}T{turn}{field} ") for prefix, field in zip(template.prefixes, "PAB")
    ]


@pytest.mark.parametrize("template", ["rounds", "pab", "tags"])
@pytest.mark.parametrize("tokenize", ["split", "joint"])
@given(data=st.data())
def test_fair_fills_budget_and_shows_every_kept_turn(gemma, llama, template, tokenize, data):
    case = data.draw(st.sampled_from((gemma, llama)), label="tokenizer")
    keep = data.draw(st.sampled_from(("head", "head_tail")), label="keep")
    max_length = data.draw(st.sampled_from((200, 400, 1000, 3000)), label="max_length")
    rows = data.draw(st.lists(tagged_rows(), min_size=1, max_size=3), label="rows")
    enc = af.Encoder(
        case.tok,
        template=template,
        strategy="fair",
        tokenize=tokenize,
        max_length=max_length,
        keep=keep,
    )
    t = enc.template
    out = enc.encode(*(list(c) for c in zip(*rows)))
    for i, (prompts, _, _) in enumerate(rows):
        n, kept, length = len(prompts), int(out.turns_kept[i]), len(out[i])
        context = f"{case.name} {template} {tokenize} keep={keep} L={max_length} row {i}"
        assert length <= max_length, context
        assert 1 <= kept <= n, context
        if out.truncated[i] and kept == n:
            # Something was cut and no turn dropped: the budget is used up to
            # rounding (at most one token per cut segment).
            assert length >= max_length - 3 * kept, f"{context}: {length} tokens"
        if not out.truncated[i]:
            assert kept == n, context
        text = case.tok.decode(out[i])
        last = -1
        for turn in range(n):
            positions = _ident_positions(text, t, turn)
            if turn < n - kept:
                assert positions == [-1, -1, -1], f"{context}: dropped turn {turn} shows"
                continue
            # A kept turn shows its prompt and both answers, in order, newest kept.
            assert min(positions) > last, f"{context}: turn {turn} fields {positions}"
            assert positions == sorted(positions), f"{context}: turn {turn} {positions}"
            last = max(positions)
        if template == "rounds":
            first = n - kept
            assert f"## Round 1:\n### Prompt:\nT{first}P " in text, context


@given(data=st.data())
def test_drop_oldest_keeps_first_turn(gemma, data):
    rows = data.draw(st.lists(tagged_rows(max_turns=10), min_size=1, max_size=3), label="rows")
    max_length = data.draw(st.sampled_from((300, 800, 2000)), label="max_length")
    enc = af.Encoder(gemma.tok, strategy="drop_oldest", max_length=max_length, keep_first_turns=1)
    out = enc.encode(*(list(c) for c in zip(*rows)))
    for i, (prompts, _, _) in enumerate(rows):
        n, kept = len(prompts), int(out.turns_kept[i])
        text = gemma.tok.decode(out[i])
        context = f"L={max_length} row {i}: {kept} of {n} kept"
        assert len(out[i]) <= max_length, context
        assert "## Round 1:\n### Prompt:\nT0P " in text, f"{context}: turn 0 not kept first"
        shown = [turn for turn in range(n) if f"### Prompt:\nT{turn}P " in text]
        assert len(shown) == kept, f"{context}: shown {shown}"
        # Beside the first turn, the kept ones are the newest.
        assert shown[1:] == list(range(n - kept + 1, n)), f"{context}: shown {shown}"


# -- swap --------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", af.STRATEGIES)
@pytest.mark.parametrize("tokenize", ["split", "joint"])
@given(data=st.data())
def test_swap_both_interleaves_original_and_swapped(tokenizer_cases, strategy, tokenize, data):
    case = tokenizer_cases[data.draw(st.sampled_from(TOKENIZER_NAMES), label="tokenizer")]
    template = template_of(data.draw(st.sampled_from(TEMPLATE_NAMES), label="template"))
    max_length = data.draw(st.sampled_from((300, 1024, 50_000)), label="max_length")
    rows = data.draw(batches(min_rows=0, max_rows=4), label="rows")
    enc = af.Encoder(
        case.tok, template=template, strategy=strategy, tokenize=tokenize, max_length=max_length
    )
    original = enc.encode(*rows, swap=False)
    swapped = enc.encode(*rows, swap=True)
    both = enc.encode(*rows, swap="both")
    n = len(original)
    assert len(swapped) == n and len(both) == 2 * n
    assert both.is_swapped.tolist() == [False, True] * n
    assert not original.is_swapped.any() and swapped.is_swapped.all()
    assert both.source_row.tolist() == [i // 2 for i in range(2 * n)]
    assert original.source_row.tolist() == list(range(n))
    for i in range(n):
        assert both[2 * i].tolist() == original[i].tolist(), f"row {i} original"
        assert both[2 * i + 1].tolist() == swapped[i].tolist(), f"row {i} swapped"
        for name in ("turns_total", "turns_kept", "truncated", "repairs"):
            column = getattr(both, name)
            assert column[2 * i] == getattr(original, name)[i], f"{name} row {i}"
            assert column[2 * i + 1] == getattr(swapped, name)[i], f"{name} row {i}"


def test_swap_exchanges_answers_not_prefixes(gemma):
    enc = af.Encoder(gemma.tok, template="rounds", max_length=4096)
    prompts, a, b = [["Which?"]], [["Alpha answer"]], [["Beta answer"]]
    assert enc.encode(prompts, a, b, swap=True).to_lists() == enc.encode(prompts, b, a).to_lists()
    text = gemma.tok.decode(enc.encode(prompts, a, b, swap=True)[0])
    assert "### Response A:\nBeta answer" in text and "### Response B:\nAlpha answer" in text


# -- Encoded -------------------------------------------------------------------------
def test_encoded_arrays_and_indexing(gemma):
    enc = af.Encoder(gemma.tok, max_length=1024)
    out = enc.encode(*SMALL_ROWS)
    n = len(SMALL_ROWS[0])
    assert len(out) == n
    assert out.input_ids.dtype == np.int32 and out.input_ids.ndim == 1
    assert out.offsets.dtype == np.int64 and out.offsets.shape == (n + 1,)
    assert out.offsets[0] == 0 and out.offsets[-1] == len(out.input_ids)
    assert np.all(np.diff(out.offsets) >= 0)
    assert out.lengths.tolist() == np.diff(out.offsets).tolist()
    for name in ("turns_total", "turns_kept", "truncated", "repaired", "is_swapped", "source_row"):
        assert len(getattr(out, name)) == n, name
    assert out.truncated.dtype == np.bool_ and out.repaired.dtype == np.bool_
    for i in range(n):
        row = out[i]
        assert isinstance(row, np.ndarray) and row.dtype == np.int32
        assert np.shares_memory(row, out.input_ids), f"row {i} is a copy, not a view"
        assert row.tolist() == out.input_ids[out.offsets[i] : out.offsets[i + 1]].tolist()
        assert out[i - n].tolist() == row.tolist()
        assert out[np.int64(i)].tolist() == row.tolist()
    assert out[-1].tolist() == out[n - 1].tolist()
    for bad in (n, n + 5, -n - 1):
        with pytest.raises(IndexError):
            out[bad]
    assert out.to_lists() == [row.tolist() for row in out]
    assert out.turns_total.tolist() == [2, 1] and out.turns_kept.tolist() == [2, 1]
    assert not out.truncated.any() and not out.repaired.any()
    restored = pickle.loads(pickle.dumps(out))
    assert_same_encoded(restored, out, "pickled Encoded")


def test_empty_batch(gemma):
    out = af.Encoder(gemma.tok).encode([], [], [], swap="both")
    assert len(out) == 0 and out.offsets.tolist() == [0] and len(out.input_ids) == 0
    assert out.to_lists() == []
    with pytest.raises(IndexError):
        out[0]


def test_row_without_turns(gemma):
    enc = af.Encoder(gemma.tok, max_length=512)
    out = enc.encode([[]], [[]], [[]])
    assert out.turns_total.tolist() == [0] and out.turns_kept.tolist() == [0]
    assert not out.truncated[0] and not out.repaired[0]
    end = gemma.hf_plain.encode(enc.template.end, add_special_tokens=False).ids
    assert out[0].tolist() == [gemma.bos] + end + [gemma.eos]


# -- diagnostics and repairs ------------------------------------------------------------
def test_truncation_diagnostics(gemma):
    enc = af.Encoder(gemma.tok, strategy="drop_oldest", max_length=300)
    long = "word " * 2000
    out = enc.encode([["a", "b", "c"], ["x"]], [[long, "y", "z"], ["y"]], [["q", "r", "s"], ["z"]])
    assert out.turns_total.tolist() == [3, 1]
    assert out.truncated.tolist() == [True, False]
    assert out.turns_kept[0] < 3 or out.lengths[0] <= 300
    assert out.turns_kept[1] == 1


@pytest.mark.parametrize(
    "row, bits",
    [
        ((["p"], ["a"], ["b"]), 0),
        ((["p"], [None], ["b"]), af.REPAIR_NULL),
        ((None, ["a"], ["b"]), af.REPAIR_NULL | af.REPAIR_RAGGED),
        ((["p\ud83d"], ["a"], ["b"]), af.REPAIR_SURROGATE),
        ((["p"], ["a\udc00b"], ["b"]), af.REPAIR_SURROGATE),
        ((["p", "q"], ["a"], ["b", "c"]), af.REPAIR_RAGGED),
        ((["p", None], ["a\ud83d"], ["b", "c"]), af.REPAIR_NULL | af.REPAIR_RAGGED | 2),
        ((["😀 é 中文"], ["a"], ["b"]), 0),
    ],
)
def test_repair_flags(gemma, row, bits):
    out = af.Encoder(gemma.tok, max_length=512).encode(*([cell] for cell in row))
    assert int(out.repairs[0]) == bits, f"{row!r}: repairs {int(out.repairs[0])}"
    assert bool(out.repaired[0]) == (bits != 0)
    turns = max(len(cell) if cell is not None else 0 for cell in row)
    assert out.turns_total[0] == turns


@pytest.mark.parametrize(
    "cells, bits",
    [
        (('["p"]', '["a"]', '["b"]'), 0),
        (('["p"]', "[null]", '["b"]'), af.REPAIR_NULL),
        (('["a\\ud83db"]', '["a"]', '["b"]'), af.REPAIR_SURROGATE),
        (('["\\ude00\\ud83d"]', '["a"]', '["b"]'), af.REPAIR_SURROGATE),
        (('["\\ud83d\\ude00 fine"]', '["a"]', '["b"]'), 0),
        (('["p", "q"]', '["a"]', "[]"), af.REPAIR_RAGGED),
        (('["p\\/q"]', '["a"]', '["b"]'), 0),
        # A None cell is an empty list, flagged null (as in `encode`).
        ((None, '["a"]', '["b"]'), af.REPAIR_NULL | af.REPAIR_RAGGED),
        (('["p"]', '["a"]', None), af.REPAIR_NULL | af.REPAIR_RAGGED),
    ],
)
def test_repair_flags_json(gemma, cells, bits):
    out = af.Encoder(gemma.tok, max_length=512).encode_json(*([cell] for cell in cells))
    assert int(out.repairs[0]) == bits, f"{cells!r}: repairs {int(out.repairs[0])}"


@pytest.mark.parametrize(
    "method, cell",
    [
        ("encode", ["a\ud83db"]),
        ("encode_json", '["a\\ud83db"]'),
        ("encode_json", '["a\ud83db"]'),  # a raw lone surrogate in the JSON str
    ],
    ids=["str", "json-escape", "json-raw"],
)
def test_lone_surrogate_becomes_one_replacement_character(gemma, method, cell):
    """docs/encoding.md: a lone surrogate becomes U+FFFD (one character), flagged."""
    enc = af.Encoder(gemma.tok, template="tags", max_length=512, bos_token=False, eos_token=False)
    expected = enc.encode([["a\ufffdb"]], [["x"]], [["y"]])[0].tolist()
    other = ('["x"]', '["y"]') if method == "encode_json" else (["x"], ["y"])
    out = getattr(enc, method)([cell], [other[0]], [other[1]])
    assert out[0].tolist() == expected, (
        f"{method}({cell!r}) decodes to {gemma.tok.decode(out[0])!r}, expected "
        f"{gemma.tok.decode(expected)!r}"
    )
    assert out.repairs[0] == af.REPAIR_SURROGATE, f"repairs {out.repairs[0]}"


def test_null_text_fills_null_turns(gemma):
    enc = af.Encoder(gemma.tok, max_length=512, null_text="(no answer)")
    out = enc.encode([["p"]], [[None]], [["b"]])
    same = enc.encode([["p"]], [["(no answer)"]], [["b"]])
    assert out[0].tolist() == same[0].tolist()
    assert out.repairs[0] == af.REPAIR_NULL


# -- pickling and processes -------------------------------------------------------------
def test_pickle_tokenizer_and_encoder(gemma):
    tok = pickle.loads(pickle.dumps(gemma.tok))
    assert tok.vocab_size == gemma.tok.vocab_size
    text = "Hello <eos> world, 中文 😀"
    assert tok.encode(text) == gemma.tok.encode(text)
    enc = af.Encoder(gemma.tok, strategy="fair", max_length=200, keep="head_tail")
    copy = pickle.loads(pickle.dumps(enc))
    assert copy.config() == enc.config()
    assert (copy.bos_token_id, copy.eos_token_id) == (enc.bos_token_id, enc.eos_token_id)
    rows = ([["x " * 500, "why?"]], [["a " * 400, "b"]], [["c", "d " * 300]])
    assert_same_encoded(copy.encode(*rows, swap="both"), enc.encode(*rows, swap="both"))


_WORKER_ENCODER = None


def _init_worker(blob: bytes) -> None:
    global _WORKER_ENCODER
    _WORKER_ENCODER = pickle.loads(blob)


def _encode_chunk(chunk):
    return _WORKER_ENCODER.encode_json(*chunk, swap="both").to_lists()


def test_spawn_pool_matches_one_process(gemma, kaggle_rows):
    from conftest import json_columns

    enc = af.Encoder(gemma.tok, strategy="fair", max_length=512)
    columns = json_columns(kaggle_rows)
    expected = enc.encode_json(*columns, swap="both").to_lists()
    half = len(kaggle_rows) // 2
    chunks = [tuple(c[:half] for c in columns), tuple(c[half:] for c in columns)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, initializer=_init_worker, initargs=(pickle.dumps(enc),)) as pool:
        # A worker that dies would make map() wait forever.
        parts = pool.map_async(_encode_chunk, chunks).get(timeout=300)
    assert parts[0] + parts[1] == expected


# -- BOS / EOS ------------------------------------------------------------------------------
def test_bos_eos_from_tokenizer_config(gemma, llama):
    for case, bos, eos in (
        (gemma, "<bos>", "<end_of_turn>"),
        (llama, "<|begin_of_text|>", "<|end_of_text|>"),
    ):
        enc = af.Encoder(case.tok)
        assert enc.bos_token_id == case.tok.token_to_id(bos) is not None, case.name
        assert enc.eos_token_id == case.tok.token_to_id(eos) is not None, case.name
        row = enc.encode(*SMALL_ROWS)[0].tolist()
        assert row[0] == enc.bos_token_id and row[-1] == enc.eos_token_id, case.name


def test_bos_eos_options(gemma):
    tok = gemma.tok
    plain = af.Encoder(tok, bos_token=False, eos_token=False)
    assert plain.bos_token_id is None and plain.eos_token_id is None
    with_both = af.Encoder(tok)
    a = plain.encode(*SMALL_ROWS)[0].tolist()
    b = with_both.encode(*SMALL_ROWS)[0].tolist()
    assert b == [with_both.bos_token_id] + a + [with_both.eos_token_id]
    named = af.Encoder(tok, bos_token="<start_of_turn>", eos_token="<eos>")
    assert named.bos_token_id == tok.token_to_id("<start_of_turn>")
    assert named.eos_token_id == tok.token_to_id("<eos>")
    assert af.Encoder(tok, bos_token=5, eos_token=7).bos_token_id == 5
    # Without a tokenizer_config.json, the usual names are used.
    bare = af.Tokenizer.from_str(gemma.json_text)
    assert af.Encoder(bare).bos_token_id == tok.token_to_id("<bos>")
    assert af.Encoder(bare).eos_token_id == tok.token_to_id("<eos>")
    for bad in (dict(bos_token="<no such token>"), dict(eos_token="nope nope")):
        with pytest.raises(af.ConfigError):
            af.Encoder(tok, **bad)
    with pytest.raises(af.ConfigError):
        af.Encoder(tok, eos_token=tok.vocab_size)


# -- special-token strings in user text -----------------------------------------------------
@pytest.mark.parametrize("tokenize", ["split", "joint"])
def test_split_special_tokens(gemma, llama, tokenize):
    for case, special in (
        (gemma, "<eos>"),
        (gemma, "<end_of_turn>"),
        (gemma, "<start_of_turn>"),
        (llama, "<|begin_of_text|>"),
        (llama, "<|eot_id|>"),
    ):
        special_id = case.tok.token_to_id(special)
        assert special_id is not None
        rows = ([f"Say {special} now"], [f"{special}"], [f"ok{special}ok"])
        for template in af.TEMPLATES:
            options = dict(template=template, tokenize=tokenize, bos_token=False, eos_token=False)
            safe = af.Encoder(case.tok, split_special_tokens=True, **options)
            raw = af.Encoder(case.tok, split_special_tokens=False, **options)
            safe_ids = safe.encode(*([r] for r in rows))[0].tolist()
            raw_ids = raw.encode(*([r] for r in rows))[0].tolist()
            context = f"{case.name} {special} {template} {tokenize}"
            assert special_id not in safe_ids, f"{context}: special id in plain text"
            assert raw_ids.count(special_id) == 3, f"{context}: {raw_ids.count(special_id)}"
            assert special in case.tok.decode(safe_ids), context


def test_special_tokens_in_markup_stay_special(gemma):
    template = af.Template(begin="<start_of_turn>user\n", end="<end_of_turn>")
    enc = af.Encoder(gemma.tok, template=template, bos_token=False, eos_token=False)
    ids = enc.encode([["hi"]], [["a"]], [["b"]])[0].tolist()
    assert ids[0] == gemma.tok.token_to_id("<start_of_turn>")
    assert ids[-1] == gemma.tok.token_to_id("<end_of_turn>")


# -- bad input ---------------------------------------------------------------------------------
GOOD = '["fine"]'


@pytest.mark.parametrize(
    "bad",
    [
        '["unterminated"',
        '["a", 3]',
        '["a", 1.5]',
        '["a", true]',
        '[["nested"]]',
        '[{"a": 1}]',
        '{"a": 1}',
        '"bare string"',
        "null",
        "",
        '["a"] trailing',
        "[,]",
        "['single quotes']",
    ],
)
def test_encode_json_bad_cell_names_row_and_column(gemma, bad):
    enc = af.Encoder(gemma.tok, max_length=512)
    with pytest.raises(af.InputError) as info:
        enc.encode_json([GOOD, GOOD, GOOD], [GOOD, bad, GOOD], [GOOD, GOOD, GOOD])
    message = str(info.value)
    assert "row 1" in message and "response_a" in message, message


def test_encode_json_non_string_cell(gemma):
    """Anything but a JSON str or None (an empty list, see test_repair_flags_json)."""
    enc = af.Encoder(gemma.tok, max_length=512)
    for bad in (5, b'["bytes"]', ["a list"]):
        with pytest.raises(af.InputError) as info:
            enc.encode_json([GOOD], [GOOD], [bad])
        assert "row 0" in str(info.value) and "response_b" in str(info.value), str(info.value)


@pytest.mark.parametrize("method", ["encode", "encode_json"])
def test_columns_of_different_lengths(gemma, method):
    enc = af.Encoder(gemma.tok, max_length=512)
    cell = GOOD if method == "encode_json" else ["fine"]
    with pytest.raises(af.InputError):
        getattr(enc, method)([cell, cell], [cell], [cell, cell])
    with pytest.raises(af.InputError):
        getattr(enc, method)([cell], [cell], [])


@pytest.mark.parametrize("bad", [5, 2.5, b"bytes"])
def test_non_list_cell(gemma, bad):
    enc = af.Encoder(gemma.tok, max_length=512)
    with pytest.raises(af.InputError) as info:
        enc.encode([["p"], ["p"]], [["a"], ["a"]], [["b"], bad])
    assert "row 1" in str(info.value) and "response_b" in str(info.value), str(info.value)


@pytest.mark.parametrize("bad", [{"a": "b"}, {"turn"}])
def test_mapping_or_set_cell_is_refused(gemma, bad):
    """A dict or a set is not a list of turns (a set has no turn order)."""
    enc = af.Encoder(gemma.tok, max_length=512)
    with pytest.raises(af.InputError):
        enc.encode([["p"]], [["a"]], [bad])


def test_non_string_turn(gemma):
    enc = af.Encoder(gemma.tok, max_length=512)
    for bad in (3, 1.5, ["nested"], b"bytes"):
        with pytest.raises(af.InputError) as info:
            enc.encode([["p", bad]], [["a", "a"]], [["b", "b"]])
        assert "row 0" in str(info.value) and "prompt" in str(info.value), str(info.value)


def test_single_string_column_is_refused(gemma):
    with pytest.raises(af.InputError):
        af.Encoder(gemma.tok).encode("abc", "abc", "abc")


@pytest.mark.parametrize(
    "options",
    [
        dict(template="nope"),
        dict(template=5),
        dict(strategy="nope"),
        dict(tokenize="nope"),
        dict(keep="nope"),
        dict(max_length=0),
        dict(max_length=-1),
        dict(max_length=1),
        dict(max_length=10, strategy="drop_oldest"),
        dict(max_length=2.5),
        dict(num_threads=0),
        dict(tail_ratios=(0.5, 0.5, 0.5)),
        dict(tail_ratios=(0.5, 0.5)),
        dict(prompt_weight=0.0),
        dict(prompt_weight=float("nan")),
        dict(bos_token=2.5),
    ],
)
def test_bad_config(gemma, options):
    with pytest.raises(af.ConfigError):
        af.Encoder(gemma.tok, **options)


@pytest.mark.parametrize("swap", ["x", 1, None, "True"])
def test_bad_swap(gemma, swap):
    enc = af.Encoder(gemma.tok)
    for method in (enc.encode, enc.encode_json):
        with pytest.raises(af.ConfigError):
            method([], [], [], swap=swap)


def test_tokenizer_load_errors(tmp_path, shared_dir):
    with pytest.raises(af.TokenizerError):
        af.Tokenizer.from_file(tmp_path / "missing.json")
    with pytest.raises(af.TokenizerError):
        af.Tokenizer.from_file(tmp_path)  # a directory without tokenizer.json
    for text in ("not json at all", '{"version": "1.0"}', "[]"):
        path = tmp_path / "tokenizer.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(af.TokenizerError):
            af.Tokenizer.from_file(path)
    with pytest.raises(af.TokenizerError):
        af.Tokenizer.from_file(shared_dir / "tokenizers" / "gemma3" / "tokenizer_config.json")
    with pytest.raises(af.TokenizerError):
        af.Tokenizer.from_str("{")
    with pytest.raises(af.TokenizerError):
        af.Tokenizer.from_hf(object())


def test_error_hierarchy():
    for cls in (af.InputError, af.ConfigError, af.TokenizerError, af.InternalError):
        assert issubclass(cls, af.ArenaFastError), cls
    assert issubclass(af.InputError, ValueError) and issubclass(af.ConfigError, ValueError)
    assert issubclass(af.ArenaFastError, Exception)


# -- templates ----------------------------------------------------------------------------------
def _turn_text(t: af.Template, p: str, a: str, b: str) -> str:
    return (
        t.prompt_prefix + p + t.prompt_suffix + t.a_prefix + a + t.a_suffix + t.b_prefix + b
    ) + t.b_suffix


def test_rounds_preset():
    t = af.Template.preset("rounds")
    assert t == af.Template(
        begin="",
        end="\n\n---\nWhich response is better? [A or B or tie]\nAnswer: ",
        first_header="## Round {i}:",
        header="\n\n## Round {i}:",
        prompt_prefix="\n### Prompt:\n",
        a_prefix="\n\n### Response A:\n",
        b_prefix="\n\n### Response B:\n",
        marker="......",
        join_turns=None,
    )
    assert t.header_text(1) == "## Round 1:" and t.header_text(12) == "\n\n## Round 12:"


def test_pab_tags_concat_presets():
    pab = af.Template.preset("pab")
    assert _turn_text(pab, "P", "A", "B") == (
        "\n### User:\nP\n\n### Assistant A:\nA\n\n### Assistant B:\nB\n"
    )
    assert pab.join_turns is None and pab.marker == "......"
    assert pab.begin and pab.end, "pab wraps the turns in a judge instruction"
    tags = af.Template.preset("tags")
    assert _turn_text(tags, "P", "A", "B") == (
        "<PROMPT>P</PROMPT><RESPONSE A>A</RESPONSE A><RESPONSE B>B</RESPONSE B>"
    )
    assert tags.join_turns is None and tags.marker == "......"
    concat = af.Template.preset("concat")
    assert concat.join_turns == "\n"
    assert concat.begin + _turn_text(concat, "Q", "A", "B") + concat.end == (
        'User question:\n"""Q"""\nAnswer A:\n"""A"""\nAnswer B:\n"""B"""\n'
    )
    assert concat.header_text(1) == "" and concat.marker == "......"
    for t in (pab, tags, concat):
        assert t.header_text(1) == "" and t.header_text(2) == ""
    with pytest.raises(af.ConfigError):
        af.Template.preset("nope")
    for name in af.TEMPLATES:
        assert isinstance(af.Template.preset(name), af.Template)


def _hf_ids(case, text: str) -> list[int]:
    return case.hf_plain.encode(text, add_special_tokens=False).ids if text else []


@pytest.mark.parametrize("template", ["rounds", "pab", "tags"])
def test_joint_layout_is_the_competition_layout(gemma, template):
    """tokenize="joint": [BOS] begin, per turn header + tok(prefix + text) +
    suffix, end, [EOS], each piece tokenized on its own."""
    enc = af.Encoder(
        gemma.tok,
        template=template,
        tokenize="joint",
        max_length=10_000,
        split_special_tokens=False,
    )
    t = enc.template
    prompts, a, b = ["Hi there", "More?"], ["Hello!", "Sure."], ["Hey.", "No."]
    expected = [gemma.bos] + _hf_ids(gemma, t.begin)
    for i in range(2):
        expected += _hf_ids(gemma, t.header_text(i + 1))
        for prefix, text, suffix in zip(t.prefixes, (prompts[i], a[i], b[i]), t.suffixes):
            expected += _hf_ids(gemma, prefix + text) + _hf_ids(gemma, suffix)
    expected += _hf_ids(gemma, t.end) + [gemma.eos]
    assert enc.encode([prompts], [a], [b])[0].tolist() == expected


def test_concat_joins_turns(gemma):
    enc = af.Encoder(gemma.tok, template="concat", tokenize="joint", max_length=10_000)
    out = enc.encode([["Q1", "Q2"]], [["A1", "A2"]], [["B1", "B2"]])
    text = gemma.tok.decode(out[0])
    assert (
        'User question:\n"""Q1\nQ2"""\nAnswer A:\n"""A1\nA2"""\nAnswer B:\n"""B1\nB2"""\n' in text
    )
    assert out.turns_total[0] == 2 and out.turns_kept[0] == 2


@pytest.mark.parametrize("tokenize", ["split", "joint"])
def test_custom_template(gemma, tokenize):
    t = af.Template(
        begin="<start_of_turn>user\nJudge:\n",
        end="\nVerdict:",
        first_header="[Turn {i}]",
        header="\n[Turn {i}]",
        prompt_prefix="Q: ",
        prompt_suffix="\n",
        a_prefix="A: ",
        a_suffix=" |",
        b_prefix="B: ",
        b_suffix=" |",
        marker=" [...]",
    )
    enc = af.Encoder(gemma.tok, template=t, tokenize=tokenize, max_length=10_000)
    prompts, a, b = ["one", "two"], ["x", "y"], ["z", "w"]
    expected = [gemma.bos] + _hf_ids(gemma, t.begin)
    for i in range(2):
        expected += _hf_ids(gemma, f"[Turn {i + 1}]" if i == 0 else f"\n[Turn {i + 1}]")
        for prefix, text, suffix in zip(t.prefixes, (prompts[i], a[i], b[i]), t.suffixes):
            if tokenize == "joint":
                expected += gemma.hf_split.encode(prefix + text, add_special_tokens=False).ids
            else:
                expected += _hf_ids(gemma, prefix) + _hf_ids(gemma, text)
            expected += _hf_ids(gemma, suffix)
    expected += _hf_ids(gemma, t.end) + [gemma.eos]
    assert enc.encode([prompts], [a], [b])[0].tolist() == expected
    assert enc.template == t
    # A cut text carries the custom marker.
    short = af.Encoder(gemma.tok, template=t, tokenize=tokenize, max_length=120)
    cut = short.encode([["long " * 300]], [["x"]], [["y"]])
    assert cut.truncated[0] and "[...]" in gemma.tok.decode(cut[0])


def test_full_length_is_the_uncut_length(gemma_tok):
    """`full_length`: what a row takes with nothing cut; equal to the length
    when nothing was cut, and to the length an unbounded encoder gives."""
    from arena_fast.synth import generate_rows

    rows = generate_rows(60, seed=4)
    cols = [[r[c] for r in rows] for c in ("prompt", "response_a", "response_b")]
    for template in ("rounds", "concat"):
        small = af.Encoder(gemma_tok, template=template, max_length=256).encode_json(*cols)
        whole = af.Encoder(
            gemma_tok, template=template, strategy="none", max_length=1 << 20
        ).encode_json(*cols)
        assert small.truncated.any()
        assert (small.full_length == whole.lengths).all()
        assert (small.full_length[~small.truncated] == small.lengths[~small.truncated]).all()
        assert (small.full_length[small.truncated] > small.lengths[small.truncated]).all()
