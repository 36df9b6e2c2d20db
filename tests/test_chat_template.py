"""`af.ChatTemplate` against transformers' `apply_chat_template` on the shared
tokenizers' own templates (gemma3, llama3) and on templates that exercise the
Jinja environment transformers builds: the same text, the same ids, or both
refuse the conversation."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import arena_fast as af
from strategies import SPECIAL_STRINGS, UNICODE_STRINGS, texts

transformers = pytest.importorskip("transformers")

NAMES = ("gemma3", "llama3")


class Case:
    """One tokenizer directory loaded both ways."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.hf = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        self.template = af.ChatTemplate.from_file(directory / "tokenizer_config.json")
        self.tokenizer = af.Tokenizer.from_file(directory)

    def outcome_hf(self, messages, add_generation_prompt):
        try:
            text = self.hf.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
            ids = self.hf.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=add_generation_prompt
            )["input_ids"]
        except Exception as exc:  # jinja2.TemplateError, ValueError: a refusal
            return ("raises", type(exc).__name__)
        return (text, list(ids))

    def outcome_ours(self, messages, add_generation_prompt):
        try:
            text = self.template.render(messages, add_generation_prompt)
            ids = self.template.encode(self.tokenizer, messages, add_generation_prompt)
        except af.ConfigError as exc:
            return ("raises", str(exc))
        return (text, ids)

    def assert_same(self, messages, add_generation_prompt=False):
        want = self.outcome_hf(messages, add_generation_prompt)
        got = self.outcome_ours(messages, add_generation_prompt)
        if want[0] == "raises":
            assert got[0] == "raises", (messages, want, got)
        else:
            assert got == want, (messages, want, got)
        return got


_CASES: dict[Path, Case] = {}


def load(directory: Path) -> Case:
    if directory not in _CASES:
        _CASES[directory] = Case(directory)
    return _CASES[directory]


@pytest.fixture(params=NAMES)
def case(request, shared_dir) -> Case:
    return load(shared_dir / "tokenizers" / request.param)


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


CONVERSATIONS = {
    "single turn": [user("What is 2 + 2?")],
    "multi turn": [user("hi"), assistant("Hello! How can I help?"), user("Tell me a joke.")],
    "system first": [system("You are terse."), user("hi"), assistant("hey"), user("bye")],
    "system-less assistant last": [user("q"), assistant("a")],
    "system only": [system("rules")],
    "system in the middle": [user("q"), system("rules"), assistant("a")],
    "two users in a row": [user("a"), user("b")],
    "assistant first": [assistant("I start"), user("ok")],
    "tool role": [user("q"), {"role": "tool", "content": "42"}],
    "unknown role": [{"role": "narrator", "content": "Once upon a time"}],
    "empty contents": [system(""), user(""), assistant("")],
    "whitespace contents": [user("  \n\t padded \n "), assistant("\u3000x\x1c\x1f")],
    "special tokens in content": [user(" ".join(SPECIAL_STRINGS)), assistant("<bos><eos>")],
    "unicode": [user("".join(UNICODE_STRINGS)), assistant("e\u0301 😀 中文")],
    "cased text": [user("ßa o'neil ǆx ﬀ 3rd a_b HELLO-world"), assistant("İstanbul straße")],
    "template markup in content": [user("{{ bos_token }} {% if x %}"), assistant("{#")],
}


@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_same_text_and_ids_as_transformers(case, name, add_generation_prompt):
    case.assert_same(CONVERSATIONS[name], add_generation_prompt)


def test_gemma_refuses_what_its_template_refuses(shared_dir):
    case = load(shared_dir / "tokenizers" / "gemma3")
    outcome = case.assert_same([user("a"), user("b")])
    assert outcome[0] == "raises"
    assert "Conversation roles must alternate" in outcome[1]
    assert "raised an exception" in outcome[1]


def test_the_template_writes_the_bos_once(shared_dir):
    case = load(shared_dir / "tokenizers" / "llama3")
    ids = case.template.encode(case.tokenizer, [user("hi")])
    bos = case.tokenizer.token_to_id("<|begin_of_text|>")
    assert ids[0] == bos and ids.count(bos) == 1
    # A special-token string in a message is the special token, as in transformers.
    ids = case.template.encode(case.tokenizer, [user("<|eot_id|>")])
    assert ids.count(case.tokenizer.token_to_id("<|eot_id|>")) == 2


def test_a_pickled_template_renders_the_same(shared_dir):
    case = load(shared_dir / "tokenizers" / "gemma3")
    copy = pickle.loads(pickle.dumps(case.template))
    assert copy.source == case.template.source
    assert copy.special_tokens == case.template.special_tokens
    messages = CONVERSATIONS["special tokens in content"]
    assert copy.encode(case.tokenizer, messages) == case.template.encode(case.tokenizer, messages)


def test_strftime_now_is_the_local_date_as_python_writes_it(custom_case):
    # Llama 3.1's templates write the date this way.
    source = "{{ strftime_now('%d %B %Y') }} {{ strftime_now('%A %j %Z') }}"
    ours = af.ChatTemplate.from_config({"chat_template": source}).render([user("x")])
    hf = custom_case.hf.apply_chat_template([user("x")], chat_template=source, tokenize=False)
    assert ours == hf


def test_a_config_without_a_template_is_refused_like_transformers(shared_dir):
    directory = shared_dir / "tokenizers" / "qwen2_5"
    hf = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    with pytest.raises(ValueError, match="chat_template is not set"):
        hf.apply_chat_template([user("hi")], tokenize=False)
    with pytest.raises(af.ConfigError, match="no chat_template"):
        af.ChatTemplate.from_file(directory)


