//! Every error the core can report. One enum per module, gathered here so the
//! bindings can map each variant to one Python exception exhaustively.

use std::io;

use thiserror::Error;

/// Which text column of an arena row a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Prompt,
    ResponseA,
    ResponseB,
}

impl Column {
    pub const ALL: [Column; 3] = [Column::Prompt, Column::ResponseA, Column::ResponseB];

    pub fn name(self) -> &'static str {
        match self {
            Column::Prompt => "prompt",
            Column::ResponseA => "response_a",
            Column::ResponseB => "response_b",
        }
    }
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A turn list that is not a JSON list of strings and nulls.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid JSON turn list at character {position}: {message}")]
pub struct TurnsError {
    /// Character (not byte) offset into the cell where parsing stopped.
    pub position: usize,
    pub message: String,
}

#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error("cannot load tokenizer: {0}")]
    Load(String),
    #[error("tokenization failed: {0}")]
    Encode(String),
    #[error("token {0:?} is not in the tokenizer's vocabulary")]
    UnknownToken(String),
    /// The tokenizer's regex gave up on a text (`regex_budget`): the reason
    /// says which limit; the text is not encoded.
    #[error("the tokenizer's regex backtracks too much on this text ({0})")]
    Regex(String),
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Error)]
pub enum EncodeError {
    #[error("row {row}, column {column}: {source}")]
    Turns {
        row: usize,
        column: Column,
        source: TurnsError,
    },
    #[error("columns have different lengths: prompt {prompt}, response_a {a}, response_b {b}")]
    ColumnLengths { prompt: usize, a: usize, b: usize },
    /// A text the tokenizer could not encode; `column` is None for the
    /// template's own strings (a turn header).
    #[error("row {row}{}: {source}", at_column(.column))]
    Tokenizer {
        row: usize,
        column: Option<Column>,
        source: TokenizerError,
    },
    #[error("row index {index} out of range for {rows} rows")]
    Index { index: i64, rows: usize },
    /// Token rows that cannot be split into or made of swap pairs (`pairs`).
    #[error("{0}")]
    Pairs(String),
}

fn at_column(column: &Option<Column>) -> String {
    column.map_or_else(String::new, |c| format!(", column {c}"))
}

/// Lengths a plan cannot be made of.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("row {row} has length {length}; every sequence needs at least one token")]
    Length { row: usize, length: i64 },
    #[error("{0}")]
    Unfit(String),
}

/// Rows or labels a batch cannot be assembled from.
#[derive(Debug, Error)]
pub enum CollateError {
    #[error("{0}")]
    Input(String),
}

/// Why a file could not be scanned or copied; `Cell` names the row and
/// column (the caller adds the file).
#[derive(Debug, Error)]
pub enum CellsError {
    #[error("cannot read: {0}")]
    Read(io::Error),
    #[error("cannot write the copy: {0}")]
    Write(io::Error),
    #[error("{0}")]
    Cell(String),
}

/// The one error type of the crate's public API.
#[derive(Debug, Error)]
pub enum CoreError {
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Collate(#[from] CollateError),
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
