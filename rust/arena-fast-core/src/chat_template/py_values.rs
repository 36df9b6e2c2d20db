//! Template values written as Python writes them. Jinja2 runs on Python
//! objects, so what a chat template prints is Python's `str()` of a value
//! (`True`, `None`, `['a', 'b']`), its `tojson` filter is `json.dumps`, and
//! `trim` / `.strip()` strip Python's whitespace; minijinja's own choices
//! (`true`, `none`, Rust's whitespace) would change the rendered text.

use std::fmt::Write;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// Python's `str.isspace` for one character: Unicode White_Space (Rust's
/// `char::is_whitespace`) plus the four ASCII separators U+001C..U+001F.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Which ends `strip` works on.
#[derive(Clone, Copy)]
pub enum Ends {
    Both,
    Start,
    End,
}

/// Python's `s.strip(chars)` / `lstrip` / `rstrip`: whitespace when
/// `chars` is None, else any of its characters.
pub fn py_strip<'a>(s: &'a str, chars: Option<&str>, ends: Ends) -> &'a str {
    let strip = |c: char| match chars {
        Some(set) => set.contains(c),
        None => is_py_space(c),
    };
    match ends {
        Ends::Both => s.trim_matches(strip),
        Ends::Start => s.trim_start_matches(strip),
        Ends::End => s.trim_end_matches(strip),
    }
}

/// Python's `s.split()` with no separator: runs of whitespace split, ends
/// dropped; at most `maxsplit` splits (negative: no limit).
pub fn py_split_whitespace(s: &str, maxsplit: i64) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = py_strip(s, None, Ends::Start);
    while !rest.is_empty() {
        if maxsplit >= 0 && parts.len() as i64 == maxsplit {
            parts.push(py_strip(rest, None, Ends::End).to_owned());
            break;
        }
        let end = rest.find(is_py_space).unwrap_or(rest.len());
        parts.push(rest[..end].to_owned());
        rest = py_strip(&rest[end..], None, Ends::Start);
    }
    parts
}

/// One character title-cased as Python's `str.title` does it: the four
/// digraph letters to their title forms, a character whose upper case is
/// several (`ß` -> `SS`) to the first of them and the rest in lower case.
fn push_title(c: char, out: &mut String) {
    let digraph = match c {
        '\u{1c4}'..='\u{1c6}' => Some('\u{1c5}'),
        '\u{1c7}'..='\u{1c9}' => Some('\u{1c8}'),
        '\u{1ca}'..='\u{1cc}' => Some('\u{1cb}'),
        '\u{1f1}'..='\u{1f3}' => Some('\u{1f2}'),
        _ => None,
    };
    if let Some(title) = digraph {
        out.push(title);
        return;
    }
    let mut upper = c.to_uppercase();
    if let Some(first) = upper.next() {
        out.push(first);
    }
    for rest in upper {
        out.extend(rest.to_lowercase());
    }
}

/// Python's `str.title()`: a cased character after an uncased one is
/// title-cased, one after a cased one lower-cased (`o'neil` -> `O'Neil`).
pub fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_cased = false;
    for c in s.chars() {
        if previous_cased {
            out.extend(c.to_lowercase());
        } else {
            push_title(c, &mut out);
        }
        previous_cased = c.is_lowercase()
            || c.is_uppercase()
            || matches!(c, '\u{1c5}' | '\u{1c8}' | '\u{1cb}' | '\u{1f2}');
    }
    out
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional
/// for exponents -4..16, else scientific with a signed two-digit exponent.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    // `{:e}` gives the shortest round-trip digits as d.ddddde<exp>.
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let (first, more) = digits.split_at(1);
        let frac = if more.is_empty() {
            String::new()
        } else {
            format!(".{more}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

fn number(value: &Value) -> String {
    if value.is_integer() {
        value.to_string()
    } else {
        f64::try_from(value.clone()).map_or_else(|_| value.to_string(), py_float)
    }
}

/// Python's `repr(str)`: single quotes unless the text holds a single quote
/// and no double one; backslash escapes for the quote, `\\` and controls.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str()` of a template value: what `{{ value }}` prints.
pub fn py_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
        _ => py_repr(value),
    }
}

