//! The JS side of work done on an engine thread: the events it sends the JS
//! thread (a result, a page request), and the link over which JS answers
//! its page requests.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::JsError;

use rivetkit_sqlite_engine::connection::{Database, Output};
use rivetkit_sqlite_engine::control::Control;
use rivetkit_sqlite_engine::errors::EngineError;
use rivetkit_sqlite_engine::paging::{FetchError, Fetched, PageSource};
use rivetkit_sqlite_engine::pool;

use crate::errors::to_js;
use crate::values::{output, Unsent};
use crate::PART_VALUES;

/// Where the rest of a result made in parts waits (see `moreResults`).
pub(crate) type UnsentSlot = Arc<Mutex<Option<Unsent>>>;

/// What an engine thread tells the JS thread, made a JS value there.
pub(crate) enum Event {
    /// The work is done: the flat array of [`output`], or the error as a JS
    /// `Error` value (the promise resolves with it: a rejection could not
    /// carry the error's `code`). What a large result leaves for later
    /// parts goes to the slot (see `moreResults`).
    Finished(std::result::Result<Output, EngineError>, UnsentSlot),
    /// The thread waits for these chunks of the main file: `{ id, chunks }`,
    /// `chunks` a `Uint32Array` of indices. Read them from the KV and hand
    /// them to `supply(id, …)`.
    Pages(u32, Vec<u32>),
}

impl ToNapiValue for Event {
    unsafe fn to_napi_value(raw: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(raw);
        match val {
            Event::Finished(Ok(out), slot) => match output(&env, out, None, PART_VALUES) {
                Ok((array, unsent)) => {
                    *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = unsent;
                    // SAFETY: `raw` is the live env napi-rs handed to this conversion.
                    unsafe { Array::to_napi_value(raw, array) }
                }
                // SAFETY: as above.
                Err(error) => Ok(unsafe { thrown(raw, error) }),
            },
            // SAFETY: as above.
            Event::Finished(Err(error), _) => {
                Ok(unsafe { JsError::from(to_js(error)).into_value(raw) })
            }
            Event::Pages(id, indices) => {
                let mut request = Object::new(&env)?;
                request.set("id", id)?;
                request.set("chunks", Uint32Array::new(indices))?;
                // SAFETY: as above.
                unsafe { Object::to_napi_value(raw, request) }
            }
        }
    }
}

/// The error value a result that could not be made resolves with: the JS
/// exception that stopped it (cleared: one left pending here is lost, and
/// the call's promise never settled), or else `error`'s.
///
/// # Safety
/// `raw` must be the live env of the current conversion.
unsafe fn thrown(raw: napi::sys::napi_env, error: Error) -> napi::sys::napi_value {
    let mut pending = false;
    let mut exception = std::ptr::null_mut();
    // SAFETY: `raw` is live (the caller's contract); both calls only read
    // and clear the env's pending exception.
    let caught = unsafe {
        napi::sys::napi_is_exception_pending(raw, &mut pending) == napi::sys::Status::napi_ok
            && pending
            && napi::sys::napi_get_and_clear_last_exception(raw, &mut exception)
                == napi::sys::Status::napi_ok
            && !exception.is_null()
    };
    if caught {
        return exception;
    }
    // SAFETY: as above.
    unsafe { JsError::from(error).into_value(raw) }
}

/// What a promise of work done on an engine thread ([`on_engine_thread`])
/// resolves with: the work's value, or its error as a JS `Error` value (see
/// [`Event`]).
struct Done<T>(std::result::Result<T, EngineError>);

impl<T: ToNapiValue> ToNapiValue for Done<T> {
    unsafe fn to_napi_value(raw: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        match val.0 {
            // SAFETY: `raw` is the live env napi-rs handed to this conversion.
            Ok(value) => match unsafe { T::to_napi_value(raw, value) } {
                Ok(made) => Ok(made),
                // (A value JS cannot hold, say: the promise resolves with why.)
                // SAFETY: as above.
                Err(error) => Ok(unsafe { thrown(raw, error) }),
            },
            // SAFETY: as above.
            Err(error) => Ok(unsafe { JsError::from(to_js(error)).into_value(raw) }),
        }
    }
}

