"""The byte-level BPE peers of `bench_encode.py --tokenizer` (issue 18): Hugging
Face `tokenizers`, tiktoken built offline from the same `tokenizer.json`,
quicktok (`quicktok-v1` on PyPI) imported offline from it, and ours, timed on
the same texts, one thread each, ids checked equal to Hugging Face's first.

tiktoken gets `mergeable_ranks` from the byte-level vocabulary (each token
string mapped back through the ByteLevel byte <-> unicode table), `pat_str`
from the `Split` pre-tokenizer's regex and the special tokens from
`added_tokens`; it has no normalizer, so for a tokenizer with an NFC normalizer
(qwen2_5) its texts are NFC-normalised first (untimed). quicktok's own importer
reads the same file into a temporary data directory (it applies NFC itself).

Special-token strings inside a text are plain text for every peer (Hugging
Face `encode_special_tokens = True`, tiktoken / quicktok `encode_ordinary`,
ours `split_special_tokens=True`), the encoder's default.

Run as a script it is the worker measuring one library's load time and RSS
growth in a fresh process: `python benches/_peers.py load LIB TOKENIZER_JSON`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

LIBS = ("arena_fast", "tokenizers", "tiktoken", "quicktok")


def byte_decoder() -> dict:
    """The ByteLevel table, unicode char -> byte (GPT-2's bytes_to_unicode, inverted)."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def byte_level_parts(data: dict):
    """(split regex, nfc) of a `normalizer? -> Split -> ByteLevel -> BPE`
    tokenizer.json, or a string saying why it is not one."""
    norm = data.get("normalizer")
    if norm is not None and norm.get("type") != "NFC":
        return f"normalizer {norm.get('type')} (tiktoken has none)"
    pre = data.get("pre_tokenizer") or {}
    nodes = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [n.get("type") for n in nodes]
    if kinds != ["Split", "ByteLevel"] or data["model"].get("type") != "BPE":
        return f"not a regex Split -> ByteLevel BPE (pre-tokenizer {kinds})"
    return nodes[0]["pattern"]["Regex"], norm is not None


def tiktoken_encoding(path: Path):
    """(tiktoken Encoding, nfc) built offline from `path`, or (None, why not)."""
    import tiktoken

    data = json.loads(path.read_text(encoding="utf-8"))
    parts = byte_level_parts(data)
    if isinstance(parts, str):
        return None, parts
    pattern, nfc = parts
    table = byte_decoder()
    ranks = {bytes(table[c] for c in s): i for s, i in data["model"]["vocab"].items()}
    specials = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    enc = tiktoken.Encoding(
        path.parent.name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials
    )
    return enc, nfc


def quicktok_encoding(path: Path, data_dir: str):
    """(quicktok Tokenizer imported offline from `path` into `data_dir`, None),
    or (None, why not)."""
    try:
        import quicktok
        from quicktok.importer import ImportRefused
    except ImportError as exc:
        return None, f"not installed ({exc})"
    name = "af_" + path.parent.name
    try:
        # Its importer prints what it did and verifies 19 stress texts; keep it quiet.
        with open(os.devnull, "w") as null:
            saved, sys.stdout = sys.stdout, null
            try:
                quicktok.import_tokenizer(str(path), name, data_dir=data_dir)
            finally:
                sys.stdout = saved
    except ImportRefused as exc:
        return None, str(exc).splitlines()[0]
    return quicktok.get_encoding(name, data_dir), None


def mismatches(ref: list, got) -> int:
    """How many texts' ids differ from the reference."""
    return sum(1 for a, b in zip(ref, got) if list(a) != list(b))


def nfc_texts(texts: list, nfc: bool) -> list:
    return [unicodedata.normalize("NFC", t) for t in texts] if nfc else texts


def best_of(repeat: int, fn, before=None) -> float:
    """The fastest of `repeat` timed calls of `fn` (wall clock), each after
    `before()` when given (untimed)."""
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(cases: dict, repeat: int, clock=time.perf_counter) -> tuple:
    """(best, first) seconds of each case over `repeat` rounds; every round
    runs every case once, in turn, so a busy spell of the shared machine hits
    them all; the first round is the cold one of a fresh process. A case is
    `fn` or `(fn, before)`, `before` untimed (e.g. a cache clear). `clock`:
    wall time, or `time.process_time` (CPU seconds of every thread of this
    process: steadier on a shared machine, meaningless for 2 threads)."""
    best = {name: float("inf") for name in cases}
    first = {}
    for _ in range(repeat):
        for name, case in cases.items():
            fn, before = case if isinstance(case, tuple) else (case, None)
            if before:
                before()
            start = clock()
            fn()
            seconds = clock() - start
            best[name] = min(best[name], seconds)
            first.setdefault(name, seconds)
    return best, first


# -- load time and memory, each library in a fresh process --------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _loader(lib: str, path: Path):
    """(load, encode): the call that loads `path` with `lib` (its module
    already imported) and the one that encodes a text with what it loaded."""
    if lib == "arena_fast":
        import arena_fast as af

        return lambda: af.Tokenizer.from_file(path), lambda tok, text: tok.encode(text)
    if lib == "tokenizers":
        from tokenizers import Tokenizer

        return lambda: Tokenizer.from_file(str(path)), lambda tok, text: tok.encode(text)
    if lib == "tiktoken":
        import tiktoken  # noqa: F401  (imported before the clock starts)

        return lambda: tiktoken_encoding(path)[0], lambda tok, text: tok.encode_ordinary(text)
    import quicktok

    data_dir = os.environ["AF_QUICKTOK_DIR"]
    load = lambda: quicktok.Tokenizer("af_" + path.parent.name, data_dir)  # noqa: E731
    return load, lambda tok, text: tok.encode_ordinary(text)


# A first encode after loading: a tokenizer building tables lazily shows them here.
FIRST_TEXT = "Which response is better? Explain, step by step: 12,345 words in 2024 — café, 日本語."


def _load_worker(lib: str, path: str) -> None:
    import gc

    load, encode = _loader(lib, Path(path))
    gc.collect()
    before = _rss_mb()
    start = time.perf_counter()
    obj = load()
    seconds = time.perf_counter() - start
    gc.collect()
    loaded = _rss_mb() - before
    encode(obj, FIRST_TEXT)
    used = _rss_mb() - before
    print(json.dumps({"seconds": seconds, "rss_mb": loaded, "rss_after_encode_mb": used}))


def load_costs(path: Path, quicktok_dir, runs: int = 3) -> dict:
    """lib -> {seconds (best), rss_mb, rss_after_encode_mb (medians)} of
    loading `path` in a fresh process `runs` times (imports done before the
    clock starts), RSS growth after loading and after a first short encode."""
    env = dict(os.environ, AF_QUICKTOK_DIR=quicktok_dir or "")
    out = {}
    for lib in LIBS:
        if lib == "quicktok" and not quicktok_dir:
            continue
        if lib == "tiktoken" and isinstance(
            byte_level_parts(json.loads(path.read_text(encoding="utf-8"))), str
        ):
            continue
        got = []
        for _ in range(runs):
            cmd = [sys.executable, __file__, "load", lib, str(path)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            got.append(json.loads(done.stdout.strip().splitlines()[-1]))
        out[lib] = {
            "seconds": min(g["seconds"] for g in got),
            "rss_mb": statistics.median(g["rss_mb"] for g in got),
            "rss_after_encode_mb": statistics.median(g["rss_after_encode_mb"] for g in got),
        }
    return out


def quicktok_dir() -> str:
    """A fresh temporary data directory for quicktok's imports."""
    return tempfile.mkdtemp(prefix="af_quicktok_")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "load":
        sys.exit("usage: _peers.py load LIB TOKENIZER_JSON")
    _load_worker(sys.argv[2], sys.argv[3])
