"""The hostile-input corpus (issue 6, "Hardening"), as data.

Each `Case` says how its input is made (generated at test time into a
temporary directory: nothing large is committed; the 100 MB answer and the
100,000 turns are written on the fly), which entry point it goes through,
and what must come out:

- `Rejected`: an `af.ArenaFastError` of the named class whose message (one
  line) holds the given substrings: the file, the row and the column where
  there is one to name (`{file}` stands for the input's path);
- `Built`: the build succeeds and accounts for every input row: the rows
  dropped (by input row, with their reason and words of the detail), the
  repair bits and flags of the kept rows (exact: unlisted rows have none) and
  the manifest counters (`repaired`, `labels_normalised`, `relabelled`);
- `Encodes`: the encoder returns rows with exactly these repair bits.

`hostile_worker.py` runs a case (in a worker process, so that a crash is a
failure with the case's name); `test_hostile.py` checks the outcome, the
time and memory bounds, and that no row is lost. A case whose `xfail` is set
states the correct outcome and fails today: the reason says what the code
does instead (see docs/reliability.md for the list).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from arena_fast.synth import COLUMNS

# ../shared beside the checkout (as tests/conftest.py finds it).
SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"
SHARED_TOKENIZERS = ("gemma3", "llama3")

# Entry points.
BUILD = "af.build_dataset"
CLI = "arena-fast build-dataset"
ENCODE_JSON = "af.Encoder.encode_json"
ENCODE = "af.Encoder.encode"
TOKENIZER = "af.Tokenizer.from_file"
LOAD = "af.load_dataset"
ENTRIES = (BUILD, CLI, ENCODE_JSON, ENCODE, TOKENIZER, LOAD)

# Bits of the kept rows' `repairs` and `flags` (docs/dataset.md).
NULL, SURROGATE, RAGGED, CLIPPED = 1, 2, 4, 8
EMPTY_A, EMPTY_B, IDENTICAL, RELABELLED, NORMALISED, EMPTY_PROMPT = 1, 2, 4, 8, 16, 32

MB = 1_000_000


# -- what comes out ------------------------------------------------------------------------
@dataclass(frozen=True)
class Rejected:
    """An `af.<error>` whose one-line message holds every string of `contains`."""

    error: str
    contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Built:
    """A dataset that accounts for every input row. `dropped`: input row ->
    reason (exact); `details`: input row -> words of its drop detail;
    `repairs` / `flags`: kept input row -> bits (exact, unlisted rows 0);
    `counts`: manifest counters, derived from `repairs` / `flags` when not
    given; `check`: further assertions on the observation."""

    dropped: dict[int, str] = field(default_factory=dict)
    details: dict[int, tuple[str, ...]] = field(default_factory=dict)
    repairs: dict[int, int] = field(default_factory=dict)
    flags: dict[int, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    check: Optional[Callable[[dict], None]] = None

    def expected_counts(self) -> dict[str, int]:
        derived = {
            "repaired": sum(1 for bits in self.repairs.values() if bits),
            "labels_normalised": sum(1 for bits in self.flags.values() if bits & NORMALISED),
            "relabelled": sum(1 for bits in self.flags.values() if bits & RELABELLED),
        }
        return {**derived, **self.counts}


@dataclass(frozen=True)
class Encodes:
    """Encoded rows with exactly these repair bits (one per output row);
    `turns_total` likewise when given; `check`: further assertions."""

    repairs: tuple[int, ...]
    turns_total: Optional[tuple[int, ...]] = None
    check: Optional[Callable[[dict], None]] = None


@dataclass(frozen=True)
class Loads:
    """The entry returns normally (a tokenizer, a dataset); `check` asserts more."""

    check: Optional[Callable[[dict], None]] = None


Outcome = Union[Rejected, Built, Encodes, Loads]


# -- what goes in ----------------------------------------------------------------------------
@dataclass
class Inputs:
    """What a case's `make` produced: input paths (`PATH` or `PATH:FORMAT`),
    records per input file, the id each input record must keep (None: none,
    e.g. an unreadable record), and entry-specific arguments (the columns of
    an encode call). `args` may hold any Python object: `make` runs in the
    process that runs the entry."""

    files: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    ids: list[list[Optional[str]]] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)


Make = Callable[[Path], Inputs]


@dataclass(frozen=True)
class Case:
    """One hostile input. `config`: BuildConfig fields (build, CLI), Encoder
    options (encode) or `tokenizer` (demo, gemma3, llama3); `cli_args` for
    the CLI; `fresh`: run in a process of its own (big inputs: memory is
    measured from a clean start); bounds: `max_seconds` for the entry
    call, `max_rss_mb` of resident memory growth; `needs`: tokenizers of
    ../shared; `xfail`: why the outcome is wrong today (the fix is due)."""

    name: str
    topic: str
    entry: str
    make: Make
    expect: Outcome
    config: dict[str, Any] = field(default_factory=dict)
    cli_args: tuple[str, ...] = ()
    fresh: bool = False
    max_seconds: float = 20.0
    max_rss_mb: int = 2048
    needs: tuple[str, ...] = ()
    want_ids: bool = False
    xfail: Optional[str] = None
    note: str = ""


# -- Kaggle CSV files ----------------------------------------------------------------------
HEADER = COLUMNS  # the Kaggle train.csv header, as the synthetic rows have it
TEST_HEADER = ("id", "prompt", "response_a", "response_b")
_WINNERS = (("1", "0", "0"), ("0", "1", "0"), ("0", "0", "1"))


def turns(*texts: Any) -> str:
    """A JSON-list cell, as the Kaggle CSV holds one."""
    return json.dumps(list(texts))


def good_row(i: int, header: Sequence[str] = HEADER) -> dict[str, str]:
    """Row i of a clean file: distinct ids (not the row number), prompts and
    answers, A and B different, the three classes in turn."""
    values = {
        "id": f"id-{i}",
        "model_a": "model-x",
        "model_b": "model-y",
        "prompt": turns(f"prompt {i}: what is {i} plus {i}?"),
        "response_a": turns(f"answer a {i}: it is {2 * i}."),
        "response_b": turns(f"answer b {i}: I think {2 * i + 1}."),
    }
    values.update(zip(("winner_model_a", "winner_model_b", "winner_tie"), _WINNERS[i % 3]))
    return {c: values.get(c, f"{c} {i}") for c in header}


def csv_text(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def kaggle(
    cells: Optional[dict[str, str]] = None,
    *,
    n: int = 3,
    at: int = 1,
    header: Sequence[str] = HEADER,
    line: Optional[str] = None,
    replace: Optional[tuple[bytes, bytes]] = None,
    prefix: bytes = b"",
    name: str = "train.csv",
) -> Make:
    """A Kaggle CSV of `n` clean rows whose row `at` has `cells` (column ->
    cell text, as written by the csv module) or is the raw CSV `line`;
    `replace` substitutes bytes in the encoded file, `prefix` goes first (a BOM)."""

    def make(d: Path) -> Inputs:
        rows = [good_row(i, header) for i in range(n)]
        if cells:
            rows[at] = {**rows[at], **cells}
        lines = csv_text([list(r.values()) for r in rows], header).split("\n")
        if line is not None:
            lines[at + 1] = line
        data = prefix + "\n".join(lines).encode("utf-8")
        if replace is not None:
            assert replace[0] in data, replace
            data = data.replace(*replace)
        path = d / name
        path.write_bytes(data)
        ids = [r.get("id") or None for r in rows] if "id" in header else [str(i) for i in range(n)]
        return Inputs(files=[str(path)], rows=[n], ids=[ids])

    return make


def raw_file(data: bytes, name: str, rows: int = 0) -> Make:
    def make(d: Path) -> Inputs:
        path = d / name
        path.write_bytes(data)
        return Inputs(files=[str(path)], rows=[rows], ids=[[None] * rows])

    return make


# -- canonical JSON lines / JSON / parquet, arena33k JSON lines ---------------------------
def canonical_record(i: int) -> dict[str, Any]:
    return {
        "id": f"id-{i}",
        "prompt": [f"prompt {i}: what is {i} plus {i}?"],
        "response_a": [f"answer a {i}: it is {2 * i}."],
        "response_b": [f"answer b {i}: I think {2 * i + 1}."],
        "labels": [float(v) for v in _WINNERS[i % 3]],
    }


def canonical_jsonl(
    fields: Optional[dict[str, Any]] = None,
    *,
    n: int = 3,
    at: int = 1,
    line: Optional[bytes] = None,
    prefix: bytes = b"",
    array: bool = False,
) -> Make:
    """A canonical JSON-lines file (or a JSON array) of `n` clean records whose
    record `at` has `fields` replaced, or is the raw `line` (then its id is
    not readable). json.dumps writes lone surrogates as escapes."""

    def make(d: Path) -> Inputs:
        records = [canonical_record(i) for i in range(n)]
        if fields:
            records[at] = {**records[at], **fields}
        ids: list[Optional[str]] = [r["id"] for r in records]
        if array:
            data = json.dumps(records).encode()
            path = d / "rows.json"
        else:
            lines = [json.dumps(r).encode() for r in records]
            if line is not None:
                lines[at] = line
                ids[at] = None
            data = b"\n".join(lines) + b"\n"
            path = d / "rows.jsonl"
        path.write_bytes(prefix + data)
        return Inputs(files=[f"{path}:canonical"], rows=[n], ids=[ids])

    return make


def canonical_parquet(
    fields: Optional[dict[str, Any]] = None,
    *,
    n: int = 100,
    at: int = 1,
    drop: Sequence[str] = (),
    damage: Optional[Callable[[bytes], bytes]] = None,
) -> Make:
    """A canonical parquet file of `n` records (record `at` with `fields`),
    without the columns `drop`, its bytes passed through `damage`."""

    def make(d: Path) -> Inputs:
        import polars as pl

        records = [canonical_record(i) for i in range(n)]
        if fields:
            records[at] = {**records[at], **fields}
        records = [{k: v for k, v in r.items() if k not in drop} for r in records]
        schema = {
            "id": pl.String,
            "prompt": pl.List(pl.String),
            "response_a": pl.List(pl.String),
            "response_b": pl.List(pl.String),
            "labels": pl.List(pl.Float64),
        }
        path = d / "rows.parquet"
        pl.DataFrame(
            records, schema={k: v for k, v in schema.items() if k not in drop}
        ).write_parquet(path)
        if damage is not None:
            path.write_bytes(damage(path.read_bytes()))
        return Inputs(files=[f"{path}:canonical"], rows=[n], ids=[[r["id"] for r in records]])

    return make


def arena33k_jsonl(user: str, assistant: str, n: int = 3, at: int = 1) -> Make:
    """lmsys/chatbot_arena_conversations records; record `at`'s first user
    turn and A's answer are `user` and `assistant`."""

    def record(i: int, u: str, a: str) -> dict[str, Any]:
        return {
            "question_id": f"q-{i}",
            "model_a": "model-x",
            "model_b": "model-y",
            "winner": ("model_a", "model_b", "tie")[i % 3],
            "conversation_a": [
                {"role": "user", "content": u},
                {"role": "assistant", "content": a},
            ],
            "conversation_b": [
                {"role": "user", "content": u},
                {"role": "assistant", "content": f"answer b {i}"},
            ],
        }

    def make(d: Path) -> Inputs:
        records = [record(i, f"prompt {i}", f"answer a {i}") for i in range(n)]
        records[at] = record(at, user, assistant)
        path = d / "arena33k.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="ascii")
        return Inputs(files=[f"{path}:arena33k"], rows=[n], ids=[[f"q-{i}" for i in range(n)]])

    return make


