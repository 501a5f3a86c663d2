//! What happens to a JS thread's databases when its environment goes away
//! (a worker terminated with `worker.terminate()`, or the process ending)
//! while they are still open.
//!
//! Nothing of JS runs any more then: no `close()`, no `interrupt()`, no
//! answer to a page request. A call running on an engine thread would go on
//! for as long as its timeout allows (forever without one), holding one of
//! the pool's threads, and an engine thread waiting for a page would wait
//! as long; and a runtime that does not finalize the environment's objects
//! (Bun, for a terminated worker) would keep every open database's local
//! files. So each JS thread registers a cleanup hook with its first
//! database: it stops the calls still running (as `interrupt()` does) and
//! closes every database of that thread still open, removing its local
//! files. The KV is not touched: what a call had not written is lost, as
//! when the process is killed, and the next open reads what the KV holds.
//! It also lets go of the JS values the databases' functions keep (see
//! `Calls::release`): napi-rs's own hook, which runs after this one, leaves
//! the references that remain undeleted; and of the thread's hold on the
//! process's directory for local files (see `scratch` in the engine).

use std::cell::RefCell;
use std::rc;
use std::sync::{Arc, Mutex, Weak};

use napi::bindgen_prelude::*;

use rivetkit_sqlite_engine::connection::Database;
use rivetkit_sqlite_engine::control::Control;
use rivetkit_sqlite_engine::pool;
use rivetkit_sqlite_engine::scratch;

use crate::calls::Calls;

/// What teardown needs of one database: the same `Arc`s its `NativeDatabase`
/// holds, weakly (a database finalized or closed and dropped is skipped).
struct Opened {
    db: Weak<Mutex<Database>>,
    control: Weak<Control>,
    resumed: Weak<Mutex<Option<pool::Ticket>>>,
}

/// This JS thread's databases; `None` until the first one registers (and
/// with it, the cleanup hook).
#[derive(Default)]
struct Registry {
    opened: Option<Vec<Opened>>,
    /// How many entries to let `opened` reach before dropping those whose
    /// database is gone (see `push_pruned`).
    prune_at: usize,
    /// The functions of this thread's databases (see calls.rs), weakly:
    /// what they keep of JS is let go at teardown (see `Calls::release`).
    calls: Vec<rc::Weak<Calls>>,
    /// As `prune_at`, for `calls`.
    prune_calls_at: usize,
    /// Keeps the process's directory for the local files until this
    /// thread's environment goes away (see scratch.rs in the engine).
    directory: Option<scratch::Hold>,
}

thread_local! {
    // One JS environment per thread: Node's and Bun's workers each run on
    // a thread of their own.
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Registers a database opened on this JS thread (see the top of this file).
pub fn register(
    env: &Env,
    db: &Arc<Mutex<Database>>,
    control: &Arc<Control>,
    resumed: &Arc<Mutex<Option<pool::Ticket>>>,
) -> Result<()> {
    REGISTRY.with(|registry| {
        let registry = &mut *registry.borrow_mut();
        if registry.opened.is_none() {
            env.add_env_cleanup_hook((), |()| teardown())?;
        }
        if registry.directory.is_none() {
            registry.directory = scratch::hold();
        }
        let opened = registry.opened.get_or_insert_with(Vec::new);
        let entry = Opened {
            db: Arc::downgrade(db),
            control: Arc::downgrade(control),
            resumed: Arc::downgrade(resumed),
        };
        push_pruned(opened, &mut registry.prune_at, entry, |entry| {
            entry.db.strong_count() > 0
        });
        Ok(())
    })
}

/// Registers the functions of a database made on this JS thread (see
/// calls.rs), after the database itself (see [`register`]).
pub fn register_calls(calls: &rc::Rc<Calls>) {
    REGISTRY.with(|registry| {
        let registry = &mut *registry.borrow_mut();
        let entry = rc::Rc::downgrade(calls);
        push_pruned(
            &mut registry.calls,
            &mut registry.prune_calls_at,
            entry,
            |entry| entry.strong_count() > 0,
        );
    });
}

/// Adds `entry` to `list`, first dropping the entries no longer `live` if
/// the list has reached `prune_at` (which then becomes twice what is left).
fn push_pruned<T>(list: &mut Vec<T>, prune_at: &mut usize, entry: T, live: impl Fn(&T) -> bool) {
    if list.len() >= *prune_at {
        list.retain(|entry| live(entry));
        *prune_at = (2 * list.len()).max(64);
    }
    list.push(entry);
}

/// The environment of this thread goes away: stops its databases' calls and
/// closes them.
fn teardown() {
    // The directory goes (if nothing else holds it) once the databases
    // closed here are: at the end of this function.
    let (opened, calls, _directory) = REGISTRY.with(|registry| {
        let registry = &mut *registry.borrow_mut();
        (
            registry.opened.take(),
            std::mem::take(&mut registry.calls),
            registry.directory.take(),
        )
    });
    for entry in calls {
        if let Some(calls) = entry.upgrade() {
            calls.release();
        }
    }
    let opened = opened.unwrap_or_default();
    for entry in opened {
        // (The database's object may be finalized already, and its call
        // still running: the call holds the control, not the pool ticket.)
        if let Some(control) = entry.control.upgrade() {
            crate::stop_call(&control, entry.resumed.upgrade().as_deref());
        }
        let Some(db) = entry.db.upgrade() else {
            continue;
        };
        // Closed here if no engine thread holds it, else by an engine
        // thread once the stopped call lets go of it.
        let idle = match db.try_lock() {
            Ok(mut database) => {
                let _ = database.close();
                true
            }
            Err(_) => false,
        };
        if !idle {
            pool::spawn(move || {
                let _ = db.lock().unwrap_or_else(|p| p.into_inner()).close();
            });
        }
    }
}
