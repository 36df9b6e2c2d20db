"""Finite or refused, on the training and prediction side (issue 13: D3, D4,
D8, D13 and the rough edges of runs): every setting is type- and
range-checked before anything is read or allocated, YAML settings files
without aliases and within 1 MiB, a step whose loss is not finite stops the
run without a finished bundle, `predict` never writes a non-finite
probability, and what a run directory holds (config.json, bundle.json,
checkpoints) is untrusted."""

from __future__ import annotations

import dataclasses
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast.cli import main  # noqa: E402
from arena_fast.errors import ArenaFastError, ConfigError, InputError  # noqa: E402
from arena_fast.labels import space_of_width  # noqa: E402
from arena_fast.runs import read_bundle, write_bundle_file  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from arena_fast.train_config import read_config_file  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("finite")
    return build_rows(keyword_rows(60, 0), root, max_length=96, folds=2, swap=True)


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory) -> TrainConfig:
    """A run stopped after two of its four steps, with a checkpoint at each."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("finite-run") / "run"
    config = TrainConfig(
        data=str(dataset), epochs=4, max_steps=2, checkpoint_every=1, log_every=1, out=str(out)
    )
    train(config)
    return config


def _copy(run: TrainConfig, tmp_path: Path) -> Path:
    shutil.copytree(run.out, tmp_path / "run")
    return tmp_path / "run"


def _rehash(run_dir: Path) -> None:
    """bundle.json made to match the run's files again (a forged run)."""
    write_bundle_file(run_dir, json.loads((run_dir / "bundle.json").read_text()))


# -- D4, D13: every setting checked where it is read ----------------------------------


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--lr", "nan", "lr must be a finite number"),
        ("--lr", "inf", "lr must be a finite number"),
        ("--lr", "1e30", "lr must be in (0, 10]"),
        ("--lr", "-1", "lr must be in (0, 10]"),
        ("--head-lr", "nan", "head_lr must be a finite number"),
        ("--weight-decay", "nan", "weight_decay must be a finite number"),
        ("--weight-decay", "-0.1", "weight_decay must be >= 0"),
        ("--warmup", "1", "warmup must be in [0, 1)"),
        ("--lora-dropout", "5", "lora_dropout must be in [0, 1)"),
        ("--temperature", "0", "temperature must be > 0"),
        ("--temperature", "inf", "temperature must be a finite number"),
        ("--max-seconds", "0", "max_seconds must be > 0"),
        ("--seed", str(2**70), "seed must be in [0, 4294967295]"),
        ("--seed", "-1", "seed must be in [0, 4294967295]"),
        ("--lora-r", "-1", "lora_r must be in [0, 4096]"),
        ("--lora-r", str(10**9), "lora_r must be in [0, 4096]"),
        ("--lora-alpha", "0", "lora_alpha must be in [1, 65536]"),
        ("--max-steps", "0", "max_steps must be >= 1"),
        ("--max-steps", "-1", "max_steps must be >= 1"),
        ("--checkpoint-every", "0", "checkpoint_every must be >= 1"),
        ("--epochs", "0", "epochs must be in [1, 10000]"),
        ("--fold", "-1", "fold must be >= 0"),
    ],
)
def test_a_bad_option_is_refused_up_front(dataset, tmp_path, capsys, option, value, message):
    out = tmp_path / "run"
    code = main(["train", "--data", str(dataset), "--out", str(out), option, value])
    err = capsys.readouterr().err
    assert code == 1, err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": "abc"}, "lr must be a number, got 'abc'"),
        ({"temperature": [1]}, "temperature must be a number"),
        ({"lora_r": 1e9}, "lora_r must be an integer"),
        ({"epochs": True}, "epochs must be an integer, got True"),
        ({"resume": 1}, "resume must be true or false"),
        ({"swap": "yes"}, "swap must be true or false"),
        ({"model": 3}, "model must be a string"),
        ({"max_tokens": None}, "max_tokens must be set"),
        ({"lr": 10**400}, "lr must be a finite number"),
        ({"head": "cnn"}, "head must be one of"),
        ({"nonsense": 1}, "unknown training settings ['nonsense']"),
    ],
)
def test_from_dict_checks_every_field(values, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"data": "d", **values})
    assert message in str(info.value)


