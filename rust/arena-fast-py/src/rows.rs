//! `_core.Rows`: arena rows parsed from Arrow arrays and held in Rust until
//! they are encoded, with the per-row facts cleaning decides on.
//!
//! The arrays come through the Arrow PyCapsule interface
//! (`__arrow_c_array__`: an ArrowSchema and an ArrowArray of the C data
//! interface), imported by arrow-rs (`arrow_array::ffi::from_ffi`): offsets,
//! text bytes and validity bitmaps are read where the exporter keeps them,
//! nothing is copied. `arena_fast.rows` hands over `large_string` (JSON-list
//! text) or `large_list<large_string>` (turns) arrays.

use std::sync::Arc;

use arena_fast_core::buffers::Validity;
use arena_fast_core::pairs::{self, TokenRows};
use arena_fast_core::{check_threads, Column, Rows, TextColumn};
use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_data::ArrayData;
use arrow_schema::DataType;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyDict, PyList, PyTuple};

use crate::errors::{detached, error, from_core, guarded, Kind};

/// One text column imported from an Arrow array; `data` holds the
/// exporter's buffers (released when it is dropped).
struct ArrowColumn {
    data: ArrayData,
}

impl ArrowColumn {
    /// Import `array` (any object with `__arrow_c_array__`) for `column`.
    fn import(py: Python<'_>, array: &Bound<'_, PyAny>, column: Column) -> PyResult<Self> {
        let bad = |what: String| error(py, Kind::Input, format!("column {column}: {what}"));
        let export = intern!(py, "__arrow_c_array__");
        if !array.hasattr(export)? {
            return Err(bad(format!(
                "expected an Arrow array (an object with __arrow_c_array__), got {}",
                array.get_type().name()?
            )));
        }
        let (schema, c_array): (Bound<'_, PyCapsule>, Bound<'_, PyCapsule>) =
            array.call_method0(export)?.extract()?;
        let schema_ptr = schema.pointer_checked(Some(c"arrow_schema"))?;
        let array_ptr = c_array.pointer_checked(Some(c"arrow_array"))?;
        // SAFETY: capsules of these names hold a C data interface ArrowSchema
        // and ArrowArray (the PyCapsule interface). The array is moved out:
        // its release callback is ours now, and the capsule keeps a released
        // struct that its destructor leaves alone. The schema is borrowed
        // while `schema` (the capsule) is alive, for this call only.
        let data = unsafe {
            let c_array = FFI_ArrowArray::from_raw(array_ptr.as_ptr().cast());
            from_ffi(c_array, &*schema_ptr.as_ptr().cast::<FFI_ArrowSchema>())
        }
        .map_err(|e| bad(format!("cannot import the Arrow array: {e}")))?;
        Ok(ArrowColumn { data })
    }

    /// The buffers the core reads: JSON-list text or lists of turns.
    fn view(&self, column: Column) -> Result<TextColumn<'_>, String> {
        let data = &self.data;
        match data.data_type() {
            DataType::LargeUtf8 => Ok(TextColumn::Json {
                valid: validity(data),
                offsets: offsets(data),
                data: values(data),
            }),
            DataType::LargeList(item)
                if item.data_type() == &DataType::LargeUtf8 && data.child_data().len() == 1 =>
            {
                let strings = &data.child_data()[0];
                Ok(TextColumn::Lists {
                    valid: validity(data),
                    list_offsets: offsets(data),
                    str_valid: validity(strings),
                    str_offsets: offsets(strings),
                    data: values(strings),
                })
            }
            other => Err(format!(
                "column {column}: expected large_string or large_list<large_string>, got {other}"
            )),
        }
    }
}

/// The array's own offsets (rows + 1), from its offset on. An empty array
/// has `[0]` (its values buffer is imported empty); offsets out of range (a
/// malformed export) give none, which the core refuses.
fn offsets(data: &ArrayData) -> &[i64] {
    const EMPTY: &[i64] = &[0];
    if data.is_empty() {
        return EMPTY;
    }
    let (start, end) = (data.offset(), data.offset() + data.len() + 1);
    data.buffers()
        .first()
        .and_then(|b| b.typed_data::<i64>().get(start..end))
        .unwrap_or(&[])
}

fn values(data: &ArrayData) -> &[u8] {
    data.buffers().get(1).map_or(&[], |b| b.as_slice())
}

/// The validity bitmap of the array's own entries; None when none is null.
fn validity(data: &ArrayData) -> Option<Validity<'_>> {
    let nulls = data.nulls().filter(|n| n.null_count() > 0)?;
    Some(Validity {
        bits: nulls.validity(),
        offset: nulls.offset(),
        len: nulls.len(),
    })
}

/// A `num_threads` argument: None is one thread; past `MAX_THREADS` (or 0)
/// a `ConfigError`.
fn threads_of(py: Python<'_>, num_threads: Option<usize>) -> PyResult<usize> {
    check_threads(num_threads.unwrap_or(1)).map_err(|e| from_core(py, e.into()))
}

#[pyclass(module = "arena_fast._core", name = "Rows", frozen)]
pub struct PyRows {
    pub inner: Arc<Rows>,
}

