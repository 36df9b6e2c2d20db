"""The training loop learns a rule visible only in the text, on the CPU."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.dataset import BuildConfig, build_dataset  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from keyword_rows import keyword_rows as _keyword_rows  # noqa: E402


@pytest.fixture(scope="module")
def keyword_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("kw")
    _keyword_rows(900, 0).write_parquet(root / "rows.parquet")
    config = BuildConfig(
        inputs=[f"{root / 'rows.parquet'}:canonical"], max_length=128, folds=5, swap=True
    )
    build_dataset(config, root / "ds")
    return root / "ds"


@pytest.mark.parametrize("layout, attn", [("packed", "arena_varlen"), ("padded", "eager")])
def test_tiny_gemma2_learns_the_keyword_rule(keyword_dataset, tmp_path, layout, attn):
    torch.set_num_threads(1)
    logs = []
    result = train(
        TrainConfig(
            data=str(keyword_dataset),
            model="tiny-gemma2",
            layout=layout,
            attn_implementation=attn,
            epochs=3,
            lr=3e-3,
            max_tokens=4096,
            out=str(tmp_path / "run"),
            max_seconds=150,
        ),
        log=logs.append,
    )
    evals = [r for r in logs if r.get("eval")]
    assert evals, "no evaluation ran"
    # From ln 3 = 1.0986 (chance) to at most 0.5 on the held-out fold.
    assert result["log_loss"] <= 0.5, evals
    assert result["tta_log_loss"] <= 0.5
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    saved = json.loads(lines[-1])  # the kept evaluation: the best one (save: best)
    assert saved["saved"] == "best" and saved["kept"] == result
    assert result["log_loss"] == min(r["log_loss"] for r in evals)
    assert (tmp_path / "run" / "head.safetensors").is_file()


def test_tiny_gemma2_learns_the_keyword_rule_with_lora(keyword_dataset, tmp_path):
    """LoRA adapters (r=8, every linear layer) and the head alone learn the
    rule: the embeddings and base weights stay as initialised."""
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    result = train(
        TrainConfig(
            data=str(keyword_dataset),
            model="tiny-gemma2",
            lora_r=8,
            lora_alpha=16,
            epochs=2,
            lr=1e-2,
            max_tokens=4096,
            out=str(tmp_path / "run"),
            max_seconds=150,
        )
    )
    assert result["log_loss"] <= 0.5 and result["tta_log_loss"] <= 0.5, result
    trained = load_file(str(tmp_path / "run" / "decoder.safetensors"))
    assert trained and all("lora_" in name for name in trained)


def test_cli_train_with_yaml_and_overrides(keyword_dataset, tmp_path, capsys):
    from arena_fast.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"data: {keyword_dataset}\nepochs: 5\nlr: 0.003\nmax_tokens: 4096\n")
    out = tmp_path / "run"
    code = main(["train", "--config", str(cfg), "--epochs", "1", "--out", str(out)])
    assert code == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 1 and saved["lr"] == 0.003  # the command line wins
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if "eval" in x]
    assert len(evals) == 1
    assert "log loss" in capsys.readouterr().err
    assert main(["train", "--data", str(keyword_dataset), "--layout", "diagonal"]) == 1
    assert "layout" in capsys.readouterr().err


def test_accumulated_step_equals_one_big_batch(keyword_dataset):
    from arena_fast.dataset import load_dataset
    from arena_fast.model import load_classifier
    from arena_fast.train import accumulation_steps, step_gradients

    torch.set_num_threads(1)
    data = load_dataset(keyword_dataset, fold=0, split="train")
    rows = np.arange(24)  # 12 swap pairs
    config = TrainConfig(data=str(keyword_dataset))
    grads = []
    for micro in ([rows[:10], rows[10:16], rows[16:]], [rows]):
        model = load_classifier("tiny-gemma2", tokenizer=data.tokenizer(), seed=1)
        loss, sequences = step_gradients(model, data, micro, "packed", config)
        assert sequences == 24
        grads.append((loss, {n: p.grad.clone() for n, p in model.named_parameters()}))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    for name, g in grads[1][1].items():
        torch.testing.assert_close(grads[0][1][name], g, atol=1e-6, rtol=1e-4)

    class Plan(list):
        tokens = np.array([100, 300, 50, 60, 500, 10])

    plan = Plan(range(6))
    assert accumulation_steps(plan, None) == [[0], [1], [2], [3], [4], [5]]
    assert accumulation_steps(plan, 400) == [[0, 1], [2, 3, 4], [5]]


def test_resume_continues_the_same_loss_curve(keyword_dataset, tmp_path):
    torch.set_num_threads(1)

    def run(out, **kw):
        logs = []
        config = TrainConfig(
            data=str(keyword_dataset),
            epochs=2,
            lr=3e-3,
            max_tokens=2048,
            log_every=1,
            out=str(out),
            **kw,
        )
        result = train(config, log=logs.append)
        return [(r["step"], r["loss"]) for r in logs if "loss" in r], result

    class Killed(Exception):
        pass

    whole, whole_result = run(tmp_path / "a")
    steps = len(whole)
    cut = steps // 2 + 3  # a few steps into the second epoch: the first is skipped whole
    first = []

    def kill_after_cut(record):  # killed in the step after the checkpoint at `cut`
        if "loss" in record:
            first.append((record["step"], record["loss"]))
            if record["step"] == cut + 1:
                raise Killed

    b = TrainConfig(data=str(keyword_dataset), epochs=2, lr=3e-3, max_tokens=2048, log_every=1)
    with pytest.raises(Killed):
        train(dataclasses.replace(b, out=str(tmp_path / "b"), checkpoint_every=cut), kill_after_cut)
    assert [s for s, _ in first] == list(range(1, cut + 2))
    assert (tmp_path / "b" / "checkpoint" / "state.json").is_file()
    rest, rest_result = run(tmp_path / "b", resume=True, checkpoint_every=cut)
    assert [s for s, _ in rest] == list(range(cut + 1, steps + 1))
    assert first[:cut] + rest == whole  # the same losses, step by step, exactly
    assert rest_result == whole_result  # the same kept evaluation


def _swapped_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The same rows with A and B exchanged (labels follow)."""
    return frame.with_columns(
        pl.col("response_b").alias("response_a"),
        pl.col("response_a").alias("response_b"),
        pl.col("labels").list.gather([1, 0, 2]).alias("labels"),
    )