# A template written to exercise the environment: whitespace control, Python
# methods, tojson, namespaces, loop controls, printed Python values, a
# generation block and a trailing newline.
ENVIRONMENT_TEMPLATE = """{{- bos_token }}
{% set ns = namespace(system=none, count=0) %}
  {% for message in messages %}
    {% if message.role == 'system' %}
        {% set ns.system = message.content.strip() %}
        {% continue %}
    {% endif %}
    {% set ns.count = ns.count + 1 %}
<|{{ message['role'] | upper }}|> {{ message.content | trim }}
{{ message | tojson }} {{ message | tojson(indent=2, sort_keys=true) }}
    {%- for key, value in message.items() %} {{ key }}={{ value.split() | length }}{% endfor %}
{{ message.content.title() }}|{{ message.content | title }}|{{ message.content[:3] }}
{{- message.content.lstrip('<') }}
    {% if message.content.startswith('stop') %}{% break %}{% endif %}
    {% generation %}{{ eos_token }}{% endgeneration %}
{% endfor %}
{{ ns.system }} {{ ns.count }} {{ add_generation_prompt }} {{ tools }} {{ [ns.count, 'x'] }}
{% if add_generation_prompt %}<|ASSISTANT|>{% endif %}
"""


@pytest.fixture(scope="module")
def custom_case(shared_dir, tmp_path_factory) -> Case:
    """llama3's tokenizer with the environment template in chat_template.jinja
    (which takes priority over the config's own, in transformers too)."""
    source = shared_dir / "tokenizers" / "llama3"
    tmp_path = tmp_path_factory.mktemp("custom_template")
    (tmp_path / "tokenizer.json").symlink_to(source / "tokenizer.json")
    shutil.copy(source / "tokenizer_config.json", tmp_path / "tokenizer_config.json")
    (tmp_path / "chat_template.jinja").write_text(ENVIRONMENT_TEMPLATE, encoding="utf-8")
    return Case(tmp_path)


@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_the_environment_matches_transformers(custom_case, name, add_generation_prompt):
    case = custom_case
    assert case.template.source == ENVIRONMENT_TEMPLATE
    messages = CONVERSATIONS[name] + [user("stop here"), assistant("never shown")]
    text, _ = case.assert_same(messages, add_generation_prompt)
    assert "never shown" not in text


def test_named_templates_and_added_token_objects(shared_dir):
    config = json.loads(
        (shared_dir / "tokenizers" / "llama3" / "tokenizer_config.json").read_text("utf-8")
    )
    own = config["chat_template"]
    config["bos_token"] = {"content": config["bos_token"], "lstrip": False, "special": True}
    config["chat_template"] = [
        {"name": "tool_use", "template": "{{ tools }}"},
        {"name": "default", "template": own},
    ]
    named = af.ChatTemplate.from_config(config)
    plain = load(shared_dir / "tokenizers" / "llama3").template
    messages = CONVERSATIONS["multi turn"]
    assert named.render(messages) == plain.render(messages)
    assert named.special_tokens["bos_token"] == "<|begin_of_text|>"
    config["chat_template"] = config["chat_template"][:1]
    with pytest.raises(af.ConfigError, match="no `default`"):
        af.ChatTemplate.from_config(config)


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{% for m in messages %}", "does not compile"),
        ("{{ raise_exception('no system messages') }}", "raised an exception: no system messages"),
        ("{{ messages[0].content.no_such_method() }}", "failed on this conversation"),
        # A template that would loop for hours stops at the instruction budget
        # (about a second), and one that recurses without end at the engine's
        # depth limit.
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "ran past 20000000 instructions",
        ),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recursion limit"),
    ],
)
def test_broken_templates_are_config_errors(template, match):
    with pytest.raises(af.ConfigError, match=match):
        af.ChatTemplate.from_config({"chat_template": template}).render([user("x")])


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty conversation"),
        ("hi", "expected a list"),
        ([("user", "hi")], r"messages\[0\]: expected a dict"),
        ([{"role": "user"}], r"messages\[0\]\.content: expected a string, got missing"),
        ([{"role": "user", "content": None}], "got a NoneType"),
        ([{"role": "user", "content": "x", "name": "bob"}], "unsupported keys"),
        ([user("\ud83d")], "lone surrogate"),
    ],
)
def test_bad_messages_are_input_errors(messages, match):
    template = af.ChatTemplate.from_config({"chat_template": "{{ messages }}"})
    with pytest.raises(af.InputError, match=match):
        template.render(messages)


def test_encode_needs_an_arena_fast_tokenizer():
    template = af.ChatTemplate.from_config({"chat_template": "x"})
    with pytest.raises(af.ConfigError, match="af.Tokenizer"):
        template.encode(object(), [user("x")])


ROLES = st.sampled_from(["user", "assistant", "user", "assistant", "system", "tool"])


@st.composite
def conversations(draw):
    """Mostly alternating chats (what templates accept), some with odd roles."""
    n = draw(st.integers(min_value=1, max_value=6))
    if draw(st.booleans()):
        roles = [draw(ROLES) for _ in range(n)]
    else:
        start = ["system"] if draw(st.booleans()) else []
        roles = start + ["user" if i % 2 == 0 else "assistant" for i in range(n)]
    contents = st.one_of(texts(surrogates=False, long=False), st.sampled_from(SPECIAL_STRINGS))
    return [{"role": role, "content": draw(contents)} for role in roles]


@pytest.mark.slow
@given(data=st.data())
def test_random_conversations_match_transformers(shared_dir, data):
    for name in NAMES:
        case = load(shared_dir / "tokenizers" / name)
        messages = data.draw(conversations(), label=name)
        case.assert_same(messages, data.draw(st.booleans(), label="add_generation_prompt"))
