"""The Compare view's work, with no web code: a pair checked and bounded, each
chosen run's verdict in both orders, and the encoded input explained.

`Workbench(catalog, judges)` holds what a server loads once and keeps: each
run's `Judge` (`serve.loads.Loads`, shared with the server's context, which
preloads them; a run that fails to load keeps its error, and the others
still work) and each encoder a page can choose for the encoding
view without a run (`encoder_choices`). `Workbench.compare(pair, runs,
encoder)` returns plain data (JSON-ready): the same for the HTML page and
for `POST /api/compare`.

    {"pair": {"prompt": [...], "response_a": [...], "response_b": [...]},
     "runs": [{"name", "result": Judge.compare's record, "encoding": key}
              or {"name", "error": "why it could not score"}],
     "encodings": {key: {"label", "max_length", "layout", "orders": {"original": explained,
                                                                     "swapped": explained}}}}

where `explained` is `Encoder.explain`'s answer with every span decoded
(`text`; special tokens by name) and the turns laid out for a page
(`explain_view`). Runs sharing one tokenizer and encoder config share one
encoding. A reward run's entry also has `"reward": true` and `columns` (its
label space's probability columns): its record holds `reward_a` and
`reward_b` beside the probabilities derived from them, and no single
passes; its encoder's layout is `separate`, whose two orders are the
prompt with answer A and the prompt with answer B."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Optional

from ..dataset import TOKENIZER, read_manifest
from ..encoder import Encoder
from ..errors import InputError
from ..row_view import decode_pieces
from ..tokenizer import Tokenizer
from .catalog import Catalog
from .loads import Loads, load_judge

# A request's bounds: what one page may ask the server to encode and score.
MAX_TURNS = 64
MAX_CHARS = 1_000_000
FIELDS = ("prompt", "response_a", "response_b")
DEMO = "demo"
# A lone surrogate (JSON's "\ud800" alone) cannot be written back as UTF-8.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Pair:
    """A prompt and two answers, each a list of turns (turn i of the prompt
    pairs with turn i of each answer)."""

    prompt: list
    response_a: list
    response_b: list

    def as_dict(self) -> dict:
        return {name: list(getattr(self, name)) for name in FIELDS}

    def turn_rows(self) -> list[tuple[str, str, str]]:
        """(prompt, A, B) per turn, "" where a field has fewer turns (a form's rows)."""
        n = max(len(self.prompt), len(self.response_a), len(self.response_b))
        fields = [list(getattr(self, name)) + [""] * n for name in FIELDS]
        return [(fields[0][i], fields[1][i], fields[2][i]) for i in range(n)]


def read_pair(values: dict) -> Pair:
    """A `Pair` from `values` (`prompt`, `response_a`, `response_b`: a string
    or a list of strings), or an `InputError` naming the field. Bounded:
    at most `MAX_TURNS` turns and `MAX_CHARS` characters in all. A lone
    surrogate (JSON can hold one) becomes U+FFFD, the encoder's own repair of
    it, so that the pair can be written back as UTF-8."""
    if not isinstance(values, dict):
        raise InputError(f"expected an object with {', '.join(FIELDS)}")
    fields = {}
    total = 0
    for name in FIELDS:
        value = values.get(name, "")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise InputError(f"{name} must be a string or a list of strings (turns)")
        if not value:
            value = [""]
        if len(value) > MAX_TURNS:
            raise InputError(f"{name}: {len(value)} turns, at most {MAX_TURNS}")
        total += sum(len(t) for t in value)
        fields[name] = [LONE_SURROGATE.sub("\ufffd", t) for t in value]
    if total > MAX_CHARS:
        raise InputError(f"the texts hold {total} characters, at most {MAX_CHARS}")
    return Pair(**fields)


def field_names(swapped: bool) -> tuple[str, str, str]:
    """Whose text each field of a row holds, as placed (field 1 is B's answer
    in the swapped order)."""
    return ("Prompt", "B", "A") if swapped else ("Prompt", "A", "B")


def explain_view(encoder: Encoder, pair: Pair, swapped: bool) -> dict:
    """`encoder.explain` of `pair` in one order, with each span's `text`
    (decoded, special tokens by name: `row_view.decode_pieces`) and `turn_views`: per turn, its
    header spans and its three fields (`label`, `spans`, `tokens`, `kept`,
    `cut`), dropped turns included (kept 0, no spans)."""
    out = encoder.explain(pair.prompt, pair.response_a, pair.response_b, swapped=swapped)
    tokenizer = encoder.tokenizer
    ids = [int(i) for i in out["ids"]]
    spans = []
    for span in out["spans"]:
        pieces = decode_pieces(tokenizer, ids[span["start"] : span["stop"]])
        text = "".join(piece for piece, _ in pieces)  # special tokens by name
        spans.append({**span, "text": text, "tokens": span["stop"] - span["start"]})
    labels = field_names(swapped)
    turns: dict[int, dict] = {}
    for seg in out["segments"]:
        turn = turns.setdefault(
            seg["turn"], {"turn": seg["turn"], "header": [], "fields": {}, "kept": False}
        )
        turn["fields"][seg["field"]] = {**seg, "label": labels[seg["field"]], "spans": []}
        turn["kept"] = turn["kept"] or seg["kept"] > 0
    outside = {"before": [], "after": []}
    for span in spans:
        turn = turns.get(span["turn"]) if span["turn"] is not None else None
        if turn is None:
            outside["after" if span["kind"] in ("end", "eos") else "before"].append(span)
        elif span["field"] is None:
            turn["header"].append(span)
        else:
            turn["fields"][span["field"]]["spans"].append(span)
    view = {k: v for k, v in out.items() if k != "ids"}
    view["ids"] = ids
    view["spans"] = spans
    view["before"], view["after"] = outside["before"], outside["after"]
    view["turn_views"] = [
        {**t, "fields": [t["fields"][f] for f in sorted(t["fields"])]}
        for _, t in sorted(turns.items())
    ]
    return view


class Workbench:
    """What a server keeps between requests: each run's `Judge` (`judges`,
    the server's `Context.judges` when given: loaded once, in the background
    from the start or on first use, or its load error), and the encoders of
    the encoding view. Safe to share between threads: loads and scoring take
    a per-run lock."""

    def __init__(self, catalog: Catalog, judges: Optional[Loads] = None):
        self.catalog = catalog
        # The server's (`Context.judges`, preloaded at its start), else our own.
        self.judges = judges if judges is not None else Loads(catalog.run, load_judge)
        self._lock = threading.Lock()
        self._run_locks: dict[str, threading.Lock] = {}
        self._encoders: dict[str, Encoder] = {}
        self._identities: dict[str, str] = {}  # run name -> its encoder's identity

    def encoder_choices(self) -> list[tuple[str, str]]:
        """(key, label) of each encoder the encoding view offers: each run's,
        each dataset's, and the bundled demo tokenizer with the default
        encoder."""
        choices = [(f"run:{name}", f"run {name}") for name in self.catalog.runs]
        choices += [(f"data:{name}", f"dataset {name}") for name in self.catalog.datasets]
        choices.append((DEMO, "demo tokenizer, default encoder"))
        return choices

    def encoder(self, key: str) -> Encoder:
        """The encoder `key` (one of `encoder_choices`); `KeyError` for any
        other key, before anything is read."""
        kind, _, name = key.partition(":")
        if key != DEMO and not (
            (kind == "run" and name in self.catalog.runs)
            or (kind == "data" and name in self.catalog.datasets)
        ):
            raise KeyError(key)
        with self._lock:
            if key not in self._encoders:
                self._encoders[key] = self._load_encoder(kind, name)
            return self._encoders[key]

    def _load_encoder(self, kind: str, name: str) -> Encoder:
        if kind == "run":
            from ..predict import run_encoder  # the torch layer, on first use

            return run_encoder(self.catalog.run(name).path)
        if kind == "data":
            path = self.catalog.dataset(name).path
            return Encoder.from_config(
                Tokenizer.from_file(path / TOKENIZER), read_manifest(path)["encoder"]
            )
        return Encoder(Tokenizer.demo())

    def _run_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._run_locks.setdefault(name, threading.Lock())

    def judge(self, name: str):
        """The run `name`'s `Judge`, loaded once (`Loads`); raises what loading
        raised (again, on every call) when it failed. `KeyError` for an
        unknown name."""
        return self.judges.get(name)

    def _identity(self, name: str, encoder: Encoder) -> str:
        """The run's tokenizer and encoder config (hashed once per run)."""
        with self._lock:
            if name not in self._identities:
                config = json.dumps(encoder.config(), sort_keys=True)
                self._identities[name] = encoder.tokenizer.sha256 + config
            return self._identities[name]

    def compare(self, pair: Pair, runs: list[str], encoder: Optional[str] = None) -> dict:
        """`pair` scored by each of `runs` (names of the catalog; `KeyError`
        for another, before any work) and explained, or, without runs, only
        explained with the encoder `encoder` (`encoder_choices`; default the
        first)."""
        for name in runs:
            self.catalog.run(name)
        if not runs:
            key = encoder or self.encoder_choices()[0][0]
            enc = self.encoder(key)
            label = dict(self.encoder_choices())[key]
            return {
                "pair": pair.as_dict(),
                "runs": [],
                "encodings": {key: _encoding(enc, pair, label)},
            }
        out: dict[str, Any] = {"pair": pair.as_dict(), "runs": [], "encodings": {}}
        by_identity: dict[str, str] = {}
        for name in runs:
            try:
                judge = self.judge(name)
                with self._run_lock(name):
                    result = judge.compare_many([pair.as_dict()])[0]
                key = by_identity.setdefault(self._identity(name, judge.encoder), f"run:{name}")
                if key not in out["encodings"]:
                    out["encodings"][key] = _encoding(judge.encoder, pair, f"run {name}")
                else:
                    out["encodings"][key]["label"] += f", run {name}"
            except Exception as exc:  # this run's error on the page; the others go on
                out["runs"].append({"name": name, "error": _message(exc)})
                continue
            entry = {"name": name, "result": result, "encoding": key}
            if judge.reward:
                entry.update(reward=True, columns=list(judge.space.columns))
            out["runs"].append(entry)
        return out


def _encoding(encoder: Encoder, pair: Pair, label: str) -> dict:
    return {
        "label": label,
        "max_length": encoder.max_length,
        "layout": encoder.layout,
        "orders": {
            "original": explain_view(encoder, pair, swapped=False),
            "swapped": explain_view(encoder, pair, swapped=True),
        },
    }


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 2000 else text[:2000] + "..."
