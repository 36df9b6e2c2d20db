"""Conversations written as one string with speaker markers, and the shape
a preference pair's shared history takes in a canonical row.

Two marker conventions are read: Anthropic's hh-rlhf (`\\n\\nHuman: ...
\\n\\nAssistant: ...`, also with a bare `Human:` at the very start, as
prompt columns derived from it have) and HelpSteer2's multi-turn prompts
(`... <extra_id_1>Assistant\\n... <extra_id_1>User\\n...`).

A canonical row holds the user turns as `prompt` and each side's assistant
turns as `response_a` / `response_b`, turn i of the answers replying to
turn i of the prompt. The assistant turns both sides share (the history
before the compared answer) therefore open both answer lists: a history
`user1, assistant1, user2` compared on the last answer becomes
`prompt = [user1, user2]`, `response_a = [assistant1, answer_a]`,
`response_b = [assistant1, answer_b]` (as arena33k's two conversations of
the same user turns)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

__all__ = [
    "HH_MARKERS",
    "HELPSTEER_MARKERS",
    "USER",
    "ASSISTANT",
    "BadTranscript",
    "split_markers",
    "merge_runs",
    "history",
    "message_history",
    "prompt_turns",
]

USER, ASSISTANT = "user", "assistant"

# The split happens at these markers only: `Human:` inside a line (not after
# a blank line) is text. The marker's own trailing space is not text.
HH_MARKERS = re.compile(r"\n\n(Human|Assistant):")
# A bare marker opening the text (prompt columns derived from hh-rlhf):
# checked apart, as an alternation with it makes the split 5x slower.
_HH_BARE_START = re.compile(r"\s*(?:Human|Assistant):")
HELPSTEER_MARKERS = re.compile(r"<extra_id_1>(User|Assistant)\n?")
_ROLES = {"Human": USER, "User": USER, "Assistant": ASSISTANT}


class BadTranscript(ValueError):
    """A transcript that cannot be split into user / assistant turns."""


def split_markers(text: str, markers: re.Pattern, what: str, lead_role: Optional[str] = None):
    """[(role, text)] of a marked transcript, each turn's text stripped of
    leading and trailing whitespace (the markers' own spacing: hh-rlhf
    writes `Human: text`, and some turns end in stray spaces or newlines).
    Text before the first marker is a turn of `lead_role` when given
    (HelpSteer2's prompt opens with the first user turn unmarked), else it
    must be blank. Raises BadTranscript."""
    if markers is HH_MARKERS and not text.startswith("\n\n") and _HH_BARE_START.match(text):
        text = "\n\n" + text.lstrip()
    parts = markers.split(text)
    head, rest = parts[0], parts[1:]
    turns = []
    if not rest and lead_role is None:
        raise BadTranscript(f"{what}: no speaker marker (Human: / Assistant:)")
    if head.strip():
        if lead_role is None:
            raise BadTranscript(f"{what}: {len(head)} character(s) before the first speaker marker")
        turns.append((lead_role, head.strip()))
    for i in range(0, len(rest), 2):
        turns.append((_ROLES[rest[i]], rest[i + 1].strip()))
    return turns


def merge_runs(turns: Sequence[tuple[str, Optional[str]]]) -> list[tuple[str, Optional[str]]]:
    """Consecutive turns of one role as one turn, texts joined by a blank
    line (hh-rlhf has a few transcripts with two Assistant turns in a row);
    a null text joins as nothing."""
    merged: list[tuple[str, Optional[str]]] = []
    for role, text in turns:
        if merged and merged[-1][0] == role:
            before = merged[-1][1]
            parts = [t for t in (before, text) if t is not None]
            merged[-1] = (role, "\n\n".join(parts) if parts else None)
        else:
            merged.append((role, text))
    return merged


def history(turns: Sequence[tuple[str, Optional[str]]], what: str) -> tuple[list, list]:
    """(user turns, assistant turns) of a history that leads up to the
    compared answers: same-role runs merged, it must open and end with a
    user turn (so it has one more user turn than assistant turns; an empty
    trailing assistant turn, the `\\n\\nAssistant:` generation cue, is left
    out). Raises BadTranscript."""
    merged = merge_runs(turns)
    if merged and merged[-1][0] == ASSISTANT and not merged[-1][1]:
        merged.pop()
    if not merged:
        raise BadTranscript(f"{what}: no user turn")
    if merged[0][0] != USER:
        raise BadTranscript(f"{what}: opens with an assistant turn, not a user turn")
    if merged[-1][0] != USER:
        raise BadTranscript(f"{what}: ends with an assistant turn, not a user turn")
    users = [t for r, t in merged if r == USER]
    assistants = [t for r, t in merged if r == ASSISTANT]
    return users, assistants


def message_history(messages: Any, what: str) -> tuple[list, list]:
    """(user turns, assistant turns) of a history given as a list of
    `{role, content}` messages (HelpSteer3's `context`, a TRL prompt);
    other roles (system) are left out, a null content is kept as a null
    turn. Raises BadTranscript."""
    if not isinstance(messages, (list, tuple)):
        kind = "null" if messages is None else type(messages).__name__
        raise BadTranscript(f"{what} is {kind}, not a list of {{role, content}}")
    turns = []
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise BadTranscript(f"{what}[{i}] is not a {{role, content}} object")
        content = turn["content"]
        if content is not None and not isinstance(content, str):
            raise BadTranscript(f"{what}[{i}].content is a {type(content).__name__}")
        if turn["role"] in (USER, ASSISTANT):
            turns.append((turn["role"], content))
    return history(turns, what)


def prompt_turns(prompt: str, markers: re.Pattern = HH_MARKERS) -> tuple[list, list]:
    """(user turns, earlier assistant turns) of a prompt string: split at
    `markers` when it is a transcript that opens with a user turn and ends
    with one (after an optional empty assistant cue), else the whole string
    as the one user turn (a plain question)."""
    bare = markers is HH_MARKERS and _HH_BARE_START.match(prompt)
    if markers.search(prompt) is None and not bare:
        return [prompt], []
    lead = USER if markers is HELPSTEER_MARKERS else None
    try:
        return history(split_markers(prompt, markers, "prompt", lead), "prompt")
    except BadTranscript:
        return [prompt], []
