//! Cross-validation folds without leaks: every row of one prompt (one key)
//! lands in the same fold, and each fold gets about its share of every label
//! class. Greedy, largest group first, with exact integer costs so that the
//! pure-Python reference (`arena_fast.reference.folds`) gives the same folds
//! bit for bit. The rules are specified in docs/dataset.md ("Folds").

use std::cmp::{Ordering, Reverse};

use crate::error::{CollateError, ConfigError, CoreError, Result};

/// Label classes: 0 = A wins, 1 = B wins, 2 = tie, 3 = unlabelled or other.
pub const NUM_CLASSES: usize = 4;

/// The most folds an `i8` fold id can name.
pub const MAX_FOLDS: usize = i8::MAX as usize;

/// The most rows one call takes: below 2^32 every class total fits in 32
/// bits, which is what bounds the exact costs (see [`Wide`]).
pub const MAX_ROWS: usize = u32::MAX as usize;

/// The SplitMix64 output function (the finaliser that `plan::SplitMix64`
/// applies to its state), used to order equal-sized groups by a seeded hash
/// of their key: a different seed gives a different but reproducible order.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An unsigned integer of 256 bits (`hi * 2^128 + lo`), just wide enough to
/// hold a fold's cost exactly: a term `g * count * W` is below
/// 2^62 * 2^96 = 2^158 when every total is below 2^32, and four terms below
/// 2^160. The derived order compares `hi` first, which is numeric order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Wide {
    hi: u128,
    lo: u128,
}

impl Wide {
    /// `a * w`, exactly.
    fn product(a: u64, w: u128) -> Self {
        let low = u128::from(a) * (w & u128::from(u64::MAX));
        let high = u128::from(a) * (w >> 64);
        let (lo, carry) = low.overflowing_add(high << 64);
        Self {
            hi: (high >> 64) + u128::from(carry),
            lo,
        }
    }

    fn add(self, other: Self) -> Self {
        let (lo, carry) = self.lo.overflowing_add(other.lo);
        Self {
            hi: self.hi + other.hi + u128::from(carry),
            lo,
        }
    }
}

/// Rows sharing one key, as the placing loop reads it: the sort fields and
/// the class counts side by side, so that the loop walks memory in order.
struct Group {
    /// `mix(key ^ mix(seed))`: orders groups of equal size.
    hash: u64,
    key: u64,
    counts: [u32; NUM_CLASSES],
    size: u32,
    /// Its place in key order: its rows are `order[starts[index]..starts[index + 1]]`.
    index: u32,
}

/// The weights `W[c]`: the product of the totals of every other class that
/// occurs. `g[c] * count[f][c] * W[c]` is then `g[c] * count[f][c] / T[c]`
/// times the common factor (the product of all non-zero totals), so costs
/// compare as the ratios would, without a division. Below 2^96 for totals
/// below 2^32.
fn weights(totals: &[u64; NUM_CLASSES]) -> [u128; NUM_CLASSES] {
    std::array::from_fn(|c| {
        (0..NUM_CLASSES)
            .filter(|&other| other != c && totals[other] > 0)
            .map(|other| u128::from(totals[other]))
            .product()
    })
}

/// What putting a group with class counts `group` into a fold that already
/// holds `fold` costs: rows of the group's classes that fold already has,
/// each class weighted by the inverse of its total.
fn cost(
    group: &[u32; NUM_CLASSES],
    fold: &[u64; NUM_CLASSES],
    weights: &[u128; NUM_CLASSES],
) -> Wide {
    let mut sum = Wide::default();
    for c in 0..NUM_CLASSES {
        if group[c] > 0 {
            sum = sum.add(Wide::product(u64::from(group[c]) * fold[c], weights[c]));
        }
    }
    sum
}

/// Keys or classes folds cannot be made of: the core's generic input error,
/// which the bindings raise as `InputError` (as for bad batch inputs).
fn input(message: String) -> CoreError {
    CollateError::Input(message).into()
}

/// The one check of a fold count `k`, as the caller got it (the bindings
/// pass Python's int, which may be negative): 1 to `MAX_FOLDS`.
pub fn check_folds(k: i128) -> Result<usize, ConfigError> {
    match usize::try_from(k) {
        Ok(k) if (1..=MAX_FOLDS).contains(&k) => Ok(k),
        _ => Err(ConfigError::Invalid(format!(
            "k (the number of folds) must be between 1 and {MAX_FOLDS}, got {k}"
        ))),
    }
}

/// Refuses a bad `k` (a configuration error) first, then mismatched lengths,
/// too many rows and the first class outside 0..=3, before any work.
fn check(keys: &[u64], classes: &[u8], k: usize) -> Result<()> {
    check_folds(k as i128)?;
    if keys.len() != classes.len() {
        return Err(input(format!(
            "keys and classes have different lengths: {} and {}",
            keys.len(),
            classes.len()
        )));
    }
    if keys.len() > MAX_ROWS {
        return Err(input(format!(
            "folds take at most {MAX_ROWS} rows, got {}",
            keys.len()
        )));
    }
    if let Some(row) = classes.iter().position(|&c| usize::from(c) >= NUM_CLASSES) {
        return Err(input(format!(
            "row {row}: class {} is not 0 (A wins), 1 (B wins), 2 (tie) or 3 (unlabelled)",
            classes[row]
        )));
    }
    Ok(())
}

