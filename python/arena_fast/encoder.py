"""`af.Encoder`: arena rows -> token ids that fit a budget, in the layouts the
winning Kaggle teams used, with A/B swap pairs. The work happens in Rust; this
module resolves options and wraps the results. The rules are in
docs/encoding.md; `arena_fast.reference` implements them in pure Python."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

from . import _core
from .chat_layout import chat_layout, load_chat_template, piece_name, template_fields, verify
from .chat_template import ChatTemplate
from .checks import I64_MAX, MAX_THREADS, check_bool, check_int, check_threads, int64_array
from .encoded import Encoded
from .errors import ConfigError
from .tokenizer import Tokenizer

# MAX_THREADS and check_threads live in `checks`; named here too, where they
# were first documented.
__all__ = [
    "Template",
    "Encoder",
    "TEMPLATES",
    "STRATEGIES",
    "LAYOUTS",
    "DEFAULT_MAX_LENGTH",
    "MAX_THREADS",
    "check_threads",
]

TEMPLATES = ("rounds", "pab", "concat", "tags")
STRATEGIES = ("fourth_place", "fair", "drop_oldest", "none")
LAYOUTS = ("cross", "separate")
# The token budget per row when none is given (the encoder, a build, the CLI).
DEFAULT_MAX_LENGTH = 2048


@dataclass(frozen=True)
class Template:
    """A text layout. Per kept turn: a header (`first_header` for the first,
    `header` after it; `{i}` is the turn's 1-based position), then the prompt,
    response A and response B, each as prefix + text + suffix. `begin` follows
    BOS, `end` (the final question) precedes EOS. `marker` marks a cut text.
    With `join_turns`, each field's turns are joined by it into one turn."""

    begin: str = ""
    end: str = ""
    first_header: str = ""
    header: str = ""
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    a_prefix: str = ""
    a_suffix: str = ""
    b_prefix: str = ""
    b_suffix: str = ""
    marker: str = "......"
    join_turns: Optional[str] = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.name == "join_turns":
                continue
            _check_text(f"Template.{field.name}", value)

    @classmethod
    def preset(cls, name: str) -> Template:
        """One of `TEMPLATES`: rounds (4th place), pab (2nd), concat (1st), tags (3rd)."""
        return cls(**_core.template_preset(name))

    @property
    def prefixes(self) -> tuple[str, str, str]:
        return (self.prompt_prefix, self.a_prefix, self.b_prefix)

    @property
    def suffixes(self) -> tuple[str, str, str]:
        return (self.prompt_suffix, self.a_suffix, self.b_suffix)

    def header_text(self, position: int) -> str:
        pattern = self.first_header if position == 1 else self.header
        return pattern.replace("{i}", str(position))


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{name} is not valid text: {exc}") from None


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"{name} is out of range: {value!r}") from None


def _swap_mode(swap: Union[bool, str]) -> str:
    if swap is False:
        return "original"
    if swap is True:
        return "swapped"
    if swap == "both":
        return "both"
    raise ConfigError(f"swap must be False, True or 'both', got {swap!r}")


