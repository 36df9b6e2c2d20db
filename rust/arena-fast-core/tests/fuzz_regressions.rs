//! Inputs the fuzz targets (fuzz/, `scripts/fuzz.sh`) found crashing, kept
//! as tests. The inputs themselves are in fuzz/seeds/<target>/ and are
//! replayed by every fuzz run.

use std::sync::Arc;

use arena_fast_core::budget::Strategy;
use arena_fast_core::plan::{
    plan_batches, plan_packs, BatchConfig, BatchOrder, PackConfig, PackStrategy, Ranks,
    MAX_WORLD_SIZE,
};
use arena_fast_core::template::PRESETS;
use arena_fast_core::{
    ArenaTokenizer, BudgetConfig, Encoder, EncoderConfig, RowTurns, Swap, Template,
};

const DEMO_TOKENIZER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../python/arena_fast/data/demo_tokenizer/tokenizer.json"
));

fn demo_tokenizer() -> Arc<ArenaTokenizer> {
    Arc::new(ArenaTokenizer::from_json(DEMO_TOKENIZER).unwrap())
}

fn encoder(tok: &Arc<ArenaTokenizer>, template: &str, strategy: Strategy, max: usize) -> Encoder {
    let cfg = EncoderConfig {
        template: Template::preset(template).unwrap(),
        budget: BudgetConfig::new(max, strategy),
        joint: false,
        bos: tok.token_to_id("<bos>"),
        eos: tok.token_to_id("<eos>"),
        split_special_tokens: true,
        null_text: String::new(),
        num_threads: None,
    };
    Encoder::new(tok.clone(), cfg).unwrap()
}

fn long_row(turns: usize) -> RowTurns {
    let field = |name: &str| (1..=turns).map(|t| format!("{name} {t}")).collect();
    RowTurns::new(field("question"), field("first"), field("second"), 0)
}

/// fuzz `encode`: a row of more turns than the encoder tokenizes headers for
/// up front (64) tokenized the extra headers through the thread's word
/// cache while the encoder held it: "RefCell already borrowed", a panic on
/// every conversation of 65 turns or more.
#[test]
fn more_turns_than_cached_headers() {
    let tok = demo_tokenizer();
    let rows = [long_row(65), long_row(3), long_row(130)];
    for template in PRESETS {
        for strategy in [
            Strategy::FourthPlace,
            Strategy::Fair,
            Strategy::DropOldest,
            Strategy::None,
        ] {
            for max_length in [400, 100_000] {
                let enc = encoder(&tok, template, strategy, max_length);
                let out = enc.encode(&rows, Swap::Both).unwrap();
                assert_eq!(out.len(), 2 * rows.len());
                for i in 0..out.len() {
                    assert!(out.row(i).len() <= max_length, "{template} {strategy:?}");
                }
                assert_eq!(out.turns_total, vec![65, 65, 3, 3, 130, 130]);
                if max_length == 100_000 {
                    assert!(!out.truncated.iter().any(|&t| t), "{template} {strategy:?}");
                }
            }
        }
    }
    // Headers past the 64th are the template's, numbered on: the same ids
    // as text tokenized whole.
    let enc = encoder(&tok, "rounds", Strategy::None, 100_000);
    let out = enc.encode(&[long_row(66)], Swap::Original).unwrap();
    let ids: Vec<u32> = out.row(0).iter().map(|&t| t as u32).collect();
    let text = tok.decode(&ids).unwrap();
    for header in ["## Round 64:", "## Round 65:", "## Round 66:"] {
        assert!(text.contains(header), "{header} missing");
    }
    let header = |n: usize| {
        tok.encode_whole(&format!("\n\n## Round {n}:"), false)
            .unwrap()
    };
    for n in [65, 66] {
        let h = header(n);
        assert!(
            ids.windows(h.len()).any(|w| w == &h[..]),
            "header {n} is not tokenized as text"
        );
    }
}

