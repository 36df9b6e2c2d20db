"""Prediction outputs beyond the submission CSV: the per-row table and its
diagnostics, canonical parquet for pseudo-labels / teacher logits, and
`arena-fast compare` (one pair, both orders)."""

from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.cli import main  # noqa: E402
from arena_fast.dataset import BuildConfig, build_dataset, load_dataset  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pred")
    rows = keyword_rows(600, 0, max_turns=2)
    build_rows(rows, root, max_length=128, folds=3, swap=True)
    train(
        TrainConfig(
            data=str(root / "ds"), epochs=3, lr=3e-3, max_tokens=2048, out=str(root / "run")
        )
    )
    return {"root": root, "rows": rows, "data": root / "ds", "run": root / "run"}


def test_training_writes_the_held_out_predictions(trained):
    from arena_fast.diagnostics import read_predictions, summarize
    from arena_fast.train import read_bundle

    run = trained["run"]
    table = read_predictions(run / "valid_predictions.parquet")
    valid = load_dataset(trained["data"], fold=0, split="valid")
    assert table["id"].to_list() == valid.ids[0::2]
    assert set(table["fold"].to_list()) == {0}
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "eval" in x]
    s = summarize(table)
    # The table is the last evaluation's: the same TTA log loss.
    assert s["log_loss"] == pytest.approx(evals[-1]["tta_log_loss"], rel=1e-6)
    assert 0.0 <= s["flip_rate"] <= 1.0
    assert "valid_predictions.parquet" in read_bundle(run)["files"]


def test_predict_writes_table_summary_and_canonical_parquet(trained, tmp_path, capsys):
    from arena_fast.diagnostics import read_predictions
    from arena_fast.predict import predict

    run, data = trained["run"], trained["data"]
    table = tmp_path / "pred.parquet"
    out = tmp_path / "pseudo.parquet"
    code = main(
        ["predict", "--run", str(run), "--data", str(data), "--out", str(out)]
        + ["--predictions", str(table), "--split", "all"]  # every row, trained ones too
    )
    assert code == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "log loss" in err and "flip rate" in err and "by turns" in err and "ECE" in err
    result = predict(run, data, split="all")
    pred = read_predictions(table)
    assert pred["id"].to_list() == result["ids"]
    np.testing.assert_allclose(pred["probs"].to_numpy(), result["probs"], atol=1e-6)
    assert sorted(set(pred["turns"].to_list())) == [1, 2]

    # The canonical file holds the text of every row again, in dataset order,
    # with the probabilities as labels and the logits as one teacher.
    canon = pl.read_parquet(out)
    source = trained["rows"]
    assert canon["id"].to_list() == result["ids"]
    by_id = {r["id"]: r for r in source.iter_rows(named=True)}
    for r in canon.head(20).iter_rows(named=True):
        for column in ("prompt", "response_a", "response_b"):
            assert list(r[column]) == by_id[r["id"]][column]
    np.testing.assert_allclose(canon["labels"].to_numpy(), result["probs"], atol=1e-6)
    teacher = np.array([t[0] for t in canon["teacher_logits"].to_list()])
    np.testing.assert_allclose(teacher, result["logits"], atol=1e-5)

    # build-dataset reads it back: pseudo-labels and teacher logits, same ids.
    build_dataset(
        BuildConfig(inputs=[f"{out}:canonical"], max_length=128, folds=3), tmp_path / "again"
    )
    again = load_dataset(tmp_path / "again", swap=False)
    order = {i: k for k, i in enumerate(result["ids"])}
    k = np.array([order[i] for i in again.ids])
    np.testing.assert_allclose(again.labels, result["probs"][k], atol=1e-6)
    np.testing.assert_allclose(np.array(again.teacher_logits)[:, 0], result["logits"][k], atol=1e-5)
    # The re-read text encodes to the same tokens as the original rows.
    original = load_dataset(data, swap=False)
    where = {i: k for k, i in enumerate(original.ids)}
    assert sorted(again.ids) == sorted(original.ids)
    for j, i in enumerate(again.ids):
        assert again.encoded[j].tolist() == original.encoded[where[i]].tolist()


