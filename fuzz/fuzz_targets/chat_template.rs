//! Chat templates (`chat_template.rs`, minijinja in transformers' Jinja
//! environment): arbitrary templates put together from Jinja pieces, and a
//! turn-based template of the kind real models ship (or the
//! tokenizer_config.json named by `ARENA_FUZZ_CHAT_TEMPLATE`), over
//! arbitrary conversations, tokenized with the demo tokenizer.
//!
//! Invariants: no panic and no hang (a template that loops without end runs
//! out of instructions: an error); compiling and rendering give a result or
//! an error, the same twice over; a rendered conversation encodes, to the
//! ids of its text; on the turn-based template, a conversation of
//! alternating user and assistant messages renders, with every message's
//! content (trimmed as Python's `str.strip` does) in order, and a
//! conversation that does not alternate is refused by `raise_exception`.

#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use arena_fast_core::chat_template::{ChatTemplate, Message};
use arena_fast_core::ArenaTokenizer;
use libfuzzer_sys::fuzz_target;

const DEMO_TOKENIZER: &str =
    include_str!("../../python/arena_fast/data/demo_tokenizer/tokenizer.json");

fn tokenizer() -> Arc<ArenaTokenizer> {
    static TOK: OnceLock<Arc<ArenaTokenizer>> = OnceLock::new();
    TOK.get_or_init(|| {
        Arc::new(ArenaTokenizer::from_json(DEMO_TOKENIZER).expect("the demo tokenizer loads"))
    })
    .clone()
}

fn special_tokens() -> Vec<(String, String)> {
    vec![
        ("bos_token".into(), "<bos>".into()),
        ("eos_token".into(), "<eos>".into()),
    ]
}

/// A template in the shape of the turn-based ones models ship: BOS, turns
/// that must be user, assistant, user, ... (else `raise_exception`), each
/// content trimmed.
const TURNS: &str = "{{ bos_token }}{% for message in messages %}\
{% if message['role'] != ['user', 'assistant'][loop.index0 % 2] %}\
{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}\
<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n\
{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}";

/// The turn-based template, or the one of `ARENA_FUZZ_CHAT_TEMPLATE`.
fn turns_template() -> Arc<ChatTemplate> {
    static TEMPLATE: OnceLock<Arc<ChatTemplate>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            Arc::new(match std::env::var("ARENA_FUZZ_CHAT_TEMPLATE") {
                Ok(path) => ChatTemplate::from_file(std::path::Path::new(&path))
                    .expect("ARENA_FUZZ_CHAT_TEMPLATE loads"),
                Err(_) => ChatTemplate::new(TURNS, special_tokens(), "fuzz").expect("compiles"),
            })
        })
        .clone()
}

/// Renderings longer than this are not tokenized.
const MAX_ENCODED: usize = 64 * 1024;

/// Pieces arbitrary templates are made of.
const JINJA: &[&str] = &[
    "{% for message in messages %}",
    "{% for m in messages[1:] %}",
    "{% endfor %}",
    "{% if message['role'] == 'user' %}",
    "{% if loop.first %}",
    "{% elif message.role == 'system' %}",
    "{% else %}",
    "{% endif %}",
    "{{ message['content'] }}",
    "{{ message.content | trim }}",
    "{{ message.content.strip() }}",
    "{{ message.content.split() }}",
    "{{ message.content | tojson }}",
    "{{ message['role'] | upper }}",
    "{{ messages | length }}",
    "{{ messages[0]['content'] }}",
    "{{ loop.index }}",
    "{{ bos_token }}",
    "{{ eos_token }}",
    "{{ raise_exception('roles') }}",
    "{% set ns = namespace(first=true) %}",
    "{% set ns.first = false %}",
    "{{ ns.first }}",
    "{% for i in range(3) %}",
    "{% for i in range(100000) %}",
    "{% macro f(x) %}{{ x }}{% endmacro %}",
    "{{ f(message) }}",
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
    "{{ tools }}",
    "{{ strftime_now('%Y') }}",
    "{%- ",
    " -%}",
    "{{",
    "}}",
    "{%",
    "%}",
    "\n",
    "  ",
    "<start_of_turn>",
    "<end_of_turn>",
    "'",
    "\"",
    "x",
];

