"""build-dataset / load_dataset: accounting, cleaning policies, de-duplication,
folds, atomic and deterministic output, and ids equal to the encoder's."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import arena_fast as af
from arena_fast import dataset as ds_mod
from arena_fast.cli import main
from arena_fast.dataset import BuildConfig, build_dataset, load_dataset
from arena_fast.dataset.parts import Builder
from arena_fast.rows import rows_from_arrow


def _build(tmp_path: Path, name: str = "ds", **kw) -> tuple[Path, dict]:
    out = tmp_path / name
    config = BuildConfig(**kw)
    return out, build_dataset(config, out)


def _dropped(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "dropped.parquet")


def _canonical(tmp_path: Path, rows: list[dict], name: str = "rows.parquet") -> str:
    frame = pl.DataFrame(
        rows,
        schema={
            "id": pl.String,
            "source": pl.String,
            "prompt": pl.List(pl.String),
            "response_a": pl.List(pl.String),
            "response_b": pl.List(pl.String),
            "labels": pl.List(pl.Float64),
        },
    )
    path = tmp_path / name
    frame.write_parquet(path)
    return f"{path}:canonical"


def row(i, prompt, a, b, labels=(1.0, 0.0, 0.0), source="canonical") -> dict:
    return {
        "id": str(i),
        "source": source,
        "prompt": [prompt],
        "response_a": [a],
        "response_b": [b],
        "labels": None if labels is None else list(labels),
    }


def test_demo_build_accounts_for_every_row(tmp_path):
    out, manifest = _build(tmp_path, demo_rows=600, folds=3, swap=True, chunk_rows=128)
    counts = manifest["counts"]
    dropped = _dropped(out)
    assert counts["rows_in"] == 600
    assert counts["input_rows_kept"] + counts["input_rows_dropped"] == counts["rows_in"]
    assert int(dropped["input_rows"].sum()) == counts["input_rows_dropped"]
    assert sum(counts["dropped"].values()) == counts["input_rows_dropped"]
    assert sum(s["rows"] for s in manifest["shards"]) == counts["rows"]
    assert sum(counts["folds"].values()) == counts["rows"]
    # Every input row is either kept or dropped, exactly once.
    data = pl.read_parquet(out / "data-*.parquet")
    seen = sorted(data["row"].to_list() + dropped["row"].to_list())
    assert seen == list(range(600))
    # Synth rows carry the quirks: some are dropped, each with a reason.
    assert set(dropped["reason"]) <= set(ds_mod.DROP_REASONS)
    assert counts["dropped"].get("both_empty", 0) > 0
    # Manifest: tokenizer hash, inputs, encoder config.
    demo_bytes = Path(af.Tokenizer.demo().source).read_bytes()
    assert manifest["tokenizer"]["sha256"] == hashlib.sha256(demo_bytes).hexdigest()
    assert (out / "tokenizer.json").read_bytes() == demo_bytes
    assert manifest["encoder"]["max_length"] == 2048
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_loaded_ids_equal_the_encoder(tmp_path):
    from arena_fast.synth import generate_rows

    out, _ = _build(tmp_path, demo_rows=300, folds=2, swap=True, max_length=256)
    data = load_dataset(out, swap=True)
    rows = {str(r["id"]): r for r in generate_rows(300, seed=0)}
    enc = data.encoder()
    picked = [rows[i] for i in data.ids[::2]]
    ref = enc.encode_json(
        [r["prompt"] for r in picked],
        [r["response_a"] for r in picked],
        [r["response_b"] for r in picked],
        swap="both",
    )
    assert data.encoded.to_lists() == ref.to_lists()
    assert (data.encoded.truncated == ref.truncated).all()
    # Labels follow the swap: odd rows exchange A and B.
    labels = np.array([[r["winner_model_a"], r["winner_model_b"], r["winner_tie"]] for r in picked])
    np.testing.assert_array_equal(data.labels[0::2], labels.astype(np.float32))
    np.testing.assert_array_equal(data.labels[1::2], labels[:, [1, 0, 2]].astype(np.float32))
    # The planner takes it as it is.
    plan = af.plan_packs(data.encoded, 4096, pair_swaps=True)
    assert sorted(np.concatenate(list(plan)).tolist()) == list(range(len(data)))
    # Without swap: the original order only.
    plain = load_dataset(out, swap=False)
    assert plain.encoded.to_lists() == data.encoded.to_lists()[0::2]


def test_folds_split_and_no_prompt_in_two_folds(tmp_path):
    from arena_fast.synth import generate_rows

    n = 3000  # synth repeats prompts (one prompt tens of times at this size)
    out, manifest = _build(tmp_path, demo_rows=n, folds=5, seed=3, max_length=128)
    full = load_dataset(out)
    rows = {str(r["id"]): r for r in generate_rows(n, seed=3)}
    prompts = pl.Series([rows[i]["prompt"] for i in full.ids])
    keys = rows_from_arrow(prompts, prompts, prompts).features()["prompt_key"]
    fold_of: dict[int, int] = {}
    repeated = 0
    for key, fold in zip(keys.tolist(), full.folds.tolist()):
        if key in fold_of:
            repeated += 1
            assert fold_of[key] == fold, "a prompt landed in two folds"
        fold_of[key] = fold
    assert repeated > 50
    for k in range(5):
        train = load_dataset(out, fold=k, split="train")
        valid = load_dataset(out, fold=k, split="valid")
        assert len(train) + len(valid) == len(full)
        assert set(train.ids).isdisjoint(valid.ids)
        assert (valid.folds == k).all() and (train.folds != k).all()
        # Stratified: each fold's share of A wins close to the whole set's.
        share = (valid.label == 0).mean()
        assert abs(share - (full.label == 0).mean()) < 0.05
        assert abs(len(valid) - len(full) / 5) < 0.05 * len(full)


def test_same_input_same_bytes_whatever_the_threads(tmp_path):
    def shard_hashes(out: Path) -> list[str]:
        return [
            hashlib.sha256((out / f).read_bytes()).hexdigest()
            for f in sorted(os.listdir(out))
            if f.endswith(".parquet")
        ]

    out1, m1 = _build(tmp_path, "one", demo_rows=500, swap=True, chunk_rows=100)
    out2, m2 = _build(tmp_path, "two", demo_rows=500, swap=True, chunk_rows=100, threads=2)
    assert shard_hashes(out1) == shard_hashes(out2)
    for m in (m1, m2):
        m.pop("timings")
    assert m1 == m2 and "threads" not in m1["config"]
    # The manifest file itself is the same bytes: the thread count is in build.json.
    assert (out1 / "manifest.json").read_bytes() == (out2 / "manifest.json").read_bytes()
    assert json.loads((out2 / "build.json").read_text())["threads"] == 2
    out3, _ = _build(tmp_path, "three", demo_rows=500, swap=True, chunk_rows=100, seed=1)
    assert shard_hashes(out3) != shard_hashes(out1)


def test_interrupted_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = Builder.encode

    def failing(self, ready):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, ready)

    monkeypatch.setattr(Builder, "encode", failing)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(BuildConfig(demo_rows=300, chunk_rows=100), tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(af.InputError, match="not a dataset"):
        load_dataset(tmp_path / "ds")


def test_existing_output_needs_overwrite(tmp_path):
    out, _ = _build(tmp_path, demo_rows=50)
    with pytest.raises(af.ConfigError, match="overwrite"):
        build_dataset(BuildConfig(demo_rows=50), out)
    build_dataset(BuildConfig(demo_rows=60), out, overwrite=True)
    assert json.loads((out / "manifest.json").read_text())["counts"]["rows_in"] == 60


def test_policies(tmp_path):
    rows = [
        row(0, "p0", "", "  ", (1, 0, 0)),  # both empty
        row(1, "p1", "", "answer", (1, 0, 0)),  # A empty
        row(2, "p2", "Same", "same ", (1, 0, 0)),  # identical
        row(3, "p3", "x", "y", (2, 1, 1)),  # labels sum to 4
        row(4, "p4", "x", "y", (-1, 1, 1)),  # negative
        row(5, "p5", "", "", None),  # unlabelled: never dropped for content
        row(6, "p6", "x", "y", (0, 0, 1)),
    ]
    spec = _canonical(tmp_path, rows)
    out, m = _build(tmp_path, inputs=[spec], folds=2)
    reasons = dict(zip(_dropped(out)["id"], _dropped(out)["reason"]))
    assert reasons == {"0": "both_empty", "2": "identical", "4": "bad_labels"}
    data = load_dataset(out)
    by_id = dict(zip(data.ids, data.labels.tolist()))
    assert by_id["1"] == [1, 0, 0]  # kept as labelled by default
    assert by_id["3"] == pytest.approx([0.5, 0.25, 0.25])
    assert np.isnan(by_id["5"]).all()
    assert m["counts"]["labels_normalised"] == 1

    out2, m2 = _build(
        tmp_path, "relabel", inputs=[spec], folds=2, one_empty="relabel", identical="tie"
    )
    data = load_dataset(out2)
    by_id = dict(zip(data.ids, data.labels.tolist()))
    assert by_id["1"] == [0, 1, 0]  # A empty: B wins
    assert by_id["2"] == [0, 0, 1]  # identical: tie
    assert m2["counts"]["relabelled"] == 2


def test_dedup_by_source_priority(tmp_path):
    kaggle = [row(i, f"prompt {i}", f"a{i}", f"b{i}", source="kaggle") for i in range(6)]
    arena = [
        row(10, "PROMPT   0", "other", "answers", source="arena33k"),  # prompt in kaggle
        row(11, "new prompt", "a", "b", source="arena33k"),
        row(12, "new prompt", "b", "a", source="arena33k"),  # same pair, swapped
        row(13, "new prompt", "c", "d", source="arena33k"),  # same prompt, other answers
    ]
    # The lower-priority file comes first: priority, not input order, decides.
    specs = [_canonical(tmp_path, arena, "a.parquet"), _canonical(tmp_path, kaggle, "k.parquet")]
    out, m = _build(tmp_path, inputs=specs, folds=2)
    reasons = dict(zip(_dropped(out)["id"], _dropped(out)["reason"]))
    assert reasons == {"10": "duplicate_prompt", "12": "duplicate"}
    assert m["counts"]["by_source"] == {"arena33k": 2, "kaggle": 6}
    out2, _ = _build(tmp_path, "pair", inputs=specs, folds=2, dedup="pair")
    assert dict(zip(_dropped(out2)["id"], _dropped(out2)["reason"])) == {"12": "duplicate"}
    out3, _ = _build(tmp_path, "none", inputs=specs, folds=2, dedup="none")
    assert len(_dropped(out3)) == 0


def test_real_kaggle_rows_with_gemma(tmp_path, shared_dir):
    train = shared_dir / "data" / "kaggle_train_head100.csv"
    test = shared_dir / "data" / "kaggle_test_example.csv"
    tok = shared_dir / "tokenizers" / "gemma3" / "tokenizer.json"
    out, m = _build(
        tmp_path, inputs=[str(train), f"{test}:kaggle"], tokenizer=str(tok), folds=5, swap=True
    )
    assert m["counts"]["rows_in"] == 103
    assert m["inputs"][0]["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert m["inputs"][0]["bytes"] == train.stat().st_size
    data = load_dataset(out, swap=False)
    test_rows = [i for i, s in zip(data.ids, data.labelled) if not s]
    assert len(test_rows) == 3  # test rows are never dropped
    frame = pl.read_csv(train, infer_schema=False)
    enc = data.encoder()
    kept = frame.filter(pl.col("id").is_in(data.ids))
    order = {i: k for k, i in enumerate(data.ids)}
    ref = enc.encode_json(
        kept["prompt"].to_list(), kept["response_a"].to_list(), kept["response_b"].to_list()
    )
    for i, ids in zip(kept["id"].to_list(), ref.to_lists()):
        assert data.encoded[order[i]].tolist() == ids


def test_cli_build_and_inspect(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["build-dataset", "--out", str(out), "--demo-rows", "200", "--quiet"]) == 0
    assert (out / "manifest.json").is_file()
    assert main(["build-dataset", "--out", str(out), "--demo-rows", "200"]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert main(["build-dataset", "--out", str(out), "--demo-rows", "200", "--overwrite"]) == 0
    text = capsys.readouterr().out
    assert "input rows" in text and "tokens per row" in text and "fill at" in text
    assert main(["inspect", str(out), "--row", "0"]) == 0
    text = capsys.readouterr().out
    assert "----- turn 1 -----" in text and "<<" in text
    png = tmp_path / "lengths.png"
    assert main(["inspect", str(out), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_swapped_shows_the_header_of_the_row_it_prints(tmp_path, data_dir, capsys):
    """Issue 17: --swapped printed the swapped text under the original
    labels and model order."""
    out = tmp_path / "ds"
    config = BuildConfig(inputs=[str(data_dir / "kaggle_train_head100.csv")], swap=True)
    manifest = build_dataset(config, out)
    first = pl.read_parquet(out / manifest["shards"][0]["file"]).row(0, named=True)
    a, b = first["model_a"], first["model_b"]
    assert a != b
    labels = first["labels"]
    swapped = [labels[1], labels[0], *labels[2:]]
    assert main(["inspect", str(out), "--row", "0"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert f"labels {labels}  models {a} vs {b}" in header
    assert main(["inspect", str(out), "--row", "0", "--swapped"]) == 0
    text = capsys.readouterr().out
    assert f"labels {swapped}  models {b} vs {a}" in text.splitlines()[0]
    assert "(A/B swapped)" in text


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prompt\n1,x\n")
    code = main(["build-dataset", "--input", str(bad), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "bad.csv" in err and "response_a" in err
    code = main(["build-dataset", "--input", str(tmp_path / "nope.csv"), "--out", "x", "--quiet"])
    assert code == 1
    assert "nope.csv" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_progress_bar_on_a_terminal_log_lines_otherwise():
    import io

    from arena_fast.cli._progress import Progress, build_bar

    class Tty(io.StringIO):
        def isatty(self):
            return True

    plain, tty, quiet = io.StringIO(), Tty(), io.StringIO()
    for stream, q in ((plain, False), (tty, False), (quiet, True)):
        p = Progress(stream=stream, quiet=q, interval=0.0)
        show = build_bar(p)
        show({"stage": "read", "input": 0, "path": "x", "format": "kaggle"})
        show({"stage": "read", "input": 0, "rows": 500, "total": 1000})
        show({"stage": "read", "input": 0, "rows": 750, "total": 1000})
        p.done()
    # tqdm's figures: done/total, elapsed<ETA, rate; a line each, no \r, off a terminal
    assert plain.getvalue().count("\n") == 3 and "\r" not in plain.getvalue()
    assert re.search(r"arena-fast: 75% 750/1000 \[[\d:]+<[\d:?]+, .*rows/s\]", plain.getvalue())
    assert "\r" in tty.getvalue() and "500/1000" in tty.getvalue()  # a redrawn bar
    assert quiet.getvalue() == ""


def test_progress_goes_to_a_callback_and_the_cli_prints_it(tmp_path, capsys):
    records: list[dict] = []
    config = BuildConfig(demo_rows=300, chunk_rows=100)
    build_dataset(config, tmp_path / "a", progress=records.append)
    build_dataset(config, tmp_path / "b")
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    start = {"stage": "read", "input": 0}
    stages = [r for r in records if "rows" not in r]
    assert stages == [
        {**start, "path": "synth:300:0", "format": "synth"},
        {"stage": "dedup"},
        {"stage": "write"},
    ]
    rows = [r for r in records if "rows" in r]
    assert rows == [{**start, "rows": n, "total": 300.0} for n in (100, 200, 300)]
    assert main(["build-dataset", "--out", str(tmp_path / "c"), "--demo-rows", "300"]) == 0
    # Off a terminal the row counts come every 5 s: a quick build has none.
    assert capsys.readouterr().err.splitlines() == [
        "arena-fast: reading synth:300:0 (synth)",
        "arena-fast: de-duplicating and assigning folds",
        "arena-fast: writing shards",
    ]


def test_teacher_logits_and_models_travel_to_the_dataset(tmp_path):
    frame = pl.DataFrame(
        {
            "id": ["a", "b"],
            "prompt": [["p1"], ["p2"]],
            "response_a": [["x"], ["y"]],
            "response_b": [["z"], ["w"]],
            "labels": [[0.2, 0.5, 0.3], None],
            "teacher_logits": [[[1.0, -1.0, 0.5], [2.0, 0.0, -2.0]], None],
            "model_a": ["m1", "m2"],
            "model_b": ["m3", None],
        },
        schema_overrides={"teacher_logits": pl.List(pl.Array(pl.Float64, 3))},
    )
    path = tmp_path / "t.parquet"
    frame.write_parquet(path)
    out, _ = _build(tmp_path, inputs=[f"{path}:canonical"], folds=2, swap=True)
    data = load_dataset(out, swap=True)
    assert data.ids == ["a", "a", "b", "b"]
    assert data.teacher_logits[0] == [[1.0, -1.0, 0.5], [2.0, 0.0, -2.0]]
    assert data.teacher_logits[1] == [[-1.0, 1.0, 0.5], [0.0, 2.0, -2.0]]  # swapped
    assert data.teacher_logits[2] is None
    np.testing.assert_allclose(data.labels[0], [0.2, 0.5, 0.3], rtol=1e-6)
    np.testing.assert_allclose(data.labels[1], [0.5, 0.2, 0.3], rtol=1e-6)
    assert np.isnan(data.labels[2]).all() and data.label[2] == -1
    shard = pl.read_parquet(out / "data-00000.parquet")
    assert shard["model_a"].to_list() == ["m1", "m2"]


def test_load_checks_shards_and_filters_sources(tmp_path):
    out, m = _build(tmp_path, demo_rows=300, folds=2, shard_rows=100)
    assert len(m["shards"]) == 3
    assert len(load_dataset(out, verify=True)) == m["counts"]["rows"]
    assert len(load_dataset(out, sources=["nope"])) == 0
    assert len(load_dataset(out, sources=["synth"])) == m["counts"]["rows"]
    with pytest.raises(af.ConfigError, match="fold"):
        load_dataset(out, fold=2)
    with pytest.raises(af.ConfigError, match="without --swap"):
        load_dataset(out, swap=True)
    shard = out / m["shards"][1]["file"]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(af.InputError, match="size differs"):
        load_dataset(out)
    # Same size, other bytes: only verify=True sees it.
    shard.write_bytes(data[:-9] + bytes(9))
    with pytest.raises(af.InputError, match="sha256"):
        load_dataset(out, verify=True)


def test_data_commands_do_not_import_torch():
    """`pip install arena-fast` without the train extra: the CLI and the data
    layer must not need torch (a fresh interpreter, so nothing is cached)."""
    import subprocess
    import sys

    code = (
        "import sys, arena_fast as af; from arena_fast.cli import build_parser; "
        "build_parser(); af.BuildConfig(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_clean_chunk_decides_in_the_documented_order():
    """dataset.clean on one chunk: the first reason wins, policies apply to
    labelled rows and chat1m pairs only, relabels and flags as documented."""
    from types import SimpleNamespace

    from arena_fast.dataset.clean import clean_chunk, parse_chunk
    from arena_fast.sources import CANONICAL_SCHEMA

    cases = [  # source, A, B, labels -> reason, flags, labels after
        ("canonical", "", "", (-1.0, 1.0, 1.0), "bad_labels", 3, None),
        ("canonical", "", "", (1.0, 0.0, 0.0), "both_empty", 3, None),
        ("canonical", "", "answer", (1.0, 0.0, 0.0), "", 1 | 8, (0.0, 1.0, 0.0)),
        ("canonical", "Same", "same ", (1.0, 0.0, 0.0), "", 4 | 8, (0.0, 0.0, 1.0)),
        ("canonical", "", "", None, "", 3, None),  # unlabelled: data to predict
        ("canonical", "x", "y", (2.0, 1.0, 1.0), "", 16, (0.5, 0.25, 0.25)),
        ("chat1m", "", "", None, "both_empty", 3, None),  # a pair: policed
    ]
    frame = pl.DataFrame(
        {
            "id": [str(i) for i in range(len(cases))],
            "source": [c[0] for c in cases],
            "model_a": [None] * len(cases),
            "model_b": [None] * len(cases),
            "prompt": [["p"] for _ in cases],
            "response_a": [[c[1]] for c in cases],
            "response_b": [[c[2]] for c in cases],
            "labels": [None if c[3] is None else list(c[3]) for c in cases],
            "teacher_logits": [None] * len(cases),
            "row": list(range(len(cases))),
            "input_rows": [1] * len(cases),
        },
        schema=CANONICAL_SCHEMA,
    )
    rows, features = parse_chunk(SimpleNamespace(rows=frame, repairs=None), "")
    config = BuildConfig(one_empty="relabel", identical="tie")
    cleaned = clean_chunk(frame, features, rows.errors(), config)
    assert cleaned.reason.tolist() == [c[4] for c in cases]
    assert cleaned.detail[0] == "labels [-1.0, 1.0, 1.0]"
    assert cleaned.flags.tolist() == [c[5] for c in cases]
    for i, case in enumerate(cases):
        if case[6] is not None:
            assert cleaned.labels[i].tolist() == list(case[6]), i
    assert cleaned.kept().tolist() == [2, 3, 4, 5]


def test_write_shards_cuts_the_kept_rows_of_every_part_in_order(tmp_path):
    """dataset.shards: parts in memory or spilled, less the rows not kept,
    with their folds, in shards of shard_rows rows."""
    import pyarrow as pa

    from arena_fast.dataset.shards import write_shards

    def part(start: int, stop: int) -> pa.Table:
        seq = pa.array(range(start, stop), pa.int64())
        ids = [str(i) for i in range(start, stop)]
        return pa.table({"seq": seq, "id": ids, "source": ["s"] * len(ids), "length": seq})

    spilled = str(tmp_path / "part.arrow")
    middle = part(3, 8)
    with pa.OSFile(spilled, "wb") as sink, pa.ipc.new_file(sink, middle.schema) as w:
        w.write_table(middle)
    kept = pl.DataFrame(
        {"seq": [0, 1, 2, 4, 5, 6, 7, 9, 10, 11], "fold": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]},
        schema={"seq": pl.Int64, "fold": pl.Int8},
    )
    out = tmp_path / "out"
    out.mkdir()
    shards = write_shards(
        [part(0, 3), spilled, part(8, 12)], 12, kept, out, BuildConfig(shard_rows=4)
    )
    assert [(s["file"], s["rows"]) for s in shards] == [
        ("data-00000.parquet", 4),
        ("data-00001.parquet", 4),
        ("data-00002.parquet", 2),
    ]
    back = pl.concat([pl.read_parquet(out / s["file"]) for s in shards])
    assert back.columns == ["id", "source", "fold", "length"]
    assert back["id"].to_list() == [str(i) for i in kept["seq"]]
    assert back["fold"].to_list() == kept["fold"].to_list()


def test_spilled_parts_give_the_same_bytes_and_leave_nothing(tmp_path, monkeypatch):
    """Parts spilled to Arrow IPC files past spill_bytes are the same rows;
    the spill directory goes with the build."""
    kw = dict(demo_rows=400, chunk_rows=100, shard_rows=150, swap=True)
    held, _ = _build(tmp_path, "held", **kw)
    spills = []
    spill = Builder._spill
    monkeypatch.setattr(Builder, "_spill", lambda self: spills.append(spill(self)))
    spilled, _ = _build(tmp_path, "spilled", spill_bytes=1, **kw)
    assert len(spills) >= 4  # every part
    assert sorted(os.listdir(held)) == sorted(os.listdir(spilled))  # no spill directory
    for name in os.listdir(held):
        if name.endswith(".parquet"):
            assert (held / name).read_bytes() == (spilled / name).read_bytes(), name
