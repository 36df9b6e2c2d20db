"""`af.Encoder(template="chat")`: each side of a row is the conversation
(user, assistant, user, ...) in the model's own chat template. Untruncated,
its ids equal transformers' `apply_chat_template(messages, tokenize=True)`;
under a budget it equals the pure-Python reference and cuts the shared
prompt identically (docs/encoding.md, "Separate layout and chat templates")."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import arena_fast as af
from arena_fast.chat_layout import chat_layout, template_fields
from arena_fast.reference.encode import chat_template_strings
from conftest import assert_same_encoded, reference_encoder, tokenizer_path
from strategies import texts
from test_separate_layout import _prompt_ids

transformers = pytest.importorskip("transformers")

NAMES = ("gemma3", "llama3")
BIG = 1_000_000


class ChatCase:
    """A shared tokenizer loaded by transformers and by arena_fast, with its
    chat-template encoders (special tokens in contents matched or not)."""

    def __init__(self, directory: Path):
        self.name = directory.name
        self.hf = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        self.tok = af.Tokenizer.from_file(directory)
        self.exact = af.Encoder(
            self.tok, template="chat", split_special_tokens=False, max_length=BIG
        )
        self.split = af.Encoder(self.tok, template="chat", max_length=BIG)
        # The layout as the reference derives it, through transformers' jinja2.
        self.reference_strings = chat_template_strings(self.hf)

    def hf_ids(self, prompts, answers) -> list[int]:
        messages = []
        for p, a in zip(prompts, answers):
            messages += [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
        return list(self.hf.apply_chat_template(messages, tokenize=True, return_dict=False))


_CASES: dict[str, ChatCase] = {}


@pytest.fixture(scope="module", params=NAMES)
def case(request, shared_dir) -> ChatCase:
    name = request.param
    if name not in _CASES:
        _CASES[name] = ChatCase(tokenizer_path(shared_dir, name).parent)
    return _CASES[name]


def _text(specials: bool = True):
    return texts(surrogates=False, specials=specials, long=False)


@st.composite
def chat_rows(draw, specials: bool = True, max_turns: int = 4):
    n = draw(st.integers(min_value=1, max_value=max_turns), label="turns")
    return tuple(draw(st.lists(_text(specials), min_size=n, max_size=n)) for _ in range(3))


@pytest.mark.slow
@given(row=chat_rows())
@example(row=(["  hi \n"], ["\n\nyes  "], [""]))
@example(row=(["a", " b", "c\n"], ["", "x", ""], ["1", "", " 3 "]))
@example(
    row=(["<|eot_id|>", "<end_of_turn> x <bos>"], ["é 🙂", "<start_of_turn>model\n"], ["", "中文"])
)
@example(row=([""], [""], [""]))
def test_ids_equal_apply_chat_template(case, row):
    """Multi-turn and one-turn conversations, texts with surrounding spaces and
    newlines, empty answers, unicode, special-token strings inside texts."""
    prompts, a, b = row
    out = case.exact.encode([prompts], [a], [b])
    assert out[0].tolist() == case.hf_ids(prompts, a)
    assert out[1].tolist() == case.hf_ids(prompts, b)
    assert not out.truncated.any()
    assert out.full_length.tolist() == out.lengths.tolist()


@pytest.mark.slow
@given(row=chat_rows(specials=False))
def test_split_special_tokens_changes_only_special_strings(case, row):
    """Our default encodes special-token strings in contents as plain text;
    without such strings it is the same as apply_chat_template."""
    prompts, a, b = row
    assert case.split.encode([prompts], [a], [b])[1].tolist() == case.hf_ids(prompts, b)


def test_special_strings_in_contents_are_text_by_default(case):
    special = "<|eot_id|>" if case.name == "llama3" else "<end_of_turn>"
    prompt = f"say {special} twice {special}"
    exact = case.exact.encode([prompt], ["ok"], ["no"])[0].tolist()
    assert exact == case.hf_ids([prompt], ["ok"])
    plain = case.split.encode([prompt], ["ok"], ["no"])[0].tolist()
    special_id = case.tok.token_to_id(special)
    assert exact.count(special_id) == plain.count(special_id) + 2


@pytest.mark.slow
@given(data=st.data())
def test_budgeted_chat_equals_reference_and_shares_the_prompt(case, tokenizer_cases, data):
    strategy = data.draw(st.sampled_from(af.STRATEGIES), label="strategy")
    max_length = data.draw(st.sampled_from((40, 64, 100, 200, 500, 2000)), label="max_length")
    keep = data.draw(st.sampled_from(("head", "head_tail")), label="keep")
    split = data.draw(st.booleans(), label="split_special_tokens")
    rows = data.draw(st.lists(chat_rows(max_turns=5), min_size=1, max_size=3), label="rows")
    columns = [list(c) for c in zip(*rows)]
    options = dict(strategy=strategy, max_length=max_length, keep=keep, min_segment_tokens=4)
    options.update(split_special_tokens=split, min_tail_tokens=5)
    rust = af.Encoder(case.tok, template="chat", **options)
    fields, strip = case.reference_strings
    ref = reference_encoder(
        tokenizer_cases[case.name],
        template=af.Template(**fields),
        tokenize="joint",
        layout="separate",
        strip=strip,
        **options,
    )
    out = rust.encode(*columns)
    assert_same_encoded(out, ref.encode(*columns), f"{case.name} {options}")
    assert (out.lengths <= max_length).all()
    if strategy != "none":
        p, a, b = rows[0]
        side_a = rust.explain(p, a, b, swapped=False)
        side_b = rust.explain(p, a, b, swapped=True)
        assert _prompt_ids(side_a) == _prompt_ids(side_b)


def test_the_layout_is_the_one_the_reference_derives(case):
    fields, strip = case.reference_strings
    layout = chat_layout(case.exact.chat_template)
    assert template_fields(case.tok, layout) == fields
    assert layout.strip == strip == (True, True)  # Gemma's and Llama's `| trim`
    assert case.exact.template == af.Template(**fields)


@pytest.mark.slow
def test_config_round_trip_and_pickle(case):
    config = case.exact.config()
    assert config["layout"] == "separate" and config["tokenize"] == "joint"
    assert config["chat_template"] == case.exact.chat_template.source
    assert (config["bos_token_id"], config["eos_token_id"]) == (None, None)
    again = af.Encoder.from_config(case.tok, config)
    assert again.config() == config
    rows = (["hello", " again "], ["a1", "a2"], ["b1", ""])
    assert_same_encoded(again.encode(*rows), case.exact.encode(*rows))
    assert_same_encoded(pickle.loads(pickle.dumps(case.exact)).encode(*rows), again.encode(*rows))
    source = af.Encoder(
        case.tok, template="chat", chat_template=config["chat_template"], max_length=BIG
    )
    assert_same_encoded(source.encode(*rows), case.split.encode(*rows))


def test_explain_names_the_chat_pieces(case):
    ex = case.exact.explain(["q1", "q2"], ["a1", "a2"], ["b1", "b2"], swapped=True)
    assert ex["ids"] == case.hf_ids(["q1", "q2"], ["b1", "b2"])
    kinds = [(s["kind"], s["turn"], s["field"]) for s in ex["spans"]]
    assert kinds[0][0] == "begin" and kinds[-1][0] == "end"
    assert ("header", 1, None) in kinds and ("suffix", 0, 0) in kinds
    pieces = [(s["piece"], s["turn"]) for s in ex["spans"]]
    assert ("user message", 1) in pieces and ("assistant message", 1) in pieces
    assert ("user close, assistant opening", 0) in pieces
    ids = ex["ids"]
    answer = [ids[s["start"] : s["stop"]] for s in ex["spans"] if s["piece"] == "assistant message"]
    assert case.tok.decode(answer[-1]).endswith("b2")


def test_chat_options_are_checked(gemma_tok):
    with pytest.raises(af.ConfigError, match="layout must be 'separate'"):
        af.Encoder(gemma_tok, template="chat", layout="cross")
    with pytest.raises(af.ConfigError, match="tokenize='joint'"):
        af.Encoder(gemma_tok, template="chat", tokenize="split")
    with pytest.raises(af.ConfigError, match="is for template='chat'"):
        af.Encoder(gemma_tok, chat_template="{{ x }}")
    with pytest.raises(af.ConfigError, match="swap must be False"):
        af.Encoder(gemma_tok, template="chat").encode(["p"], ["a"], ["b"], swap="both")


def test_a_tokenizer_without_a_chat_template_is_refused(shared_dir):
    qwen = af.Tokenizer.from_file(tokenizer_path(shared_dir, "qwen2_5").parent)
    with pytest.raises(af.ConfigError, match="tokenizer_config.json"):
        af.Encoder(qwen, template="chat")
    with pytest.raises(af.ConfigError, match="chat_template="):
        af.Encoder(af.Tokenizer.from_str(af.Tokenizer.demo().to_str()), template="chat")


TEMPLATES_REFUSED = {
    # The template's own exception while laying it out.
    "raises": ("{{ raise_exception('no assistants here') }}", "no assistants here"),
    # Contents changed in a way other than | trim.
    "upper": (
        "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content | upper }}"
        "<end_of_turn>\n{% endfor %}",
        "cannot",
    ),
    "replace": (
        "{% for m in messages %}<start_of_turn>{{ m.role }}\n"
        "{{ m.content | replace('</think>', '') }}<end_of_turn>\n{% endfor %}",
        "cannot reproduce",
    ),
    # Text that depends on the conversation's length.
    "length": (
        "<bos>{{ messages | length }}{% for m in messages %}<start_of_turn>{{ m.role }}\n"
        "{{ m.content }}<end_of_turn>\n{% endfor %}",
        "conversation's length",
    ),
    # Contents not met by a special token.
    "plain": (
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}",
        "special token",
    ),
    # A content written twice.
    "twice": ("{% for m in messages %}{{ m.content }}{{ m.content }}{% endfor %}", "once"),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES_REFUSED))
def test_templates_the_layout_cannot_reproduce_are_refused(gemma_tok, name):
    source, message = TEMPLATES_REFUSED[name]
    with pytest.raises(af.ConfigError, match=message):
        af.Encoder(gemma_tok, template="chat", chat_template=source)


def test_a_template_without_trim_keeps_the_spaces(gemma_tok):
    source = (
        "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}"
        "<end_of_turn>\n{% endfor %}"
    )
    enc = af.Encoder(gemma_tok, template="chat", chat_template=source, max_length=BIG)
    chat = af.ChatTemplate.from_config({"chat_template": source, "bos_token": "<bos>"})
    messages = [{"role": "user", "content": "  x \n"}, {"role": "assistant", "content": "\ty "}]
    assert enc.encode(["  x \n"], ["\ty "], [""])[0].tolist() == chat.encode(gemma_tok, messages)


# Qwen 2.5's template without its tool branches: a default system prompt
# when the conversation has none, contents not stripped.
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
    "You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) "
    "or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.fixture(scope="module")
def qwen(shared_dir):
    directory = tokenizer_path(shared_dir, "qwen2_5").parent
    hf = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return hf, af.Tokenizer.from_file(directory)


@pytest.mark.slow
@given(row=chat_rows(max_turns=3))
@example(row=([" spaced \n"], ["\n answer  "], [""]))
def test_a_default_system_prompt_is_fixed_text(qwen, row):
    """Qwen 2.5's default system prompt is part of every side, counted in the
    budget; its contents are not stripped."""
    hf, tok = qwen
    exact = af.Encoder(
        tok, template="chat", chat_template=QWEN25_TEMPLATE, split_special_tokens=False,
        max_length=BIG,
    )  # fmt: skip
    assert exact.template.begin.startswith("<|im_start|>system\nYou are Qwen")
    prompts, a, b = row
    out = exact.encode([prompts], [a], [b])
    for side, answers in enumerate((a, b)):
        messages = []
        for p, x in zip(prompts, answers):
            messages += [{"role": "user", "content": p}, {"role": "assistant", "content": x}]
        want = hf.apply_chat_template(
            messages, chat_template=QWEN25_TEMPLATE, tokenize=True, return_dict=False
        )
        assert out[side].tolist() == list(want)
    small = af.Encoder(tok, template="chat", chat_template=QWEN25_TEMPLATE, max_length=64)
    cut = small.encode([prompts], [a], [b])
    assert (cut.lengths <= 64).all()
    begin = tok.encode(exact.template.begin, split_special_tokens=False)
    assert all(cut[i].tolist()[: len(begin)] == begin for i in (0, 1))
