//! One batch from encoded rows: a packed row (many sequences, no padding) or
//! a padded matrix. Flat buffers sized once; layouts in docs/packing.md.

use crate::error::{CollateError, ConfigError, Result};

/// Sequences of a packed row, in the names and dtypes transformers and
/// flash-attn take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub input_ids: Vec<i64>,
    pub position_ids: Vec<i64>,
    /// `0` then the running totals of the lengths (k + 1 entries).
    pub cu_seq_lens: Vec<i32>,
    pub max_length: i64,
    pub seq_idx: Vec<i32>,
    pub last_index: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Right,
    Left,
}

impl Side {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "right" => Ok(Self::Right),
            "left" => Ok(Self::Left),
            other => Err(ConfigError::Invalid(format!(
                "side must be 'right' or 'left', got {other:?}"
            ))
            .into()),
        }
    }
}

/// A (rows, width) padded batch, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padded {
    pub rows: usize,
    pub width: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    /// Left padding only: positions counted from each row's first token.
    pub position_ids: Option<Vec<i64>>,
    pub last_index: Vec<i64>,
}

fn input(message: String) -> crate::error::CoreError {
    CollateError::Input(message).into()
}

/// The `(start, end)` of each selected row, checked against the buffers.
fn spans(ids_len: usize, offsets: &[i64], idx: &[i64]) -> Result<Vec<(usize, usize)>> {
    if idx.is_empty() {
        return Err(input("a batch needs at least one row; idx is empty".into()));
    }
    let n = offsets.len().saturating_sub(1);
    idx.iter()
        .map(|&i| {
            if i < 0 || i as usize >= n {
                return Err(input(format!(
                    "row {i} is out of range for {n} encoded rows"
                )));
            }
            let (start, end) = (offsets[i as usize], offsets[i as usize + 1]);
            if start < 0 || end < start || end as usize > ids_len {
                return Err(input(format!(
                    "row {i}: offsets {start}..{end} do not lie within the {ids_len} input ids"
                )));
            }
            if end == start {
                return Err(input(format!(
                    "row {i} has no tokens; a sequence is pooled at its last token"
                )));
            }
            Ok((start as usize, end as usize))
        })
        .collect()
}

pub fn collate_packed(ids: &[i32], offsets: &[i64], idx: &[i64]) -> Result<Packed> {
    let spans = spans(ids.len(), offsets, idx)?;
    let total: usize = spans.iter().map(|(s, e)| e - s).sum();
    if total > i32::MAX as usize {
        return Err(input(format!(
            "a packed row of {total} tokens does not fit the int32 cu_seq_lens"
        )));
    }
    let mut packed = Packed {
        input_ids: Vec::with_capacity(total),
        position_ids: Vec::with_capacity(total),
        cu_seq_lens: Vec::with_capacity(spans.len() + 1),
        max_length: 0,
        seq_idx: Vec::with_capacity(total),
        last_index: Vec::with_capacity(spans.len()),
    };
    packed.cu_seq_lens.push(0);
    for (k, &(start, end)) in spans.iter().enumerate() {
        let len = end - start;
        packed
            .input_ids
            .extend(ids[start..end].iter().map(|&t| t as i64));
        packed.position_ids.extend(0..len as i64);
        packed.seq_idx.extend(std::iter::repeat_n(k as i32, len));
        let cu = packed.input_ids.len();
        packed.cu_seq_lens.push(cu as i32);
        packed.last_index.push(cu as i64 - 1);
        packed.max_length = packed.max_length.max(len as i64);
    }
    Ok(packed)
}

