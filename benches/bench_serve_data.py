"""The dataset browser of `arena-fast serve` on a large dataset: how long the
first page (with the total count) takes to open in a fresh server process,
and the requests after it.

    python benches/bench_serve_data.py --rows 1000000 --repeat 3

The dataset is made cheaply by `tests/serve/big_dataset.py` (N rows of the
small columns and a few real ids each, in 16,384-row shards; cached under
--cache). Each repeat runs in a fresh process: the app is created over the
dataset (`create_app`, timed apart: it warms pyarrow's pandas import and
compiles the templates), and `GET /datasets/big` is sent through
Starlette's TestClient (routing, the read, the template), timed from the
request to the response; then, the server warm, a filtered page far into
the rows (the first filter reads the small columns of every shard), an id /
model search, the same search's third page, a text search's first page, a
row page, and the process's peak RSS.
Target (issue 19): the first page in under a second."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def child(path: str) -> dict:
    t0 = time.perf_counter()
    from starlette.testclient import TestClient

    from arena_fast.serve import Catalog, create_app

    imported = time.perf_counter()
    client = TestClient(create_app(Catalog.from_paths([], [path])))
    out = {"import_s": imported - t0, "create_app_s": time.perf_counter() - imported}
    t1 = time.perf_counter()
    r = client.get("/datasets/big")
    out["first_page_s"] = time.perf_counter() - t1
    assert r.status_code == 200 and 'data-total="' in r.text, r.text[:300]
    out["total"] = int(r.text.split('data-total="')[1].split('"')[0])
    for name, url in (
        ("filtered_far_page_s", "/datasets/big?fold=2&language=de&page=200"),
        ("q_search_s", "/datasets/big?q=claude"),
        ("q_search_again_s", "/datasets/big?q=claude&page=3"),
        ("text_search_s", "/datasets/big?text=Round"),
        ("row_page_s", "/datasets/big/rows/987654"),
    ):
        t = time.perf_counter()
        r = client.get(url)
        out[name] = time.perf_counter() - t
        assert r.status_code in (200, 404), (url, r.status_code)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "bench_serve_data"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    sys.path.insert(0, str(TESTS))
    from serve.big_dataset import write_big_dataset

    root = Path(args.cache) / str(args.rows)
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    path = write_big_dataset(root, args.rows)
    print(f"dataset {path} ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    runs = []
    for _ in range(args.repeat):
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    keys = [k for k in runs[0] if k.endswith("_s") or k.endswith("_mb")]
    print(f"rows {runs[0]['total']:,}, {args.repeat} fresh processes")
    print("| measure | best | median | worst |")
    print("| --- | ---: | ---: | ---: |")
    for key in keys:
        values = sorted(r[key] for r in runs)
        unit = " MB" if key.endswith("_mb") else " s"
        cells = [f"{v:.3f}{unit}" if unit == " s" else f"{v:.0f}{unit}" for v in values]
        print(f"| {key} | {cells[0]} | {cells[len(cells) // 2]} | {cells[-1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
