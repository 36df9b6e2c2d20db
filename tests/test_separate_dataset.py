"""build-dataset with the separate layout (`--layout separate`, and
`--template chat`, which implies it): each row stored as its two sides,
prompt + A (`input_ids`) and prompt + B (`input_ids_b`), loaded back as rows
2i and 2i + 1 equal to `Encoder(layout="separate")`'s, with the pair's
labels on both; the manifest, the errors, determinism, old datasets,
`inspect` and the dataset browser of `serve` (docs/dataset.md, "Layouts")."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import arena_fast as af
from arena_fast.cli import main
from arena_fast.dataset import BuildConfig, build_dataset, load_dataset
from arena_fast.errors import ConfigError, InputError
from arena_fast.rows import rows_from_arrow
from arena_fast.sources import read as read_source

SIDE_COLUMNS = ("input_ids_b", "length_b", "turns_kept_b", "truncated_b", "full_length_b")


def _build(tmp_path: Path, name: str = "ds", **kw) -> tuple[Path, dict]:
    out = tmp_path / name
    return out, build_dataset(BuildConfig(**kw), out)


def _encoded_fields(enc) -> dict:
    return {
        "ids": enc.to_lists(),
        "truncated": enc.truncated.tolist(),
        "turns_kept": enc.turns_kept.tolist(),
        "full_length": enc.full_length.tolist(),
        "is_swapped": enc.is_swapped.tolist(),
        "source_row": enc.source_row.tolist(),
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """The demo's synth rows in the separate layout, several chunks."""
    root = tmp_path_factory.mktemp("separate")
    return _build(root, demo_rows=300, folds=2, max_length=128, layout="separate", chunk_rows=64)


def test_rows_2i_and_2i_plus_1_are_the_encoders_sides(demo):
    from arena_fast.synth import generate_rows

    out, manifest = demo
    data = load_dataset(out)
    n = manifest["counts"]["rows"]
    assert data.layout == "separate" and data.swapped and len(data) == 2 * n > 400
    rows = {str(r["id"]): r for r in generate_rows(300, seed=0)}
    picked = [rows[i] for i in data.ids[::2]]
    encoder = af.Encoder(af.Tokenizer.demo(), layout="separate", max_length=128)
    ref = encoder.encode_json(
        [r["prompt"] for r in picked],
        [r["response_a"] for r in picked],
        [r["response_b"] for r in picked],
    )
    assert _encoded_fields(data.encoded) == _encoded_fields(ref)
    assert data.encoded.is_swapped[1::2].all() and not data.encoded.is_swapped[0::2].any()
    # The dataset's own encoder is that encoder.
    assert data.encoder().config() == encoder.config()
    # The pair's labels on both rows, as stored: A and B never exchanged.
    labels = np.array([[r["winner_model_a"], r["winner_model_b"], r["winner_tie"]] for r in picked])
    np.testing.assert_array_equal(data.labels[0::2], labels.astype(np.float32))
    np.testing.assert_array_equal(data.labels[1::2], data.labels[0::2])
    assert (data.label[0::2] == data.label[1::2]).all()
    assert set(data.label.tolist()) == {0, 1, 2}  # ties kept, for the tie parameter
    assert (data.flags[0::2] == data.flags[1::2]).all()
    assert data.ids[0::2] == data.ids[1::2] and (data.folds[0::2] == data.folds[1::2]).all()
    # Packs keep a row's two sides together.
    plan = af.plan_packs(data.encoded, 4096, pair_swaps=True)
    assert sorted(np.concatenate(list(plan)).tolist()) == list(range(len(data)))
    hf = data.to_hf() if _has("datasets") else None
    if hf is not None:
        assert hf["is_swapped"] == data.encoded.is_swapped.tolist()


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def test_the_manifest_and_shards_of_a_separate_dataset(demo):
    out, manifest = demo
    assert manifest["encoder"]["layout"] == "separate"
    assert manifest["config"]["layout"] == "separate" and manifest["swap"] is False
    assert "input_ids_b" in manifest["ids"]
    shards = pl.read_parquet(out / "data-*.parquet")
    assert set(SIDE_COLUMNS) <= set(shards.columns)
    assert not any(c.endswith("_swapped") for c in shards.columns)
    # Stats count both sides.
    data = load_dataset(out)
    stats = manifest["stats"]
    assert stats["tokens"] == int(data.lengths.sum())
    assert stats["tokens"] == int(shards["length"].sum() + shards["length_b"].sum())
    assert stats["length"]["max"] == int(data.lengths.max())
    assert stats["length"]["p50"] == int(np.percentile(data.lengths, 50))
    plan = af.plan_packs(data.encoded, stats["pack_tokens"], pair_swaps=True, shuffle=False)
    assert stats["fill"] == round(plan.fill, 4)
    # A pair is one row: the counts are rows, not sequences.
    assert manifest["counts"]["rows"] == len(shards) == len(data) // 2
    assert sum(manifest["counts"]["labels"].values()) == len(shards)