/// Runs `work` on `db` on an engine thread: work that takes the JS thread
/// too long to do inline (reading or removing a file of tens of MB). The
/// promise resolves as [`Done`] says.
pub(crate) fn on_engine_thread<'env, T, F>(
    env: &'env Env,
    db: &Arc<Mutex<Database>>,
    work: F,
) -> Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce(&mut Database) -> std::result::Result<T, EngineError> + Send + 'static,
{
    type Settle<T> = Box<dyn FnOnce(Env) -> Result<Done<T>> + Send>;
    let (deferred, promise) = env.create_deferred::<Done<T>, Settle<T>>()?;
    let db = db.clone();
    pool::spawn(move || {
        // A panic must still settle the promise (as resume() does for a call).
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            work(&mut db.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
        }))
        .unwrap_or_else(|_| {
            Err(EngineError::internal(
                "the engine thread doing this panicked",
            ))
        });
        deferred.resolve(Box::new(move |_| Ok(Done(done))));
    });
    Ok(promise)
}

pub(crate) type Resolver = Box<dyn FnOnce(Env) -> Result<Event> + Send>;
pub(crate) type Deferred = napi::JsDeferred<Event, Resolver>;

fn settle(deferred: Deferred, event: Event) {
    deferred.resolve(Box::new(move |_| Ok(event)));
}

/// The JS side of an engine thread's work: where its next [`Event`] goes (the
/// promise JS awaits), and the chunks JS read for it.
///
/// JS starts the work (`resume()`). Each time the promise resolves with a
/// page request, JS asks for the next event (`next()`) at once, then reads
/// the chunks and hands them over (`supply()`). The work may end before they
/// come (an interrupt, the deadline): its result goes to the promise JS
/// already awaits, and the late chunks are dropped.
#[derive(Default)]
pub(crate) struct Link {
    state: Mutex<LinkState>,
    wake: Condvar,
}

#[derive(Default)]
struct LinkState {
    /// The promise JS awaits, if it awaits one.
    deferred: Option<Deferred>,
    /// An event no promise awaited yet.
    parked: Option<Event>,
    /// The page request the engine thread waits for, if it waits.
    waiting: Option<u32>,
    /// The last page request's number.
    requests: u32,
    /// The answer to the page request, once JS supplied it.
    reply: Option<std::result::Result<Fetched, String>>,
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// New work starts: its events go to `deferred`.
    pub(crate) fn start(&self, deferred: Deferred) {
        let mut state = self.lock();
        state.deferred = Some(deferred);
        state.parked = None;
        state.waiting = None;
        state.reply = None;
    }

    /// Sends `event` to the promise JS awaits, or keeps it for the next one.
    pub(crate) fn emit(&self, event: Event) {
        let mut state = self.lock();
        match state.deferred.take() {
            Some(deferred) => settle(deferred, event),
            None => state.parked = Some(event),
        }
    }

    /// JS awaits the next event with `deferred`.
    pub(crate) fn next(&self, deferred: Deferred) {
        let mut state = self.lock();
        match state.parked.take() {
            Some(event) => settle(deferred, event),
            None => state.deferred = Some(deferred),
        }
    }

    /// JS answers page request `id` (dropped if nothing waits for it now).
    pub(crate) fn supply(&self, id: u32, reply: std::result::Result<Fetched, String>) {
        let mut state = self.lock();
        if state.waiting == Some(id) {
            state.reply = Some(reply);
            self.wake.notify_all();
        }
    }
}

impl PageSource for Link {
    fn fetch(
        &self,
        indices: &[u32],
        control: &Control,
    ) -> std::result::Result<Fetched, FetchError> {
        let mut state = self.lock();
        let Some(deferred) = state.deferred.take() else {
            return Err(FetchError::Failed(
                "no reader waits for page requests".into(),
            ));
        };
        state.requests = state.requests.wrapping_add(1);
        let id = state.requests;
        state.reply = None;
        state.waiting = Some(id);
        settle(deferred, Event::Pages(id, indices.to_vec()));
        // The thread only waits for the JS thread's KV read meanwhile: the
        // pool may run another database's call in its place.
        pool::waiting(move || loop {
            if let Some(reply) = state.reply.take() {
                state.waiting = None;
                return reply.map_err(FetchError::Failed);
            }
            // An interrupt or the deadline ends the wait; the chunks, when
            // they come, are dropped.
            if control.should_stop_waiting() {
                state.waiting = None;
                return Err(FetchError::Stopped);
            }
            state = self
                .wake
                .wait_timeout(state, Duration::from_millis(5))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        })
    }
}
