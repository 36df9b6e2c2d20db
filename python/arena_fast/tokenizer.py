"""`af.Tokenizer`: a Hugging Face tokenizer.json loaded by the Rust core.

The Python `tokenizers` object cannot be handed to another extension module,
so the core loads the JSON itself; `from_hf` takes it from a live object.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

from . import _core
from .checks import is_integer
from .errors import ConfigError, InputError, TokenizerError

__all__ = ["Tokenizer"]

# Tried in order when neither the caller nor tokenizer_config.json names one.
USUAL_BOS = ("<bos>", "<s>", "<|begin_of_text|>", "<|startoftext|>", "[CLS]")
USUAL_EOS = ("<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>", "[SEP]")
USUAL_PAD = ("<pad>", "[PAD]")
_SPECIAL = ("bos", "eos", "pad")

DEMO_DIR = Path(__file__).parent / "data" / "demo_tokenizer"


def _token_name(value: Any) -> Optional[str]:
    """A special token as tokenizer_config.json spells it: str, dict or null."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _declared(data: dict) -> tuple[dict, frozenset]:
    """The BOS / EOS / pad names a tokenizer_config.json declares, and which of
    them it declares as null (Qwen 2.5's `"bos_token": null`: the family
    has no BOS, and no usual name should stand in for one)."""
    names = {w: _token_name(data.get(f"{w}_token")) for w in _SPECIAL}
    null = frozenset(w for w in _SPECIAL if f"{w}_token" in data and data[f"{w}_token"] is None)
    return names, null


