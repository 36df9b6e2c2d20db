"""`arena-fast serve`: the latency of a compare request for a ~2k-token pair
on a tiny model, and 20 concurrent requests (issue 19; target < 100 ms).

Setup (untimed): `arena-fast synth` rows built with max_length 2048 (demo
tokenizer, both orders), a run of a tiny preset (`--model`, default
tiny-gemma2) trained one step on them (its weights do not matter for
speed), and `arena-fast serve --run RUN --port 0 --torch-threads N` (default
1, the server's default) started in its own process. The pair is two turns
of synth words whose encoding is `--tokens` long in full (default 2000; both
orders are scored).

Timed, from this process over loopback HTTP: `POST /api/compare` with the
run (both orders scored by the model, swap-TTA, both orders explained span
by span), after `--warmup` requests (the first loads the run); `--requests`
sequential requests give the median and p95, and the server process's CPU
time per request (user + system, from /proc: what the request costs, less
sensitive than the wall time to other processes on a busy machine). Then 20 requests sent at once
from 20 threads: how many succeed, and the wall time. In-process, for the
breakdown: `Judge.compare` alone and the encoding view alone
(`Workbench.compare` without a run), on one torch thread: on a busy 2-core
machine two torch threads made one compare 20-40x slower (seconds), hence
the server's default of one.

    python benches/bench_serve.py --requests 50
    python benches/bench_serve.py --requests 50 --model tiny-llama
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _shared import synth_dataset

WORDS = (
    "river stone cloud apple music paper garden window lamp ocean forest bread "
    "the answer depends on your goals budget and time you have"
).split()


def make_run(root: Path, model: str) -> Path:
    from arena_fast.train import TrainConfig, train

    data = synth_dataset(root, rows=200, max_length=2048)
    run = root / "run"
    train(
        TrainConfig(
            data=str(data), model=model, epochs=1, max_steps=1, max_tokens=8192, out=str(run)
        )
    )
    return run


def make_pair(run: Path, tokens: int) -> dict:
    """Two turns of words whose full encoding is about `tokens` long."""
    from arena_fast.predict import run_encoder

    encoder = run_encoder(run)
    rng = np.random.default_rng(0)

    def pair(n: int) -> dict:
        def words(k: int) -> str:
            return " ".join(rng.choice(WORDS, size=k))

        return {
            "prompt": [words(n // 10), words(n // 10)],
            "response_a": [words(n // 5), words(n // 5)],
            "response_b": [words(n // 5), words(n // 5)],
        }

    n = tokens
    for _ in range(20):
        candidate = pair(n)
        full = encoder.explain(*candidate.values())["full_length"]
        if abs(full - tokens) <= tokens // 50:
            return candidate
        n = max(10, int(n * tokens / full))
    return candidate


# The server's script; with a baseline attention.py (argv[1], "" for none),
# its arena_varlen_attention is the one every model registers.
SERVE = """import importlib.util, sys
if sys.argv[1]:
    import arena_fast.torch.attention as attention
    spec = importlib.util.spec_from_file_location("attention_baseline", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    attention.arena_varlen_attention = module.arena_varlen_attention
from arena_fast.cli import main
sys.exit(main(sys.argv[2:]))"""


def serve(run: Path, threads: int, baseline: str = "") -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, baseline, "serve", "--run", str(run), "--port", "0"]
        + ["--torch-threads", str(threads)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    line = process.stderr.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the server did not start: {line}{process.stderr.read()}")
    return process, found.group(1)


def post(url: str, body: dict) -> tuple[int, float, dict]:
    request = urllib.request.Request(
        url + "api/compare",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        data = json.loads(response.read())
        return response.status, time.perf_counter() - start, data


def cpu_seconds(pid: int) -> float:
    """The user + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def in_process(run: Path, body: dict, repeat: int) -> dict:
    """Medians of `Judge.compare` and of the encoding view alone, in this
    process on one torch thread (the server's default)."""
    import torch

    from arena_fast.predict import Judge
    from arena_fast.serve import Catalog
    from arena_fast.serve.compare import Workbench, read_pair

    torch.set_num_threads(1)
    judge = Judge(run)
    bench = Workbench(Catalog.from_paths([run]))
    pair = read_pair(body)
    judge.compare(*pair.as_dict().values())
    bench.compare(pair, [], "run:run")
    times: dict = {"Judge.compare": [], "encoding view (explain, both orders)": []}
    times["Judge.compare, CPU time"] = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        judge.compare(*pair.as_dict().values())
        times["Judge.compare"].append(time.perf_counter() - start)
        times["Judge.compare, CPU time"].append(time.process_time() - cpu)
        start = time.perf_counter()
        bench.compare(pair, [], "run:run")
        times["encoding view (explain, both orders)"].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="sequential requests timed")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=2000, help="the pair's full length")
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--model", default="tiny-gemma2", help="a tiny preset (train --model)")
    parser.add_argument("--torch-threads", type=int, default=1, help="the server's (its default)")
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument(
        "--baseline",
        help="an older attention.py (e.g. `git show REV:python/arena_fast/torch/attention.py`): "
        "a second server runs with it, its requests interleaved with the first's",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = make_run(root, args.model)
        pair = make_pair(run, args.tokens)
        body = {**pair, "runs": ["run"]}
        process, url = serve(run, args.torch_threads)
        old = serve(run, args.torch_threads, args.baseline) if args.baseline else None
        try:
            for _ in range(args.warmup):
                status, _, first = post(url, body)
                assert status == 200, status
                if old:
                    assert post(old[1], body)[0] == 200
            if "result" not in first["runs"][0]:
                raise SystemExit(f"the run did not score: {first['runs'][0].get('error')}")
            record = first["runs"][0]["result"]
            latencies, old_latencies = [], []
            cpu_before = cpu_seconds(process.pid)
            old_cpu_before = cpu_seconds(old[0].pid) if old else 0.0
            old_cpu = 0.0
            for _ in range(args.requests):
                if old:  # interleaved: both servers see the same machine load
                    old_latencies.append(post(old[1], body)[1])
                status, seconds, _ = post(url, body)
                assert status == 200
                latencies.append(seconds)
            server_cpu = (cpu_seconds(process.pid) - cpu_before) / args.requests
            if old:
                old_cpu = (cpu_seconds(old[0].pid) - old_cpu_before) / args.requests
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrent) as pool:
                answers = list(pool.map(lambda _: post(url, body), range(args.concurrent)))
            wall = time.perf_counter() - start
        finally:
            for server in (process, old[0]) if old else (process,):
                server.send_signal(signal.SIGINT)
                server.wait(timeout=60)
                server.stderr.close()
        ok = sum(
            status == 200 and data["runs"][0]["result"] == record for status, _, data in answers
        )
        parts = in_process(run, pair, max(5, args.requests // 5))

    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    results = {
        "pair": {
            "turns": record["turns"],
            "full_length": record["full_length"],
            "tokens": record["tokens"],
            "max_length": record["max_length"],
        },
        "requests": args.requests,
        "median_s": statistics.median(latencies),
        "p95_s": p95,
        "min_s": latencies[0],
        "server_cpu_s_per_request": server_cpu,
        "concurrent": args.concurrent,
        "concurrent_ok": ok,
        "concurrent_wall_s": wall,
        "in_process_median_s": parts,
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    print(f"model: {args.model}, server torch threads {args.torch_threads}")
    print(
        f"pair: {record['turns']} turns, {record['full_length']} tokens in full, "
        f"{record['tokens']} kept of {record['max_length']} (original, swapped)"
    )
    print("| POST /api/compare (1 run) | median | p95 | min |")
    print("|---|---|---|---|")
    print(
        f"| {args.requests} sequential | {ms(results['median_s'])} | {ms(p95)} | "
        f"{ms(latencies[0])} |"
    )
    if old_latencies:
        old_latencies.sort()
        results["baseline"] = {
            "attention": args.baseline,
            "median_s": statistics.median(old_latencies),
            "server_cpu_s_per_request": old_cpu,
        }
        print(
            f"| baseline ({args.baseline}), interleaved | {ms(statistics.median(old_latencies))} "
            f"| | {ms(old_latencies[0])} |"
        )
        print(
            f"\nbaseline / this: median wall "
            f"{statistics.median(old_latencies) / results['median_s']:.2f}x, "
            f"server CPU {old_cpu / server_cpu:.2f}x (baseline's {ms(old_cpu)})"
        )
    print(f"\nthe server's CPU time per request: {ms(server_cpu)} (user + system)")
    print(
        f"{ok} of {args.concurrent} concurrent requests succeeded (same answer), "
        f"all answered in {ms(wall)}"
    )
    for name, seconds in parts.items():
        print(f"in process, {name}: {ms(seconds)} (median)")
    print(f"load average {results['loadavg'][0]:.2f} on {results['cpus']} cpus")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
