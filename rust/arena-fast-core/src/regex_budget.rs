//! Work budgets for the regular expressions of a tokenizer.json.
//!
//! `tokenizers` runs the `Regex` patterns of a tokenizer's normalizer and
//! pre-tokenizer on Oniguruma, a backtracking engine: a pattern that
//! backtracks badly makes one text cost cubic or exponential time (`a*a*$`
//! on 6 KB of `a`: tens of seconds). Oniguruma counts backtracking steps
//! ("retries") and fails a search past a limit, but cannot be stopped
//! otherwise. `Budgeted` (put in the tokenizer by `regex_stages`) runs the
//! searches of one text under its `TextBudget`:
//!
//! - each search first gets `SEARCH_ALLOWANCE` steps; one that needs more is
//!   run again with twice the limit (at most `RETRY_LIMIT`), the steps of
//!   every failed try charged to the text's step budget (`BUDGET_BASE` +
//!   `BUDGET_PER_BYTE` per byte). Past it the text fails, deterministically:
//!   this stops exponential and "many backtracks" patterns early.
//! - a step is not a unit of work (after one backtrack the engine may scan
//!   far ahead: `a*a*b|.` does quadratic work per search in linear steps), so
//!   the text also has a CPU-time budget (`TIME_BASE` + `TIME_PER_BYTE` per
//!   byte, on the thread's CPU clock), checked before every retried try and
//!   every `CLOCK_EVERY` searches. One try may overrun it; then the text fails.
//!
//! A text over either budget fails with `TokenizerError::Regex`, alone: the
//! row gets the error, the rest of the call goes on. The real tokenizers take
//! at most a few hundred steps per search on real text (a run of n spaces:
//! about 2n) and well under a microsecond of regex time per byte, far below
//! these (docs/encoding.md, "Regex budgets").
//!
//! Searches not made through `Budgeted` (fixed patterns inside `tokenizers`,
//! decoders, tokenizers `regex_stages` cannot rebuild) run under the engine's
//! process-wide limits, set to `RETRY_LIMIT` by `install`; `bounded` turns a
//! search over them (a panic in the `onig` crate) into `TokenizerError::Regex`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

use onig::{MatchParam, Regex, Region, SearchOptions};
use onig_sys::{ONIGERR_RETRY_LIMIT_IN_MATCH_OVER, ONIGERR_RETRY_LIMIT_IN_SEARCH_OVER};
use tokenizers::tokenizer::pattern::Pattern;
use tokenizers::Offsets;

use crate::error::TokenizerError;

/// Steps one search may take before it is charged to the text's budget.
pub const SEARCH_ALLOWANCE: u64 = 1 << 8;
/// A text's budget for the steps of searches past their allowance.
pub const BUDGET_BASE: u64 = 1 << 20;
pub const BUDGET_PER_BYTE: u64 = 64;
/// Steps any one search may take (process-wide for patterns not budgeted).
pub const RETRY_LIMIT: u64 = 1 << 24;
/// A text's budget of regex CPU time, in nanoseconds.
pub const TIME_BASE: u64 = 100_000_000;
pub const TIME_PER_BYTE: u64 = 10_000;
/// Searches between two reads of the clock (a read is a system call, about
/// a microsecond); the clock starts at the first read, so a text of fewer
/// searches never reads it.
const CLOCK_EVERY: u64 = 256;

/// The `onig` crate's panic message for a failed search starts with this.
const ONIG_PANIC: &str = "Onig: Regex search error: ";

thread_local! {
    /// Set while `bounded` runs: its regex panics are not printed.
    static BOUNDED: Cell<bool> = const { Cell::new(false) };
}

/// Set the process-wide retry limits and keep the panic hook from printing
/// the regex failures `bounded` catches. Idempotent; `ArenaTokenizer` calls
/// it before a tokenizer exists, so no search runs under the defaults.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain setters of two process-wide counters of the engine;
        // called once, before any tokenizer (and so any search) exists.
        unsafe {
            onig_sys::onig_set_retry_limit_in_match(RETRY_LIMIT as _);
            onig_sys::onig_set_retry_limit_in_search(RETRY_LIMIT as _);
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours =
                BOUNDED.with(Cell::get) && panic_text(info.payload()).starts_with(ONIG_PANIC);
            if !ours {
                previous(info);
            }
        }));
    });
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        ""
    }
}

/// Run `work` (a call into `tokenizers` on one text); a regex search that
/// failed in it (over `RETRY_LIMIT`) is `TokenizerError::Regex`. Any other
/// panic goes on unwinding: it is a bug, not an input problem.
pub fn bounded<T>(work: impl FnOnce() -> T) -> Result<T, TokenizerError> {
    let outer = BOUNDED.with(|b| b.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    BOUNDED.with(|b| b.set(outer));
    match result {
        Ok(value) => Ok(value),
        Err(payload) => match panic_text(&*payload).strip_prefix(ONIG_PANIC) {
            Some(reason) => Err(TokenizerError::Regex(format!(
                "{reason}: more than {RETRY_LIMIT} backtracking steps in one search"
            ))),
            None => std::panic::resume_unwind(payload),
        },
    }
}

/// The CPU time this thread has used, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (now.tv_sec as u64).saturating_mul(1_000_000_000) + now.tv_nsec as u64
}

