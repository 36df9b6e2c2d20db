//! `_core.Tokenizer`: a tokenizer.json loaded on the Rust side (the Python
//! `tokenizers` object cannot be shared with another extension module).

use std::sync::Arc;

use arena_fast_core::ArenaTokenizer;
use pyo3::prelude::*;

use crate::errors::{detached, guarded};

/// Loading parses the whole JSON (tens of MB for a large vocabulary) into
/// temporaries; give the freed heap back to the system so it does not stay
/// in the process's resident memory for its whole life.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[pyclass(module = "arena_fast._core", name = "Tokenizer", frozen)]
pub struct PyTokenizer {
    pub inner: Arc<ArenaTokenizer>,
}

#[pymethods]
impl PyTokenizer {
    #[staticmethod]
    fn from_file(py: Python<'_>, path: String) -> PyResult<PyTokenizer> {
        guarded(py, || {
            let inner = detached(py, || Ok(ArenaTokenizer::from_file(&path)?))?;
            release_freed_memory();
            Ok(PyTokenizer {
                inner: Arc::new(inner),
            })
        })
    }

    /// Without `fast_path`, every text is encoded whole by `tokenizers`
    /// (what tests compare the fast paths with).
    #[staticmethod]
    #[pyo3(signature = (json, fast_path = true))]
    fn from_str(py: Python<'_>, json: String, fast_path: bool) -> PyResult<PyTokenizer> {
        guarded(py, || {
            let inner = detached(py, || Ok(ArenaTokenizer::from_json_with(&json, fast_path)?))?;
            release_freed_memory();
            Ok(PyTokenizer {
                inner: Arc::new(inner),
            })
        })
    }

    /// Ids of `text` with no special tokens added.
    #[pyo3(signature = (text, split_special_tokens = true))]
    fn encode(
        &self,
        py: Python<'_>,
        text: String,
        split_special_tokens: bool,
    ) -> PyResult<Vec<u32>> {
        let tok = &self.inner;
        detached(py, || Ok(tok.encode(&text, split_special_tokens)?))
    }

    fn decode(&self, py: Python<'_>, ids: Vec<u32>) -> PyResult<String> {
        let tok = &self.inner;
        detached(py, || Ok(tok.decode(&ids)?))
    }

    fn token_to_id(&self, py: Python<'_>, token: &str) -> PyResult<Option<u32>> {
        guarded(py, || Ok(self.inner.token_to_id(token)))
    }

    fn id_to_token(&self, py: Python<'_>, id: u32) -> PyResult<Option<String>> {
        guarded(py, || Ok(self.inner.id_to_token(id)))
    }

    #[getter]
    fn vocab_size(&self, py: Python<'_>) -> PyResult<usize> {
        guarded(py, || Ok(self.inner.vocab_size()))
    }

    /// Whether texts are tokenized word by word through a cache (exact for
    /// this vocabulary), rather than whole.
    #[getter]
    fn word_split(&self, py: Python<'_>) -> PyResult<bool> {
        guarded(py, || Ok(self.inner.word_split()))
    }

    /// How texts are encoded: "word-cache", "byte-level" or "whole-text".
    #[getter]
    fn fast_path(&self, py: Python<'_>) -> PyResult<&'static str> {
        guarded(py, || Ok(self.inner.fast_path().0))
    }

    /// Why this tokenizer takes its path, in a sentence.
    #[getter]
    fn fast_path_reason(&self, py: Python<'_>) -> PyResult<String> {
        guarded(py, || Ok(self.inner.fast_path().1))
    }

    fn to_str(&self, py: Python<'_>) -> PyResult<String> {
        let tok = &self.inner;
        detached(py, || Ok(tok.to_json()?))
    }
}
