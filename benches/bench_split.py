"""The GPT-style split scanner alone (`gpt_split::Scanner::split`), in MB/s.

Dumps the peer comparison's texts (`bench_encode.peer_sets`: synthetic rows
and the real Kaggle rows, every turn joined by a blank line) to files, then
runs the ignored Rust timing test `gpt_split::tests::split_throughput` on
them, which prints MB/s and pre-tokens/s per pattern and text set.

    .venv/bin/python benches/bench_split.py [--rows 3000] [--out DIR]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_encode import peer_sets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/arena_split_bench"))
    ap.add_argument("--profile", default="dev-opt")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, rows in peer_sets(args.rows, args.seed).items():
        text = "\n\n".join(t for row in rows for turns in row for t in turns)
        path = args.out / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    env = dict(os.environ, ARENA_SPLIT_BENCH=os.pathsep.join(files))
    cmd = [
        "cargo",
        "test",
        "-p",
        "arena-fast-core",
        "--profile",
        args.profile,
        "--lib",
        "split_throughput",
        "--",
        "--ignored",
        "--nocapture",
    ]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    main()
