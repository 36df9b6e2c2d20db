//! What the encoder made of one row, piece by piece: which ids are the
//! template's, which are each turn's text, where the budget cut a segment,
//! and how long every segment was before the cut (for `inspect`-like views
//! and `arena-fast serve`): `Encoder::explain` fills a `Probe`.

use crate::budget::Cut;

/// What a run of ids is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Bos,
    Begin,
    Header,
    Prefix,
    Text,
    Marker,
    Suffix,
    End,
    Eos,
}

impl SpanKind {
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Bos => "bos",
            SpanKind::Begin => "begin",
            SpanKind::Header => "header",
            SpanKind::Prefix => "prefix",
            SpanKind::Text => "text",
            SpanKind::Marker => "marker",
            SpanKind::Suffix => "suffix",
            SpanKind::End => "end",
            SpanKind::Eos => "eos",
        }
    }
}

/// The ids `start..stop` of the row are a `kind` piece of `turn` (0-based,
/// in the row) and `field` (0 prompt, 1 and 2 the answers as placed), where
/// those apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub kind: SpanKind,
    pub turn: Option<usize>,
    pub field: Option<usize>,
    pub start: usize,
    pub stop: usize,
}

/// One field of one turn: its full length (prefix and text) and how much of
/// it the row keeps (0 for a dropped turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub turn: usize,
    pub field: usize,
    pub tokens: usize,
    pub kept: usize,
    pub cut: bool,
}

/// What the encoder records of a row when asked to explain it.
#[derive(Debug, Default)]
pub struct Probe {
    pub spans: Vec<Span>,
    pub segments: Vec<Segment>,
}

impl Probe {
    /// Note that the ids from the last span's stop to `stop` are a `kind`.
    pub fn mark(&mut self, kind: SpanKind, turn: Option<usize>, field: Option<usize>, stop: usize) {
        let start = self.spans.last().map_or(0, |s| s.stop);
        if stop > start {
            self.spans.push(Span {
                kind,
                turn,
                field,
                start,
                stop,
            });
        }
    }

    /// Clip the spans to the first `len` ids (strategy `none` cuts the body).
    pub fn clip(&mut self, len: usize) {
        self.spans.retain(|s| s.start < len);
        if let Some(last) = self.spans.last_mut() {
            last.stop = last.stop.min(len);
        }
    }

    /// Every segment of `lens` (full lengths per turn and field) with what
    /// `kept` (turn index and cuts, per kept turn) keeps of it; the first
    /// `fields` fields of each turn (3 in the cross layout, 2 in the separate).
    pub fn segments(&mut self, lens: &[[usize; 3]], kept: &[(usize, [Cut; 3])], fields: usize) {
        for (turn, seg) in lens.iter().enumerate() {
            let plan = kept.iter().find(|(t, _)| *t == turn);
            for field in 0..fields {
                let (kept, cut) = match plan.map(|(_, cuts)| cuts[field]) {
                    None => (0, seg[field] > 0),
                    Some(Cut::Full) => (seg[field], false),
                    Some(Cut::Part { head, tail }) => (head + tail, true),
                };
                self.segments.push(Segment {
                    turn,
                    field,
                    tokens: seg[field],
                    kept,
                    cut,
                });
            }
        }
    }
}
