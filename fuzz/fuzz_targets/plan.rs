//! The packer and the padded batcher (`plan::plan_packs`,
//! `plan::plan_batches`) over arbitrary lengths, budgets, strategies, orders
//! and ranks.
//!
//! Invariants, over all ranks of one configuration: no panic; every row is
//! in exactly one step of one rank, or in `dropped` (only with `drop_last`);
//! every rank has the same number of steps; a pack holds at most
//! `max_tokens` real tokens, a padded batch at most `max_tokens` rows x
//! longest and at most `max_rows` rows; swap pairs stay together; the
//! reported tokens, costs, rank totals, fill and imbalance add up; the same
//! configuration gives the same plan; and a configuration that is valid is
//! planned (with `drop_last`, always).

#![no_main]

use arbitrary::Unstructured;
use arena_fast_core::plan::{
    plan_batches, plan_packs, BatchConfig, BatchOrder, PackConfig, PackStrategy, Plan, Ranks,
    MAX_WORLD_SIZE,
};
use libfuzzer_sys::fuzz_target;

/// Ranks planned (and cross-checked) one by one; larger world sizes are
/// planned for a few ranks only.
const ALL_RANKS_UP_TO: usize = 12;

#[derive(Debug, Clone, Copy)]
enum Config {
    Packs(PackConfig),
    Batches(BatchConfig),
}

impl Config {
    fn ranks(&self) -> Ranks {
        match self {
            Config::Packs(c) => c.ranks,
            Config::Batches(c) => c.ranks,
        }
    }

    fn with_rank(mut self, rank: usize) -> Self {
        match &mut self {
            Config::Packs(c) => c.ranks.rank = rank,
            Config::Batches(c) => c.ranks.rank = rank,
        }
        self
    }

    fn plan(&self, lengths: &[i64]) -> Result<Plan, String> {
        match self {
            Config::Packs(c) => plan_packs(lengths, c),
            Config::Batches(c) => plan_batches(lengths, c),
        }
        .map_err(|e| e.to_string())
    }
}

fn max_tokens(u: &mut Unstructured<'_>) -> arbitrary::Result<u64> {
    Ok(match u.int_in_range(0..=15)? {
        // Anything, including 0 and past i32::MAX (errors).
        0 => u.arbitrary()?,
        // The BTreeSet path of best fit (beyond 2^22 tokens per pack).
        1 => (1 << 22) + u.int_in_range(0..=1 << 16)?,
        2 => u.int_in_range(1..=1 << 16)?,
        _ => u.int_in_range(1..=512)?,
    })
}

fn lengths(u: &mut Unstructured<'_>, max_tokens: u64) -> arbitrary::Result<Vec<i64>> {
    let n = u.int_in_range(0..=300)?;
    let top = max_tokens.clamp(1, 1 << 20) as i64;
    let wild = u.ratio(1, 16)?;
    (0..n)
        .map(|_| {
            Ok(if wild && u.ratio(1, 32)? {
                // Out of range: 0, negative, huge.
                u.arbitrary()?
            } else if u.ratio(1, 4)? {
                u.int_in_range(1..=top)?
            } else {
                u.int_in_range(1..=(top / 4).max(1))?
            })
        })
        .collect()
}

fn ranks(u: &mut Unstructured<'_>) -> arbitrary::Result<Ranks> {
    let world_size = match u.int_in_range(0..=31)? {
        0 => u.arbitrary()?,
        1 => 0,
        2 => u.int_in_range(1..=1 << 12)?,
        3 => MAX_WORLD_SIZE + u.int_in_range(0..=1)?,
        _ => u.int_in_range(1..=8)?,
    };
    Ok(Ranks {
        world_size,
        rank: 0,
        drop_last: u.arbitrary()?,
    })
}

