//! `_core.plan_packs` / `_core.plan_batches`: lengths in, one rank's plan
//! out as numpy arrays (the `arena_fast.Plan` fields).

use arena_fast_core::plan::{self, BatchConfig, BatchOrder, PackConfig, PackStrategy, Plan, Ranks};
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{detached, from_core, guarded};

fn plan_dict(py: Python<'_>, plan: Plan) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("indices", plan.indices.into_pyarray(py))?;
    d.set_item("offsets", plan.offsets.into_pyarray(py))?;
    d.set_item("tokens", plan.tokens.into_pyarray(py))?;
    d.set_item("cost", plan.cost.into_pyarray(py))?;
    d.set_item("rank_tokens", plan.rank_tokens.into_pyarray(py))?;
    d.set_item("dropped", plan.dropped.into_pyarray(py))?;
    d.set_item("fill", plan.fill)?;
    d.set_item("imbalance", plan.imbalance)?;
    d.set_item("num_groups", plan.num_groups)?;
    Ok(d)
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn plan_packs<'py>(
    py: Python<'py>,
    lengths: PyReadonlyArray1<'py, i64>,
    max_tokens: u64,
    strategy: &str,
    pair_swaps: bool,
    seed: u64,
    epoch: u64,
    world_size: usize,
    rank: usize,
    drop_last: bool,
    shuffle: bool,
) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let config = PackConfig {
            max_tokens,
            strategy: PackStrategy::parse(strategy).map_err(|e| from_core(py, e))?,
            pair_swaps,
            seed,
            epoch,
            shuffle,
            ranks: Ranks {
                world_size,
                rank,
                drop_last,
            },
        };
        let lengths = lengths.as_slice()?;
        let plan = detached(py, || plan::plan_packs(lengths, &config))?;
        plan_dict(py, plan)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn plan_batches<'py>(
    py: Python<'py>,
    lengths: PyReadonlyArray1<'py, i64>,
    max_tokens: u64,
    max_rows: Option<u64>,
    order: &str,
    pair_swaps: bool,
    seed: u64,
    epoch: u64,
    world_size: usize,
    rank: usize,
    drop_last: bool,
    megabatch: usize,
) -> PyResult<Bound<'py, PyDict>> {
    guarded(py, || {
        let config = BatchConfig {
            max_tokens,
            max_rows,
            order: BatchOrder::parse(order).map_err(|e| from_core(py, e))?,
            pair_swaps,
            seed,
            epoch,
            megabatch,
            ranks: Ranks {
                world_size,
                rank,
                drop_last,
            },
        };
        let lengths = lengths.as_slice()?;
        let plan = detached(py, || plan::plan_batches(lengths, &config))?;
        plan_dict(py, plan)
    })
}