# -- big inputs, written in pieces -----------------------------------------------------------
WORDS = "lorem ipsum dolor sit amet, consectetur adipiscing elit; "


def big_text_chunks(size: int, unit: str = WORDS, chunk: int = 1 << 20) -> list[str]:
    """`size` characters of `unit` repeated, as chunks of about `chunk`."""
    piece = unit * max(1, chunk // len(unit))
    out = []
    left = size
    while left > 0:
        out.append(piece[:left])
        left -= len(out[-1])
    return out


def kaggle_big_answer(size: int) -> Make:
    """A Kaggle CSV whose row 1 answer A is `size` characters of words,
    written chunk by chunk (the writer never holds the text)."""

    def make(d: Path) -> Inputs:
        path = d / "train.csv"
        rows = [good_row(i) for i in range(3)]
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write(csv_text([], HEADER))
            for i, row in enumerate(rows):
                if i != 1:
                    f.write(csv_text([list(row.values())], HEADER).split("\n", 1)[1])
                    continue
                head = [row[c] for c in HEADER[:4]]
                f.write(csv_text([head], HEADER).split("\n", 1)[1].rstrip("\n"))
                f.write(',"[""')  # the JSON text of A, CSV-quoted; words need no escape
                for chunk in big_text_chunks(size):
                    f.write(chunk)
                f.write('""]",')
                tail = [row[c] for c in HEADER[5:]]
                f.write(csv_text([tail], HEADER).split("\n", 1)[1])
        return Inputs(files=[str(path)], rows=[3], ids=[[r["id"] for r in rows]])

    return make


def kaggle_many_turns(count: int) -> Make:
    """A Kaggle CSV whose row 1 has `count` turns in each column."""

    def make(d: Path) -> Inputs:
        rows = [good_row(i) for i in range(3)]
        rows[1]["prompt"] = turns(*(f"question {k}?" for k in range(count)))
        rows[1]["response_a"] = turns(*(f"a says {k}." for k in range(count)))
        rows[1]["response_b"] = turns(*(f"b says {k + 1}." for k in range(count)))
        path = d / "train.csv"
        path.write_text(csv_text([list(r.values()) for r in rows], HEADER), encoding="utf-8")
        return Inputs(files=[str(path)], rows=[3], ids=[[r["id"] for r in rows]])

    return make


# -- encoder calls ----------------------------------------------------------------------------
def columns(p: list, a: list, b: list) -> Make:
    """Three columns for `encode_json` / `encode`, as given."""

    def make(d: Path) -> Inputs:
        return Inputs(rows=[len(p)], args={"columns": (p, a, b)})

    return make


def json_columns(cell: Any, column: int, n: int = 3, at: int = 1) -> Make:
    """Kaggle JSON cells of `n` clean rows, row `at`'s cell in `column` (0-2) replaced."""

    def make(d: Path) -> Inputs:
        rows = [good_row(i) for i in range(n)]
        cols = [[r[c] for r in rows] for c in ("prompt", "response_a", "response_b")]
        cols[column][at] = cell
        return Inputs(rows=[n], args={"columns": tuple(cols)})

    return make


def big_json_cell(size: int, unit: str, column: int = 1) -> Make:
    """One row whose cell in `column` is a JSON list of one `size`-character text."""

    def make(d: Path) -> Inputs:
        cell = '["' + "".join(big_text_chunks(size, unit)) + '"]'
        cols: list[list[Any]] = [[turns("hello")], [turns("a")], [turns("b")]]
        cols[column] = [cell]
        return Inputs(rows=[1], args={"columns": tuple(cols)})

    return make


# -- tokenizer files and datasets ------------------------------------------------------------
def demo_tokenizer_json() -> str:
    import arena_fast as af

    return af.Tokenizer.demo().to_str()


def tokenizer_file(content: Callable[[], bytes], name: str = "tokenizer.json") -> Make:
    def make(d: Path) -> Inputs:
        path = d / name
        path.write_bytes(content())
        return Inputs(files=[str(path)])

    return make


def tokenizer_dir(config: Optional[bytes], with_json: bool = True) -> Make:
    """A model directory: a good tokenizer.json (or none) and a tokenizer_config.json."""

    def make(d: Path) -> Inputs:
        model = d / "model"
        model.mkdir()
        if with_json:
            (model / "tokenizer.json").write_text(demo_tokenizer_json(), encoding="utf-8")
        if config is not None:
            (model / "tokenizer_config.json").write_bytes(config)
        return Inputs(files=[str(model)])

    return make


def built_dataset(damage: Optional[Callable[[Path], None]] = None) -> Make:
    """A small dataset built from clean rows (demo tokenizer), then `damage`d."""

    def make(d: Path) -> Inputs:
        import arena_fast as af

        src = kaggle(n=6)(d)
        out = d / "dataset"
        af.build_dataset(af.BuildConfig(inputs=src.files, max_length=256, folds=2), out)
        if damage is not None:
            damage(out)
        return Inputs(files=[str(out)], rows=src.rows, ids=src.ids)

    return make


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt_middle(data: bytes) -> bytes:
    out = bytearray(data)
    mid = len(out) // 2
    out[mid - 100 : mid + 100] = b"\xab" * 200
    return bytes(out)


def _cut_footer(data: bytes) -> bytes:
    return data[:-8]


def _only_magic(data: bytes) -> bytes:
    return data[:4]


def _no_manifest(out: Path) -> None:
    (out / "manifest.json").unlink()


def _manifest_not_json(out: Path) -> None:
    (out / "manifest.json").write_text("{")


def _shard(out: Path) -> Path:
    return out / "data-00000.parquet"


def _truncate_shard(out: Path) -> None:
    shard = _shard(out)
    shard.write_bytes(_half(shard.read_bytes()))


def _zero_shard_tail(out: Path) -> None:
    """Same size as the manifest says, the second half zeroed (a torn write)."""
    shard = _shard(out)
    data = shard.read_bytes()
    shard.write_bytes(_half(data) + b"\0" * (len(data) - len(data) // 2))


# -- checks on observations --------------------------------------------------------------------
def specials_only_at_the_ends(obs: dict) -> None:
    """Special-token ids appear only as BOS (first) and EOS (last) of each
    row: special-token strings and chat markup typed by a user are text."""
    special = set(obs["special_ids"])
    for row in obs["rows"]:
        ids = row["ids"]
        where = [k for k, t in enumerate(ids) if t in special]
        ends = ([0] if obs["bos"] is not None else []) + (
            [len(ids) - 1] if obs["eos"] is not None else []
        )
        assert where == ends, (row.get("row"), where, [ids[k] for k in where])
        assert obs["bos"] is None or ids[0] == obs["bos"]
        assert obs["eos"] is None or ids[-1] == obs["eos"]


def cut_to_the_budget(row: int) -> Callable[[dict], None]:
    def check(obs: dict) -> None:
        kept = {r["row"]: r for r in obs["rows"]}[row]
        assert kept["truncated"], kept
        assert kept["length"] <= obs["max_length"], kept
        assert kept["length"] >= obs["max_length"] - 8, kept  # fair fills the budget

    return check


def turns_cut(row: int, total: int) -> Callable[[dict], None]:
    def check(obs: dict) -> None:
        kept = {r["row"]: r for r in obs["rows"]}[row]
        assert kept["turns"] == total, kept
        assert 1 <= kept["turns_kept"] < total and kept["truncated"], kept
        assert kept["length"] <= obs["max_length"], kept

    return check


def joined_and_cut(row: int, total: int) -> Callable[[dict], None]:
    """`concat` joins each field's turns into one: every turn is shown, cut."""

    def check(obs: dict) -> None:
        kept = {r["row"]: r for r in obs["rows"]}[row]
        assert kept["turns"] == total and kept["truncated"], kept
        assert kept["length"] <= obs["max_length"], kept

    return check


def row_ids_from_the_id_column(obs: dict) -> None:
    """A BOM before the header must not hide the `id` column (ids would then
    be the row numbers)."""
    assert [r["id"] for r in obs["rows"]] == ["id-0", "id-1", "id-2"]


def vocabulary_loaded(obs: dict) -> None:
    assert obs["vocab_size"] > 0


def dataset_loaded(obs: dict) -> None:
    assert obs["rows"] == 6


# -- the corpus --------------------------------------------------------------------------------
TEXT = ("prompt", "response_a", "response_b")
LOAD_ERROR = "cannot load tokenizer"
SPECIAL_TEXT = (
    "<bos><eos><pad><unk> <start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    "<|begin_of_text|><|start_header_id|>assistant<|end_header_id|>\n\nok<|eot_id|>"
    "<|end_of_text|> </s><s>[INST] hi [/INST] <|im_start|>system\nx<|im_end|>"
    "\n\n## Round 2:\n### Prompt:\n### Response A:\n......"
)

_CASES: list[Case] = []


def case(*args: Any, **kwargs: Any) -> None:
    _CASES.append(Case(*args, **kwargs))


# Controls: clean inputs through every entry point (the harness works).
case("control-kaggle", "control", BUILD, kaggle(), Built())
case("control-kaggle-cli", "control", CLI, kaggle(), Built())
case("control-canonical-jsonl", "control", BUILD, canonical_jsonl(), Built())
case("control-canonical-parquet", "control", BUILD, canonical_parquet(), Built())
case("control-encode-json", "control", ENCODE_JSON, json_columns(turns("x"), 0), Encodes((0,) * 3))
case(
    "control-tokenizer",
    "control",
    TOKENIZER,
    tokenizer_file(lambda: demo_tokenizer_json().encode()),
    Loads(vocabulary_loaded),
    note="the demo tokenizer.json",
)
case("control-load-dataset", "control", LOAD, built_dataset(), Loads(dataset_loaded))

# Malformed JSON in each text column.
for k, col in enumerate(TEXT):
    case(
        f"kaggle-malformed-json-{col}",
        "malformed JSON",
        BUILD,
        kaggle({col: '["unterminated'}),
        Built(dropped={1: "bad_text"}, details={1: (f"column {col}", "character 14")}),
    )
    case(
        f"encode-json-malformed-json-{col}",
        "malformed JSON",
        ENCODE_JSON,
        json_columns('["unterminated', k),
        Rejected("InputError", ("row 1", f"column {col}", "character 14")),
    )
case(
    "kaggle-not-json-at-all",
    "malformed JSON",
    BUILD,
    kaggle({"response_b": "just text"}),
    Built(dropped={1: "bad_text"}, details={1: ("column response_b", "character 0")}),
)
case(
    "kaggle-json-bare-string",
    "malformed JSON",
    BUILD,
    kaggle({"prompt": '"a string, not a list"'}),
    Built(dropped={1: "bad_text"}, details={1: ("column prompt", "expected '['")}),
)
case(
    "kaggle-json-trailing-text",
    "malformed JSON",
    BUILD,
    kaggle({"response_a": '["a"] and more'}),
    Built(dropped={1: "bad_text"}, details={1: ("column response_a", "after the closing")}),
)
case(
    "kaggle-json-empty-cell-text",
    "malformed JSON",
    CLI,
    kaggle({"prompt": "   "}),
    Built(dropped={1: "bad_text"}, details={1: ("column prompt",)}),
)

# null, numbers, objects and nested lists inside the turn lists.
case(
    "kaggle-turn-null",
    "null / numbers / objects / nested lists in turns",
    BUILD,
    kaggle({"response_a": "[null]"}),
    Built(repairs={1: NULL}, flags={1: EMPTY_A}),
)
case(
    "kaggle-turn-null-repaired-drop",
    "null / numbers / objects / nested lists in turns",
    BUILD,
    kaggle({"response_a": '[null, "x"]', "response_b": '["y", "z"]', "prompt": '["p", "q"]'}),
    Built(dropped={1: "repaired"}),
    config={"repaired": "drop"},
)
for col, cell, what in (
    ("prompt", "[1]", "number"),
    ("response_a", '[{"text": "hi"}]', "object"),
    ("response_b", '[["nested"]]', "nested-list"),
    ("prompt", '["ok", true]', "boolean"),
):
    case(
        f"kaggle-turn-{what}",
        "null / numbers / objects / nested lists in turns",
        BUILD,
        kaggle({col: cell}),
        Built(dropped={1: "bad_text"}, details={1: (f"column {col}", "expected a string or null")}),
    )
    case(
        f"encode-json-turn-{what}",
        "null / numbers / objects / nested lists in turns",
        ENCODE_JSON,
        json_columns(cell, TEXT.index(col)),
        Rejected("InputError", ("row 1", f"column {col}", "expected a string or null")),
    )
case(
    "encode-json-turn-null",
    "null / numbers / objects / nested lists in turns",
    ENCODE_JSON,
    json_columns('[null, "x"]', 2),
    Encodes((0, NULL | RAGGED, 0), turns_total=(1, 2, 1)),
)
for value, what in ((None, "null"), (7, "number"), ({"t": "x"}, "object"), (["x"], "nested-list")):
    expect: Outcome = (
        Built(repairs={1: NULL}, flags={1: EMPTY_PROMPT})
        if value is None
        else Built(dropped={1: "bad_text"}, details={1: ("prompt",)})
    )
    case(
        f"canonical-jsonl-turn-{what}",
        "null / numbers / objects / nested lists in turns",
        BUILD,
        canonical_jsonl({"prompt": [value]}),
        expect,
    )
case(
    "canonical-parquet-turn-null",
    "null / numbers / objects / nested lists in turns",
    BUILD,
    canonical_parquet({"response_b": ["b", None]}),
    Built(repairs={1: NULL | RAGGED}),
)
for value, what, message in (
    (7, "number", "turn 0 is a int"),
    ({"t": "x"}, "object", "turn 0 is a dict"),
    ([["x"]], "nested-list", "turn 0 is a list"),
    (b"bytes", "bytes", "turn 0 is a bytes"),
):
    case(
        f"encode-turn-{what}",
        "null / numbers / objects / nested lists in turns",
        ENCODE,
        columns([["p0"], [value], ["p2"]], [["a"]] * 3, [["b"]] * 3),
        Rejected("InputError", ("row 1", "column prompt", message)),
    )
case(
    "encode-turn-none",
    "null / numbers / objects / nested lists in turns",
    ENCODE,
    columns([["p0"], [None], ["p2"]], [["a"]] * 3, [["b"]] * 3),
    Encodes((0, NULL, 0)),
)

case(
    "encode-json-none-cell",
    "null / numbers / objects / nested lists in turns",
    ENCODE_JSON,
    json_columns(None, 0),
    Encodes((0, NULL | RAGGED, 0)),
)

# Lone and reversed surrogate escapes.
for what, escaped in (
    ("lone-high", "\\ud83d alone"),
    ("lone-low", "alone \\ude00"),
    ("reversed", "\\ude00\\ud83d reversed"),
):
    case(
        f"kaggle-surrogate-{what}",
        "lone / reversed surrogates",
        BUILD,
        kaggle({"response_b": f'["{escaped}"]'}),
        Built(repairs={1: SURROGATE}),
    )
    case(
        f"encode-json-surrogate-{what}",
        "lone / reversed surrogates",
        ENCODE_JSON,
        json_columns(f'["{escaped}"]', 0),
        Encodes((0, SURROGATE, 0)),
    )
case(
    "kaggle-surrogate-pair-is-fine",
    "lone / reversed surrogates",
    BUILD,
    kaggle({"prompt": '["\\ud83d\\ude00 a smile"]'}),
    Built(),
)
case(
    "kaggle-surrogate-repaired-drop",
    "lone / reversed surrogates",
    BUILD,
    kaggle({"response_b": '["\\ud83d alone"]'}),
    Built(dropped={1: "repaired"}),
    config={"repaired": "drop"},
)
case(
    "encode-surrogate-in-python-str",
    "lone / reversed surrogates",
    ENCODE,
    columns([["p0"], ["\ud83d alone"], ["p2"]], [["a"]] * 3, [["b"]] * 3),
    Encodes((0, SURROGATE, 0)),
)
case(
    "canonical-jsonl-surrogate",
    "lone / reversed surrogates",
    BUILD,
    canonical_jsonl({"response_a": ["\ud83d alone"]}),
    Built(dropped={1: "repaired"}),
    config={"repaired": "drop"},  # F2 (fixed): the JSON readers count their repairs
)
case(
    "canonical-jsonl-surrogate-kept",
    "lone / reversed surrogates",
    BUILD,
    canonical_jsonl(
        {"prompt": ["fine", None], "response_a": ["a", "b"], "response_b": ["x", "\ude00 low"]}
    ),
    Built(repairs={1: NULL | SURROGATE}),
)
case(
    "canonical-json-array-surrogate",
    "lone / reversed surrogates",
    BUILD,
    canonical_jsonl({"response_a": ["\ud83d alone"]}, array=True),
    Built(repairs={1: SURROGATE}),
)
case(
    "arena33k-jsonl-surrogate",
    "lone / reversed surrogates",
    BUILD,
    arena33k_jsonl("hi \ud83d", "\ude00\ud83d reversed"),
    Built(repairs={1: SURROGATE}),
)

# NUL bytes.
case(
    "kaggle-nul-escape",
    "NUL bytes",
    BUILD,
    kaggle({"response_a": '["before \\u0000 after"]'}),
    Built(),
    note="U+0000 written as a JSON escape is text like any other",
)
case(
    "kaggle-nul-raw-in-json",
    "NUL bytes",
    BUILD,
    kaggle({"response_a": '["before NUL after"]'}, replace=(b"before NUL", b"before \x00")),
    Built(dropped={1: "bad_text"}, details={1: ("column response_a", "raw control character")}),
)
case(
    "kaggle-nul-in-id-and-model",
    "NUL bytes",
    BUILD,
    kaggle({"id": "id-1\x00x", "model_a": "model\x00x"}),
    Built(),
)
case(
    "encode-nul",
    "NUL bytes",
    ENCODE,
    columns([["p0"], ["a\x00b"], ["p2"]], [["a\x00"]] * 3, [["\x00"]] * 3),
    Encodes((0, 0, 0)),
)
case(
    "canonical-jsonl-nul",
    "NUL bytes",
    BUILD,
    canonical_jsonl({"prompt": ["a\x00b"]}),
    Built(),
)

# Invalid UTF-8.
case(
    "kaggle-invalid-utf8",
    "invalid UTF-8",
    BUILD,
    kaggle({"response_a": '["bad BYTES here"]'}, replace=(b"BYTES", b"\xff\xfe\xc3")),
    Rejected("InputError", ("{file}", "row 1 (line 3)", "column response_a", "byte 0xff")),
)
case(
    "kaggle-invalid-utf8-cli",
    "invalid UTF-8",
    CLI,
    kaggle(replace=(b"answer b 2", b"answer \xc0 2")),
    Rejected("InputError", ("{file}", "utf-8")),
)
case(
    "canonical-jsonl-invalid-utf8",
    "invalid UTF-8",
    BUILD,
    canonical_jsonl(line=b'{"id": "id-1", "prompt": ["\xff"], "response_a": ["a"]}'),
    Built(dropped={1: "bad_record"}, details={1: ("utf-8",)}),
)

# BOMs.
case(
    "kaggle-bom",
    "BOMs",
    BUILD,
    kaggle(prefix=b"\xef\xbb\xbf"),
    Built(check=row_ids_from_the_id_column),
)
case("canonical-jsonl-bom", "BOMs", BUILD, canonical_jsonl(prefix=b"\xef\xbb\xbf"), Built())
case(
    "canonical-json-array-bom",
    "BOMs",
    BUILD,
    canonical_jsonl(prefix=b"\xef\xbb\xbf", array=True),
    Built(),
)
case(
    "kaggle-bom-inside-a-cell",
    "BOMs",
    BUILD,
    kaggle({"prompt": '\ufeff["text"]'}),
    Built(dropped={1: "bad_text"}, details={1: ("column prompt", "character 0")}),
)
case(
    "kaggle-bom-inside-a-turn",
    "BOMs",
    BUILD,
    kaggle({"prompt": '["\ufefftext"]'}),
    Built(),
)
case(
    "tokenizer-bom",
    "BOMs",
    TOKENIZER,
    tokenizer_file(lambda: b"\xef\xbb\xbf" + demo_tokenizer_json().encode()),
    Rejected("TokenizerError", (LOAD_ERROR, "{file}", "starts with a UTF-8 BOM")),
    note="a good tokenizer.json after a UTF-8 BOM: refused, as Hugging Face refuses it",
)

# A 100 MB answer; 100,000 turns.
case(
    "kaggle-100mb-answer",
    "100 MB answer",
    BUILD,
    kaggle_big_answer(100 * MB),
    Built(repairs={1: CLIPPED}, check=cut_to_the_budget(1)),
    config={"max_length": 2048},
    fresh=True,
    max_seconds=60,
)
case(
    "encode-json-100mb-answer-no-word-start",
    "100 MB answer",
    ENCODE_JSON,
    big_json_cell(100 * MB, "a"),
    Encodes((CLIPPED,)),
    config={"max_length": 2048},
    fresh=True,
    max_seconds=60,
    # F7 (fixed): one BPE word of 100 MB took 11 GB; turns past 1 MiB are clipped
)
case(
    "encode-json-100mb-answer-llama3",
    "100 MB answer",
    ENCODE_JSON,
    big_json_cell(100 * MB, WORDS),
    Encodes((CLIPPED,)),
    config={"max_length": 2048, "tokenizer": "llama3"},
    fresh=True,
    max_seconds=60,
    needs=("llama3",),
    # F7 (fixed): Llama-3 encodes whole texts, 120-230 bytes per character (killed by OOM)
)
case(
    "kaggle-100k-turns",
    "100,000 turns",
    BUILD,
    kaggle_many_turns(100_000),
    Built(check=turns_cut(1, 100_000)),
    config={"max_length": 2048},
    fresh=True,
    max_seconds=60,  # F1 (fixed): more than 64 turns panicked in Encoder::header_ids
)
case(
    "kaggle-100k-turns-concat",
    "100,000 turns",
    BUILD,
    kaggle_many_turns(100_000),
    Built(check=joined_and_cut(1, 100_000)),
    config={"max_length": 2048, "template": "concat"},
    fresh=True,
    max_seconds=60,
)
case(
    "encode-json-65-turns",
    "100,000 turns",
    ENCODE_JSON,
    columns(
        [turns(*(f"q{k}" for k in range(65)))],
        [turns(*(f"a{k}" for k in range(65)))],
        [turns(*(f"b{k}" for k in range(65)))],
    ),
    Encodes((0,), turns_total=(65,)),
    config={"max_length": 4096},  # F1 (fixed): the smallest reproduction of the panic
)

# 0 turns; ragged turn lists.
case(
    "kaggle-zero-turns-labelled",
    "0 turns",
    BUILD,
    kaggle({"prompt": "[]", "response_a": "[]", "response_b": "[]"}),
    Built(dropped={1: "both_empty"}),
)
case(
    "kaggle-zero-turns-unlabelled",
    "0 turns",
    BUILD,
    kaggle({"prompt": "[]", "response_a": "[]", "response_b": "[]"}, header=TEST_HEADER),
    Built(flags={1: EMPTY_A | EMPTY_B | EMPTY_PROMPT}),
    note="unlabelled rows are data to predict: kept, flagged empty",
)
case(
    "encode-json-zero-turns",
    "0 turns",
    ENCODE_JSON,
    columns(["[]"], ["[]"], ["[]"]),
    Encodes((0,), turns_total=(0,)),
)
case(
    "kaggle-ragged",
    "ragged turn lists",
    BUILD,
    kaggle({"prompt": turns("p1", "p2", "p3"), "response_b": turns("b1", "b2")}),
    Built(repairs={1: RAGGED}),
)
case(
    "kaggle-ragged-empty-prompt",
    "ragged turn lists",
    BUILD,
    kaggle({"prompt": "[]"}),
    Built(repairs={1: RAGGED}, flags={1: EMPTY_PROMPT}),
)
case(
    "kaggle-ragged-drop",
    "ragged turn lists",
    BUILD,
    kaggle({"prompt": turns("p1", "p2")}),
    Built(dropped={1: "ragged"}),
    config={"ragged": "drop"},
)
case(
    "encode-json-ragged",
    "ragged turn lists",
    ENCODE_JSON,
    columns([turns("p1", "p2", "p3")], [turns("a1")], [turns("b1", "b2")]),
    Encodes((RAGGED,), turns_total=(3,)),
)

# Labels that do not sum to 1, negative, NaN, all zero (and other broken winner cells).
case(
    "kaggle-labels-sum-2",
    "labels",
    BUILD,
    kaggle({"winner_model_a": "1", "winner_model_b": "1", "winner_tie": "0"}),
    Built(flags={1: NORMALISED}),
)
case(
    "kaggle-labels-fractional",
    "labels",
    BUILD,
    kaggle({"winner_model_a": "0.2", "winner_model_b": "0.2", "winner_tie": "0.1"}),
    Built(flags={1: NORMALISED}),
)
for what, cells, words in (
    ("negative", ("-1", "1", "1"), "labels [-1.0"),
    ("nan", ("nan", "0", "1"), "labels [nan"),
    ("all-zero", ("0", "0", "0"), "labels [0.0, 0.0, 0.0]"),
    ("infinite", ("inf", "0", "0"), "labels [inf"),
    ("not-a-number", ("yes", "0", "1"), "not three numbers"),
    ("one-missing", ("1", "0", ""), "not three numbers"),
):
    case(
        f"kaggle-labels-{what}",
        "labels",
        BUILD,
        kaggle(dict(zip(("winner_model_a", "winner_model_b", "winner_tie"), cells))),
        Built(dropped={1: "bad_labels"}, details={1: (words,)}),
    )
case(
    "kaggle-labels-all-missing",
    "labels",
    BUILD,
    kaggle({"winner_model_a": "", "winner_model_b": "", "winner_tie": ""}),
    Built(dropped={1: "bad_labels"}, details={1: ("winner_model_a=<empty>",)}),
)
case(
    "canonical-labels-two-values",
    "labels",
    BUILD,
    canonical_jsonl({"labels": [1.0, 0.0]}),
    Built(dropped={1: "bad_labels"}, details={1: ("2 value(s)",)}),
)
case(
    "canonical-labels-negative",
    "labels",
    BUILD,
    canonical_parquet({"labels": [-0.5, 1.0, 0.5]}),
    Built(dropped={1: "bad_labels"}),
)
case(
    "canonical-labels-not-a-list",
    "labels",
    BUILD,
    canonical_jsonl({"labels": "A"}),
    Built(dropped={1: "bad_labels"}, details={1: ("labels is str",)}),
)

# Missing or extra columns.
for col in TEXT:
    case(
        f"kaggle-missing-column-{col}",
        "missing / extra columns",
        BUILD,
        kaggle(header=tuple(c for c in HEADER if c != col)),
        Rejected("InputError", ("{file}", "missing column", col)),
    )
case(
    "kaggle-missing-winner-column",
    "missing / extra columns",
    CLI,
    kaggle(header=HEADER[:-1]),
    Rejected("InputError", ("{file}", "missing column", "winner_tie")),
)
case(
    "kaggle-extra-columns",
    "missing / extra columns",
    BUILD,
    kaggle(header=(*HEADER, "language", "notes")),
    Built(),
)
case(
    "canonical-missing-labels",
    "missing / extra columns",
    BUILD,
    canonical_parquet(drop=("labels",)),
    Rejected("InputError", ("{file}", "missing column", "labels")),
)
case(
    "kaggle-row-with-an-extra-field",
    "missing / extra columns",
    BUILD,
    kaggle(line=csv_text([list(good_row(1).values())], HEADER).split("\n")[1] + ",surplus"),
    Rejected(
        "InputError",
        ("{file}", f"row 1 (line 3) has {len(HEADER) + 1} fields, the header {len(HEADER)}"),
    ),
)
case(
    "kaggle-row-with-missing-fields",
    "missing / extra columns",
    BUILD,
    kaggle(line='id-1,"[""only a prompt""]"', header=TEST_HEADER),
    Built(repairs={1: NULL | RAGGED}, flags={1: EMPTY_A | EMPTY_B}),
    note="absent trailing cells read as null cells: empty lists, flagged null",
)

# Duplicate ids.
case(
    "kaggle-duplicate-id",
    "duplicate ids",
    BUILD,
    kaggle({"id": "id-0"}),
    Built(dropped={1: "duplicate_id"}),
)
case(
    "kaggle-duplicate-id-unlabelled",
    "duplicate ids",
    BUILD,
    kaggle({"id": "id-2"}, header=TEST_HEADER),
    Built(dropped={2: "duplicate_id"}),
    note="the later row goes: the earlier one keeps the id",
)
case(
    "kaggle-missing-id",
    "duplicate ids",
    BUILD,
    kaggle({"id": ""}),
    Built(dropped={1: "missing_id"}),
)
case(
    "canonical-duplicate-id",
    "duplicate ids",
    BUILD,
    canonical_jsonl({"id": "id-0"}),
    Built(dropped={1: "duplicate_id"}),
)

# Special-token strings and chat-template markup in user text.
case(
    "kaggle-special-tokens",
    "special tokens / chat markup",
    BUILD,
    kaggle({c: turns(f"{c}: {SPECIAL_TEXT}") for c in TEXT}),
    Built(check=specials_only_at_the_ends),
    config={"tokenizer": "gemma3", "max_length": 1024},
    needs=("gemma3",),
    want_ids=True,
    note="gemma3: the demo tokenizer's own BPE merges spell <bos> and <eos> (as HF does)",
)
for name in SHARED_TOKENIZERS:
    case(
        f"encode-json-special-tokens-{name}",
        "special tokens / chat markup",
        ENCODE_JSON,
        columns(
            [turns(SPECIAL_TEXT)] * 2,
            [turns(SPECIAL_TEXT)] * 2,
            [turns("<eos>"), turns("</s> <|eot_id|>")],
        ),
        Encodes((0, 0), check=specials_only_at_the_ends),
        config={"tokenizer": name, "max_length": 1024},
        needs=(name,),
        want_ids=True,
    )

# An empty file.
case(
    "kaggle-empty-file",
    "empty file",
    BUILD,
    raw_file(b"", "train.csv"),
    Rejected("InputError", ("{file}", "empty")),
)
case(
    "kaggle-empty-file-cli",
    "empty file",
    CLI,
    raw_file(b"", "train.csv"),
    Rejected("InputError", ("{file}", "empty")),
)
case(
    "kaggle-header-only",
    "empty file",
    BUILD,
    kaggle(n=0),
    Rejected("InputError", ("{file}", "no rows", "nothing to build")),
)
case(
    "canonical-jsonl-empty-file",
    "empty file",
    BUILD,
    raw_file(b"", "rows.jsonl"),
    Rejected("InputError", ("{file}", "no records")),
)
case(
    "canonical-jsonl-blank-lines",
    "empty file",
    BUILD,
    raw_file(b"\n\n  \n", "rows.jsonl"),
    Rejected("InputError", ("{file}", "no records")),
)
case(
    "canonical-parquet-empty-file",
    "empty file",
    BUILD,
    raw_file(b"", "rows.parquet"),
    Rejected("InputError", ("{file}", "cannot read")),
)

# A truncated (or damaged) parquet file.
for what, damage in (
    ("truncated-half", _half),
    ("truncated-footer", _cut_footer),
    ("only-magic", _only_magic),
    ("corrupt-middle", _corrupt_middle),
):
    case(
        f"canonical-parquet-{what}",
        "truncated parquet",
        BUILD,
        canonical_parquet(damage=damage),
        Rejected("InputError", ("{file}", "cannot read")),
    )
case(
    "load-dataset-truncated-shard",
    "truncated parquet",
    LOAD,
    built_dataset(_truncate_shard),
    Rejected("InputError", ("data-00000.parquet", "size differs")),
)
case(
    "load-dataset-torn-shard",
    "truncated parquet",
    LOAD,
    built_dataset(_zero_shard_tail),
    Rejected("InputError", ("data-00000.parquet", "cannot read")),
)
case(
    "load-dataset-no-manifest",
    "truncated parquet",
    LOAD,
    built_dataset(_no_manifest),
    Rejected("InputError", ("not a dataset", "manifest.json")),
)
case(
    "load-dataset-manifest-not-json",
    "truncated parquet",
    LOAD,
    built_dataset(_manifest_not_json),
    Rejected("InputError", ("manifest.json", "not valid JSON")),
)

# A tokenizer.json that is not one.
for what, content in (
    ("empty", b""),
    ("not-json", b"hello"),
    ("json-array", b"[]"),
    ("json-null", b"null"),
    ("empty-object", b"{}"),
    ("unknown-model", b'{"model": {"type": "Nope"}}'),
    ("binary", b"\xff\xfe\x00garbage\x00"),
):
    case(
        f"tokenizer-{what}",
        "tokenizer.json that is not one",
        TOKENIZER,
        tokenizer_file(lambda content=content: content),
        Rejected("TokenizerError", (LOAD_ERROR, "{file}")),
        note=f"tokenizer.json holding {content!r}",
    )
case(
    "tokenizer-truncated",
    "tokenizer.json that is not one",
    TOKENIZER,
    tokenizer_file(lambda: demo_tokenizer_json().encode()[:5000]),
    Rejected("TokenizerError", (LOAD_ERROR, "{file}", "EOF")),
    note="the first 5,000 bytes of a real tokenizer.json",
)
case(
    "tokenizer-directory-without-it",
    "tokenizer.json that is not one",
    TOKENIZER,
    tokenizer_dir(config=b"{}", with_json=False),
    Rejected("TokenizerError", ("no such tokenizer file", "tokenizer.json")),
)
case(
    "tokenizer-config-not-json",
    "tokenizer.json that is not one",
    TOKENIZER,
    tokenizer_dir(config=b"{not json"),
    Rejected("TokenizerError", ("tokenizer_config.json", "not a readable JSON file")),
)
case(
    "tokenizer-not-one-cli",
    "tokenizer.json that is not one",
    CLI,
    kaggle(),
    Rejected("TokenizerError", (LOAD_ERROR, "not-a-tokenizer.json")),
    cli_args=("--tokenizer", "{dir}/not-a-tokenizer.json"),
    config={"write": {"not-a-tokenizer.json": b"<html>404</html>"}},
    note="--tokenizer names an HTML page",
)

CASES: tuple[Case, ...] = tuple(_CASES)
BY_NAME: dict[str, Case] = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
assert all(c.entry in ENTRIES for c in CASES)
