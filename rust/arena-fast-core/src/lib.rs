//! arena-fast-core: the algorithms behind `arena_fast`, without Python.
//!
//! Data flows one way: cells are parsed into turns (`turns`, one row a
//! `RowTurns`; `rows` reads whole Arrow columns of them), texts are
//! tokenized (`tokenize`: `added`, `words`, `word_cache`, `gpt_split`, `byte_level`), laid
//! out by a `template`, fitted into a token budget (`budget`), and assembled into rows (`encode`; `explain` tells a row's pieces apart), whose A/B
//! swap pairs can be split apart and put back together (`pairs`). Encoded
//! rows are then planned into packs or padded batches (`plan`) and
//! assembled into flat batch buffers (`collate`). `pool` holds the threads
//! every parallel step runs on, `buffers` the checks of Arrow-layout
//! buffers, `error` every error. Modules use only modules upstream of them
//! in this flow and those three: the dependencies form no cycle.

pub mod added;
pub mod budget;
pub mod buffers;
pub mod byte_level;
pub mod chat_template;
pub mod collate;
pub mod csv_cells;
mod csv_fields;
pub mod encode;
pub mod error;
pub mod explain;
pub mod folds;
pub mod gpt_split;
pub mod merges;
pub mod pairs;
pub mod plan;
pub mod pool;
pub mod regex_budget;
pub mod regex_check;
pub mod regex_stages;
pub mod rows;
pub mod template;
pub mod tokenize;
pub mod tokenizer_json;
pub mod turn_stream;
pub mod turns;
pub mod word_cache;
pub mod words;

pub use budget::{BudgetConfig, Keep, Strategy};
pub use encode::{Encoded, Encoder, EncoderConfig, Skipped, Swap};
pub use error::{
    CollateError, Column, ConfigError, CoreError, EncodeError, PlanError, TokenizerError,
    TurnsError,
};
pub use folds::assign_folds;
pub use pool::{check_threads, MAX_THREADS};
pub use rows::{Features, RowError, Rows, TextColumn};
pub use template::Template;
pub use tokenize::ArenaTokenizer;
pub use turns::RowTurns;