/// Python's `repr()` of a template value (how a list prints its items).
pub fn py_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => number(value),
        ValueKind::String => py_repr_str(value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| py_repr(&v)).collect())
                .unwrap_or_default();
            let (open, close) = if value.is_tuple() {
                ("(", if items.len() == 1 { ",)" } else { ")" })
            } else {
                ("[", "]")
            };
            format!("{open}{}{close}", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!("{}: {}", py_repr(&k), py_repr(&v))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// `json.dumps` options the `tojson` filter takes (transformers' override).
struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonStyle {
    fn from_kwargs(kwargs: &Kwargs) -> Result<JsonStyle, Error> {
        let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
        let indent: Option<Value> = kwargs.get("indent")?;
        let separators: Option<Value> = kwargs.get("separators")?;
        let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
        kwargs.assert_all_used()?;
        let indent = match indent {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => Some(match v.as_str() {
                Some(s) => s.to_owned(),
                None => " ".repeat(i64::try_from(v)?.max(0) as usize),
            }),
        };
        let (mut item_sep, mut key_sep) = if indent.is_some() {
            (",".to_owned(), ": ".to_owned())
        } else {
            (", ".to_owned(), ": ".to_owned())
        };
        if let Some(seps) = separators.filter(|s| !s.is_none()) {
            let mut it = seps.try_iter()?;
            let mut next = || it.next().and_then(|v| v.as_str().map(str::to_owned));
            match (next(), next()) {
                (Some(i), Some(k)) => (item_sep, key_sep) = (i, k),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ))
                }
            }
        }
        Ok(JsonStyle {
            ensure_ascii: ensure_ascii.unwrap_or(false),
            indent,
            item_sep,
            key_sep,
            sort_keys: sort_keys.unwrap_or(false),
        })
    }
}

fn json_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object key as `json.dumps` writes a non-string key.
fn json_key(key: &Value) -> Result<String, Error> {
    Ok(match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_owned(),
        ValueKind::None => "null".into(),
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
        ValueKind::Number => number(key),
        _ => return Err(unserializable(key)),
    })
}

fn unserializable(value: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("tojson: a {} value is not JSON serializable", value.kind()),
    )
}

fn newline(style: &JsonStyle, depth: usize, out: &mut String) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

fn json_value(
    value: &Value,
    style: &JsonStyle,
    depth: usize,
    out: &mut String,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            let text = number(value);
            out.push_str(match text.as_str() {
                "nan" => "NaN",
                "inf" => "Infinity",
                "-inf" => "-Infinity",
                t => t,
            });
        }
        ValueKind::String => json_str(value.as_str().unwrap_or_default(), style.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(style, depth + 1, out);
                json_value(item, style, depth + 1, out)?;
            }
            newline(style, depth, out);
            out.push(']');
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((json_key(&key)?, item));
            }
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(style, depth + 1, out);
                json_str(key, style.ensure_ascii, out);
                out.push_str(&style.key_sep);
                json_value(item, style, depth + 1, out)?;
            }
            newline(style, depth, out);
            out.push('}');
        }
        _ => return Err(unserializable(value)),
    }
    Ok(())
}

/// The `tojson` filter as transformers defines it: `json.dumps(value,
/// ensure_ascii=False, indent=None, separators=None, sort_keys=False)`, not
/// Jinja's HTML-escaping one.
pub fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let style = JsonStyle::from_kwargs(&kwargs)?;
    let mut out = String::new();
    json_value(value, &style, 0, &mut out)?;
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (0.0, "0.0"),
        ] {
            assert_eq!(py_float(f), want, "{f}");
        }
    }

    #[test]
    fn python_whitespace_includes_the_ascii_separators() {
        assert_eq!(py_strip("\u{1c} a \u{85}\u{3000}", None, Ends::Both), "a");
        assert_eq!(py_strip("xxayx", Some("xy"), Ends::Start), "ayx");
        assert_eq!(py_split_whitespace("  a b\u{1f}c  ", -1), ["a", "b", "c"]);
        assert_eq!(py_split_whitespace(" a b c ", 1), ["a", "b c"]);
        assert_eq!(
            py_title("ßa o'neil ǆx ﬀ 3rd a_b"),
            "Ssa O'Neil ǅx Ff 3Rd A_B"
        );
        assert!(py_split_whitespace(" \t", -1).is_empty());
    }

    #[test]
    fn repr_chooses_quotes_like_python() {
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_repr_str("a\nb"), "'a\\nb'");
        let list = Value::from(vec![Value::from("x"), Value::from(true), Value::from(())]);
        assert_eq!(py_str(&list), "['x', True, None]");
    }
}
