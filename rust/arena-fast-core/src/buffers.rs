//! Flat buffers in Arrow's layout, borrowed: offsets into a values buffer
//! (Arrow columns of text, the encoder's token rows) and validity bitmaps.
//! The one check that offsets hold together lives here, so that nothing
//! that reads such buffers can go out of bounds.

/// Check that `offsets` (rows + 1 of them) start at 0 or more, never
/// decrease and end inside a buffer of `limit` values. `name` starts the
/// message.
pub fn check_offsets(name: &str, offsets: &[i64], limit: usize) -> Result<(), String> {
    let Some(&first) = offsets.first() else {
        return Err(format!("{name}: no offsets (expected rows + 1)"));
    };
    if first < 0 {
        return Err(format!("{name}: negative offset"));
    }
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(format!("{name}: offsets decrease"));
    }
    let last = offsets[offsets.len() - 1];
    if last as u64 > limit as u64 {
        return Err(format!("{name}: offset {last} beyond the buffer ({limit})"));
    }
    Ok(())
}

/// An Arrow validity bitmap, borrowed: entry `i` is valid (not null) when
/// bit `offset + i` of `bits` is set, least significant bit first.
#[derive(Debug, Clone, Copy)]
pub struct Validity<'a> {
    pub bits: &'a [u8],
    /// The bit of entry 0 (a sliced Arrow array starts inside a byte).
    pub offset: usize,
    /// Entries covered.
    pub len: usize,
}

impl<'a> Validity<'a> {
    /// A bitmap of `len` entries from bit `offset` of `bits`; None when the
    /// bits do not reach that far.
    pub fn new(bits: &'a [u8], offset: usize, len: usize) -> Option<Validity<'a>> {
        let end = offset.checked_add(len)?;
        (end.div_ceil(8) <= bits.len()).then_some(Validity { bits, offset, len })
    }

    /// Whether entry `i` is valid. `i` must be below `len`.
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        debug_assert!(i < self.len);
        let bit = self.offset + i;
        self.bits[bit / 8] >> (bit % 8) & 1 == 1
    }

    /// Whether the bitmap covers exactly `n` entries, inside its bits.
    pub fn fits(&self, n: usize) -> bool {
        self.len == n
            && self
                .offset
                .checked_add(n)
                .is_some_and(|end| end.div_ceil(8) <= self.bits.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_that_do_not_hold_together_are_refused() {
        assert!(check_offsets("o", &[0, 2, 2, 5], 5).is_ok());
        assert!(check_offsets("o", &[3], 3).is_ok());
        for (bad, why) in [
            (&[][..], "no offsets"),
            (&[-1, 2][..], "negative"),
            (&[0, 3, 2][..], "decrease"),
            (&[0, 6][..], "beyond"),
        ] {
            let err = check_offsets("o", bad, 5).unwrap_err();
            assert!(err.starts_with("o: ") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn bits_are_read_from_the_offset_lsb_first() {
        let bits = [0b1000_1101u8, 0b1100_0000];
        let v = Validity::new(&bits, 2, 12).unwrap();
        let got: Vec<bool> = (0..12).map(|i| v.is_valid(i)).collect();
        let want = [1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0].map(|b| b == 1);
        assert_eq!(got, want);
        assert!(v.fits(12) && !v.fits(11));
        assert!(Validity::new(&bits, 2, 15).is_none());
        assert!(Validity::new(&bits, usize::MAX, 2).is_none());
        let forged = Validity {
            bits: &bits,
            offset: 9,
            len: 8,
        };
        assert!(!forged.fits(8));
    }
}