/// The fold (`0..k`) of every row: rows with the same key share a fold, and
/// every fold gets about `1/k` of the rows of each class.
///
/// Groups (rows of one key) are placed largest first, equal sizes in the
/// order of `mix(key ^ mix(seed))` then key; each goes whole to the fold
/// where it adds the least `sum_c g[c] * count[f][c] / T[c]` (computed
/// exactly, see [`weights`]), ties to the fold with the fewest rows, then the
/// lowest index. Deterministic: the same inputs and seed give the same folds.
pub fn assign_folds(keys: &[u64], classes: &[u8], k: usize, seed: u64) -> Result<Vec<i8>> {
    check(keys, classes, k)?;
    let n = keys.len();
    if n == 0 {
        return Ok(Vec::new());
    }

    // (key, row) sorted: each run of one key is a group, its rows ascending.
    let mut order: Vec<(u64, u32)> = keys
        .iter()
        .enumerate()
        .map(|(row, &key)| (key, row as u32))
        .collect();
    order.sort_unstable();
    let salt = mix(seed);
    let mut groups: Vec<Group> = Vec::new();
    let mut starts: Vec<u32> = Vec::new();
    let mut totals = [0u64; NUM_CLASSES];
    for (at, &(key, row)) in order.iter().enumerate() {
        let class = usize::from(classes[row as usize]);
        totals[class] += 1;
        match groups.last_mut() {
            Some(group) if group.key == key => {
                group.size += 1;
                group.counts[class] += 1;
            }
            _ => {
                let mut counts = [0; NUM_CLASSES];
                counts[class] = 1;
                groups.push(Group {
                    hash: mix(key ^ salt),
                    key,
                    counts,
                    size: 1,
                    index: starts.len() as u32,
                });
                starts.push(at as u32);
            }
        }
    }
    starts.push(n as u32);

    // Largest first; equal sizes by the seeded hash, then by key (keys are
    // unique among groups, so the order is total).
    groups.sort_unstable_by_key(|g| (Reverse(g.size), g.hash, g.key));

    let weights = weights(&totals);
    let mut counts = vec![[0u64; NUM_CLASSES]; k];
    let mut sizes = vec![0u64; k];
    let mut fold_of_group = vec![0i8; groups.len()];
    for group in &groups {
        let mut best = 0;
        let mut best_cost = cost(&group.counts, &counts[0], &weights);
        for f in 1..k {
            let c = cost(&group.counts, &counts[f], &weights);
            // Strictly better cost, or equal cost and strictly fewer rows;
            // otherwise the lower index already chosen stays.
            let better = match c.cmp(&best_cost) {
                Ordering::Less => true,
                Ordering::Equal => sizes[f] < sizes[best],
                Ordering::Greater => false,
            };
            if better {
                best = f;
                best_cost = c;
            }
        }
        for cls in 0..NUM_CLASSES {
            counts[best][cls] += u64::from(group.counts[cls]);
        }
        sizes[best] += u64::from(group.size);
        fold_of_group[group.index as usize] = best as i8;
    }

    // Rows take their group's fold, walking the groups in key order.
    let mut folds = vec![0i8; n];
    for (g, fold) in fold_of_group.iter().enumerate() {
        let rows = &order[starts[g] as usize..starts[g + 1] as usize];
        for &(_, row) in rows {
            folds[row as usize] = *fold;
        }
    }
    Ok(folds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SplitMix64;

    /// A small deterministic stream of test inputs.
    fn stream(seed: u64, n: usize, distinct: u64, classes: u64) -> (Vec<u64>, Vec<u8>) {
        let mut rng = SplitMix64::new(seed, 0);
        let keys = (0..n).map(|_| rng.below(distinct)).collect();
        let labels = (0..n).map(|_| rng.below(classes) as u8).collect();
        (keys, labels)
    }

    #[test]
    fn mix_is_the_splitmix64_finaliser() {
        // SplitMix64 returns mix(state + golden gamma) for each state.
        for state in [0u64, 1, 12345, u64::MAX] {
            let mut rng = SplitMix64::from_state(state);
            assert_eq!(
                rng.next_u64(),
                mix(state.wrapping_add(0x9E37_79B9_7F4A_7C15))
            );
        }
    }

    #[test]
    fn wide_products_are_exact() {
        let a = u64::MAX;
        let w = u128::MAX;
        // (2^64 - 1)(2^128 - 1) = 2^192 - 2^128 - 2^64 + 1.
        let p = Wide::product(a, w);
        assert_eq!(p.hi, (1u128 << 64) - 2);
        assert_eq!(p.lo, u128::MAX - (1u128 << 64) + 2);
        let small = Wide::product(3, 5);
        assert_eq!(small, Wide { hi: 0, lo: 15 });
        let sum = Wide {
            hi: 0,
            lo: u128::MAX,
        }
        .add(Wide { hi: 1, lo: 1 });
        assert_eq!(sum, Wide { hi: 2, lo: 0 });
        assert!(
            Wide { hi: 1, lo: 0 }
                > Wide {
                    hi: 0,
                    lo: u128::MAX
                }
        );
    }

    #[test]
    fn costs_at_the_row_limit_do_not_overflow() {
        // The largest totals allowed, spread over four classes, and a group
        // and a fold as large as they can be.
        let totals = [MAX_ROWS as u64 / 4; NUM_CLASSES];
        let w = weights(&totals);
        let half = totals[0] / 2;
        let group = [half as u32; 4];
        let big = cost(&group, &[half; 4], &w);
        let bigger = cost(&group, &[half + 1; 4], &w);
        assert!(bigger > big && big.hi > 0);
    }

    #[test]
    fn folds_worked_example() {
        // Keys 7 (classes 0, 1, 0), 9 (0, 1), 4 (2) and 5 (0); totals 4, 2, 1
        // rows of classes 0, 1, 2; k = 2.
        let keys = [7, 9, 7, 4, 9, 7, 5];
        let classes = [0, 0, 1, 2, 1, 0, 0];
        // Key 7 first (3 rows): every cost is 0 and no fold has rows, so fold
        // 0. Key 9: fold 0 costs 1*2*W0 + 1*1*W1, fold 1 nothing: fold 1.
        // The singletons by mix(key ^ mix(seed)); with seed 0, key 5 comes
        // first: 2*W0 in fold 0 against 1*W0 in fold 1, so fold 1. Key 4
        // (class 2) costs 0 everywhere; both folds hold 3 rows: fold 0.
        let folds = assign_folds(&keys, &classes, 2, 0).unwrap();
        assert_eq!(folds, [0, 1, 0, 0, 1, 0, 1]);
        // With seed 1, key 4 comes first: cost 0 both, fold 1 holds fewer
        // rows (2 against 3), so fold 1; key 5 then still prefers fold 1.
        let folds = assign_folds(&keys, &classes, 2, 1).unwrap();
        assert_eq!(folds, [0, 1, 0, 1, 1, 0, 1]);
    }

    #[test]
    fn no_key_spans_two_folds_and_classes_balance() {
        let (keys, classes) = stream(5, 20_000, 3_000, 4);
        let k = 5;
        let folds = assign_folds(&keys, &classes, k, 42).unwrap();
        let mut seen = std::collections::HashMap::new();
        for (row, &key) in keys.iter().enumerate() {
            let f = folds[row];
            assert!((0..k as i8).contains(&f));
            assert_eq!(*seen.entry(key).or_insert(f), f, "key {key} in two folds");
        }
        let mut per = [[0i64; NUM_CLASSES]; 5];
        for (row, &c) in classes.iter().enumerate() {
            per[folds[row] as usize][c as usize] += 1;
        }
        for c in 0..NUM_CLASSES {
            let total: i64 = per.iter().map(|p| p[c]).sum();
            for p in &per {
                assert!((p[c] * k as i64 - total).abs() <= total / 50, "{per:?}");
            }
        }
    }

    #[test]
    fn singletons_balance_exactly() {
        let (_, classes) = stream(9, 10_000, 1, 3);
        let keys: Vec<u64> = (0..10_000).collect();
        let folds = assign_folds(&keys, &classes, 5, 1).unwrap();
        let mut sizes = [0; 5];
        for &f in &folds {
            sizes[f as usize] += 1;
        }
        assert!(
            sizes.iter().all(|&s| (1999..=2001).contains(&s)),
            "{sizes:?}"
        );
    }

    #[test]
    fn same_seed_same_folds_other_seed_other_folds() {
        let (keys, classes) = stream(3, 2_000, 1_500, 3);
        let a = assign_folds(&keys, &classes, 4, 1).unwrap();
        assert_eq!(a, assign_folds(&keys, &classes, 4, 1).unwrap());
        assert_ne!(a, assign_folds(&keys, &classes, 4, 2).unwrap());
    }

    #[test]
    fn one_fold_and_empty_input() {
        let (keys, classes) = stream(1, 100, 10, 4);
        assert!(assign_folds(&keys, &classes, 1, 0)
            .unwrap()
            .iter()
            .all(|&f| f == 0));
        assert!(assign_folds(&[], &[], 3, 0).unwrap().is_empty());
    }

    #[test]
    fn bad_k_classes_and_lengths_are_errors() {
        for k in [0, 128, 1000] {
            let err = assign_folds(&[1], &[0], k, 0).unwrap_err();
            assert!(matches!(err, CoreError::Config(_)), "{err}");
        }
        assert!(assign_folds(&[1], &[0], MAX_FOLDS, 0).is_ok());
        let err = assign_folds(&[1, 2], &[0, 7], 2, 0).unwrap_err();
        assert!(matches!(err, CoreError::Collate(_)));
        assert!(err.to_string().contains("row 1: class 7"), "{err}");
        let err = assign_folds(&[1, 2], &[0], 2, 0).unwrap_err();
        assert!(err.to_string().contains("different lengths"), "{err}");
    }
}
