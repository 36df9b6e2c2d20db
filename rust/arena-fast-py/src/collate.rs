//! `_core.collate_packed` / `_core.collate_padded`: one batch as a dict of
//! numpy arrays that own the Rust buffers (no copy on the way out). Called
//! once per training step, so the Python around it is kept to a minimum.

use arena_fast_core::collate::{self, Side};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{detached, error, from_core, guarded, Kind};

/// Gather the batch's labels: (n,) int64 class ids or (n, 3) float32
/// probabilities, aligned with the encoded rows.
fn labels_into(
    py: Python<'_>,
    d: &Bound<'_, PyDict>,
    labels: Option<&Bound<'_, PyAny>>,
    idx: &[i64],
) -> PyResult<()> {
    let Some(labels) = labels else {
        return Ok(());
    };
    if let Ok(classes) = labels.extract::<PyReadonlyArray1<'_, i64>>() {
        let classes = classes.as_slice()?;
        let out = detached(py, || collate::gather(classes, 1, idx))?;
        d.set_item(intern!(py, "labels"), out.into_pyarray(py))?;
    } else if let Ok(probs) = labels.extract::<PyReadonlyArray2<'_, f32>>() {
        let width = probs.shape()[1];
        let probs = probs.as_slice()?;
        let out = detached(py, || collate::gather(probs, width, idx))?;
        let out = Array2::from_shape_vec((idx.len(), width), out)
            .map_err(|e| error(py, Kind::Internal, e.to_string()))?;
        d.set_item(intern!(py, "labels"), out.into_pyarray(py))?;
    } else {
        return Err(error(
            py,
            Kind::Input,
            "labels must be a contiguous int64 array (n,) or float32 array (n, 3)",
        ));
    }
    Ok(())
}

fn row(py: Python<'_>, v: Vec<i64>) -> PyResult<Bound<'_, numpy::PyArray2<i64>>> {
    let n = v.len();
    let a =
        Array2::from_shape_vec((1, n), v).map_err(|e| error(py, Kind::Internal, e.to_string()))?;
    Ok(a.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (input_ids, offsets, idx, labels=None))]
pub fn collate_packed<'py>(
    py: Python<'py>,
    input_ids: PyReadonlyArray1<'py, i32>,
    offsets: PyReadonlyArray1<'py, i64>,
    idx: PyReadonlyArray1<'py, i64>,
    labels: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let (ids, offs, idx) = (input_ids.as_slice()?, offsets.as_slice()?, idx.as_slice()?);
        let p = detached(py, || collate::collate_packed(ids, offs, idx))?;
        let d = PyDict::new(py);
        d.set_item(intern!(py, "input_ids"), row(py, p.input_ids)?)?;
        d.set_item(intern!(py, "position_ids"), row(py, p.position_ids)?)?;
        d.set_item(
            intern!(py, "cu_seq_lens_q"),
            p.cu_seq_lens.clone().into_pyarray(py),
        )?;
        d.set_item(intern!(py, "cu_seq_lens_k"), p.cu_seq_lens.into_pyarray(py))?;
        d.set_item(intern!(py, "max_length_q"), p.max_length)?;
        d.set_item(intern!(py, "max_length_k"), p.max_length)?;
        let seq_idx = p.seq_idx;
        let t = seq_idx.len();
        let seq_idx = Array2::from_shape_vec((1, t), seq_idx)
            .map_err(|e| error(py, Kind::Internal, e.to_string()))?;
        d.set_item(intern!(py, "seq_idx"), seq_idx.into_pyarray(py))?;
        d.set_item(intern!(py, "last_index"), p.last_index.into_pyarray(py))?;
        labels_into(py, &d, labels, idx)?;
        Ok(d)
    })
}

#[pyfunction]
#[pyo3(signature = (input_ids, offsets, idx, pad_id, side="right", pad_to_multiple_of=None, labels=None))]
#[allow(clippy::too_many_arguments)]
pub fn collate_padded<'py>(
    py: Python<'py>,
    input_ids: PyReadonlyArray1<'py, i32>,
    offsets: PyReadonlyArray1<'py, i64>,
    idx: PyReadonlyArray1<'py, i64>,
    pad_id: i64,
    side: &str,
    pad_to_multiple_of: Option<usize>,
    labels: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let side = Side::parse(side).map_err(|e| from_core(py, e))?;
        let (ids, offs, idx) = (input_ids.as_slice()?, offsets.as_slice()?, idx.as_slice()?);
        let p = detached(py, || {
            collate::collate_padded(ids, offs, idx, pad_id, side, pad_to_multiple_of)
        })?;
        let shape = (p.rows, p.width);
        let matrix = |v: Vec<i64>| -> PyResult<Bound<'py, numpy::PyArray2<i64>>> {
            let a = Array2::from_shape_vec(shape, v)
                .map_err(|e| error(py, Kind::Internal, e.to_string()))?;
            Ok(a.into_pyarray(py))
        };
        let d = PyDict::new(py);
        d.set_item(intern!(py, "input_ids"), matrix(p.input_ids)?)?;
        d.set_item(intern!(py, "attention_mask"), matrix(p.attention_mask)?)?;
        if let Some(pos) = p.position_ids {
            d.set_item(intern!(py, "position_ids"), matrix(pos)?)?;
        }
        d.set_item(intern!(py, "last_index"), p.last_index.into_pyarray(py))?;
        labels_into(py, &d, labels, idx)?;
        Ok(d)
    })
}
