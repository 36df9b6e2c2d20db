//! Swap pairs: with `Swap::Both` the encoder writes input row i as rows 2i
//! (A and B as given) and 2i + 1 (A and B exchanged). Datasets keep the two
//! orders apart; `split_pairs` takes such rows apart and `interleave_pairs`
//! puts them back, each the other's inverse.

use crate::buffers::check_offsets;
use crate::error::EncodeError;

/// Rows of token ids, borrowed: row r is `ids[offsets[r]..offsets[r + 1]]`
/// (the offsets need not start at 0).
#[derive(Debug, Clone, Copy)]
pub struct TokenRows<'a> {
    pub ids: &'a [i32],
    pub offsets: &'a [i64],
}

/// Rows of token ids, owned, with offsets from 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedRows {
    pub ids: Vec<i32>,
    pub offsets: Vec<i64>,
}

impl TokenRows<'_> {
    fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn check(&self, name: &str) -> Result<(), EncodeError> {
        check_offsets(name, self.offsets, self.ids.len()).map_err(EncodeError::Pairs)
    }

    fn row(&self, r: usize) -> &[i32] {
        &self.ids[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }

    /// The ids from row `first` on, every `step`th row.
    fn rows_from(&self, first: usize, step: usize) -> OwnedRows {
        let picked = (first..self.rows()).step_by(step);
        let mut out = OwnedRows {
            ids: Vec::with_capacity(self.ids.len() / step),
            offsets: Vec::with_capacity(picked.len() + 1),
        };
        out.offsets.push(0);
        for r in picked {
            out.ids.extend_from_slice(self.row(r));
            out.offsets.push(out.ids.len() as i64);
        }
        out
    }
}

/// The rows of a `Swap::Both` encoding as its two orders: the even rows
/// (originals) and the odd rows (their swaps).
pub fn split_pairs(rows: TokenRows<'_>) -> Result<[OwnedRows; 2], EncodeError> {
    rows.check("split_pairs: offsets")?;
    if rows.rows() % 2 != 0 {
        return Err(EncodeError::Pairs(format!(
            "split_pairs: {} rows, expected an even number (pairs)",
            rows.rows()
        )));
    }
    Ok([rows.rows_from(0, 2), rows.rows_from(1, 2)])
}

/// The inverse of `split_pairs`: `originals` row 0, `swapped` row 0,
/// `originals` row 1, ...; both must hold the same number of rows.
pub fn interleave_pairs(
    originals: TokenRows<'_>,
    swapped: TokenRows<'_>,
) -> Result<OwnedRows, EncodeError> {
    originals.check("interleave_pairs: original offsets")?;
    swapped.check("interleave_pairs: swapped offsets")?;
    let n = originals.rows();
    if swapped.rows() != n {
        return Err(EncodeError::Pairs(format!(
            "interleave_pairs: {n} original rows but {} swapped rows",
            swapped.rows()
        )));
    }
    let span = |r: TokenRows<'_>| (r.offsets[n] - r.offsets[0]) as usize;
    let mut out = OwnedRows {
        ids: Vec::with_capacity(span(originals) + span(swapped)),
        offsets: Vec::with_capacity(2 * n + 1),
    };
    out.offsets.push(0);
    for r in 0..n {
        for rows in [originals, swapped] {
            out.ids.extend_from_slice(rows.row(r));
            out.offsets.push(out.ids.len() as i64);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows<'a>(ids: &'a [i32], offsets: &'a [i64]) -> TokenRows<'a> {
        TokenRows { ids, offsets }
    }

    #[test]
    fn split_then_interleave_gives_the_rows_back() {
        let ids: Vec<i32> = (0..10).collect();
        // Rows [0 1] [2 3 4] [] [5..9].
        let offsets = [0i64, 2, 5, 5, 10];
        let [even, odd] = split_pairs(rows(&ids, &offsets)).unwrap();
        assert_eq!(
            (even.ids.as_slice(), even.offsets.as_slice()),
            (&[0, 1][..], &[0, 2, 2][..])
        );
        assert_eq!(odd.ids, [2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(odd.offsets, [0, 3, 8]);
        let back =
            interleave_pairs(rows(&even.ids, &even.offsets), rows(&odd.ids, &odd.offsets)).unwrap();
        assert_eq!(back.ids, ids);
        assert_eq!(back.offsets, offsets);
    }

    #[test]
    fn offsets_need_not_start_at_zero() {
        let ids = [9, 9, 1, 2, 3, 9];
        let a = [2i64, 3, 3];
        let b = [4i64, 5, 6];
        let out = interleave_pairs(rows(&ids, &a), rows(&ids, &b)).unwrap();
        assert_eq!(out.ids, [1, 3, 9]);
        assert_eq!(out.offsets, [0, 1, 2, 2, 3]);
    }

    #[test]
    fn buffers_that_do_not_hold_together_are_refused() {
        let ids = [1, 2, 3];
        let err = |e: EncodeError| e.to_string();
        assert!(err(split_pairs(rows(&ids, &[0, 1, 3, 3])).unwrap_err()).contains("3 rows"));
        assert!(err(split_pairs(rows(&ids, &[0, 4])).unwrap_err()).contains("beyond"));
        assert!(err(split_pairs(rows(&ids, &[])).unwrap_err()).contains("no offsets"));
        assert!(
            err(interleave_pairs(rows(&ids, &[0, 1]), rows(&ids, &[0, 1, 2])).unwrap_err())
                .contains("1 original rows but 2 swapped")
        );
        assert!(
            err(interleave_pairs(rows(&ids, &[0, 1]), rows(&ids, &[2, 1])).unwrap_err())
                .contains("swapped offsets: offsets decrease")
        );
    }
}
