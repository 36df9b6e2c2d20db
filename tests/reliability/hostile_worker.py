"""Runs cases of the hostile-input corpus (cases.py) and reports what came
out, as one JSON line per case on stdout (prefixed `@@RESULT@@`).

    python hostile_worker.py            # a worker: a {"case", "dir"} JSON line per case on stdin
    python hostile_worker.py CASE DIR   # one case, then exit (big inputs: a fresh process)

Before the entry point is called the input is made, the peak-RSS mark is
reset (/proc/self/clear_refs) and `@@BASE@@ <MB>` is printed, so the parent
can watch the growth and kill a run that passes its bound; the result holds
the seconds the entry call took and the peak RSS. Anything the entry raises
is reported (class, whether it is an ArenaFastError, message, traceback);
`test_hostile.py` decides whether that is the expected outcome."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as corpus  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

import arena_fast as af  # noqa: E402

RESULT = "@@RESULT@@ "
BASE = "@@BASE@@ "


def _status_mb(key: str) -> Optional[float]:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) / 1024 if found else None


def _reset_peak() -> bool:
    """Reset VmHWM (and ru_maxrss) to the current RSS; False where the
    kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    rss, hwm = _status_mb("VmRSS"), _status_mb("VmHWM")
    return rss is not None and hwm is not None and hwm <= rss + 64


def _tokenizer(name: str) -> af.Tokenizer:
    if name == "demo":
        return af.Tokenizer.demo()
    return af.Tokenizer.from_file(corpus.SHARED_DIR / "tokenizers" / name / "tokenizer.json")


def _special_ids(tok: af.Tokenizer) -> list[int]:
    data = json.loads(tok.to_str())
    return sorted(t["id"] for t in data.get("added_tokens", []) if t.get("special"))


def _dataset(out: Path, want_ids: bool) -> dict[str, Any]:
    """What a built dataset holds: its manifest, every kept and dropped row,
    and the row count load_dataset gives back."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    columns = ["input", "row", "id", "flags", "repairs", "turns", "turns_kept", "length"]
    columns += ["full_length", "truncated"] + (["input_ids"] if want_ids else [])
    rows: list[dict] = []
    for shard in manifest["shards"]:
        rows += pl.read_parquet(out / shard["file"], columns=columns).to_dicts()
    for row in rows:
        if want_ids:
            row["ids"] = np.frombuffer(row.pop("input_ids"), dtype="<i4").tolist()
    dropped = pl.read_parquet(out / "dropped.parquet").to_dicts()
    loaded = af.load_dataset(out)
    special = _special_ids(af.Tokenizer.from_file(out / "tokenizer.json")) if want_ids else []
    return {
        "manifest": {k: manifest[k] for k in ("counts", "inputs", "shards", "encoder")},
        "rows": rows,
        "dropped": dropped,
        "loaded_rows": len(loaded),
        "loaded_ids": list(loaded.ids),
        "max_length": manifest["encoder"]["max_length"],
        "special_ids": special,
        "bos": manifest["encoder"]["bos_token_id"],
        "eos": manifest["encoder"]["eos_token_id"],
    }


def _build_config(case: corpus.Case, inputs: corpus.Inputs) -> af.BuildConfig:
    options = {k: v for k, v in case.config.items() if k not in ("tokenizer", "write")}
    options.setdefault("max_length", 256)
    options.setdefault("folds", 2)
    tok = case.config.get("tokenizer", "demo")
    path = None if tok == "demo" else str(corpus.SHARED_DIR / "tokenizers" / tok / "tokenizer.json")
    return af.BuildConfig(inputs=list(inputs.files), tokenizer=path, **options)


def _cli(case: corpus.Case, inputs: corpus.Inputs, d: Path) -> dict[str, Any]:
    from arena_fast.cli import main

    config = _build_config(case, inputs)
    out = d / "dataset"
    argv = ["build-dataset", "--out", str(out), "--quiet", "--max-length", str(config.max_length)]
    argv += ["--folds", str(config.folds)]
    for spec in inputs.files:
        argv += ["--input", spec]
    argv += [a.replace("{dir}", str(d)) for a in case.cli_args]
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        rc = main(argv)
    result: dict[str, Any] = {"outcome": "exit", "rc": rc, "stderr": stderr.getvalue()}
    if rc == 0:
        result.update(_dataset(out, case.want_ids))
    return result


def _encoded(enc: af.Encoder, out: af.Encoded, want_ids: bool) -> dict[str, Any]:
    offsets = np.asarray(out.offsets)
    problems = []
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(out.input_ids):
        problems.append("offsets do not span input_ids")
    if (np.diff(offsets) < 0).any():
        problems.append("offsets decrease")
    rows = []
    for i in range(len(out)):
        row = {
            "row": i,
            "repairs": int(out.repairs[i]),
            "turns_total": int(out.turns_total[i]),
            "turns_kept": int(out.turns_kept[i]),
            "length": int(out.lengths[i]),
            "full_length": int(out.full_length[i]),
            "truncated": bool(out.truncated[i]),
        }
        if want_ids:
            row["ids"] = out[i].tolist()
        rows.append(row)
    return {
        "outcome": "ok",
        "rows": rows,
        "problems": problems,
        "max_length": enc.max_length,
        "special_ids": _special_ids(enc.tokenizer),
        "bos": enc.bos_token_id,
        "eos": enc.eos_token_id,
    }


def _call(case: corpus.Case, inputs: corpus.Inputs, d: Path) -> dict[str, Any]:
    """Call the case's entry point; a normal return as an observation."""
    if case.entry == corpus.BUILD:
        out = d / "dataset"
        af.build_dataset(_build_config(case, inputs), out)
        return {"outcome": "ok", **_dataset(out, case.want_ids)}
    if case.entry == corpus.CLI:
        return _cli(case, inputs, d)
    if case.entry in (corpus.ENCODE_JSON, corpus.ENCODE):
        options = {k: v for k, v in case.config.items() if k != "tokenizer"}
        options.setdefault("max_length", 256)
        enc = af.Encoder(_tokenizer(case.config.get("tokenizer", "demo")), **options)
        call = enc.encode_json if case.entry == corpus.ENCODE_JSON else enc.encode
        return _encoded(enc, call(*inputs.args["columns"]), case.want_ids)
    if case.entry == corpus.TOKENIZER:
        tok = af.Tokenizer.from_file(inputs.files[0])
        return {"outcome": "ok", "vocab_size": tok.vocab_size}
    if case.entry == corpus.LOAD:
        ds = af.load_dataset(inputs.files[0])
        return {"outcome": "ok", "rows": len(ds)}
    raise AssertionError(f"unknown entry {case.entry!r}")


