"""`template="chat"`: a model's own chat template as a layout of the encoder.

The template is rendered once per conversation length with sentinel
contents, which gives the literal text it writes around each message; the
encoder then lays a row out from those literals and the message contents,
tokenized in pieces that meet at special tokens, so that the ids equal
`apply_chat_template(messages, tokenize=True)` without rendering any row
(docs/encoding.md, "Separate layout and chat templates"). A template this
cannot reproduce exactly is refused with a ConfigError saying why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

from .chat_template import ChatTemplate
from .errors import ArenaFastError, ConfigError
from .tokenizer import Tokenizer

__all__ = ["ChatLayout", "chat_layout", "load_chat_template"]

# Conversation lengths (turns) rendered to learn the literals.
_LENGTHS = (1, 2, 3)
# Contents the layout is checked on (per turn: prompt, answer), against a
# real rendering and tokenization of the same conversation.
_PROBES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("Hi there", "Hello! How can I help?"),),
    ((" \n spaced  \n", "\tanswer \n\n"), ("", ""), ("x", "y z")),
    (("2+2=?", "4."), ("naïve café 日本語 🙂", "\n\n- a\n- b\n")),
    (("<start_of_turn><|eot_id|><|im_end|><bos></s>", "</think> <think>x</think>done"),),
)


def _sentinel(role: str, k: int) -> str:
    return f"ArenaFastSentinel{role}{k}q"


def _messages(turns: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    out = []
    for prompt, answer in turns:
        out += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return out


@dataclass(frozen=True)
class ChatLayout:
    """The literal text of a chat template: `start` before the first user
    message, `between` a user message and its answer, `next_turn` between an
    answer and the next user message, `finish` after the last answer; and
    whether the template strips user / assistant contents (`| trim`)."""

    start: str
    between: str
    next_turn: str
    finish: str
    strip: tuple[bool, bool]


def load_chat_template(
    tokenizer: Tokenizer, chat_template: Union[None, str, ChatTemplate]
) -> ChatTemplate:
    """The chat template to lay rows out with: `chat_template` (an
    af.ChatTemplate, or a Jinja source rendered with the special tokens of
    the tokenizer's tokenizer_config.json), else that config's own. A
    tokenizer without one is a ConfigError naming the file."""
    if isinstance(chat_template, ChatTemplate):
        return chat_template
    config_path = _config_path(tokenizer)
    if chat_template is None:
        if config_path is None:
            raise ConfigError(
                "template='chat' needs a chat template: this tokenizer was not loaded from a "
                "directory with a tokenizer_config.json; pass chat_template= (an "
                "af.ChatTemplate or a Jinja string)"
            )
        return ChatTemplate.from_file(config_path)
    if not isinstance(chat_template, str):
        raise ConfigError(
            "chat_template must be None, a Jinja string or an af.ChatTemplate, "
            f"got {type(chat_template).__name__}"
        )
    config: dict = {}
    if config_path is not None:
        try:
            with open(config_path, encoding="utf-8") as f:
                loaded = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{config_path}: not a readable JSON file: {exc}") from None
        config = loaded if isinstance(loaded, dict) else {}
    config["chat_template"] = chat_template
    return ChatTemplate.from_config(config, origin="chat_template=")


def _config_path(tokenizer: Tokenizer) -> Optional[str]:
    if not tokenizer.source:
        return None
    path = os.path.join(os.path.dirname(tokenizer.source), "tokenizer_config.json")
    return path if os.path.isfile(path) else None


def _render(chat: ChatTemplate, turns: Sequence[tuple[str, str]], what: str) -> str:
    try:
        return chat.render(_messages(turns))
    except ArenaFastError as exc:
        raise ConfigError(f"template='chat': rendering {what} failed: {exc}") from None


def _literals(chat: ChatTemplate, n: int) -> list[str]:
    """The text around the 2n sentinel contents of an n-turn conversation."""
    turns = [(_sentinel("U", k), _sentinel("A", k)) for k in range(n)]
    text = _render(chat, turns, f"a {n}-turn conversation")
    out, pos = [], 0
    for sentinel in (s for turn in turns for s in turn):
        at = text.find(sentinel, pos)
        if at < 0 or text.count(sentinel) != 1:
            raise ConfigError(
                "template='chat': the chat template does not write each message's content "
                "once and in order, so its layout cannot be learned"
            )
        out.append(text[pos:at])
        pos = at + len(sentinel)
    return out + [text[pos:]]


def _same(values: list[str], what: str) -> str:
    if any(v != values[0] for v in values):
        raise ConfigError(
            f"template='chat': the chat template writes different text {what} depending on "
            "the conversation's length; this layout needs it fixed"
        )
    return values[0]


def _strips(chat: ChatTemplate, layout: ChatLayout, role: str) -> bool:
    """Whether the template strips a `role` content: True for `| trim`."""
    padded = f" \n\t {_sentinel(role, 0)} \n "
    turn = (padded, _sentinel("A", 0)) if role == "U" else (_sentinel("U", 0), padded)
    text = _render(chat, [turn], "a conversation with padded contents")
    plain = layout.start + turn[0] + layout.between + turn[1] + layout.finish
    stripped = layout.start + turn[0].strip() + layout.between + turn[1].strip() + layout.finish
    if text == plain:
        return False
    if text == stripped:
        return True
    raise ConfigError(
        "template='chat': the chat template changes message contents in a way other than "
        "stripping whitespace, which this layout cannot reproduce"
    )


def chat_layout(chat: ChatTemplate) -> ChatLayout:
    """The literals of `chat`, checked to be the same for every length."""
    lits = {n: _literals(chat, n) for n in _LENGTHS}
    start = _same([lits[n][0] for n in _LENGTHS], "before the first message")
    between = _same([lits[n][k] for n in _LENGTHS for k in range(1, 2 * n, 2)], "before answers")
    next_turn = _same([lits[n][k] for n in _LENGTHS for k in range(2, 2 * n, 2)], "between turns")
    finish = _same([lits[n][2 * n] for n in _LENGTHS], "after the last answer")
    layout = ChatLayout(start, between, next_turn, finish, (False, False))
    strip = (_strips(chat, layout, "U"), _strips(chat, layout, "A"))
    return ChatLayout(start, between, next_turn, finish, strip)


def _is_special(tokenizer: Tokenizer, token_id: int) -> Optional[str]:
    """The string of `token_id` when it is a special token (encoded as one
    token only while special tokens are matched), else None."""
    text = tokenizer.id_to_token(token_id)
    if text is None or tokenizer.encode(text, split_special_tokens=False) != [token_id]:
        return None
    return text if tokenizer.encode(text, split_special_tokens=True) != [token_id] else None


def _split(tokenizer: Tokenizer, text: str) -> tuple[str, str, str]:
    """`text` as (before its first special token, from there to the end of
    its last, after it); ("", "", text) without one."""
    specials = [
        s
        for s in (_is_special(tokenizer, i) for i in tokenizer.encode(text, False))
        if s is not None
    ]
    first, pos = None, 0
    for s in specials:
        at = text.find(s, pos)
        if at < 0:  # a token whose string is not its text: no split
            return "", "", text
        first = at if first is None else first
        pos = at + len(s)
    if first is None:
        return "", "", text
    return text[:first], text[first:pos], text[pos:]


def _refuse(what: str) -> ConfigError:
    return ConfigError(
        f"template='chat': {what}, so its pieces cannot be tokenized apart exactly "
        "(a content must meet the template's text at a special token)"
    )


def template_fields(tokenizer: Tokenizer, layout: ChatLayout) -> dict[str, str]:
    """The `af.Template` strings that lay a side out as `layout` renders it:
    begin = the start up to the user role's opening, header (from the second
    turn) = the close of an answer and the opening of the next user message up
    to its last special token, prompt prefix = the text after that special
    token (tokenized with the prompt), prompt suffix = the close of the user
    message, answer prefix = the assistant's opening after its last special
    token, end = the text after the last answer."""
    s_head, s_core, s_tail = _split(tokenizer, layout.start)
    m_head, m_core, m_tail = _split(tokenizer, layout.between)
    j_head, j_core, j_tail = _split(tokenizer, layout.next_turn)
    e_head, e_core, _ = _split(tokenizer, layout.finish)
    if m_head or not m_core:
        raise _refuse("the text after a user message does not start with a special token")
    if j_head or not j_core:
        raise _refuse("the text after an answer does not start with a special token")
    if layout.finish and (e_head or not e_core):
        raise _refuse("the text after the last answer does not start with a special token")
    if s_tail != j_tail:
        raise _refuse("the first user message is opened with other text than the later ones")
    if "{i}" in j_core:
        raise ConfigError("template='chat': the template's text holds '{i}', a header pattern")
    return dict(
        begin=s_head + s_core,
        end=layout.finish,
        first_header="",
        header=j_core,
        prompt_prefix=j_tail,
        prompt_suffix=m_core,
        a_prefix=m_tail,
        a_suffix="",
        b_prefix=m_tail,
        b_suffix="",
    )


def verify(chat: ChatTemplate, tokenizer: Tokenizer, encode_sides) -> None:
    """Check the layout against real renderings: `encode_sides(prompts,
    answers)` (lists of turns, no budget, special tokens matched in contents)
    must give `chat.encode` of each probe conversation."""
    for k, turns in enumerate(_PROBES):
        prompts, answers = [t[0] for t in turns], [t[1] for t in turns]
        want = chat.encode(tokenizer, _messages(turns))
        got = encode_sides(prompts, answers)
        if got != want:
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
            first = min(len(got), len(want)) if first is None else first
            raise ConfigError(
                f"template='chat': laid out piece by piece, probe conversation {k} does not "
                f"give the template's own ids (first difference at token {first}); this "
                "template renders contents in a way the layout cannot reproduce"
            )


# What each span of an explained chat row is, by (kind, field).
_PIECES = {
    ("bos", None): "bos",
    ("eos", None): "eos",
    ("begin", None): "template start (up to the first user opening)",
    ("header", None): "answer close, user opening",
    ("prefix", 0): "user message",
    ("text", 0): "user message",
    ("suffix", 0): "user close, assistant opening",
    ("prefix", 1): "assistant message",
    ("text", 1): "assistant message",
    ("end", None): "template end (after the last answer)",
}


def piece_name(kind: str, field: Optional[int]) -> str:
    """The chat template's name for an explained span: a message's text
    (tokenized with the role opening's text after its last special token), or
    the template's text around the messages."""
    if kind == "marker":
        return "cut marker"
    return _PIECES.get((kind, field), kind)
