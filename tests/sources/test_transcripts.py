"""sources.transcripts: marker splitting, same-speaker runs, and the shared
history of a preference pair (made-up texts)."""

from __future__ import annotations

import pytest

from arena_fast.sources.transcripts import (
    ASSISTANT,
    HELPSTEER_MARKERS,
    HH_MARKERS,
    USER,
    BadTranscript,
    history,
    merge_runs,
    message_history,
    prompt_turns,
    split_markers,
)


def test_split_markers_hh():
    text = "\n\nHuman:  hi there \n\nAssistant: hello\nHuman: not a marker\n\nHuman: bye"
    assert split_markers(text, HH_MARKERS, "t") == [
        (USER, "hi there"),
        (ASSISTANT, "hello\nHuman: not a marker"),
        (USER, "bye"),
    ]
    # A bare opening marker, after blank space, counts as one.
    assert split_markers("  Human: q\n\nAssistant: a", HH_MARKERS, "t") == [
        (USER, "q"),
        (ASSISTANT, "a"),
    ]
    with pytest.raises(BadTranscript, match="t: no speaker marker"):
        split_markers("plain text", HH_MARKERS, "t")
    with pytest.raises(BadTranscript, match="t: 5 character"):
        split_markers("intro\n\nHuman: q", HH_MARKERS, "t")


def test_split_markers_helpsteer():
    text = "q1\n<extra_id_1>Assistant\na1\n<extra_id_1>User\nq2"
    assert split_markers(text, HELPSTEER_MARKERS, "p", USER) == [
        (USER, "q1"),
        (ASSISTANT, "a1"),
        (USER, "q2"),
    ]
    assert prompt_turns(text, HELPSTEER_MARKERS) == (["q1", "q2"], ["a1"])


def test_merge_runs_and_history():
    turns = [(USER, "a"), (USER, None), (USER, "b"), (ASSISTANT, "x"), (ASSISTANT, "y")]
    assert merge_runs(turns) == [(USER, "a\n\nb"), (ASSISTANT, "x\n\ny")]
    assert merge_runs([(USER, None), (USER, None)]) == [(USER, None)]
    assert history([(USER, "q"), (ASSISTANT, "a"), (USER, "q2"), (ASSISTANT, "")], "h") == (
        ["q", "q2"],
        ["a"],
    )
    for bad, message in (
        ([], "h: no user turn"),
        ([(ASSISTANT, "a"), (USER, "q")], "h: opens with an assistant turn"),
        ([(USER, "q"), (ASSISTANT, "a")], "h: ends with an assistant turn"),
    ):
        with pytest.raises(BadTranscript, match=message):
            history(bad, "h")


def test_message_history():
    messages = [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "q2"},
    ]
    assert message_history(messages, "m") == (["q", "q2"], [None])
    for bad, message in (
        (None, "m is null, not a list"),
        (["text"], r"m\[0\] is not a \{role, content\} object"),
        ([{"role": "user", "content": 3}], r"m\[0\].content is a int"),
    ):
        with pytest.raises(BadTranscript, match=message):
            message_history(bad, "m")
