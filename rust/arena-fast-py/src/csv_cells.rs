//! `_core.clip_csv_cells`: the big cells of a Kaggle CSV found in one
//! streaming pass and, only when there are some, a copy of the file written
//! with them replaced (arena-fast-core `csv_cells`; docs/dataset.md,
//! "Sources", kaggle). Gzip files are read through a streaming decoder.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek};
use std::path::{Path, PathBuf};

use arena_fast_core::csv_cells::{copy_clipping, find_big_cells, Copied, Limits};
use arena_fast_core::error::CellsError;
use flate2::read::MultiGzDecoder;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{error, guarded, Kind};

/// The bytes of `path`, decompressed when it starts with gzip's magic
/// bytes (polars decides by them too).
fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match file.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    file.rewind()?;
    if got == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            file,
        ))))
    } else {
        Ok(Box::new(file))
    }
}

fn clip(path: &Path, copy: &Path, limits: &Limits<'_>) -> Result<Option<Copied>, CellsError> {
    let big = find_big_cells(open(path).map_err(CellsError::Read)?, limits)?;
    if big.cells.is_empty() {
        return Ok(None);
    }
    let out = File::create_new(copy).map_err(CellsError::Write)?;
    let src = open(path).map_err(CellsError::Read)?;
    copy_clipping(src, BufWriter::with_capacity(1 << 20, out), &big).map(Some)
}

/// Find the cells of the CSV at `path` larger than their limit (raw bytes,
/// quotes included): `text_bytes` in `text_columns`, `cell_bytes` in any
/// other. None when there are none (nothing written). Else write `copy`
/// (a new file) with them replaced and return a dict: `rows` (data records),
/// `repaired` [(row, repair bits)], `bad` [(row, column, turn list
/// error, or turns past `MAX_CELL_TEXT_BYTES` once clipped)], `lines_removed` [(row, line breaks)]. A big cell in one of
/// `read_columns` (not text), bytes that are not UTF-8 or a broken quote
/// in a big text cell are an InputError naming the row, line and column;
/// failing to write the copy is an OSError.
#[pyfunction]
#[pyo3(signature = (path, copy, text_columns, read_columns, text_bytes, cell_bytes))]
pub fn clip_csv_cells<'py>(
    py: Python<'py>,
    path: PathBuf,
    copy: PathBuf,
    text_columns: Vec<String>,
    read_columns: Vec<String>,
    text_bytes: u64,
    cell_bytes: u64,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    guarded(py, || {
        let limits = Limits {
            text_columns: &text_columns,
            read_columns: &read_columns,
            text_bytes,
            cell_bytes,
        };
        let copied = py
            .detach(|| clip(&path, &copy, &limits))
            .map_err(|e| match e {
                CellsError::Write(e) => PyOSError::new_err(format!(
                    "{}: cannot write (a copy of {} with its long cells clipped): {e}",
                    copy.display(),
                    path.display()
                )),
                e => error(py, Kind::Input, format!("{}: {e}", path.display())),
            })?;
        let Some(copied) = copied else {
            return Ok(None);
        };
        let out = PyDict::new(py);
        out.set_item("rows", copied.rows)?;
        out.set_item("repaired", copied.repaired)?;
        out.set_item("bad", copied.bad)?;
        out.set_item("lines_removed", copied.lines_removed)?;
        Ok(Some(out))
    })
}
