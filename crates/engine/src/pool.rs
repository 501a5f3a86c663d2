//! The engine threads: a small process-wide pool that runs the calls which
//! must not run on the JS thread (long ones, and writes inside a transaction
//! that may not be cut short).
//!
//! Threads are started as work arrives, and stay for later work: their
//! number follows the databases busy at once, never the databases open.
//! At most [`MAX_THREADS`] run at once. A thread that waits for the KV (a
//! page read, which the JS thread makes) uses no CPU and does not count
//! ([`waiting`]): another thread may start meanwhile, up to
//! [`MAX_ALL_THREADS`] in all, so databases whose KV is slow, or never
//! answers, do not hold up the others' calls. Threads beyond
//! [`MAX_THREADS`] end when they find no work. Each database has at most
//! one call in flight (the JS layer runs its calls in order), so the pool
//! needs no per-database ordering.
//!
//! On Linux the engine threads run at a lower CPU priority than the JS
//! thread that starts them ([`NICE`]; threads they start are not lowered
//! again): when more of them are busy than the machine
//! has cores, the JS thread, which every database of the process shares,
//! still gets its share of a core, and its short inline calls keep their
//! time budget.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

/// Most engine threads that run (do not wait for the KV) at once.
pub const MAX_THREADS: usize = 16;

/// Most engine threads in all, those waiting for the KV included.
pub const MAX_ALL_THREADS: usize = 256;

/// Each engine thread's stack. SQLite compiles by recursion, as deep as
/// its nesting limits allow (1,000 levels of subqueries or CTEs, each a
/// compound of up to 500 terms): such a statement needs more than 4 MiB of
/// stack (measured: 4 MiB overflows, 8 MiB holds), and a thread runs out of
/// it with no error to report, only a crash of the process. Only the pages
/// a thread touches take memory.
pub const STACK_SIZE: usize = 16 * 1024 * 1024;

/// How much the engine threads' Linux nice value exceeds that of the JS
/// thread that started them (the CPU share of a busy thread at nice 10 is about a
/// tenth of one at 0).
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A job given to [`spawn`], for [`expedite`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u64);

#[derive(Default)]
struct Queue {
    jobs: VecDeque<(Ticket, Job)>,
    /// Jobs ever queued: the next ticket.
    queued: u64,
    threads: usize,
    idle: usize,
    /// Threads in [`waiting`].
    waiting: usize,
}

impl Queue {
    /// Starts a thread if a queued job has none to take it and the limits
    /// allow one.
    /// (If no thread could be started, an existing one takes the job later.)
    fn start_if_needed(&mut self) {
        if self.jobs.len() > self.idle
            && self.threads - self.waiting < MAX_THREADS
            && self.threads < MAX_ALL_THREADS
            && start_thread(work)
        {
            self.threads += 1;
        }
    }
}

std::thread_local! {
    /// Whether this thread is an engine thread (runs at the lowered
    /// priority already).
    static ENGINE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts an engine thread running `run`; false if the OS refused.
///
/// A new thread inherits its starter's nice value. Engine threads start
/// others too (in [`waiting`]): such a thread keeps what it inherited, so
/// every engine thread runs [`NICE`] below the JS thread, never twice that.
fn start_thread(run: impl FnOnce() + Send + 'static) -> bool {
    let lowered = ENGINE_THREAD.with(|e| e.get());
    std::thread::Builder::new()
        .name("rivetkit-sqlite".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            ENGINE_THREAD.with(|e| e.set(true));
            if !lowered {
                lower_priority();
            }
            run();
        })
        .is_ok()
}

/// Lowers the calling thread's CPU priority by [`NICE`] (Linux only). If
/// that fails, the thread runs at the priority it has.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: nice() takes an integer and touches no memory of ours. On
        // Linux a thread's nice value is its own (NPTL): this lowers the
        // calling thread only, relative to what it inherited.
        let _ = unsafe { libc::nice(NICE) };
    }
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

/// Runs `job` on an engine thread, as soon as one is free.
pub fn spawn(job: impl FnOnce() + Send + 'static) -> Ticket {
    let pool = pool();
    let mut queue = lock(pool);
    queue.queued += 1;
    let ticket = Ticket(queue.queued);
    queue.jobs.push_back((ticket, Box::new(job)));
    queue.start_if_needed();
    drop(queue);
    pool.ready.notify_one();
    ticket
}