def test_folds_and_sources_keep_pairs(demo):
    out, manifest = demo
    for split in ("train", "valid"):
        part = load_dataset(out, fold=0, split=split)
        assert len(part) % 2 == 0 and part.ids[0::2] == part.ids[1::2]
        assert part.encoded.is_swapped[1::2].all()
        assert (part.folds == 0).all() == (split == "valid")
    assert load_dataset(out, swap=True).encoded.to_lists() == load_dataset(out).encoded.to_lists()
    with pytest.raises(ConfigError, match="separate layout.*rows 2i and 2i \\+ 1"):
        load_dataset(out, swap=False)


def test_layout_errors_are_clear(tmp_path, capsys):
    with pytest.raises(ConfigError, match="always stores both sides"):
        BuildConfig(layout="separate", swap=True).validate()
    with pytest.raises(ConfigError, match="layout must be one of"):
        BuildConfig(layout="sideways").validate()
    with pytest.raises(ConfigError, match="implies layout 'separate'"):
        BuildConfig(template="chat", layout="cross").validate()
    config = BuildConfig(template="chat")
    config.validate()
    assert config.layout == "separate"
    plain = BuildConfig()
    plain.validate()
    assert plain.layout == "cross"
    out = tmp_path / "never"
    argv = ["build-dataset", "--out", str(out), "--demo-rows", "50", "--quiet"]
    assert main([*argv, "--layout", "separate", "--swap"]) == 1
    err = capsys.readouterr().err
    assert "always stores both sides" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as usage:
        main([*argv, "--layout", "sideways"])
    assert usage.value.code == 2 and "invalid choice: 'sideways'" in capsys.readouterr().err
    assert not out.exists()


def test_same_bytes_whatever_the_threads(tmp_path):
    def hashes(out: Path) -> dict:
        return {
            f: hashlib.sha256((out / f).read_bytes()).hexdigest()
            for f in sorted(os.listdir(out))
            if f != "build.json"
        }

    kw = dict(demo_rows=400, layout="separate", chunk_rows=100, max_length=96)
    one, _ = _build(tmp_path, "one", **kw)
    two, _ = _build(tmp_path, "two", threads=2, **kw)
    assert hashes(one) == hashes(two)
    assert "manifest.json" in hashes(one) and "data-00000.parquet" in hashes(one)


def test_old_and_cross_datasets_load_as_cross(tmp_path):
    out, manifest = _build(tmp_path, demo_rows=120, folds=2, swap=True, max_length=96)
    assert load_dataset(out).layout == "cross"
    # A manifest from before layouts: no layout anywhere.
    path = out / "manifest.json"
    old = json.loads(path.read_text())
    old["encoder"].pop("layout", None)
    old["encoder"].pop("chat_template", None)
    old["config"].pop("layout", None)
    path.write_text(json.dumps(old, indent=2) + "\n")
    data = load_dataset(out)
    assert data.layout == "cross" and data.swapped
    assert data.encoded.to_lists()[0::2] == load_dataset(out, swap=False).encoded.to_lists()
    # A layout the manifest cannot hold is refused, naming the field.
    for layout, swap, says in (("sideways", True, "encoder.layout"), ("separate", True, "swap")):
        bad = dict(old, swap=swap, encoder=dict(old["encoder"], layout=layout))
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError, match=says):
            load_dataset(out)


