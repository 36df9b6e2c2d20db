//! Rows from Arrow buffers (`rows::Rows::from_columns`) and their features,
//! over arbitrary offsets, validity bitmaps (from any bit offset, as a sliced
//! Arrow array has them) and bytes, as `_core.Rows` can be handed them.
//!
//! Invariants: no panic; buffers that do not hold together are refused
//! (never read out of bounds); the same turns given as a list column and as
//! JSON-list text give the same rows; a row that cannot be parsed is empty
//! and carries its error; the features have one entry per row, and a row and
//! its copy with A and B exchanged have the same pair key.

#![no_main]

use arbitrary::Unstructured;
use arena_fast_core::buffers::Validity;
use arena_fast_core::{Rows, TextColumn};
use libfuzzer_sys::fuzz_target;

/// An owned validity bitmap: entry i is bit `offset + i` of `bytes`.
#[derive(Debug, Clone)]
struct Bits {
    bytes: Vec<u8>,
    offset: usize,
    len: usize,
}

impl Bits {
    /// Packed LSB first from bit `offset` on, as a sliced Arrow array has it.
    fn pack(valid: &[bool], offset: usize) -> Bits {
        let mut bytes = vec![0u8; (offset + valid.len()).div_ceil(8)];
        for (i, &v) in valid.iter().enumerate() {
            let bit = offset + i;
            bytes[bit / 8] |= (v as u8) << (bit % 8);
        }
        Bits {
            bytes,
            offset,
            len: valid.len(),
        }
    }

    fn view(&self) -> Validity<'_> {
        Validity {
            bits: &self.bytes,
            offset: self.offset,
            len: self.len,
        }
    }
}

/// One column as owned Arrow-like buffers.
#[derive(Debug, Clone)]
enum Column {
    Json {
        valid: Option<Bits>,
        offsets: Vec<i64>,
        data: Vec<u8>,
    },
    Lists {
        valid: Option<Bits>,
        list_offsets: Vec<i64>,
        str_valid: Option<Bits>,
        str_offsets: Vec<i64>,
        data: Vec<u8>,
    },
}

impl Column {
    fn view(&self) -> TextColumn<'_> {
        match self {
            Column::Json {
                valid,
                offsets,
                data,
            } => TextColumn::Json {
                valid: valid.as_ref().map(Bits::view),
                offsets,
                data,
            },
            Column::Lists {
                valid,
                list_offsets,
                str_valid,
                str_offsets,
                data,
            } => TextColumn::Lists {
                valid: valid.as_ref().map(Bits::view),
                list_offsets,
                str_valid: str_valid.as_ref().map(Bits::view),
                str_offsets,
                data,
            },
        }
    }
}

const WORDS: &[&str] = &[
    "", " ", "a", "Hi", "  x  ", "É", "ß", "\u{3000}", "😀", "\"", "\\",
];

/// Rows of turns (None: a null string) and the column kind.
type Cells = Vec<Option<Vec<Option<String>>>>;

fn cells(u: &mut Unstructured<'_>, rows: usize) -> arbitrary::Result<Cells> {
    (0..rows)
        .map(|_| {
            if u.ratio(1, 12)? {
                return Ok(None);
            }
            let turns = u.int_in_range(0..=3)?;
            let list = (0..turns)
                .map(|_| {
                    if u.ratio(1, 10)? {
                        return Ok(None);
                    }
                    let mut s = String::new();
                    for _ in 0..u.int_in_range(0..=3)? {
                        s.push_str(u.choose(WORDS)?);
                    }
                    Ok(Some(s))
                })
                .collect::<arbitrary::Result<Vec<_>>>()?;
            Ok(Some(list))
        })
        .collect()
}

fn as_lists(cells: &Cells, shift: usize) -> Column {
    let mut list_offsets = vec![0i64];
    let mut str_offsets = vec![0i64];
    let mut str_valid = Vec::new();
    let mut data = Vec::new();
    for cell in cells {
        for turn in cell.iter().flatten() {
            data.extend_from_slice(turn.as_deref().unwrap_or("").as_bytes());
            str_offsets.push(data.len() as i64);
            str_valid.push(turn.is_some());
        }
        list_offsets.push(str_offsets.len() as i64 - 1);
    }
    let valid: Vec<bool> = cells.iter().map(Option::is_some).collect();
    Column::Lists {
        valid: Some(Bits::pack(&valid, shift)),
        list_offsets,
        str_valid: Some(Bits::pack(&str_valid, shift)),
        str_offsets,
        data,
    }
}

fn as_json(cells: &Cells, shift: usize) -> Column {
    let mut offsets = vec![0i64];
    let mut data = Vec::new();
    for cell in cells {
        if let Some(list) = cell {
            data.extend_from_slice(serde_json::to_string(list).unwrap().as_bytes());
        }
        offsets.push(data.len() as i64);
    }
    let valid: Vec<bool> = cells.iter().map(Option::is_some).collect();
    Column::Json {
        valid: Some(Bits::pack(&valid, shift)),
        offsets,
        data,
    }
}

