//! arena-fast-core: the algorithms behind `arena_fast`, without Python.
//!
//! Data flows one way: cells are parsed into turns (`turns`), texts are
//! tokenized (`tokenize`, `words`), laid out by a `template`, fitted into a
//! token budget (`budget`), and assembled into rows (`encode`). Encoded rows
//! are then planned into packs or padded batches (`plan`) and assembled into
//! flat batch buffers (`collate`).

pub mod budget;
pub mod collate;
pub mod csv_cells;
pub mod encode;
pub mod error;
pub mod folds;
pub mod plan;
pub mod regex_budget;
pub mod regex_check;
pub mod regex_stages;
pub mod rows;
pub mod template;
pub mod tokenize;
pub mod turn_stream;
pub mod turns;
pub mod words;

pub use budget::{BudgetConfig, Keep, Strategy};
pub use encode::{
    check_threads, Encoded, Encoder, EncoderConfig, RowTurns, Skipped, Swap, MAX_THREADS,
};
pub use error::{
    CollateError, Column, ConfigError, CoreError, EncodeError, PlanError, TokenizerError,
    TurnsError,
};
pub use folds::assign_folds;
pub use rows::{Features, RowError, Rows, TextColumn};
pub use template::Template;
pub use tokenize::ArenaTokenizer;
