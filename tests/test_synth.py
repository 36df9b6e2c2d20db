"""The synthetic arena generator (`arena_fast.synth`), its CLI command and the
bundled demo tokenizer."""

from __future__ import annotations

import argparse
import collections
import csv
import functools
import hashlib
import importlib.util
import json
import math
import random
import re
import unicodedata
from pathlib import Path

import pytest

from arena_fast import synth
from arena_fast.sources import kaggle
from arena_fast.synth import prose

PKG = Path(__file__).resolve().parent.parent / "python" / "arena_fast"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEXT_COLUMNS = ("prompt", "response_a", "response_b")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _chars(turns):
    return sum(len(t) for t in turns if t)


@pytest.fixture(scope="module")
def rows5k():
    return synth.generate_rows(5000, seed=0)


@pytest.fixture(scope="module")
def parsed5k(rows5k):
    return [tuple(json.loads(r[c]) for c in TEXT_COLUMNS) for r in rows5k]


@pytest.fixture(scope="module")
def rows2k():
    return synth.generate_rows(2000, seed=1)


# -- format ---------------------------------------------------------------------


def test_columns_types_and_labels(rows5k):
    for row in rows5k:
        assert tuple(row) == synth.COLUMNS
        assert isinstance(row["id"], int)
        labels = (row["winner_model_a"], row["winner_model_b"], row["winner_tie"])
        assert all(type(v) is int for v in labels)
        assert sorted(labels) == [0, 0, 1]
        for c in TEXT_COLUMNS:
            assert isinstance(row[c], str) and row[c].isascii()


def test_ids_unique_ascending_and_models(rows5k):
    ids = [r["id"] for r in rows5k]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert 0 <= ids[0] and ids[-1] < 2**32
    assert all(r["model_a"] != r["model_b"] for r in rows5k)
    models = {r["model_a"] for r in rows5k} | {r["model_b"] for r in rows5k}
    assert 30 <= len(models) <= 60
    assert models <= {m[0] for m in synth.MODELS}


def test_json_text_like_the_real_file(rows5k, parsed5k):
    for row, turns in zip(rows5k, parsed5k):
        for c, value in zip(TEXT_COLUMNS, turns):
            assert isinstance(value, list)
            assert all(t is None or isinstance(t, str) for t in value)
            # Compact, ASCII, slashes escaped: re-encoding gives the same text,
            # lone surrogates included (json writes them back as \udXXX).
            assert synth.encode_turns(value) == row[c]
            assert re.search(r"(?<!\\)/", row[c]) is None
        assert turns[0], "prompts are never empty lists"


def test_deterministic_and_seeded():
    a = synth.generate_rows(300, seed=7)
    assert a == synth.generate_rows(300, seed=7)
    assert a == list(synth.iter_rows(300, 7))
    b = synth.generate_rows(300, seed=8)
    assert [r["prompt"] for r in a] != [r["prompt"] for r in b]
    assert synth.generate_rows(0) == []
    with pytest.raises(ValueError):
        synth.generate_rows(-1)
    with pytest.raises(ValueError):
        synth.iter_rows(-1)  # checked at the call, not at the first row
    with pytest.raises(TypeError):
        synth.generate_rows(2.5)