def test_the_lora_settings_of_the_model_api_are_checked():
    from arena_fast.model import Lora

    for bad in ({"r": 10**9}, {"r": 0}, {"dropout": 1.0}, {"alpha": float("nan")}):
        with pytest.raises(ConfigError, match="lora"):
            Lora.of(bad)


# -- D8: YAML settings files ------------------------------------------------------------


LAUGHS = "\n".join(
    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + [f"temperature: [{','.join(['*a8'] * 9)}]"]
)


def test_yaml_aliases_are_refused_in_bounded_memory(tmp_path):
    """Nine levels of nested aliases (under 1 KB) expand to 9^10 strings:
    gigabytes once composed. Refused at the first anchor, in a process
    limited to 1 GiB of address space."""
    config = tmp_path / "laughs.yaml"
    config.write_text(LAUGHS + "\n")
    assert config.stat().st_size < 1024

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    code = "import sys; from arena_fast.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["train", "--config", str(config), "--data", "d", "--out", str(tmp_path / "r")]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"{config}, line 1: YAML anchors and aliases" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr: [1\nepochs: 2\n", "line 2, column 7: not valid YAML"),
        ("lr: 1\nlr: 2\n", "line 2: 'lr' is set twice"),
        ("- 1\n- 2\n", "expected a mapping of settings"),
        ('lr: "abc"\n', "lr must be a number, got 'abc'"),
        ("temperature: [1]\n", "temperature must be a number"),
        ("x: &a 1\n", "line 1: YAML anchors and aliases"),
        ("lr: " + "[" * 100 + "]" * 100 + "\n", "nested more than 16 deep"),
        ("lr: " + "9" * 5000 + "\n", "not valid YAML"),
        ("lr: !!python/object/apply:os.system [echo]\n", "not valid YAML"),
    ],
)
def test_a_bad_settings_file_is_a_clear_error(tmp_path, capsys, text, message):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_config_file(config)
    assert str(info.value).startswith(str(config)) and message in str(info.value)
    assert main(["train", "--config", str(config), "--data", "d"]) == 1
    assert message in capsys.readouterr().err


def test_a_settings_file_is_capped_and_reads_yaml_1_2_floats(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
        read_config_file(big)
    ok = tmp_path / "ok.yaml"
    ok.write_text("lr: 2e-4\nfold: null\nresume: true\n")
    assert read_config_file(ok) == {"lr": 2e-4, "fold": None, "resume": True}


# -- D3: not finite, refused ------------------------------------------------------------


def test_a_non_finite_loss_stops_the_run_without_a_bundle(
    run, dataset, tmp_path, monkeypatch, capsys
):
    """The second step's loss is NaN (as a learning rate too high or a label
    that overflows makes it): the run stops there with an error naming the
    step, no bundle.json (an earlier finished run's is removed too), exit 1."""
    import arena_fast.losses as losses

    torch.set_num_threads(1)
    calls = []
    real = losses.cross_entropy

    def poisoned(logits, labels):
        calls.append(1)
        loss = real(logits, labels)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(losses, "cross_entropy", poisoned)
    out = _copy(run, tmp_path)  # an earlier finished run, replaced by this one
    assert (out / "bundle.json").is_file()
    argv = ["train", "--data", str(dataset), "--out", str(out), "--epochs", "2", "--quiet"]
    assert main(argv) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "true"]) == 1
    err = capsys.readouterr().err
    assert "step 2 (epoch 1): the loss is nan" in err and "Traceback" not in err, err
    assert not (out / "bundle.json").exists()


def test_non_finite_weights_are_never_saved(run, tmp_path):
    from arena_fast.model import load_classifier
    from arena_fast.weights import save_weights

    model = load_classifier("tiny-gemma2", seed=0)
    with torch.no_grad():
        model.head.weight[0, 0] = float("inf")
    with pytest.raises(ArenaFastError, match="after step 7 the trained weight head.weight"):
        save_weights(model, tmp_path, 7)
    assert not (tmp_path / "head.safetensors").exists()