pub fn collate_padded(
    ids: &[i32],
    offsets: &[i64],
    idx: &[i64],
    pad_id: i64,
    side: Side,
    pad_to_multiple_of: Option<usize>,
) -> Result<Padded> {
    if pad_to_multiple_of == Some(0) {
        return Err(ConfigError::Invalid("pad_to_multiple_of must be at least 1".into()).into());
    }
    let spans = spans(ids.len(), offsets, idx)?;
    let longest = spans.iter().map(|(s, e)| e - s).max().unwrap_or(0);
    let rows = spans.len();
    let width = match pad_to_multiple_of {
        Some(m) => longest.checked_next_multiple_of(m),
        None => Some(longest),
    };
    // Within int32 like a pack, and never an allocation that aborts the
    // process (a huge `pad_to_multiple_of`).
    let width = width
        .filter(|w| w.checked_mul(rows).is_some_and(|c| c <= i32::MAX as usize))
        .ok_or_else(|| {
            input(format!(
                "a padded batch of {rows} rows of width {longest} rounded up to a multiple of \
                 {} holds more than {} tokens",
                pad_to_multiple_of.unwrap_or(1),
                i32::MAX
            ))
        })?;
    // Written row by row in one pass (tokens, then padding), never filled
    // first and overwritten: this is a memory-bound copy.
    let mut input_ids = Vec::with_capacity(rows * width);
    let mut attention_mask = Vec::with_capacity(rows * width);
    let mut position_ids = (side == Side::Left).then(|| Vec::with_capacity(rows * width));
    let mut last_index = Vec::with_capacity(rows);
    for &(start, end) in &spans {
        let len = end - start;
        let pad = width - len;
        let tokens = ids[start..end].iter().map(|&t| t as i64);
        match side {
            Side::Right => {
                input_ids.extend(tokens);
                input_ids.extend(std::iter::repeat_n(pad_id, pad));
                attention_mask.extend(std::iter::repeat_n(1i64, len));
                attention_mask.extend(std::iter::repeat_n(0i64, pad));
                last_index.push(len as i64 - 1);
            }
            Side::Left => {
                input_ids.extend(std::iter::repeat_n(pad_id, pad));
                input_ids.extend(tokens);
                attention_mask.extend(std::iter::repeat_n(0i64, pad));
                attention_mask.extend(std::iter::repeat_n(1i64, len));
                if let Some(pos) = position_ids.as_mut() {
                    pos.extend(std::iter::repeat_n(0i64, pad));
                    pos.extend(0..len as i64);
                }
                last_index.push(width as i64 - 1);
            }
        }
    }
    Ok(Padded {
        rows,
        width,
        input_ids,
        attention_mask,
        position_ids,
        last_index,
    })
}

/// Rows `idx` of a row-major (n, width) table.
pub fn gather<T: Copy>(values: &[T], width: usize, idx: &[i64]) -> Result<Vec<T>> {
    let n = values.len().checked_div(width).unwrap_or(0);
    let mut out = Vec::with_capacity(idx.len() * width);
    for &i in idx {
        if i < 0 || i as usize >= n {
            return Err(input(format!(
                "labels: row {i} is out of range for {n} labels"
            )));
        }
        let start = i as usize * width;
        out.extend_from_slice(&values[start..start + width]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // rows: [1 2 3] [4] [5 6]
    const IDS: [i32; 6] = [1, 2, 3, 4, 5, 6];
    const OFFSETS: [i64; 4] = [0, 3, 4, 6];

    #[test]
    fn packed_rows_restart_positions() {
        let p = collate_packed(&IDS, &OFFSETS, &[2, 0]).unwrap();
        assert_eq!(p.input_ids, vec![5, 6, 1, 2, 3]);
        assert_eq!(p.position_ids, vec![0, 1, 0, 1, 2]);
        assert_eq!(p.cu_seq_lens, vec![0, 2, 5]);
        assert_eq!(p.seq_idx, vec![0, 0, 1, 1, 1]);
        assert_eq!(p.last_index, vec![1, 4]);
        assert_eq!(p.max_length, 3);
    }

    #[test]
    fn padded_right_and_left() {
        let p = collate_padded(&IDS, &OFFSETS, &[1, 0], 9, Side::Right, Some(4)).unwrap();
        assert_eq!((p.rows, p.width), (2, 4));
        assert_eq!(p.input_ids, vec![4, 9, 9, 9, 1, 2, 3, 9]);
        assert_eq!(p.attention_mask, vec![1, 0, 0, 0, 1, 1, 1, 0]);
        assert_eq!(p.last_index, vec![0, 2]);
        assert!(p.position_ids.is_none());
        let p = collate_padded(&IDS, &OFFSETS, &[1, 0], 9, Side::Left, None).unwrap();
        assert_eq!(p.input_ids, vec![9, 9, 4, 1, 2, 3]);
        assert_eq!(p.position_ids.unwrap(), vec![0, 0, 0, 0, 1, 2]);
        assert_eq!(p.last_index, vec![2, 2]);
    }

    #[test]
    fn bad_rows_are_errors_not_panics() {
        assert!(collate_packed(&IDS, &OFFSETS, &[]).is_err());
        assert!(collate_packed(&IDS, &OFFSETS, &[3]).is_err());
        assert!(collate_packed(&IDS, &OFFSETS, &[-1]).is_err());
        assert!(collate_packed(&IDS, &[0, 9], &[0]).is_err());
        assert!(collate_packed(&IDS, &[0, 0, 6], &[0]).is_err());
        assert!(collate_padded(&IDS, &OFFSETS, &[0], 0, Side::Left, Some(0)).is_err());
        assert!(gather(&[1i64, 2], 1, &[2]).is_err());
        assert_eq!(
            gather(&[1.0f32, 2.0, 3.0, 4.0], 2, &[1]).unwrap(),
            vec![3.0, 4.0]
        );
    }
}
