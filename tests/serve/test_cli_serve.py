"""`arena-fast serve` on the command line: loopback unless --allow-remote,
what it refuses before serving (one line each, no traceback), and a real
start and stop in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from arena_fast.cli import main
from arena_fast.cli.serve import check_host, is_loopback
from arena_fast.errors import ConfigError


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "0:0:0:0:0:0:0:1"]
)
def test_loopback_hosts(host):
    assert is_loopback(host)
    check_host(host, allow_remote=False)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "localhost.evil", ""]
)
def test_other_hosts_need_allow_remote(host):
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_host(host, allow_remote=False)
    check_host(host, allow_remote=True)


def run_cli(args, capsys) -> tuple[int, str]:
    code = main(["serve", *args])
    err = capsys.readouterr().err
    return code, err


def test_a_remote_host_is_refused_before_anything_is_read(capsys, tmp_path):
    code, err = run_cli(["--host", "0.0.0.0", "--run", str(tmp_path / "missing")], capsys)
    assert code == 1
    assert err.count("\n") == 1 and "--allow-remote" in err and "Traceback" not in err


def test_directories_are_checked_up_front(capsys, tmp_path):
    code, err = run_cli(["--run", str(tmp_path)], capsys)
    assert code == 1 and "not a run directory" in err and err.count("\n") == 1
    code, err = run_cli(["--data", str(tmp_path / "nope")], capsys)
    assert code == 1 and "not a dataset directory" in err


def test_a_port_out_of_range_or_taken_is_one_line(capsys):
    code, err = run_cli(["--port", "70000"], capsys)
    assert code == 1 and "--port must be in [0, 65535]" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, err = run_cli(["--port", str(port)], capsys)
    assert code == 1 and f"cannot listen on 127.0.0.1 port {port}" in err
    assert "Traceback" not in err


def test_a_missing_extra_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` fails
    code, err = run_cli([], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "needs the [serve] extra (uvicorn is missing)" in err
    assert "pip install 'arena-fast[serve]'" in err


def test_it_serves_until_interrupted(serve_dataset):
    pytest.importorskip("uvicorn")
    script = "import sys; from arena_fast.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", script, "serve", "--data", str(serve_dataset)]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stderr.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        with urllib.request.urlopen(url.group(1) + "compare", timeout=30) as response:
            assert response.status == 200
            assert "data:ds" in response.read().decode()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
