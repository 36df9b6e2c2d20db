//! `_core.Rows`: arena rows parsed from Arrow buffers and held in Rust until
//! they are encoded, with the per-row facts cleaning decides on.

use std::sync::Arc;

use arena_fast_core::{check_threads, Rows, TextColumn};
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::errors::{detached, error, from_core, guarded, Kind};

const FIELDS: [&str; 3] = ["prompt", "response_a", "response_b"];

/// The numpy buffers of one text column, kept alive while borrowed.
enum Buffers<'py> {
    Json {
        valid: Option<PyReadonlyArray1<'py, bool>>,
        offsets: PyReadonlyArray1<'py, i64>,
        data: PyReadonlyArray1<'py, u8>,
    },
    Lists {
        valid: Option<PyReadonlyArray1<'py, bool>>,
        list_offsets: PyReadonlyArray1<'py, i64>,
        str_valid: Option<PyReadonlyArray1<'py, bool>>,
        str_offsets: PyReadonlyArray1<'py, i64>,
        data: PyReadonlyArray1<'py, u8>,
    },
}

impl<'py> Buffers<'py> {
    /// `("json", valid, offsets, data)` or
    /// `("lists", valid, list_offsets, str_valid, str_offsets, data)`.
    fn extract(py: Python<'py>, spec: &Bound<'py, PyAny>, column: usize) -> PyResult<Self> {
        let bad = || {
            error(
                py,
                Kind::Input,
                format!(
                    "column {}: expected ('json', valid, offsets, data) or ('lists', valid, \
                     list_offsets, str_valid, str_offsets, data)",
                    FIELDS[column]
                ),
            )
        };
        let t = spec.cast::<PyTuple>().map_err(|_| bad())?;
        let kind: String = t.get_item(0)?.extract().map_err(|_| bad())?;
        match (kind.as_str(), t.len()) {
            ("json", 4) => Ok(Buffers::Json {
                valid: t.get_item(1)?.extract()?,
                offsets: t.get_item(2)?.extract()?,
                data: t.get_item(3)?.extract()?,
            }),
            ("lists", 6) => Ok(Buffers::Lists {
                valid: t.get_item(1)?.extract()?,
                list_offsets: t.get_item(2)?.extract()?,
                str_valid: t.get_item(3)?.extract()?,
                str_offsets: t.get_item(4)?.extract()?,
                data: t.get_item(5)?.extract()?,
            }),
            _ => Err(bad()),
        }
    }

    fn column(&self) -> PyResult<TextColumn<'_>> {
        fn opt<'a>(v: &'a Option<PyReadonlyArray1<'_, bool>>) -> PyResult<Option<&'a [bool]>> {
            Ok(v.as_ref().map(|a| a.as_slice()).transpose()?)
        }
        Ok(match self {
            Buffers::Json {
                valid,
                offsets,
                data,
            } => TextColumn::Json {
                valid: opt(valid)?,
                offsets: offsets.as_slice()?,
                data: data.as_slice()?,
            },
            Buffers::Lists {
                valid,
                list_offsets,
                str_valid,
                str_offsets,
                data,
            } => TextColumn::Lists {
                valid: opt(valid)?,
                list_offsets: list_offsets.as_slice()?,
                str_valid: opt(str_valid)?,
                str_offsets: str_offsets.as_slice()?,
                data: data.as_slice()?,
            },
        })
    }
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
    /// Rows from the Arrow buffers of the prompt, response_a and response_b
    /// columns (see `Buffers::extract`); unparsable rows carry an error.
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
            let buffers = [
                Buffers::extract(py, prompt, 0)?,
                Buffers::extract(py, response_a, 1)?,
                Buffers::extract(py, response_b, 2)?,
            ];
            let cols = [
                buffers[0].column()?,
                buffers[1].column()?,
                buffers[2].column()?,
            ];
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
            let n = self.inner.len();
            let picked: Vec<usize> = match &idx {
                None => (0..n).collect(),
                Some(a) => a
                    .as_slice()?
                    .iter()
                    .map(|&i| {
                        usize::try_from(i).ok().filter(|&i| i < n).ok_or_else(|| {
                            error(
                                py,
                                Kind::Input,
                                format!("row index {i} out of range for {n} rows"),
                            )
                        })
                    })
                    .collect::<PyResult<_>>()?,
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

/// Rows 2i and 2i+1 of a `swap="both"` encoding as two separate flat
/// arrays: `(ids_even, offsets_even, ids_odd, offsets_odd)`, offsets from 0.
#[pyfunction]
pub fn split_pairs<'py>(
    py: Python<'py>,
    input_ids: PyReadonlyArray1<'py, i32>,
    offsets: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(py, || {
        let ids = input_ids.as_slice()?;
        let off = offsets.as_slice()?;
        let rows = off.len().saturating_sub(1);
        let valid = rows % 2 == 0
            && off.windows(2).all(|w| w[0] <= w[1])
            && off.first().is_some_and(|&o| o >= 0)
            && off.last().is_some_and(|&o| o as usize <= ids.len());
        if !valid {
            return Err(error(
                py,
                Kind::Input,
                "split_pairs: offsets must be non-decreasing, inside the ids, for an even number of rows",
            ));
        }
        let parts = py.detach(|| {
            let mut out: [(Vec<i32>, Vec<i64>); 2] = Default::default();
            for (ids_out, off_out) in out.iter_mut() {
                off_out.reserve(rows / 2 + 1);
                off_out.push(0);
                ids_out.reserve(ids.len() / 2);
            }
            for r in 0..rows {
                let (ids_out, off_out) = &mut out[r % 2];
                ids_out.extend_from_slice(&ids[off[r] as usize..off[r + 1] as usize]);
                off_out.push(ids_out.len() as i64);
            }
            out
        });
        let [(e_ids, e_off), (o_ids, o_off)] = parts;
        PyTuple::new(
            py,
            [
                e_ids.into_pyarray(py).into_any(),
                e_off.into_pyarray(py).into_any(),
                o_ids.into_pyarray(py).into_any(),
                o_off.into_pyarray(py).into_any(),
            ],
        )
    })
}
