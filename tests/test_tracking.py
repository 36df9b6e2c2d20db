"""`report_to`: a training run's records also go to TensorBoard and W&B
(`af.tracking`, issue 15, point 7), read back here from what each tracker
wrote; a missing tracker package is refused before anything trains; the
run directory with its `logs/` stays a run (overwrite, bundle, predict)."""

from __future__ import annotations

import json
import struct
import sys

import pytest

from strategies import train_extra  # noqa: E402

torch = train_extra("torch")
train_extra("transformers")

from arena_fast import tracking  # noqa: E402
from arena_fast.cli import main  # noqa: E402
from arena_fast.errors import ConfigError  # noqa: E402
from arena_fast.files import file_sha256  # noqa: E402
from arena_fast.runs import read_bundle  # noqa: E402
from arena_fast.tracking import scalars  # noqa: E402
from arena_fast.train import TrainConfig, train  # noqa: E402
from arena_fast.train_config import read_config_file  # noqa: E402
from keyword_rows import build_rows, keyword_rows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    return build_rows(keyword_rows(200, 0), root, max_length=128, folds=5, swap=True)


def _config(data, out, **kw) -> TrainConfig:
    settings = dict(data=str(data), max_tokens=512, lr=3e-3, log_every=1, max_steps=4)
    return TrainConfig(**{**settings, "out": str(out), **kw})


def _tensorboard_scalars(logs) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logs))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def _expected(logs: list) -> dict:
    """The scalars each tracker should hold: tag -> [(step, value)]."""
    out: dict = {}
    for record in logs:
        for tag, value in scalars(record).items():
            out.setdefault(tag, []).append((record["step"], value))
    return out


def test_tensorboard_holds_the_logged_losses_and_the_run_stays_a_run(small_dataset, tmp_path):
    run = tmp_path / "run"
    logs: list = []
    result = train(_config(small_dataset, run, report_to=["tensorboard"]), log=logs.append)
    got = _tensorboard_scalars(run / "logs")
    expected = _expected(logs)
    assert {"train/loss", "train/lr", "eval/log_loss", "eval/accuracy", "eval/tta_log_loss"} <= set(
        expected
    )
    assert set(got) == set(expected)
    for tag, points in expected.items():  # TensorBoard keeps float32
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    assert got["eval/log_loss"][-1][1] == pytest.approx(result["log_loss"], rel=1e-6)
    assert json.loads((run / "config.json").read_text())["report_to"] == ["tensorboard"]

    # The logs are no part of what the run predicts with: the bundle lists
    # none of them, and the weights are those of the same run untracked,
    # which replaces it (--overwrite accepts a run holding logs/) and
    # leaves none of the earlier run's events behind.
    bundle = read_bundle(run)
    assert not [name for name in bundle["files"] if name.startswith("logs")]
    weights = {n: file_sha256(run / n) for n in ("decoder.safetensors", "head.safetensors")}
    train(_config(small_dataset, run, overwrite=True))
    assert {n: file_sha256(run / n) for n in weights} == weights
    assert not list((run / "logs").glob("events.out.tfevents.*"))
    read_bundle(run)


def test_a_resumed_run_continues_the_tensorboard_curve(small_dataset, tmp_path):
    """Stopped at step 2 (checkpointed) and resumed to step 4: every step's
    loss once, the resumed process's events appended to the first's."""
    kw = dict(report_to=["tensorboard"], checkpoint_every=2)
    logs: list = []
    train(_config(small_dataset, tmp_path, max_steps=2, **kw), log=logs.append)
    train(_config(small_dataset, tmp_path, max_steps=4, resume=True, **kw), log=logs.append)
    assert len(list((tmp_path / "logs").glob("events.out.tfevents.*"))) == 2
    got = _tensorboard_scalars(tmp_path / "logs")
    assert [s for s, _ in got["train/loss"]] == [1, 2, 3, 4]
    assert [s for s, _ in got["eval/log_loss"]] == [2, 4]  # each stop ends evaluated
    assert [v for _, v in got["train/loss"]] == pytest.approx(
        [r["loss"] for r in logs if "loss" in r], rel=1e-6
    )


def _wandb_records(path):
    """The protobuf records of a W&B run file (`run-ID.wandb`: LevelDB's log
    format, a 7-byte header, then 32 KiB blocks of records each with a
    7-byte header: crc, length, type (1 full, 2 first, 3 middle, 4 last))."""
    from wandb.proto import wandb_internal_pb2

    raw, pos, block, parts = path.read_bytes(), 7, 32768, b""
    while pos + 7 <= len(raw):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if left < 7 or kind == 0:  # the block's padding
            pos += left
            continue
        parts += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            yield record
            parts = b""


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)  # "eval/log_loss" comes nested


