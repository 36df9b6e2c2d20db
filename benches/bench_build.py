"""build-dataset end to end vs the encoder alone, on the same rows.

    python benches/bench_build.py --rows 57477            # time ratio (issue 4: <= 1.25x)
    python benches/bench_build.py --rows 1000000 --memory # peak RSS, rows/s (<= 2 GB)
    python benches/bench_build.py --rows 57477 --layout arena140k  # 140k layout vs Kaggle

The rows are `arena-fast synth` rows written once as a Kaggle train.csv
(cached under --cache). The encoder's time is `Encoder.encode_json` on the
CSV's three text columns, already in memory (reading the file is not
counted for it); the build's time is everything: reading the CSV, parsing,
cleaning, de-duplication, folds, encoding and writing the shards. Both use
the same encoder settings and thread count, with a cold word cache. The
memory mode runs each build in a fresh process and reads its peak RSS.
`--layout arena140k` writes the same rows once more as a parquet file in the
lmarena-ai/arena-human-preference-140k layout (typed content parts; a tie
of every other id is both_bad) and times the build of each file, rows/s."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def synth_csv(rows: int, cache: Path) -> Path:
    from arena_fast.synth import write_csv

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"synth-{rows}.csv"
    if not path.exists():
        t = time.perf_counter()
        write_csv(path, rows, seed=0)
        print(f"wrote {path} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def synth_140k(rows: int, cache: Path) -> Path:
    """The synth rows in the 140k layout (parquet with its nested types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from arena_fast.synth import iter_rows
    from arena_fast.text import repair_text

    path = cache / f"synth-{rows}.140k.parquet"
    if path.exists():
        return path
    t = time.perf_counter()

    def turns(cell: str) -> list:
        values = json.loads(cell) or []
        return [None if v is None else repair_text(v)[0] for v in values]

    def conversation(prompt: list, answers: list) -> list:
        messages = []
        for i in range(max(len(prompt), len(answers))):
            for role, side in (("user", prompt), ("assistant", answers)):
                if i < len(side):
                    text = side[i]
                    part = {"type": "text", "text": text, "image": None, "mimeType": None}
                    messages.append({"role": role, "content": None if text is None else [part]})
        return messages

    records = []
    for r in iter_rows(rows, seed=0):
        prompt = turns(r["prompt"])
        if r["winner_model_a"]:
            winner = "model_a"
        elif r["winner_model_b"]:
            winner = "model_b"
        else:
            winner = "tie" if int(r["id"]) % 2 else "both_bad"
        records.append(
            {
                "id": str(r["id"]),
                "model_a": r["model_a"],
                "model_b": r["model_b"],
                "winner": winner,
                "evaluation_session_id": f"s{r['id']}",
                "evaluation_order": 1,
                "conversation_a": conversation(prompt, turns(r["response_a"])),
                "conversation_b": conversation(prompt, turns(r["response_b"])),
                "category_tag": {"math_v0.1": {"math": int(r["id"]) % 5 == 0}},
                "language": "English",
                "is_code": False,
            }
        )
    pq.write_table(pa.Table.from_pylist(records), path)
    print(f"wrote {path} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def make_encoder(tokenizer: str, args):
    import arena_fast as af

    return af.Encoder(
        af.Tokenizer.from_file(tokenizer), max_length=args.max_length, num_threads=args.threads
    )


def encoder_time(csv: Path, enc, args) -> float:
    import polars as pl

    from arena_fast import _core

    frame = pl.read_csv(csv, infer_schema=False, columns=["prompt", "response_a", "response_b"])
    cols = [frame[c].to_list() for c in ("prompt", "response_a", "response_b")]
    del frame
    best = float("inf")
    for _ in range(args.repeat):
        _core.clear_word_cache()
        t = time.perf_counter()
        enc.encode_json(*cols, swap="both" if args.swap else False)
        best = min(best, time.perf_counter() - t)
    return best


def build_time(csv: Path, enc, args, fmt: str = "kaggle") -> tuple[float, dict]:
    from arena_fast import _core
    from arena_fast.dataset import BuildConfig, build_dataset

    best, manifest = float("inf"), {}
    for _ in range(args.repeat):
        out = Path(tempfile.mkdtemp(prefix="bench-build-")) / "ds"
        _core.clear_word_cache()
        config = BuildConfig(
            inputs=[f"{csv}:{fmt}"],
            swap=args.swap,
        )
        t = time.perf_counter()
        manifest = build_dataset(config, out, encoder=enc)
        best = min(best, time.perf_counter() - t)
        shutil.rmtree(out.parent)
    return best, manifest


def child_build(args) -> None:
    """One build in this process; prints JSON with the peak RSS."""
    from arena_fast.dataset import BuildConfig, build_dataset

    out = Path(tempfile.mkdtemp(prefix="bench-build-")) / "ds"
    config = BuildConfig(
        inputs=[f"{args.csv}:kaggle"],
        tokenizer=args.tokenizer,
        max_length=args.max_length,
        swap=args.swap,
        threads=args.threads,
    )
    t = time.perf_counter()
    manifest = build_dataset(config, out)
    seconds = time.perf_counter() - t
    shutil.rmtree(out.parent)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rows": manifest["counts"]["rows_in"],
                "seconds": seconds,
                "rows_per_s": manifest["counts"]["rows_in"] / seconds,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


def layouts(args) -> dict:
    """The build of the same rows as a Kaggle CSV and in the 140k layout."""
    csv = synth_csv(args.rows, Path(args.cache))
    parquet = synth_140k(args.rows, Path(args.cache))
    encoder = make_encoder(args.tokenizer, args)
    out = {}
    for name, path in (("kaggle", csv), ("arena140k", parquet)):
        seconds, manifest = build_time(path, encoder, args, name)
        rows_in = manifest["counts"]["rows_in"]
        out[name] = {
            "build_s": seconds,
            "rows_in": rows_in,
            "rows_kept": manifest["counts"]["rows"],
            "rows_per_s": rows_in / seconds,
            "label_space": manifest["label_space"],
            "timings": manifest["timings"],
        }
        print(
            f"{name:>9}: rows {rows_in:,} -> {manifest['counts']['rows']:,} kept "
            f"({manifest['label_space']}), build {seconds:.2f} s, {rows_in / seconds:,.0f} rows/s"
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=57477)
    p.add_argument("--tokenizer", default=str(SHARED / "tokenizers/gemma3/tokenizer.json"))
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--swap", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "arena-fast-bench"))
    p.add_argument("--memory", action="store_true", help="peak RSS of a build per row count")
    p.add_argument(
        "--layout",
        choices=("kaggle", "arena140k"),
        default="kaggle",
        help="arena140k: the build of the same rows in the 140k layout beside the Kaggle CSV's",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--csv", help=argparse.SUPPRESS)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args()
    if args.child:
        child_build(args)
        return 0
    if not Path(args.tokenizer).is_file():
        print(f"{args.tokenizer} missing: needs ../shared beside the checkout", file=sys.stderr)
        return 2
    results: dict = {"rows": args.rows, "swap": args.swap, "threads": args.threads}
    if args.memory:
        runs = []
        for rows in sorted({max(1, args.rows // 4), args.rows}):
            csv = synth_csv(rows, Path(args.cache))
            cmd = [sys.executable, __file__, "--child", "--csv", str(csv)]
            cmd += ["--tokenizer", args.tokenizer, "--max-length", str(args.max_length)]
            if args.swap:
                cmd.append("--swap")
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            run = json.loads(out.strip().splitlines()[-1])
            runs.append(run)
            print(
                f"rows {run['rows']:>9,}  {run['seconds']:7.1f} s  {run['rows_per_s']:8,.0f} rows/s"
                f"  peak RSS {run['peak_rss_mb']:7.0f} MB"
            )
        results["memory"] = runs
    elif args.layout == "arena140k":
        results.update(layouts(args))
    else:
        csv = synth_csv(args.rows, Path(args.cache))
        encoder = make_encoder(args.tokenizer, args)  # loaded once, used by both
        enc = encoder_time(csv, encoder, args)
        build, manifest = build_time(csv, encoder, args)
        results["timings"] = manifest["timings"]
        print(f"build stages: {manifest['timings']}")
        ratio = build / enc
        results.update(
            encoder_s=enc, build_s=build, ratio=ratio, rows_kept=manifest["counts"]["rows"]
        )
        print(
            f"rows {args.rows:,} swap={args.swap} threads={args.threads or 1}: "
            f"encoder {enc:.2f} s, build-dataset {build:.2f} s, ratio {ratio:.3f} (target <= 1.25)"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
