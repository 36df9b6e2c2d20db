//! `_core.assign_folds`: prompt keys and label classes in, one int8 fold id
//! per row out (rules in docs/dataset.md, "Folds").

use std::borrow::Cow;

use arena_fast_core::folds;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::{detached, from_core, guarded};

/// The array's values as one slice: borrowed when contiguous, else copied
/// (a strided view such as `column[::2]` is still accepted).
fn values<'a, T: numpy::Element + Copy>(array: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match array.as_slice() {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => Cow::Owned(array.as_array().iter().copied().collect()),
    }
}

/// Folds `0..k` for rows with prompt keys `keys` (uint64) and label classes
/// `classes` (uint8: 0 A, 1 B, 2 tie, 3 unlabelled); rows of one key share
/// a fold. Runs without the GIL.
#[pyfunction]
pub fn assign_folds<'py>(
    py: Python<'py>,
    keys: PyReadonlyArray1<'py, u64>,
    classes: PyReadonlyArray1<'py, u8>,
    k: i64,
    seed: u64,
) -> PyResult<Bound<'py, PyArray1<i8>>> {
    guarded(py, || {
        // A negative k is the core's ConfigError too, not an OverflowError.
        let k = folds::check_folds(k.into()).map_err(|e| from_core(py, e.into()))?;
        let keys = values(&keys);
        let classes = values(&classes);
        let folds = detached(py, || folds::assign_folds(&keys, &classes, k, seed))?;
        Ok(folds.into_pyarray(py))
    })
}