def test_inspect_shows_both_sides(demo, tmp_path, capsys):
    out, _ = demo
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layout separate" in text and "tokens per side" in text
    assert main(["inspect", str(out), "--row", "0"]) == 0
    text = capsys.readouterr().out
    a_at, b_at = text.index("A side"), text.index("B side")
    assert 0 < a_at < b_at
    assert "----- turn 1 -----" in text[a_at:b_at] and "----- turn 1 -----" in text[b_at:]
    assert main(["inspect", str(out), "--row", "0", "--swapped"]) == 1
    assert "no A/B swap" in capsys.readouterr().err
    png = tmp_path / "lengths.png"  # both sides' lengths
    assert main(["inspect", str(out), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_builds_a_separate_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["build-dataset", "--out", str(out), "--demo-rows", "80", "--layout", "separate"]
    assert main([*argv, "--max-length", "96"]) == 0
    text = capsys.readouterr().out
    assert "layout" in text and "separate" in text and "tokens per side" in text
    assert load_dataset(out).layout == "separate"


@pytest.mark.parametrize("template", ["rounds", "pab", "tags"])
def test_split_row_takes_a_side_apart(template):
    """A side of the separate layout is two fields a turn (the prompt, then
    the answer, placed with response A's strings): split_row(fields=2)
    gives back the texts of each side of an uncut row."""
    from arena_fast.row_view import split_row

    tok = af.Tokenizer.demo()
    enc = af.Encoder(tok, template=template, layout="separate", max_length=4096)
    prompt, a, b = ["first question", "second question"], ["answer one", "two"], ["uno", "dos"]
    pair = enc.encode([prompt], [a], [b])
    for side, answer in ((0, a), (1, b)):
        ids = pair[side].tolist()
        spans = split_row(ids, tok, enc.template, enc.bos_token_id, enc.eos_token_id, fields=2)
        assert [s.start for s in spans[1:]] == [s.stop for s in spans[:-1]]
        assert spans[0].start == 0 and spans[-1].stop == len(ids)
        texts = {
            (s.turn, s.field): tok.decode(ids[s.start : s.stop]) for s in spans if s.kind == "text"
        }
        assert texts == {
            (t + 1, f): text for t in range(2) for f, text in enumerate((prompt[t], answer[t]))
        }


def test_like_a_separate_run_takes_its_layout(tmp_path, monkeypatch, capsys):
    """`--like RUN` of a reward-model run (separate layout) builds in that
    layout; a --layout that would change it is refused."""
    from arena_fast.cli import build_dataset as cli

    encoder = af.Encoder(af.Tokenizer.demo(), layout="separate", max_length=96)
    settings = {
        "tokenizer": af.Tokenizer.demo().source,
        "encoder": encoder.config(),
        "swap": False,
    }
    monkeypatch.setattr(cli, "build_settings", lambda run: settings)
    argv = ["build-dataset", "--demo-rows", "60", "--like", "run", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "like")]) == 0
    data = load_dataset(tmp_path / "like")
    assert data.layout == "separate" and data.encoder().config() == encoder.config()
    assert main([*argv, "--out", str(tmp_path / "no"), "--layout", "cross"]) == 1
    assert "separate layout; --layout cross cannot" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "no"), "--swap"]) == 1
    assert "always stores both sides" in capsys.readouterr().err


# -- the readers' preference sources, on real rows -------------------------------------


def _kept_rows_equal_the_encoder(
    out: Path, source: str, fmt=None, seed: int = 0, encoder=None
) -> None:
    """Every kept row's two sides equal the separate encoder's encoding
    (`encoder`, else the dataset's own) of the reader's row with that id."""
    data = load_dataset(out)
    encoder = encoder or data.encoder()
    assert encoder.config()["layout"] == "separate"
    where = {}
    for i, ident in enumerate(data.ids[0::2]):
        where.setdefault(ident, i)
    got = data.encoded.to_lists()
    checked = 0
    for chunk in read_source(source, fmt, seed=seed):
        frame = chunk.rows
        rows = rows_from_arrow(frame["prompt"], frame["response_a"], frame["response_b"])
        idx = [k for k, ident in enumerate(frame["id"].to_list()) if ident in where]
        if not idx:
            continue
        ref = encoder.encode_rows(rows, np.array(idx, dtype=np.int64)).to_lists()
        for j, k in enumerate(idx):
            i = where[frame["id"][k]]
            assert got[2 * i : 2 * i + 2] == ref[2 * j : 2 * j + 2], frame["id"][k]
            checked += 1
    assert checked == len(where) > 0


def _pairs_hold_their_labels(out: Path) -> np.ndarray:
    data = load_dataset(out)
    assert data.layout == "separate" and len(data) % 2 == 0
    np.testing.assert_array_equal(data.labels[0::2], data.labels[1::2])
    return data.label[0::2]


