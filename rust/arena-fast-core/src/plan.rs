//! Which rows go together: packs of whole sequences (padding-free) and
//! length-grouped padded batches, spread evenly over ranks. The rules, tie
//! breaks and the random generator are specified in docs/packing.md; the
//! pure-Python reference follows the same page.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use crate::error::{ConfigError, CoreError, PlanError, Result};

/// SplitMix64: tiny, fast and trivially re-implemented in Python, so that
/// the same (seed, epoch) gives the same plan everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    pub fn new(seed: u64, epoch: u64) -> Self {
        let mut rng = Self { state: seed };
        rng.state = rng.next_u64() ^ epoch;
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` by rejection (no modulo bias); `n >= 1`.
    pub fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let r = self.next_u64();
            if r >= threshold {
                return r % n;
            }
        }
    }

    /// Fisher-Yates, from the end.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackStrategy {
    /// Next fit in row order.
    Greedy,
    /// Next fit over units sorted by length, longest first.
    Sorted,
    /// Best fit decreasing.
    Bfd,
}

impl PackStrategy {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "greedy" => Ok(Self::Greedy),
            "sorted" => Ok(Self::Sorted),
            "bfd" => Ok(Self::Bfd),
            other => Err(invalid(format!(
                "strategy must be 'bfd', 'greedy' or 'sorted', got {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOrder {
    /// Training: shuffled mega-batches, sorted by length inside.
    Grouped,
    /// Inference: globally sorted by length, longest first.
    Desc,
}

impl BatchOrder {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "grouped" => Ok(Self::Grouped),
            "desc" => Ok(Self::Desc),
            other => Err(invalid(format!(
                "order must be 'grouped' or 'desc', got {other:?}"
            ))),
        }
    }
}

/// How the groups are spread over ranks and steps (shared by both planners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranks {
    pub world_size: usize,
    pub rank: usize,
    pub drop_last: bool,
}

impl Default for Ranks {
    fn default() -> Self {
        Self {
            world_size: 1,
            rank: 0,
            drop_last: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PackConfig {
    pub max_tokens: u64,
    pub strategy: PackStrategy,
    pub pair_swaps: bool,
    pub seed: u64,
    pub epoch: u64,
    pub shuffle: bool,
    pub ranks: Ranks,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub max_tokens: u64,
    pub max_rows: Option<u64>,
    pub order: BatchOrder,
    pub pair_swaps: bool,
    pub seed: u64,
    pub epoch: u64,
    pub megabatch: usize,
    pub ranks: Ranks,
}

/// One rank's share of a plan, plus figures over all ranks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// This rank's rows, its groups one after the other in step order.
    pub indices: Vec<i64>,
    /// Group `s` is `indices[offsets[s]..offsets[s + 1]]`.
    pub offsets: Vec<i64>,
    /// Real tokens per group of this rank.
    pub tokens: Vec<i64>,
    /// Cost per group of this rank: real tokens (packs) or rows x longest.
    pub cost: Vec<i64>,
    /// Real tokens per rank.
    pub rank_tokens: Vec<i64>,
    /// Rows left out by `drop_last`, ascending.
    pub dropped: Vec<i64>,
    pub fill: f64,
    pub imbalance: f64,
    /// Groups over all ranks, after splitting or dropping.
    pub num_groups: usize,
}

fn invalid(message: String) -> CoreError {
    ConfigError::Invalid(message).into()
}

/// Rows as units: a swap pair (2u, 2u + 1) or a single row u.
struct Units<'a> {
    lengths: &'a [i64],
    per: usize,
}

impl Units<'_> {
    fn count(&self) -> usize {
        self.lengths.len() / self.per
    }

    fn rows(&self, u: u32) -> std::ops::Range<usize> {
        let start = u as usize * self.per;
        start..start + self.per
    }

    fn tokens(&self, u: u32) -> u64 {
        self.rows(u).map(|r| self.lengths[r] as u64).sum()
    }

    fn longest(&self, u: u32) -> u64 {
        self.rows(u)
            .map(|r| self.lengths[r] as u64)
            .max()
            .unwrap_or(0)
    }

    fn describe(&self, u: u32) -> String {
        let rows = self.rows(u);
        if self.per == 2 {
            format!("rows {} and {} (a swap pair)", rows.start, rows.start + 1)
        } else {
            format!("row {}", rows.start)
        }
    }
}

fn units<'a>(lengths: &'a [i64], pair_swaps: bool) -> Result<Units<'a>> {
    if let Some((row, &len)) = lengths.iter().enumerate().find(|(_, &l)| l < 1) {
        return Err(PlanError::Length { row, length: len }.into());
    }
    if lengths.len() > u32::MAX as usize {
        return Err(invalid(format!(
            "at most {} rows can be planned at once",
            u32::MAX
        )));
    }
    if pair_swaps && lengths.len() % 2 == 1 {
        return Err(invalid(format!(
            "pair_swaps=True needs the rows of swap=\"both\" (an even count), got {} rows; \
             pass pair_swaps=False for rows without swap pairs",
            lengths.len()
        )));
    }
    Ok(Units {
        lengths,
        per: if pair_swaps { 2 } else { 1 },
    })
}

/// At least 1, and within int32 like the `cu_seq_lens` of a pack.
fn check_max_tokens(max_tokens: u64) -> Result<()> {
    if !(1..=i32::MAX as u64).contains(&max_tokens) {
        return Err(invalid(format!(
            "max_tokens must be in 1..={}, got {max_tokens}",
            i32::MAX
        )));
    }
    Ok(())
}

/// Units ordered by `key` descending, then by id, each with its key: one
/// sort of packed u64 keys (keys are at most `max_tokens` < 2^31). Carrying
/// the key along spares a random read per unit later.
fn descending(n: u32, key: impl Fn(u32) -> u64) -> Vec<(u32, u64)> {
    let mut keys: Vec<u64> = (0..n)
        .map(|u| ((u32::MAX as u64 - key(u)) << 32) | u as u64)
        .collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|k| (k as u32, u32::MAX as u64 - (k >> 32)))
        .collect()
}

/// The most ranks a plan is made for. A plan holds one total per rank
/// (`Plan::rank_tokens`), so an absurd `world_size` would be an allocation
/// that aborts the process rather than an error.
pub const MAX_WORLD_SIZE: usize = 1 << 20;

fn check_ranks(ranks: &Ranks) -> Result<()> {
    if ranks.world_size < 1 {
        return Err(invalid("world_size must be at least 1".into()));
    }
    if ranks.world_size > MAX_WORLD_SIZE {
        return Err(invalid(format!(
            "world_size must be at most {MAX_WORLD_SIZE}, got {}",
            ranks.world_size
        )));
    }
    if ranks.rank >= ranks.world_size {
        return Err(invalid(format!(
            "rank must be in 0..{}, got {}",
            ranks.world_size, ranks.rank
        )));
    }
    Ok(())
}

/// Units that go together, with their real tokens and longest row.
#[derive(Debug, Clone, Default)]
struct Group {
    units: Vec<u32>,
    tokens: u64,
    longest: u64,
}

impl Group {
    fn of(units: Vec<u32>, all: &Units<'_>) -> Self {
        let tokens = units.iter().map(|&u| all.tokens(u)).sum();
        let longest = units.iter().map(|&u| all.longest(u)).max().unwrap_or(0);
        Self {
            units,
            tokens,
            longest,
        }
    }
}

/// A unit as the cutters see it: id, real tokens, longest row.
type Item = (u32, u64, u64);

/// Next fit over `items`: a unit joins the open group while `fits(open,
/// item)` holds, otherwise the group is closed and a new one opened.
fn next_fit(items: &[Item], groups: &mut Vec<Group>, fits: impl Fn(&Group, &Item) -> bool) {
    let mut open = Group::default();
    for item in items {
        if !open.units.is_empty() && !fits(&open, item) {
            groups.push(std::mem::take(&mut open));
        }
        open.units.push(item.0);
        open.tokens += item.1;
        open.longest = open.longest.max(item.2);
    }
    if !open.units.is_empty() {
        groups.push(open);
    }
}

/// Buckets of bins by remaining capacity, with a two-level bitset to find
/// the smallest non-empty bucket at or above a size; each bucket yields its
/// lowest bin id. O(1)-ish per unit where a BTreeSet costs a tree walk.
struct Buckets {
    bins: Vec<BinaryHeap<Reverse<u32>>>,
    words: Vec<u64>,
    summary: Vec<u64>,
}

impl Buckets {
    fn new(capacity: usize) -> Self {
        let words = capacity / 64 + 1;
        Self {
            bins: (0..=capacity).map(|_| BinaryHeap::new()).collect(),
            words: vec![0; words],
            summary: vec![0; words / 64 + 1],
        }
    }

    fn insert(&mut self, remaining: usize, id: u32) {
        self.bins[remaining].push(Reverse(id));
        self.words[remaining / 64] |= 1 << (remaining % 64);
        self.summary[remaining / 4096] |= 1 << ((remaining / 64) % 64);
    }

    /// The lowest-id bin of the smallest remaining capacity >= `size`.
    fn take_at_least(&mut self, size: usize) -> Option<(usize, u32)> {
        let remaining = self.next_at_least(size)?;
        let Reverse(id) = self.bins[remaining].pop().expect("a set bit has a bin");
        if self.bins[remaining].is_empty() {
            self.words[remaining / 64] &= !(1 << (remaining % 64));
            if self.words[remaining / 64] == 0 {
                self.summary[remaining / 4096] &= !(1 << ((remaining / 64) % 64));
            }
        }
        Some((remaining, id))
    }

    fn next_at_least(&self, size: usize) -> Option<usize> {
        let w = size / 64;
        if w >= self.words.len() {
            return None;
        }
        let here = self.words[w] & (u64::MAX << (size % 64));
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        // The next non-empty word after w, through the summary.
        let next = w + 1;
        let mut s = next / 64;
        let mut mask = if next % 64 == 0 {
            u64::MAX
        } else {
            u64::MAX << (next % 64)
        };
        while s < self.summary.len() {
            let bits = self.summary[s] & mask;
            if bits != 0 {
                let word = s * 64 + bits.trailing_zeros() as usize;
                return Some(word * 64 + self.words[word].trailing_zeros() as usize);
            }
            s += 1;
            mask = u64::MAX;
        }
        None
    }
}

/// Bucket array bound: beyond this many tokens per pack the same rule runs
/// on a BTreeSet instead of a bucket per capacity value.
const BUCKETS_UP_TO: u64 = 1 << 22;

fn best_fit_decreasing(items: &[Item], max_tokens: u64) -> Vec<Group> {
    bfd_with(items, max_tokens, max_tokens <= BUCKETS_UP_TO)
}

fn bfd_with(items: &[Item], max_tokens: u64, buckets: bool) -> Vec<Group> {
    let smallest = items.last().map_or(0, |item| item.1);
    let mut bins: Vec<Group> = Vec::new();
    let place = |bins: &mut Vec<Group>, found: Option<(u64, u32)>, item: &Item| {
        let (id, remaining) = match found {
            Some((remaining, id)) => {
                let bin = &mut bins[id as usize];
                bin.units.push(item.0);
                bin.tokens += item.1;
                (id, remaining - item.1)
            }
            None => {
                bins.push(Group {
                    units: vec![item.0],
                    tokens: item.1,
                    longest: item.2,
                });
                ((bins.len() - 1) as u32, max_tokens - item.1)
            }
        };
        // A bin left with less room than the smallest unit takes nothing more.
        (remaining >= smallest).then_some((remaining, id))
    };
    if buckets {
        let mut open = Buckets::new(max_tokens as usize);
        for item in items {
            let found = open
                .take_at_least(item.1 as usize)
                .map(|(r, id)| (r as u64, id));
            if let Some((remaining, id)) = place(&mut bins, found, item) {
                open.insert(remaining as usize, id);
            }
        }
    } else {
        let mut open: BTreeSet<(u64, u32)> = BTreeSet::new();
        for item in items {
            let found = open.range((item.1, 0)..).next().copied();
            if let Some(key) = found {
                open.remove(&key);
            }
            if let Some(key) = place(&mut bins, found, item) {
                open.insert(key);
            }
        }
    }
    bins
}

pub fn plan_packs(lengths: &[i64], config: &PackConfig) -> Result<Plan> {
    check_max_tokens(config.max_tokens)?;
    check_ranks(&config.ranks)?;
    let units = units(lengths, config.pair_swaps)?;
    let n = units.count() as u32;
    let tokens: Vec<u64> = (0..n).map(|u| units.tokens(u)).collect();
    for u in 0..n {
        let t = tokens[u as usize];
        if t > config.max_tokens {
            return Err(PlanError::Unfit(format!(
                "{} {} {t} tokens, more than max_tokens={}",
                units.describe(u),
                if units.per == 2 { "need" } else { "has" },
                config.max_tokens
            ))
            .into());
        }
    }
    // Packs never look at the longest row; 0 keeps the items uniform.
    let items: Vec<Item> = if config.strategy == PackStrategy::Greedy {
        (0..n).map(|u| (u, tokens[u as usize], 0)).collect()
    } else {
        descending(n, |u| tokens[u as usize])
            .into_iter()
            .map(|(u, t)| (u, t, 0))
            .collect()
    };
    drop(tokens);
    let groups = match config.strategy {
        PackStrategy::Greedy | PackStrategy::Sorted => {
            let mut groups = Vec::new();
            next_fit(&items, &mut groups, |open, item| {
                open.tokens + item.1 <= config.max_tokens
            });
            groups
        }
        PackStrategy::Bfd => best_fit_decreasing(&items, config.max_tokens),
    };
    let mut rng = SplitMix64::new(config.seed, config.epoch);
    distribute(
        groups,
        &units,
        |g: &Group| g.tokens,
        Capacity::PerGroup(config.max_tokens),
        config.shuffle.then_some(&mut rng),
        &config.ranks,
    )
}

pub fn plan_batches(lengths: &[i64], config: &BatchConfig) -> Result<Plan> {
    check_max_tokens(config.max_tokens)?;
    if config.max_rows == Some(0) {
        return Err(invalid("max_rows must be at least 1 (or None)".into()));
    }
    if config.megabatch < 1 {
        return Err(invalid("megabatch must be at least 1".into()));
    }
    check_ranks(&config.ranks)?;
    let units = units(lengths, config.pair_swaps)?;
    let n = units.count() as u32;
    let per = units.per as u64;
    let max_rows = config.max_rows.unwrap_or(u64::MAX);
    for u in 0..n {
        let longest = units.longest(u);
        if per * longest > config.max_tokens {
            let need = if per == 2 {
                format!("need a padded size of 2 x {longest} = {}", 2 * longest)
            } else {
                format!("needs a padded size of {longest}")
            };
            return Err(PlanError::Unfit(format!(
                "{} {need} tokens, more than max_tokens={}",
                units.describe(u),
                config.max_tokens
            ))
            .into());
        }
        if per > max_rows {
            return Err(PlanError::Unfit(format!(
                "{} are {per} rows, more than max_rows={max_rows}",
                units.describe(u)
            ))
            .into());
        }
    }
    let item = |u: u32| (u, units.tokens(u), units.longest(u));
    let fits = |open: &Group, item: &Item| {
        let rows = (open.units.len() as u64 + 1) * per;
        rows * open.longest.max(item.2) <= config.max_tokens && rows <= max_rows
    };
    let mut rng = SplitMix64::new(config.seed, config.epoch);
    let mut groups = Vec::new();
    let shuffle = match config.order {
        BatchOrder::Grouped => {
            let mut order: Vec<u32> = (0..n).collect();
            rng.shuffle(&mut order);
            let mut items: Vec<Item> = order.into_iter().map(item).collect();
            for mega in items.chunks_mut(config.megabatch) {
                mega.sort_by_key(|item| Reverse(item.2));
                next_fit(mega, &mut groups, fits);
            }
            true
        }
        BatchOrder::Desc => {
            let items: Vec<Item> = descending(n, |u| units.longest(u))
                .into_iter()
                .map(|(u, _)| item(u))
                .collect();
            next_fit(&items, &mut groups, fits);
            false
        }
    };
    distribute(
        groups,
        &units,
        |g: &Group| g.units.len() as u64 * per * g.longest,
        Capacity::Padded,
        shuffle.then_some(&mut rng),
        &config.ranks,
    )
}

/// What `fill` divides by.
enum Capacity {
    /// `max_tokens` per group (packs).
    PerGroup(u64),
    /// Each group's own cost (padded batches).
    Padded,
}

/// Spread groups over ranks and steps: equal step counts (split or drop),
/// steps of similar cost, step order shuffled, heaviest slot rotating.
fn distribute(
    mut groups: Vec<Group>,
    units: &Units<'_>,
    cost: impl Fn(&Group) -> u64,
    capacity: Capacity,
    rng: Option<&mut SplitMix64>,
    ranks: &Ranks,
) -> Result<Plan> {
    let w = ranks.world_size;
    let by_cost = |groups: &[Group]| -> Vec<usize> {
        let mut order: Vec<(Reverse<u64>, usize)> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (Reverse(cost(g)), i))
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, i)| i).collect()
    };
    let mut dropped: Vec<i64> = Vec::new();
    let remainder = groups.len() % w;
    if remainder != 0 {
        if ranks.drop_last {
            let mut order = if rng.is_some() {
                by_cost(&groups)
            } else {
                (0..groups.len()).collect()
            };
            let mut keep = vec![true; groups.len()];
            for g in order.split_off(order.len() - remainder) {
                keep[g] = false;
                for &u in &groups[g].units {
                    dropped.extend(units.rows(u).map(|r| r as i64));
                }
            }
            dropped.sort_unstable();
            let mut kept = keep.iter();
            groups.retain(|_| *kept.next().expect("one flag per group"));
        } else {
            while groups.len() % w != 0 {
                // The first group with the most units.
                let (pos, most) = groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (i, g.units.len()))
                    .max_by_key(|&(i, len)| (len, Reverse(i)))
                    .expect("at least one group when the count is not a multiple");
                if most < 2 {
                    return Err(invalid(format!(
                        "cannot give {w} ranks the same number of steps: only {} groups of \
                         one unit each; use drop_last=True or fewer ranks",
                        groups.len()
                    )));
                }
                let rest = groups[pos].units.split_off(most.div_ceil(2));
                let head = std::mem::take(&mut groups[pos].units);
                groups[pos] = Group::of(head, units);
                groups.insert(pos + 1, Group::of(rest, units));
            }
        }
    }
    let costs: Vec<u64> = groups.iter().map(&cost).collect();
    let step_order: Vec<usize> = if rng.is_some() {
        by_cost(&groups)
    } else {
        (0..groups.len()).collect()
    };
    let num_steps = groups.len() / w;
    let mut steps: Vec<usize> = (0..num_steps).collect();
    if let Some(rng) = rng {
        rng.shuffle(&mut steps);
    }
    let mut plan = Plan {
        offsets: Vec::with_capacity(num_steps + 1),
        rank_tokens: vec![0; w],
        dropped,
        num_groups: groups.len(),
        ..Plan::default()
    };
    plan.offsets.push(0);
    let mut sum_max = 0u64;
    let mut members: Vec<(usize, usize)> = Vec::with_capacity(w);
    for (t, &s) in steps.iter().enumerate() {
        // (position in the step order, group), heaviest first
        members.clear();
        members.extend((s * w..s * w + w).map(|p| (p, step_order[p])));
        members.sort_unstable_by_key(|&(p, g)| (Reverse(costs[g]), p));
        sum_max += costs[members[0].1];
        for r in 0..w {
            let g = members[(r + t) % w].1;
            plan.rank_tokens[r] += groups[g].tokens as i64;
            if r == ranks.rank {
                for &u in &groups[g].units {
                    plan.indices.extend(units.rows(u).map(|r| r as i64));
                }
                plan.offsets.push(plan.indices.len() as i64);
                plan.tokens.push(groups[g].tokens as i64);
                plan.cost.push(costs[g] as i64);
            }
        }
    }
    let real: u64 = groups.iter().map(|g| g.tokens).sum();
    let total_cost: u64 = costs.iter().sum();
    let capacity = match capacity {
        Capacity::PerGroup(max_tokens) => groups.len() as u64 * max_tokens,
        Capacity::Padded => total_cost,
    };
    plan.fill = if capacity == 0 {
        0.0
    } else {
        real as f64 / capacity as f64
    };
    plan.imbalance = if w == 1 || total_cost == 0 {
        0.0
    } else {
        (sum_max * w as u64) as f64 / total_cost as f64 - 1.0
    };
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs(lengths: &[i64], strategy: PackStrategy, pairs: bool, ranks: Ranks) -> Plan {
        let config = PackConfig {
            max_tokens: 100,
            strategy,
            pair_swaps: pairs,
            seed: 7,
            epoch: 0,
            shuffle: true,
            ranks,
        };
        plan_packs(lengths, &config).unwrap()
    }

    /// `n` lengths spread deterministically over 1..=60.
    fn spread(n: i64) -> Vec<i64> {
        (0..n).map(|i| 1 + (i * 37) % 60).collect()
    }

    #[test]
    fn splitmix_matches_the_published_vector() {
        let mut rng = SplitMix64::from_state(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn buckets_and_tree_make_the_same_packs() {
        let mut rng = SplitMix64::new(11, 0);
        for max_tokens in [1u64, 7, 64, 100, 4097, 20000] {
            let n = 3000u32;
            let mut sizes: Vec<u64> = (0..n).map(|_| 1 + rng.below(max_tokens)).collect();
            sizes.sort_unstable_by(|a, b| b.cmp(a));
            let items: Vec<Item> = sizes
                .iter()
                .enumerate()
                .map(|(u, &t)| (u as u32, t, 0))
                .collect();
            let a = bfd_with(&items, max_tokens, true);
            let b = bfd_with(&items, max_tokens, false);
            let units = |g: &Vec<Group>| g.iter().map(|g| g.units.clone()).collect::<Vec<_>>();
            assert_eq!(units(&a), units(&b), "max_tokens {max_tokens}");
            assert!(a.iter().all(|g| g.tokens <= max_tokens));
        }
    }

    #[test]
    fn shuffle_is_a_permutation_and_below_is_in_range() {
        let mut rng = SplitMix64::new(3, 1);
        let mut v: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
        for n in 1..50 {
            assert!(rng.below(n) < n);
        }
    }

    #[test]
    fn bfd_packs_every_row_once_within_capacity() {
        let lengths = spread(200);
        for strategy in [
            PackStrategy::Bfd,
            PackStrategy::Greedy,
            PackStrategy::Sorted,
        ] {
            let plan = packs(&lengths, strategy, true, Ranks::default());
            let mut seen = plan.indices.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..200).collect::<Vec<i64>>());
            for s in 0..plan.offsets.len() - 1 {
                let rows = &plan.indices[plan.offsets[s] as usize..plan.offsets[s + 1] as usize];
                let sum: i64 = rows.iter().map(|&r| lengths[r as usize]).sum();
                assert!(sum <= 100);
                assert_eq!(sum, plan.tokens[s]);
                for pair in rows.chunks(2) {
                    assert_eq!(pair[0] % 2, 0);
                    assert_eq!(pair[1], pair[0] + 1);
                }
            }
        }
        let bfd = packs(&lengths, PackStrategy::Bfd, false, Ranks::default());
        let greedy = packs(&lengths, PackStrategy::Greedy, false, Ranks::default());
        assert!(bfd.fill > greedy.fill);
    }

    #[test]
    fn ranks_get_equal_steps_and_cover_every_row() {
        let lengths = spread(97);
        for w in 1..5 {
            let mut all = Vec::new();
            let mut steps = None;
            for rank in 0..w {
                let plan = packs(
                    &lengths,
                    PackStrategy::Bfd,
                    false,
                    Ranks {
                        world_size: w,
                        rank,
                        drop_last: false,
                    },
                );
                assert_eq!(*steps.get_or_insert(plan.tokens.len()), plan.tokens.len());
                all.extend(plan.indices);
            }
            all.sort_unstable();
            assert_eq!(all, (0..97).collect::<Vec<i64>>());
        }
    }

    #[test]
    fn drop_last_reports_what_it_drops() {
        let lengths = spread(97);
        let ranks = |rank| Ranks {
            world_size: 3,
            rank,
            drop_last: true,
        };
        let plans: Vec<Plan> = (0..3)
            .map(|r| packs(&lengths, PackStrategy::Bfd, false, ranks(r)))
            .collect();
        let mut all: Vec<i64> = plans.iter().flat_map(|p| p.indices.clone()).collect();
        all.extend(&plans[0].dropped);
        all.sort_unstable();
        assert_eq!(all, (0..97).collect::<Vec<i64>>());
        assert_eq!(plans[0].num_groups % 3, 0);
    }

    #[test]
    fn too_long_and_empty_rows_are_errors() {
        let config = PackConfig {
            max_tokens: 10,
            strategy: PackStrategy::Bfd,
            pair_swaps: true,
            seed: 0,
            epoch: 0,
            shuffle: true,
            ranks: Ranks::default(),
        };
        let err = plan_packs(&[5, 6], &config).unwrap_err().to_string();
        assert!(err.contains("rows 0 and 1"), "{err}");
        let err = plan_packs(&[5, 0], &config).unwrap_err().to_string();
        assert!(err.contains("row 1"), "{err}");
        assert!(plan_packs(&[5, 1, 3], &config).is_err());
    }

    #[test]
    fn grouped_batches_respect_padded_size_and_rows() {
        let lengths = spread(300);
        let config = BatchConfig {
            max_tokens: 240,
            max_rows: Some(6),
            order: BatchOrder::Grouped,
            pair_swaps: true,
            seed: 1,
            epoch: 2,
            megabatch: 16,
            ranks: Ranks::default(),
        };
        let plan = plan_batches(&lengths, &config).unwrap();
        let mut seen = plan.indices.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..300).collect::<Vec<i64>>());
        for s in 0..plan.tokens.len() {
            let rows = &plan.indices[plan.offsets[s] as usize..plan.offsets[s + 1] as usize];
            let longest = rows.iter().map(|&r| lengths[r as usize]).max().unwrap();
            assert!(rows.len() <= 6);
            assert_eq!(plan.cost[s], rows.len() as i64 * longest);
            assert!(plan.cost[s] <= 240);
        }
        let other = plan_batches(&lengths, &BatchConfig { epoch: 3, ..config }).unwrap();
        assert_ne!(plan.indices, other.indices);
    }
}