/// Runs job `ticket` at once, on a thread of its own, if it still waits for
/// one: a call that was interrupted stops as soon as it runs, and need not
/// wait for other databases' calls. Returns whether it did.
pub fn expedite(ticket: Ticket) -> bool {
    let pool = pool();
    let mut queue = lock(pool);
    // Counted among the threads, within MAX_ALL_THREADS: at the limit, the
    // job keeps its place in the queue.
    if queue.threads >= MAX_ALL_THREADS {
        return false;
    }
    let Some(at) = queue.jobs.iter().position(|(t, _)| *t == ticket) else {
        return false;
    };
    let Some((_, job)) = queue.jobs.remove(at) else {
        return false;
    };
    queue.threads += 1;
    drop(queue);
    // The job is the one place its closure lives: if no thread can start,
    // it goes back to the queue, where a pool thread takes it in turn.
    let job = std::sync::Arc::new(Mutex::new(Some(job)));
    let own = job.clone();
    let started = start_thread(move || {
        if let Some(job) = own.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
        lock(pool).threads -= 1;
    });
    if started {
        return true;
    }
    let mut queue = lock(pool);
    queue.threads -= 1;
    if let Some(job) = job.lock().unwrap_or_else(|p| p.into_inner()).take() {
        queue.jobs.push_front((ticket, job));
        drop(queue);
        pool.ready.notify_one();
    }
    false
}

/// Runs `wait` on an engine thread that waits for the KV meanwhile: the
/// thread does not count as running, and another may start for the jobs
/// queued (see the top of this file).
pub fn waiting<T>(wait: impl FnOnce() -> T) -> T {
    let pool = pool();
    {
        let mut queue = lock(pool);
        queue.waiting += 1;
        queue.start_if_needed();
    }
    pool.ready.notify_one();
    let result = wait();
    lock(pool).waiting -= 1;
    result
}

/// How many engine threads the process has (those [`expedite`] starts for
/// one job included).
pub fn threads() -> usize {
    lock(pool()).threads
}