def test_predict_tta_is_exactly_invariant_to_swapping_a_and_b(tmp_path):
    from arena_fast.predict import predict, write_submission

    torch.set_num_threads(1)
    rows = _keyword_rows(120, 3)
    built = {}
    for name, frame in (("ab", rows), ("ba", _swapped_rows(rows))):
        frame.write_parquet(tmp_path / f"{name}.parquet")
        config = BuildConfig(
            inputs=[f"{tmp_path / name}.parquet:canonical"], max_length=128, folds=2, swap=True
        )
        build_dataset(config, tmp_path / name)
        built[name] = tmp_path / name
    train(
        TrainConfig(
            data=str(built["ab"]), epochs=1, lr=3e-3, max_tokens=2048, out=str(tmp_path / "run")
        )
    )
    # ab is the run's own dataset: every row (split "all"), as for ba, other data.
    ab = predict(tmp_path / "run", built["ab"], max_rows=1, split="all")
    ba = predict(tmp_path / "run", built["ba"], max_rows=1)
    assert ab["ids"] == ba["ids"]
    # TTA on the swapped input, mapped back, is the same numbers, bit for bit.
    np.testing.assert_array_equal(ab["probs"], ba["probs"][:, [1, 0, 2]])
    # Post-processing changes no row here (no empty or identical answers).
    pp = predict(tmp_path / "run", built["ab"], max_rows=1, postprocess=True, split="all")
    assert not pp["postprocessed"].any()
    np.testing.assert_array_equal(pp["probs"], ab["probs"])
    # Without TTA the two orders disagree somewhat (the model is not symmetric).
    assert not np.array_equal(ab["probs_original"], ba["probs_original"][:, [1, 0, 2]])
    np.testing.assert_allclose(ab["probs"].sum(axis=1), 1.0, atol=1e-12)
    out = tmp_path / "sub" / "submission.csv"
    write_submission(out, ab["ids"], ab["probs"])
    from arena_fast.cli import main

    cli_out = tmp_path / "cli.csv"
    args = ["predict", "--run", str(tmp_path / "run"), "--data", str(built["ab"])]
    assert main([*args, "--out", str(cli_out), "--split", "all"]) == 0
    assert main(["predict", "--run", str(tmp_path / "nope"), "--data", str(built["ab"])]) == 1
    sub = pl.read_csv(out)
    assert sub.columns == ["id", "winner_model_a", "winner_model_b", "winner_tie"]
    assert sub["id"].cast(pl.String).to_list() == ab["ids"]
    np.testing.assert_allclose(sub.select(sub.columns[1:]).to_numpy(), ab["probs"], rtol=1e-15)
    # The command gives the same file bar batch composition (tokens per batch).
    cli = pl.read_csv(cli_out)
    assert cli["id"].to_list() == sub["id"].to_list()
    np.testing.assert_allclose(cli.select(cli.columns[1:]).to_numpy(), ab["probs"], atol=1e-6)


