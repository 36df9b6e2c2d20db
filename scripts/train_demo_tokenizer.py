"""Train the small Gemma-style demo tokenizer shipped with arena_fast.

    python scripts/train_demo_tokenizer.py [--rows 5000] [--seed 12345] [--check]

Writes python/arena_fast/data/demo_tokenizer/tokenizer.json and
tokenizer_config.json. The tokenizer has the shape of Gemma's: normalizer
Replace(" " -> "▁"), a pre-tokenizer that splits nothing (Split on " ", which
the normalizer has already removed), byte-fallback BPE with the 256 byte tokens
<0x00>..<0xFF> in the vocabulary, special tokens <pad> <eos> <bos> <unk> at ids
0-3, non-special added tokens for runs of 1-8 newlines (ids 4-11), and the
decoder Replace("▁" -> " "), ByteFallback, Fuse. Vocabulary: 8,000 entries.

The BPE merges are learned on text from `arena_fast.synth` with a training-only
pre-tokenizer that cuts the text where a "▁" run starts, so no merge crosses a
word start (the shipped pre-tokenizer does not split, like Gemma's; the word
cache of the Rust encoder relies on the property). Deterministic: running the
script twice writes the same bytes (--check verifies that and the round trip).

Needs the `tokenizers` package and an importable `arena_fast` (its synthetic
rows come from `arena_fast.synth`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from arena_fast import synth

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "python" / "arena_fast" / "data" / "demo_tokenizer"

VOCAB_SIZE = 8000
SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")
NEWLINE_RUNS = tuple("\n" * k for k in range(1, 9))
BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))
WORD_START = "\u2581"
CONFIG = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"}

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NEWLINES = re.compile("\n+")


def training_text(rows: int, seed: int) -> list:
    """Lines of text (no newlines: those are added tokens) from synthetic rows."""
    lines = []
    for row in synth.iter_rows(rows, seed, preferences=False):
        for column in ("prompt", "response_a", "response_b"):
            for turn in json.loads(row[column]):
                if not turn:
                    continue
                turn = _LONE_SURROGATE.sub("\ufffd", turn)
                lines.extend(part for part in _NEWLINES.split(turn) if part)
    return lines


def _added(token_id: int, content: str, special: bool) -> dict:
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def build(rows: int, seed: int) -> str:
    """The tokenizer.json text."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", WORD_START)
    # Training only: pieces are a run of "▁" and what follows up to the next run.
    tok.pre_tokenizer = pre_tokenizers.Split(
        Regex(f"{WORD_START}+[^{WORD_START}]*|[^{WORD_START}]+"), behavior="isolated"
    )
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(NEWLINE_RUNS) - len(BYTE_TOKENS),
        min_frequency=1,
        special_tokens=list(SPECIALS),
        show_progress=False,
        # The synthetic text repeats a small sentence bank; without a cap, BPE
        # learns whole CJK sentences (no spaces there) as single tokens.
        max_token_length=16,
    )
    tok.train_from_iterator(training_text(rows, seed), trainer=trainer)
    trained = json.loads(tok.to_str())

    # Renumber: specials, newline runs, byte tokens, then the learned entries.
    learned = sorted(trained["model"]["vocab"].items(), key=lambda kv: kv[1])
    order = list(SPECIALS) + list(NEWLINE_RUNS) + list(BYTE_TOKENS)
    taken = set(order)
    order += [t for t, _ in learned if t not in taken]
    assert len(order) == VOCAB_SIZE, len(order)
    vocab = {t: i for i, t in enumerate(order)}
    merges = trained["model"]["merges"]
    for merge in merges:
        left, right = merge if isinstance(merge, list) else merge.split(" ", 1)
        assert left in vocab and right in vocab and left + right in vocab, merge

    added = [_added(i, t, True) for i, t in enumerate(SPECIALS)]
    added += [_added(vocab[t], t, False) for t in NEWLINE_RUNS]
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": WORD_START},
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"String": " "},
            "behavior": "MergedWithPrevious",
            "invert": False,
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<bos>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<bos>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": WORD_START}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }
    # Let `tokenizers` parse it and write it back: its own canonical layout.
    final = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    assert final.get_vocab_size(with_added_tokens=True) == VOCAB_SIZE
    return final.to_str(pretty=True)


ROUND_TRIP = (
    "Hello, world! This is a test.",
    "  two leading spaces and two trailing  ",
    "line one\nline two\n\nparagraph\n\n\n\n\n\n\n\n\n\nten newlines",
    "def f(x):\n    return x * 2  # comment\n\tTab",
    "Привет! Как дела? 你好，世界。こんにちは。안녕하세요. مرحبا بالعالم",
    "Emoji: 😊🚀👍 ❤️ ✅ and a rare one: 🦩 𝄞",
    "Special strings as text: <eos> <bos> <end_of_turn> <start_of_turn>user <|begin_of_text|>",
    "Byte-ish text: <0x41> and \u0000 \u0007 control chars",
    "",
)


def check(text: str) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(text)
    for s in ROUND_TRIP:
        ids = tok.encode(s, add_special_tokens=False).ids
        back = tok.decode(ids, skip_special_tokens=False)
        assert back == s, (s, back)
    tok.encode_special_tokens = True
    ids = tok.encode("a <eos> b", add_special_tokens=False).ids
    assert 1 not in ids, ids
    assert tok.decode(ids) == "a <eos> b"
    assert tok.token_to_id("\n\n") == 5 and tok.token_to_id("<0x00>") == 12


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="synthetic rows to train on")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the synthetic rows")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="train twice, compare the bytes, test round trips"
    )
    args = parser.parse_args(argv)

    text = build(args.rows, args.seed)
    if not text.endswith("\n"):
        text += "\n"
    if args.check:
        again = build(args.rows, args.seed)
        if not again.endswith("\n"):
            again += "\n"
        if again != text:
            print("not deterministic: two trainings differ", file=sys.stderr)
            return 1
        check(text)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "tokenizer.json", text)
    _write(args.out / "tokenizer_config.json", json.dumps(CONFIG, indent=2) + "\n")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    print(
        f"wrote {args.out / 'tokenizer.json'} ({len(text.encode('utf-8')):,} bytes, "
        f"sha256 {digest}) and tokenizer_config.json",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
