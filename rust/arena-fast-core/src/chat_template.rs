//! A model's own chat template: the Jinja `chat_template` of a
//! `tokenizer_config.json`, rendered as transformers' `apply_chat_template`
//! renders it (spec: docs/reward.md, "Chat templates").
//!
//! transformers compiles the template in an `ImmutableSandboxedEnvironment`
//! with `trim_blocks=True, lstrip_blocks=True` (and Jinja's default
//! `keep_trailing_newline=False`), the `loopcontrols` extension, its own
//! `tojson` filter, `raise_exception` and `strftime_now`, and renders it
//! with `messages`, `tools=None`, `documents=None`, `add_generation_prompt`
//! and the tokenizer's named special tokens. This module builds the same
//! environment on minijinja, with Python's way of printing values
//! (`py_values`), and tokenizes the result as transformers does: no special
//! tokens added (the template writes its own BOS), special-token strings in
//! the text matched as special tokens.

mod py_values;

use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::error::{ConfigError, CoreError};
use crate::tokenize::ArenaTokenizer;
use py_values::{py_split_whitespace, py_str, py_strip, Ends};

/// The named special tokens transformers passes to every template
/// (`SPECIAL_TOKENS_ATTRIBUTES`); the names of `extra_special_tokens`,
/// when it is an object, are passed too.
pub const NAMED_SPECIAL_TOKENS: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// The file beside tokenizer_config.json whose template takes priority over
/// the config's own, as in transformers.
pub const TEMPLATE_FILE: &str = "chat_template.jinja";

const NAME: &str = "chat_template";

/// The most instructions one rendering may run (minijinja's fuel): a real
/// template spends tens per message, so this allows conversations of over a
/// hundred thousand messages, and stops a template that loops without end
/// (`range` over `range`, a recursive macro) with an error instead of
/// hanging the encoder.
pub const MAX_INSTRUCTIONS: u64 = 20_000_000;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template with the special-token strings it is rendered
/// with.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    special_tokens: Vec<(String, String)>,
    origin: String,
}

/// The template's own `raise_exception(message)`, told apart from the
/// engine's errors by its source.
#[derive(Debug)]
struct Raised;

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("raised by the template")
    }
}

impl std::error::Error for Raised {}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

impl ChatTemplate {
    /// Compile `source`; `special_tokens` are the (name, string) variables
    /// it sees (`bos_token`, ...); `origin` names the source in errors.
    pub fn new(
        source: &str,
        special_tokens: Vec<(String, String)>,
        origin: &str,
    ) -> Result<ChatTemplate, ConfigError> {
        let mut env = environment();
        env.add_template_owned(NAME, rewrite_generation_tags(source))
            .map_err(|e| {
                invalid(format!(
                    "{origin}: the chat template does not compile: {}",
                    describe(&e)
                ))
            })?;
        Ok(ChatTemplate {
            env,
            source: source.to_owned(),
            special_tokens,
            origin: origin.to_owned(),
        })
    }

    /// From the parsed JSON of a tokenizer_config.json: its `chat_template`
    /// (a string, or a list of `{"name", "template"}` whose `default` is
    /// taken) and its special tokens (strings or `{"content": ...}`).
    pub fn from_config(
        config: &serde_json::Value,
        origin: &str,
    ) -> Result<ChatTemplate, ConfigError> {
        Self::from_config_with(config, None, origin)
    }

