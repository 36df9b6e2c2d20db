//! The separate layout: a row gives two sequences, the prompt turns with
//! answer A's turns (row 2i) and with answer B's (row 2i+1), planned side by
//! side so that the prompt turns they share are cut identically
//! (`budget::share_prompt`; the rules in docs/encoding.md, "Separate layout
//! and chat templates").

use super::{Emit, Encoded, Encoder, Layout, Seg};
use crate::budget::{self, TurnLens};
use crate::error::{Column, EncodeError};
use crate::explain::Probe;
use crate::turns::RowTurns;
use crate::word_cache::WordCache;

/// Python's `str.strip()` with no argument: Unicode whitespace, and the
/// four separators (U+001C..U+001F) Python counts as whitespace and Rust
/// does not. Jinja's `trim` is this in transformers.
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

impl Encoder {
    /// The sides `sides` (false: A, true: B) of one row, in that order.
    pub(super) fn encode_separate(
        &self,
        row: usize,
        turns: &RowTurns,
        sides: &[bool],
        cache: &mut WordCache,
        out: &mut Encoded,
        mut probe: Option<&mut Probe>,
    ) -> Result<(), EncodeError> {
        let strip = match self.layout {
            Layout::Separate { strip } => strip,
            Layout::Cross => [false, false],
        };
        let texts = self.texts(turns);
        let n = texts.len();
        // Field f's segment body for a text of column `src`: the text alone
        // (split) or the field's prefix with it (joint).
        let mut body = |f: usize, src: usize, text: &str| -> Result<Vec<u32>, EncodeError> {
            let text = if strip[f.min(1)] {
                py_strip(text)
            } else {
                text
            };
            if self.cfg.joint {
                let prefix = &self.cfg.template.prefixes[f];
                let mut s = String::with_capacity(prefix.len() + text.len());
                s.push_str(prefix);
                s.push_str(text);
                self.tokenize(row, Column::ALL[src], &s, cache)
            } else {
                self.tokenize(row, Column::ALL[src], text, cache)
            }
        };
        // bodies[t] = [prompt, answer A, answer B].
        let mut bodies: Vec<[Vec<u32>; 3]> = Vec::with_capacity(n);
        for t in &texts {
            bodies.push([body(0, 0, &t[0])?, body(1, 1, &t[1])?, body(1, 2, &t[2])?]);
        }
        let header_lens = self.header_lengths(row, n, cache)?;
        let frame = self.frame(&header_lens);
        let pre: [&[u32]; 2] = if self.cfg.joint {
            [&[], &[]]
        } else {
            [&self.prefixes[0], &self.prefixes[1]]
        };
        let protect = [self.prefixes[0].len(), self.prefixes[1].len(), 0];
        // Per side, per turn: [prompt, answer, nothing].
        let segs: [Vec<[Seg; 3]>; 2] = [1, 2].map(|src| {
            bodies
                .iter()
                .map(|b| {
                    [
                        Seg {
                            pre: pre[0],
                            body: &b[0],
                        },
                        Seg {
                            pre: pre[1],
                            body: &b[src],
                        },
                        Seg {
                            pre: &[],
                            body: &[],
                        },
                    ]
                })
                .collect()
        });
        let lens: [Vec<TurnLens>; 2] = [0, 1].map(|s| {
            segs[s]
                .iter()
                .map(|seg| TurnLens {
                    seg: [seg[0].len(), seg[1].len(), 0],
                    protect,
                })
                .collect()
        });
        let mut plans = [0, 1].map(|s| budget::plan(&self.side_budget, &frame, &lens[s]));
        budget::share_prompt(&mut plans, [&lens[0], &lens[1]], frame.marker);
        for &side in sides {
            let s = side as usize;
            let plan = &plans[s];
            let emitted = Emit {
                row,
                turns,
                fields: 2,
                side,
            };
            self.emit_row(
                &emitted,
                &segs[s],
                &lens[s],
                plan,
                &frame,
                cache,
                out,
                probe.as_deref_mut(),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::py_strip;

    #[test]
    fn strips_what_python_strips() {
        assert_eq!(py_strip(" \n\t x y \r\u{a0}"), "x y");
        assert_eq!(py_strip("\u{1c}\u{1f}x\u{3000}\u{85}"), "x");
        // Not whitespace to Python: zero-width space, BOM.
        assert_eq!(py_strip("\u{200b}x\u{feff}"), "\u{200b}x\u{feff}");
        assert_eq!(py_strip(" \n "), "");
    }
}
