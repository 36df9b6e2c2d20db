//! Threads: the one check of a thread count, the pools work runs on, and
//! what a fork does to them. Every parallel entry point of the core (row
//! parsing, row features, encoding) goes through here; the results never
//! depend on the thread count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::error::ConfigError;

/// The most threads any entry point starts (`check_threads`).
pub const MAX_THREADS: usize = 1024;

/// The one check of a thread count (`num_threads` of the encoder and of
/// row parsing): at least 1, at most `MAX_THREADS`.
pub fn check_threads(threads: usize) -> Result<usize, ConfigError> {
    if (1..=MAX_THREADS).contains(&threads) {
        Ok(threads)
    } else {
        Err(ConfigError::Invalid(format!(
            "num_threads must be between 1 and {MAX_THREADS}, got {threads}"
        )))
    }
}

/// Set in a forked child process: thread pools made by the parent have no
/// threads there, so all work runs on the calling thread.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Called (by the bindings' `pthread_atfork` child handler) after a fork.
pub fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// Whether this process is a fork of the one that made the pools.
fn forked() -> bool {
    FORKED.load(Ordering::Relaxed)
}

/// A pool of its own for `threads` threads (checked by `check_threads`);
/// None for one thread or none asked for.
pub fn own_pool(threads: Option<usize>) -> Result<Option<ThreadPool>, ConfigError> {
    match threads.map(check_threads).transpose()? {
        Some(n) if n > 1 => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map(Some)
            .map_err(|e| ConfigError::Invalid(format!("cannot start {n} threads: {e}"))),
        _ => Ok(None),
    }
}

/// A thread pool of `threads` threads shared by calls that ask for the same
/// count (None for one thread, or in a forked child, where pool threads made
/// by the parent do not exist). Never more than `MAX_THREADS` threads: the
/// bindings refuse larger counts (`check_threads`) before they get here.
pub fn shared_pool(threads: usize) -> Option<Arc<ThreadPool>> {
    let threads = threads.min(MAX_THREADS);
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    if threads <= 1 || forked() {
        return None;
    }
    let mut pools = POOLS.get_or_init(Default::default).lock().ok()?;
    if let Some(pool) = pools.get(&threads) {
        return Some(pool.clone());
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .ok()?,
    );
    pools.insert(threads, pool.clone());
    Some(pool)
}

/// `task(0)`, ..., `task(tasks - 1)`, results in that order: on `pool` when
/// there is one (and the process has not forked since it was made), on the
/// calling thread otherwise.
pub fn run_tasks<T: Send>(
    pool: Option<&ThreadPool>,
    tasks: usize,
    task: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    match pool {
        Some(pool) if !forked() => pool.install(|| (0..tasks).into_par_iter().map(&task).collect()),
        _ => (0..tasks).map(task).collect(),
    }
}

/// `f` over blocks of `block` items of `0..n`, results in order, on the
/// shared pool of `threads` threads when there is more than one block.
pub fn in_blocks<T: Send>(
    n: usize,
    block: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    let blocks = n.div_ceil(block);
    let pool = shared_pool(threads);
    let pool = pool.as_deref().filter(|_| blocks > 1);
    run_tasks(pool, blocks, |b| f(b * block..((b + 1) * block).min(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_past_the_cap_are_refused() {
        assert_eq!(check_threads(1).unwrap(), 1);
        assert_eq!(check_threads(MAX_THREADS).unwrap(), MAX_THREADS);
        for bad in [0, MAX_THREADS + 1, usize::MAX] {
            assert!(check_threads(bad).is_err());
            assert!(own_pool(Some(bad)).is_err());
        }
        assert!(own_pool(None).unwrap().is_none());
        assert!(own_pool(Some(1)).unwrap().is_none());
    }

    #[test]
    fn blocks_come_back_in_order_for_any_thread_count() {
        let want: Vec<_> = (0..1000).collect();
        for threads in [1, 2, 3] {
            let got: Vec<usize> = in_blocks(1000, 64, threads, |r| r.collect::<Vec<_>>())
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(got, want);
        }
        assert!(in_blocks(0, 64, 2, |r| r.len()).is_empty());
    }
}