/// What one text may still spend on regex searches (steps past the
/// allowances, CPU time), and why it failed, if it did. Atomics only because
/// `tokenizers`' stage traits need `Sync`: a text is encoded on one thread.
pub struct TextBudget {
    left: AtomicU64,
    total: u64,
    searches: AtomicU64,
    time: u64,
    /// The thread's CPU clock at the first read (0: not read yet).
    started: AtomicU64,
    failure: OnceLock<String>,
}

impl TextBudget {
    pub fn for_text(text: &str) -> TextBudget {
        let bytes = text.len() as u64;
        let total = BUDGET_BASE.saturating_add(BUDGET_PER_BYTE.saturating_mul(bytes));
        TextBudget {
            left: AtomicU64::new(total),
            total,
            searches: AtomicU64::new(0),
            time: TIME_BASE.saturating_add(TIME_PER_BYTE.saturating_mul(bytes)),
            started: AtomicU64::new(0),
            failure: OnceLock::new(),
        }
    }

    /// An error once the searches have used up the text's CPU time.
    fn out_of_time(&self) -> Result<(), String> {
        let now = thread_cpu_ns().max(1);
        let started = match self.started.load(Ordering::Relaxed) {
            0 => {
                self.started.store(now, Ordering::Relaxed);
                now
            }
            t => t,
        };
        if now - started <= self.time {
            return Ok(());
        }
        Err(format!(
            "over its budget of {:.2} s of CPU time: {} ms + {} us per byte",
            self.time as f64 / 1e9,
            TIME_BASE / 1_000_000,
            TIME_PER_BYTE / 1_000
        ))
    }

    /// Record the first failure (later stages may run on after it: the
    /// added-token splitter ignores a normalizer's error).
    fn fail(&self, reason: String) {
        let _first = self.failure.set(reason);
    }

    /// The error of a search that failed, if one did.
    pub fn check(&self) -> Result<(), TokenizerError> {
        match self.failure.get() {
            Some(reason) => Err(TokenizerError::Regex(reason.clone())),
            None => Ok(()),
        }
    }
}

/// One pattern searched under a text's budget: a `tokenizers` `Pattern`
/// with exactly the matches of `onig::Regex::find_iter`.
#[derive(Clone, Copy)]
pub struct Budgeted<'a> {
    pub regex: &'a Regex,
    pub budget: &'a TextBudget,
}

impl Budgeted<'_> {
    /// The first match in `text[from..]`, as `Regex::search_with_options`
    /// finds it, each try within its step limit.
    fn search(&self, text: &str, from: usize, region: &mut Region) -> Result<bool, String> {
        // Load and store, not `fetch_add`: one thread encodes a text.
        let searches = self.budget.searches.load(Ordering::Relaxed) + 1;
        self.budget.searches.store(searches, Ordering::Relaxed);
        if searches % CLOCK_EVERY == 0 {
            self.budget.out_of_time()?;
        }
        let mut limit = SEARCH_ALLOWANCE;
        loop {
            region.clear();
            let mut param = MatchParam::default();
            let steps = limit.min(u32::MAX as u64) as u32;
            param.set_retry_limit_in_match(steps);
            // SAFETY: `param` owns a valid match parameter block.
            unsafe {
                onig_sys::onig_set_retry_limit_in_search_of_match_param(param.as_raw(), steps as _);
            }
            let options = SearchOptions::SEARCH_OPTION_NONE;
            let found =
                self.regex
                    .search_with_param(text, from, text.len(), options, Some(region), param);
            match found {
                Ok(found) => return Ok(found.is_some()),
                Err(e)
                    if e.code() == ONIGERR_RETRY_LIMIT_IN_MATCH_OVER
                        || e.code() == ONIGERR_RETRY_LIMIT_IN_SEARCH_OVER =>
                {
                    let left = self
                        .budget
                        .left
                        .load(Ordering::Relaxed)
                        .saturating_sub(limit);
                    self.budget.left.store(left, Ordering::Relaxed);
                    if left == 0 || limit >= RETRY_LIMIT {
                        return Err(format!(
                            "over its budget of {} backtracking steps: {BUDGET_BASE} + \
                             {BUDGET_PER_BYTE} per byte, at most {RETRY_LIMIT} in one search",
                            self.budget.total
                        ));
                    }
                    self.budget.out_of_time()?;
                    limit = limit.saturating_mul(2).min(left).min(RETRY_LIMIT);
                }
                Err(e) => return Err(e.description().to_owned()),
            }
        }
    }
}

