//! The encoder over every budget strategy and template (the four presets and
//! arbitrary ones), split and joint tokenization, every swap mode, with the
//! demo tokenizer shipped in the Python package (or `ARENA_FUZZ_TOKENIZER`).
//!
//! Invariants: no panic (a bad configuration is an error); no row longer than
//! `max_length`; a row that is not truncated is the full layout with every
//! turn; BOS and EOS where configured; `Swap::Swapped` of (P, A, B) is
//! `Swap::Original` of (P, B, A), and `Swap::Both` interleaves the two; the
//! JSON path (`encode_json`) gives what the turn-list path gives.

#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use arena_fast_core::budget::{Keep, Strategy};
use arena_fast_core::template::PRESETS;
use arena_fast_core::{
    ArenaTokenizer, BudgetConfig, Encoded, Encoder, EncoderConfig, RowTurns, Swap, Template,
};
use libfuzzer_sys::fuzz_target;

const DEMO_TOKENIZER: &str =
    include_str!("../../python/arena_fast/data/demo_tokenizer/tokenizer.json");

/// The demo tokenizer, or the tokenizer.json named by `ARENA_FUZZ_TOKENIZER`.
fn load() -> ArenaTokenizer {
    match std::env::var("ARENA_FUZZ_TOKENIZER") {
        Ok(path) => ArenaTokenizer::from_file(&path).expect("ARENA_FUZZ_TOKENIZER loads"),
        Err(_) => ArenaTokenizer::from_json(DEMO_TOKENIZER).expect("the demo tokenizer loads"),
    }
}

fn tokenizer() -> Arc<ArenaTokenizer> {
    static TOK: OnceLock<Arc<ArenaTokenizer>> = OnceLock::new();
    TOK.get_or_init(|| Arc::new(load())).clone()
}

/// Pieces texts are made of: words of the demo vocabulary, whitespace runs,
/// the tokenizer's added and special tokens, template markup, and `▁`.
const PIECES: &[&str] = &[
    " ",
    "  ",
    "\n",
    "\n\n",
    "\n\n\n\n\n\n\n\n\n",
    "\t",
    "\u{2581}",
    "<eos>",
    "<bos>",
    "<pad>",
    "<unk>",
    "<eos",
    "the",
    " the",
    "Hello",
    " world",
    "answer",
    "## Round 1:",
    "### Response A:\n",
    "<PROMPT>",
    "\"\"\"",
    "......",
    "{i}",
    "é",
    "日本語",
    "😀",
    "\u{FFFD}",
    "\u{0}",
    "1234567890",
    "https://example.com/a_b?c=d",
];

/// A text: pieces of the list above, or free text.
#[derive(Debug)]
struct Text(String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut s = String::new();
        let parts = u.int_in_range(0..=12)?;
        for _ in 0..parts {
            if u.ratio(1, 6)? {
                let free: &str = u.arbitrary()?;
                s.extend(free.chars().take(24));
            } else {
                s.push_str(u.choose(PIECES)?);
            }
        }
        Ok(Text(s))
    }
}

/// Template strings: short, from the same pieces.
fn short(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=3)? {
        s.push_str(u.choose(PIECES)?);
    }
    Ok(s)
}

fn template(u: &mut Unstructured<'_>) -> arbitrary::Result<Template> {
    let pick = u.int_in_range(0..=PRESETS.len())?;
    if let Some(name) = PRESETS.get(pick) {
        return Ok(Template::preset(name).expect("presets load"));
    }
    Ok(Template {
        begin: short(u)?,
        end: short(u)?,
        first_header: short(u)?,
        header: short(u)?,
        prefixes: [short(u)?, short(u)?, short(u)?],
        suffixes: [short(u)?, short(u)?, short(u)?],
        marker: short(u)?,
        join_turns: if u.arbitrary()? {
            Some(short(u)?)
        } else {
            None
        },
    })
}

#[derive(Debug)]
struct Input {
    cfg: EncoderConfig,
    rows: Vec<[Vec<Option<String>>; 3]>,
    swap: Swap,
}

fn turns(u: &mut Unstructured<'_>, n: usize) -> arbitrary::Result<Vec<Option<String>>> {
    (0..n)
        .map(|_| {
            Ok(if u.ratio(1, 10)? {
                None
            } else {
                Some(Text::arbitrary(u)?.0)
            })
        })
        .collect()
}