/// Sorted offsets into `0..=limit`, with one broken at times.
fn offsets(u: &mut Unstructured<'_>, len: usize, limit: usize) -> arbitrary::Result<Vec<i64>> {
    let mut o: Vec<i64> = (0..=len)
        .map(|_| u.int_in_range(0..=limit as i64))
        .collect::<arbitrary::Result<_>>()?;
    o.sort_unstable();
    if u.ratio(1, 6)? {
        let k = u.choose_index(o.len())?;
        o[k] = u.arbitrary()?;
    }
    if u.ratio(1, 32)? {
        o.clear();
    }
    Ok(o)
}

/// A validity bitmap for `n` entries from any bit offset: none, of the
/// wrong length, too short for its length, or any.
fn bits(u: &mut Unstructured<'_>, n: usize) -> arbitrary::Result<Option<Bits>> {
    let offset = u.int_in_range(0..=9)?;
    Ok(match u.int_in_range(0..=6)? {
        0 => None,
        1 => Some(Bits::pack(&vec![true; u.int_in_range(0..=n + 1)?], offset)),
        2 => {
            let mut b = Bits::pack(&vec![true; n], offset);
            b.bytes.truncate(u.int_in_range(0..=b.bytes.len())?);
            Some(b)
        }
        _ => {
            let valid: Vec<bool> = (0..n)
                .map(|_| u.arbitrary())
                .collect::<arbitrary::Result<_>>()?;
            Some(Bits::pack(&valid, offset))
        }
    })
}

/// Arbitrary buffers: mostly well-formed, with one thing broken at times.
fn wild(u: &mut Unstructured<'_>, rows: usize) -> arbitrary::Result<Column> {
    let data: Vec<u8> = u.arbitrary()?;
    if u.arbitrary()? {
        let offsets = offsets(u, rows, data.len())?;
        let valid = bits(u, offsets.len().saturating_sub(1))?;
        Ok(Column::Json {
            valid,
            offsets,
            data,
        })
    } else {
        let strings = u.int_in_range(0..=16)?;
        let str_offsets = offsets(u, strings, data.len())?;
        let list_offsets = offsets(u, rows, strings)?;
        let valid = bits(u, list_offsets.len().saturating_sub(1))?;
        let str_valid = bits(u, str_offsets.len().saturating_sub(1))?;
        Ok(Column::Lists {
            valid,
            list_offsets,
            str_valid,
            str_offsets,
            data,
        })
    }
}

fn views(cols: &[Column]) -> [TextColumn<'_>; 3] {
    [cols[0].view(), cols[1].view(), cols[2].view()]
}

fn check_features(rows: &Rows) {
    let f = rows.features(1);
    let n = rows.len();
    for len in [
        f.turns.len(),
        f.repairs.len(),
        f.empty_prompt.len(),
        f.identical.len(),
        f.prompt_key.len(),
        f.pair_key.len(),
        f.chars.len(),
        f.error.len(),
    ] {
        assert_eq!(len, n);
    }
    for i in 0..n {
        assert_eq!(f.error[i], rows.errors[i].is_some());
        if f.error[i] {
            assert_eq!(rows.rows[i].n_turns(), 0, "row {i}: an error row has turns");
        }
        assert_eq!(f.identical[i], f.a_key[i] == f.b_key[i]);
    }
    // Exchanging A and B keeps the pair key.
    let swapped = Rows::from_turns(
        rows.rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.fields.swap(1, 2);
                r
            })
            .collect(),
    );
    let g = swapped.features(1);
    assert_eq!(f.pair_key, g.pair_key, "pair keys depend on the A/B order");
    assert_eq!(f.prompt_key, g.prompt_key);
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(rows) = u.int_in_range(0..=12) else {
        return;
    };
    let null_text = if u.arbitrary().unwrap_or(false) {
        "<null>"
    } else {
        ""
    };
    if u.ratio(1, 2).unwrap_or(true) {
        // Well-formed columns, as lists and as JSON text: the same rows.
        let Ok(c) = (0..3)
            .map(|_| cells(&mut u, rows))
            .collect::<arbitrary::Result<Vec<_>>>()
        else {
            return;
        };
        let shift = u.int_in_range(0..=7).unwrap_or(0);
        let lists = [
            as_lists(&c[0], shift),
            as_lists(&c[1], 0),
            as_lists(&c[2], 7 - shift),
        ];
        let json = [as_json(&c[0], 0), as_json(&c[1], shift), as_json(&c[2], 3)];
        let a = Rows::from_columns(views(&lists), null_text, 1).expect("list columns read");
        let b = Rows::from_columns(views(&json), null_text, 1).expect("JSON columns read");
        assert_eq!(a.rows, b.rows, "list and JSON columns differ");
        assert_eq!(a.errors, b.errors);
        assert!(a.errors.iter().all(Option::is_none));
        check_features(&a);
    } else {
        let Ok(cols) = (0..3)
            .map(|_| wild(&mut u, rows))
            .collect::<arbitrary::Result<Vec<_>>>()
        else {
            return;
        };
        if std::env::var_os("ARENA_FUZZ_DEBUG").is_some() {
            eprintln!("{cols:#?}");
        }
        let views = views(&cols);
        match Rows::from_columns(views, null_text, 1) {
            Ok(parsed) => {
                assert_eq!(parsed.len(), views[0].len());
                assert!(views.iter().all(|v| v.validate().is_ok()));
                check_features(&parsed);
            }
            Err(e) => assert!(e.starts_with("column") || e.contains("lengths"), "{e}"),
        }
    }
});
