"""Cross-source de-duplication end to end (af.build_dataset, the shared
gemma3 tokenizer): the same prompt from a Kaggle CSV, a file in the
arena-human-preference-140k layout (typed content parts) and a `pairs`
file is one prompt, for `dedup="prompt"` and for the folds."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import arena_fast as af
from conftest import tokenizer_path

PROMPTS = ["Name a colour.", "What is 2 + 2?", "Say hello in French."]


def kaggle_csv(path):
    rows = [
        {
            "id": f"k{i}",
            "model_a": "m1",
            "model_b": "m2",
            "prompt": json.dumps([p]),
            "response_a": json.dumps([f"kaggle answer {i}"]),
            "response_b": json.dumps([f"other kaggle answer {i}"]),
            "winner_model_a": 1,
            "winner_model_b": 0,
            "winner_tie": 0,
        }
        for i, p in enumerate(PROMPTS[:2])
    ]
    pl.DataFrame(rows).write_csv(path)
    return f"{path}:kaggle"


def parts(text):
    return [{"type": "text", "text": text, "image": None, "mimeType": None}]


def arena140k_parquet(path):
    def conv(prompt, answer):
        return [
            {"role": "user", "content": parts(prompt)},
            {"role": "assistant", "content": parts(answer)},
        ]

    records = [
        {
            "id": f"a{i}",
            "model_a": "m3",
            "model_b": "m4",
            "winner": winner,
            "conversation_a": conv(p, f"140k answer {i}"),
            "conversation_b": conv(p, f"other 140k answer {i}"),
            "language": "en",
        }
        # PROMPTS[0] and [1] are the Kaggle file's, [2] only here.
        for i, (p, winner) in enumerate(zip(PROMPTS, ["model_b", "both_bad", "both_bad"]))
    ]
    pq.write_table(pa.Table.from_pylist(records), path)
    return str(path)  # detected: arena140k


def pairs_jsonl(path):
    path.write_text(json.dumps({"q": PROMPTS[2], "x": "pairs answer", "y": "b", "w": "a"}) + "\n")
    return f"{path}:pairs"


@pytest.fixture
def inputs(tmp_path):
    return [
        kaggle_csv(tmp_path / "train.csv"),
        arena140k_parquet(tmp_path / "arena.parquet"),
        pairs_jsonl(tmp_path / "pairs.jsonl"),
    ]


def build(tmp_path, shared_dir, inputs, name, **kw):
    config = af.BuildConfig(
        inputs=inputs,
        tokenizer=str(tokenizer_path(shared_dir, "gemma3")),
        mapping={"prompt": "q", "a": "x", "b": "y", "winner": "w"},
        folds=3,
        **{"label_space": "abt", **kw},  # abt: the 140k file's both_bad merges into tie
    )
    out = tmp_path / name
    manifest = af.build_dataset(config, out)
    return out, manifest


@pytest.mark.slow
def test_same_prompt_across_sources_is_deduplicated(tmp_path, shared_dir, inputs):
    out, manifest = build(tmp_path, shared_dir, inputs, "prompt", dedup="prompt")
    ds = af.load_dataset(out)
    # Kaggle ranks first: the 140k rows of its prompts go; the 140k file's
    # own prompt stays, and the pairs row of that prompt goes.
    assert sorted(ds.ids) == ["a2", "k0", "k1"]
    dropped = pl.read_parquet(out / "dropped.parquet")
    assert sorted(dropped.select("id", "reason").rows()) == [
        ("0", "duplicate_prompt"),
        ("a0", "duplicate_prompt"),
        ("a1", "duplicate_prompt"),
    ]
    assert manifest["label_space"] == "abt"
    a2 = ds.ids.index("a2")
    assert ds.labels[a2].tolist() == [0.0, 0.0, 1.0]  # both_bad -> tie in abt


@pytest.mark.slow
def test_same_prompt_across_sources_shares_a_fold(tmp_path, shared_dir, inputs):
    out, _ = build(tmp_path, shared_dir, inputs, "pair", dedup="pair")
    ds = af.load_dataset(out)
    assert sorted(ds.ids) == ["0", "a0", "a1", "a2", "k0", "k1"]
    fold = dict(zip(ds.ids, ds.folds.tolist()))
    assert fold["k0"] == fold["a0"] and fold["k1"] == fold["a1"] and fold["a2"] == fold["0"]


def test_140k_alone_keeps_abtx(tmp_path, shared_dir, inputs):
    out, manifest = build(tmp_path, shared_dir, inputs[1:2], "abtx", label_space=None)
    ds = af.load_dataset(out)
    assert manifest["label_space"] == "abtx"
    assert ds.labels.tolist() == [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    assert ds.ids == ["a0", "a1", "a2"]
    assert ds.column("language") == ["en"] * 3  # row metadata reaches the shards


@pytest.mark.slow
def test_140k_mapped_to_ab_drops_both_bad(tmp_path, shared_dir, inputs):
    # Two rows of three lost to the mapping: accepted only when asked.
    with pytest.raises(af.InputError, match="label_space 2"):
        build(tmp_path, shared_dir, inputs[1:2], "refused", label_space="ab")
    kw = {"label_space": "ab", "max_drop_share": 1.0}
    out, manifest = build(tmp_path, shared_dir, inputs[1:2], "ab", **kw)
    assert af.load_dataset(out).ids == ["a0"]
    assert manifest["counts"]["dropped"] == {"label_space": 2}