def test_canonical_output_refuses_a_changed_input(trained, tmp_path, capsys):
    import shutil

    moved = tmp_path / "rows.parquet"
    shutil.copyfile(trained["root"] / "ds.parquet", moved)
    args = ["predict", "--run", str(trained["run"]), "--data", str(trained["data"])]
    out = str(tmp_path / "p.parquet")
    assert main([*args, "--out", out, "--inputs", str(moved)]) == 0
    keyword_rows(5, 9).write_parquet(moved)
    assert main([*args, "--out", out, "--inputs", str(moved), "--overwrite"]) == 1
    assert "sha256 differs" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "p.json")]) == 1
    assert "--out must end in .csv or .parquet" in capsys.readouterr().err


def _compare(monkeypatch, capsys, args, stdin: str = "") -> tuple[int, list, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, [json.loads(x) for x in captured.out.splitlines()], captured.err


def test_compare_scores_both_orders(trained, monkeypatch, capsys):
    run = str(trained["run"])
    code, (ab,), _ = _compare(
        monkeypatch, capsys, ["--run", run, "question lamp", "paper zebra", "river stone"]
    )
    assert code == 0
    code, (ba,), _ = _compare(
        monkeypatch, capsys, ["--run", run, "question lamp", "river stone", "paper zebra"]
    )
    assert code == 0
    probs = [ab["winner_model_a"], ab["winner_model_b"], ab["winner_tie"]]
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    # Averaged over both orders: exchanging A and B exchanges the numbers exactly.
    assert (ab["winner_model_a"], ab["winner_model_b"], ab["winner_tie"]) == (
        ba["winner_model_b"],
        ba["winner_model_a"],
        ba["winner_tie"],
    )
    assert ab["verdict"] == "model_a"  # the trained rule: the answer with "zebra" wins
    assert ab["original"] == {
        "winner_model_a": ba["swapped"]["winner_model_b"],
        "winner_model_b": ba["swapped"]["winner_model_a"],
        "winner_tie": ba["swapped"]["winner_tie"],
    }
    assert ab["turns"] == 1 and ab["max_length"] == 128 and not ab["truncated"]
    assert ab["tokens"][0] == ab["tokens"][1] and ab["full_length"] == ab["tokens"][0]


def test_compare_reads_json_from_stdin(trained, monkeypatch, capsys):
    from arena_fast.predict import Judge

    run = str(trained["run"])
    long_answer = " ".join(["garden"] * 200)
    pairs = [
        {
            "id": "x",
            "prompt": ["q one", "q two"],
            "response_a": ["a", "b zebra"],
            "response_b": ["c", "d"],
        },
        {"prompt": "q", "response_a": long_answer, "response_b": "lamp"},
    ]
    lines = "\n".join(json.dumps(p) for p in pairs) + "\n\n"
    code, out, _ = _compare(monkeypatch, capsys, ["--run", run], lines)
    assert code == 0 and [r["id"] for r in out] == ["x", 1]
    assert out[0]["turns"] == 2 and out[1]["truncated"]
    assert out[1]["full_length"] > out[1]["max_length"] >= max(out[1]["tokens"])
    code, as_array, _ = _compare(monkeypatch, capsys, ["--run", run], json.dumps(pairs))
    assert code == 0 and as_array == out
    assert Judge(run).compare_many(pairs) == out
    # The dataset path and the text path agree on the same rows.
    from arena_fast.predict import predict

    rows = trained["rows"].head(6)
    judged = Judge(run).compare_many(
        rows.select("id", "prompt", "response_a", "response_b").to_dicts()
    )
    result = predict(trained["run"], trained["data"], split="all")
    index = {i: k for k, i in enumerate(result["ids"])}
    for record in judged:
        want = result["probs"][index[record["id"]]]
        got = [record["winner_model_a"], record["winner_model_b"], record["winner_tie"]]
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["p", "a"], "", "three texts"),
        ([], "{not json", "line 1: not JSON"),
        ([], '[{"prompt": 3, "response_a": "a", "response_b": "b"}]', "'prompt' must be"),
        ([], "[1]", "pair 0: expected an object"),
    ],
)
def test_compare_errors_are_one_line(trained, monkeypatch, capsys, args, stdin, message):
    code, out, err = _compare(monkeypatch, capsys, ["--model", str(trained["run"]), *args], stdin)
    assert code == 1 and out == []
    assert message in err and len(err.strip().splitlines()) == 1
