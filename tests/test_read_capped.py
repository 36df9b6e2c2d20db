"""`arena_fast.files.read_capped`: the one reader of small whole files with a
size cap (a settings file, a dataset's manifest)."""

from __future__ import annotations

import pytest

from arena_fast.errors import ConfigError, InputError
from arena_fast.files import read_capped


def test_a_file_up_to_the_cap_is_read_whole(tmp_path):
    path = tmp_path / "small.json"
    path.write_bytes(b"x" * 100)
    assert read_capped(path, 100, "a test file", InputError) == b"x" * 100
    assert read_capped(str(path), 1000, "a test file", InputError) == b"x" * 100


def test_a_larger_file_is_refused_with_the_callers_error(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"x" * 101)
    with pytest.raises(ConfigError, match=r"big\.yaml: larger than 100 bytes; not a settings file"):
        read_capped(path, 100, "a settings file", ConfigError)


def test_a_huge_file_is_not_read_whole(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(1 << 32)  # sparse: 4 GiB that cost no disk
    with pytest.raises(InputError, match="larger than 16 bytes"):
        read_capped(path, 16, "a manifest", InputError)


def test_an_unreadable_path_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.json: cannot read: No such file"):
        read_capped(tmp_path / "missing.json", 10, "a manifest", InputError)
    with pytest.raises(InputError, match="cannot read: Is a directory"):
        read_capped(tmp_path, 10, "a manifest", InputError)
