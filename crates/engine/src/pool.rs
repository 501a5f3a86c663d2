//! The engine threads: a small process-wide pool that runs the calls which
//! must not run on the JS thread (long ones, and writes inside a transaction
//! that may not be cut short).
//!
//! Threads are started as work arrives, up to [`MAX_THREADS`], and stay for
//! later work: their number follows the databases busy at once, never the
//! databases open. Each database has at most one call in flight (the JS layer
//! runs its calls in order), so the pool needs no per-database ordering.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

/// Most engine threads a process starts.
pub const MAX_THREADS: usize = 16;

/// Each engine thread's stack. SQLite compiles by recursion, as deep as
/// its nesting limits allow (1,000 levels of subqueries or CTEs, each a
/// compound of up to 500 terms): such a statement needs more than 4 MiB of
/// stack (measured: 4 MiB overflows, 8 MiB holds), and a thread runs out of
/// it with no error to report, only a crash of the process. Only the pages
/// a thread touches take memory.
pub const STACK_SIZE: usize = 16 * 1024 * 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    queue: Mutex<Queue>,
    ready: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
    })
}

fn lock(pool: &Pool) -> std::sync::MutexGuard<'_, Queue> {
    pool.queue.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `job` on an engine thread.
pub fn spawn(job: impl FnOnce() + Send + 'static) {
    let pool = pool();
    let mut queue = lock(pool);
    queue.jobs.push_back(Box::new(job));
    // Every waiting job needs a thread of its own: start one unless enough
    // idle threads are there to take them all.
    if queue.jobs.len() > queue.idle && queue.threads < MAX_THREADS {
        let started = std::thread::Builder::new()
            .name("rivetkit-sqlite".into())
            .stack_size(STACK_SIZE)
            .spawn(work);
        if started.is_ok() {
            queue.threads += 1;
        }
        // If no thread could be started, an existing one takes the job later.
    }
    drop(queue);
    pool.ready.notify_one();
}

/// How many engine threads the process has started.
pub fn threads() -> usize {
    lock(pool()).threads
}

fn work() {
    let pool = pool();
    let mut queue = lock(pool);
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            drop(queue);
            // A panicking job must not take the thread (and its count) down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            queue = lock(pool);
            continue;
        }
        queue.idle += 1;
        queue = pool.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
        queue.idle -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_jobs_on_a_bounded_number_of_threads() {
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            spawn(move || tx.send(i).unwrap());
        }
        let mut got: Vec<i32> = (0..100).map(|_| rx.recv().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(threads() >= 1 && threads() <= MAX_THREADS);
    }
}
