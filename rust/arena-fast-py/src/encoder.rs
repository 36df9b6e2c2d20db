//! `_core.Encoder`: Python rows in, numpy arrays out, the work done in the
//! core with the GIL released.

use std::sync::Arc;

use arena_fast_core::budget::{Keep, Strategy};
use arena_fast_core::encode::Layout;
use arena_fast_core::turns::repair;
use arena_fast_core::{
    check_threads, BudgetConfig, Column, EncodeError, Encoded, Encoder, EncoderConfig, RowTurns,
    Swap, Template,
};
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PySet, PyString};

use crate::errors::{detached, error, from_core, guarded, Kind};
use crate::rows::PyRows;
use crate::tokenizer::PyTokenizer;

fn template_from(obj: &Bound<'_, PyAny>) -> PyResult<Template> {
    let s = |name: &str| -> PyResult<String> { obj.getattr(name)?.extract() };
    Ok(Template {
        begin: s("begin")?,
        end: s("end")?,
        first_header: s("first_header")?,
        header: s("header")?,
        prefixes: [s("prompt_prefix")?, s("a_prefix")?, s("b_prefix")?],
        suffixes: [s("prompt_suffix")?, s("a_suffix")?, s("b_suffix")?],
        marker: s("marker")?,
        join_turns: obj.getattr("join_turns")?.extract()?,
    })
}

/// The preset's strings, by field name of `arena_fast.Template`.
#[pyfunction]
pub fn template_preset<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let t = Template::preset(name).map_err(|e| from_core(py, e.into()))?;
        let d = PyDict::new(py);
        d.set_item("begin", t.begin)?;
        d.set_item("end", t.end)?;
        d.set_item("first_header", t.first_header)?;
        d.set_item("header", t.header)?;
        let [pp, ap, bp] = t.prefixes;
        let [ps, as_, bs] = t.suffixes;
        for (k, v) in [
            ("prompt_prefix", pp),
            ("a_prefix", ap),
            ("b_prefix", bp),
            ("prompt_suffix", ps),
            ("a_suffix", as_),
            ("b_suffix", bs),
        ] {
            d.set_item(k, v)?;
        }
        d.set_item("marker", t.marker)?;
        d.set_item("join_turns", t.join_turns)?;
        Ok(d)
    })
}

fn parse_swap(py: Python<'_>, swap: &str) -> PyResult<Swap> {
    Swap::parse(swap).map_err(|e| from_core(py, e.into()))
}

/// A Python str as Rust text; each lone surrogate code point becomes one
/// U+FFFD and the row is flagged.
fn text_of(s: &Bound<'_, PyString>, flags: &mut u8) -> PyResult<String> {
    if let Ok(text) = s.to_cow() {
        return Ok(text.into_owned());
    }
    *flags |= repair::SURROGATE;
    let bytes = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
    Ok(replace_surrogates(bytes.cast::<PyBytes>()?.as_bytes()))
}

/// UTF-8 in which surrogates were passed through (`ED A0..BF 80..BF`): one
/// U+FFFD per surrogate (`from_utf8_lossy` would give three).
fn replace_surrogates(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(rest) => {
                out.push_str(rest);
                return out;
            }
            Err(e) => {
                let (valid, bad) = bytes.split_at(e.valid_up_to());
                // Valid by construction: `valid_up_to` bytes parsed.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                let surrogate = bad.len() >= 3 && bad[0] == 0xED && (0xA0..=0xBF).contains(&bad[1]);
                let skip = if surrogate {
                    3
                } else {
                    e.error_len().unwrap_or(bad.len()).max(1)
                };
                bytes = &bad[skip.min(bad.len())..];
            }
        }
    }
}

