"""The arena140k reader on records written from the documented schema of
lmarena-ai/arena-human-preference-140k (made-up texts): parquet with the
real nested types (list<struct<role, content: list<struct<type, text,
image, mimeType>>>>) and JSON lines, hostile records included."""

from __future__ import annotations

import datetime
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import arena_fast as af
from arena_fast.errors import InputError
from arena_fast.sources import ReadOptions, detect
from arena_fast.sources import read as read_any
from arena_fast.sources.arena140k import PART_SEPARATOR, read
from arena_fast.sources.lmarena import category_name, json_safe

from .conftest import collect, one_line_error, write_jsonl

PART = pa.struct(
    [
        ("type", pa.string()),
        ("text", pa.string()),
        ("image", pa.string()),
        ("mimeType", pa.string()),
    ]
)
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.list_(PART))])
CATEGORY = pa.struct(
    [
        (
            "criteria_v0.1",
            pa.struct([("complexity", pa.bool_()), ("domain_knowledge", pa.bool_())]),
        ),
        ("if_v0.1", pa.struct([("if", pa.bool_()), ("score", pa.int64())])),
        ("math_v0.1", pa.struct([("math", pa.bool_())])),
    ]
)
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("model_a", pa.string()),
        ("model_b", pa.string()),
        ("winner", pa.string()),
        ("evaluation_session_id", pa.string()),
        ("evaluation_order", pa.int64()),
        ("conversation_a", pa.list_(MESSAGE)),
        ("conversation_b", pa.list_(MESSAGE)),
        ("full_conversation", pa.string()),
        ("conv_metadata", pa.struct([("sum_user_tokens", pa.int64())])),
        ("category_tag", CATEGORY),
        ("language", pa.string()),
        ("is_code", pa.bool_()),
        ("timestamp", pa.timestamp("us")),
    ]
)
WHEN = datetime.datetime(2025, 5, 1, 12, 30)


def text(t):
    return {"type": "text", "text": t, "image": None, "mimeType": None}


def image(name="cat.png"):
    return {
        "type": "image",
        "text": None,
        "image": f"https://example.com/{name}",
        "mimeType": "image/png",
    }


def msg(role, *parts):
    return {"role": role, "content": list(parts)}


def conv(*turns):
    """Alternating user / assistant turns, each a list of parts or a str (one text part)."""
    roles = ("user", "assistant")
    return [
        msg(roles[i % 2], *([text(t)] if isinstance(t, str) else t)) for i, t in enumerate(turns)
    ]


def tag(complexity=False, math=False, follow=False):
    return {
        "criteria_v0.1": {"complexity": complexity, "domain_knowledge": False},
        "if_v0.1": {"if": follow, "score": 3},
        "math_v0.1": {"math": math},
    }


def record(ident, winner, conv_a, conv_b, **extra):
    return {
        "id": ident,
        "model_a": "model-x",
        "model_b": "model-y",
        "winner": winner,
        "evaluation_session_id": "sess-1",
        "evaluation_order": 1,
        "conversation_a": conv_a,
        "conversation_b": conv_b,
        "full_conversation": None,
        "conv_metadata": {"sum_user_tokens": 5},
        "category_tag": tag(),
        "language": "en",
        "is_code": False,
        "timestamp": WHEN,
        **extra,
    }


RECORDS = [
    record(
        "r0",
        "model_a",
        conv("Name a colour.", "Blue."),
        conv("Name a colour.", "Green."),
        category_tag=tag(complexity=True, math=True),
        is_code=True,
    ),
    record(
        "r1",
        "both_bad",
        conv([text("Look:"), image(), text("what is it?")], "A dog.", "Sure?", "Yes."),
        conv([text("Look:"), image(), text("what is it?")], "A cat.", "Sure?", "No."),
        language="de",
    ),
    record("r2", "tie", conv("Hi", "Hello!"), conv("Hi", "Hey."), category_tag=None),
    record("r3", "model_b", conv([image("a.png")], "It is a plot."), conv([image("a.png")], [])),
    record("r4", "model_c", conv("x?", "y"), conv("x?", "z")),
    record("r5", None, conv("x?", "y"), conv("x?", "z")),
]


def write_parquet(path, records):
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), path)
    return path


def as_json(records):
    return [{**r, "timestamp": r["timestamp"].isoformat()} for r in records]


@pytest.fixture(params=["parquet", "jsonl"])
def arena_file(request, tmp_path):
    if request.param == "parquet":
        return write_parquet(tmp_path / "a.parquet", RECORDS)
    return write_jsonl(tmp_path / "a.jsonl", as_json(RECORDS))


