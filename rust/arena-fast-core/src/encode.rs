//! Rows of turns -> token ids that fit the budget, with diagnostics and A/B
//! swap pairs built from the same token segments.

use std::borrow::Cow;
use std::sync::Arc;

use crate::budget::{self, BudgetConfig, Cut, Frame, Plan, TurnLens};
use crate::error::{Column, ConfigError, CoreError, EncodeError, TokenizerError};
use crate::explain::{Probe, Segment, Span, SpanKind};
use crate::pool;
use crate::rows::Rows;
use crate::template::Template;
use crate::tokenize::ArenaTokenizer;
use crate::turns::RowTurns;
use crate::word_cache::{with_thread_cache, WordCache};

mod separate;

/// Which A/B orders to produce for each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    Original,
    Swapped,
    /// Two rows per input row: 2i the original, 2i+1 its swap.
    Both,
}

impl Swap {
    /// The names the bindings pass: "original", "swapped", "both".
    pub fn parse(name: &str) -> Result<Swap, ConfigError> {
        match name {
            "original" => Ok(Swap::Original),
            "swapped" => Ok(Swap::Swapped),
            "both" => Ok(Swap::Both),
            other => Err(ConfigError::Invalid(format!(
                "swap must be False, True or 'both', got {other:?}"
            ))),
        }
    }
}

/// What one input row becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One sequence: the prompt and both answers of every turn (swap picks
    /// the order of the answers).
    Cross,
    /// Two sequences, rows 2i and 2i+1: the prompt turns with answer A's
    /// turns, then with answer B's (docs/encoding.md, "Separate layout and
    /// chat templates"). `strip[0]` / `strip[1]`: prompt / answer texts are
    /// stripped of surrounding whitespace first (Python's `str.strip`, as a
    /// chat template's `| trim` does).
    Separate { strip: [bool; 2] },
}

impl Layout {
    /// The names the bindings pass: "cross", "separate".
    pub fn parse(name: &str) -> Result<Layout, ConfigError> {
        match name {
            "cross" => Ok(Layout::Cross),
            "separate" => Ok(Layout::Separate {
                strip: [false, false],
            }),
            other => Err(ConfigError::Invalid(format!(
                "layout must be 'cross' or 'separate', got {other:?}"
            ))),
        }
    }

