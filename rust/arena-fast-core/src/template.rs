//! Text layouts as data: the strings a template puts around each turn and
//! field, and the presets of the winning Kaggle teams (see docs/encoding.md).

use crate::error::ConfigError;

/// A layout. `{i}` in a header is replaced by the 1-based position of the
/// turn among the kept turns. With `join_turns`, all turns of a field are
/// joined by that string first and laid out as a single turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub begin: String,
    pub end: String,
    pub first_header: String,
    pub header: String,
    /// Prefix and suffix of the prompt, response A and response B fields.
    pub prefixes: [String; 3],
    pub suffixes: [String; 3],
    pub marker: String,
    pub join_turns: Option<String>,
}

pub const PRESETS: [&str; 4] = ["rounds", "pab", "concat", "tags"];

fn s(text: &str) -> String {
    text.to_owned()
}

impl Template {
    pub fn preset(name: &str) -> Result<Template, ConfigError> {
        let marker = s("......");
        let template = match name {
            "rounds" => Template {
                begin: String::new(),
                end: s("\n\n---\nWhich response is better? [A or B or tie]\nAnswer: "),
                first_header: s("## Round {i}:"),
                header: s("\n\n## Round {i}:"),
                prefixes: [
                    s("\n### Prompt:\n"),
                    s("\n\n### Response A:\n"),
                    s("\n\n### Response B:\n"),
                ],
                suffixes: [String::new(), String::new(), String::new()],
                marker,
                join_turns: None,
            },
            "pab" => Template {
                begin: s("Compare two AI assistants' answers to a user's questions. \
                          Decide which assistant answered better, or whether it is a tie.\n"),
                end: s("\n### Verdict (A, B or tie):"),
                first_header: String::new(),
                header: String::new(),
                prefixes: [
                    s("\n### User:\n"),
                    s("\n\n### Assistant A:\n"),
                    s("\n\n### Assistant B:\n"),
                ],
                suffixes: [String::new(), String::new(), s("\n")],
                marker,
                join_turns: None,
            },
            "concat" => Template {
                begin: String::new(),
                end: String::new(),
                first_header: String::new(),
                header: String::new(),
                prefixes: [
                    s("User question:\n\"\"\""),
                    s("Answer A:\n\"\"\""),
                    s("Answer B:\n\"\"\""),
                ],
                suffixes: [s("\"\"\"\n"), s("\"\"\"\n"), s("\"\"\"\n")],
                marker,
                join_turns: Some(s("\n")),
            },
            "tags" => Template {
                begin: String::new(),
                end: String::new(),
                first_header: String::new(),
                header: String::new(),
                prefixes: [s("<PROMPT>"), s("<RESPONSE A>"), s("<RESPONSE B>")],
                suffixes: [s("</PROMPT>"), s("</RESPONSE A>"), s("</RESPONSE B>")],
                marker,
                join_turns: None,
            },
            other => {
                return Err(ConfigError::Invalid(format!(
                    "unknown template {other:?}; presets are {}",
                    PRESETS.join(", ")
                )))
            }
        };
        Ok(template)
    }

    /// The header text of the turn at 1-based `position` among kept turns.
    pub fn header_text(&self, position: usize) -> String {
        let pattern = if position == 1 {
            &self.first_header
        } else {
            &self.header
        };
        pattern.replace("{i}", &position.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_headers() {
        let t = Template::preset("rounds").unwrap();
        assert_eq!(t.header_text(1), "## Round 1:");
        assert_eq!(t.header_text(12), "\n\n## Round 12:");
    }

    #[test]
    fn every_preset_loads_and_unknown_fails() {
        for name in PRESETS {
            assert!(Template::preset(name).is_ok());
        }
        assert!(Template::preset("nope").is_err());
    }
}
