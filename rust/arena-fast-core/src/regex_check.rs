//! A load-time check of a tokenizer.json's `Regex` patterns: a pattern that
//! repeats a group that itself repeats without bound (`(a+)+`, `(\w*\s?)*`)
//! can backtrack for exponential time, so the tokenizer is refused with an
//! error naming the pattern. A heuristic that catches only that shape; what
//! bounds the work of every pattern is `regex_budget`.

use serde_json::Value;

use crate::error::TokenizerError;

/// Refuse a tokenizer.json whose normalizer, pre-tokenizer or decoder has a
/// `Regex` pattern that nests repeats without bound (see `nested_repeat`).
pub fn check_patterns(json: &Value) -> Result<(), TokenizerError> {
    for part in ["normalizer", "pre_tokenizer", "decoder"] {
        if let Some(value) = json.get(part) {
            check_value(part, value)?;
        }
    }
    Ok(())
}

fn check_value(part: &str, value: &Value) -> Result<(), TokenizerError> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(pattern)) = map.get("pattern").and_then(|p| p.get("Regex")) {
                if let Some(at) = nested_repeat(pattern) {
                    return Err(TokenizerError::Load(format!(
                        "{part} regex {pattern:?} repeats a group that itself repeats without \
                         bound (at character {at}): it can backtrack for exponential time, so \
                         arena_fast refuses it"
                    )));
                }
            }
            map.values().try_for_each(|v| check_value(part, v))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_value(part, v)),
        _ => Ok(()),
    }
}

/// The character offset of the first group that is repeated without bound
/// (`*`, `+`, `{n,}`) and contains a repeat without bound, as in `(a+)+`;
/// None when there is none. Reads Oniguruma's (Ruby) syntax far enough to
/// find groups, classes and quantifiers; a pattern it cannot follow gives
/// None (the engine's own parser has the last word).
pub fn nested_repeat(pattern: &str) -> Option<usize> {
    let chars: Vec<char> = pattern.chars().collect();
    // Per open group: where it starts, whether it holds an unbounded repeat.
    let mut groups: Vec<(usize, bool)> = Vec::new();
    let mut top_unbounded = false;
    let mut i = 0;
    while i < chars.len() {
        // The atom at `i`: where it ends, and whether it is a group closing
        // with an unbounded repeat inside (with where the group started).
        let (end, inner): (usize, Option<(usize, bool)>) = match chars[i] {
            '\\' => (skip_escape(&chars, i), None),
            '[' => (skip_class(&chars, i)?, None),
            '(' if chars.get(i + 1) == Some(&'?') && chars.get(i + 2) == Some(&'#') => {
                let close = (i..chars.len()).find(|&k| chars[k] == ')')?;
                i = close + 1;
                continue;
            }
            '(' => {
                groups.push((i, false));
                i += 1;
                continue;
            }
            ')' => {
                let group = groups.pop()?;
                (i + 1, Some(group))
            }
            _ => (i + 1, None),
        };
        let (after, unbounded) = quantifiers(&chars, end);
        if let Some((start, holds_unbounded)) = inner {
            if unbounded && holds_unbounded {
                return Some(start);
            }
            let parent = groups.last_mut().map_or(&mut top_unbounded, |g| &mut g.1);
            *parent |= holds_unbounded || unbounded;
        } else if unbounded {
            let parent = groups.last_mut().map_or(&mut top_unbounded, |g| &mut g.1);
            *parent = true;
        }
        i = after;
    }
    None
}

/// The end of the escape sequence starting at `i` (a backslash).
fn skip_escape(chars: &[char], i: usize) -> usize {
    let next = i + 2;
    match chars.get(i + 1) {
        // \p{L}, \x{263a}, \k<name>, \g<name>, \u{...}: a bracketed argument.
        Some('p' | 'P' | 'x' | 'u' | 'k' | 'g') => match chars.get(next) {
            Some(&open @ ('{' | '<' | '\'')) => {
                let close = match open {
                    '{' => '}',
                    '<' => '>',
                    _ => '\'',
                };
                (next + 1..chars.len())
                    .find(|&k| chars[k] == close)
                    .map_or(chars.len(), |k| k + 1)
            }
            _ => next.min(chars.len()),
        },
        Some(_) => next,
        None => chars.len(),
    }
}

