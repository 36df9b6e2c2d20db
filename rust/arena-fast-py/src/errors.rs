//! The one mapping from core errors to Python exceptions. The exception
//! classes themselves are defined in `arena_fast/errors.py` (so they can also
//! subclass `ValueError`); they are looked up once and cached here.

use arena_fast_core::{CoreError, EncodeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The Python exception classes, by name in `arena_fast.errors`.
#[derive(Clone, Copy)]
pub enum Kind {
    Input,
    Config,
    Tokenizer,
    Internal,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Input => "InputError",
            Kind::Config => "ConfigError",
            Kind::Tokenizer => "TokenizerError",
            Kind::Internal => "InternalError",
        }
    }
}

static CLASSES: PyOnceLock<[Py<PyType>; 4]> = PyOnceLock::new();

fn class(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    let classes = CLASSES.get_or_try_init(py, || -> PyResult<[Py<PyType>; 4]> {
        let module = py.import("arena_fast.errors")?;
        let get = |k: Kind| -> PyResult<Py<PyType>> {
            Ok(module.getattr(k.name())?.cast_into::<PyType>()?.unbind())
        };
        Ok([
            get(Kind::Input)?,
            get(Kind::Config)?,
            get(Kind::Tokenizer)?,
            get(Kind::Internal)?,
        ])
    })?;
    Ok(classes[kind as usize].bind(py).clone())
}

pub fn error(py: Python<'_>, kind: Kind, message: impl Into<String>) -> PyErr {
    match class(py, kind) {
        Ok(ty) => PyErr::from_type(ty, message.into()),
        Err(e) => e,
    }
}

pub fn from_core(py: Python<'_>, err: CoreError) -> PyErr {
    let kind = match &err {
        CoreError::Tokenizer(_) => Kind::Tokenizer,
        CoreError::Config(_) => Kind::Config,
        CoreError::Encode(e) => match e {
            EncodeError::Turns { .. }
            | EncodeError::ColumnLengths { .. }
            | EncodeError::Index { .. }
            | EncodeError::Pairs(_) => Kind::Input,
            EncodeError::Tokenizer { .. } => Kind::Tokenizer,
        },
        CoreError::Plan(_) | CoreError::Collate(_) => Kind::Input,
    };
    error(py, kind, err.to_string())
}

/// Run a binding's body with the GIL held, turning a panic into
/// `InternalError`; nothing unwinds into the interpreter. Every
/// `#[pyfunction]` / `#[pymethods]` body goes through this (or `detached`).
pub fn guarded<T>(py: Python<'_>, work: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(error(
            py,
            Kind::Internal,
            format!("internal error (please report): {}", panic_message(&*panic)),
        ))
    })
}

/// Run `work` without the GIL, turning a core error or a panic into the
/// matching `ArenaFastError`. A panic unwinds out of `py.detach` (which
/// re-attaches on the way) and is caught by `guarded`.
pub fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, CoreError> + Send,
) -> PyResult<T> {
    guarded(py, || py.detach(work).map_err(|err| from_core(py, err)))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

/// A panic on purpose, for the test that proves the mapping above
/// (tests/reliability/test_panics.py): in the body itself, or, with
/// `detach`, inside work run without the GIL.
#[pyfunction]
#[pyo3(name = "_panic_for_tests", signature = (message, detach = false))]
pub fn panic_for_tests(py: Python<'_>, message: String, detach: bool) -> PyResult<()> {
    if detach {
        detached(py, move || -> Result<(), CoreError> { panic!("{message}") })
    } else {
        guarded(py, || -> PyResult<()> { panic!("{message}") })
    }
}
