"""The same input, config and seed give the same bytes with 1, 2 and 8
threads and across processes; encoding from several Python threads at once
gives what encoding alone gives."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

import arena_fast as af
from arena_fast.synth import generate_rows

THREADS = (1, 2, 8)
COLUMNS = ("prompt", "response_a", "response_b")


def _columns(n: int, seed: int) -> list:
    rows = generate_rows(n, seed=seed)
    return [[r[c] for r in rows] for c in COLUMNS]


def _files(directory: Path) -> dict:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != "build.json"  # timings
    }


def test_datasets_are_byte_identical_for_any_thread_count(tmp_path):
    built = {}
    for threads in THREADS:
        config = af.BuildConfig(demo_rows=3000, seed=5, swap=True, folds=4, threads=threads)
        af.build_dataset(config, tmp_path / f"t{threads}")
        built[threads] = _files(tmp_path / f"t{threads}")
    assert built[1] == built[2] == built[8]
    assert any(name.startswith("data-") for name in built[1])


def _digest(enc: af.Encoded) -> str:
    h = hashlib.sha256()
    for name, arr in sorted(enc.arrays().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def test_encoding_is_identical_for_any_thread_count():
    cols = _columns(2000, 11)
    tok = af.Tokenizer.demo()
    digests = set()
    for strategy in ("fair", "fourth_place"):
        per = {
            threads: _digest(
                af.Encoder(tok, strategy=strategy, max_length=256, num_threads=threads).encode_json(
                    *cols, swap="both"
                )
            )
            for threads in THREADS
        }
        assert len(set(per.values())) == 1, per
        digests |= set(per.values())
    assert len(digests) == 2  # the two strategies do differ


PLAN_SCRIPT = """
import hashlib, json, sys
import numpy as np
import arena_fast as af
from arena_fast.synth import generate_rows

rows = generate_rows(1500, seed=2)
cols = [[r[c] for r in rows] for c in ("prompt", "response_a", "response_b")]
enc = af.Encoder(af.Tokenizer.demo(), max_length=384, num_threads=int(sys.argv[1]))
enc = enc.encode_json(*cols, swap="both")
labels = np.arange(len(enc)) % 3
h = hashlib.sha256()
for epoch in (0, 1):
    for rank in (0, 1):
        plans = [
            af.plan_packs(enc, 4096, seed=7, epoch=epoch, world_size=2, rank=rank),
            af.plan_batches(enc, 4096, seed=7, epoch=epoch, world_size=2, rank=rank),
        ]
        for plan in plans:
            for idx in plan:
                h.update(np.asarray(idx).tobytes())
        for idx in list(plans[0])[:5]:
            for k, v in sorted(af.collate_packed(enc, idx, labels).items()):
                h.update(k.encode() + np.asarray(v).tobytes())
        for idx in list(plans[1])[:5]:
            for k, v in sorted(af.collate_padded(enc, idx, pad_id=0, labels=labels).items()):
                h.update(k.encode() + np.asarray(v).tobytes())
print(json.dumps(h.hexdigest()))
"""


def test_plans_and_batches_are_identical_across_processes_and_threads():
    outs = {
        threads: subprocess.run(
            [sys.executable, "-c", PLAN_SCRIPT, str(threads)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for threads in THREADS
    }
    values = {json.loads(out) for out in outs.values()}
    assert len(values) == 1, outs


def test_encoding_from_several_python_threads_at_once():
    cols = _columns(1200, 4)
    encoder = af.Encoder(af.Tokenizer.demo(), max_length=256, num_threads=2)
    parts = [slice(i * 150, (i + 1) * 150) for i in range(8)]
    alone = [_digest(encoder.encode_json(*(c[p] for c in cols), swap="both")) for p in parts]
    results: dict = {}
    errors: list = []
    start = threading.Barrier(len(parts))

    def work(k: int) -> None:
        try:
            start.wait()
            for repeat in range(3):
                out = encoder.encode_json(*(c[parts[k]] for c in cols), swap="both")
                results[(k, repeat)] = _digest(out)
        except BaseException as exc:  # reported below, with the thread
            errors.append((k, exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(parts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert all(results[(k, r)] == alone[k] for k in range(len(parts)) for r in range(3))