class Encoder:
    """Encodes arena rows (a prompt and two answers, turn by turn).

    Args:
        tokenizer: an `af.Tokenizer` (or a path to tokenizer.json).
        template: a preset name (`TEMPLATES`), an `af.Template`, or "chat":
            the model's own chat template (`chat_template`, else the one in
            the tokenizer's tokenizer_config.json), each side of a row laid
            out as `apply_chat_template` lays out the conversation (user,
            assistant, user, ...): `layout="separate"`, `tokenize="joint"`, no
            BOS/EOS added by default (the template writes its own).
        chat_template: with template="chat", an `af.ChatTemplate` or a Jinja
            source (None: the tokenizer's own).
        strategy: how rows are fitted into `max_length` tokens: `fourth_place`,
            `fair`, `drop_oldest` or `none` (see docs/encoding.md).
        max_length: the token budget of a row, BOS and EOS included.
        tokenize: `split` (prefixes tokenized once, texts alone: a swap or a
            repeated text costs nothing) or `joint` (each prefix tokenized
            together with its text, as the competition pipelines did).
        bos_token, eos_token: None reads them from tokenizer_config.json (else
            the usual names), False means none, or a token string / id.
        split_special_tokens: encode special-token strings found in user text
            as plain text (safe); False treats them as special tokens, as HF does
            by default.
        null_text: what a null turn becomes (the row is flagged as repaired).
        num_threads: threads for encoding (None or 1: the calling thread; at
            most `MAX_THREADS`).
        prompt_weight: `fair`: a prompt's share relative to an answer's.
        min_segment_tokens: `fair` keeps the newest turns whose segments can
            each get this many tokens, dropping whole oldest turns first.
        keep: what a cut text keeps: `head`, or `head_tail` (head + marker + tail).
        keep_first_turns: `drop_oldest`: the first turns kept before the newest.
        tail_ratios, min_tail_tokens: `fourth_place`: the cut turn's shares of
            prompt, A and B, and the smallest remainder worth cutting into.
        layout: None (`cross`, `separate` for "chat"), `cross` (one sequence
            per row: the prompt and both answers)
            or `separate` (two rows per row: 2i the prompt turns with answer
            A's, 2i+1 with answer B's; `is_swapped` marks the B sequence; the
            shared prompt turns cut identically on both; docs/encoding.md,
            "Separate layout and chat templates").
    """

    def __init__(
        self,
        tokenizer: Union[Tokenizer, str],
        template: Union[str, Template] = "rounds",
        strategy: str = "fair",
        max_length: int = DEFAULT_MAX_LENGTH,
        tokenize: Optional[str] = None,
        bos_token: Union[None, bool, str, int] = None,
        eos_token: Union[None, bool, str, int] = None,
        split_special_tokens: bool = True,
        null_text: str = "",
        num_threads: Optional[int] = None,
        prompt_weight: float = 0.5,
        min_segment_tokens: int = 32,
        keep: str = "head",
        keep_first_turns: int = 0,
        tail_ratios: Sequence[float] = (0.2, 0.4, 0.4),
        min_tail_tokens: int = 80,
        layout: Optional[str] = None,
        chat_template: Union[None, str, ChatTemplate] = None,
    ):
        if isinstance(tokenizer, str):
            tokenizer = Tokenizer.from_file(tokenizer)
        if not isinstance(tokenizer, Tokenizer):
            raise ConfigError(f"tokenizer must be an af.Tokenizer, got {type(tokenizer).__name__}")
        chat = None
        if template == "chat":
            chat, template, strip = self._chat(tokenizer, chat_template, layout, tokenize)
            layout, tokenize = "separate", "joint"
            bos_token = False if bos_token is None else bos_token
            eos_token = False if eos_token is None else eos_token
        elif chat_template is not None:
            raise ConfigError("chat_template= is for template='chat'")
        layout = "cross" if layout is None else layout
        tokenize = "split" if tokenize is None else tokenize
        if isinstance(template, str):
            if template not in TEMPLATES:
                raise ConfigError(f"unknown template {template!r}; presets are {TEMPLATES}")
            template = Template.preset(template)
        if not isinstance(template, Template):
            raise ConfigError("template must be a preset name or an af.Template")
        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if tokenize not in ("split", "joint"):
            raise ConfigError(f"tokenize must be 'split' or 'joint', got {tokenize!r}")
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
        num_threads = check_threads(num_threads)
        max_length = check_int("max_length", max_length, 0, I64_MAX)
        min_segment_tokens = check_int("min_segment_tokens", min_segment_tokens, 0, I64_MAX)
        keep_first_turns = check_int("keep_first_turns", keep_first_turns, 0, I64_MAX)
        min_tail_tokens = check_int("min_tail_tokens", min_tail_tokens, 0, I64_MAX)
        prompt_weight = _number("prompt_weight", prompt_weight)
        try:
            ratios = tuple(_number("tail_ratios", r) for r in tail_ratios)
        except TypeError:
            raise ConfigError(f"tail_ratios must be 3 numbers, got {tail_ratios!r}") from None
        if len(ratios) != 3:
            raise ConfigError(f"tail_ratios must have 3 entries, got {len(ratios)}")
        if not isinstance(keep, str):
            raise ConfigError(f"keep must be 'head' or 'head_tail', got {keep!r}")
        split_special_tokens = check_bool("split_special_tokens", split_special_tokens)
        _check_text("null_text", null_text)
        self.tokenizer = tokenizer
        self.template = template
        self.bos_token_id = tokenizer.special_token_id("bos", bos_token)
        self.eos_token_id = tokenizer.special_token_id("eos", eos_token)
        self.options: dict[str, Any] = dict(
            strategy=strategy,
            max_length=max_length,
            tokenize=tokenize,
            split_special_tokens=split_special_tokens,
            null_text=null_text,
            num_threads=num_threads,
            prompt_weight=prompt_weight,
            min_segment_tokens=min_segment_tokens,
            keep=keep,
            keep_first_turns=keep_first_turns,
            tail_ratios=ratios,
            min_tail_tokens=min_tail_tokens,
            layout=layout,
        )
        self.chat_template = chat
        self._strip = strip if chat is not None else (False, False)
        self._core = self._build()
        if chat is not None:
            verify(chat, tokenizer, self._exact_side)

    @staticmethod
    def _chat(tokenizer, chat_template, layout, tokenize):
        """(ChatTemplate, Template, strip) for template="chat"."""
        if layout not in (None, "separate"):
            raise ConfigError(
                "template='chat' lays each answer out in its own sequence: layout must be "
                f"'separate' (or left out), got {layout!r}"
            )
        if tokenize not in (None, "joint"):
            raise ConfigError(
                "template='chat' tokenizes each content with the template text before it "
                f"(tokenize='joint'), which exactness needs; got tokenize={tokenize!r}"
            )
        chat = load_chat_template(tokenizer, chat_template)
        layout = chat_layout(chat)
        return chat, Template(**template_fields(tokenizer, layout)), layout.strip

    def _exact_side(self, prompts: list[str], answers: list[str]) -> list[int]:
        """Side A of one row, unbudgeted, special tokens matched in the texts
        (what apply_chat_template does): the layout's check."""
        o = dict(self.options, strategy="none", max_length=2**31 - 1)
        o.update(split_special_tokens=False, num_threads=None)
        probe = _core.Encoder(
            self.tokenizer._core, self.template, joint=True, bos=None, eos=None,
            **{k: v for k, v in o.items() if k not in ("tokenize", "tail_ratios")},
            tail_ratios=list(o["tail_ratios"]), strip=list(self._strip),
        )  # fmt: skip
        out = Encoded(probe.encode([prompts], [answers], [answers], "original"))
        return out[0].tolist()

    def _build(self) -> _core.Encoder:
        o = dict(self.options)
        return _core.Encoder(
            self.tokenizer._core,
            self.template,
            strategy=o["strategy"],
            max_length=o["max_length"],
            joint=o.pop("tokenize") == "joint",
            bos=self.bos_token_id,
            eos=self.eos_token_id,
            split_special_tokens=o["split_special_tokens"],
            null_text=o["null_text"],
            num_threads=o["num_threads"],
            prompt_weight=o["prompt_weight"],
            min_segment_tokens=o["min_segment_tokens"],
            keep=o["keep"],
            keep_first_turns=o["keep_first_turns"],
            tail_ratios=list(o["tail_ratios"]),
            min_tail_tokens=o["min_tail_tokens"],
            layout=o["layout"],
            strip=list(self._strip),
        )

    @property
    def max_length(self) -> int:
        return self.options["max_length"]

    @property
    def layout(self) -> str:
        """`cross` or `separate` (two rows per input row)."""
        return self.options["layout"]

    def config(self) -> dict[str, Any]:
        """Everything that determines the ids (for manifests and bundles)."""
        return {
            "template": dataclasses.asdict(self.template),
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "chat_template": None if self.chat_template is None else self.chat_template.source,
            **{k: v for k, v in self.options.items() if k != "num_threads"},
            "tail_ratios": list(self.options["tail_ratios"]),
        }

    @classmethod
    def from_config(cls, tokenizer: Tokenizer, config: dict, **overrides: Any) -> Encoder:
        """The encoder `config()` describes (as a manifest or a bundle stores
        it), on `tokenizer`; `overrides` replace single options."""
        cfg = dict(config)
        template = Template(**cfg.pop("template"))
        chat_source = cfg.pop("chat_template", None)
        bos, eos = cfg.pop("bos_token_id"), cfg.pop("eos_token_id")
        cfg["tail_ratios"] = tuple(cfg["tail_ratios"])
        # Manifests and bundles written before the separate layout.
        cfg.setdefault("layout", "cross")
        if chat_source is not None:
            template, cfg["chat_template"] = "chat", chat_source
            cfg.pop("tokenize"), cfg.pop("layout")
        cfg.update(overrides)
        return cls(
            tokenizer,
            template=template,
            bos_token=bos if bos is not None else False,
            eos_token=eos if eos is not None else False,
            **cfg,
        )

    def _swap_mode(self, swap: Union[bool, str]) -> str:
        mode = _swap_mode(swap)
        if mode != "original" and self.layout == "separate":
            raise ConfigError(
                f"swap={swap!r} with layout='separate': each row already gives both "
                "sequences of its pair (prompt + A as row 2i, prompt + B as row 2i+1), "
                "so swap must be False"
            )
        return mode

    def encode(self, prompts, responses_a, responses_b, swap: Union[bool, str] = False) -> Encoded:
        """Encode rows given as lists of turns (`str` or `None`; a bare `str`
        is one turn). `swap`: False, True (A and B exchanged) or "both" (row 2i
        original, 2i+1 its swap, from the same token segments); in the
        separate layout only False (its rows come in pairs already)."""
        mode = self._swap_mode(swap)
        return Encoded(self._core.encode(prompts, responses_a, responses_b, mode))

    def explain(self, prompt, response_a, response_b, swapped: bool = False) -> dict[str, Any]:
        """One row encoded (with `swapped`, B's answer first) and taken apart.

        Returns a dict: `ids` (the row's input ids, as `encode` gives them),
        `spans` (in order, covering `ids`: each a dict of `kind` (`bos`,
        `begin`, `header`, `prefix`, `text`, `marker`, `suffix`, `end`,
        `eos`), `turn` (0-based, None outside turns), `field` (0 the prompt,
        1 and 2 the answers as placed; None outside fields), `start`,
        `stop`; a cut segment shows as text, marker, text), `segments`
        (every turn and field, kept or not: `turn`, `field`, `tokens` (its
        full length, prefix included), `kept` (0 for a dropped turn), `cut`),
        and the row's `length`, `full_length`, `truncated`, `turns`,
        `turns_kept`, `repairs`. Texts are given as in `encode` (a string or
        a list of turns). In the separate layout `swapped` explains the B
        side (row 2i+1), field 1 being the answer; with template="chat" each
        span also has a `piece`: `user message`, `assistant message` (a
        message's text, with the role opening's text after its last special
        token), or the template's text around them (`template start`,
        `user close, assistant opening`, `answer close, user opening`,
        `template end`), `cut marker`, `bos`, `eos`."""
        out = self._core.explain(prompt, response_a, response_b, swapped=bool(swapped))
        if self.chat_template is not None:
            for span in out["spans"]:
                span["piece"] = piece_name(span["kind"], span["field"])
        return out

    def encode_json(
        self, prompts, responses_a, responses_b, swap: Union[bool, str] = False
    ) -> Encoded:
        """Encode rows given as the JSON-list strings of the Kaggle CSV columns
        (parsed in Rust; nulls and lone surrogates repaired and flagged)."""
        mode = self._swap_mode(swap)
        return Encoded(self._core.encode_json(prompts, responses_a, responses_b, mode))

    def encode_rows(self, rows, idx=None, swap: Union[bool, str] = False) -> Encoded:
        """Encode rows parsed earlier (`arena_fast.rows.rows_from_arrow`): the
        rows `idx` (an int64 array; all when None), in that order. A text the
        tokenizer cannot encode is a `TokenizerError` naming the row of
        `rows` and the column."""
        mode = self._swap_mode(swap)
        if idx is not None:
            idx = int64_array("idx", idx)
        return Encoded(self._core.encode_rows(rows, idx, mode))

    def encode_rows_skipping(
        self, rows, idx=None, swap: Union[bool, str] = False
    ) -> tuple[Encoded, list[tuple[int, Optional[str], str]]]:
        """`encode_rows`, but a row the tokenizer cannot encode (its regex
        went over its budget: docs/encoding.md, "Regex budgets") is left out
        instead of failing the call. Returns the encoded rows and the skipped
        ones as (position in `idx`, column or None for a template string,
        message); `Encoded.source_row` gives each encoded row's position."""
        mode = self._swap_mode(swap)
        if idx is not None:
            idx = int64_array("idx", idx)
        out = self._core.encode_rows(rows, idx, mode, skip_failed=True)
        return Encoded(out), out["skipped"]

    def __getstate__(self):
        return {
            "tokenizer": self.tokenizer,
            "template": self.template,
            "bos": self.bos_token_id,
            "eos": self.eos_token_id,
            "options": self.options,
            "strip": self._strip,
            "chat_template": self.chat_template,
        }

    def __setstate__(self, state):
        self.tokenizer = state["tokenizer"]
        self.template = state["template"]
        self.bos_token_id = state["bos"]
        self.eos_token_id = state["eos"]
        self.options = {"layout": "cross", **state["options"]}
        self._strip = tuple(state.get("strip", (False, False)))
        self.chat_template = state.get("chat_template")
        self._core = self._build()

    def __repr__(self) -> str:
        o = self.options
        return (
            f"<arena_fast.Encoder strategy={o['strategy']} max_length={o['max_length']} "
            f"tokenize={o['tokenize']} layout={o['layout']}>"
        )
