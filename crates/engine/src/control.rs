//! Limits on a running call: a time budget for running inline, a deadline,
//! and a flag that `interrupt()` raises from any thread.
//!
//! SQLite's progress handler consults a [`Control`] every
//! [`PROGRESS_OPS`] virtual-machine instructions; when it says stop, the
//! statement ends with `SQLITE_INTERRUPT`. The control says why, so the
//! engine can tell a call that ran over its inline budget (and is finished on
//! an engine thread) from one that was stopped for good.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Instructions between two progress checks. Most take tens of nanoseconds,
/// but one that writes a row of 64 KiB takes about a millisecond: at 1,000,
/// an inline UPDATE of such rows ran 52 ms on a 4 ms budget; at 100, 10 ms.
/// A check reads the clock (about 25 ns): a CPU-bound query of 150 ms took
/// no longer measurably.
pub const PROGRESS_OPS: i32 = 100;

/// The least inline budget a call gets, however long the calls before it
/// held its thread (see [`Control::start_inline`]).
pub const MIN_INLINE_BUDGET: Duration = Duration::from_micros(500);

/// Wall time that pays back one unit of [`OVERRUN`]: calls that go on on an
/// engine thread after running inline hold a JS thread for about a fifth of
/// its time while they keep coming, and calls that arrive together for
/// [`MIN_INLINE_BUDGET`] each after the first (16 long queries made in one
/// turn held it 64 ms on their 4 ms budgets, about 12 ms with this).
const PAYBACK: u64 = 4;

thread_local! {
    /// Time this thread ran calls inline that then went on on an engine
    /// thread, less what the time since has paid back, as of when (both in
    /// ns of [`now_ns`]'s clock). Each JS thread has its own.
    static OVERRUN: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// This thread's [`OVERRUN`] at `now`.
fn overrun_at(now: u64) -> u64 {
    let (debt, at) = OVERRUN.get();
    debt.saturating_sub(now.saturating_sub(at) / PAYBACK)
}

/// The inline budget (ns) of a call starting at `now` on this thread whose
/// full budget is `full`: see [`Control::start_inline`].
fn budget_at(full: u64, now: u64) -> u64 {
    let least = full.min(MIN_INLINE_BUDGET.as_nanos() as u64);
    full.saturating_sub(overrun_at(now)).max(least)
}

/// Notes that a call on this thread ran inline from `from` to `now`, then
/// went on on an engine thread.
fn note_overrun(from: u64, now: u64) {
    let debt = overrun_at(now).saturating_add(now.saturating_sub(from));
    OVERRUN.set((debt, now));
}

/// Why a statement was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Not stopped.
    None = 0,
    /// The inline budget ran out: the call goes on on an engine thread.
    Budget = 1,
    /// The call's deadline passed.
    Deadline = 2,
    /// `interrupt()` was called.
    Interrupt = 3,
    /// SQLite needed a page that is not local yet, on a thread that may not
    /// wait for the KV: the call goes on on an engine thread.
    Miss = 4,
    /// Reading a page from the KV failed.
    ReadFailed = 5,
}

/// Nanoseconds on a process-wide monotonic clock (never 0).
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64 + 1
}

/// Shared between a database, its progress handler and whoever interrupts it.
#[derive(Default)]
pub struct Control {
    /// When the running statement's inline budget runs out (0: no budget).
    budget_until: AtomicU64,
    /// When the call's inline budget runs out (0: the call is not inline).
    inline_until: AtomicU64,
    /// When the call started inline (0: it did not).
    inline_from: AtomicU64,
    /// When the call's deadline passes (0: none).
    deadline: AtomicU64,
    interrupted: AtomicBool,
    stopped: AtomicU8,
    /// Whether the running statement ended a transaction (committed it or
    /// rolled it back: see [`Control::transaction_ended`]).
    ended: AtomicBool,
}

impl Control {
    /// A new call starts: no interrupt pending, its deadline `timeout` from
    /// now (none if `None`).
    pub fn start_call(&self, timeout: Option<Duration>) {
        self.interrupted.store(false, Ordering::SeqCst);
        self.stopped.store(Stop::None as u8, Ordering::SeqCst);
        self.ended.store(false, Ordering::SeqCst);
        self.inline_until.store(0, Ordering::SeqCst);
        self.inline_from.store(0, Ordering::SeqCst);
        self.budget_until.store(0, Ordering::SeqCst);
        // A deadline past u64 nanoseconds (584 years) is none.
        let deadline = timeout
            .and_then(|t| u64::try_from(t.as_nanos()).ok())
            .map_or(0, |ns| now_ns().saturating_add(ns));
        self.deadline.store(deadline, Ordering::SeqCst);
    }

