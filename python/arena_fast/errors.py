"""The exception hierarchy of arena_fast, shared by the Python layer and the
Rust extension (which raises these classes by name)."""

from __future__ import annotations

__all__ = ["ArenaFastError", "InputError", "ConfigError", "TokenizerError", "InternalError"]


class ArenaFastError(Exception):
    """Base class of every error arena_fast raises on purpose."""


class InputError(ArenaFastError, ValueError):
    """Bad input data; the message names the file, row and column."""


class ConfigError(ArenaFastError, ValueError):
    """An invalid option or combination of options."""


class TokenizerError(ArenaFastError):
    """A tokenizer that cannot be loaded, or a text it cannot encode."""


class InternalError(ArenaFastError):
    """A bug in arena_fast (a Rust panic, caught at the boundary)."""