    /// Fields per turn: prompt, A, B (cross) or prompt, answer (separate).
    pub fn fields(self) -> usize {
        match self {
            Layout::Cross => 3,
            Layout::Separate { .. } => 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub template: Template,
    pub budget: BudgetConfig,
    /// Tokenize each field's prefix together with its text.
    pub joint: bool,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Special-token strings inside user text are encoded as plain text.
    pub split_special_tokens: bool,
    pub null_text: String,
    pub num_threads: Option<usize>,
}

/// Encoded rows, concatenated, with per-row diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    pub input_ids: Vec<i32>,
    pub offsets: Vec<i64>,
    pub turns_total: Vec<i32>,
    pub turns_kept: Vec<i32>,
    pub truncated: Vec<bool>,
    /// Tokens the row would have with nothing cut (every turn, whole texts).
    pub full_lengths: Vec<i64>,
    pub repairs: Vec<u8>,
    pub is_swapped: Vec<bool>,
    pub source_row: Vec<i64>,
}

impl Encoded {
    fn with_offsets() -> Encoded {
        Encoded {
            offsets: vec![0],
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn row(&self, i: usize) -> &[i32] {
        &self.input_ids[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Drop the rows from `rows` on (a row that failed half-way).
    fn truncate_rows(&mut self, rows: usize) {
        self.input_ids.truncate(self.offsets[rows] as usize);
        self.offsets.truncate(rows + 1);
        self.turns_total.truncate(rows);
        self.turns_kept.truncate(rows);
        self.truncated.truncate(rows);
        self.full_lengths.truncate(rows);
        self.repairs.truncate(rows);
        self.is_swapped.truncate(rows);
        self.source_row.truncate(rows);
    }

    fn append(&mut self, mut other: Encoded) {
        let base = *self.offsets.last().unwrap_or(&0);
        self.offsets
            .extend(other.offsets.iter().skip(1).map(|o| o + base));
        self.input_ids.append(&mut other.input_ids);
        self.turns_total.append(&mut other.turns_total);
        self.turns_kept.append(&mut other.turns_kept);
        self.truncated.append(&mut other.truncated);
        self.full_lengths.append(&mut other.full_lengths);
        self.repairs.append(&mut other.repairs);
        self.is_swapped.append(&mut other.is_swapped);
        self.source_row.append(&mut other.source_row);
    }
}

/// One encoded row, explained: its ids (`Encoded` of one row), the spans
/// covering them in order, and every segment of every turn.
#[derive(Debug, Clone)]
pub struct Explained {
    pub encoded: Encoded,
    pub spans: Vec<Span>,
    pub segments: Vec<Segment>,
}

/// A row `Encoder::encode_rows_skipping` left out: the tokenizer could not
/// encode one of its texts (its regex went over budget, `regex_budget`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The row's position in the call (in `idx` when one is given).
    pub row: usize,
    /// The column of the text; None for a template string (a turn header).
    pub column: Option<Column>,
    pub message: String,
}

/// Headers tokenized at construction; longer conversations tokenize on demand.
const CACHED_HEADERS: usize = 64;
/// Rows per parallel task.
const CHUNK: usize = 64;

pub struct Encoder {
    tok: Arc<ArenaTokenizer>,
    cfg: EncoderConfig,
    begin: Vec<u32>,
    end: Vec<u32>,
    prefixes: [Vec<u32>; 3],
    suffixes: [Vec<u32>; 3],
    marker: Vec<u32>,
    headers: Vec<Vec<u32>>,
    header_lens: Vec<usize>,
    fixed: usize,
    pool: Option<rayon::ThreadPool>,
    layout: Layout,
    /// The budget a side of the separate layout is planned with: the
    /// answer's `fourth_place` share is the two answers' shares together.
    side_budget: BudgetConfig,
}

/// Which row `Encoder::emit_row` appends: the input row, its turns, how
/// many fields a turn lays out (3 cross, 2 separate) and its side
/// (`is_swapped`: the swapped order, or the B side of the separate layout).
struct Emit<'a> {
    row: usize,
    turns: &'a RowTurns,
    fields: usize,
    side: bool,
}

/// A field of one turn as token slices: `pre ++ body` is the segment.
#[derive(Clone, Copy)]
struct Seg<'a> {
    pre: &'a [u32],
    body: &'a [u32],
}

impl Seg<'_> {
    fn len(&self) -> usize {
        self.pre.len() + self.body.len()
    }

    fn extend_range(&self, out: &mut Vec<i32>, start: usize, end: usize) {
        let p = self.pre.len();
        if start < p {
            out.extend(self.pre[start..end.min(p)].iter().map(|&t| t as i32));
        }
        if end > p {
            out.extend(
                self.body[start.max(p) - p..end - p]
                    .iter()
                    .map(|&t| t as i32),
            );
        }
    }
}

fn ids(v: &[u32]) -> impl Iterator<Item = i32> + '_ {
    v.iter().map(|&t| t as i32)
}

impl Encoder {
    pub fn new(tok: Arc<ArenaTokenizer>, cfg: EncoderConfig) -> Result<Encoder, CoreError> {
        Self::with_layout(tok, cfg, Layout::Cross)
    }

