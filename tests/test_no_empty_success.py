"""Never an empty success (docs/dataset.md, "When a build fails"): a build
that keeps no row, an input that keeps none of its rows, or an input of
which more than `max_drop_share` is dropped fails with the top reasons, an
example row each and the flag that accepts it; what the manifest records of
each input; the `duplicate_id` rule for unlabelled rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import arena_fast as af
from arena_fast.cli import main
from arena_fast.dataset import BuildConfig, build_dataset


def _kaggle(data_dir: Path) -> pl.DataFrame:
    return pl.read_csv(data_dir / "kaggle_train_sample1000.csv", infer_schema_length=0)


def _csv(frame: pl.DataFrame, path: Path) -> str:
    frame.write_csv(path)
    return str(path)


def _canonical(tmp_path: Path, rows: list[tuple], name: str = "rows.jsonl") -> str:
    """Canonical JSON lines: (id, prompt, a, b, labels or None) per row."""
    path = tmp_path / name
    lines = [
        json.dumps({"id": i, "prompt": [p], "response_a": [a], "response_b": [b], "labels": labels})
        for i, p, a, b, labels in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return f"{path}:canonical"


def _build(tmp_path: Path, name: str = "out", **kw) -> dict:
    return build_dataset(BuildConfig(**kw), tmp_path / name)


# -- the settings ----------------------------------------------------------------
@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_max_drop_share_is_a_number_in_0_1(tmp_path, share):
    with pytest.raises(af.ConfigError, match="max_drop_share must be a number in"):
        _build(tmp_path, max_drop_share=share)


def test_allow_empty_is_a_bool(tmp_path):
    with pytest.raises(af.ConfigError, match="allow_empty must be a bool"):
        _build(tmp_path, allow_empty=1)


def test_the_settings_decide_success_not_bytes(tmp_path):
    m1 = _build(tmp_path, "one", demo_rows=100)
    m2 = _build(tmp_path, "two", demo_rows=100, max_drop_share=1, allow_empty=True)
    assert (tmp_path / "one" / "manifest.json").read_bytes() == (
        tmp_path / "two" / "manifest.json"
    ).read_bytes()
    assert "max_drop_share" not in m1["config"] and "allow_empty" not in m2["config"]
    log = json.loads((tmp_path / "two" / "build.json").read_text())
    assert log["max_drop_share"] == 1.0 and log["allow_empty"] is True


# -- a build that keeps no row ------------------------------------------------------
def test_lmsys_chat_1m_sample_with_no_repeated_prompt_fails_saying_why(tmp_path, data_dir):
    path = str(data_dir / "lmsys_chat_1m_sample.jsonl")
    with pytest.raises(af.InputError) as err:
        _build(tmp_path, inputs=[path])
    message = str(err.value)
    assert "every one of the 191 input rows was dropped" in message
    assert "chat1m_unpaired 191 (e.g. row 0, id '1e230e55efea4edab95db9cb87f6a9cb'" in message
    assert (
        "no other model" in message
        and "No pair: no prompt here was answered by two models" in message
    )
    assert "--allow-empty" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    # Accepted on request: a dataset of no row, every row accounted for.
    manifest = _build(tmp_path, inputs=[path], allow_empty=True)
    assert manifest["counts"]["rows"] == 0 and manifest["inputs"][0]["rows_dropped"] == 191
    assert len(af.load_dataset(tmp_path / "out")) == 0


def test_the_cli_exits_non_zero_on_an_empty_build(tmp_path, data_dir, capsys):
    out = tmp_path / "out"
    path = str(data_dir / "lmsys_chat_1m_sample.jsonl")
    code = main(["build-dataset", "--input", path, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "chat1m_unpaired" in err and not out.exists()


def test_an_input_that_keeps_no_row_fails_beside_others(tmp_path, data_dir):
    kaggle = str(data_dir / "kaggle_train_head100.csv")
    chat = str(data_dir / "lmsys_chat_1m_sample.jsonl")
    with pytest.raises(af.InputError, match=r"lmsys_chat_1m_sample\.jsonl: none of its 191 rows"):
        _build(tmp_path, inputs=[kaggle, chat])
    header = tmp_path / "empty.csv"
    header.write_text(Path(kaggle).read_text().splitlines()[0] + "\n")
    with pytest.raises(af.InputError, match=r"empty\.csv: no rows \(a header only\?\)"):
        _build(tmp_path, inputs=[kaggle, str(header)])
    manifest = _build(tmp_path, inputs=[kaggle, chat, str(header)], allow_empty=True)
    assert [i["rows_kept"] for i in manifest["inputs"]] == [manifest["counts"]["rows"], 0, 0]


def test_an_input_wholly_duplicated_by_a_higher_source_is_no_failure(tmp_path, data_dir):
    """Its rows are in the dataset: de-duplication loses nothing."""
    frame = _kaggle(data_dir).head(50)
    kaggle = _csv(frame, tmp_path / "train.csv")
    again = [
        (f"c{i}", json.loads(p)[0], json.loads(a)[0], json.loads(b)[0], [1.0, 0.0, 0.0])
        for i, (p, a, b) in enumerate(frame.select("prompt", "response_a", "response_b").rows())
        if len(json.loads(p)) == 1 and None not in json.loads(a) + json.loads(b)
    ]
    canonical = _canonical(tmp_path, again)
    manifest = _build(tmp_path, inputs=[kaggle, canonical])
    entry = manifest["inputs"][1]
    assert entry["rows_in"] == len(again) and entry["rows_kept"] == 0
    assert set(manifest["counts"]["dropped"]) <= {"duplicate", "duplicate_prompt"}


# -- an input of which a policy drops more than max_drop_share ------------------------
def _mostly_identical(tmp_path: Path, n: int = 10, same: int = 6) -> str:
    rows = [
        (f"r{i}", f"prompt {i}", f"answer {i}", f"answer {i}" if i < same else f"other {i}", None)
        for i in range(n)
    ]
    return _canonical(tmp_path, [(*r[:4], [0.0, 1.0, 0.0]) for r in rows])


def test_a_policy_that_drops_most_rows_fails_naming_the_flags(tmp_path):
    path = _mostly_identical(tmp_path)
    with pytest.raises(af.InputError) as err:
        _build(tmp_path, inputs=[path])
    message = str(err.value)
    assert (
        "rows.jsonl: 6 of its 10 rows (60%) were dropped, more than max_drop_share 0.5" in message
    )
    assert "identical 6 (e.g. row 0, id 'r0')" in message
    assert "--identical tie or keep keeps them" in message
    assert "--max-drop-share 0.61" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    # A higher threshold, or the policy that keeps them, builds it.
    assert _build(tmp_path, "a", inputs=[path], max_drop_share=0.6)["counts"]["rows"] == 4
    assert _build(tmp_path, "b", inputs=[path], identical="tie")["counts"]["rows"] == 10
    # 0 refuses any counted drop; half exactly is not more than half.
    with pytest.raises(af.InputError, match="more than max_drop_share 0.55"):
        _build(tmp_path, "c", inputs=[path], max_drop_share=0.55)
    half = _mostly_identical(tmp_path, 10, 5)
    assert _build(tmp_path, "d", inputs=[half])["counts"]["rows"] == 5
    with pytest.raises(af.InputError, match=r"more than max_drop_share 0\. "):
        _build(tmp_path, "e", inputs=[half], max_drop_share=0)


def test_label_space_drops_count_and_name_the_space_that_keeps_them(tmp_path):
    """Mapping to ab loses the ties, by request: a third of the rows passes,
    most of them is refused."""

    def rows(ties: int) -> list[tuple]:
        return [
            (f"r{i}", f"p{i}", f"a{i}", f"b{i}", [0.0, 0.0, 1.0] if i < ties else [1.0, 0.0, 0.0])
            for i in range(10)
        ]

    few = _canonical(tmp_path, rows(3), "few.jsonl")
    manifest = _build(tmp_path, "few", inputs=[few], label_space="ab")
    assert manifest["counts"]["dropped"] == {"label_space": 3}
    many = _canonical(tmp_path, rows(7), "many.jsonl")
    with pytest.raises(af.InputError, match="--label-space abt keeps them"):
        _build(tmp_path, "many", inputs=[many], label_space="ab")


def test_unreadable_rows_name_the_format_they_were_read_as(tmp_path):
    path = tmp_path / "rows.jsonl"
    good = {
        "id": "1",
        "prompt": ["p"],
        "response_a": ["a"],
        "response_b": ["b"],
        "labels": [1, 0, 0],
    }
    path.write_text(json.dumps(good) + "\n" + "{not json\n" * 3)
    with pytest.raises(af.InputError) as err:
        _build(tmp_path, inputs=[f"{path}:canonical"])
    message = str(err.value)
    assert "3 of its 4 rows (75%)" in message and "bad_record 3 (e.g. row 1" in message
    assert "Rows not read as canonical (given): check the format" in message


def test_the_top_three_reasons_are_shown_and_the_rest_counted(tmp_path):
    rows = [
        ("1", "p", "", "", [1.0, 0.0, 0.0]),  # both_empty
        ("2", "p2", "same", "same", [1.0, 0.0, 0.0]),  # identical
        ("3", "p3", "x", "y", [0.0, 0.0, 0.0]),  # bad_labels
        ("4", "p4", "x", "y", [-1.0, 0.0, 0.0]),  # bad_labels
        ("5", "p5", "x", "y", [1.0, 0.0, 0.0]),
        ("5", "p6", "x", "z", [1.0, 0.0, 0.0]),  # duplicate_id
    ]
    with pytest.raises(af.InputError) as err:
        _build(tmp_path, inputs=[_canonical(tmp_path, rows)], max_drop_share=0.1)
    message = str(err.value)
    assert message.index("bad_labels 2") < message.index("both_empty 1")
    assert "1 more reasons in dropped.parquet" in message


# -- the manifest's inputs -----------------------------------------------------------
def test_the_manifest_records_each_inputs_format_and_how_it_was_chosen(tmp_path, data_dir):
    train = str(data_dir / "kaggle_train_head100.csv")
    test = str(data_dir / "kaggle_test_example.csv")
    manifest = _build(tmp_path, inputs=[train, f"{test}:kaggle"])
    detected, given = manifest["inputs"]
    assert detected["format"] == given["format"] == "kaggle"
    assert given["format_chosen"] == "given"
    # Why detection chose it (`BuildInput.detected`), in words.
    assert detected["format_chosen"].startswith("csv: columns prompt/response_a/response_b")
    assert detected["label_space"] == "abt" and manifest["label_space"] == "abt"
    assert given["label_space"] is None  # unlabelled rows: no label space of their own
    demo = _build(tmp_path, "demo", demo_rows=50)
    assert demo["inputs"][0]["format_chosen"] == "demo"
    # The manifest on disk reads back (schema checked).
    assert af.dataset.read_manifest(tmp_path / "out")["inputs"][1]["format_chosen"] == "given"


# -- duplicate ids ---------------------------------------------------------------------
def test_test_rows_that_reuse_train_ids_are_kept(tmp_path, data_dir):
    """Issue 17: train.csv + a test file of the same ids dropped 992 of 1,000
    unlabelled rows as duplicate_id; data to predict keeps every id."""
    frame = _kaggle(data_dir)
    train = _csv(frame, tmp_path / "train.csv")
    test = _csv(frame.select("id", "prompt", "response_a", "response_b"), tmp_path / "test.csv")
    manifest = _build(tmp_path, inputs=[train, test])
    entry = manifest["inputs"][1]
    assert entry["rows_in"] == entry["rows_kept"] == 1000
    assert "duplicate_id" not in manifest["counts"]["dropped"]
    assert manifest["counts"]["labels"]["unlabelled"] == 1000
    assert manifest["counts"]["ids_shared"] == manifest["inputs"][0]["rows_kept"] == 992
    # Every id is a row to predict, once; the labelled rows keep theirs.
    data = af.load_dataset(tmp_path / "out")
    ids = [str(i) for i in data.ids]
    unlabelled = sorted(i for i, lab in zip(ids, data.labelled) if not lab)
    assert unlabelled == sorted(frame["id"].to_list())
    labelled = [i for i, lab in zip(ids, data.labelled) if lab]
    assert len(labelled) == len(set(labelled)) == manifest["inputs"][0]["rows_kept"]


def test_an_id_twice_among_labelled_or_among_unlabelled_rows_is_one_row(tmp_path, data_dir):
    """The same id and conversation again is a `duplicate` (nothing lost);
    the same id with other texts a `duplicate_id` (one of them lost)."""
    frame = _kaggle(data_dir).head(20)
    other = pl.col("prompt").str.replace(r"^\[", '["another question", ')
    train = _csv(
        pl.concat([frame, frame.head(2), frame.slice(2, 1).with_columns(other)]),
        tmp_path / "train.csv",
    )
    rows = frame.select("id", "prompt", "response_a", "response_b")
    test = _csv(
        pl.concat([rows, rows.head(3), rows.slice(3, 1).with_columns(other)]),
        tmp_path / "test.csv",
    )
    manifest = _build(tmp_path, inputs=[train, test], dedup="none")
    dropped = pl.read_parquet(tmp_path / "out" / "dropped.parquet")
    got = sorted(dropped.select("input", "row", "reason", "detail").rows())
    same = "the same id and conversation as an earlier row"
    assert got == [
        (0, 20, "duplicate", same),
        (0, 21, "duplicate", same),
        (
            0,
            22,
            "duplicate_id",
            "an earlier labelled row of this input has this id, with other texts",
        ),
        (1, 20, "duplicate", same),
        (1, 21, "duplicate", same),
        (1, 22, "duplicate", same),
        (
            1,
            23,
            "duplicate_id",
            "an earlier unlabelled row of this input has this id, with other texts",
        ),
    ]
    assert manifest["inputs"][1]["rows_kept"] == 20


def test_a_file_given_twice_adds_nothing_and_loses_nothing(tmp_path, data_dir):
    train = str(data_dir / "kaggle_train_head100.csv")
    manifest = _build(tmp_path, inputs=[train, train])
    first, second = manifest["inputs"]
    assert second["rows_kept"] == 0 and second["rows_dropped"] == 100
    assert first["rows_kept"] == manifest["counts"]["rows"]
