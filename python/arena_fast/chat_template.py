"""`af.ChatTemplate`: a model's own chat template, rendered exactly as
transformers' `apply_chat_template` renders it (docs/reward.md, "Chat
templates").

The Jinja `chat_template` of a `tokenizer_config.json` is compiled and
rendered in Rust (minijinja, in the environment transformers builds:
`trim_blocks`, `lstrip_blocks`, its `tojson`, `raise_exception`,
`strftime_now`); `encode` tokenizes the text as `apply_chat_template(...,
tokenize=True)` does: no special tokens added (the template writes its own
BOS), special-token strings in the text matched as special tokens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

from . import _core
from .errors import ConfigError, InputError
from .tokenizer import Tokenizer

__all__ = ["ChatTemplate", "MESSAGE_KEYS"]

# What a message may hold: other keys (tool calls, names, images) are read by
# some templates and would be rendered differently here, so they are refused.
MESSAGE_KEYS = ("role", "content")


def _pairs(messages: Any) -> list[tuple[str, str]]:
    """The (role, content) pairs of a conversation, checked."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InputError(
            "messages: expected a list of {'role', 'content'} dicts, "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise InputError("messages: cannot apply a chat template to an empty conversation")
    pairs = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InputError(f"messages[{i}]: expected a dict, got {type(message).__name__}")
        extra = sorted(str(k) for k in message if k not in MESSAGE_KEYS)
        if extra:
            raise InputError(
                f"messages[{i}]: unsupported keys {extra}; "
                "a message holds only 'role' and 'content'"
            )
        for key in MESSAGE_KEYS:
            value = message.get(key)
            if not isinstance(value, str):
                got = "missing" if key not in message else f"a {type(value).__name__}"
                raise InputError(f"messages[{i}].{key}: expected a string, got {got}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(
                    f"messages[{i}].{key}: a lone surrogate at character {exc.start}"
                ) from None
        pairs.append((message["role"], message["content"]))
    return pairs


class ChatTemplate:
    """A compiled chat template and the special-token strings it sees."""

    def __init__(self, core: _core.ChatTemplate):
        self._core = core

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> ChatTemplate:
        """From a `tokenizer_config.json` (or the directory holding it); a
        `chat_template.jinja` beside it takes priority, as in transformers.
        Raises ConfigError when there is no template or it does not compile."""
        return cls(_core.ChatTemplate.from_file(os.fspath(path)))

    @classmethod
    def from_config(cls, config: Mapping, *, origin: str = "tokenizer config") -> ChatTemplate:
        """From a tokenizer config as a dict (its `chat_template` and special
        tokens); `origin` names it in error messages."""
        if not isinstance(config, Mapping):
            raise ConfigError(f"{origin}: expected a dict, got {type(config).__name__}")
        try:
            text = json.dumps(dict(config))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: not JSON data: {exc}") from None
        return cls(_core.ChatTemplate.from_config_json(text, origin))

    @property
    def source(self) -> str:
        """The template's Jinja source."""
        return self._core.source

    @property
    def special_tokens(self) -> dict[str, str]:
        """The special tokens the template sees, by name (`bos_token`, ...)."""
        return dict(self._core.special_tokens)

    def render(self, messages: Sequence[Mapping], add_generation_prompt: bool = False) -> str:
        """The text of `messages` (dicts with string 'role' and 'content'),
        equal to `apply_chat_template(messages, tokenize=False)`. A template
        that raises (e.g. on roles that do not alternate) is a ConfigError
        naming its message."""
        return self._core.render(_pairs(messages), bool(add_generation_prompt))

    def encode(
        self,
        tokenizer: Tokenizer,
        messages: Sequence[Mapping],
        add_generation_prompt: bool = False,
    ) -> list[int]:
        """The ids of the rendered text, equal to `apply_chat_template(messages,
        tokenize=True)`: no special tokens added, special-token strings in the
        text (the template's and the messages') encoded as special tokens."""
        if not isinstance(tokenizer, Tokenizer):
            raise ConfigError(
                f"tokenizer: expected an af.Tokenizer, got {type(tokenizer).__name__}"
            )
        return self._core.encode(tokenizer._core, _pairs(messages), bool(add_generation_prompt))

    def __reduce__(self):
        # Pickled as the config it can be rebuilt from (DataLoader workers,
        # spawned processes): the source and every special token by name.
        config = {"chat_template": self.source, "extra_special_tokens": self.special_tokens}
        return (_from_config, (config,))

    def __repr__(self) -> str:
        return f"ChatTemplate({len(self.source)} characters, tokens {sorted(self.special_tokens)})"


def _from_config(config: dict) -> ChatTemplate:
    return ChatTemplate.from_config(config, origin="a pickled chat template")
