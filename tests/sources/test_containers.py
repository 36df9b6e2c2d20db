"""File containers: compression told by magic bytes, gzip / zstd streams,
CSV as records, the refusals (compressed parquet, bombs), and memory that
stays bounded while a compressed JSON-lines file streams."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import polars as pl
import pyarrow as pa
import pytest

from arena_fast.errors import InputError
from arena_fast.sources import read, streams
from arena_fast.sources.containers import (
    BadRecord,
    base_name,
    compression,
    container,
    iter_records,
    open_binary,
)

from .conftest import collect, one_line_error, shared_path


def zstd_bytes(path, data: bytes):
    with pa.output_stream(str(path), compression="zstd") as out:
        out.write(data)
    return path


def test_compression_is_told_by_magic_bytes(tmp_path):
    plain = tmp_path / "a.jsonl"
    plain.write_text('{"a": 1}\n')
    gz = tmp_path / "b.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"a": 1}\n'))
    zst = zstd_bytes(tmp_path / "c.jsonl.zst", b'{"a": 1}\n')
    misnamed = tmp_path / "d.jsonl"  # gzip bytes without the suffix
    misnamed.write_bytes(gz.read_bytes())
    assert [compression(p) for p in (plain, gz, zst, misnamed)] == [None, "gzip", "zstd", "gzip"]
    assert base_name(gz) == "b.jsonl" and base_name(zst) == "c.jsonl"
    for path in (plain, gz, zst, misnamed):
        with open_binary(path) as f:
            assert f.read() == b'{"a": 1}\n'
        assert container(path) == "jsonl"


def test_real_hh_rlhf_jsonl_gz_streams_record_by_record():
    """Before: `.jsonl.gz` was refused (only `.csv.gz` was read)."""
    path = shared_path("hh_rlhf_harmless_base_test.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        expected = [json.loads(line) for line in f if line.strip()]
    chunks = list(iter_records(path, ["chosen", "rejected"], 1000))
    assert [len(c) for c in chunks] == [1000, 1000, 312]
    assert [r for c in chunks for r in c] == expected


def test_json_array_and_lines_in_gz_and_zst(tmp_path):
    records = [{"i": i, "text": "x" * i} for i in range(50)]
    array = json.dumps(records).encode()
    lines = "".join(json.dumps(r) + "\n" for r in records).encode()
    files = [
        zstd_bytes(tmp_path / "a.json.zst", array),
        zstd_bytes(tmp_path / "l.json.zst", lines),  # JSON lines in a .json
        tmp_path / "a.json.gz",
        tmp_path / "l.ndjson.gz",
    ]
    files[2].write_bytes(gzip.compress(array))
    files[3].write_bytes(gzip.compress(lines))
    for path in files:
        got = [r for c in iter_records(path, ["i"], 7) for r in c]
        assert got == records, path


def test_compressed_parquet_and_unknown_names_are_refused(tmp_path):
    path = tmp_path / "t.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(path)
    gz = tmp_path / "t.parquet.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(InputError) as excinfo:
        container(gz)
    one_line_error(excinfo, str(gz), "compressed parquet", "decompress")
    other = tmp_path / "t.txt.gz"
    other.write_bytes(gzip.compress(b"x"))
    with pytest.raises(InputError) as excinfo:
        container(other)
    one_line_error(excinfo, str(other), ".csv", ".zst")


def test_a_corrupt_stream_is_one_line(tmp_path):
    data = gzip.compress(b"".join(b'{"a": %d}\n' % i for i in range(20000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as excinfo:
        collect(read(path, "chat1m"))
    one_line_error(excinfo, str(path))


def test_compression_bombs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(streams, "PARQUET_BOMB_BYTES", 1 << 16)
    big = json.dumps([{"a": "x" * (1 << 20)}]).encode()
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(big))
    with pytest.raises(InputError) as excinfo:
        list(iter_records(path, ["a"], 10))
    one_line_error(excinfo, str(path), "compression bomb")
    header = b"prompt,response_a,response_b\n"
    csv = zstd_bytes(tmp_path / "bomb.csv.zst", header + b'"[""' + b"x" * (1 << 21) + b'""]",,\n')
    before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(InputError) as excinfo:
        read(csv, "kaggle")
    one_line_error(excinfo, str(csv), "compression bomb")
    assert set(os.listdir(tempfile.gettempdir())) <= before  # the copy is gone


def test_csv_as_records(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('a,b,c\n1,"[""x"", null]",\n2,[not json,plain\n3,4,5,6\n', encoding="utf-8")
    (records,) = iter_records(path, ["a", "b", "c"], 10, csv_json=("b",))
    assert records[0] == {"a": "1", "b": ["x", None], "c": None}
    assert records[1] == {"a": "2", "b": "[not json", "c": "plain"}
    assert records[2] == BadRecord("4 fields, the header 3")
    (strings,) = iter_records(path, ["a", "b"], 10, csv_json=())
    assert strings[0]["b"] == '["x", null]'
    with pytest.raises(InputError) as excinfo:
        list(iter_records(path, ["a"], 10))
    one_line_error(excinfo, str(path), "nested lists", "CSV")


def test_csv_zst_records_and_invalid_utf8(tmp_path):
    path = zstd_bytes(tmp_path / "r.csv.zst", b"a,b\n1,2\n3,\xff\n")
    records = [r for c in iter_records(path, ["a"], 1, csv_json=()) for r in c]
    assert records == [{"a": "1", "b": "2"}, BadRecord("column b: invalid utf-8 (byte 0xff)")]


_STREAM = """
import gzip, json, resource, sys
from arena_fast.sources.containers import iter_records
path = sys.argv[1]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = sum(len(c) for c in iter_records(path, ["text"], 1000))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"records": n, "grown_kib": after - before}))
"""


@pytest.mark.slow
def test_streaming_a_compressed_file_keeps_memory_bounded(tmp_path):
    """256 MiB of JSON lines in about 1 MiB of zstd: read record by record,
    the process grows by far less than the data (one chunk at a time)."""
    line = (json.dumps({"text": "y" * 1000}) + "\n").encode()
    count = (256 << 20) // len(line)
    path = tmp_path / "big.jsonl.zst"
    with pa.output_stream(str(path), compression="zstd") as out:
        for _ in range(count // 1024):
            out.write(line * 1024)
    assert path.stat().st_size < 8 << 20
    script = textwrap.dedent(_STREAM)
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert result["records"] == count // 1024 * 1024
    assert result["grown_kib"] < 64 << 10, result  # under 64 MiB for 256 MiB read