    /// An encoder of `layout`; the separate layout uses the template's
    /// prompt and response A strings (field B's are not used).
    pub fn with_layout(
        tok: Arc<ArenaTokenizer>,
        cfg: EncoderConfig,
        layout: Layout,
    ) -> Result<Encoder, CoreError> {
        cfg.budget.validate()?;
        let t = &cfg.template;
        // Template strings are markup: their special tokens stay special.
        let markup = |s: &str| tok.encode(s, false);
        let begin = markup(&t.begin)?;
        let end = markup(&t.end)?;
        let prefixes = [
            markup(&t.prefixes[0])?,
            markup(&t.prefixes[1])?,
            markup(&t.prefixes[2])?,
        ];
        let suffixes = [
            markup(&t.suffixes[0])?,
            markup(&t.suffixes[1])?,
            markup(&t.suffixes[2])?,
        ];
        let marker = markup(&t.marker)?;
        let headers = (1..=CACHED_HEADERS)
            .map(|i| markup(&t.header_text(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let fixed =
            cfg.bos.is_some() as usize + begin.len() + end.len() + cfg.eos.is_some() as usize;
        let pool = pool::own_pool(cfg.num_threads)?;
        let header_lens = headers.iter().map(Vec::len).collect();
        let mut side_budget = cfg.budget.clone();
        let r = cfg.budget.tail_ratios;
        side_budget.tail_ratios = [r[0], r[1] + r[2], 0.0];
        let enc = Encoder {
            tok,
            cfg,
            begin,
            end,
            prefixes,
            suffixes,
            marker,
            headers,
            header_lens,
            fixed,
            pool,
            layout,
            side_budget,
        };
        let frame = enc.frame(&enc.header_lens);
        let mut prefix_lens = [
            enc.prefixes[0].len(),
            enc.prefixes[1].len(),
            enc.prefixes[2].len(),
        ];
        prefix_lens[2] *= (layout.fields() == 3) as usize;
        let least = budget::min_max_length(enc.cfg.budget.strategy, &frame, prefix_lens);
        if enc.cfg.budget.max_length < least {
            return Err(ConfigError::Invalid(format!(
                "max_length={} cannot hold this template's fixed tokens with strategy {:?}: at least {least} needed",
                enc.cfg.budget.max_length, enc.cfg.budget.strategy
            ))
            .into());
        }
        Ok(enc)
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    pub fn tokenizer(&self) -> &Arc<ArenaTokenizer> {
        &self.tok
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The row-independent lengths; the separate layout has no third field
    /// (its suffix counts 0).
    fn frame<'a>(&self, headers: &'a [usize]) -> Frame<'a> {
        let third = (self.layout.fields() == 3) as usize;
        Frame {
            fixed: self.fixed,
            headers,
            suffix: [
                self.suffixes[0].len(),
                self.suffixes[1].len(),
                self.suffixes[2].len() * third,
            ],
            marker: self.marker.len(),
        }
    }

    /// Encode rows given as turn lists.
    pub fn encode(&self, rows: &[RowTurns], swap: Swap) -> Result<Encoded, CoreError> {
        self.run(rows.len(), swap, false, |i| Ok(Cow::Borrowed(&rows[i])))
            .map(|(enc, _)| enc)
    }

    /// Encode the rows `idx` (all rows when None) of parsed `Rows`, in that
    /// order; output row i (or 2i, 2i+1) comes from `idx[i]`. An error names
    /// the row of `rows`.
    pub fn encode_rows(
        &self,
        rows: &Rows,
        idx: Option<&[i64]>,
        swap: Swap,
    ) -> Result<Encoded, CoreError> {
        match self.rows_run(rows, idx, swap, false) {
            Err(CoreError::Encode(EncodeError::Tokenizer {
                row,
                column,
                source,
            })) => Err(EncodeError::Tokenizer {
                row: idx.map_or(row, |idx| idx[row] as usize),
                column,
                source,
            }
            .into()),
            other => other.map(|(enc, _)| enc),
        }
    }

    /// `encode_rows`, but a row whose text the tokenizer cannot encode is
    /// left out (its position in `idx` reported in the `Skipped` list)
    /// instead of failing the call; `source_row` says which rows are there.
    pub fn encode_rows_skipping(
        &self,
        rows: &Rows,
        idx: Option<&[i64]>,
        swap: Swap,
    ) -> Result<(Encoded, Vec<Skipped>), CoreError> {
        self.rows_run(rows, idx, swap, true)
    }

    fn rows_run(
        &self,
        rows: &Rows,
        idx: Option<&[i64]>,
        swap: Swap,
        skip: bool,
    ) -> Result<(Encoded, Vec<Skipped>), CoreError> {
        let n = rows.len();
        if let Some(idx) = idx {
            rows.check_index(idx)?;
            self.run(idx.len(), swap, skip, |i| {
                Ok(Cow::Borrowed(&rows.rows[idx[i] as usize]))
            })
        } else {
            self.run(n, swap, skip, |i| Ok(Cow::Borrowed(&rows.rows[i])))
        }
    }

    /// Encode rows given as the three JSON-list cells of the Kaggle CSV.
    pub fn encode_json(
        &self,
        prompt: &[String],
        a: &[String],
        b: &[String],
        swap: Swap,
    ) -> Result<Encoded, CoreError> {
        self.encode_json_flagged(prompt, a, b, &[], swap)
    }

    /// `encode_json` with repairs already made to the cells (e.g. lone
    /// surrogates in the Python strings), one entry per row (or none).
    pub fn encode_json_flagged(
        &self,
        prompt: &[String],
        a: &[String],
        b: &[String],
        pre_repairs: &[u8],
        swap: Swap,
    ) -> Result<Encoded, CoreError> {
        if prompt.len() != a.len() || a.len() != b.len() {
            return Err(EncodeError::ColumnLengths {
                prompt: prompt.len(),
                a: a.len(),
                b: b.len(),
            }
            .into());
        }
        let null_text = &self.cfg.null_text;
        self.run(prompt.len(), swap, false, |i| {
            let mut turns = RowTurns::from_json(i, [&prompt[i], &a[i], &b[i]], null_text)?;
            turns.repairs |= pre_repairs.get(i).copied().unwrap_or(0);
            Ok(Cow::Owned(turns))
        })
        .map(|(enc, _)| enc)
    }

    /// Rows `0..n` (each from `row`), in chunks on the pool. With `skip`, a
    /// row the tokenizer fails on is left out and listed; else it fails the call.
    fn run<'r, F>(
        &self,
        n: usize,
        swap: Swap,
        skip: bool,
        row: F,
    ) -> Result<(Encoded, Vec<Skipped>), CoreError>
    where
        F: Fn(usize) -> Result<Cow<'r, RowTurns>, EncodeError> + Sync,
    {
        if self.layout != Layout::Cross && swap != Swap::Original {
            return Err(ConfigError::Invalid(
                "swap must be False in the separate layout: each row already gives both \
                 sequences of its pair (prompt + A as row 2i, prompt + B as row 2i+1)"
                    .into(),
            )
            .into());
        }
        type Part = (Encoded, Vec<Skipped>);
        let chunk = |c: usize| -> Result<Part, EncodeError> {
            let mut out = Encoded::with_offsets();
            let mut skipped = Vec::new();
            with_thread_cache(self.tok.id(), |cache| {
                for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                    let turns = row(i)?;
                    let before = out.len();
                    match self.encode_row(i, &turns, swap, cache, &mut out, None) {
                        Err(EncodeError::Tokenizer { column, source, .. }) if skip => {
                            out.truncate_rows(before);
                            skipped.push(Skipped {
                                row: i,
                                column,
                                message: source.to_string(),
                            });
                        }
                        other => other?,
                    }
                }
                Ok((out, skipped))
            })
        };
        let chunks = n.div_ceil(CHUNK);
        let parts = pool::run_tasks(self.pool.as_ref(), chunks, chunk);
        let mut all = Encoded::with_offsets();
        let mut skipped = Vec::new();
        for part in parts {
            let (enc, mut part_skipped) = part?;
            all.append(enc);
            skipped.append(&mut part_skipped);
        }
        Ok((all, skipped))
    }

    fn tokenize(
        &self,
        row: usize,
        column: Column,
        text: &str,
        cache: &mut WordCache,
    ) -> Result<Vec<u32>, EncodeError> {
        self.tok
            .encode_cached(text, self.cfg.split_special_tokens, cache)
            .map_err(|source: TokenizerError| EncodeError::Tokenizer {
                row,
                column: Some(column),
                source,
            })
    }

    /// One row encoded (in the swapped order with `swapped`) and explained.
    /// With the `none` strategy's body cut, `kept` counts what the plan
    /// kept before the cut; the spans show what is left.
    pub fn explain(&self, row: &RowTurns, swapped: bool) -> Result<Explained, CoreError> {
        let swap = if swapped {
            Swap::Swapped
        } else {
            Swap::Original
        };
        let mut probe = Probe::default();
        let mut encoded = Encoded::with_offsets();
        with_thread_cache(self.tok.id(), |cache| match self.layout {
            Layout::Cross => self.encode_row(0, row, swap, cache, &mut encoded, Some(&mut probe)),
            Layout::Separate { .. } => {
                self.encode_separate(0, row, &[swapped], cache, &mut encoded, Some(&mut probe))
            }
        })?;
        Ok(Explained {
            encoded,
            spans: probe.spans,
            segments: probe.segments,
        })
    }

    fn encode_row(
        &self,
        row: usize,
        turns: &RowTurns,
        swap: Swap,
        cache: &mut WordCache,
        out: &mut Encoded,
        mut probe: Option<&mut Probe>,
    ) -> Result<(), EncodeError> {
        if let Layout::Separate { .. } = self.layout {
            return self.encode_separate(row, turns, &[false, true], cache, out, probe);
        }
        let joined = self.texts(turns);
        let variants: &[bool] = match swap {
            Swap::Original => &[false],
            Swap::Swapped => &[true],
            Swap::Both => &[false, true],
        };
        // Split mode: each text tokenized once, shared by both orders.
        // Joint mode: each (prefix, text) pair tokenized once.
        let mut bodies: Vec<[Vec<u32>; 3]> = Vec::with_capacity(joined.len());
        let mut swapped_bodies: Vec<[Vec<u32>; 3]> = Vec::new();
        for texts in &joined {
            if self.cfg.joint {
                // Field `f`'s prefix with the text of column `src`.
                let mut joint = |f: usize, src: usize| -> Result<Vec<u32>, EncodeError> {
                    let (prefix, text) = (&self.cfg.template.prefixes[f], &texts[src]);
                    let mut s = String::with_capacity(prefix.len() + text.len());
                    s.push_str(prefix);
                    s.push_str(text);
                    self.tokenize(row, Column::ALL[src], &s, cache)
                };
                let p = joint(0, 0)?;
                if variants.contains(&false) {
                    bodies.push([p.clone(), joint(1, 1)?, joint(2, 2)?]);
                }
                if variants.contains(&true) {
                    swapped_bodies.push([p, joint(1, 2)?, joint(2, 1)?]);
                }
            } else {
                let [p, a, b] = Column::ALL;
                bodies.push([
                    self.tokenize(row, p, &texts[0], cache)?,
                    self.tokenize(row, a, &texts[1], cache)?,
                    self.tokenize(row, b, &texts[2], cache)?,
                ]);
            }
        }
        let n = joined.len();
        let header_lens = self.header_lengths(row, n, cache)?;
        let frame = self.frame(&header_lens);
        for &swapped in variants {
            let segs: Vec<[Seg; 3]> = (0..n)
                .map(|t| {
                    [0, 1, 2].map(|f| {
                        if self.cfg.joint {
                            let body = if swapped {
                                &swapped_bodies[t][f]
                            } else {
                                &bodies[t][f]
                            };
                            Seg { pre: &[], body }
                        } else {
                            let src = if swapped && f > 0 { 3 - f } else { f };
                            Seg {
                                pre: &self.prefixes[f],
                                body: &bodies[t][src],
                            }
                        }
                    })
                })
                .collect();
            let lens: Vec<TurnLens> = segs
                .iter()
                .map(|s| TurnLens {
                    seg: [s[0].len(), s[1].len(), s[2].len()],
                    protect: [
                        self.prefixes[0].len(),
                        self.prefixes[1].len(),
                        self.prefixes[2].len(),
                    ],
                })
                .collect();
            let plan = budget::plan(&self.cfg.budget, &frame, &lens);
            let emitted = Emit {
                row,
                turns,
                fields: 3,
                side: swapped,
            };
            self.emit_row(
                &emitted,
                &segs,
                &lens,
                &plan,
                &frame,
                cache,
                out,
                probe.as_deref_mut(),
            )?;
        }
        Ok(())
    }

    /// The texts laid out per turn; `concat` joins every turn into one.
    fn texts<'t>(&self, turns: &'t RowTurns) -> Vec<[Cow<'t, str>; 3]> {
        match &self.cfg.template.join_turns {
            Some(sep) if turns.n_turns() > 0 => {
                vec![[0, 1, 2].map(|f| Cow::Owned(turns.fields[f].join(sep)))]
            }
            Some(_) => vec![],
            None => (0..turns.n_turns())
                .map(|t| [0, 1, 2].map(|f| Cow::Borrowed(turns.fields[f][t].as_str())))
                .collect(),
        }
    }