def test_wandb_offline_run_holds_the_same_metrics(small_dataset, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_PROJECT", "WANDB_NAME"):
        monkeypatch.delenv(name, raising=False)
    run = tmp_path / "run"
    logs: list = []
    result = train(_config(small_dataset, run, report_to="wandb"), log=logs.append)
    (file,) = (run / "logs" / "wandb").glob("offline-run-*/run-*.wandb")
    got: dict = {}
    config = summary = None
    for record in _wandb_records(file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {_key(i): json.loads(i.value_json) for i in record.history.item}
            for tag, value in items.items():
                if not tag.startswith("_"):
                    got.setdefault(tag, []).append((record.history.step.num, value))
        elif kind == "run":
            config = {_key(i): json.loads(i.value_json) for i in record.run.config.update}
            assert record.run.project == "arena-fast" and record.run.display_name == "run"
        elif kind == "summary":
            summary = {**(summary or {}), **{_key(i): i.value_json for i in record.summary.update}}
    expected = _expected(logs)
    assert set(got) == set(expected) and {"train/loss", "eval/log_loss"} <= set(got)
    for tag, points in expected.items():
        assert got[tag] == points, tag  # JSON keeps every digit
    assert config["lr"] == 3e-3 and config["report_to"] == "wandb"
    assert json.loads(summary["kept/log_loss"]) == pytest.approx(result["log_loss"])


def test_a_missing_tracker_package_is_refused_before_training(
    small_dataset, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ConfigError, match=r"wandb package, which is not installed: pip install"):
        train(_config(small_dataset, tmp_path / "run", report_to=["wandb"]))
    assert not (tmp_path / "run").exists()  # nothing was started
    args = ["train", "--data", str(small_dataset), "--out", str(tmp_path / "cli")]
    assert main([*args, "--report-to", "tensorboard,wandb"]) == 1
    assert "pip install tensorboard" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


def test_report_to_from_the_command_line_and_yaml(tmp_path, capsys):
    from arena_fast.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--report-to", "tensorboard,wandb"])
    assert args.report_to == ("tensorboard", "wandb")
    assert parser.parse_args(["train", "--report-to", "none"]).report_to == ()
    settings = tmp_path / "run.yaml"
    settings.write_text("data: somewhere\nreport_to: [tensorboard]\n")
    config = TrainConfig.from_dict(read_config_file(settings))
    assert config.trackers() == ("tensorboard",)
    assert TrainConfig(data="d", report_to="wandb, tensorboard").trackers() == (
        "wandb",
        "tensorboard",
    )
    for bad, why in (("tensorbord", "known: tensorboard, wandb"), (3, "a list of names")):
        with pytest.raises(ConfigError, match=f"report_to.*{why}"):
            TrainConfig(data="d", report_to=bad).validate()
    assert main(["train", "--data", "d", "--report-to", "mlflow"]) == 1
    assert "report_to names 'mlflow'" in capsys.readouterr().err


def test_trackers_are_closed_however_the_run_ends(tmp_path, monkeypatch):
    """Closed when the block ends, failed or not, and those already open
    when a later one fails to start."""
    closed: list = []

    class Fake:
        def __init__(self, config, logs, step):
            self.name = "tb"

        def log(self, record):
            pass

        def close(self, failed):
            closed.append((self.name, failed))

    class Failing(Fake):
        def __init__(self, config, logs, step):
            raise ConfigError("wandb could not start a run")

    monkeypatch.setitem(tracking._TRACKERS, "tensorboard", Fake)
    monkeypatch.setitem(tracking._TRACKERS, "wandb", Failing)
    config = TrainConfig(data="d", report_to=["tensorboard"])
    with tracking.tracking(config, tmp_path, 0) as send:
        send({"step": 1, "loss": 1.0})
    with pytest.raises(RuntimeError), tracking.tracking(config, tmp_path, 0):
        raise RuntimeError("the step failed")
    assert closed == [("tb", False), ("tb", True)]
    config.report_to = ["tensorboard", "wandb"]
    with pytest.raises(ConfigError, match="could not start"):
        with tracking.tracking(config, tmp_path, 0):
            pass
    assert closed[-1] == ("tb", True)