fn config(u: &mut Unstructured<'_>) -> arbitrary::Result<(Config, Vec<i64>)> {
    let max_tokens = max_tokens(u)?;
    let lengths = lengths(u, max_tokens)?;
    let pair_swaps = u.arbitrary()?;
    let seed = u.arbitrary()?;
    let epoch = u.int_in_range(0..=3)?;
    let ranks = ranks(u)?;
    let config = if u.arbitrary()? {
        Config::Packs(PackConfig {
            max_tokens,
            strategy: *u.choose(&[
                PackStrategy::Greedy,
                PackStrategy::Sorted,
                PackStrategy::Bfd,
            ])?,
            pair_swaps,
            seed,
            epoch,
            shuffle: u.arbitrary()?,
            ranks,
        })
    } else {
        Config::Batches(BatchConfig {
            max_tokens,
            max_rows: match u.int_in_range(0..=3)? {
                0 => None,
                1 => Some(u.arbitrary()?),
                _ => Some(u.int_in_range(0..=16)?),
            },
            order: *u.choose(&[BatchOrder::Grouped, BatchOrder::Desc])?,
            pair_swaps,
            seed,
            epoch,
            megabatch: if u.ratio(1, 16)? {
                0
            } else {
                u.int_in_range(1..=64)?
            },
            ranks,
        })
    };
    Ok((config, lengths))
}

/// Whether the configuration is one that must be planned (with drop_last).
fn must_plan(config: &Config, lengths: &[i64]) -> bool {
    let (max_tokens, pair_swaps, ranks) = match config {
        Config::Packs(c) => (c.max_tokens, c.pair_swaps, c.ranks),
        Config::Batches(c) => (c.max_tokens, c.pair_swaps, c.ranks),
    };
    let per = if pair_swaps { 2 } else { 1 };
    if !(1..=i32::MAX as u64).contains(&max_tokens)
        || ranks.world_size == 0
        || ranks.world_size > MAX_WORLD_SIZE
        || ranks.rank >= ranks.world_size
        || lengths.iter().any(|&l| l < 1)
        || !lengths.len().is_multiple_of(per)
    {
        return false;
    }
    let fits = lengths.chunks(per).all(|unit| match config {
        Config::Packs(_) => unit.iter().map(|&l| l as u128).sum::<u128>() <= max_tokens as u128,
        Config::Batches(c) => {
            let longest = unit.iter().copied().max().unwrap_or(0) as u128;
            per as u128 * longest <= max_tokens as u128
                && c.max_rows.is_none_or(|m| per as u64 <= m)
        }
    });
    let batch_ok = match config {
        Config::Packs(_) => true,
        Config::Batches(c) => c.megabatch >= 1 && c.max_rows != Some(0),
    };
    fits && batch_ok && ranks.drop_last
}