def test_a_run_is_a_bundle_that_refuses_changed_files(keyword_dataset, tmp_path, shared_dir):
    from arena_fast.dataset import load_dataset
    from arena_fast.errors import ConfigError
    from arena_fast.predict import predict, run_encoder
    from arena_fast.train import read_bundle

    torch.set_num_threads(1)
    run = tmp_path / "run"
    train(TrainConfig(data=str(keyword_dataset), epochs=1, max_steps=3, out=str(run)))
    bundle = read_bundle(run)
    assert set(bundle["files"]) == {
        "config.json",
        "decoder.safetensors",
        "head.safetensors",
        "tokenizer.json",
        "metrics.jsonl",
        "valid_predictions.parquet",  # stopped after 3 steps, and evaluated there
    }
    assert bundle["labels"] == ["winner_model_a", "winner_model_b", "winner_tie"]
    assert bundle["versions"]["arena_fast"] and bundle["versions"]["torch"]
    # The bundle's encoder encodes exactly as the dataset was built.
    data = load_dataset(keyword_dataset, swap=False)
    assert run_encoder(run).config() == data.encoder().config()
    predict(run, keyword_dataset)  # intact: accepted
    # Data encoded with another tokenizer, or other settings, is refused.
    _keyword_rows(30, 1).write_parquet(tmp_path / "rows.parquet")
    other = tmp_path / "other"
    gemma = shared_dir / "tokenizers" / "gemma3" / "tokenizer.json"
    source = f"{tmp_path / 'rows.parquet'}:canonical"
    build_dataset(BuildConfig(inputs=[source], tokenizer=str(gemma), max_length=128), other)
    with pytest.raises(ConfigError, match="another tokenizer"):
        predict(run, other)
    build_dataset(BuildConfig(inputs=[source], max_length=96), tmp_path / "short")
    with pytest.raises(ConfigError, match="encoder settings"):
        predict(run, tmp_path / "short")
    head = run / "head.safetensors"
    head.write_bytes(head.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ConfigError, match="sha256"):
        predict(run, keyword_dataset)


def test_postprocessing_rules_and_flags_under_swap(tmp_path):
    from arena_fast.dataset import FLAG_EMPTY_A, FLAG_EMPTY_B, FLAG_IDENTICAL, load_dataset
    from arena_fast.predict import postprocess_rules

    probs = np.full((5, 3), 1 / 3)
    flags = np.array(
        [0, FLAG_EMPTY_A, FLAG_EMPTY_B, FLAG_IDENTICAL, FLAG_EMPTY_A | FLAG_EMPTY_B], np.uint8
    )
    out, changed = postprocess_rules(probs, flags)
    assert out[1].tolist() == [0.04, 0.88, 0.08] and out[2].tolist() == [0.88, 0.04, 0.08]
    assert out[3].tolist() == [0.06, 0.06, 0.88]
    assert out[0].tolist() == out[4].tolist() == probs[0].tolist()
    assert changed.tolist() == [False, True, True, True, False]
    assert probs[1].tolist() == [1 / 3] * 3  # the input is not modified

    # Unlabelled rows keep their empty / identical answers, flagged; the
    # swapped row's flags exchange A and B.
    rows = pl.DataFrame(
        {
            "id": ["e", "i"],
            "prompt": [["q"], ["q2"]],
            "response_a": [[""], ["same"]],
            "response_b": [["an answer"], ["same"]],
            "labels": [None, None],
        },
        schema_overrides={"labels": pl.List(pl.Float64)},
    )
    rows.write_parquet(tmp_path / "t.parquet")
    config = BuildConfig(inputs=[f"{tmp_path / 't.parquet'}:canonical"], swap=True)
    build_dataset(config, tmp_path / "ds")
    data = load_dataset(tmp_path / "ds")
    assert data.ids == ["e", "e", "i", "i"]
    assert data.flags[0] & FLAG_EMPTY_A and not data.flags[0] & FLAG_EMPTY_B
    assert data.flags[1] & FLAG_EMPTY_B and not data.flags[1] & FLAG_EMPTY_A
    assert data.flags[2] & FLAG_IDENTICAL and data.flags[3] & FLAG_IDENTICAL
