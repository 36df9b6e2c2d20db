//! `arena_fast._core`: thin bindings over arena-fast-core. Each exposed area
//! has its own file; errors are mapped in one place (`errors.rs`).

use pyo3::prelude::*;

use crate::errors::{detached, guarded};

mod chat_template;
mod collate;
mod csv_cells;
mod encoder;
mod errors;
mod folds;
mod plan;
mod rows;
mod tokenizer;

/// Forget the words the calling thread has cached (encoders' own threads
/// keep theirs). For benchmarks that measure a cold start.
#[pyfunction]
fn clear_word_cache(py: Python<'_>) -> PyResult<()> {
    guarded(py, || {
        arena_fast_core::word_cache::clear_thread_cache();
        Ok(())
    })
}

/// Return freed heap memory to the system (glibc's `malloc_trim`; nothing
/// elsewhere). Long streaming jobs call it between chunks so that memory
/// freed by one chunk does not stay resident.
#[pyfunction]
fn release_memory(py: Python<'_>) -> PyResult<()> {
    detached(py, || {
        tokenizer::release_freed_memory();
        Ok(())
    })
}

extern "C" fn after_fork_in_child() {
    arena_fast_core::pool::mark_forked();
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // DataLoader workers fork: the encoder's threads do not survive a fork,
    // so the child must not wait on them (model: tokenizers' python bindings).
    // SAFETY: registering a handler that only stores to an atomic.
    unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    }
    m.add_class::<tokenizer::PyTokenizer>()?;
    m.add_class::<encoder::PyEncoder>()?;
    m.add_class::<rows::PyRows>()?;
    m.add_class::<chat_template::PyChatTemplate>()?;
    m.add_function(wrap_pyfunction!(encoder::template_preset, m)?)?;
    m.add_function(wrap_pyfunction!(plan::plan_packs, m)?)?;
    m.add_function(wrap_pyfunction!(plan::plan_batches, m)?)?;
    m.add_function(wrap_pyfunction!(folds::assign_folds, m)?)?;
    m.add_function(wrap_pyfunction!(collate::collate_packed, m)?)?;
    m.add_function(wrap_pyfunction!(collate::collate_padded, m)?)?;
    m.add_function(wrap_pyfunction!(csv_cells::clip_csv_cells, m)?)?;
    m.add_function(wrap_pyfunction!(rows::split_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(rows::interleave_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(clear_word_cache, m)?)?;
    m.add_function(wrap_pyfunction!(release_memory, m)?)?;
    m.add_function(wrap_pyfunction!(errors::panic_for_tests, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_THREADS", arena_fast_core::MAX_THREADS)?;
    Ok(())
}