    /// The text of a tokenizer_config.json.
    pub fn from_config_str(text: &str, origin: &str) -> Result<ChatTemplate, ConfigError> {
        let config: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| invalid(format!("{origin}: not valid JSON: {e}")))?;
        Self::from_config(&config, origin)
    }

    /// A tokenizer_config.json file (or the directory holding it); a
    /// `chat_template.jinja` beside it takes priority over the config's
    /// `chat_template`, as in transformers.
    pub fn from_file(path: &Path) -> Result<ChatTemplate, ConfigError> {
        let path = if path.is_dir() {
            path.join("tokenizer_config.json")
        } else {
            path.to_path_buf()
        };
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| invalid(format!("{origin}: cannot read: {e}")))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("{origin}: not valid JSON: {e}")))?;
        let beside = path.with_file_name(TEMPLATE_FILE);
        let template = if beside.is_file() {
            Some(
                std::fs::read_to_string(&beside)
                    .map_err(|e| invalid(format!("{}: cannot read: {e}", beside.display())))?,
            )
        } else {
            None
        };
        Self::from_config_with(&config, template, &origin)
    }

    fn from_config_with(
        config: &serde_json::Value,
        template: Option<String>,
        origin: &str,
    ) -> Result<ChatTemplate, ConfigError> {
        let object = config
            .as_object()
            .ok_or_else(|| invalid(format!("{origin}: expected a JSON object")))?;
        let source = match template {
            Some(text) => text,
            None => pick_template(object.get("chat_template"), origin)?,
        };
        Self::new(&source, special_tokens(object, origin)?, origin)
    }

    /// The template's Jinja source, as the config gives it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The (name, string) special tokens the template is rendered with.
    pub fn special_tokens(&self) -> &[(String, String)] {
        &self.special_tokens
    }

    /// The rendered text of `messages`, as `apply_chat_template(messages,
    /// tokenize=False, add_generation_prompt=...)` gives it. A template that
    /// calls `raise_exception` (or fails) is an error naming its message.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ConfigError> {
        if messages.is_empty() {
            return Err(invalid(format!(
                "{}: cannot apply the chat template to an empty conversation",
                self.origin
            )));
        }
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_pairs([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ])
            })
            .collect();
        let mut context: Vec<(&str, Value)> = self
            .special_tokens
            .iter()
            .map(|(name, token)| (name.as_str(), Value::from(token.as_str())))
            .collect();
        context.extend([
            ("messages", Value::from(messages)),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
        ]);
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| invalid(format!("{}: {}", self.origin, describe(&e))))?;
        template
            .render(Value::from_pairs(context))
            .map_err(|e| self.render_error(&e))
    }

    /// The ids of the rendered text, as `apply_chat_template(messages,
    /// tokenize=True)` gives them: encoded with no special tokens added, the
    /// special-token strings in it (the template's and the messages' alike)
    /// matched as special tokens.
    pub fn encode(
        &self,
        tokenizer: &ArenaTokenizer,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, CoreError> {
        let text = self.render(messages, add_generation_prompt)?;
        Ok(tokenizer.encode(&text, false)?)
    }

    fn render_error(&self, err: &Error) -> ConfigError {
        let raised = std::error::Error::source(err).is_some_and(|s| s.is::<Raised>());
        let line = err
            .line()
            .map_or_else(String::new, |l| format!(" (line {l})"));
        if err.kind() == ErrorKind::OutOfFuel {
            return invalid(format!(
                "{}: the chat template ran past {MAX_INSTRUCTIONS} instructions on this \
                 conversation (does it loop without end?){line}",
                self.origin
            ));
        }
        if raised {
            let message = err.detail().unwrap_or_default();
            invalid(format!(
                "{}: the chat template raised an exception: {message}{line}",
                self.origin
            ))
        } else {
            invalid(format!(
                "{}: the chat template failed on this conversation: {}",
                self.origin,
                describe(err)
            ))
        }
    }
}

