"""Issue 15, point 6: a quiet, complete, consistent CLI."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from arena_fast.cli import build_parser, main
from arena_fast.cli._args import Switch, flag_words
from arena_fast.dataset import BuildConfig
from strategies import train_extra

ROOT = Path(__file__).resolve().parent.parent


def test_train_extra_brings_matplotlib():
    """`report` and `inspect --plot` work after `pip install arena-fast[train]`."""
    text = (ROOT / "pyproject.toml").read_text()  # no tomllib on Python 3.9 / 3.10
    train = text.split("\ntrain = [", 1)[1].split("\n]", 1)[0]
    assert '"matplotlib' in train


@pytest.mark.slow
def test_cpu_lora_train_prints_no_bitsandbytes_kernel_notice(tmp_path):
    """bitsandbytes' "Failed to load CPU gemm_4bit_forward ..." (printed where
    the CPU has AVX512-BF16) is filtered; the run's own lines still print."""
    train_extra("peft")
    from arena_fast.dataset import build_dataset
    from keyword_rows import keyword_rows

    keyword_rows(60, 0).write_parquet(tmp_path / "rows.parquet")
    config = BuildConfig(inputs=[f"{tmp_path / 'rows.parquet'}:canonical"], max_length=128)
    build_dataset(config, tmp_path / "ds")
    argv = ["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run")]
    argv += ["--lora-r", "4", "--epochs", "1", "--max-tokens", "2048"]
    script = "import sys; from arena_fast.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "log loss" in done.stderr
    assert "gemm_4bit_forward" not in done.stdout + done.stderr