def test_rows_labels_texts_and_ids(arena_file):
    rows, dropped = collect(read(arena_file))
    assert rows["id"].to_list() == ["r0", "r1", "r2", "r3"]
    assert rows["row"].to_list() == [0, 1, 2, 3]
    assert rows["labels"].to_list() == [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
    ]
    assert rows["source"].unique().to_list() == ["arena140k"]
    r0, r1, _, r3 = rows.rows(named=True)
    # One text part: the text exactly (cross-source dedup relies on it).
    assert r0["prompt"] == ["Name a colour."]
    assert (r0["response_a"], r0["response_b"]) == (["Blue."], ["Green."])
    assert (r0["model_a"], r0["model_b"]) == ("model-x", "model-y")
    # Text parts in order, a blank line between them; the image left out.
    assert r1["prompt"] == [f"Look:{PART_SEPARATOR}what is it?", "Sure?"]
    assert PART_SEPARATOR == "\n\n"
    assert r1["response_a"] == ["A dog.", "Yes."]
    # An image-only turn is an empty turn; an empty part list too.
    assert r3["prompt"] == [""] and r3["response_b"] == [""]
    assert dropped.select("id", "row", "reason").rows() == [
        ("r4", 4, "bad_winner"),
        ("r5", 5, "bad_winner"),
    ]


def test_metadata(arena_file):
    rows, _ = collect(read(arena_file))
    r0, r1, r2, r3 = rows.rows(named=True)
    assert [r["language"] for r in (r0, r1, r2)] == ["en", "de", "en"]
    assert r0["category"] == "complexity,math"
    assert r1["category"] == "none"  # a tag with no true flag
    assert r2["category"] is None  # no tag
    meta = json.loads(r0["meta"])
    assert meta["is_code"] is True
    assert meta["evaluation_session_id"] == "sess-1" and meta["evaluation_order"] == 1
    assert meta["timestamp"].startswith("2025-05-01")
    assert meta["category_tag"]["math_v0.1"] == {"math": True}
    assert "images_stripped" not in meta
    # The stripped images are counted per row.
    assert json.loads(r1["meta"])["images_stripped"] == 2
    assert json.loads(r3["meta"])["images_stripped"] == 2


def test_parquet_and_json_lines_agree(tmp_path):
    a, _ = collect(read(write_parquet(tmp_path / "a.parquet", RECORDS)))
    b, _ = collect(read(write_jsonl(tmp_path / "a.jsonl", as_json(RECORDS))))
    assert a.drop("meta").equals(b.drop("meta"))


def test_images_drop_policy(arena_file):
    rows, dropped = collect(read(arena_file, options=ReadOptions(images="drop")))
    assert rows["id"].to_list() == ["r0", "r2"]
    assert dropped.filter(dropped["reason"] == "image")["id"].to_list() == ["r1", "r3"]
    assert "image part" in dropped["detail"][0]


def test_hostile_records(tmp_path):
    good = record("ok", "model_a", conv("a", "b"), conv("a", "c"))
    records = [
        good,
        # A null content: a null turn, as in the 33k reader.
        record(
            "null",
            "model_a",
            conv("a", "b"),
            [msg("user", text("a")), {"role": "assistant", "content": None}],
        ),
        record("unknown", "model_a", conv("a", [{"type": "audio", "text": None}]), conv("a", "c")),
        record(
            "str",
            "model_a",
            conv("a", "b"),
            [msg("user", text("a")), {"role": "assistant", "content": 7}],
        ),
        {k: v for k, v in good.items() if k != "winner"} | {"id": "nowinner"},
        record("notlist", "model_a", "user: a", conv("a", "c")),
        record(None, "model_a", conv("a", "b"), conv("a", "c")),
        record(
            "plain",
            "tie",
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            conv("a", "c"),
        ),
        [1, 2],
    ]
    path = write_jsonl(tmp_path / "h.jsonl", as_json(records[:-1]) + [records[-1]])
    rows, dropped = collect(read(path))
    assert rows["id"].to_list() == ["ok", "null", "plain"]
    assert rows.row(1, named=True)["response_b"] == [None]
    assert rows.row(2, named=True)["prompt"] == ["a"]  # a plain-string content kept
    assert dropped.select("id", "reason").rows() == [
        ("unknown", "bad_conversation"),
        ("str", "bad_conversation"),
        ("nowinner", "bad_winner"),
        ("notlist", "bad_conversation"),
        (None, "missing_id"),
        (None, "bad_record"),
    ]
    details = dropped["detail"].to_list()
    assert "unknown type 'audio'" in details[0]
    assert "conversation_b[1].content is a int" in details[1]