/// The end of the character class starting at `i` (`[`), classes nested in
/// it (`[a-z&&[^aeiou]]`, `[[:alpha:]]`) included; None when unclosed.
fn skip_class(chars: &[char], i: usize) -> Option<usize> {
    let mut depth = 0;
    let mut k = i;
    while k < chars.len() {
        match chars[k] {
            '\\' => {
                k = skip_escape(chars, k);
                continue;
            }
            '[' => {
                depth += 1;
                k += 1;
                // `]` right after `[` or `[^` is a literal.
                if chars.get(k) == Some(&'^') {
                    k += 1;
                }
                if chars.get(k) == Some(&']') {
                    k += 1;
                }
                continue;
            }
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
        k += 1;
    }
    None
}

/// The quantifiers after an atom ending at `i`: where they end, and whether
/// any repeats without bound. `*?` / `+?` (lazy) and `*+` / `++` (possessive)
/// are one quantifier; `{n,m}` that is not a valid interval is a literal.
fn quantifiers(chars: &[char], mut i: usize) -> (usize, bool) {
    let mut unbounded = false;
    loop {
        match chars.get(i) {
            Some('*' | '+') => {
                unbounded = true;
                i += 1;
            }
            Some('?') => i += 1,
            Some('{') => match interval(chars, i) {
                Some((end, open)) => {
                    unbounded |= open;
                    i = end;
                }
                None => return (i, unbounded),
            },
            _ => return (i, unbounded),
        }
        // A lazy or possessive mark belongs to the quantifier just read.
        if matches!(chars.get(i), Some('?') | Some('+')) && chars[i - 1] != '}' {
            i += 1;
        }
    }
}

/// `{n}`, `{n,}`, `{,m}`, `{n,m}` at `i`: where it ends and whether it has
/// no upper bound.
fn interval(chars: &[char], i: usize) -> Option<(usize, bool)> {
    let close = (i + 1..chars.len()).find(|&k| chars[k] == '}')?;
    let body: String = chars[i + 1..close].iter().collect();
    let (low, high) = match body.split_once(',') {
        Some((low, high)) => (low, Some(high)),
        None => (body.as_str(), None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(low)
        || !high.is_none_or(digits)
        || (low.is_empty() && high.is_none_or(str::is_empty))
    {
        return None;
    }
    Some((close + 1, high == Some("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    #[test]
    fn nested_repeats_are_found() {
        assert_eq!(nested_repeat("(a+)+$"), Some(0));
        assert_eq!(nested_repeat("x(?:a*b?)*"), Some(1));
        assert_eq!(nested_repeat(r"((\w+)\s?)*"), Some(0));
        assert_eq!(nested_repeat("(?:(a)+){2,}"), Some(0));
        assert_eq!(nested_repeat("(a{2,}c)+"), Some(0));
        assert_eq!(nested_repeat("(a*?)+?"), Some(0));
    }

    #[test]
    fn real_patterns_pass() {
        let deepseek = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;
        let o200k = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}";
        for p in [
            LLAMA3,
            deepseek,
            o200k,
            r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
            "(ab)+|(a|b)*|(x?y){1,3}|a*a*$",
            r"[(]+[)]*\(+\)*",
            "(?#(a+)+)x",
            r"(\r?\n)+",
        ] {
            assert_eq!(nested_repeat(p), None, "{p}");
        }
    }

    #[test]
    fn quantifier_forms() {
        assert_eq!(quantifiers(&['*', '?'], 0), (2, true));
        assert_eq!(quantifiers(&['?'], 0), (1, false));
        let c: Vec<char> = "{2,}x".chars().collect();
        assert_eq!(quantifiers(&c, 0), (4, true));
        let c: Vec<char> = "{2,5}x".chars().collect();
        assert_eq!(quantifiers(&c, 0), (5, false));
        let c: Vec<char> = "{a}".chars().collect();
        assert_eq!(quantifiers(&c, 0), (0, false));
    }

    #[test]
    fn check_patterns_names_the_part() {
        let json: Value = serde_json::json!({
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3}},
                {"type": "Split", "pattern": {"Regex": "(a+)+$"}},
            ]}
        });
        let err = check_patterns(&json).unwrap_err().to_string();
        assert!(err.contains("pre_tokenizer regex \"(a+)+$\""), "{err}");
        assert!(check_patterns(&serde_json::json!({"normalizer": null})).is_ok());
    }
}
