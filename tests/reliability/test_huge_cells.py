"""Bounded by input size, not content (issue 13, D6): a Kaggle CSV cell too
large to hold is streamed, its turns clipped while parsed, to the tokens the
whole-cell path gives; a big cell elsewhere is an error naming its row and
column. And the CSV files that used to give misleading errors or drop every
row (CR-only lines, UTF-16, Python-repr lists) are one clear InputError."""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import polars as pl
import pytest

import arena_fast as af
from arena_fast.errors import InputError
from arena_fast.reference.turns import CLIP_KEEP_BYTES, MAX_TURN_BYTES
from arena_fast.sources import kaggle
from arena_fast.synth import COLUMNS

HEADER = list(COLUMNS)
K = CLIP_KEEP_BYTES


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    return path


def row(i: int, prompt: str = '["p"]', a: str = '["a"]', b: str = '["b"]') -> list[str]:
    return [str(i), "m1", "m2", prompt, a, b, "1", "0", "0"]


def long_turn_cell(first: str = "short") -> str:
    """A JSON cell with a 3 MB turn: a 4-byte character across the head's
    cut, a 3-byte one across the tail's, escapes (one a lone surrogate,
    one a pair) on the way."""
    head = "a" * (K - 2) + "😀" * 50
    middle = "word é " * (2 * K // 8)
    tail = "€" * (K // 3 + 40)
    body = json.dumps(head + "\n" + middle, ensure_ascii=False)[:-1]
    body += r"\ud83d \ud83d\ude00 \u20ac" + json.dumps(tail, ensure_ascii=False)[1:]
    return f'["{first}", {body}, null]'


def dataset(out: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    shards = pl.concat([pl.read_parquet(out / s["file"]) for s in manifest["shards"]])
    dropped = pl.read_parquet(out / "dropped.parquet")
    return shards.sort("input", "row"), dropped, manifest["counts"]


def build(path: Path, out: Path, **options) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    options = {"max_length": 256, "folds": 2, **options}
    af.build_dataset(af.BuildConfig(inputs=[str(path)], **options), out)
    return dataset(out)


@pytest.fixture
def whole_cells(monkeypatch):
    """Read every cell whole, as before streaming existed (the turns
    clipped after parsing, in the core)."""

    def whole() -> None:
        monkeypatch.setattr(kaggle, "_TEXT_CELL_BYTES", 1 << 62)
        monkeypatch.setattr(kaggle, "_CELL_BYTES", 1 << 62)

    return whole


@pytest.fixture
def copies(monkeypatch) -> list:
    """What each scan for long cells returned (None: no copy was made)."""
    made: list = []
    scan = kaggle._core.clip_csv_cells

    def spy(*args):
        made.append(scan(*args))
        return made[-1]

    monkeypatch.setattr(kaggle._core, "clip_csv_cells", spy)
    return made


# -- D6: the clip happens while parsing ------------------------------------------
@pytest.mark.parametrize("name", ["long.csv", "long.csv.gz"])
def test_a_long_turn_gives_the_tokens_of_the_whole_cell_path(tmp_path, whole_cells, copies, name):
    rows = [row(0), row(1, a=long_turn_cell(), b=long_turn_cell("other")), row(2, prompt='["q"]')]
    path = write_csv(tmp_path / name, rows)
    streamed = build(path, tmp_path / "streamed")
    assert copies[-1]["repaired"] == [(1, 1 | 2 | 8), (1, 1 | 2 | 8)]
    whole_cells()
    whole = build(path, tmp_path / "whole")
    assert streamed[0].equals(whole[0])
    assert streamed[1].equals(whole[1])
    assert streamed[2] == whole[2]
    assert streamed[2]["repairs"]["clipped"] == 1 and streamed[2]["repaired"] == 1
    # Clipped, the null and the lone surrogate repaired, the turns ragged.
    assert streamed[0]["repairs"].to_list() == [0, 1 | 2 | 4 | 8, 0]


def test_every_cell_streamed_gives_the_same_dataset(
    tmp_path, data_dir, whole_cells, copies, monkeypatch
):
    """With the limits at 0 every text cell takes the streaming path: on
    real rows and on rows with every repair and parse error, the dataset
    (tokens, flags, repairs, drops and their details) is the same."""
    with open(data_dir / "kaggle_train_head100.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:41]
    hostile = [
        ('["a", null]', '["\\ud83d x", "\\ude00"]', '["b"]'),
        ('["a"', '["x"]', '["y"]'),  # unterminated list
        ('["p"]', "['python']", '["y", 3]'),  # the first bad column is named
        ('["p", "q"]', '["x"]', "[]"),  # ragged
        ("", '["x"]', '["y"]'),  # empty cell
        (' [ "p" ] ', '["\\u00e9\\n\\"\\\\\\/"]', '["\\u0001", "\\t"]'),
        ('["p"] x', '["x"]', '["y"]'),
    ]
    rows += [row(1000 + i, *cells) for i, cells in enumerate(hostile)]
    path = write_csv(tmp_path / "mixed.csv", rows)
    monkeypatch.setattr(kaggle, "_TEXT_CELL_BYTES", 0)
    streamed = build(path, tmp_path / "streamed")
    assert len(copies[-1]["bad"]) == 4  # 1006: prompt, 1002: response_a and _b
    whole_cells()
    whole = build(path, tmp_path / "whole")
    assert streamed[0].equals(whole[0])
    assert streamed[1].equals(whole[1])
    assert streamed[2] == whole[2]
    bad_text = streamed[1].filter(pl.col("reason") == "bad_text")
    assert bad_text["id"].to_list() == ["1001", "1002", "1006"]
    assert bad_text["detail"][1].startswith("column response_a: ")


def test_a_bad_long_cell_is_dropped_as_the_whole_cell_path_drops_it(tmp_path, whole_cells, copies):
    broken = long_turn_cell()[:-1] + ", 3]"
    path = write_csv(tmp_path / "broken.csv", [row(0), row(1, prompt=broken)])
    streamed = build(path, tmp_path / "streamed")
    assert [bad[:2] for bad in copies[-1]["bad"]] == [(1, "prompt")]
    whole_cells()
    whole = build(path, tmp_path / "whole")
    assert streamed[1].equals(whole[1])
    detail = streamed[1]["detail"][0]
    assert detail.startswith("column prompt: invalid JSON turn list at character ")


def test_a_long_cell_that_is_not_utf8_names_row_line_and_column(tmp_path, whole_cells):
    # A line break inside the long cell, invalid UTF-8 near its end.
    cell = b'["' + b"x" * (3 * K) + b'",\n"\xff"]'
    with open(tmp_path / "bad.csv", "wb") as f:
        f.write((",".join(HEADER) + '\n1,m,m,"[]","[]","[]",1,0,0\n').encode())
        f.write(b'2,m,m,"' + cell.replace(b'"', b'""') + b'","[]","[]",1,0,0\n')
    with pytest.raises(InputError) as streamed:
        build(tmp_path / "bad.csv", tmp_path / "streamed")
    whole_cells()
    with pytest.raises(InputError) as whole:
        build(tmp_path / "bad.csv", tmp_path / "whole")
    assert str(streamed.value) == str(whole.value)
    assert "row 1 (line 4), column prompt: invalid utf-8 (byte 0xff)" in str(streamed.value)


def test_line_numbers_after_a_clipped_cell_are_the_files(tmp_path, whole_cells):
    """polars reads the copy; an error after a replaced cell that held line
    breaks still names the file's line."""
    cell = '[\n\n"' + "x" * (3 * K) + '"\n]'
    with open(tmp_path / "late.csv", "wb") as f:
        f.write((",".join(HEADER) + "\n").encode())
        f.write(('1,m,m,"' + cell.replace('"', '""') + '","[]","[]",1,0,0\n').encode())
        f.write(b'2,m,m,"[]","[""\xfe""]","[]",1,0,0\n')
    with pytest.raises(InputError) as streamed:
        build(tmp_path / "late.csv", tmp_path / "streamed")
    whole_cells()
    with pytest.raises(InputError) as whole:
        build(tmp_path / "late.csv", tmp_path / "whole")
    assert str(streamed.value) == str(whole.value)
    assert "row 1 (line 6), column response_a: invalid utf-8 (byte 0xfe)" in str(streamed.value)


@pytest.mark.parametrize("column", ["id", "model_b", "winner_tie"])
def test_a_big_cell_outside_the_text_columns_is_an_error(tmp_path, column):
    cells = row(1)
    cells[HEADER.index(column)] = "x" * (MAX_TURN_BYTES + 1)
    path = write_csv(tmp_path / "big.csv.gz", [row(0), cells])
    with pytest.raises(InputError) as excinfo:
        build(path, tmp_path / "out")
    message = str(excinfo.value)
    assert message.startswith(f"{path}: row 1 (line 3), column {column}: a cell of more than")
    assert "\n" not in message


def test_a_big_cell_in_a_column_not_read_is_emptied(tmp_path, whole_cells):
    header = [*HEADER, "notes"]
    rows = [[*row(0), "n" * (3 * K)], [*row(1), "short"]]
    path = write_csv(tmp_path / "notes.csv", rows, header)
    streamed = build(path, tmp_path / "streamed")
    whole_cells()
    whole = build(path, tmp_path / "whole")
    assert streamed[0].equals(whole[0]) and streamed[2] == whole[2]
    assert streamed[2]["repaired"] == 0


def write_gz_with_long_cell(path: Path, cell_bytes: int, short_turns: bool = False) -> None:
    """A small .csv.gz whose second row's response_a holds one turn of
    `cell_bytes` (or, `short_turns`, as many turns of 1 KB): one 1 MiB block
    deflated once (after a full flush the deflater starts afresh, so each
    copy of the block deflates to the same bytes) and written as many times
    as needed."""
    if short_turns:  # each turn closed and the next opened, CSV quotes doubled
        block = (("t" * 1018 + '"",""') * 1023).encode()
    else:
        block = ("many words, and é, and more " * 40000)[: 1 << 20].encode()[: (1 << 20) - 8]
        block = block[: len(block.decode("utf-8", "ignore").encode())]
    head = ",".join(HEADER) + '\n0,m,m,"[""p""]","[""a""]","[""b""]",1,0,0\n'
    head += '1,m,m,"[""q""]","[""'
    end = '""]","[""b""]",0,1,0\n2,m,m,"[""r""]","[""a""]","[""b""]",0,0,1\n'
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    crc, size = 0, 0
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        f.write(deflate.compress(head.encode()) + deflate.flush(zlib.Z_FULL_FLUSH))
        crc, size = zlib.crc32(head.encode()), len(head.encode())
        packed = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
        for _ in range(cell_bytes // len(block)):
            f.write(packed)
            crc, size = zlib.crc32(block, crc), size + len(block)
        f.write(deflate.compress(end.encode()) + deflate.flush())
        crc, size = zlib.crc32(end.encode(), crc), size + len(end.encode())
        f.write(struct.pack("<II", crc, size & 0xFFFFFFFF))


PEAK_CHILD = textwrap.dedent(
    """
    import json, re, sys, time
    from pathlib import Path
    import arena_fast as af

    def status(key):
        text = Path("/proc/self/status").read_text()
        return int(re.search(rf"^{key}:\\s+(\\d+) kB", text, re.M).group(1)) / 1024

    af.Encoder(af.Tokenizer.demo(), max_length=256)  # load what every build loads
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status("VmRSS")
    start = time.perf_counter()
    config = af.BuildConfig(inputs=[sys.argv[1]], max_length=256, folds=2)
    af.build_dataset(config, sys.argv[2])
    seconds = time.perf_counter() - start
    counts = json.loads((Path(sys.argv[2]) / "manifest.json").read_text())["counts"]
    print(json.dumps({"growth_mb": status("VmHWM") - base, "seconds": seconds, "counts": counts}))
    """
)


def peak_of_build(path: Path, out: Path) -> dict:
    """Build `path` in a child process; its peak RSS growth (MB), seconds
    and manifest counts. Watched from outside and killed past 1.5 GB, so
    a regression cannot take the machine down."""
    child = subprocess.Popen(
        [sys.executable, "-c", PEAK_CHILD, str(path), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            rss = int(status.read_text().split("VmRSS:")[1].split()[0]) / 1024
        except (OSError, IndexError):
            rss = 0
        if rss > 1536:
            child.kill()
            pytest.fail(f"the build passed 1.5 GB of RSS ({rss:.0f} MB)")
        time.sleep(0.05)
    stdout, err = child.communicate()
    assert child.returncode == 0, err
    return json.loads(stdout.strip().splitlines()[-1])


def test_a_gigantic_cell_takes_memory_bounded_by_the_clip(tmp_path):
    """A 2.6 MB .csv.gz holding a 384 MiB cell: the build's peak RSS grows
    by far less than the cell (~110 MB, what any build takes; the whole-cell
    path grew by 1.18 GB)."""
    path = tmp_path / "gigantic.csv.gz"
    write_gz_with_long_cell(path, 384 << 20)
    assert path.stat().st_size < 3 << 20
    result = peak_of_build(path, tmp_path / "out")
    assert result["counts"]["rows"] == 3
    assert result["counts"]["repairs"]["clipped"] == 1
    assert result["growth_mb"] < 300, result


def test_a_gigantic_cell_of_short_turns_is_dropped_in_bounded_memory(tmp_path):
    """256 MiB of 1 KB turns in one cell: no turn is long, yet the cell
    would reach polars whole (about ten times its size). Past 16 MiB of
    kept text the copy writes no more of it and the row is dropped
    bad_text, the build's growth bounded as for one long turn."""
    path = tmp_path / "short-turns.csv.gz"
    write_gz_with_long_cell(path, 256 << 20, short_turns=True)
    assert path.stat().st_size < 3 << 20
    result = peak_of_build(path, tmp_path / "out")
    assert result["counts"]["rows"] == 2
    assert result["counts"]["dropped"] == {"bad_text": 1}
    assert result["growth_mb"] < 400, result
    dropped = pl.read_parquet(tmp_path / "out" / "dropped.parquet")
    assert dropped.select("row", "reason").rows() == [(1, "bad_text")]
    assert dropped["detail"][0].startswith(
        "column response_a: turns of more than 16 MiB once clipped"
    ), dropped["detail"][0]


# -- the CSV rough edges ---------------------------------------------------------
def rough_rows() -> str:
    lines = [",".join(HEADER)]
    lines += [f'{i},m1,m2,"[""p{i}""]","[""a""]","[""b""]",1,0,0' for i in range(3)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("cr.csv", rough_rows().replace("\n", "\r").encode(), "lines end in CR only"),
        ("cr.csv.gz", gzip.compress(rough_rows().replace("\n", "\r").encode()), "CR only"),
        ("le.csv", codecs.BOM_UTF16_LE + rough_rows().encode("utf-16-le"), "UTF-16 text"),
        ("be.csv", codecs.BOM_UTF16_BE + rough_rows().encode("utf-16-be"), "UTF-16 text"),
        ("nobom.csv", rough_rows().encode("utf-16-le"), "NUL bytes in the header"),
        ("utf32.csv", rough_rows().encode("utf-32"), "UTF-32 text"),
        (
            "repr.csv",
            rough_rows().replace('"[""', "\"['").replace('""]"', "']\"").encode(),
            "text cells are Python lists, not JSON (row 0, column prompt: \"['p0']\")",
        ),
        (
            "none.csv",
            rough_rows().replace('"[""a""]"', '"[None]"').encode(),
            "text cells are Python lists, not JSON (row 0, column response_a: '[None]')",
        ),
    ],
)
def test_misread_csv_files_are_one_clear_error(tmp_path, name, data, expected):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as excinfo:
        build(path, tmp_path / "out")
    message = str(excinfo.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert "\n" not in message


def test_a_few_python_lists_stay_row_drops(tmp_path):
    text = rough_rows() + '9,m1,m2,"[\'p\']","[""a""]","[""b""]",1,0,0\n'
    (tmp_path / "one.csv").write_text(text, encoding="utf-8")
    _, dropped, counts = build(tmp_path / "one.csv", tmp_path / "out")
    assert counts["rows"] == 3
    assert dropped.select("row", "reason").rows() == [(3, "bad_text")]


# -- a compressed parquet cell: refused from the metadata ---------------------------
def write_parquet_rows(path: Path, long_answer: str) -> Path:
    schema = {
        "id": pl.String,
        "prompt": pl.List(pl.String),
        "response_a": pl.List(pl.String),
        "response_b": pl.List(pl.String),
        "labels": pl.Array(pl.Float64, 3),
    }
    rows = [
        {
            "id": str(i),
            "prompt": [f"p{i}"],
            "response_a": [long_answer if i == 1 else "a"],
            "response_b": ["b"],
            "labels": [1.0, 0.0, 0.0],
        }
        for i in range(3)
    ]
    pl.DataFrame(rows, schema=schema).write_parquet(path, compression="zstd")
    return path


def test_a_parquet_compression_bomb_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    """A 12 KB parquet holding a 70 MB answer (it would be decoded whole,
    about 4x its size in memory, before any clip) is refused from its
    metadata: no batch of it is ever read."""
    from arena_fast.sources import canonical, containers

    path = write_parquet_rows(tmp_path / "bomb.parquet", "a" * (70 << 20))
    assert path.stat().st_size < 64 << 10

    def never(*args, **kwargs):
        raise AssertionError("a batch was read")

    monkeypatch.setattr(containers, "polars_batches", never)
    monkeypatch.setattr(canonical, "polars_batches", never)
    with pytest.raises(InputError, match=r"bomb\.parquet: row group 0, column response_a\S*: "):
        af.build_dataset(af.BuildConfig(inputs=[f"{path}:canonical"]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_long_answer_that_compresses_like_text_still_builds(tmp_path):
    """Below the expansion bound (text compresses a few times), a parquet
    answer over the clip is read and clipped as ever."""
    import random

    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    answer = " ".join(rng.choice(words) + str(rng.randrange(10**6)) for _ in range(200_000))
    assert len(answer) > MAX_TURN_BYTES
    path = write_parquet_rows(tmp_path / "long.parquet", answer)
    manifest = af.build_dataset(
        af.BuildConfig(inputs=[f"{path}:canonical"], max_length=256), tmp_path / "out"
    )
    assert manifest["counts"]["rows"] == 3
    assert manifest["counts"]["repairs"]["clipped"] == 1