def test_no_id_column_uses_row_numbers(tmp_path):
    records = [{k: v for k, v in r.items() if k != "id"} for r in as_json(RECORDS[:2])]
    rows, _ = collect(read(write_jsonl(tmp_path / "a.jsonl", records)))
    assert rows["id"].to_list() == ["0", "1"]


def test_missing_column(tmp_path):
    records = [{k: v for k, v in as_json(RECORDS)[0].items() if k != "conversation_b"}]
    path = write_jsonl(tmp_path / "a.jsonl", records)
    with pytest.raises(InputError) as excinfo:
        read(path)
    one_line_error(excinfo, str(path), "missing column(s) ['conversation_b'] for format arena140k")


def test_chunking(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", RECORDS)
    chunks = list(read(path, chunk_rows=2))
    assert len(chunks) == 3
    assert collect(chunks)[0].equals(collect(read(path))[0])


def test_detected_as_arena140k(tmp_path):
    for path in (
        write_parquet(tmp_path / "a.parquet", RECORDS),
        write_jsonl(tmp_path / "a.jsonl", as_json(RECORDS)),
    ):
        found = detect(path)
        assert found.format == "arena140k", found
        assert "typed parts" in found.reason
        rows, _ = collect(read_any(path))
        assert rows["labels"].to_list()[1] == [0.0, 0.0, 0.0, 1.0]
    # Plain-string contents but a both_bad winner: the 140k layout too.
    plain = {**as_json(RECORDS)[1], "conversation_a": [{"role": "user", "content": "q"}]}
    plain.pop("evaluation_session_id")
    assert detect(write_jsonl(tmp_path / "p.jsonl", [plain])).format == "arena140k"


def test_lmarena_metadata_helpers():
    assert category_name({"a": {"x": True, "y": False}, "b": {"z": True, "s": 4}}) == "x,z"
    assert category_name({"a": {"x": False}}) == "none"
    assert category_name(None) is None and category_name("math") is None
    deep: dict = {"t": True}
    for _ in range(50):  # nested past the walk's depth: not followed, no recursion error
        deep = {"d": deep}
    assert category_name(deep) == "none"
    when = datetime.datetime(2025, 1, 2, 3, 4, 5)
    assert json_safe({"t": when, "n": float("nan"), "b": b"xyz", "l": (1, "a")}) == {
        "t": "2025-01-02T03:04:05",
        "n": None,
        "b": {"bytes": 3},
        "l": [1, "a"],
    }


def test_lone_surrogate_in_a_text_part_is_repaired_and_flagged(tmp_path):
    lone = "bad \ud83d end"
    records = as_json([record("s", "tie", conv([text("ok"), text(lone)], "b"), conv("ok", "c"))])
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(records[0]) + "\n")  # ASCII escapes: \ud83d alone
    chunks = list(read(path))
    rows, _ = collect(chunks)
    assert rows["prompt"][0].to_list() == ["ok\n\nbad \ufffd end"]
    assert chunks[0].repairs.tolist() == [af.REPAIR_SURROGATE]


def test_stripped_images_are_a_counted_repair_through_the_build(tmp_path):
    """`--images strip` (the default) flags each row it stripped with
    REPAIR_IMAGE: the manifest counts them, `--repaired drop` drops them,
    `--images drop` drops them as `image`."""
    records = [
        record(
            f"i{i}",
            "model_a",
            conv([text(f"Look {i}:"), image()], "A dog."),
            conv(f"Q {i}", "A cat."),
        )
        if i % 4 == 0
        else record(f"i{i}", "model_b", conv(f"Q {i}?", "Yes."), conv(f"Q {i}?", "No, because."))
        for i in range(16)
    ]
    path = write_parquet(tmp_path / "img.parquet", records)
    config = {"inputs": [str(path)], "max_length": 256, "folds": 2}
    manifest = af.build_dataset(af.BuildConfig(**config), tmp_path / "strip")
    assert manifest["counts"]["repairs"]["image"] == 4 and manifest["counts"]["rows"] == 16
    ds = af.load_dataset(tmp_path / "strip")
    flagged = {i for i, r in zip(ds.ids, ds.encoded.repairs) if r & af.REPAIR_IMAGE}
    assert flagged == {"i0", "i4", "i8", "i12"}
    dropped = af.build_dataset(af.BuildConfig(**config, repaired="drop"), tmp_path / "repaired")
    assert dropped["counts"]["dropped"] == {"repaired": 4}
    images = af.build_dataset(af.BuildConfig(**config, images="drop"), tmp_path / "images")
    assert images["counts"]["dropped"] == {"image": 4}