fn work() {
    let pool = pool();
    let mut queue = lock(pool);
    loop {
        if let Some((_, job)) = queue.jobs.pop_front() {
            drop(queue);
            // A panicking job must not take the thread (and its count) down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            queue = lock(pool);
            continue;
        }
        // A thread started while others waited for the KV ends once there
        // is no work for it.
        if queue.threads > MAX_THREADS {
            queue.threads -= 1;
            return;
        }
        queue.idle += 1;
        queue = pool.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
        queue.idle -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    // The pool is process-wide: its tests run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[cfg(target_os = "linux")]
    #[test]
    fn engine_threads_run_at_a_lower_priority_than_their_starter() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: getpriority takes integers; PRIO_PROCESS with who = 0 is
        // the calling thread on Linux.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let here = nice();
        let (tx, rx) = mpsc::channel();
        spawn(move || tx.send(nice()).unwrap());
        let there = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // (Every test thread has the same nice value; 19 is as low as it goes.)
        assert_eq!(
            there,
            (here + NICE).min(19),
            "nice {here} here, {there} on an engine thread"
        );
        // A thread that an engine thread starts (as `waiting` does) is
        // lowered once, not twice.
        let (tx, rx) = mpsc::channel();
        spawn(move || {
            assert!(start_thread(move || tx.send(nice()).unwrap()));
        });
        let there = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            there,
            (here + NICE).min(19),
            "nice {here} here, {there} on a thread an engine thread started"
        );
    }

    /// Waits for the threads an earlier test started beyond MAX_THREADS
    /// (while others waited for the KV) to end: they do once they find no
    /// work, which may be after they took some of the next test's jobs.
    fn wait_for_extra_threads_to_end() {
        assert!(
            eventually(|| threads() <= MAX_THREADS),
            "{} engine threads after 10 s",
            threads()
        );
    }

    /// Whether `condition` holds within 10 s (checked every 10 ms).
    fn eventually(condition: impl Fn() -> bool) -> bool {
        for _ in 0..1000 {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        condition()
    }

    #[test]
    fn runs_jobs_on_a_bounded_number_of_threads() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        wait_for_extra_threads_to_end();
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

    #[test]
    fn threads_waiting_for_the_kv_do_not_hold_up_other_jobs() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        // More jobs wait for an answer than MAX_THREADS; a job queued after
        // them still runs.
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..MAX_THREADS + 4 {
            let (release_rx, done_tx) = (release_rx.clone(), done_tx.clone());
            spawn(move || {
                waiting(|| release_rx.lock().unwrap().recv().unwrap());
                done_tx.send("waited").unwrap();
            });
        }
        let (other_tx, other_rx) = mpsc::channel();
        spawn(move || other_tx.send("ran").unwrap());
        assert_eq!(other_rx.recv_timeout(Duration::from_secs(10)), Ok("ran"));
        for _ in 0..MAX_THREADS + 4 {
            release_tx.send(()).unwrap();
        }
        for _ in 0..MAX_THREADS + 4 {
            assert_eq!(done_rx.recv_timeout(Duration::from_secs(10)), Ok("waited"));
        }
        assert!(threads() <= MAX_ALL_THREADS);
    }

    #[test]
    fn at_most_max_all_threads_wait_for_the_kv_and_those_beyond_max_threads_end_after() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        wait_for_extra_threads_to_end();
        // More jobs than MAX_ALL_THREADS wait for a KV that does not answer.
        let jobs = MAX_ALL_THREADS + 20;
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let entered = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..jobs {
            let (release_rx, entered, done_tx) =
                (release_rx.clone(), entered.clone(), done_tx.clone());
            spawn(move || {
                waiting(|| {
                    entered.fetch_add(1, Ordering::SeqCst);
                    release_rx.lock().unwrap().recv().unwrap();
                });
                done_tx.send(()).unwrap();
            });
        }
        let entered_now = || entered.load(Ordering::SeqCst);
        eventually(|| entered_now() >= MAX_ALL_THREADS);
        // The jobs beyond the limit, and one queued now, wait for a thread,
        // and none can be started for it (`interrupt()` cannot expedite it).
        let (other_tx, other_rx) = mpsc::channel();
        let other = spawn(move || other_tx.send("ran").unwrap());
        assert!(!expedite(other));
        assert!(other_rx.recv_timeout(Duration::from_millis(200)).is_err());
        assert_eq!(entered_now(), MAX_ALL_THREADS);
        assert_eq!(threads(), MAX_ALL_THREADS);
        // One wait ends: its thread takes the next job in the queue.
        release_tx.send(()).unwrap();
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        eventually(|| entered_now() > MAX_ALL_THREADS);
        assert_eq!(entered_now(), MAX_ALL_THREADS + 1);
        // Every wait ends: every job runs, and the threads beyond
        // MAX_THREADS end once they find no work.
        for _ in 1..jobs {
            release_tx.send(()).unwrap();
        }
        for _ in 1..jobs {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(other_rx.recv_timeout(Duration::from_secs(10)), Ok("ran"));
        assert_eq!(entered_now(), jobs);
        wait_for_extra_threads_to_end();
    }

    #[test]
    fn an_expedited_job_runs_without_waiting_for_a_free_thread() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        wait_for_extra_threads_to_end();
        // Every running thread is busy (not waiting for the KV).
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (started_tx, started_rx) = mpsc::channel();
        for _ in 0..MAX_THREADS {
            let (release_rx, started_tx) = (release_rx.clone(), started_tx.clone());
            spawn(move || {
                started_tx.send(()).unwrap();
                let _ = release_rx.lock().unwrap().recv();
            });
        }
        // The first busy job holds the receiver's lock; the others wait for
        // it: all MAX_THREADS threads are taken once each has started.
        for _ in 0..MAX_THREADS {
            started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        let (tx, rx) = mpsc::channel();
        let ticket = spawn(move || tx.send("ran").unwrap());
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        assert!(expedite(ticket));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("ran"));
        assert!(!expedite(ticket));
        for _ in 0..MAX_THREADS {
            release_tx.send(()).unwrap();
        }
    }
}