#[pymethods]
impl PyRows {
    /// Rows from the prompt, response_a and response_b Arrow arrays
    /// (`ArrowColumn`); unparsable rows carry an error.
    #[staticmethod]
    #[pyo3(signature = (prompt, response_a, response_b, null_text = "", num_threads = None))]
    fn from_arrow(
        py: Python<'_>,
        prompt: &Bound<'_, PyAny>,
        response_a: &Bound<'_, PyAny>,
        response_b: &Bound<'_, PyAny>,
        null_text: &str,
        num_threads: Option<usize>,
    ) -> PyResult<PyRows> {
        guarded(py, || {
            let [p, a, b] = Column::ALL;
            let arrays = [
                ArrowColumn::import(py, prompt, p)?,
                ArrowColumn::import(py, response_a, a)?,
                ArrowColumn::import(py, response_b, b)?,
            ];
            let view = |c: usize| {
                arrays[c]
                    .view(Column::ALL[c])
                    .map_err(|e| error(py, Kind::Input, e))
            };
            let cols = [view(0)?, view(1)?, view(2)?];
            let threads = threads_of(py, num_threads)?;
            let parsed = detached(py, || Ok(Rows::from_columns(cols, null_text, threads)))?;
            let rows = parsed.map_err(|e| error(py, Kind::Input, e))?;
            Ok(PyRows {
                inner: Arc::new(rows),
            })
        })
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        guarded(py, || Ok(self.inner.len()))
    }

    /// Per-row facts as numpy arrays (docs/dataset.md, "Row keys").
    #[pyo3(signature = (num_threads = None))]
    fn features<'py>(
        &self,
        py: Python<'py>,
        num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let rows = self.inner.clone();
            let threads = threads_of(py, num_threads)?;
            let f = detached(py, move || Ok(rows.features(threads)))?;
            let d = PyDict::new(py);
            d.set_item("turns", f.turns.into_pyarray(py))?;
            d.set_item("repairs", f.repairs.into_pyarray(py))?;
            d.set_item("empty_prompt", f.empty_prompt.into_pyarray(py))?;
            d.set_item("empty_a", f.empty_a.into_pyarray(py))?;
            d.set_item("empty_b", f.empty_b.into_pyarray(py))?;
            d.set_item("identical", f.identical.into_pyarray(py))?;
            d.set_item("prompt_key", f.prompt_key.into_pyarray(py))?;
            d.set_item("a_key", f.a_key.into_pyarray(py))?;
            d.set_item("b_key", f.b_key.into_pyarray(py))?;
            d.set_item("pair_key", f.pair_key.into_pyarray(py))?;
            d.set_item("chars", f.chars.into_pyarray(py))?;
            d.set_item("error", f.error.into_pyarray(py))?;
            Ok(d)
        })
    }

    /// `(row, column, message)` for every row that could not be parsed.
    fn errors(&self, py: Python<'_>) -> PyResult<Vec<(usize, &'static str, String)>> {
        guarded(py, || {
            Ok(self
                .inner
                .errors
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.as_ref().map(|e| (i, e.column.name(), e.message.clone())))
                .collect())
        })
    }

    /// The turns of the rows `idx` (all when None) as Python lists:
    /// `(prompts, responses_a, responses_b)`, ragged rows padded.
    #[pyo3(signature = (idx = None))]
    fn to_lists<'py>(
        &self,
        py: Python<'py>,
        idx: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        guarded(py, || {
            let picked: Vec<usize> = match &idx {
                None => (0..self.inner.len()).collect(),
                Some(a) => {
                    let idx = a.as_slice()?;
                    self.inner
                        .check_index(idx)
                        .map_err(|e| from_core(py, e.into()))?;
                    idx.iter().map(|&i| i as usize).collect()
                }
            };
            let cols = [0, 1, 2].map(|c| {
                PyList::new(
                    py,
                    picked.iter().map(|&i| self.inner.rows[i].fields[c].clone()),
                )
            });
            let [p, a, b] = cols;
            PyTuple::new(py, [p?, a?, b?])
        })
    }
}

/// The ids and offsets of token rows, borrowed from numpy (contiguous).
fn token_rows<'a>(
    ids: &'a PyReadonlyArray1<'_, i32>,
    offsets: &'a PyReadonlyArray1<'_, i64>,
) -> PyResult<TokenRows<'a>> {
    Ok(TokenRows {
        ids: ids.as_slice()?,
        offsets: offsets.as_slice()?,
    })
}

/// Rows 2i and 2i+1 of a `swap="both"` encoding as two separate flat
/// arrays: `(ids_even, offsets_even, ids_odd, offsets_odd)`, offsets from 0
/// (`arena_fast.pairs`).
#[pyfunction]
pub fn split_pairs<'py>(
    py: Python<'py>,
    input_ids: PyReadonlyArray1<'py, i32>,
    offsets: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(py, || {
        let rows = token_rows(&input_ids, &offsets)?;
        let [even, odd] = detached(py, || Ok(pairs::split_pairs(rows)?))?;
        PyTuple::new(
            py,
            [
                even.ids.into_pyarray(py).into_any(),
                even.offsets.into_pyarray(py).into_any(),
                odd.ids.into_pyarray(py).into_any(),
                odd.offsets.into_pyarray(py).into_any(),
            ],
        )
    })
}

/// The inverse of `split_pairs`: original row 0, swapped row 0, original
/// row 1, ... as `(ids, offsets)`, offsets from 0 (`arena_fast.pairs`).
#[pyfunction]
pub fn interleave_pairs<'py>(
    py: Python<'py>,
    input_ids: PyReadonlyArray1<'py, i32>,
    offsets: PyReadonlyArray1<'py, i64>,
    swapped_ids: PyReadonlyArray1<'py, i32>,
    swapped_offsets: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(py, || {
        let originals = token_rows(&input_ids, &offsets)?;
        let swapped = token_rows(&swapped_ids, &swapped_offsets)?;
        let out = detached(py, || Ok(pairs::interleave_pairs(originals, swapped)?))?;
        PyTuple::new(
            py,
            [
                out.ids.into_pyarray(py).into_any(),
                out.offsets.into_pyarray(py).into_any(),
            ],
        )
    })
}