fn input(u: &mut Unstructured<'_>) -> arbitrary::Result<Input> {
    let strategy = *u.choose(&[
        Strategy::FourthPlace,
        Strategy::Fair,
        Strategy::DropOldest,
        Strategy::None,
    ])?;
    // Mostly budgets that cut; sometimes roomy ones; sometimes invalid (0).
    let max_length = match u.int_in_range(0..=7)? {
        0 => u.int_in_range(0..=4096)?,
        1 => u.int_in_range(0..=24)?,
        _ => u.int_in_range(16..=400)?,
    };
    let mut budget = BudgetConfig::new(max_length, strategy);
    if u.arbitrary()? {
        budget.prompt_weight = f64::from(u.int_in_range(1u8..=64)?) / 16.0;
        budget.min_segment_tokens = u.int_in_range(0..=64)?;
        budget.keep = if u.arbitrary()? {
            Keep::HeadTail
        } else {
            Keep::Head
        };
        budget.keep_first_turns = u.int_in_range(0..=4)?;
        let r: [u8; 3] = u.arbitrary()?;
        let total = r.iter().map(|&x| u32::from(x)).sum::<u32>().max(255);
        budget.tail_ratios = r.map(|x| f64::from(x) / f64::from(total));
        budget.min_tail_tokens = u.int_in_range(0..=120)?;
    }
    let tok = tokenizer();
    let special = |name: &str| tok.token_to_id(name);
    let cfg = EncoderConfig {
        template: template(u)?,
        budget,
        joint: u.arbitrary()?,
        bos: if u.arbitrary()? {
            special("<bos>")
        } else {
            None
        },
        eos: if u.arbitrary()? {
            special("<eos>")
        } else {
            None
        },
        split_special_tokens: u.ratio(3, 4)?,
        null_text: if u.arbitrary()? {
            String::new()
        } else {
            "<null>".into()
        },
        num_threads: None,
    };
    let swap = *u.choose(&[Swap::Original, Swap::Swapped, Swap::Both])?;
    let n_rows = u.int_in_range(1..=3)?;
    let mut rows = Vec::with_capacity(n_rows);
    for _ in 0..n_rows {
        // Usually one length for all three; sometimes ragged; sometimes
        // past the 64 headers the encoder tokenizes up front.
        let n = match u.int_in_range(0..=15)? {
            0 => u.int_in_range(60..=70)?,
            _ => u.int_in_range(0..=6)?,
        };
        let mut lens = [n; 3];
        if u.ratio(1, 8)? {
            for len in &mut lens {
                *len = u.int_in_range(0..=n)?;
            }
        }
        rows.push([turns(u, lens[0])?, turns(u, lens[1])?, turns(u, lens[2])?]);
    }
    Ok(Input { cfg, rows, swap })
}

fn row_turns(row: &[Vec<Option<String>>; 3], null_text: &str, swap_ab: bool) -> RowTurns {
    let field = |f: usize| -> Vec<String> {
        row[f]
            .iter()
            .map(|t| t.clone().unwrap_or_else(|| null_text.to_owned()))
            .collect()
    };
    let nulls = row.iter().flatten().any(Option::is_none);
    let flags = if nulls {
        arena_fast_core::turns::repair::NULL
    } else {
        0
    };
    let (a, b) = if swap_ab {
        (field(2), field(1))
    } else {
        (field(1), field(2))
    };
    RowTurns::new(field(0), a, b, flags)
}

/// Row `i` of `enc` with everything but `is_swapped`.
fn row_of(enc: &Encoded, i: usize) -> (Vec<i32>, i32, i32, bool, i64, u8, i64) {
    (
        enc.row(i).to_vec(),
        enc.turns_total[i],
        enc.turns_kept[i],
        enc.truncated[i],
        enc.full_lengths[i],
        enc.repairs[i],
        enc.source_row[i],
    )
}