def test_predict_never_writes_a_non_finite_probability(run, dataset, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    run_dir = _copy(run, tmp_path)
    head = load_file(str(run_dir / "head.safetensors"))
    head["bias"][1] = float("nan")
    save_file(head, str(run_dir / "head.safetensors"))
    _rehash(run_dir)
    out = tmp_path / "sub.csv"
    code = main(["predict", "--run", str(run_dir), "--data", str(dataset), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "row 0 (id '0'): the model's logits" in err and "not finite" in err, err
    assert not out.exists()


@dataclasses.dataclass
class _Rows:
    """What training reads of an `ArenaDataset`, holding what a dataset
    should never hold (the canonical reader rejects it; older datasets may)."""

    labels: np.ndarray
    teacher_logits: Optional[list]
    path: Path = Path("ds")
    swapped: bool = False

    @property
    def space(self):  # the label space of its labels' width
        return space_of_width(self.labels.shape[1])

    @property
    def ids(self) -> list:
        return [str(i) for i in range(len(self.labels))]

    def __len__(self) -> int:
        return len(self.labels)


@pytest.mark.parametrize(
    "labels, teachers, message",
    [
        ([[1, 0, 0], [np.inf, 0, 0]], None, "row 1 (id '1'): labels [inf, 0.0, 0.0]"),
        ([[1, 0, 0], [0, 1, 0]], [[[1, 2, 3]], []], "row 1 (id '1'): teacher_logits must be"),
        ([[1, 0, 0], [0, 1, 0]], [[[1, 2, 3]], [[1, 2]]], "row 1 (id '1'): teacher_logits must"),
        ([[1, 0, 0], [0, 1, 0]], [[[1, np.nan, 3]], None], "row 0 (id '0'): teacher_logits"),
        ([[1, 0, 0], [0, 1, 0]], [[[1, 2, 3]], [[1, 2, 3], [3, 2, 1]]], "[1, 2] teachers"),
    ],
)
def test_training_rows_with_bad_labels_or_teacher_logits_are_refused(labels, teachers, message):
    """What the canonical reader should already have rejected (sources/), a
    dataset may still hold: training refuses it before the model is built,
    not with a crash mid-epoch or a NaN loss."""
    from arena_fast.train import _check_training_rows

    data = _Rows(np.asarray(labels, dtype=np.float32), teachers)
    with pytest.raises(InputError) as info:
        _check_training_rows(data, np.arange(2), TrainConfig(data="ds"))
    assert message in str(info.value)


def test_a_dataset_with_nothing_to_train_on_is_refused(tmp_path, capsys):
    """No labelled rows (or, in a dataset an older build left, no rows at
    all: builds now refuse to write one): refused, not an untrained run."""
    import polars as pl

    from arena_fast.train import _check_training_rows

    frame = keyword_rows(6, 0)
    frame = frame.with_columns(pl.lit(None, dtype=pl.List(pl.Float64)).alias("labels"))
    data = build_rows(frame, tmp_path, max_length=96, folds=2)
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "(every fold but 0): no labelled rows to train on" in err, err
    assert not (out / "bundle.json").exists()
    with pytest.raises(InputError, match="the dataset holds no rows"):
        _check_training_rows(_Rows(np.zeros((0, 3)), None), np.arange(0), TrainConfig(data="d"))


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_out_over_the_dataset_is_refused_before_training(dataset, tmp_path, where):
    copy = tmp_path / "data" / "ds"
    shutil.copytree(dataset, copy)
    out = {"same": copy, "parent": copy.parent, "inside": copy / "run"}[where]
    before = sorted(p.name for p in copy.iterdir())
    with pytest.raises(ConfigError, match="the dataset"):
        train(TrainConfig(data=str(copy), out=str(out)))
    assert sorted(p.name for p in copy.iterdir()) == before


def test_out_that_is_not_a_run_is_refused_before_training(dataset, tmp_path, capsys):
    """A directory holding a user's own config.json is not a run: nothing in
    it is overwritten."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "notes.txt").write_text("keep")
    argv = ["train", "--data", str(dataset), "--out", str(out), "--quiet"]
    assert main(argv) == 1
    assert "is not an arena-fast training run" in capsys.readouterr().err
    assert (out / "config.json").read_text() == '{"my": "settings"}'
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "notes.txt"]


# -- D13: run directories are untrusted -------------------------------------------------


@pytest.mark.parametrize(
    "config_edit, message",
    [
        ({"lora_r": 10**9}, "lora_r must be in [0, 4096]"),
        ({"lora_r": 1e9}, "lora_r must be an integer"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"seed": -5}, "seed must be in"),
    ],
)
def test_a_runs_config_is_validated_before_the_model_is_built(run, tmp_path, config_edit, message):
    from arena_fast.predict import load_run

    run_dir = _copy(run, tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, **config_edit}))
    _rehash(run_dir)
    with pytest.raises(ConfigError) as info:
        load_run(run_dir)
    assert str(info.value).startswith(str(run_dir / "config.json")) and message in str(info.value)


def test_a_run_written_when_zero_meant_no_limit_still_loads(run, tmp_path):
    from arena_fast.runs import read_run_config

    run_dir = _copy(run, tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    config.update(max_steps=0, checkpoint_every=0, max_seconds=0)
    (run_dir / "config.json").write_text(json.dumps(config))
    loaded = read_run_config(run_dir)
    assert (loaded.max_steps, loaded.checkpoint_every, loaded.max_seconds) == (None, None, None)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda b: {**b, "files": {**b["files"], "/etc/hostname": "0"}}, "'/etc/hostname', not"),
        (lambda b: {**b, "files": {**b["files"], "../x": "0"}}, "'../x', not a file"),
        (lambda b: {**b, "files": {**b["files"], "sub/x": "0"}}, "'sub/x', not a file"),
        (lambda b: {**b, "files": ["config.json"]}, "'files' must map"),
        (lambda b: {k: v for k, v in b.items() if k != "encoder"}, "'encoder' must be"),
        (lambda b: [], "expected a JSON object"),
    ],
)
def test_a_bundle_listing_files_outside_the_run_is_refused(run, tmp_path, edit, message):
    run_dir = _copy(run, tmp_path)
    bundle = json.loads((run_dir / "bundle.json").read_text())
    (run_dir / "bundle.json").write_text(json.dumps(edit(bundle)))
    with pytest.raises(ConfigError, match="bundle.json") as info:
        read_bundle(run_dir)
    assert message in str(info.value)


def test_a_bundle_file_linked_out_of_the_run_is_refused(run, tmp_path):
    run_dir = _copy(run, tmp_path)
    outside = tmp_path / "metrics.jsonl"
    shutil.move(run_dir / "metrics.jsonl", outside)
    (run_dir / "metrics.jsonl").symlink_to(outside)
    with pytest.raises(ConfigError, match="'metrics.jsonl', not a file directly inside"):
        read_bundle(run_dir)


@pytest.mark.parametrize("state", ['{"step": "x"}', "[2]", '{"step": [1]}', '{"step": -1}', "{"])
def test_a_checkpoint_state_of_the_wrong_types_is_a_clear_error(run, tmp_path, state):
    run_dir = _copy(run, tmp_path)
    (run_dir / "checkpoint" / "state.json").write_text(state)
    config = dataclasses.replace(run, out=str(run_dir), resume=True, max_steps=3)
    with pytest.raises(ConfigError, match="state.json"):
        train(config)


def test_a_full_disk_while_saving_is_a_clear_error(tmp_path, monkeypatch):
    """Weights and checkpoints written to a full disk (the errors safetensors
    and torch raise for ENOSPC): an ArenaFastError naming the path, not a
    SafetensorError traceback, and no half-written checkpoint left behind."""
    import safetensors.torch
    from safetensors import SafetensorError

    from arena_fast.model import load_classifier
    from arena_fast.weights import save_checkpoint, save_weights

    def full(*_args, **_kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    model = load_classifier("tiny-gemma2", seed=0)
    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(ArenaFastError, match="head.safetensors: cannot write .*StorageFull"):
        save_weights(model, tmp_path, 1)
    monkeypatch.undo()

    def torch_full(*_args, **_kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64")

    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    save_checkpoint(tmp_path / "checkpoint", model, optimizer, scheduler, 1)
    monkeypatch.setattr(torch, "save", torch_full)
    with pytest.raises(ArenaFastError, match="checkpoint.tmp: cannot write"):
        save_checkpoint(tmp_path / "checkpoint", model, optimizer, scheduler, 2)
    assert not (tmp_path / "checkpoint.tmp").exists()
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 1}


# -- rough edge: a kill at the checkpoint rename ----------------------------------------


def test_resume_after_a_kill_between_the_checkpoint_renames(run, tmp_path):
    """Killed after `checkpoint` became `checkpoint.old` and before
    `checkpoint.tmp` became `checkpoint`: the resume continues from the old
    one (step 2 done: the next logged step is 3), never from step 1."""
    run_dir = _copy(run, tmp_path)
    (run_dir / "checkpoint").rename(run_dir / "checkpoint.old")
    (run_dir / "checkpoint.tmp").mkdir()
    (run_dir / "checkpoint.tmp" / "trained.safetensors").write_bytes(b"partial")
    logs: list = []
    config = dataclasses.replace(run, out=str(run_dir), resume=True, max_steps=3)
    train(config, log=logs.append)
    steps = [r["step"] for r in logs if "loss" in r]
    assert steps == [3], logs
    assert not (run_dir / "checkpoint.old").exists() and not (run_dir / "checkpoint.tmp").exists()
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["step"] == 3


def test_resume_with_only_an_interrupted_checkpoint_is_refused(run, tmp_path):
    run_dir = _copy(run, tmp_path)
    (run_dir / "checkpoint").rename(run_dir / "checkpoint.tmp")
    (run_dir / "checkpoint.tmp" / "state.json").unlink()
    config = dataclasses.replace(run, out=str(run_dir), resume=True, max_steps=3)
    with pytest.raises(ConfigError, match="no complete checkpoint to resume from"):
        train(config)


# -- what prediction reads back ----------------------------------------------------------


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("probs", [[0.2, 0.3, np.nan]], "row 0, column 'probs'"),
        ("probs", [[0.2, 0.3, 1.5]], "row 0, column 'probs'"),
        ("logits", [[0.0, np.inf, 1.0]], "row 0, column 'logits'"),
        ("labels", [[-1.0, 0.0, 1.0]], "row 0, column 'labels'"),
        ("probs", ["a"], "column 'probs' must be Array(Float64, K), K 2, 3 or 4"),
    ],
)
def test_a_prediction_table_holding_non_finite_values_is_refused(tmp_path, column, values, message):
    import polars as pl

    from arena_fast.diagnostics import read_predictions

    table = {"id": ["x"], "probs": [[0.2, 0.3, 0.5]], column: values}
    schema = {"id": pl.String, "probs": pl.Array(pl.Float64, 3)}
    if column != "probs" or not isinstance(values[0], str):
        schema[column] = pl.Array(pl.Float64, 3)
    else:
        schema[column] = pl.String
    pl.DataFrame(table, schema=schema).write_parquet(tmp_path / "p.parquet")
    with pytest.raises(InputError) as info:
        read_predictions(tmp_path / "p.parquet")
    assert message in str(info.value)


def test_api_settings_of_the_model_and_losses_are_checked():
    from arena_fast.losses import distillation_loss
    from arena_fast.model import load_classifier

    with pytest.raises(ConfigError, match=r"seed must be in \[0, 4294967295\]"):
        load_classifier("tiny-gemma2", seed=2**70)
    logits = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="temperature must be a finite positive number"):
        distillation_loss(logits, None, torch.zeros(2, 1, 3), temperature=float("nan"))


def test_compare_refuses_deeply_nested_json(run, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("[" * 100_000 + "]" * 100_000))
    assert main(["compare", "--run", run.out]) == 1
    err = capsys.readouterr().err
    assert "standard input: not a JSON array" in err and "Traceback" not in err