/// One cell: a list of turns (str or None), or a single str as one turn.
fn turns_of(
    py: Python<'_>,
    cell: &Bound<'_, PyAny>,
    row: usize,
    column: usize,
    null_text: &str,
    flags: &mut u8,
) -> PyResult<Vec<String>> {
    if let Ok(s) = cell.cast::<PyString>() {
        return Ok(vec![text_of(s, flags)?]);
    }
    if cell.is_none() {
        *flags |= repair::NULL;
        return Ok(vec![]);
    }
    // Iterable, but not an ordered list of turns.
    if cell.is_instance_of::<PyDict>()
        || cell.is_instance_of::<PySet>()
        || cell.is_instance_of::<PyFrozenSet>()
        || cell.is_instance_of::<PyBytes>()
    {
        return Err(error(
            py,
            Kind::Input,
            format!(
                "row {row}, column {}: expected a list of turns, got {}",
                Column::ALL[column],
                type_name(cell)
            ),
        ));
    }
    let bad = |what: String| {
        error(
            py,
            Kind::Input,
            format!("row {row}, column {}: {what}", Column::ALL[column]),
        )
    };
    let iter = cell
        .try_iter()
        .map_err(|_| bad(format!("expected a list of turns, got {}", type_name(cell))))?;
    let mut turns = Vec::new();
    for (t, item) in iter.enumerate() {
        let item = item?;
        if item.is_none() {
            *flags |= repair::NULL;
            turns.push(null_text.to_owned());
        } else if let Ok(s) = item.cast::<PyString>() {
            turns.push(text_of(s, flags)?);
        } else {
            return Err(bad(format!(
                "turn {t} is a {}, expected str or None",
                type_name(&item)
            )));
        }
    }
    Ok(turns)
}

/// One `encode_json` cell: a JSON-list str, or None for an empty list
/// (flagged `repair::NULL`, as `turns_of` does for `encode`).
fn json_cell(
    py: Python<'_>,
    cell: &Bound<'_, PyAny>,
    row: usize,
    column: usize,
    flags: &mut u8,
) -> PyResult<String> {
    if cell.is_none() {
        *flags |= repair::NULL;
        return Ok("[]".to_owned());
    }
    let s = cell.cast::<PyString>().map_err(|_| {
        error(
            py,
            Kind::Input,
            format!(
                "row {row}, column {}: expected a JSON string or None, got {}",
                Column::ALL[column],
                type_name(cell)
            ),
        )
    })?;
    text_of(s, flags)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn column_items<'py>(
    py: Python<'py>,
    col: &Bound<'py, PyAny>,
    column: usize,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if col.is_instance_of::<PyString>() {
        return Err(error(
            py,
            Kind::Input,
            format!(
                "column {}: expected one entry per row, got a single str",
                Column::ALL[column]
            ),
        ));
    }
    let iter = col.try_iter().map_err(|_| {
        error(
            py,
            Kind::Input,
            format!(
                "column {}: expected a sequence of rows, got {}",
                Column::ALL[column],
                type_name(col)
            ),
        )
    })?;
    iter.collect()
}

fn to_numpy<'py>(py: Python<'py>, enc: Encoded) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("input_ids", enc.input_ids.into_pyarray(py))?;
    d.set_item("offsets", enc.offsets.into_pyarray(py))?;
    d.set_item("turns_total", enc.turns_total.into_pyarray(py))?;
    d.set_item("turns_kept", enc.turns_kept.into_pyarray(py))?;
    d.set_item("truncated", enc.truncated.into_pyarray(py))?;
    d.set_item("full_length", enc.full_lengths.into_pyarray(py))?;
    d.set_item("repairs", enc.repairs.into_pyarray(py))?;
    d.set_item("is_swapped", enc.is_swapped.into_pyarray(py))?;
    d.set_item("source_row", enc.source_row.into_pyarray(py))?;
    Ok(d)
}

#[pyclass(module = "arena_fast._core", name = "Encoder", frozen)]
pub struct PyEncoder {
    inner: Arc<Encoder>,
}