    /// The headers' lengths for `n` laid-out turns: the cached ones, and
    /// past them each tokenized (through `cache`).
    fn header_lengths(
        &self,
        row: usize,
        n: usize,
        cache: &mut WordCache,
    ) -> Result<Cow<'_, [usize]>, EncodeError> {
        if n <= CACHED_HEADERS {
            return Ok(Cow::Borrowed(&self.header_lens));
        }
        let mut lens = self.header_lens.clone();
        for i in CACHED_HEADERS + 1..=n {
            let h = self
                .header_ids(i, cache)
                .map_err(|source| EncodeError::Tokenizer {
                    row,
                    column: None,
                    source,
                })?;
            lens.push(h.len());
        }
        Ok(Cow::Owned(lens))
    }

    /// The header at 1-based `position`; past the cached ones it is
    /// tokenized through `cache`, the word cache the caller already holds
    /// (`ArenaTokenizer::encode` would borrow this thread's cache again).
    fn header_ids(
        &self,
        position: usize,
        cache: &mut WordCache,
    ) -> Result<Cow<'_, [u32]>, TokenizerError> {
        match self.headers.get(position - 1) {
            Some(h) => Ok(Cow::Borrowed(h)),
            None => Ok(Cow::Owned(self.tok.encode_cached(
                &self.cfg.template.header_text(position),
                false,
                cache,
            )?)),
        }
    }

    /// One planned row appended to `out`: its ids (`assemble`) and its
    /// diagnostics, the pieces noted in `probe` when there is one.
    #[allow(clippy::too_many_arguments)]
    fn emit_row(
        &self,
        emit: &Emit,
        segs: &[[Seg; 3]],
        lens: &[TurnLens],
        plan: &Plan,
        frame: &Frame,
        cache: &mut WordCache,
        out: &mut Encoded,
        mut probe: Option<&mut Probe>,
    ) -> Result<(), EncodeError> {
        let fields = emit.fields;
        if let Some(probe) = probe.as_deref_mut() {
            let seg_lens: Vec<[usize; 3]> = lens.iter().map(|l| l.seg).collect();
            let kept: Vec<_> = plan.turns.iter().map(|t| (t.turn, t.cuts)).collect();
            probe.segments(&seg_lens, &kept, fields);
        }
        let full: usize = frame.fixed
            + lens
                .iter()
                .enumerate()
                .map(|(t, l)| {
                    frame.headers[t]
                        + (0..fields)
                            .map(|f| frame.suffix[f] + l.seg[f])
                            .sum::<usize>()
                })
                .sum::<usize>();
        let row_start = out.input_ids.len();
        self.assemble(
            segs,
            fields,
            plan,
            cache,
            &mut out.input_ids,
            row_start,
            probe,
        )
        .map_err(|source| EncodeError::Tokenizer {
            row: emit.row,
            column: None,
            source,
        })?;
        let n_total = emit.turns.n_turns();
        out.offsets.push(out.input_ids.len() as i64);
        out.turns_total.push(n_total as i32);
        let kept = if self.cfg.template.join_turns.is_some() && plan.turns_kept > 0 {
            n_total
        } else {
            plan.turns_kept
        };
        out.turns_kept.push(kept as i32);
        out.truncated.push(plan.truncated);
        out.full_lengths.push(full as i64);
        out.repairs.push(emit.turns.repairs);
        out.is_swapped.push(emit.side);
        out.source_row.push(emit.row as i64);
        Ok(())
    }

    /// The row's ids after `out[..row_start]`; each piece noted in `probe`
    /// (positions from `row_start`) when there is one.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        segs: &[[Seg; 3]],
        fields: usize,
        plan: &Plan,
        cache: &mut WordCache,
        out: &mut Vec<i32>,
        row_start: usize,
        probe: Option<&mut Probe>,
    ) -> Result<(), TokenizerError> {
        let mut note = Note { probe, row_start };
        out.extend(self.cfg.bos.map(|b| b as i32));
        note.mark(SpanKind::Bos, None, None, out);
        out.extend(ids(&self.begin));
        note.mark(SpanKind::Begin, None, None, out);
        let body_start = out.len();
        for (pos, tp) in plan.turns.iter().enumerate() {
            let turn = Some(tp.turn);
            out.extend(ids(&self.header_ids(pos + 1, cache)?));
            note.mark(SpanKind::Header, turn, None, out);
            for f in 0..fields {
                let seg = segs[tp.turn][f];
                match tp.cuts[f] {
                    Cut::Full => note.piece(seg, 0, seg.len(), turn, f, out),
                    Cut::Part { head, tail } => {
                        note.piece(seg, 0, head, turn, f, out);
                        out.extend(ids(&self.marker));
                        note.mark(SpanKind::Marker, turn, Some(f), out);
                        note.piece(seg, seg.len() - tail, seg.len(), turn, f, out);
                    }
                }
                out.extend(ids(&self.suffixes[f]));
                note.mark(SpanKind::Suffix, turn, Some(f), out);
            }
        }
        if let Some(limit) = plan.body_limit {
            out.truncate(body_start + limit);
            if let Some(p) = note.probe.as_deref_mut() {
                p.clip(out.len() - row_start);
            }
        }
        out.extend(ids(&self.end));
        note.mark(SpanKind::End, None, None, out);
        out.extend(self.cfg.eos.map(|e| e as i32));
        note.mark(SpanKind::Eos, None, None, out);
        Ok(())
    }
}