fn jinja(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=16)? {
        if u.ratio(1, 8)? {
            let free: &str = u.arbitrary()?;
            s.extend(free.chars().take(12));
        } else {
            s.push_str(u.choose(JINJA)?);
        }
    }
    Ok(s)
}

/// Contents: free text and pieces that meet the templates' markup.
const TEXT: &[&str] = &[
    " ",
    "\n",
    "\t",
    "\u{1f}",
    "\u{3000}",
    "<eos>",
    "<start_of_turn>",
    "{{ x }}",
    "{%",
    "hello",
    " world",
    "é",
    "😀",
    "\u{0}",
    "\\",
    "\"",
];

fn content(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=8)? {
        if u.ratio(1, 4)? {
            let free: &str = u.arbitrary()?;
            s.extend(free.chars().take(16));
        } else {
            s.push_str(u.choose(TEXT)?);
        }
    }
    Ok(s)
}

#[derive(Debug)]
struct Input {
    /// None: the turn-based template.
    template: Option<String>,
    messages: Vec<Message>,
    generation_prompt: bool,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let template = if u.arbitrary()? {
            Some(jinja(u)?)
        } else {
            None
        };
        let alternate = u.ratio(3, 4)?;
        let n = u.int_in_range(1..=6)?;
        let mut messages = Vec::with_capacity(n);
        for i in 0..n {
            let role = if alternate {
                ["user", "assistant"][i % 2].to_owned()
            } else {
                (*u.choose(&["user", "assistant", "system", "tool", ""])?).to_owned()
            };
            messages.push(Message::new(role, content(u)?));
        }
        Ok(Input {
            template,
            messages,
            generation_prompt: u.arbitrary()?,
        })
    }
}

/// Python's `str.strip()`: Unicode whitespace and the separators \x1c-\x1f.
fn py_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

fn alternates(messages: &[Message]) -> bool {
    messages
        .iter()
        .enumerate()
        .all(|(i, m)| m.role == ["user", "assistant"][i % 2])
}

fuzz_target!(|input: Input| {
    if std::env::var_os("ARENA_FUZZ_DEBUG").is_some() {
        eprintln!("{input:#?}");
    }
    let tok = tokenizer();
    let template: Arc<ChatTemplate> = match &input.template {
        Some(source) => match ChatTemplate::new(source, special_tokens(), "fuzz") {
            Ok(t) => Arc::new(t),
            Err(_) => return,
        },
        None => turns_template(),
    };
    let first = template.render(&input.messages, input.generation_prompt);
    let again = template.render(&input.messages, input.generation_prompt);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the same conversation rendered twice differs"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("one rendering failed and the other did not: {first:?} / {again:?}"),
    }
    // The tokenizer is fuzzed on its own (`tokenize`); here a rendering is
    // checked to encode when it is of a conversation's size (a loop can
    // write megabytes, which the instrumented build takes seconds over).
    if let Some(text) = first.as_ref().ok().filter(|t| t.len() <= MAX_ENCODED) {
        let ids = template
            .encode(&tok, &input.messages, input.generation_prompt)
            .expect("a rendered conversation encodes");
        let direct = tok.encode(text, false).expect("the text encodes");
        assert_eq!(ids, direct, "encode is not the ids of the rendered text");
    }
    if input.template.is_some() {
        return;
    }
    let own = std::env::var("ARENA_FUZZ_CHAT_TEMPLATE").is_err();
    if alternates(&input.messages) {
        // A model's template may refuse more (e.g. an empty answer); ours not.
        let text = match first {
            Ok(text) => text,
            Err(err) if !own => return drop(err),
            Err(err) => panic!("the turn template refused alternating turns: {err}"),
        };
        let mut at = 0;
        for m in &input.messages {
            let wanted = py_trim(&m.content);
            let found = text[at..]
                .find(wanted)
                .unwrap_or_else(|| panic!("content {wanted:?} not in order in {text:?}"));
            at += found + wanted.len();
        }
    } else if own {
        let err = first.expect_err("the turn template refuses turns that do not alternate");
        assert!(err.to_string().contains("must alternate"), "{err}");
    }
});
