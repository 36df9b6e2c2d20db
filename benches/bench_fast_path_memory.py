"""Memory and load time of a tokenizer with and without its fast path.

Each case loads `tokenizer.json` in a fresh process (the JSON text read
before the clock starts) and reports the RSS growth once loaded, the peak
RSS growth while loading (VmHWM), and the load time:

    .venv/bin/python benches/bench_fast_path_memory.py --tokenizer llama3 --tokenizer qwen2_5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TOKENIZERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "tokenizers"


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _worker(path: str, fast_path: bool) -> None:
    import gc

    from arena_fast import _core

    text = Path(path).read_text(encoding="utf-8")
    gc.collect()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    tok = _core.Tokenizer.from_str(text, fast_path)
    seconds = time.perf_counter() - start
    gc.collect()
    loaded = _status_mb("VmRSS") - before
    peak = _status_mb("VmHWM") - before
    print(
        json.dumps({"seconds": seconds, "rss_mb": loaded, "peak_mb": peak, "path": tok.fast_path})
    )


def measure(path: Path, fast_path: bool, runs: int) -> dict:
    got = []
    for _ in range(runs):
        cmd = [sys.executable, __file__, "--worker", str(path), str(int(fast_path))]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        got.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "seconds": min(g["seconds"] for g in got),
        "rss_mb": statistics.median(g["rss_mb"] for g in got),
        "peak_mb": statistics.median(g["peak_mb"] for g in got),
        "path": got[0]["path"],
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3] == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tokenizer", action="append", default=[], help="a name under shared/tokenizers"
    )
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per case (median RSS)")
    args = ap.parse_args()
    for name in args.tokenizer or ["llama3", "qwen2_5"]:
        path = TOKENIZERS / name / "tokenizer.json"
        off, on = measure(path, False, args.runs), measure(path, True, args.runs)
        added = 100 * (on["rss_mb"] - off["rss_mb"]) / off["rss_mb"]
        print(f"{name}: fast path {on['path']!r}")
        for label, c in (("without", off), ("with", on)):
            print(
                f"  {label:8} {c['seconds']:5.2f} s  loaded {c['rss_mb']:6.1f} MB  "
                f"peak {c['peak_mb']:6.1f} MB"
            )
        print(f"  the fast path adds {added:+.0f}% to the loaded tokenizer's memory")


if __name__ == "__main__":
    main()