impl Pattern for Budgeted<'_> {
    /// `tokenizers`' `Pattern for &SysRegex` over `onig`'s `FindMatches`.
    fn find_matches(&self, inside: &str) -> tokenizers::Result<Vec<(Offsets, bool)>> {
        if inside.is_empty() {
            return Ok(vec![((0, 0), false)]);
        }
        let mut region = Region::new();
        let mut splits = Vec::with_capacity(inside.len());
        let (mut prev, mut last_end, mut last_match_end) = (0, 0, None);
        while last_end <= inside.len() {
            match self.search(inside, last_end, &mut region) {
                Ok(true) => {}
                Ok(false) => break,
                Err(reason) => {
                    self.budget.fail(reason.clone());
                    return Err(reason.into());
                }
            }
            let Some((start, end)) = region.pos(0) else {
                break;
            };
            // No empty match right after the previous match (as `onig`).
            if start == end && last_match_end == Some(end) {
                last_end += inside[last_end..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            last_end = end;
            last_match_end = Some(end);
            if prev != start {
                splits.push(((prev, start), false));
            }
            splits.push(((start, end), true));
            prev = end;
        }
        if prev != inside.len() {
            splits.push(((prev, inside.len()), false));
        }
        Ok(splits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> Vec<(Offsets, bool)> {
        let regex = Regex::new(pattern).unwrap();
        let budget = TextBudget::for_text(text);
        Budgeted {
            regex: &regex,
            budget: &budget,
        }
        .find_matches(text)
        .unwrap()
    }

    #[test]
    fn matches_are_those_of_find_iter() {
        for (pattern, text) in [
            (r"\s+(?!\S)|\s+", "a  b   c "),
            ("x*", "axxbx"),
            ("", "héllo"),
            (r"\b", "ab cd"),
            (r"(?=,)|b", "a,b,,c"),
            (r"\p{L}+|\p{N}{1,3}", "abc12345 déf"),
            ("z", "abc"),
            ("a", ""),
        ] {
            let regex = Regex::new(pattern).unwrap();
            let split = tokenizers::pre_tokenizers::split::Split::new(
                tokenizers::pre_tokenizers::split::SplitPattern::Regex(pattern.into()),
                tokenizers::SplitDelimiterBehavior::Isolated,
                false,
            )
            .unwrap();
            let expected = (&split.regex).find_matches(text).unwrap();
            let budget = TextBudget::for_text(text);
            let ours = Budgeted {
                regex: &regex,
                budget: &budget,
            }
            .find_matches(text)
            .unwrap();
            assert_eq!(ours, expected, "{pattern:?} on {text:?}");
        }
    }

    #[test]
    fn a_long_legitimate_search_is_charged_not_refused() {
        // 100k spaces then a letter: one search of ~2 steps per space.
        let text = format!("{}x", " ".repeat(100_000));
        let m = matches(r"\s*[\r\n]+|\s+(?!\S)|\s+|\S", &text);
        assert_eq!(
            m,
            vec![
                ((0, 99_999), true),
                ((99_999, 100_000), true),
                ((100_000, 100_001), true)
            ]
        );
    }

    fn budgeted_error(pattern: &str, text: &str) -> String {
        let regex = Regex::new(pattern).unwrap();
        let budget = TextBudget::for_text(text);
        let err = Budgeted {
            regex: &regex,
            budget: &budget,
        }
        .find_matches(text)
        .unwrap_err();
        assert!(budget.check().is_err());
        err.to_string()
    }

    #[test]
    fn exponential_backtracking_uses_up_the_steps() {
        // Exponential in the run of `a`: refused at the step budget.
        let err = budgeted_error("(a|aa)*$", &format!("{}b", "a".repeat(200)));
        assert!(err.contains("backtracking steps"), "{err}");
    }

    #[test]
    fn quadratic_work_in_few_steps_uses_up_the_time() {
        // Each search scans the rest of the run after every backtrack: cubic
        // work in steps that stay linear. 20k bytes: 0.3 s of CPU.
        let text = format!("{}c", "a".repeat(20_000));
        let started = std::time::Instant::now();
        let err = budgeted_error("a*a*b|.", &text);
        assert!(err.contains("CPU time"), "{err}");
        assert!(started.elapsed().as_secs_f64() < 10.0);
    }

    #[test]
    fn a_search_over_the_process_limit_is_an_error_for_that_text() {
        install();
        let split = tokenizers::pre_tokenizers::split::Split::new(
            tokenizers::pre_tokenizers::split::SplitPattern::Regex("(a|aa)*$".into()),
            tokenizers::SplitDelimiterBehavior::Isolated,
            false,
        )
        .unwrap();
        let pieces = |text: &str| {
            let mut pre = tokenizers::PreTokenizedString::from(text);
            tokenizers::PreTokenizer::pre_tokenize(&split, &mut pre).unwrap();
            pre.get_splits(
                tokenizers::OffsetReferential::Original,
                tokenizers::OffsetType::Byte,
            )
            .len()
        };
        let err = bounded(|| pieces(&format!("{}b", "a".repeat(64)))).unwrap_err();
        assert!(err.to_string().contains("retry-limit"), "{err}");
        // The same thread goes on searching.
        assert_eq!(bounded(|| pieces("baa")).unwrap(), 2);
    }
}
