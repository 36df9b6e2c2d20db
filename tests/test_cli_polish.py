"""Issue 15, point 6: a quiet, complete, consistent CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    from arena_fast.dataset import BuildConfig, build_dataset
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