def test_write_csv_atomic_same_bytes(tmp_path):
    p1, p2, p3 = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    assert synth.write_csv(p1, 400, seed=3) == 400
    synth.write_csv(str(p2), 400, seed=3)
    synth.write_csv(p3, 400, seed=4)
    data = p1.read_bytes()
    assert data == p2.read_bytes()
    assert data != p3.read_bytes()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.csv", "b.csv", "c.csv"]
    # The real file's dialect: LF line ends, header, minimal quoting.
    assert b"\r" not in data
    lines = data.split(b"\n")
    assert lines[0] == b",".join(c.encode() for c in synth.COLUMNS)
    assert lines[-1] == b"" and len(lines) == 402
    assert re.match(rb'^\d+,[^",]+,[^",]+,"\[', lines[1])
    with open(p1, newline="", encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    rows = synth.generate_rows(400, seed=3)
    assert back == [{c: str(r[c]) for c in synth.COLUMNS} for r in rows]


def test_bytes_are_pinned(tmp_path):
    """The rows of a fixed (n, seed), byte for byte: a change to the word
    lists (data/synth_words.json), the distributions or the order of the
    draws shows here. If it is meant, update the digest and re-run
    scripts/train_demo_tokenizer.py (the demo tokenizer is trained on these
    rows)."""
    path = tmp_path / "pinned.csv"
    synth.write_csv(path, 300, seed=0)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == PINNED_DIGEST
    # Without the preferences: the rows written before they came, unchanged.
    synth.write_csv(path, 300, seed=0, preferences=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "023d6de9a7424b88f3f372cba6b34ae1203a64b8d01816670670782348e546c4"


# write_csv(path, 300, seed=0): the rows with preferences (synth.prefs).
PINNED_DIGEST = "423f624ef7d29a8c3dc1a485f30e0fd88847b9ef1085cab496a9e8eabe57e0c5"


def test_header_is_the_kaggle_readers():
    assert synth.COLUMNS == kaggle.COLUMNS


# -- distributions (public EDA of the real train.csv) ----------------------------


def test_turn_distribution(parsed5k):
    turns = [len(p) for p, _, _ in parsed5k]
    n = len(turns)
    assert 0.84 <= turns.count(1) / n <= 0.90  # real: 86.9%
    assert 0.06 <= turns.count(2) / n <= 0.10  # real: 8.1%
    assert turns.count(3) > turns.count(4) > turns.count(5) > 0
    assert 1.18 <= sum(turns) / n <= 1.30  # real: 1.24
    assert 8 <= max(turns) <= 20


def test_character_distribution(parsed5k):
    prompts = [_chars(p) for p, _, _ in parsed5k]
    responses = [_chars(a) for _, a, _ in parsed5k] + [_chars(b) for _, _, b in parsed5k]
    # real: median 91, p90 757, p99 4,698
    assert 78 <= _quantile(prompts, 0.5) <= 105
    assert 600 <= _quantile(prompts, 0.9) <= 950
    assert 3500 <= _quantile(prompts, 0.99) <= 7000
    # real: median 1,060, p90 2,571, p99 6,477, max 37,076
    assert 950 <= _quantile(responses, 0.5) <= 1180
    assert 2350 <= _quantile(responses, 0.9) <= 2850
    assert 5500 <= _quantile(responses, 0.99) <= 8500
    assert max(responses) >= 15000
    assert max(responses) <= 40000


def test_label_shares(rows5k):
    n = len(rows5k)
    a = sum(r["winner_model_a"] for r in rows5k) / n
    b = sum(r["winner_model_b"] for r in rows5k) / n
    tie = sum(r["winner_tie"] for r in rows5k) / n
    assert 0.32 <= a <= 0.38  # real: 34.9%
    assert 0.31 <= b <= 0.37  # real: 34.2%
    assert 0.28 <= tie <= 0.34  # real: 30.9%


# -- quirks -----------------------------------------------------------------------


def _quirk_counts(rows):
    c = collections.Counter()
    for row in rows:
        p, a, b = (json.loads(row[k]) for k in TEXT_COLUMNS)
        win = not row["winner_tie"]
        if a == [None] and b == [None]:
            c["null_both_sides"] += 1
        elif a == [None] or b == [None]:
            c["null_one_side"] += 1
        if len(p) > 1 and any(x is None and y is None for x, y in zip(a, b)):
            c["null_turn"] += 1
        c["empty_list"] += a == [] or b == []
        c["empty_string"] += (a == [""]) != (b == [""])
        c["empty_both"] += a == [""] and b == [""]
        c["empty_two_turns"] += a == ["", ""] or b == ["", ""]
        c["whitespace"] += any(t and not t.strip() for t in a + b)
        real = any(t and t.strip() for t in a)
        c["identical"] += a == b and real
        c["identical_win"] += a == b and real and win
        c["ragged"] += len(a) != len(p) or len(b) != len(p)
        c["lone_surrogate"] += any(t and LONE_SURROGATE.search(t) for t in p + a + b)
        c["special_tokens"] += any(
            t and any(s in t for s in synth.SPECIAL_TOKEN_STRINGS) for t in p
        )
    return c


def test_every_quirk_occurs_in_2000_rows(rows2k):
    counts = _quirk_counts(rows2k)
    for name in (
        "null_one_side",
        "null_both_sides",
        "null_turn",
        "empty_list",
        "empty_string",
        "empty_both",
        "empty_two_turns",
        "whitespace",
        "identical",
        "ragged",
        "lone_surrogate",
        "special_tokens",
    ):
        assert counts[name] >= 3, (name, counts)
    assert counts["identical_win"] >= 2, counts
    # Rare, as in the real file.
    assert sum(counts.values()) < 0.06 * len(rows2k)


def test_lone_surrogates_are_in_the_json_text(rows2k):
    broken = [
        r[c]
        for r in rows2k
        for c in TEXT_COLUMNS
        if re.search(r"\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])", r[c])
        or re.search(r"(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}", r[c])
    ]
    assert len(broken) >= 3
    for text in broken:
        value = json.loads(text)  # json accepts lone surrogates
        joined = "".join(t for t in value if t)
        with pytest.raises(UnicodeEncodeError):
            joined.encode("utf-8")


def test_repeated_prompts(rows5k):
    counts = collections.Counter(r["prompt"] for r in rows5k)
    repeated = sum(v for v in counts.values() if v > 1)
    assert max(counts.values()) >= 5
    assert 0.03 * len(rows5k) <= repeated <= 0.25 * len(rows5k)


def test_text_variety(rows5k, parsed5k):
    texts = ["\n".join(t for t in (*p, *a, *b) if t) for p, a, b in parsed5k]
    joined = "\n".join(texts)
    for pattern in (
        "```python\n",
        "```sql\n",
        "```javascript\n",
        "\n## ",
        "\n1. ",
        "\n- ",
        "**",
    ):
        assert pattern in joined, pattern
    scripts = {
        "cjk": "[\u4e00-\u9fff]",
        "kana": "[\u3040-\u30ff]",
        "cyrillic": "[\u0400-\u04ff]",
        "arabic": "[\u0600-\u06ff]",
        "hangul": "[\uac00-\ud7a3]",
        "latin-1": "[\u00c0-\u00ff]",
        "emoji": "[\U0001f300-\U0001faff]",
    }
    for name, pattern in scripts.items():
        hits = sum(1 for t in texts if re.search(pattern, t))
        assert hits >= 5, name
    english = sum(1 for t in texts if t.isascii())
    assert english > 0.7 * len(texts)
    assert any("\\/" in r["response_a"] for r in rows5k)


# -- preferences visible in the text ------------------------------------------------

COMPLETE_ENDS = tuple(".!?)`|*:\"'\u3002\uff01\uff1f")


def _side(turns):
    """What an answer shows: empty, refusal, cut (stops mid-sentence) or
    answer (complete: good, or off-topic)."""
    texts = [t for t in turns if t and t.strip()]
    if not texts:
        return "empty"
    if texts[0].startswith(synth.REFUSALS):
        return "refusal"
    last = texts[-1].rstrip()
    if len(last) >= 40 and not last.endswith(COMPLETE_ENDS):
        if not last[-1].isdigit() and unicodedata.category(last[-1])[0] != "S":
            return "cut"
    return "answer"


def _outcomes(rows, parsed):
    """{(side A, side B): Counter of 'a' / 'b' / 'tie'}."""
    out = collections.defaultdict(collections.Counter)
    for row, (_, a, b) in zip(rows, parsed):
        won = "a" if row["winner_model_a"] else "b" if row["winner_model_b"] else "tie"
        out[_side(a), _side(b)][won] += 1
    return out


def _share(counter, key):
    return counter[key] / max(1, sum(counter.values()))


def test_a_refusal_loses_to_an_answer(rows5k, parsed5k):
    out = _outcomes(rows5k, parsed5k)
    a_refuses, b_refuses = out["refusal", "answer"], out["answer", "refusal"]
    assert sum(a_refuses.values()) >= 200 and sum(b_refuses.values()) >= 200, out
    assert _share(a_refuses, "b") >= 0.8 and _share(a_refuses, "a") <= 0.1, a_refuses
    assert _share(b_refuses, "a") >= 0.8 and _share(b_refuses, "b") <= 0.1, b_refuses
    # A truncated answer still answers: it beats a refusal too.
    assert _share(out["refusal", "cut"] + out["cut", "refusal"], "tie") <= 0.15


def test_both_refusing_is_a_tie(rows5k, parsed5k):
    both = _outcomes(rows5k, parsed5k)["refusal", "refusal"]
    assert sum(both.values()) >= 100, both
    assert _share(both, "tie") >= 0.8, both


def test_a_complete_answer_beats_a_truncated_one(rows5k, parsed5k):
    out = _outcomes(rows5k, parsed5k)
    a_cut, b_cut = out["cut", "answer"], out["answer", "cut"]
    assert sum(a_cut.values()) >= 200 and sum(b_cut.values()) >= 200, out
    # "answer" holds the off-topic ones too, which tie with a truncated one.
    assert _share(a_cut, "b") >= 0.7 and _share(a_cut, "a") <= 0.1, a_cut
    assert _share(b_cut, "a") >= 0.7 and _share(b_cut, "b") <= 0.1, b_cut
    # Two complete answers: both good or both off-topic tie, a good one beats
    # an off-topic one (about 1 in 5 of these rows).
    assert 0.55 <= _share(out["answer", "answer"], "tie") <= 0.85


def test_an_on_topic_answer_beats_an_off_topic_one():
    from arena_fast.synth import prefs

    a_wins, b_wins, tie = synth.preference_shares("good", "off_topic")
    assert a_wins >= 0.85 and b_wins <= 0.05
    assert synth.preference_shares("off_topic", "truncated")[2] >= 0.85
    assert synth.preference_shares("truncated", "refusal")[0] >= 0.85
    # An off-topic answer of an English prompt is about another topic.
    rng = random.Random(0)
    ctx = prose.Context("en", "cooking", "question")
    for _ in range(50):
        other = prefs.side_context(rng, ctx, "off_topic")
        assert other.topic != "cooking" and other.lang == "en"
        assert prefs.side_context(rng, ctx, "good") is ctx


def test_preferences_are_symmetric_in_a_and_b(rows5k, parsed5k):
    from arena_fast.synth import prefs

    for qa in synth.QUALITIES:
        for qb in synth.QUALITIES:
            pa, pb, tie = synth.preference_shares(qa, qb)
            assert synth.preference_shares(qb, qa) == (pb, pa, tie)
            assert math.isclose(pa + pb + tie, 1.0)
    weights = dict(prefs.PLANS)
    assert math.isclose(sum(weights.values()), 1.0)
    for (qa, qb), w in weights.items():
        assert weights[qb, qa] == w
    # On the rows: A and B win as often, and a refusal loses on either side.
    n = len(rows5k)
    a = sum(r["winner_model_a"] for r in rows5k) / n
    b = sum(r["winner_model_b"] for r in rows5k) / n
    assert abs(a - b) <= 0.03
    out = _outcomes(rows5k, parsed5k)
    assert abs(_share(out["refusal", "answer"], "b") - _share(out["answer", "refusal"], "a")) < 0.08


def test_preferences_keep_lengths_and_can_be_left_out():
    with_prefs = synth.generate_rows(400, seed=2)
    plain = synth.generate_rows(400, seed=2, preferences=False)
    assert with_prefs == synth.generate_rows(400, seed=2)
    assert plain == list(synth.iter_rows(400, 2, preferences=False))
    # The same ids and quirk plan (drawn first); other answers and labels.
    assert [r["id"] for r in with_prefs] == [r["id"] for r in plain]
    assert [r["response_a"] for r in with_prefs] != [r["response_a"] for r in plain]
    refusals = sum(
        json.loads(r[c])[0].startswith(synth.REFUSALS)
        for r in plain
        for c in ("response_a", "response_b")
        if json.loads(r[c]) and json.loads(r[c])[0]
    )
    assert refusals < 0.02 * 800  # the rows before the preferences seldom refuse


# -- the CLI command ---------------------------------------------------------------


def test_cli_synth(tmp_path, capsys):
    command = pytest.importorskip("arena_fast.cli.synth")
    parser = argparse.ArgumentParser(prog="arena-fast")
    sub = parser.add_subparsers(dest="command")
    command.add_parser(sub)
    out = tmp_path / "synth.csv"
    args = parser.parse_args(["synth", "--rows", "25", "--seed", "5", "--out", str(out)])
    assert args.run(args) == 0
    err = capsys.readouterr().err
    assert "25 rows" in err and str(out) in err
    with open(out, newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 25
    other = tmp_path / "again.csv"
    synth.write_csv(other, 25, seed=5)
    assert out.read_bytes() == other.read_bytes()
    defaults = parser.parse_args(["synth", "--out", "x.csv"])
    assert (defaults.rows, defaults.seed, defaults.preferences) == (1000, 0, True)
    plain = tmp_path / "plain.csv"
    args = parser.parse_args(
        ["synth", "--rows", "25", "--seed", "5", "--no-preferences"] + ["--out", str(plain)]
    )
    assert args.run(args) == 0
    synth.write_csv(other, 25, seed=5, preferences=False)
    assert plain.read_bytes() == other.read_bytes() != out.read_bytes()
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--rows", "10"])  # --out is required
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--rows", "-3", "--out", "x.csv"])
    capsys.readouterr()


# -- the bundled demo tokenizer ----------------------------------------------------

DEMO = PKG / "data" / "demo_tokenizer"

ROUND_TRIP = (
    "Hello, world! This is a test.",
    "  two leading spaces and two trailing  ",
    "line one\nline two\n\nparagraph\n\n\n\n\n\n\n\n\n\nten newlines",
    "def f(x):\n    return x * 2  # comment\n\tTab",
    "Привет! 你好，世界。こんにちは。안녕하세요. مرحبا ¿Qué tal? Größe",
    "Emoji: 😊🚀👍 ❤️ ✅ and rarer ones: 🦩 𝄞",
    "Plain text: <eos> <bos> <end_of_turn> <start_of_turn>user <|begin_of_text|>",
    "",
)


def test_demo_tokenizer_files():
    config = json.loads((DEMO / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config == {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"}
    raw = (DEMO / "tokenizer.json").read_bytes()
    assert len(raw) < 1_000_000
    spec = json.loads(raw)
    assert spec["normalizer"] == {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
    assert spec["model"]["type"] == "BPE" and spec["model"]["byte_fallback"] is True
    assert [d["type"] for d in spec["decoder"]["decoders"]] == ["Replace", "ByteFallback", "Fuse"]
    added = {a["content"]: (a["id"], a["special"]) for a in spec["added_tokens"]}
    assert added["<pad>"] == (0, True) and added["<eos>"] == (1, True)
    assert added["<bos>"] == (2, True) and added["<unk>"] == (3, True)
    for k in range(1, 9):
        assert added["\n" * k] == (3 + k, False)
    vocab = spec["model"]["vocab"]
    assert len(vocab) == 8000
    assert all(f"<0x{b:02X}>" in vocab for b in range(256))
    # No entry crosses a word start (a "▁" run after other text), like Gemma's.
    assert not [t for t in vocab if re.search("[^▁]▁", t)]


def test_demo_tokenizer_round_trips():
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(DEMO / "tokenizer.json"))
    assert tok.get_vocab_size() == 8000
    assert tok.token_to_id("<bos>") == 2 and tok.token_to_id("\n\n") == 5
    for text in ROUND_TRIP:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
    assert tok.encode("hi").ids[0] == 2  # BOS from the post-processor
    tok.encode_special_tokens = True  # special-token strings as plain text
    ids = tok.encode("a <eos> b <bos>", add_special_tokens=False).ids
    assert 1 not in ids and 2 not in ids
    assert tok.decode(ids) == "a <eos> b <bos>"
    sample = "Sure! Here is an overview.\n\n1. **Unit tests:** Keep in mind that recursion"
    assert len(tok.encode(sample, add_special_tokens=False).ids) < len(sample) / 2


@pytest.mark.slow
def test_demo_tokenizer_is_reproducible(monkeypatch):
    """The shipped tokenizer.json is what scripts/train_demo_tokenizer.py
    writes (re-run the script after changing the generator). It was trained on
    the rows without preferences (`preferences=False`, pinned byte for byte by
    test_bytes_are_pinned)."""
    pytest.importorskip("tokenizers")
    script = _load(
        "_train_demo_tokenizer", PKG.parent.parent / "scripts" / "train_demo_tokenizer.py"
    )
    plain = functools.partial(synth.iter_rows, preferences=False)
    monkeypatch.setattr(script.synth, "iter_rows", plain)
    text = script.build(5000, 12345)
    if not text.endswith("\n"):
        text += "\n"
    assert text == (DEMO / "tokenizer.json").read_text(encoding="utf-8")