def _head(path: Path, lines: int, to: Path) -> Path:
    """The first `lines` JSON lines of `path` (gzipped or not) in `to`."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        head = [next(f) for _ in range(lines)]
    to.write_text("".join(head), encoding="utf-8")
    return to


@pytest.mark.parametrize(
    "name, rows",
    [
        ("hh_rlhf_harmless_base_test.jsonl.gz", 150),
        ("prompt_chosen_rejected_1000.jsonl", 150),
        ("ultrafeedback_strings_metadata_200.jsonl", 150),
    ],
)
def test_preference_sources_build_separate_datasets(tmp_path, data_dir, name, rows):
    source = _head(data_dir / name, rows, tmp_path / name.removesuffix(".gz"))
    out, manifest = _build(
        tmp_path, inputs=[str(source)], layout="separate", max_length=256, folds=2
    )
    assert manifest["inputs"][0]["rows_kept"] > 0.8 * rows
    label = _pairs_hold_their_labels(out)
    # The chosen answer won: every labelled pair is A or B (no tie to say).
    assert set(label.tolist()) <= {0, 1, 2} and (label >= 0).all()
    _kept_rows_equal_the_encoder(out, str(source))


def test_arena_rows_keep_their_ties(tmp_path, data_dir):
    # Multi-turn rows, null turns (repaired), ties.
    source = data_dir / "kaggle_train_sample1000.csv"
    out, manifest = _build(tmp_path, inputs=[str(source)], layout="separate", max_length=256)
    assert manifest["counts"]["repairs"]["null"] > 0
    label = _pairs_hold_their_labels(out)
    frame = pl.read_csv(source, infer_schema=False)
    winner = {
        r["id"]: [r["winner_model_a"], r["winner_model_b"], r["winner_tie"]].index("1")
        for r in frame.iter_rows(named=True)
    }
    data = load_dataset(out)
    assert [winner[i] for i in data.ids[0::2]] == label.tolist()
    assert manifest["counts"]["labels"]["tie"] > 0 and (label == 2).sum() > 0
    _kept_rows_equal_the_encoder(out, str(source))


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_pku_helpsteer_and_trl_messages_build_separate_datasets(tmp_path):
    pku = [
        {
            "prompt": f"Question {i}?",
            "response_0": f"answer zero {i}",
            "response_1": f"answer one {i}",
            "is_response_0_safe": True,
            "is_response_1_safe": bool(i % 2),
            "better_response_id": i % 2,
            "safer_response_id": 0,
        }
        for i in range(12)
    ]
    helpsteer = [
        {
            "domain": "general",
            "language": "english",
            "context": [{"role": "user", "content": f"Question {i}?"}],
            "response1": f"first answer {i}",
            "response2": f"second answer {i}",
            "overall_preference": (i % 7) - 3,
            "individual_preference": [],
        }
        for i in range(14)
    ]
    trl = [
        {
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "chosen": [{"role": "assistant", "content": f"good {i}"}],
            "rejected": [{"role": "assistant", "content": f"bad {i}"}],
        }
        for i in range(10)
    ]
    for name, records, fmt in (
        ("pku.jsonl", pku, "pku_saferlhf"),
        ("helpsteer.jsonl", helpsteer, "helpsteer"),
        ("trl.jsonl", trl, "ultrafeedback"),
    ):
        source = _write_jsonl(tmp_path / name, records)
        out, manifest = _build(
            tmp_path, name + ".ds", inputs=[f"{source}:{fmt}"], layout="separate", folds=2
        )
        assert manifest["inputs"][0]["rows_kept"] == len(records), name
        label = _pairs_hold_their_labels(out)
        if fmt == "helpsteer":  # a preference of 0 is a tie, kept
            assert (label == 2).sum() == 2
        _kept_rows_equal_the_encoder(out, str(source), fmt)


@pytest.mark.slow
def test_real_rows_in_the_llama3_chat_template(tmp_path, data_dir, shared_dir):
    tokenizer = shared_dir / "tokenizers" / "llama3" / "tokenizer.json"
    source = _head(data_dir / "prompt_chosen_rejected_1000.jsonl", 60, tmp_path / "p.jsonl")
    out, manifest = _build(
        tmp_path,
        inputs=[str(source)],
        tokenizer=str(tokenizer),
        template="chat",
        max_length=384,
        folds=2,
    )
    assert manifest["config"]["layout"] == "separate"
    assert manifest["encoder"]["layout"] == "separate"
    chat = af.ChatTemplate.from_file(tokenizer.parent)
    assert manifest["encoder"]["chat_template"] == chat.source
    _pairs_hold_their_labels(out)
    encoder = af.Encoder(af.Tokenizer.from_file(tokenizer), template="chat", max_length=384)
    _kept_rows_equal_the_encoder(out, str(source), encoder=encoder)
    # An uncut side is the chat template's own ids for (prompt, that answer).
    data = load_dataset(out)
    rows = {r["id"]: r for r in read_source(str(source)).__next__().rows.iter_rows(named=True)}
    tok = data.tokenizer()
    checked = 0
    for i in range(len(data)):
        if data.encoded.truncated[i]:
            continue
        row = rows[data.ids[i]]
        answer = row["response_b" if i % 2 else "response_a"]
        messages = [
            m
            for p, a in zip(row["prompt"], answer)
            for m in ({"role": "user", "content": p}, {"role": "assistant", "content": a})
        ]
        assert data.encoded[i].tolist() == chat.encode(tok, messages)
        checked += 1
    assert checked > 50
    # inspect and a rebuild of the same bytes.
    again, _ = _build(
        tmp_path,
        "again",
        inputs=[str(source)],
        tokenizer=str(tokenizer),
        template="chat",
        max_length=384,
        folds=2,
        threads=2,
    )
    for f in ("manifest.json", "data-00000.parquet"):
        assert (out / f).read_bytes() == (again / f).read_bytes()
    assert main(["inspect", str(out), "--row", "1"]) == 0
    # The browser splits a side into the template's text and the messages.
    from arena_fast.serve.tables import DatasetTable

    sides = DatasetTable(out).row(1)["orders"]
    assert [side["name"] for side in sides] == ["a", "b"]
    for side, answer in zip(sides, ("response A", "response B")):
        names = [block["name"] for block in side["blocks"]]
        assert names[0].startswith("template start") and names[-1].startswith("template end")
        assert names.count("prompt") >= 1 and answer in names
        specials = {t for b in side["blocks"] for p in b["parts"] for t, s in p["pieces"] if s}
        assert "<|eot_id|>" in specials


@pytest.mark.xfail(
    strict=True,
    raises=ConfigError,
    reason="Encoder.config() records the chat template's Jinja source but not the special "
    "tokens it renders with (bos_token, ...); from_config on a dataset's tokenizer.json, "
    "with no tokenizer_config.json beside it, cannot render llama3's template",
)
def test_a_chat_dataset_rebuilds_its_encoder_from_the_manifest(tmp_path, data_dir, shared_dir):
    tokenizer = shared_dir / "tokenizers" / "llama3" / "tokenizer.json"
    source = _head(data_dir / "prompt_chosen_rejected_1000.jsonl", 8, tmp_path / "p.jsonl")
    out, _ = _build(tmp_path, inputs=[str(source)], tokenizer=str(tokenizer), template="chat")
    encoder = af.Encoder(af.Tokenizer.from_file(tokenizer), template="chat")
    assert load_dataset(out).encoder().config() == encoder.config()


# -- the dataset browser ------------------------------------------------------------------


def test_serve_shows_a_separate_dataset(demo, tmp_path):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from arena_fast.serve import Catalog, create_app

    out, manifest = demo
    catalog = Catalog.from_paths([], [out])
    name = next(iter(catalog.datasets))
    with TestClient(create_app(catalog)) as client:
        page = client.get(f"/datasets/{name}")
        assert page.status_code == 200, page.text
        assert "separate layout" in page.text and "A + B sides" in page.text
        row = client.get(f"/datasets/{name}/rows/0")
        assert row.status_code == 200, row.text
        assert 'id="a"' in row.text and 'id="b"' in row.text
        assert "A side" in row.text and "B side" in row.text
        assert "Swapped order" not in row.text
        # The B side shows response B's text, the A side response A's.
        data = load_dataset(out)
        tok = data.tokenizer()
        a_text = tok.decode(data.encoded[0].tolist()).split()[-3]
        assert a_text in row.text
        search = client.get(f"/datasets/{name}", params={"text": "the"})
        assert search.status_code == 200


def test_serve_says_why_a_separate_shard_without_its_b_side_cannot_be_shown(demo, tmp_path):
    pytest.importorskip("starlette")
    import shutil

    import pyarrow.parquet as pq
    from starlette.testclient import TestClient

    from arena_fast.serve import Catalog, create_app

    out = tmp_path / "broken"
    shutil.copytree(demo[0], out)
    manifest = json.loads((out / "manifest.json").read_text())
    for shard in manifest["shards"]:
        path = out / shard["file"]
        pq.write_table(pq.read_table(path).drop_columns(["input_ids_b", "length_b"]), path)
        shard["bytes"] = path.stat().st_size
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="no column 'input_ids_b'"):
        load_dataset(out)
    with TestClient(create_app(Catalog.from_paths([], [out]))) as client:
        for url in ("/datasets/broken", "/datasets/broken/rows/0"):
            r = client.get(url)
            assert r.status_code == 500 and "no column 'length_b'" in r.text