def test_the_notice_is_filtered_whatever_loads_bitsandbytes():
    """`import arena_fast` installs the filter (`arena_fast.notices`), so a
    script that imports transformers' Trainer or peft itself is quiet too;
    only that message is dropped (the logger still passes others)."""
    train_extra("peft")
    script = (
        "import logging, arena_fast\n"
        "from arena_fast.notices import BNB_CPU_NOTICE\n"
        "import peft\n"
        "from transformers import Trainer\n"
        "log = logging.getLogger('bitsandbytes.backends.cpu.ops')\n"
        "log.warning(BNB_CPU_NOTICE + ' from somewhere')\n"
        "log.warning('another message')\n"
        "from arena_fast.notices import BNB_INT8_CAST\n"
        "logging.getLogger('bitsandbytes.autograd._functions').warning(\n"
        "    BNB_INT8_CAST + ' from %s to float16 during quantization', 'torch.float32')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "gemm_4bit_forward" not in done.stdout + done.stderr
    assert "MatMul8bitLt" not in done.stdout + done.stderr
    assert "another message" in done.stderr


# -- help, flags, errors ----------------------------------------------------------


def _commands() -> dict:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_of_every_command_has_help_and_one_default():
    commands = _commands()
    assert len(commands) >= 9
    for name, parser in commands.items():
        formatter = parser.formatter_class(prog=name)
        for action in parser._actions:
            assert action.help and action.help.strip(), (name, action.option_strings)
            if action.default is None or action.default == []:  # nothing to say
                assert "%(default)" not in formatter._get_help_string(action), (name, action)
        text = re.sub(r"\s+", " ", parser.format_help())
        assert not re.search(r"\(default[^)]*\) \(default", text), (name, text)


def test_every_boolean_flag_is_a_switch_with_a_no_form():
    for name, parser in _commands().items():
        for action in parser._actions:
            assert not isinstance(
                action, (argparse._StoreTrueAction, argparse._StoreFalseAction)
            ), (
                name,
                action.option_strings,
            )
            if isinstance(action, Switch):
                on, off = action.option_strings
                assert off == "--no-" + on[2:], (name, on, off)


def test_switches_parse_both_spellings_and_the_old_values():
    commands = _commands()
    build = commands["build-dataset"]
    assert build.parse_args(["--swap"]).swap is True
    assert build.parse_args(["--swap", "--no-swap"]).swap is False
    assert (
        build.parse_args([]).swap is False
        and build.parse_args(["--no-overwrite"]).overwrite is False
    )
    train = commands["train"]
    assert train.parse_args(["--resume"]).resume is True
    assert train.parse_args(["--resume", "true"]).resume is True  # scripts of today
    assert train.parse_args(["--overwrite", "false"]).overwrite is False
    assert train.parse_args(["--no-gradient-checkpointing"]).gradient_checkpointing is False
    assert (
        train.parse_args(["--swap", "none"]).swap is None
    )  # Optional[bool]: "none" still means None
    assert "resume" not in vars(train.parse_args([]))  # unset: the config file's or the default
    predict = commands["predict"]
    base = ["--run", "r", "--data", "d"]
    # unset: swap TTA where the data has both orders (a reward run has none, and refuses --tta)
    assert predict.parse_args(base).tta is None
    assert predict.parse_args([*base, "--tta"]).tta is True
    assert predict.parse_args([*base, "--no-tta"]).tta is False
    merge = commands["merge-adapters"]
    parsed = merge.parse_args(["--merge", "a", "b", "--out", "m"])  # a switch takes no RUN
    assert parsed.merge is True and parsed.runs == ["a", "b"]
    inspect = commands["inspect"].parse_args(["--swapped", "DIR"])
    assert inspect.swapped is True and inspect.path == "DIR"


def test_commands_that_write_an_output_take_overwrite():
    commands = _commands()
    for name in (
        "build-dataset",
        "train",
        "merge-adapters",
        "synth",
        "inspect",
        "predict",
        "report",
        "export",
    ):
        assert "--overwrite" in commands[name]._option_string_actions, name
        assert "--no-overwrite" in commands[name]._option_string_actions, name


def test_one_default_max_length():
    commands = _commands()
    default = BuildConfig().max_length
    assert commands["build-dataset"].parse_args([]).max_length == default
    assert str(default) in commands["demo"].format_help()


def test_encode_only_demo_uses_the_shared_max_length(capsys):
    assert main(["demo", "--encode-only", "--rows", "3"]) == 0
    assert f"max_length={BuildConfig().max_length} " in capsys.readouterr().out


def test_errors_name_the_flag_not_the_python_setting(tmp_path, capsys):
    out = str(tmp_path / "ds")
    assert main(["build-dataset", "--out", out, "--demo-rows", "20", "--quiet"]) == 0
    assert main(["build-dataset", "--out", out, "--demo-rows", "20", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "pass --overwrite" in err and "overwrite=True" not in err, err
    assert main(["build-dataset", "--out", out, "--demo-rows", "20", "--quiet", "--overwrite"]) == 0


def test_an_existing_single_file_output_needs_overwrite(tmp_path, capsys):
    """`synth --out`, like every output, replaces an existing file only with
    --overwrite (the file is untouched by the refusal)."""
    out = tmp_path / "rows.csv"
    out.write_text("mine\n")
    assert main(["synth", "--rows", "3", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "pass --overwrite" in err, err
    assert out.read_text() == "mine\n"
    assert main(["synth", "--rows", "3", "--out", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("id,")


def test_inspect_plot_refuses_a_file_inside_the_dataset_and_an_existing_one(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="--plot needs the [plot] extra")
    data = tmp_path / "ds"
    assert main(["build-dataset", "--out", str(data), "--demo-rows", "20", "--quiet"]) == 0
    assert main(["inspect", str(data), "--plot", str(data / "lengths.png")]) == 1
    assert "inside" in capsys.readouterr().err
    assert not (data / "lengths.png").exists()
    png = tmp_path / "lengths.png"
    png.write_bytes(b"old")
    assert main(["inspect", str(data), "--plot", str(png)]) == 1
    assert png.read_bytes() == b"old"
    assert main(["inspect", str(data), "--plot", str(png), "--overwrite"]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_predict_refuses_an_existing_output_before_loading_the_run(tmp_path, capsys):
    """The refusal comes first: no run is even read (this one does not exist)."""
    sub = tmp_path / "submission.csv"
    sub.write_text("mine\n")
    argv = ["predict", "--run", str(tmp_path / "no-run"), "--data", str(tmp_path / "no-data")]
    assert main([*argv, "--out", str(sub)]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "s.csv"), "--predictions", str(sub)]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    data = tmp_path / "ds"
    data.mkdir()
    assert main([*argv[:3], "--data", str(data), "--out", str(data / "s.csv")]) == 1
    assert "inside" in capsys.readouterr().err
    assert sub.read_text() == "mine\n"


def test_the_run_argument_has_one_name():
    """`predict --run` and `compare --run` (compare's older `--model` still
    parses to the same setting)."""
    commands = _commands()
    for name in ("predict", "compare"):
        assert "--run" in commands[name]._option_string_actions, name
    for flag in ("--run", "--model"):
        parsed = commands["compare"].parse_args([flag, "R", "q", "a", "b"])
        assert parsed.run_dir == "R" and parsed.texts == ["q", "a", "b"]


def test_flag_words_translates_only_the_command_s_flags():
    options = {"--overwrite", "--no-overwrite", "--swap", "--no-swap"}
    assert flag_words("x exists; pass overwrite=True (--overwrite)", options) == (
        "x exists; pass --overwrite"
    )
    assert flag_words("pass swap=False to keep one order", options) == (
        "pass --no-swap to keep one order"
    )
    assert flag_words("pass large=True for a large list", options) == (
        "pass large=True for a large list"
    )