class Tokenizer:
    """A tokenizer loaded from `tokenizer.json`, with the BOS/EOS/pad names
    its `tokenizer_config.json` (or the object it came from) declares;
    `none_declared` holds those it declares as null (no such token)."""

    def __init__(
        self,
        core: _core.Tokenizer,
        *,
        bos_token: Optional[str] = None,
        eos_token: Optional[str] = None,
        source: Optional[str] = None,
        pad_token: Optional[str] = None,
        none_declared: frozenset = frozenset(),
    ):
        self._core = core
        self.config_bos_token = bos_token
        self.config_eos_token = eos_token
        self.config_pad_token = pad_token
        self.none_declared = frozenset(none_declared)
        self.source = source

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> Tokenizer:
        """Load `tokenizer.json` (or a directory holding it); BOS/EOS names come
        from a `tokenizer_config.json` beside it when there is one."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise TokenizerError(f"{path}: no such tokenizer file")
        names, null = {}, frozenset()
        config = path.parent / "tokenizer_config.json"
        if config.is_file():
            try:
                data = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise TokenizerError(f"{config}: not a readable JSON file: {exc}") from None
            except RecursionError:
                raise TokenizerError(f"{config}: not valid JSON: nested too deeply") from None
            if not isinstance(data, dict):
                kind = "null" if data is None else f"a JSON {type(data).__name__}"
                raise TokenizerError(f"{config}: {kind}, expected an object")
            names, null = _declared(data)
        try:
            core = _core.Tokenizer.from_file(str(path))
        except TokenizerError as exc:
            with open(path, "rb") as f:
                bom = f.read(3) == b"\xef\xbb\xbf"
            if not bom:
                raise
            # Hugging Face refuses it too; say why, which serde's message does not.
            raise TokenizerError(
                f"{exc} (the file starts with a UTF-8 BOM, which a tokenizer.json cannot)"
            ) from None
        return cls(
            core,
            bos_token=names.get("bos"),
            eos_token=names.get("eos"),
            pad_token=names.get("pad"),
            none_declared=null,
            source=str(path),
        )

    @classmethod
    def from_str(
        cls, json_text: str, *, bos_token: Optional[str] = None, eos_token: Optional[str] = None
    ) -> Tokenizer:
        """Load from the JSON text of a tokenizer.json."""
        return cls(_core.Tokenizer.from_str(json_text), bos_token=bos_token, eos_token=eos_token)

    @classmethod
    def from_hf(cls, obj: Any) -> Tokenizer:
        """From a transformers fast tokenizer or a `tokenizers.Tokenizer`."""
        backend = getattr(obj, "backend_tokenizer", obj)
        if not hasattr(backend, "to_str"):
            raise TokenizerError(
                f"cannot read a tokenizer from {type(obj).__name__}: expected a transformers "
                "fast tokenizer or a tokenizers.Tokenizer"
            )
        # A transformers tokenizer's unset token reads None: it has none (a
        # tokenizers.Tokenizer has no such attributes, and declares nothing).
        names = {w: _token_name(getattr(obj, f"{w}_token", None)) for w in _SPECIAL}
        null = frozenset(w for w in _SPECIAL if hasattr(obj, f"{w}_token") and names[w] is None)
        return cls(
            _core.Tokenizer.from_str(backend.to_str()),
            bos_token=names["bos"],
            eos_token=names["eos"],
            pad_token=names["pad"],
            none_declared=null,
        )

    @classmethod
    def demo(cls) -> Tokenizer:
        """The small BPE tokenizer shipped with the package (for the demo)."""
        return cls.from_file(DEMO_DIR / "tokenizer.json")

    # -- encoding ----------------------------------------------------------
    def encode(self, text: str, split_special_tokens: bool = True) -> list[int]:
        """Ids of `text`, no special tokens added. With `split_special_tokens`,
        special-token strings in the text are encoded as plain text."""
        try:
            return self._core.encode(text, split_special_tokens)
        except UnicodeEncodeError as exc:
            raise InputError(
                f"text holds a lone surrogate at character {exc.start}; the encoder repairs "
                "those (and flags the row), a bare tokenizer does not"
            ) from exc

    def decode(self, ids) -> str:
        return self._core.decode([int(i) for i in ids])

    def token_to_id(self, token: str) -> Optional[int]:
        return self._core.token_to_id(token)

    def id_to_token(self, token_id: int) -> Optional[str]:
        return self._core.id_to_token(int(token_id))

    @property
    def vocab_size(self) -> int:
        return self._core.vocab_size

    @property
    def word_split(self) -> bool:
        """Whether texts are encoded word by word through a cache (decided at
        load time from the vocabulary: exact, or not used)."""
        return self._core.word_split

    @property
    def fast_path(self) -> str:
        """How texts are encoded (decided at load time, exact either way):
        `"word-cache"` (Gemma-style vocabularies, word by word through a
        cache), `"byte-level"` (byte-level BPE such as Llama 3 or Qwen 2,
        pre-token by pre-token through a cache) or `"whole-text"` (Hugging
        Face `tokenizers` on each whole text: its speed)."""
        return self._core.fast_path

    @property
    def fast_path_reason(self) -> str:
        """Why this tokenizer takes `fast_path`, in a sentence."""
        return self._core.fast_path_reason

    def to_str(self) -> str:
        return self._core.to_str()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_str().encode("utf-8")).hexdigest()

    def special_token_id(self, which: str, value: Union[None, bool, str, int]) -> Optional[int]:
        """Resolve a `bos_token` / `eos_token` / `pad_token` option (`which`:
        "bos", "eos" or "pad") to an id (or None).

        None: the name from tokenizer_config.json; no token when it declares
        none (null, as Qwen 2.5's BOS); else the first of the usual names in
        the vocabulary, else no token. False: no token. A str: that token,
        which must exist. An int (or numpy integer): that id."""
        if which not in _SPECIAL:
            raise ConfigError(f"which must be one of {_SPECIAL}, got {which!r}")
        if value is False:
            return None
        if value is True:
            value = None
        if is_integer(value):
            value = int(value)
            if not 0 <= value < self.vocab_size:
                raise ConfigError(f"{which}_token id {value} is outside the vocabulary")
            return value
        if isinstance(value, str):
            tid = self.token_to_id(value)
            if tid is None:
                raise ConfigError(f"{which}_token {value!r} is not in the vocabulary")
            return tid
        if value is not None:
            raise ConfigError(f"{which}_token must be None, False, a str or an int")
        declared = getattr(self, f"config_{which}_token")
        if not declared and which in self.none_declared:
            return None
        usual = {"bos": USUAL_BOS, "eos": USUAL_EOS, "pad": USUAL_PAD}[which]
        for name in ((declared,) if declared else ()) + usual:
            tid = self.token_to_id(name)
            if tid is not None:
                return tid
        return None

    # -- pickling: by JSON, so encoders travel to worker processes ----------
    def __getstate__(self):
        return {
            "json": self.to_str(),
            "bos": self.config_bos_token,
            "eos": self.config_eos_token,
            "pad": self.config_pad_token,
            "none_declared": sorted(self.none_declared),
            "source": self.source,
        }

    def __setstate__(self, state):
        self._core = _core.Tokenizer.from_str(state["json"])
        self.config_bos_token = state["bos"]
        self.config_eos_token = state["eos"]
        self.config_pad_token = state.get("pad")
        self.none_declared = frozenset(state.get("none_declared", ()))
        self.source = state["source"]

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<arena_fast.Tokenizer vocab={self.vocab_size}{where}>"
