//! `_core.ChatTemplate`: a model's chat template compiled in the core
//! (`arena_fast_core::chat_template`). Messages arrive as (role, content)
//! pairs, checked by `arena_fast.chat_template`; rendering and tokenizing
//! run with the GIL released.

use std::path::PathBuf;
use std::sync::Arc;

use arena_fast_core::chat_template::{ChatTemplate, Message};
use arena_fast_core::CoreError;
use pyo3::prelude::*;

use crate::errors::{detached, guarded};
use crate::tokenizer::PyTokenizer;

#[pyclass(module = "arena_fast._core", name = "ChatTemplate", frozen)]
pub struct PyChatTemplate {
    inner: Arc<ChatTemplate>,
}

fn messages_from(pairs: Vec<(String, String)>) -> Vec<Message> {
    pairs
        .into_iter()
        .map(|(role, content)| Message { role, content })
        .collect()
}

fn wrap(
    made: Result<ChatTemplate, arena_fast_core::ConfigError>,
) -> Result<PyChatTemplate, CoreError> {
    Ok(PyChatTemplate {
        inner: Arc::new(made?),
    })
}

#[pymethods]
impl PyChatTemplate {
    /// From a tokenizer_config.json (or its directory); a chat_template.jinja
    /// beside it takes priority.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<PyChatTemplate> {
        detached(py, || wrap(ChatTemplate::from_file(&path)))
    }

    /// From the JSON text of a tokenizer config; `origin` names it in errors.
    #[staticmethod]
    fn from_config_json(py: Python<'_>, json: String, origin: String) -> PyResult<PyChatTemplate> {
        detached(py, || wrap(ChatTemplate::from_config_str(&json, &origin)))
    }

    /// The rendered text of (role, content) messages.
    fn render(
        &self,
        py: Python<'_>,
        messages: Vec<(String, String)>,
        add_generation_prompt: bool,
    ) -> PyResult<String> {
        let template = &self.inner;
        detached(py, || {
            Ok(template.render(&messages_from(messages), add_generation_prompt)?)
        })
    }

    /// The ids of the rendered text (no special tokens added; special-token
    /// strings in it matched as special tokens).
    fn encode(
        &self,
        py: Python<'_>,
        tokenizer: PyRef<'_, PyTokenizer>,
        messages: Vec<(String, String)>,
        add_generation_prompt: bool,
    ) -> PyResult<Vec<u32>> {
        let template = &self.inner;
        let tokenizer = Arc::clone(&tokenizer.inner);
        detached(py, || {
            template.encode(&tokenizer, &messages_from(messages), add_generation_prompt)
        })
    }

    /// The template's Jinja source.
    #[getter]
    fn source(&self, py: Python<'_>) -> PyResult<String> {
        guarded(py, || Ok(self.inner.source().to_owned()))
    }

    /// The special tokens the template sees, (name, string) in order.
    #[getter]
    fn special_tokens(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        guarded(py, || Ok(self.inner.special_tokens().to_vec()))
    }
}
