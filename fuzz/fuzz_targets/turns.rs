//! The JSON-list turn parser (`turns::parse_turn_list`, `RowTurns::from_json`)
//! on arbitrary bytes.
//!
//! Invariants: no panic; errors point inside the cell; the flags hold only
//! the parser's repairs; wherever `serde_json` reads the cell as a list of
//! strings and nulls the parser gives the same turns, and wherever it accepts
//! what `serde_json` refuses, it flagged a lone surrogate; what it returns
//! serialises back to a cell it parses to the same turns with no repairs;
//! three cells make a row of three equally long turn lists, `RAGGED` exactly
//! when they were padded.

#![no_main]

use arena_fast_core::turns::{parse_turn_list, repair};
use arena_fast_core::RowTurns;
use libfuzzer_sys::fuzz_target;

const NULL_TEXTS: [&str; 3] = ["", "<null>", "null"];
/// Separates the three cells of a row in the input (not valid in JSON text
/// outside a string, so a cell is rarely split inside a string by accident).
const CELL_SEP: char = '\u{1e}';

fn check_cell(cell: &str, null_text: &str) -> Result<Vec<String>, ()> {
    let parsed = parse_turn_list(cell, null_text);
    let reference: Result<Vec<Option<String>>, _> = serde_json::from_str(cell);
    match &parsed {
        Ok((turns, flags)) => {
            assert_eq!(
                flags & !(repair::NULL | repair::SURROGATE),
                0,
                "flags {flags:#b} on {cell:?}"
            );
            match &reference {
                Ok(expected) => {
                    let expected: Vec<String> = expected
                        .iter()
                        .map(|t| t.clone().unwrap_or_else(|| null_text.to_owned()))
                        .collect();
                    assert_eq!(turns, &expected, "turns differ from serde_json on {cell:?}");
                    let nulls = reference.as_ref().unwrap().iter().any(Option::is_none);
                    assert_eq!(flags & repair::NULL != 0, nulls, "NULL flag on {cell:?}");
                    assert_eq!(flags & repair::SURROGATE, 0, "SURROGATE flag on {cell:?}");
                }
                Err(_) => assert!(
                    flags & repair::SURROGATE != 0,
                    "accepted {cell:?} (serde_json refuses it) without a repair flag"
                ),
            }
            // Round trip: what came out is a clean cell.
            let again = serde_json::to_string(turns).expect("strings serialise");
            let (back, back_flags) =
                parse_turn_list(&again, null_text).expect("a serialised list parses");
            assert_eq!(&back, turns, "round trip of {cell:?}");
            assert_eq!(back_flags, 0, "round trip of {cell:?} flagged");
            Ok(turns.clone())
        }
        Err(e) => {
            assert!(
                reference.is_err(),
                "serde_json reads {cell:?} as {reference:?}, the parser refused it: {e}"
            );
            assert!(
                e.position <= cell.chars().count(),
                "error position {} beyond the cell {cell:?}",
                e.position
            );
            assert!(!e.message.is_empty());
            Err(())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let null_text = NULL_TEXTS[(mode as usize >> 1) % NULL_TEXTS.len()];
    // Invalid UTF-8 reaches the parser as a Python str or an Arrow string
    // would after repair: lossily decoded.
    let text = String::from_utf8_lossy(rest);
    if mode & 1 == 0 {
        let _ = check_cell(&text, null_text);
        return;
    }
    let mut cells = text.splitn(3, CELL_SEP);
    let cells = [0; 3].map(|_| cells.next().unwrap_or("[]"));
    let each: Vec<Result<Vec<String>, ()>> =
        cells.iter().map(|c| check_cell(c, null_text)).collect();
    match RowTurns::from_json(7, cells, null_text) {
        Ok(row) => {
            let lists: Vec<Vec<String>> = each
                .into_iter()
                .map(|r| r.expect("from_json accepted a cell parse_turn_list refused"))
                .collect();
            let n = lists.iter().map(Vec::len).max().unwrap_or(0);
            let ragged = lists.iter().any(|l| l.len() != n);
            assert_eq!(row.repairs & repair::RAGGED != 0, ragged);
            for (field, list) in row.fields.iter().zip(&lists) {
                assert_eq!(field.len(), n);
                assert_eq!(&field[..list.len()], &list[..]);
                assert!(field[list.len()..].iter().all(String::is_empty));
            }
        }
        Err(e) => {
            assert!(
                each.iter().any(Result::is_err),
                "from_json refused cells parse_turn_list accepts: {e}"
            );
            assert!(e.to_string().starts_with("row 7, column "), "{e}");
        }
    }
});