def run(name: str, directory: str) -> dict[str, Any]:
    case = corpus.BY_NAME[name]
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    try:
        inputs = case.make(d)
        for file, content in case.config.get("write", {}).items():
            (d / file).write_bytes(content)
    except Exception:
        return {"outcome": "setup_error", "traceback": traceback.format_exc()}
    made = {
        "files": [f.rpartition(":")[0] if _has_format(f) else f for f in inputs.files],
        "rows": inputs.rows,
        "ids": inputs.ids,
    }
    reset = _reset_peak()
    base = _status_mb("VmRSS")
    print(f"{BASE}{base}", flush=True)
    start = time.perf_counter()
    try:
        result = _call(case, inputs, d)
    except BaseException as exc:  # everything, so the parent sees what it was
        result = {
            "outcome": "error",
            "type": type(exc).__name__,
            "module": type(exc).__module__,
            "arena": isinstance(exc, af.ArenaFastError),
            "message": str(exc),
            "traceback": traceback.format_exc()[-4000:],
        }
    seconds = time.perf_counter() - start
    return {
        **result,
        "inputs": made,
        "seconds": seconds,
        "rss_base_mb": base,
        "rss_peak_mb": _status_mb("VmHWM"),
        "peak_reset": reset,
    }


def _has_format(spec: str) -> bool:
    from arena_fast.sources import FORMATS

    return spec.rpartition(":")[2] in FORMATS


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT + json.dumps(result) + "\n")
    sys.stdout.flush()


def main() -> None:
    if len(sys.argv) == 3:
        _emit(run(sys.argv[1], sys.argv[2]))
        return
    for line in sys.stdin:
        if line.strip():
            job = json.loads(line)
            _emit(run(job["case"], job["dir"]))


if __name__ == "__main__":
    main()