    /// Moves the call's deadline (if it has one) `by` later: time the call
    /// spent waiting for an engine thread, all of them busy with other
    /// databases' calls, is not time it ran.
    pub fn postpone_deadline(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .deadline
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |deadline| {
                (deadline != 0).then(|| deadline.saturating_add(by))
            });
    }

    /// The call runs inline (on the JS thread) for at most `budget` from
    /// now, its statements together, less the time that calls which went on
    /// on an engine thread held this thread lately (its `OVERRUN`), but at
    /// least [`MIN_INLINE_BUDGET`] (or `budget`, if less).
    pub fn start_inline(&self, budget: Duration) {
        let now = now_ns();
        let budget = budget_at(u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX), now);
        self.inline_from.store(now, Ordering::SeqCst);
        self.inline_until
            .store(now.saturating_add(budget), Ordering::SeqCst);
    }

    /// The call that started inline goes on on an engine thread: the time it
    /// held this thread counts against the inline budgets of the calls after
    /// it here (see [`Control::start_inline`]).
    pub fn note_suspended(&self) {
        let from = self.inline_from.load(Ordering::SeqCst);
        if from == 0 {
            return;
        }
        note_overrun(from, now_ns());
    }

    /// Whether the call's inline budget is spent (never on an engine thread).
    pub fn inline_spent(&self) -> bool {
        let until = self.inline_until.load(Ordering::Relaxed);
        until != 0 && now_ns() >= until
    }

    /// Whether the next statement is cut short when the call's inline
    /// budget runs out (false: it may not be cut short for time spent).
    /// Called before and after every statement: the next one has not ended
    /// a transaction yet (see [`Control::transaction_ended`]).
    pub fn set_budget(&self, armed: bool) {
        self.ended.store(false, Ordering::SeqCst);
        let until = if armed {
            self.inline_until.load(Ordering::SeqCst)
        } else {
            0
        };
        self.budget_until.store(until, Ordering::SeqCst);
    }

    /// Stops the running call (from any thread).
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
    }

    /// Why the last statement was stopped, if it was.
    pub fn stopped(&self) -> Stop {
        match self.stopped.load(Ordering::SeqCst) {
            1 => Stop::Budget,
            2 => Stop::Deadline,
            3 => Stop::Interrupt,
            4 => Stop::Miss,
            5 => Stop::ReadFailed,
            _ => Stop::None,
        }
    }

    /// Records why the VFS stopped the statement (a page it could not read).
    pub fn stop_for(&self, stop: Stop) {
        self.stopped.store(stop as u8, Ordering::SeqCst);
    }

    /// Clears the reason of a stop that has been handled.
    pub fn clear_stop(&self) {
        self.stopped.store(Stop::None as u8, Ordering::SeqCst);
    }

    /// SQLite's commit or rollback hook: the running statement ended its
    /// transaction. SQLite asks the progress handler once more on its way
    /// out of a statement, after the commit (or rollback) is done: a stop
    /// there would report `SQLITE_INTERRUPT` for a statement that took
    /// effect (and an inline one would run again on an engine thread, its
    /// row inserted twice). From here to its end, the statement is not
    /// stopped; an interrupt stops the next statement of the call.
    pub fn transaction_ended(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    /// The progress handler: whether SQLite must stop the statement now.
    /// A statement one of whose page reads was stopped is stopped too, at
    /// once: it went on past the read (`PRAGMA integrity_check` reports a
    /// page it cannot read as a row), and what it does next is not to be
    /// trusted.
    pub fn should_stop(&self) -> bool {
        if self.ended.load(Ordering::Relaxed) {
            return false;
        }
        if self.stopped.load(Ordering::Relaxed) != Stop::None as u8 {
            return true;
        }
        self.should_stop_waiting()
    }

    /// Whether a wait for the KV (a page read) must end now: the call was
    /// interrupted, or passed its deadline (or its inline budget), whether
    /// or not the statement ended its transaction. A statement that commits
    /// may still read pages (`auto_vacuum` moves pages at commit); a read
    /// that fails then fails the commit, and SQLite rolls the transaction
    /// back, so stopping it is safe, and a KV that never answers cannot
    /// hold the call.
    pub fn should_stop_waiting(&self) -> bool {
        self.stop_if_asked(true)
    }

    /// Whether the call must stop before the next statement of its script:
    /// it was interrupted or passed its deadline (the stop is recorded).
    /// SQLite asks the progress handler every [`PROGRESS_OPS`]
    /// instructions of one statement, so a script of statements shorter
    /// than that, or each held by one long instruction, would otherwise run
    /// to its end. The inline budget does not count here: the engine moves
    /// such a script to an engine thread between statements itself.
    pub fn stop_before_statement(&self) -> bool {
        self.stop_if_asked(false)
    }

    /// Records and reports a stop the call was asked for: `interrupt()`,
    /// its deadline, or (`with_budget`) its inline budget.
    fn stop_if_asked(&self, with_budget: bool) -> bool {
        let stop = if self.interrupted.load(Ordering::Relaxed) {
            Stop::Interrupt
        } else {
            let (deadline, budget) = (
                self.deadline.load(Ordering::Relaxed),
                if with_budget {
                    self.budget_until.load(Ordering::Relaxed)
                } else {
                    0
                },
            );
            if deadline == 0 && budget == 0 {
                return false;
            }
            let now = now_ns();
            if deadline != 0 && now >= deadline {
                Stop::Deadline
            } else if budget != 0 && now >= budget {
                Stop::Budget
            } else {
                return false;
            }
        };
        self.stopped.store(stop as u8, Ordering::SeqCst);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_that_went_on_on_a_thread_shorten_the_next_inline_budgets() {
        // OVERRUN is this test thread's own; times are made up (ns).
        const MS: u64 = 1_000_000;
        let least = MIN_INLINE_BUDGET.as_nanos() as u64;
        assert_eq!(budget_at(4 * MS, 10 * MS), 4 * MS);
        // A call ran its 4 ms inline, then went on on an engine thread.
        note_overrun(10 * MS, 14 * MS);
        assert_eq!(budget_at(4 * MS, 14 * MS), least);
        // A second one, at once: the least budget, which it spends too.
        note_overrun(14 * MS, 14 * MS + least);
        assert_eq!(budget_at(4 * MS, 14 * MS + least), least);
        // The time since pays it back, a quarter as fast: 4 ms owed, less
        // a quarter of `least`, and `least` more, less 1 ms 4 ms later.
        assert_eq!(
            budget_at(4 * MS, 14 * MS + least + 4 * MS),
            MS - least * 3 / 4
        );
        assert_eq!(budget_at(4 * MS, 14 * MS + least + 18 * MS), 4 * MS);
        // A budget below the least stays as it is.
        assert_eq!(budget_at(0, 0), 0);
        // A call that did not start inline owes nothing.
        let control = Control::default();
        control.start_call(None);
        control.note_suspended();
        assert_eq!(overrun_at(14 * MS + least + 18 * MS), 0);
    }

    #[test]
    fn budget_deadline_and_interrupt() {
        let control = Control::default();
        control.start_call(None);
        assert!(!control.should_stop());
        // Not inline: no budget to spend.
        control.set_budget(true);
        assert!(!control.should_stop() && !control.inline_spent());
        control.start_inline(Duration::ZERO);
        assert!(control.inline_spent());
        control.set_budget(false);
        assert!(!control.should_stop());
        control.set_budget(true);
        assert!(control.should_stop());
        assert_eq!(control.stopped(), Stop::Budget);
        // The engine clears a stop it handled (a stop still recorded stops
        // the statement at the next check).
        control.clear_stop();
        control.set_budget(false);
        control.start_inline(Duration::from_secs(60));
        control.set_budget(true);
        assert!(!control.should_stop() && !control.inline_spent());
        control.set_budget(false);
        control.start_call(Some(Duration::ZERO));
        assert!(control.should_stop());
        assert_eq!(control.stopped(), Stop::Deadline);
        control.start_call(Some(Duration::from_secs(60)));
        assert!(!control.should_stop());
        control.interrupt();
        assert!(control.should_stop());
        assert_eq!(control.stopped(), Stop::Interrupt);
        control.start_call(None);
        assert!(!control.should_stop());
        assert_eq!(control.stopped(), Stop::None);
        // Time spent waiting for a thread moves the deadline; no deadline
        // stays none.
        control.postpone_deadline(Duration::from_secs(60));
        assert!(!control.should_stop());
        control.start_call(Some(Duration::ZERO));
        control.postpone_deadline(Duration::from_secs(60));
        assert!(!control.should_stop());
        control.postpone_deadline(Duration::MAX);
        assert!(!control.should_stop());
        // A statement that ended its transaction is not stopped after; the
        // next one is.
        control.start_call(Some(Duration::ZERO));
        control.interrupt();
        control.transaction_ended();
        assert!(!control.should_stop());
        control.set_budget(false);
        assert!(control.should_stop());
        assert_eq!(control.stopped(), Stop::Interrupt);
        // A wait for the KV ends on a stop even after the commit hook ran.
        control.start_call(Some(Duration::ZERO));
        control.transaction_ended();
        assert!(!control.should_stop() && control.should_stop_waiting());
        assert_eq!(control.stopped(), Stop::Deadline);
        // Before a statement of a script: the deadline and interrupt()
        // count, the inline budget does not.
        control.start_call(None);
        control.start_inline(Duration::ZERO);
        control.set_budget(true);
        assert!(!control.stop_before_statement());
        assert_eq!(control.stopped(), Stop::None);
        control.set_budget(false);
        control.start_call(Some(Duration::ZERO));
        assert!(control.stop_before_statement());
        assert_eq!(control.stopped(), Stop::Deadline);
        control.start_call(None);
        control.interrupt();
        control.transaction_ended();
        assert!(control.stop_before_statement());
        assert_eq!(control.stopped(), Stop::Interrupt);
        // A statement whose page read was stopped is stopped at the next
        // check, whatever its budget.
        control.start_call(None);
        control.stop_for(Stop::ReadFailed);
        assert!(control.should_stop() && !control.should_stop_waiting());
        assert_eq!(control.stopped(), Stop::ReadFailed);
    }
}
