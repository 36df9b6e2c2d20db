"""Text from data made safe to print. Ids, model names, turns, paths and the
error messages that quote them can hold bytes a terminal obeys: an OSC
sequence sets the window title or a hyperlink (`ESC ] 0 ; ... BEL`), `ESC [2J`
clears the screen, a carriage return overwrites the line, a bidi override
(U+202E) shows text in another order than it is. `printable` writes each such
character as a visible Python-style escape (`\\x1b`, `\\x07`, `\\r`, `\\u202e`), so
the text stays readable and nothing in it steers the terminal.

Escaped: C0 controls (U+0000-U+001F), DEL, C1 controls (U+0080-U+009F), the
bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), and
lone surrogates (which a UTF-8 stream cannot even encode). With
`layout=True` newlines and tabs are kept: a line break inside a turn is the
turn's layout, an ESC never is. A backslash already in the text is left as
it is (doubling every backslash of code in a prompt would cost more
readability than the rare ambiguity with a real escape is worth)."""

from __future__ import annotations

import re

# DEL, C1, bidi controls, lone surrogates; then with or without \t \n (0x09, 0x0a).
_NEVER = r"\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(rf"[\x00-\x1f{_NEVER}]")
_UNSAFE_BUT_LAYOUT = re.compile(rf"[\x00-\x08\x0b-\x1f{_NEVER}]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, layout: bool = False) -> str:
    """`str(text)` with every character that could steer a terminal escaped
    (see the module doc); newlines and tabs kept when `layout`, else escaped
    too, so the result is one line."""
    pattern = _UNSAFE_BUT_LAYOUT if layout else _UNSAFE
    return pattern.sub(_escape, str(text))