fn check(config: &Config, lengths: &[i64], plans: &[(usize, Plan)]) {
    let ranks = config.ranks();
    let w = ranks.world_size;
    let n = lengths.len();
    let per = match config {
        Config::Packs(c) => c.pair_swaps,
        Config::Batches(c) => c.pair_swaps,
    } as usize
        + 1;
    let first = &plans[0].1;
    let steps = first.offsets.len() - 1;
    assert_eq!(
        first.num_groups,
        steps * w,
        "groups {} over {w} ranks",
        first.num_groups
    );
    assert_eq!(first.rank_tokens.len(), w);
    if !ranks.drop_last {
        assert!(first.dropped.is_empty());
    }
    assert!(
        first.dropped.windows(2).all(|d| d[0] < d[1]),
        "dropped not ascending"
    );
    let mut seen = vec![false; n];
    for &r in &first.dropped {
        assert!(
            !std::mem::replace(&mut seen[r as usize], true),
            "row {r} dropped twice"
        );
    }
    let all_ranks = plans.len() == w;
    for (rank, plan) in plans {
        let rank = *rank;
        assert_eq!(plan.offsets.len() - 1, steps, "rank {rank}: step count");
        assert_eq!(plan.num_groups, first.num_groups);
        assert_eq!(
            plan.rank_tokens, first.rank_tokens,
            "rank {rank}: rank_tokens"
        );
        assert_eq!(plan.dropped, first.dropped, "rank {rank}: dropped");
        assert_eq!(plan.fill.to_bits(), first.fill.to_bits());
        assert_eq!(plan.imbalance.to_bits(), first.imbalance.to_bits());
        assert_eq!(plan.offsets[0], 0);
        assert_eq!(*plan.offsets.last().unwrap() as usize, plan.indices.len());
        assert_eq!(plan.tokens.len(), steps);
        assert_eq!(plan.cost.len(), steps);
        let mut rank_total = 0i64;
        for s in 0..steps {
            let (a, b) = (plan.offsets[s] as usize, plan.offsets[s + 1] as usize);
            assert!(a < b, "rank {rank} step {s} is empty");
            let rows = &plan.indices[a..b];
            let tokens: i64 = rows.iter().map(|&r| lengths[r as usize]).sum();
            let longest = rows.iter().map(|&r| lengths[r as usize]).max().unwrap();
            assert_eq!(plan.tokens[s], tokens, "rank {rank} step {s}: tokens");
            rank_total += tokens;
            match config {
                Config::Packs(c) => {
                    assert!(tokens as u64 <= c.max_tokens, "pack of {tokens} tokens");
                    assert_eq!(plan.cost[s], tokens);
                }
                Config::Batches(c) => {
                    let cost = rows.len() as i64 * longest;
                    assert_eq!(plan.cost[s], cost, "rank {rank} step {s}: cost");
                    assert!(cost as u64 <= c.max_tokens, "batch costs {cost}");
                    if let Some(m) = c.max_rows {
                        assert!(rows.len() as u64 <= m, "{} rows > max_rows {m}", rows.len());
                    }
                }
            }
            assert!(rows.len().is_multiple_of(per));
            for unit in rows.chunks(per) {
                assert!(
                    (unit[0] as usize).is_multiple_of(per),
                    "a unit starts at an odd row"
                );
                if per == 2 {
                    assert_eq!(unit[1], unit[0] + 1, "swap pair split: {unit:?}");
                }
            }
            for &r in rows {
                assert!((0..n as i64).contains(&r), "row {r} out of range");
                assert!(
                    !std::mem::replace(&mut seen[r as usize], true),
                    "row {r} planned twice"
                );
            }
        }
        assert_eq!(
            plan.rank_tokens[rank], rank_total,
            "rank {rank}: its own total"
        );
    }
    if all_ranks {
        assert!(seen.iter().all(|&s| s), "rows lost: {:?}", {
            let lost: Vec<usize> = (0..n).filter(|&r| !seen[r]).collect();
            lost
        });
        let kept: i64 = (0..n)
            .filter(|r| first.dropped.binary_search(&(*r as i64)).is_err())
            .map(|r| lengths[r])
            .sum();
        assert_eq!(first.rank_tokens.iter().sum::<i64>(), kept, "rank totals");
    }
    assert!(first.fill.is_finite() && (0.0..=1.0 + 1e-12).contains(&first.fill));
    assert!(first.imbalance.is_finite() && first.imbalance >= -1e-12);
    if first.num_groups == 0 {
        assert_eq!(first.fill, 0.0);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((config, lengths)) = config(&mut u) else {
        return;
    };
    if std::env::var_os("ARENA_FUZZ_DEBUG").is_some() {
        eprintln!("{config:#?}\nlengths: {lengths:?}");
    }
    let w = config.ranks().world_size;
    let picked: Vec<usize> = if w <= ALL_RANKS_UP_TO {
        (0..w.max(1)).collect()
    } else {
        vec![0, w / 2, w - 1]
    };
    let mut plans = Vec::new();
    let mut error = None;
    for &rank in &picked {
        match config.with_rank(rank).plan(&lengths) {
            Ok(plan) => {
                assert!(error.is_none(), "rank {rank} planned where another failed");
                plans.push((rank, plan));
            }
            Err(e) => {
                assert!(
                    plans.is_empty(),
                    "rank {rank} failed where another planned: {e}"
                );
                error = Some(e);
            }
        }
    }
    if let Some(e) = error {
        assert!(
            !must_plan(&config, &lengths),
            "a valid configuration failed: {e}"
        );
        return;
    }
    check(&config, &lengths, &plans);
    // Deterministic: the same configuration, the same plan.
    let again = config.with_rank(plans[0].0).plan(&lengths).unwrap();
    assert_eq!(again, plans[0].1);
});