#[pymethods]
impl PyEncoder {
    #[new]
    #[pyo3(signature = (tokenizer, template, *, strategy, max_length, joint, bos, eos,
        split_special_tokens, null_text, num_threads, prompt_weight, min_segment_tokens,
        keep, keep_first_turns, tail_ratios, min_tail_tokens, layout = "cross",
        strip = [false, false]))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        tokenizer: &PyTokenizer,
        template: &Bound<'_, PyAny>,
        strategy: &str,
        max_length: usize,
        joint: bool,
        bos: Option<u32>,
        eos: Option<u32>,
        split_special_tokens: bool,
        null_text: String,
        num_threads: Option<usize>,
        prompt_weight: f64,
        min_segment_tokens: usize,
        keep: &str,
        keep_first_turns: usize,
        tail_ratios: [f64; 3],
        min_tail_tokens: usize,
        layout: &str,
        strip: [bool; 2],
    ) -> PyResult<PyEncoder> {
        guarded(py, || {
            let config_err = |e: arena_fast_core::ConfigError| from_core(py, e.into());
            let num_threads = num_threads
                .map(check_threads)
                .transpose()
                .map_err(config_err)?;
            let mut budget =
                BudgetConfig::new(max_length, Strategy::parse(strategy).map_err(config_err)?);
            budget.prompt_weight = prompt_weight;
            budget.min_segment_tokens = min_segment_tokens;
            budget.keep = Keep::parse(keep).map_err(config_err)?;
            budget.keep_first_turns = keep_first_turns;
            budget.tail_ratios = tail_ratios;
            budget.min_tail_tokens = min_tail_tokens;
            let cfg = EncoderConfig {
                template: template_from(template)?,
                budget,
                joint,
                bos,
                eos,
                split_special_tokens,
                null_text,
                num_threads,
            };
            let layout = match Layout::parse(layout).map_err(config_err)? {
                Layout::Separate { .. } => Layout::Separate { strip },
                Layout::Cross => Layout::Cross,
            };
            let tok = tokenizer.inner.clone();
            let inner = detached(py, move || Encoder::with_layout(tok, cfg, layout))?;
            Ok(PyEncoder {
                inner: Arc::new(inner),
            })
        })
    }

    /// Rows given as lists of turns; returns a dict of numpy arrays.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        responses_a: &Bound<'py, PyAny>,
        responses_b: &Bound<'py, PyAny>,
        swap: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let swap = parse_swap(py, swap)?;
            let cols = [
                column_items(py, prompts, 0)?,
                column_items(py, responses_a, 1)?,
                column_items(py, responses_b, 2)?,
            ];
            check_lengths(py, [cols[0].len(), cols[1].len(), cols[2].len()])?;
            let null_text = &self.inner.config().null_text;
            let mut rows = Vec::with_capacity(cols[0].len());
            for i in 0..cols[0].len() {
                let mut flags = 0u8;
                let p = turns_of(py, &cols[0][i], i, 0, null_text, &mut flags)?;
                let a = turns_of(py, &cols[1][i], i, 1, null_text, &mut flags)?;
                let b = turns_of(py, &cols[2][i], i, 2, null_text, &mut flags)?;
                rows.push(RowTurns::new(p, a, b, flags));
            }
            let enc = self.inner.clone();
            let out = detached(py, move || enc.encode(&rows, swap))?;
            to_numpy(py, out)
        })
    }

    /// One row (`swapped`: in the B/A order) encoded and explained: a dict
    /// of `ids`, `spans` (kind, turn, field, start, stop), `segments` (turn,
    /// field, tokens, kept, cut) and the row's diagnostics.
    #[pyo3(signature = (prompt, response_a, response_b, swapped = false))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        prompt: &Bound<'py, PyAny>,
        response_a: &Bound<'py, PyAny>,
        response_b: &Bound<'py, PyAny>,
        swapped: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let null_text = &self.inner.config().null_text;
            let mut flags = 0u8;
            let p = turns_of(py, prompt, 0, 0, null_text, &mut flags)?;
            let a = turns_of(py, response_a, 0, 1, null_text, &mut flags)?;
            let b = turns_of(py, response_b, 0, 2, null_text, &mut flags)?;
            let row = RowTurns::new(p, a, b, flags);
            let enc = self.inner.clone();
            let ex = detached(py, move || enc.explain(&row, swapped))?;
            let d = PyDict::new(py);
            let e = &ex.encoded;
            d.set_item("ids", e.input_ids.clone())?;
            d.set_item("length", e.input_ids.len())?;
            d.set_item("full_length", e.full_lengths[0])?;
            d.set_item("truncated", e.truncated[0])?;
            d.set_item("turns", e.turns_total[0])?;
            d.set_item("turns_kept", e.turns_kept[0])?;
            d.set_item("repairs", e.repairs[0])?;
            let spans = PyList::empty(py);
            for s in &ex.spans {
                let item = PyDict::new(py);
                item.set_item("kind", s.kind.name())?;
                item.set_item("turn", s.turn)?;
                item.set_item("field", s.field)?;
                item.set_item("start", s.start)?;
                item.set_item("stop", s.stop)?;
                spans.append(item)?;
            }
            d.set_item("spans", spans)?;
            let segments = PyList::empty(py);
            for s in &ex.segments {
                let item = PyDict::new(py);
                item.set_item("turn", s.turn)?;
                item.set_item("field", s.field)?;
                item.set_item("tokens", s.tokens)?;
                item.set_item("kept", s.kept)?;
                item.set_item("cut", s.cut)?;
                segments.append(item)?;
            }
            d.set_item("segments", segments)?;
            Ok(d)
        })
    }

    /// Rows parsed earlier (`_core.Rows`): the rows `idx` (all when None),
    /// in that order. With `skip_failed`, a row the tokenizer cannot encode
    /// is left out and listed under "skipped" as (position in idx, column or
    /// None, message) instead of raising.
    #[pyo3(signature = (rows, idx, swap, skip_failed = false))]
    fn encode_rows<'py>(
        &self,
        py: Python<'py>,
        rows: &PyRows,
        idx: Option<PyReadonlyArray1<'py, i64>>,
        swap: &str,
        skip_failed: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let swap = parse_swap(py, swap)?;
            let enc = self.inner.clone();
            let rows = rows.inner.clone();
            let idx = idx.as_ref().map(|a| a.as_slice()).transpose()?;
            if !skip_failed {
                let out = detached(py, move || enc.encode_rows(&rows, idx, swap))?;
                return to_numpy(py, out);
            }
            let (out, skipped) = detached(py, move || enc.encode_rows_skipping(&rows, idx, swap))?;
            let d = to_numpy(py, out)?;
            let list = PyList::empty(py);
            for s in skipped {
                list.append((s.row, s.column.map(|c| c.name()), s.message))?;
            }
            d.set_item("skipped", list)?;
            Ok(d)
        })
    }

    /// Rows given as the JSON-list strings of the Kaggle CSV, parsed in Rust.
    /// A None cell is an empty list, flagged `repair::NULL` (as in `encode`).
    fn encode_json<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        responses_a: &Bound<'py, PyAny>,
        responses_b: &Bound<'py, PyAny>,
        swap: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let swap = parse_swap(py, swap)?;
            let mut cells: [Vec<String>; 3] = Default::default();
            let mut pre_repairs: Vec<u8> = Vec::new();
            for (c, col) in [prompts, responses_a, responses_b].into_iter().enumerate() {
                for (i, item) in column_items(py, col, c)?.into_iter().enumerate() {
                    let mut flags = 0;
                    cells[c].push(json_cell(py, &item, i, c, &mut flags)?);
                    if pre_repairs.len() <= i {
                        pre_repairs.resize(i + 1, 0);
                    }
                    pre_repairs[i] |= flags;
                }
            }
            check_lengths(py, [cells[0].len(), cells[1].len(), cells[2].len()])?;
            let enc = self.inner.clone();
            let out = detached(py, move || {
                enc.encode_json_flagged(&cells[0], &cells[1], &cells[2], &pre_repairs, swap)
            })?;
            to_numpy(py, out)
        })
    }
}

fn check_lengths(py: Python<'_>, [prompt, a, b]: [usize; 3]) -> PyResult<()> {
    if prompt != a || a != b {
        return Err(from_core(
            py,
            EncodeError::ColumnLengths { prompt, a, b }.into(),
        ));
    }
    Ok(())
}
