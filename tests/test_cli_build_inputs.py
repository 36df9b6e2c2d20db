"""`arena-fast build-dataset`'s reading flags (issue 17): the formats in the
help, `--format` over detection, `--map` for PATH:pairs, the drop-share and
empty-build switches, and each input's format (and why) in the summary."""

from __future__ import annotations

import json

import polars as pl
import pytest

from arena_fast.cli import main
from arena_fast.dataset import load_dataset
from arena_fast.sources import FORMATS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_help_lists_every_format_with_its_columns(capsys):
    with pytest.raises(SystemExit):
        main(["build-dataset", "--help"])
    text = capsys.readouterr().out
    listed = text.split("formats (detected in this order", 1)[1]
    for name in FORMATS:
        assert f"\n  {name} " in listed, name
    assert "PATH:pairs with --map" in listed


def _wsdm_rows(n: int) -> pl.DataFrame:
    # The first texts look like JSON lists, so detection takes the file for kaggle.
    return pl.DataFrame(
        {
            "id": [f"w{i}" for i in range(n)],
            "prompt": [f'["question {i}", "and more"]' for i in range(n)],
            "response_a": [f"answer a {i}" * (1 + i % 3) for i in range(n)],
            "response_b": [f"answer b {i}" for i in range(n)],
            "winner": ["model_a" if i % 2 else "model_b" for i in range(n)],
            "language": ["en" if i % 3 else "de" for i in range(n)],
        }
    )


def test_format_flag_overrides_detection_and_the_summary_says_how(tmp_path, capsys):
    path = tmp_path / "wsdm.parquet"
    _wsdm_rows(40).write_parquet(path)
    out = tmp_path / "ds"
    args = ["build-dataset", "--input", str(path), "--out", str(out), "--folds", "2"]
    # Detected as kaggle (JSON-list text): the texts then parse as turn lists,
    # so the A/B responses (plain text) are rows Kaggle cannot read.
    assert main([*args, "--format", "wsdm"]) == 0
    printed = capsys.readouterr().out
    assert f"input 0: {path}: format wsdm (given)" in printed
    manifest = _manifest(out)
    assert manifest["inputs"][0]["format"] == "wsdm"
    assert manifest["label_space"] == "ab"
    ds = load_dataset(out)
    assert len(ds) == 40 and set(ds.column("language")) == {"en", "de"}
    assert main([*args, "--format", "nope", "--overwrite"]) == 1
    assert "--format 'nope': formats are arena140k" in capsys.readouterr().err


def test_summary_names_a_detected_format_and_why(tmp_path, capsys, data_dir):
    out = tmp_path / "hh"
    path = data_dir / "hh_rlhf_harmless_base_test.jsonl.gz"
    assert (
        main(["build-dataset", "--input", str(path), "--out", str(out), "--max-length", "128"]) == 0
    )
    printed = capsys.readouterr().out
    assert f"input 0: {path}: format hh_rlhf (detected: " in printed
    assert "Human:" in printed.split("format hh_rlhf", 1)[1].splitlines()[0]
    assert _manifest(out)["counts"]["rows"] == 2312


def test_map_reads_a_pairs_file_and_a_bad_map_is_refused(tmp_path, capsys):
    path = tmp_path / "mine.jsonl"
    rows = [
        {
            "q": f"question {i}",
            "x": f"left {i}",
            "y": f"right {i} " * (i % 4),
            "who": "a" if i % 2 else "b",
        }
        for i in range(30)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "pairs"
    base = ["build-dataset", "--input", f"{path}:pairs", "--out", str(out), "--folds", "2"]
    assert main([*base, "--map", "prompt=q,a=x,b=y,winner=who"]) == 0
    assert len(load_dataset(out)) == 30
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        main([*base, "--overwrite", "--map", "prompt=q,a=x,bee=y,winner=who"])
    assert exit.value.code == 2
    assert "argument --map: " in (err := capsys.readouterr().err) and "bee" in err


def test_a_mostly_dropped_input_fails_unless_the_share_allows_it(tmp_path, capsys):
    # 30 rows, 20 of them with a winner the pairs mapping cannot read.
    path = tmp_path / "bad.jsonl"
    rows = [
        {"q": f"question {i}", "x": f"left {i}", "y": f"right {i}", "who": "a" if i < 10 else "???"}
        for i in range(30)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ds"
    base = [
        "build-dataset",
        "--input",
        f"{path}:pairs",
        "--out",
        str(out),
        "--folds",
        "2",
        "--map",
        "prompt=q,a=x,b=y,winner=who",
    ]
    assert main(base) != 0
    err = capsys.readouterr().err
    assert "bad_winner" in err and "--max-drop-share" in err
    assert not out.exists()
    assert main([*base, "--max-drop-share", "0.9"]) == 0
    assert _manifest(out)["counts"]["rows"] == 10
    assert main([*base, "--overwrite", "--max-drop-share", "1.5"]) != 0
    assert "max_drop_share" in capsys.readouterr().err.replace("-", "_")


def test_the_demo_input_is_not_called_detected(tmp_path, capsys):
    assert main(["build-dataset", "--out", str(tmp_path / "demo"), "--demo-rows", "30"]) == 0
    assert "  input 0: synth:30:0: format synth (demo)\n" in capsys.readouterr().out
