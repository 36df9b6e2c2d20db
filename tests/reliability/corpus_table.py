"""Print the hostile-input corpus (cases.py) as the Markdown tables of
docs/reliability.md, one per kind of input:

    python tests/reliability/corpus_table.py > /tmp/table.md
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as c  # noqa: E402

REPAIRS = {c.NULL: "null", c.SURROGATE: "surrogate", c.RAGGED: "ragged", c.CLIPPED: "clipped"}
FLAGS = {
    c.EMPTY_A: "A empty",
    c.EMPTY_B: "B empty",
    c.IDENTICAL: "identical",
    c.RELABELLED: "relabelled",
    c.NORMALISED: "labels normalised",
    c.EMPTY_PROMPT: "prompt empty",
}
ENTRY = {
    c.BUILD: "build",
    c.CLI: "CLI",
    c.ENCODE_JSON: "encode_json",
    c.ENCODE: "encode",
    c.TOKENIZER: "Tokenizer.from_file",
    c.LOAD: "load_dataset",
}


def _bits(value: int, names: dict[int, str]) -> str:
    return "+".join(name for bit, name in names.items() if value & bit)


def _short(value: Any, limit: int = 44) -> str:
    text = value if isinstance(value, str) else repr(value)
    if text == "":
        return "(empty)"
    if any(not ch.isprintable() or 0xD800 <= ord(ch) <= 0xDFFF or ch == "\ufeff" for ch in text):
        text = text.encode("unicode_escape").decode()
    text = text.replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(case: c.Case) -> str:
    """The input, from the arguments of the case's generator."""
    if "special-tokens" in case.name:
        out = [
            "`cases.SPECIAL_TEXT` (special-token strings of Gemma, Llama-3, Mistral, ChatML "
            "and this project's templates) in the texts"
        ]
        return "; ".join(out + ([case.note] if case.note else []))
    closure = case.make.__closure__ or ()
    free = dict(zip(case.make.__code__.co_freevars, (cell.cell_contents for cell in closure)))
    out = []
    for key in ("cells", "fields"):
        out += [f"{k} `{_short(v)}`" for k, v in (free.get(key) or {}).items()]
    if free.get("line") is not None:
        out.append(f"row 1 is `{_short(free['line'])}`")
    if free.get("replace"):
        out.append(f"bytes `{_short(free['replace'][1])}` in a cell")
    if free.get("prefix"):
        out.append("a UTF-8 BOM first")
    if free.get("array"):
        out.append("a JSON array")
    header = tuple(free.get("header", c.HEADER))
    if header == c.TEST_HEADER:
        out.append("test.csv columns")
    elif len(header) < len(c.HEADER):
        out.append("without " + ", ".join(x for x in c.HEADER if x not in header))
    elif len(header) > len(c.HEADER):
        out.append("with " + ", ".join(x for x in header if x not in c.HEADER))
    if free.get("n") == 0:
        out.append("header only")
    if free.get("drop"):
        out.append("without " + ", ".join(free["drop"]))
    if free.get("damage") is not None:
        out.append("a clean file, then: " + free["damage"].__name__.strip("_").replace("_", " "))
    if "cell" in free and "column" in free:
        out.append(f"{c.TEXT[free['column']]} `{_short(free['cell'])}`")
    if {"p", "a", "b"} <= free.keys():
        out.append(
            f"`{_short(free['p'], 36)}`, `{_short(free['a'], 20)}`, `{_short(free['b'], 20)}`"
        )
    if "size" in free:
        out.append(f"{free['size'] // c.MB} MB of `{_short(free.get('unit', c.WORDS), 12)}`")
    if "count" in free:
        out.append(f"{free['count']:,} turns per column")
    if "data" in free:
        out.append(f"`{_short(free['data'])}`")
    if "user" in free:
        out.append(f"user `{_short(free['user'])}`, A `{_short(free['assistant'])}`")
    if "with_json" in free:
        head = "" if free["with_json"] else "no tokenizer.json; "
        out.append(f"{head}tokenizer_config.json `{_short(free['config'])}`")
    if case.note:
        out.append(case.note)
    return "; ".join(out) or "clean rows"


def outcome(case: c.Case) -> str:
    e = case.expect
    if isinstance(e, c.Rejected):
        words = ", ".join("the file" if w == "{file}" else f"`{w}`" for w in e.contains)
        return f"`{e.error}`" + (f" naming {words}" if words else "")
    if isinstance(e, c.Built):
        parts = []
        for row, reason in e.dropped.items():
            detail = e.details.get(row)
            parts.append(
                f"row {row} dropped `{reason}`" + (f" ({', '.join(detail)})" if detail else "")
            )
        parts += [f"row {row} kept, repaired {_bits(v, REPAIRS)}" for row, v in e.repairs.items()]
        parts += [f"row {row} flagged {_bits(v, FLAGS)}" for row, v in e.flags.items()]
        counts = {k: v for k, v in e.expected_counts().items() if v}
        if counts:
            parts.append("counted " + ", ".join(f"`{k}` {v}" for k, v in counts.items()))
        if e.check is not None:
            parts.append(e.check.__qualname__.split(".")[0].replace("_", " "))
        return "; ".join(parts) or "every row kept, nothing repaired"
    if isinstance(e, c.Encodes):
        text = f"repairs {list(e.repairs)}"
        if e.turns_total:
            text += f", turns {list(e.turns_total)}"
        if e.check is not None:
            text += "; " + e.check.__name__.replace("_", " ")
        return text
    return "loads" + (f" ({e.check.__name__.replace('_', ' ')})" if e.check else "")


def main() -> None:
    topic = None
    for case in c.CASES:
        if case.topic != topic:
            topic = case.topic
            print(f"\n#### {topic}\n")
            print(
                "| case | input (in row 1 of 3 clean rows unless said) | entry | outcome | today |"
            )
            print("| --- | --- | --- | --- | --- |")
        extra = [", ".join(f"{k}={v}" for k, v in case.config.items() if k != "write")]
        extra += ["own process"] if case.fresh else []
        extra += ["needs " + "/".join(case.needs)] if case.needs else []
        extra = [x for x in extra if x]
        name = f"`{case.name}`" + (f" ({'; '.join(extra)})" if extra else "")
        today = f"**xfail {case.xfail.split(':', 1)[0]}**" if case.xfail else "ok"
        print(f"| {name} | {describe(case)} | {ENTRY[case.entry]} | {outcome(case)} | {today} |")


if __name__ == "__main__":
    main()