fn check_shape(enc: &Encoded, rows: usize, per_row: usize) {
    let n = rows * per_row;
    assert_eq!(enc.len(), n);
    assert_eq!(enc.offsets[0], 0);
    assert_eq!(*enc.offsets.last().unwrap() as usize, enc.input_ids.len());
    assert!(enc.offsets.windows(2).all(|w| w[0] <= w[1]));
    for v in [
        enc.turns_total.len(),
        enc.turns_kept.len(),
        enc.truncated.len(),
        enc.full_lengths.len(),
        enc.repairs.len(),
        enc.is_swapped.len(),
        enc.source_row.len(),
    ] {
        assert_eq!(v, n);
    }
    for i in 0..n {
        assert_eq!(enc.source_row[i], (i / per_row) as i64);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = input(&mut u) else {
        return;
    };
    if std::env::var_os("ARENA_FUZZ_DEBUG").is_some() {
        eprintln!("{input:#?}");
    }
    let Input { cfg, rows, swap } = input;
    let max_length = cfg.budget.max_length;
    let (bos, eos) = (cfg.bos, cfg.eos);
    let null_text = cfg.null_text.clone();
    let encoder = match Encoder::new(tokenizer(), cfg) {
        Ok(e) => e,
        Err(e) => {
            // Only a budget too small for the template (or zero) is refused.
            let message = e.to_string();
            assert!(
                message.contains("max_length"),
                "unexpected error: {message}"
            );
            return;
        }
    };
    let original: Vec<RowTurns> = rows
        .iter()
        .map(|r| row_turns(r, &null_text, false))
        .collect();
    let enc = encoder
        .encode(&original, swap)
        .expect("encoding turn lists cannot fail with this tokenizer");
    let per_row = if swap == Swap::Both { 2 } else { 1 };
    check_shape(&enc, rows.len(), per_row);
    for i in 0..enc.len() {
        let ids = enc.row(i);
        assert!(
            ids.len() <= max_length,
            "row {i}: {} tokens > max_length {max_length}",
            ids.len()
        );
        let turns_total = enc.turns_total[i];
        let kept = enc.turns_kept[i];
        assert!(0 <= kept && kept <= turns_total, "{kept} of {turns_total}");
        assert_eq!(turns_total as usize, original[i / per_row].n_turns());
        assert_eq!(enc.repairs[i], original[i / per_row].repairs);
        if enc.truncated[i] {
            assert!(
                kept < turns_total || (ids.len() as i64) < enc.full_lengths[i],
                "row {i} truncated but nothing was cut"
            );
        } else {
            assert_eq!(kept, turns_total, "row {i} not truncated but turns dropped");
            assert_eq!(
                ids.len() as i64,
                enc.full_lengths[i],
                "row {i} not truncated but shorter than its full layout"
            );
        }
        if enc.full_lengths[i] as usize <= max_length {
            assert!(!enc.truncated[i], "row {i} fits but was truncated");
        }
        if let Some(b) = bos {
            assert_eq!(ids.first().copied(), Some(b as i32), "row {i}: no BOS");
        }
        if let Some(e) = eos {
            assert_eq!(ids.last().copied(), Some(e as i32), "row {i}: no EOS");
        }
        let expected_swapped = match swap {
            Swap::Original => false,
            Swap::Swapped => true,
            Swap::Both => i % 2 == 1,
        };
        assert_eq!(enc.is_swapped[i], expected_swapped);
    }
    // The swapped order of (P, A, B) is the original order of (P, B, A).
    let flipped: Vec<RowTurns> = rows
        .iter()
        .map(|r| row_turns(r, &null_text, true))
        .collect();
    let check_against = |mine: &Encoded, mine_swapped: bool, other: &[RowTurns]| {
        let theirs = encoder.encode(other, Swap::Original).unwrap();
        for r in 0..rows.len() {
            let i = match swap {
                Swap::Both => 2 * r + mine_swapped as usize,
                _ => r,
            };
            assert_eq!(
                row_of(mine, i),
                row_of(&theirs, r),
                "row {r} (swapped={mine_swapped})"
            );
        }
    };
    match swap {
        Swap::Original => check_against(&enc, false, &original),
        Swap::Swapped => check_against(&enc, true, &flipped),
        Swap::Both => {
            check_against(&enc, false, &original);
            check_against(&enc, true, &flipped);
        }
    }
    // The JSON cells of the same rows encode the same (ragged rows and
    // nulls are repaired and flagged the same way).
    let cells: [Vec<String>; 3] = [0, 1, 2].map(|f| {
        rows.iter()
            .map(|r| serde_json::to_string(&r[f]).unwrap())
            .collect()
    });
    let json = encoder
        .encode_json(&cells[0], &cells[1], &cells[2], swap)
        .expect("serialised rows parse");
    assert_eq!(json, enc, "encode_json differs from encode");
});
