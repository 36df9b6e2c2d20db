//! Batch assembly (`collate::collate_packed`, `collate_padded`, `gather`)
//! over arbitrary buffers, offsets, row indices and padding, as the Python
//! functions can hand them over.
//!
//! Invariants: no panic; a batch is refused exactly when a row index is out
//! of range, a row's offsets do not lie inside the ids, a row is empty, or
//! the batch would be too large; otherwise every row is copied whole, in
//! order, with the positions, sequence lengths, padding and last indices
//! the layouts in docs/packing.md give.

#![no_main]

use arbitrary::Unstructured;
use arena_fast_core::collate::{collate_packed, collate_padded, gather, Side};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Input {
    ids: Vec<i32>,
    offsets: Vec<i64>,
    idx: Vec<i64>,
    pad_id: i64,
    side: Side,
    multiple: Option<usize>,
    labels_width: usize,
}

fn input(u: &mut Unstructured<'_>) -> arbitrary::Result<Input> {
    let n_ids: i32 = u.int_in_range(0..=512)?;
    let ids: Vec<i32> = (0..n_ids).collect();
    let rows = u.int_in_range(0..=24)?;
    let mut offsets = Vec::with_capacity(rows + 1);
    let mut at = 0i64;
    offsets.push(0);
    for _ in 0..rows {
        at += u.int_in_range(0..=40)?;
        offsets.push(at);
    }
    if u.ratio(1, 8)? && !offsets.is_empty() {
        // Broken offsets: anything at one place.
        let k = u.choose_index(offsets.len())?;
        offsets[k] = u.arbitrary()?;
    }
    if u.ratio(1, 32)? {
        offsets.clear();
    }
    let n_idx = u.int_in_range(0..=16)?;
    let idx = (0..n_idx)
        .map(|_| {
            Ok(if u.ratio(1, 16)? {
                u.arbitrary()?
            } else {
                u.int_in_range(0..=rows.max(1) as i64 - 1)?
            })
        })
        .collect::<arbitrary::Result<Vec<i64>>>()?;
    let multiple = match u.int_in_range(0..=7)? {
        0 => None,
        // Too large for any batch (in between, a batch is legal but would
        // take gigabytes).
        1 => Some(u.int_in_range(1 << 31..=usize::MAX)?),
        2 => Some(0),
        _ => Some(u.int_in_range(1..=64)?),
    };
    Ok(Input {
        ids,
        offsets,
        idx,
        pad_id: u.arbitrary()?,
        side: if u.arbitrary()? {
            Side::Left
        } else {
            Side::Right
        },
        multiple,
        labels_width: u.int_in_range(0..=3)?,
    })
}

