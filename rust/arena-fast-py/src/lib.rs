//! `arena_fast._core`: thin bindings over arena-fast-core. Each exposed area
//! has its own file; errors are mapped in one place (`errors.rs`).

use pyo3::prelude::*;

mod encoder;
mod errors;
mod tokenizer;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<tokenizer::PyTokenizer>()?;
    m.add_class::<encoder::PyEncoder>()?;
    m.add_function(wrap_pyfunction!(encoder::template_preset, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
