"""What `predict`, `compare`, `report` and `serve` show of a reward run
(issue 20; docs/reward.md, "Predicting, reports and serve with a reward
model"): one prediction per pair with both rewards and the probabilities
its tie parameter derives from them, no swap TTA (a request for it is
refused), the report's reward section and the serve pages' rewards. On a
tiny reward run trained in a few seconds on a small dataset of the
separate layout."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import polars as pl
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.cli import main  # noqa: E402
from arena_fast.dataset import load_dataset  # noqa: E402
from arena_fast.diagnostics import pairwise_accuracy, read_predictions  # noqa: E402
from arena_fast.errors import ConfigError, InputError  # noqa: E402
from arena_fast.infer import predict_logits  # noqa: E402
from arena_fast.predict import Judge, load_run, predict, prediction_table, run_encoder  # noqa: E402
from arena_fast.report import write_report  # noqa: E402
from arena_fast.reward_losses import reward_probs  # noqa: E402
from arena_fast.reward_tables import REWARD_COLUMNS, reward_summary, table_rewards  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def reward_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward_outputs")
    data = build_rows(keyword_rows(60, 0), root, max_length=64, folds=3, layout="separate")
    run = root / "run"
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(
            data=str(data), objective="reward", epochs=1, lr=3e-3, max_tokens=2048, out=str(run)
        )
        train(config)
    finally:
        torch.set_num_threads(old)
    return {"root": root, "data": data, "run": run}


def _model_rewards(run, data):
    """Each pair's two rewards and the probabilities of its label space,
    computed here from the model itself (not through predict)."""
    dataset = load_dataset(data, swap=None)
    model, _ = load_run(run, tokenizer=dataset.tokenizer())
    out = predict_logits(model, dataset.encoded, "padded", 2048)[:, 0].reshape(-1, 2)
    tie = model.head.tie
    with torch.no_grad():
        probs = reward_probs(
            torch.as_tensor(out[:, 0]),
            torch.as_tensor(out[:, 1]),
            dataset.space,
            model=tie.model,
            theta=tie.theta.detach().double(),
        ).numpy()
    return dataset, model, out, probs


# -- predict -----------------------------------------------------------------------------


def test_predict_gives_one_prediction_per_pair_with_its_rewards(reward_run):
    run, data = reward_run["run"], reward_run["data"]
    dataset, model, rewards, probs = _model_rewards(run, data)
    result = predict(run, data, split="all")
    assert len(result["ids"]) == len(dataset) // 2 == len(rewards)
    assert list(result["ids"]) == list(dataset.ids[0::2])
    np.testing.assert_allclose(result["rewards"], rewards, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["probs"], probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result["probs"].sum(axis=1), 1.0)
    assert "logits" not in result and "probs_swapped" not in result
    assert result["tie_model"] == "davidson"
    assert result["tie_prob_of_equal_rewards"] == pytest.approx(
        model.head.tie.tie_prob_of_equal_rewards()
    )
    frame = prediction_table(result)
    assert frame.columns[-2:] == list(REWARD_COLUMNS)
    assert frame.schema["reward_a"] == pl.Float64
    np.testing.assert_allclose(frame["reward_a"].to_numpy(), rewards[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(frame["reward_b"].to_numpy(), rewards[:, 1], rtol=1e-5, atol=1e-6)
    # the held-out split is the run's held-out fold, of pairs too
    held = predict(run, data)
    assert held["split"] == "valid" and set(held["folds"]) == {0}
    assert not held["trained"].any()


def test_a_reward_run_refuses_swap_tta_and_says_why(reward_run):
    with pytest.raises(ConfigError, match="symmetric by construction"):
        predict(reward_run["run"], reward_run["data"], tta=True)
    # --no-tta (tta=False) is what it does anyway: accepted
    assert len(predict(reward_run["run"], reward_run["data"], tta=False, split="all")["ids"])


def test_cli_predict_writes_kaggle_submission_and_reward_table(reward_run, tmp_path, capsys):
    run, data = str(reward_run["run"]), str(reward_run["data"])
    out, table = tmp_path / "sub.csv", tmp_path / "pred.parquet"
    argv = ["predict", "--run", run, "--data", data, "--split", "all"]
    assert main([*argv, "--out", str(out), "--predictions", str(table)]) == 0
    err = capsys.readouterr().err
    assert "pairwise acc" in err and "P(tie) of equal rewards" in err
    submission = pl.read_csv(out)
    assert submission.columns == ["id", "winner_model_a", "winner_model_b", "winner_tie"]
    frame = read_predictions(table)
    assert len(frame) == len(submission) == 60
    result = predict(run, data, split="all")
    np.testing.assert_allclose(table_rewards(frame), result["rewards"])
    # --tta asked for a reward run: a clear refusal, no traceback
    assert main([*argv, "--tta", "--out", str(tmp_path / "t.csv")]) != 0
    err = capsys.readouterr().err
    assert "symmetric by construction" in err and "Traceback" not in err


def test_reward_summary_counts_the_pairs_its_accuracy_is_over(reward_run):
    frame = read_predictions(reward_run["run"] / "valid_predictions.parquet")
    r = table_rewards(frame)
    labels = frame["labels"].to_numpy().reshape(len(frame), -1)
    summary = reward_summary(frame)
    decided = int((labels[:, :2].max(axis=1) == 1).sum())
    assert summary["decided"] == decided and summary["labelled"] == len(frame)
    assert summary["pairwise_accuracy"] == pairwise_accuracy(r[:, 0], r[:, 1], labels)
    assert sum(len(m) for m in summary["margins"].values()) == len(frame)
    np.testing.assert_allclose(summary["margins"]["A wins"], (r[:, 0] - r[:, 1])[labels[:, 0] == 1])
    # a classifier's table has no rewards; a broken reward column is named
    assert reward_summary(frame.drop(*REWARD_COLUMNS)) is None
    with pytest.raises(InputError, match="reward_b"):
        table_rewards(frame.drop("reward_b"))
    bad = frame.with_columns(pl.Series("reward_a", [float("nan")] * len(frame)))
    with pytest.raises(InputError, match="row 0, column 'reward_a'"):
        table_rewards(bad, "t.parquet")


# -- compare -----------------------------------------------------------------------------


def test_judge_compare_returns_both_rewards_and_mirrors_under_a_swap(reward_run):
    judge = Judge(reward_run["run"])
    assert judge.reward and judge.space.name == "abt"
    one, two = judge.compare_many(
        [
            {
                "id": "x",
                "prompt": "question river",
                "response_a": "stone zebra",
                "response_b": "lamp",
            },
            {"prompt": "question river", "response_a": "lamp", "response_b": "stone zebra"},
        ]
    )
    assert one["id"] == "x" and {"reward_a", "reward_b", "winner_tie"} <= set(one)
    assert "original" not in one and "flip" not in one
    # each answer's reward is the model's reward of prompt + that answer
    encoder = run_encoder(reward_run["run"])
    encoded = encoder.encode([["question river"]], [["stone zebra"]], [["lamp"]])
    want = predict_logits(judge.model, encoded, judge.layout)[:, 0]
    assert [one["reward_a"], one["reward_b"]] == pytest.approx(want.tolist(), rel=1e-5)
    assert (two["reward_a"], two["reward_b"]) == pytest.approx((one["reward_b"], one["reward_a"]))
    assert two["winner_model_a"] == pytest.approx(one["winner_model_b"])
    assert two["winner_tie"] == pytest.approx(one["winner_tie"])
    total = one["winner_model_a"] + one["winner_model_b"] + one["winner_tie"]
    assert total == pytest.approx(1.0)
    assert one["verdict"] in judge.space.verdicts
    assert len(one["tokens"]) == 2 and one["max_length"] == 64


def test_cli_compare_prints_the_rewards(reward_run, capsys, monkeypatch):
    monkeypatch.setattr(
        "sys.stdin", io.StringIO('{"prompt": "q", "response_a": "a", "response_b": "b"}\n')
    )
    assert main(["compare", "--run", str(reward_run["run"])]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert isinstance(record["reward_a"], float) and isinstance(record["reward_b"], float)
    assert record["winner_model_a"] > record["winner_model_b"] or (
        record["reward_a"] <= record["reward_b"]
    )


# -- report ------------------------------------------------------------------------------


def test_report_shows_the_reward_section(reward_run, tmp_path):
    run = reward_run["run"]
    page = write_report([run], out=tmp_path / "report").read_text()
    assert 'id="run1-reward"' in page
    for words in ("pairwise accuracy", "pairs it is over", "P(tie) of equal rewards", "davidson"):
        assert words in page
    assert (tmp_path / "report" / "run1-margins.png").is_file()
    frame = read_predictions(run / "valid_predictions.parquet")
    summary = reward_summary(frame)
    assert f"<td>{summary['pairwise_accuracy']:.4f}</td><td>{summary['decided']:,}</td>" in page
    model, _ = load_run(run)
    assert f"<td>{model.head.tie.tie_prob_of_equal_rewards():.4f}</td>" in page
    assert "no swap TTA or flip rate" in page
    # an extra prediction table of the run (predict --predictions) gets the section too
    table = tmp_path / "pred.parquet"
    assert main(["predict", "--run", str(run), "--data", str(reward_run["data"]),
                 "--split", "all", "--out", str(tmp_path / "s.csv"),
                 "--predictions", str(table)]) == 0  # fmt: skip
    page = write_report([run], out=tmp_path / "r2", predictions=[table]).read_text()
    assert 'id="pred1-reward"' in page and (tmp_path / "r2" / "pred1-margins.png").is_file()


# -- serve -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(reward_run, tmp_path_factory):
    train_extra("starlette", "serve")
    from starlette.testclient import TestClient

    from arena_fast.serve import Catalog, create_app

    # a copy of the run whose first prediction's id is markup: the run page must escape
    # it (its bundle no longer matches, so Compare scores with the run itself)
    run = tmp_path_factory.mktemp("served") / "rrun"
    shutil.copytree(reward_run["run"], run)
    table = run / "valid_predictions.parquet"
    frame, rows = read_predictions(table, with_rows=True)
    ids = frame["id"].to_list()
    ids[0] = "<b>bold</b>"
    from arena_fast.diagnostics import write_predictions

    write_predictions(table, frame.with_columns(pl.Series("id", ids)), rows)
    catalog = Catalog.from_paths([reward_run["run"], run], [reward_run["data"]])
    with TestClient(create_app(catalog)) as c:
        yield c, frame


def test_serve_compare_shows_each_answers_reward(client):
    c, _ = client
    form = {"prompt": "question <script>x</script>", "response_a": "stone zebra",
            "response_b": "lamp", "run": "run"}  # fmt: skip
    page = c.post("/compare", data=form)
    assert page.status_code == 200
    text = page.text
    assert 'class="rewards"' in text and 'data-answer="a"' in text and 'data-pass="reward"' in text
    assert "prompt + A" in text and "prompt + B" in text
    assert "<script>x</script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text
    api = c.post("/api/compare", json={**form, "runs": ["run"]}).json()
    entry = api["runs"][0]
    assert entry["reward"] is True
    assert entry["columns"] == ["winner_model_a", "winner_model_b", "winner_tie"]
    res = entry["result"]
    assert f'data-value="{res["reward_a"]}"' in text and f'data-value="{res["reward_b"]}"' in text
    assert api["encodings"][entry["encoding"]]["layout"] == "separate"


def test_serve_run_view_has_reward_columns_sorted_by_loss(client):
    c, frame = client
    page = c.get("/runs/rrun")
    assert page.status_code == 200
    text = page.text
    assert '<th class="n">reward A</th><th class="n">reward B</th>' in text
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<th>objective</th><td>reward</td>" in text
    losses = [float(x) for x in _attr(text, "data-loss")]
    assert losses == sorted(losses, reverse=True)
    a, b = _attr(text, 'data-answer="a" data-value'), _attr(text, 'data-answer="b" data-value')
    shown = dict(zip(_attr(text, "data-id"), zip(a, b)))
    want = dict(zip(frame["id"].to_list(), zip(frame["reward_a"], frame["reward_b"])))
    want["&lt;b&gt;bold&lt;/b&gt;"] = want.pop(frame["id"][0])
    for row_id, (a, b) in shown.items():
        assert (float(a), float(b)) == pytest.approx(want[row_id])


def _attr(text: str, name: str) -> list:
    """The values of every `name="..."` in `text`, in order."""
    out, key = [], f'{name}="'
    start = text.find(key)
    while start >= 0:
        end = text.index('"', start + len(key))
        out.append(text[start + len(key) : end])
        start = text.find(key, end)
    return out