/// The rows `idx` as (start, end), or None where the batch must be refused.
fn spans(input: &Input) -> Option<Vec<(usize, usize)>> {
    if input.idx.is_empty() {
        return None;
    }
    let n = input.offsets.len().saturating_sub(1) as i64;
    input
        .idx
        .iter()
        .map(|&i| {
            if !(0..n).contains(&i) {
                return None;
            }
            let (s, e) = (input.offsets[i as usize], input.offsets[i as usize + 1]);
            (0 <= s && s < e && e as usize <= input.ids.len()).then_some((s as usize, e as usize))
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = input(&mut u) else {
        return;
    };
    if std::env::var_os("ARENA_FUZZ_DEBUG").is_some() {
        eprintln!("{input:#?}");
    }
    let expected = spans(&input);
    let packed = collate_packed(&input.ids, &input.offsets, &input.idx);
    match (&packed, &expected) {
        (Ok(p), Some(spans)) => {
            let mut cu = vec![0i32];
            let mut ids = Vec::new();
            let mut positions = Vec::new();
            let mut seq = Vec::new();
            for (k, &(s, e)) in spans.iter().enumerate() {
                ids.extend(input.ids[s..e].iter().map(|&t| t as i64));
                positions.extend(0..(e - s) as i64);
                seq.extend(std::iter::repeat_n(k as i32, e - s));
                cu.push(ids.len() as i32);
            }
            assert_eq!(p.input_ids, ids);
            assert_eq!(p.position_ids, positions);
            assert_eq!(p.seq_idx, seq);
            assert_eq!(p.cu_seq_lens, cu);
            let last: Vec<i64> = cu[1..].iter().map(|&c| c as i64 - 1).collect();
            assert_eq!(p.last_index, last);
            let longest = spans.iter().map(|(s, e)| e - s).max().unwrap();
            assert_eq!(p.max_length, longest as i64);
        }
        (Err(_), None) => {}
        (got, want) => panic!("collate_packed gave {got:?} where {want:?} was expected"),
    }
    let padded = collate_padded(
        &input.ids,
        &input.offsets,
        &input.idx,
        input.pad_id,
        input.side,
        input.multiple,
    );
    let Some(spans) = expected.filter(|_| input.multiple != Some(0)) else {
        assert!(padded.is_err(), "collate_padded accepted a bad batch");
        return;
    };
    let longest = spans.iter().map(|(s, e)| e - s).max().unwrap();
    let width = match input.multiple {
        None => Some(longest),
        Some(m) => longest.checked_next_multiple_of(m),
    };
    let fits = width.and_then(|w| w.checked_mul(spans.len()));
    match padded {
        Err(e) => assert!(
            fits.is_none_or(|cells| cells > i32::MAX as usize),
            "collate_padded refused a good batch ({} rows of width {width:?}): {e}",
            spans.len()
        ),
        Ok(p) => {
            let width = width.expect("a width was computed");
            assert_eq!((p.rows, p.width), (spans.len(), width));
            assert_eq!(p.input_ids.len(), p.rows * width);
            assert_eq!(p.attention_mask.len(), p.rows * width);
            assert_eq!(p.position_ids.is_some(), input.side == Side::Left);
            for (r, &(s, e)) in spans.iter().enumerate() {
                let len = e - s;
                let row = &p.input_ids[r * width..(r + 1) * width];
                let mask = &p.attention_mask[r * width..(r + 1) * width];
                let tokens: Vec<i64> = input.ids[s..e].iter().map(|&t| t as i64).collect();
                let (tok_at, last) = match input.side {
                    Side::Right => (0, len - 1),
                    Side::Left => (width - len, width - 1),
                };
                assert_eq!(&row[tok_at..tok_at + len], &tokens[..], "row {r}");
                assert_eq!(p.last_index[r], last as i64);
                for (c, (&id, &m)) in row.iter().zip(mask).enumerate() {
                    let real = (tok_at..tok_at + len).contains(&c);
                    assert_eq!(m, real as i64, "row {r} mask at {c}");
                    if !real {
                        assert_eq!(id, input.pad_id, "row {r} padding at {c}");
                    }
                }
                if let Some(pos) = &p.position_ids {
                    let pos = &pos[r * width..(r + 1) * width];
                    let want: Vec<i64> = std::iter::repeat_n(0, width - len)
                        .chain(0..len as i64)
                        .collect();
                    assert_eq!(pos, &want[..], "row {r} positions");
                }
            }
        }
    }
    // Labels of the same rows: (n,) or (n, width) tables.
    if input.labels_width > 0 {
        let n = input.offsets.len().saturating_sub(1);
        let w = input.labels_width;
        let table: Vec<u32> = (0..(n * w) as u32).collect();
        match gather(&table, w, &input.idx) {
            Ok(out) => {
                assert_eq!(out.len(), input.idx.len() * w);
                for (k, &i) in input.idx.iter().enumerate() {
                    let i = i as usize;
                    assert_eq!(&out[k * w..(k + 1) * w], &table[i * w..(i + 1) * w]);
                }
            }
            Err(_) => assert!(input.idx.iter().any(|&i| i < 0 || i as usize >= n)),
        }
    }
});