/// fuzz `plan`: a plan keeps one token total per rank, so `world_size` of
/// 2^34 allocated 128 GiB and aborted the process (not a panic: nothing
/// could catch it), and 2^62 panicked with "capacity overflow".
#[test]
fn absurd_world_size_is_an_error() {
    let ranks = |world_size| Ranks {
        world_size,
        rank: 0,
        drop_last: true,
    };
    let packs = |lengths: &[i64], world_size| {
        plan_packs(
            lengths,
            &PackConfig {
                max_tokens: 100,
                strategy: PackStrategy::Bfd,
                pair_swaps: false,
                seed: 0,
                epoch: 0,
                shuffle: true,
                ranks: ranks(world_size),
            },
        )
    };
    let batches = |lengths: &[i64], world_size| {
        plan_batches(
            lengths,
            &BatchConfig {
                max_tokens: 100,
                max_rows: None,
                order: BatchOrder::Grouped,
                pair_swaps: false,
                seed: 0,
                epoch: 0,
                megabatch: 8,
                ranks: ranks(world_size),
            },
        )
    };
    for world_size in [MAX_WORLD_SIZE + 1, 1 << 34, 1 << 62, usize::MAX] {
        for lengths in [&[][..], &[5, 7, 9][..]] {
            let err = packs(lengths, world_size).unwrap_err().to_string();
            assert!(err.contains("world_size"), "{err}");
            let err = batches(lengths, world_size).unwrap_err().to_string();
            assert!(err.contains("world_size"), "{err}");
        }
    }
    // The largest allowed is planned: everything dropped, one total per rank.
    let plan = packs(&[5, 7, 9], MAX_WORLD_SIZE).unwrap();
    assert_eq!(plan.rank_tokens.len(), MAX_WORLD_SIZE);
    assert_eq!(plan.dropped, vec![0, 1, 2]);
    assert!(plan.indices.is_empty());
}

/// fuzz `encode`: `fair` counted a segment of `c` content tokens,
/// `min_segment_tokens < c < min_segment_tokens + m`, as needing
/// `min_segment_tokens + m` (`minpart`), more than the whole segment, so a
/// row that fits whole could lose its oldest turns. Now
/// `minpart(c) = min(c, min_segment_tokens + m)` (budget.rs, docs/encoding.md
/// and `arena_fast.reference.budget`).
#[test]
fn fair_keeps_a_row_that_fits_whole() {
    use arena_fast_core::budget::{self, Frame, TurnLens};
    let headers = [0usize; 4];
    let frame = Frame {
        fixed: 0,
        headers: &headers,
        suffix: [0; 3],
        marker: 5,
    };
    let mut cfg = BudgetConfig::new(36, Strategy::Fair);
    cfg.min_segment_tokens = 4;
    // Two turns of three 6-token segments: 36 tokens, exactly the budget.
    let turn = TurnLens {
        seg: [6; 3],
        protect: [0; 3],
    };
    let plan = budget::plan(&cfg, &frame, &[turn, turn]);
    assert_eq!(budget::planned_len(&frame, &[turn, turn], &plan), 36);
    assert_eq!(plan.turns_kept, 2, "{plan:?}");
    assert!(!plan.truncated);
}

/// fuzz `collate`: a huge `pad_to_multiple_of` made a padded batch of
/// rows x width cells that could not be allocated, which aborts the process
/// (`af.collate_padded(enc, idx, pad_to_multiple_of=2**32 - 1)` on 64 rows:
/// 2 TiB), or overflowed `rows * width`. A padded batch now holds at most
/// i32::MAX cells, like a pack.
#[test]
fn huge_padding_multiple_is_an_error() {
    use arena_fast_core::collate::{collate_padded, Side};
    let ids: Vec<i32> = (0..64).collect();
    let offsets: Vec<i64> = (0..=64).collect();
    let idx: Vec<i64> = (0..64).collect();
    for multiple in [1 << 26, (1 << 32) - 1, 1 << 40, usize::MAX / 2, usize::MAX] {
        for side in [Side::Right, Side::Left] {
            let err = collate_padded(&ids, &offsets, &idx, 0, side, Some(multiple))
                .unwrap_err()
                .to_string();
            assert!(err.contains("padded batch"), "{err}");
        }
    }
    // Up to i32::MAX cells are made (one row of width 2^31 - 1 is 16 GiB:
    // check the largest multiple that is still cheap, and the arithmetic).
    let p = collate_padded(&ids, &offsets, &idx[..2], 7, Side::Right, Some(1 << 20)).unwrap();
    assert_eq!((p.rows, p.width), (2, 1 << 20));
    assert_eq!(p.input_ids[1], 7);
    assert_eq!(p.attention_mask.iter().sum::<i64>(), 2);
}