/// Where `assemble` notes the pieces of a row, if anywhere.
struct Note<'p> {
    probe: Option<&'p mut Probe>,
    row_start: usize,
}

impl Note<'_> {
    /// The ids since the last mark, up to the end of `out`, are a `kind`.
    fn mark(&mut self, kind: SpanKind, turn: Option<usize>, field: Option<usize>, out: &[i32]) {
        if let Some(p) = self.probe.as_deref_mut() {
            p.mark(kind, turn, field, out.len() - self.row_start);
        }
    }

    /// `seg[start..end]` onto `out`: its prefix part, then its text part.
    fn piece(
        &mut self,
        seg: Seg,
        start: usize,
        end: usize,
        turn: Option<usize>,
        field: usize,
        out: &mut Vec<i32>,
    ) {
        let p = seg.pre.len();
        if self.probe.is_none() {
            seg.extend_range(out, start, end);
            return;
        }
        seg.extend_range(out, start, end.min(p).max(start));
        self.mark(SpanKind::Prefix, turn, Some(field), out);
        seg.extend_range(out, start.max(p).min(end), end);
        self.mark(SpanKind::Text, turn, Some(field), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Strategy;

    /// The demo tokenizer with a `Split` pre-tokenizer on `pattern`.
    fn tokenizer(pattern: &str) -> Arc<ArenaTokenizer> {
        let demo = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../python/arena_fast/data/demo_tokenizer/tokenizer.json"
        ));
        let mut json: serde_json::Value = serde_json::from_str(demo).unwrap();
        json["pre_tokenizer"] = serde_json::json!({
            "type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false
        });
        Arc::new(ArenaTokenizer::from_json(&json.to_string()).unwrap())
    }

    fn encoder(tok: Arc<ArenaTokenizer>, num_threads: Option<usize>) -> Result<Encoder, CoreError> {
        let cfg = EncoderConfig {
            template: Template::preset("rounds").unwrap(),
            budget: BudgetConfig::new(512, Strategy::Fair),
            joint: false,
            bos: None,
            eos: None,
            split_special_tokens: true,
            null_text: String::new(),
            num_threads,
        };
        Encoder::new(tok, cfg)
    }

    fn row(a: &str) -> RowTurns {
        RowTurns::new(vec!["q".into()], vec![a.into()], vec!["b".into()], 0)
    }

    #[test]
    fn a_row_the_tokenizer_fails_on_is_skipped_alone() {
        let enc = encoder(tokenizer("a*a*$"), None).unwrap();
        let bad = format!("{}b", "a".repeat(6000));
        let rows = Rows::from_turns(vec![row("x"), row(&bad), row("y")]);
        let err = enc
            .encode_rows(&rows, Some(&[2, 1]), Swap::Both)
            .unwrap_err();
        // The row of `rows`, not the position in idx.
        assert!(
            err.to_string().starts_with("row 1, column response_a: "),
            "{err}"
        );
        let (out, skipped) = enc
            .encode_rows_skipping(&rows, Some(&[0, 1, 2]), Swap::Both)
            .unwrap();
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            (skipped[0].row, skipped[0].column),
            (1, Some(Column::ResponseA))
        );
        assert_eq!(out.source_row, vec![0, 0, 2, 2]);
        let whole = enc.encode_rows(&rows, Some(&[0, 2]), Swap::Both).unwrap();
        assert_eq!(out.input_ids, whole.input_ids);
        assert_eq!(out.offsets, whole.offsets);
    }

    #[test]
    fn separate_rows_come_in_pairs_sharing_the_prompt() {
        let cfg = encoder(tokenizer(" "), None).unwrap().cfg.clone();
        let layout = Layout::Separate {
            strip: [false, true],
        };
        let enc = Encoder::with_layout(tokenizer(" "), cfg, layout).unwrap();
        let rows = [
            RowTurns::new(vec!["q".into()], vec![" a ".into()], vec!["b".into()], 0),
            row("x"),
        ];
        let out = enc.encode(&rows, Swap::Original).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out.source_row, vec![0, 0, 1, 1]);
        assert_eq!(out.is_swapped, vec![false, true, false, true]);
        // Stripped, " a " is "a": the two sides differ in the answer only.
        let (a, b) = (out.row(0), out.row(1));
        assert_eq!(a.len(), b.len());
        assert_eq!(a.iter().zip(b).filter(|(x, y)| x != y).count(), 1);
        assert!(enc.encode(&rows, Swap::Both).is_err());
        assert!(enc.encode(&rows, Swap::Swapped).is_err());
    }

    #[test]
    fn thread_counts_past_the_cap_are_refused() {
        for bad in [0, pool::MAX_THREADS + 1, usize::MAX] {
            assert!(encoder(tokenizer(" "), Some(bad)).is_err());
        }
        assert!(encoder(tokenizer(" "), Some(2)).is_ok());
    }
}