/// An engine error in one line: its kind, detail and template line.
fn describe(err: &Error) -> String {
    let mut text = err.kind().to_string();
    if let Some(detail) = err.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = err.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// The template a config's `chat_template` field names, as transformers'
/// `get_chat_template` picks it with no template argument and no tools.
fn pick_template(field: Option<&serde_json::Value>, origin: &str) -> Result<String, ConfigError> {
    use serde_json::Value as Json;
    match field {
        Some(Json::String(text)) => Ok(text.clone()),
        None | Some(Json::Null) => Err(invalid(format!(
            "{origin}: no chat_template: this tokenizer config has none (and no {TEMPLATE_FILE} \
             beside it); transformers' apply_chat_template refuses it too"
        ))),
        Some(Json::Array(entries)) => {
            let mut names = Vec::new();
            for entry in entries {
                let name = entry.get("name").and_then(Json::as_str);
                let text = entry.get("template").and_then(Json::as_str);
                match (name, text) {
                    (Some("default"), Some(text)) => return Ok(text.to_owned()),
                    (Some(name), Some(_)) => names.push(name.to_owned()),
                    _ => {
                        return Err(invalid(format!(
                            "{origin}: chat_template: each entry of the list must be \
                             {{\"name\": str, \"template\": str}}"
                        )))
                    }
                }
            }
            names.sort();
            Err(invalid(format!(
                "{origin}: chat_template: a list of named templates with no `default` \
                 (names: {})",
                names.join(", ")
            )))
        }
        Some(other) => Err(invalid(format!(
            "{origin}: chat_template: expected a string or a list of named templates, got {}",
            json_kind(other)
        ))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value as Json;
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// A special token as a config writes it: a string, an AddedToken object
/// (`{"content": ...}`) or null (none).
fn token_string(
    value: &serde_json::Value,
    field: &str,
    origin: &str,
) -> Result<Option<String>, ConfigError> {
    use serde_json::Value as Json;
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.clone())),
        Json::Object(o) => match o.get("content") {
            Some(Json::String(s)) => Ok(Some(s.clone())),
            _ => Err(invalid(format!(
                "{origin}: {field}: an AddedToken object needs a string \"content\""
            ))),
        },
        other => Err(invalid(format!(
            "{origin}: {field}: expected a string or an AddedToken object, got {}",
            json_kind(other)
        ))),
    }
}

/// The special tokens transformers' `special_tokens_map` gives the template:
/// the named ones the config sets, then `extra_special_tokens` by name.
fn special_tokens(
    config: &serde_json::Map<String, serde_json::Value>,
    origin: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut tokens = Vec::new();
    for name in NAMED_SPECIAL_TOKENS {
        if let Some(value) = config.get(name) {
            if let Some(token) = token_string(value, name, origin)? {
                tokens.push((name.to_owned(), token));
            }
        }
    }
    if let Some(serde_json::Value::Object(extra)) = config.get("extra_special_tokens") {
        for (name, value) in extra {
            let field = format!("extra_special_tokens.{name}");
            if let Some(token) = token_string(value, &field, origin)? {
                tokens.retain(|(n, _)| n != name);
                tokens.push((name.clone(), token));
            }
        }
    }
    Ok(tokens)
}

/// transformers' `{% generation %}...{% endgeneration %}` tag (it marks the
/// assistant's tokens and renders its body unchanged) as the equivalent
/// `{% if true %}...{% endif %}`, whitespace markers kept.
fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start + 2..];
        let body = tag.strip_prefix(['-', '+']).unwrap_or(tag);
        let marker = &tag[..tag.len() - body.len()];
        let word = body.trim_start();
        let replacement = [("endgeneration", "endif"), ("generation", "if true")]
            .into_iter()
            .find(|(name, _)| {
                word.strip_prefix(name).is_some_and(|after| {
                    let after = after.trim_start();
                    after.starts_with("%}") || after.starts_with("-%}") || after.starts_with("+%}")
                })
            });
        match replacement {
            Some((name, with)) => {
                let space = &body[..body.len() - word.len()];
                out.push_str("{%");
                out.push_str(marker);
                out.push_str(space);
                out.push_str(with);
                rest = &word[name.len()..];
            }
            None => {
                out.push_str("{%");
                rest = tag;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The environment transformers' `_compile_jinja_template` builds, on
/// minijinja.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // trim_blocks and lstrip_blocks as transformers sets them; Jinja's
    // default keep_trailing_newline=False (one final newline dropped).
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(false)
        .build()
        .expect("the default delimiters are a valid syntax");
    env.set_syntax(syntax);
    env.set_fuel(Some(MAX_INSTRUCTIONS));
    env.set_formatter(|out, _state, value| out.write_str(&py_str(value)).map_err(Error::from));
    env.set_unknown_method_callback(python_method);
    env.add_filter("tojson", py_values::tojson);
    env.add_filter("trim", trim);
    env.add_filter("string", |value: &Value| py_str(value));
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env
}

fn raise_exception(message: Option<Value>) -> Result<Value, Error> {
    let message = message.map(|m| py_str(&m)).unwrap_or_default();
    Err(Error::new(ErrorKind::InvalidOperation, message).with_source(Raised))
}

/// Jinja's `trim(value, chars=None)`: Python's `str(value).strip(chars)`.
fn trim(value: &Value, chars: Option<String>) -> String {
    py_strip(&py_str(value), chars.as_deref(), Ends::Both).to_owned()
}

/// Python's str/dict/list methods (`minijinja_contrib::pycompat`), with
/// `strip`, `lstrip`, `rstrip`, `isspace` and whitespace `split` on
/// Python's whitespace, and Python's `title` (not Jinja's filter).
fn python_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let (Some(s), ValueKind::String) = (value.as_str(), value.kind()) {
        let ends = match method {
            "strip" => Some(Ends::Both),
            "lstrip" => Some(Ends::Start),
            "rstrip" => Some(Ends::End),
            _ => None,
        };
        if let Some(ends) = ends {
            let (chars,): (Option<&str>,) = minijinja::value::from_args(args)?;
            return Ok(Value::from(py_strip(s, chars, ends)));
        }
        if method == "title" && args.is_empty() {
            return Ok(Value::from(py_values::py_title(s)));
        }
        if method == "isspace" && args.is_empty() {
            return Ok(Value::from(
                !s.is_empty() && s.chars().all(py_values::is_py_space),
            ));
        }
        if method == "split" {
            let (sep, maxsplit): (Option<Value>, Option<i64>) = minijinja::value::from_args(args)?;
            if sep.as_ref().is_none_or(Value::is_none) {
                let parts = py_split_whitespace(s, maxsplit.unwrap_or(-1));
                return Ok(parts.into_iter().map(Value::from).collect());
            }
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// transformers' `strftime_now(format)`: `datetime.now().strftime(format)`,
/// the local time through the C library's `strftime` as CPython uses it
/// (`%f`, microseconds, `%z` and `%Z`, empty for a naive time, filled in
/// first as datetime does).
fn strftime_now(format: &str) -> Result<String, Error> {
    let failed =
        |what: &str| Error::new(ErrorKind::InvalidOperation, format!("strftime_now: {what}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| failed("the clock is before 1970"))?;
    let mut spec = String::with_capacity(format.len());
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            spec.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => spec.push_str(&format!("{:06}", now.subsec_micros())),
            // datetime.now() is naive: no offset, no zone name.
            Some('z' | 'Z') => {}
            Some(next) => {
                spec.push('%');
                spec.push(next);
            }
            None => spec.push('%'),
        }
    }
    let c_spec =
        std::ffi::CString::new(spec).map_err(|_| failed("the format holds a NUL character"))?;
    let seconds = now.as_secs() as libc::time_t;
    // SAFETY: `tm` is plain data filled by localtime_r; strftime writes at
    // most `buffer.len()` bytes into `buffer` and returns how many it wrote.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tzset();
        if libc::localtime_r(&seconds, &mut tm).is_null() {
            return Err(failed("the local time is unknown"));
        }
        let mut buffer = vec![0u8; 256 + format.len() * 16];
        let written = libc::strftime(
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            c_spec.as_ptr(),
            &tm,
        );
        buffer.truncate(written);
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}

extern "C" {
    // POSIX; not in the `libc` crate. Reads TZ as CPython's `time` does.
    fn tzset();
}

#[cfg(test)]
mod tests;
