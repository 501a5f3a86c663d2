//! Native engine of `@rivetkit/sqlite-vfs`.
//!
//! JS sees one class, `NativeDatabase`: a SQLite database on a local file
//! that reports, after each call, which 4 KiB chunks changed; its most
//! frequent calls (`execute`, `takeDelta`, `ack`) are plain functions
//! bound to it, which it gives out (see calls.rs). Persisting the changes to the
//! actor's KV is the JS layer's job (see `lib/persist.js`, and
//! `lib/native.js` for the engine JS drives).
//!
//! The engine itself (VFS shim, change tracking, connection, policy, values,
//! errors) is the N-API-free crate `rivetkit-sqlite-engine` in
//! `crates/engine`; this crate only converts between it and JS.

#![deny(clippy::all)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi::JsError;
use napi_derive::napi;

use rivetkit_sqlite_engine::connection::{Database, Output};
use rivetkit_sqlite_engine::control::Control;
use rivetkit_sqlite_engine::errors::{code_name, disk_full, EngineError};
use rivetkit_sqlite_engine::paging::{FetchError, Fetched, PageSource};
use rivetkit_sqlite_engine::pool;
use rivetkit_sqlite_engine::values::{Cell, Param, Params};

mod calls;
mod teardown;

/// An engine error as a JS error whose `code` says what it is: SQLite's
/// extended result code name, `ERR_SQLITE_RANGE` for parameters that do not
/// fit, `ERR_SQLITE_CLOSED` after close. The JS layer turns these into
/// `SqliteError`, `RangeError` and `Error`.
pub(crate) fn to_js(error: EngineError) -> Error<String> {
    match error {
        EngineError::Sqlite { code, message } => Error::new(code_name(code), message),
        EngineError::Range(message) => Error::new("ERR_SQLITE_RANGE".to_owned(), message),
        EngineError::Closed => Error::new(
            "ERR_SQLITE_CLOSED".to_owned(),
            "The database is closed".to_owned(),
        ),
        EngineError::Io(error) if disk_full(&error) => Error::new(
            "SQLITE_FULL".to_owned(),
            format!("local file I/O failed: {error}"),
        ),
        EngineError::Io(error) => Error::new(
            "SQLITE_IOERR".to_owned(),
            format!("local file I/O failed: {error}"),
        ),
    }
}

pub(crate) fn napi_err(error: Error) -> Error<String> {
    Error::new(error.status.as_ref().to_owned(), error.reason.clone())
}

/// A parameter value as JS hands it over: null, number, bigint, string,
/// boolean (1 / 0) or Uint8Array (the JS layer has checked the types and
/// named the parameter in its errors; `name` only serves a value that
/// changed since). One `typeof` and one read per value.
pub(crate) fn param(value: Unknown<'_>, name: &dyn std::fmt::Display) -> Result<Param, String> {
    let value_type = value.get_type().map_err(napi_err)?;
    // SAFETY (each `cast`): the value is of the type `get_type` just read.
    let param = match value_type {
        ValueType::Null => Param::Null,
        ValueType::Number => Param::number(unsafe { value.cast::<f64>() }.map_err(napi_err)?),
        ValueType::String => Param::Text(text(value).ok_or_else(|| unbindable(name))?),
        ValueType::Boolean => {
            Param::Integer(unsafe { value.cast::<bool>() }.map_err(napi_err)? as i64)
        }
        ValueType::BigInt => {
            let (value, lossless) = unsafe { value.cast::<BigInt>() }
                .map_err(napi_err)?
                .get_i64();
            if !lossless {
                return Err(to_js(EngineError::Range(format!(
                    "Parameter {name}: BigInt does not fit in a signed 64-bit integer"
                ))));
            }
            Param::Integer(value)
        }
        // A typed array of another kind fails here (its type is checked).
        ValueType::Object => match unsafe { value.cast::<&[u8]>() } {
            Ok(bytes) => Param::Blob(bytes.to_vec()),
            Err(_) => return Err(unbindable(name)),
        },
        _ => return Err(unbindable(name)),
    };
    Ok(param)
}

fn unbindable(name: &dyn std::fmt::Display) -> Error<String> {
    Error::new(
        "ERR_INVALID_ARG_TYPE".to_owned(),
        format!("Parameter {name}: only null, numbers, bigints, strings, booleans and Uint8Arrays can be bound"),
    )
}

/// Most positional parameters `execute` takes as arguments of its own.
pub(crate) const DIRECT_PARAMS: usize = 4;

/// An argument that may be null or undefined (None), read only when it is
/// needed: napi-rs reads an `Option` argument's type on every call.
pub(crate) fn optional<T: FromNapiValue>(value: Unknown<'_>) -> Result<Option<T>, String> {
    // SAFETY: `value` is a handle of the current call on its env; the
    // `Option` conversion checks the value's type itself.
    unsafe { Option::<T>::from_napi_value(value.value().env, value.raw()) }.map_err(napi_err)
}

/// The parameters of a call: an array (positional), an object keyed by name
/// without its sigil (named), or neither.
pub(crate) fn params(
    positional: Option<Array<'_>>,
    named: Option<Object<'_>>,
) -> Result<Params, String> {
    if let Some(values) = positional {
        let mut params = Vec::with_capacity(values.len() as usize);
        for i in 0..values.len() {
            let value = values.get::<Unknown>(i).map_err(napi_err)?;
            params.push(match value {
                Some(value) => param(value, &(i + 1))?,
                None => Param::Null,
            });
        }
        return Ok(Params::Positional(params));
    }
    let Some(values) = named else {
        return Ok(Params::None);
    };
    let keys = Object::keys(&values).map_err(napi_err)?;
    let mut params = HashMap::with_capacity(keys.len());
    for key in keys {
        let value = values
            .get_named_property::<Unknown>(&key)
            .map_err(napi_err)?;
        let value = param(value, &format_args!("\"{key}\""))?;
        params.insert(key, value);
    }
    Ok(Params::Named(params))
}

/// Text up to about this many bytes (in UTF-8) is read in one N-API call.
const TEXT_BUFFER: usize = 4096;

/// A JS string's text, or None if `value` is not a string. napi-rs's
/// `String` conversion asks for the length, then copies: two N-API calls,
/// each of which transcodes the whole string; here text that fits
/// [`TEXT_BUFFER`] takes one.
fn text(value: Unknown<'_>) -> Option<String> {
    let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); TEXT_BUFFER];
    let mut len = 0;
    // SAFETY: the value and its env are those of the current call; the
    // buffer is writable for TEXT_BUFFER bytes, of which N-API writes `len`
    // plus a NUL.
    let status = unsafe {
        napi::sys::napi_get_value_string_utf8(
            value.value().env,
            value.raw(),
            buffer.as_mut_ptr().cast(),
            TEXT_BUFFER,
            &mut len,
        )
    };
    if status != napi::sys::Status::napi_ok {
        return None;
    }
    // N-API writes whole characters only: text cut short stops less than
    // one character (4 bytes) before the end of the buffer. Text that ends
    // further from it is whole.
    if len + 1 + 4 <= TEXT_BUFFER {
        // SAFETY: N-API wrote the first `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), len) };
        return Some(match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        });
    }
    // SAFETY: `value` is a string (the call above succeeded).
    unsafe { value.cast::<String>() }.ok()
}

/// The SQL text of a call.
pub(crate) fn sql_text(value: Unknown<'_>) -> Result<String, String> {
    text(value).ok_or_else(|| {
        Error::new(
            "ERR_INVALID_ARG_TYPE".to_owned(),
            "SQL must be a string".to_owned(),
        )
    })
}

/// The largest integer a JS number holds exactly: 2^53 − 1.
pub(crate) const MAX_SAFE: i64 = 9_007_199_254_740_991;

/// Integers within ±(2^53 − 1) become numbers, others BigInt.
fn integer<'env>(env: &'env Env, value: i64) -> Result<Unknown<'env>> {
    if (-MAX_SAFE..=MAX_SAFE).contains(&value) {
        (value as f64).into_unknown(env)
    } else {
        BigInt::from(value).into_unknown(env)
    }
}

/// Where a [`Calls`] keeps `Array.prototype.push` (see [`Packer::new`]):
/// empty until a result needs it, and again once teardown lets it go.
pub(crate) type PushCache = RefCell<Option<FunctionRef<(), ()>>>;

/// Values pushed per `Array.prototype.push` call (well within the number of
/// arguments a call may take).
const PUSH_CHUNK: usize = 4096;

/// Up to this many values (a result without rows), an array is filled
/// element by element: one `push` call costs about as much as setting a
/// handful of elements.
const SET_AT_MOST: usize = 4;

/// Builds a JS array of a known length. Setting elements one by one costs a
/// property store across N-API per element, the largest part of making a
/// result; past [`SET_AT_MOST`] values, they are appended with
/// `Array.prototype.push` calls that take many values each.
struct Packer<'env> {
    env: &'env Env,
    array: Array<'env>,
    /// The array's `push` method, when values are pushed.
    push: Option<napi::sys::napi_value>,
    values: Vec<napi::sys::napi_value>,
    /// Values set so far, when they are set one by one.
    set: u32,
}

impl<'env> Packer<'env> {
    /// `push`: where `Array.prototype.push` is kept between calls, if
    /// anywhere (looking it up by name costs about 1,200 instructions).
    fn new(env: &'env Env, len: usize, push: Option<&PushCache>) -> Result<Self> {
        if len <= SET_AT_MOST {
            return Ok(Packer {
                env,
                array: env.create_array(len as u32)?,
                push: None,
                values: Vec::new(),
                set: 0,
            });
        }
        let array = env.create_array(0)?;
        let kept = match push {
            Some(cache) => cache
                .borrow()
                .as_ref()
                .map(|kept| kept.borrow_back(env))
                .transpose()?,
            None => None,
        };
        let method = match kept {
            Some(method) => method,
            None => {
                // (A getter of `push` may run JS, hence a call of its own:
                // no borrow of the cache is held meanwhile.)
                let method = array.get_named_property_unchecked::<Function<(), ()>>("push")?;
                if let Some(cache) = push {
                    let mut cache = cache.borrow_mut();
                    if cache.is_none() {
                        *cache = Some(method.create_ref()?);
                    }
                }
                method
            }
        };
        Ok(Packer {
            env,
            array,
            push: Some(method.raw()),
            values: Vec::with_capacity(len.min(PUSH_CHUNK)),
            set: 0,
        })
    }

    fn add<T: ToNapiValue>(&mut self, value: T) -> Result<()> {
        if self.push.is_none() {
            self.array.set(self.set, value)?;
            self.set += 1;
            return Ok(());
        }
        // SAFETY: `self.env` is the live env of the current call.
        let value = unsafe { T::to_napi_value(self.env.raw(), value)? };
        self.values.push(value);
        if self.values.len() == PUSH_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let Some(push) = self.push else {
            return Ok(());
        };
        if self.values.is_empty() {
            return Ok(());
        }
        let mut ignored = std::ptr::null_mut();
        // SAFETY: the array, its `push` method and every value are handles
        // made in the current call's scope on `self.env`; `values` holds
        // `values.len()` of them.
        let status = unsafe {
            napi::sys::napi_call_function(
                self.env.raw(),
                self.array.raw(),
                push,
                self.values.len(),
                self.values.as_ptr(),
                &mut ignored,
            )
        };
        if status != napi::sys::Status::napi_ok {
            return Err(Error::new(
                Status::from(status),
                "Array.prototype.push failed".to_owned(),
            ));
        }
        self.values.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<Array<'env>> {
        self.flush()?;
        Ok(self.array)
    }
}

/// The result of `execute` as one flat array (each array or object made
/// across N-API costs several calls; one array, see [`Packer`], is the
/// least): `[changes, lastInsertRowid, state, columns₀,
/// rowCount₀, cells₀…, columns₁, rowCount₁, cells₁…]`, one group per
/// statement that returns columns: its column names joined by NUL (which no
/// name holds), its row count, then every cell of every row, row after row.
/// `state` has bit 1 set when no transaction is open, bit 2 when a sealed
/// delta waits to be taken, and bit 4 ([`SUSPENDED`]) when the call goes on
/// on an engine thread.
pub(crate) fn output<'env>(
    env: &'env Env,
    out: Output,
    push: Option<&PushCache>,
) -> Result<Array<'env>> {
    let len: usize = out.sets.iter().map(|set| 2 + set.cells.len()).sum();
    let mut result = Packer::new(env, 3 + len, push)?;
    result.add(out.changes as f64)?;
    result.add(integer(env, out.last_insert_rowid)?)?;
    result.add(out.state)?;
    for set in out.sets {
        let rows = set.row_count() as u32;
        result.add(set.columns)?;
        result.add(rows)?;
        for cell in set.cells {
            match cell {
                Cell::Null => result.add(Null)?,
                Cell::Integer(v) => result.add(integer(env, v)?)?,
                Cell::Real(v) => result.add(v)?,
                Cell::Text(v) => result.add(v)?,
                Cell::Blob(v) => result.add(Uint8ArraySlice::copy_from(env, v)?)?,
            }
        }
    }
    result.finish()
}

/// `[[index, bytes], ...]` as a JS array of pairs.
fn indexed_chunks<'env>(env: &'env Env, chunks: &[(u32, Vec<u8>)]) -> Result<Array<'env>> {
    let mut out = env.create_array(chunks.len() as u32)?;
    for (i, (index, bytes)) in chunks.iter().enumerate() {
        let mut pair = env.create_array(2)?;
        pair.set(0, *index)?;
        pair.set(1, Uint8ArraySlice::copy_from(env, bytes)?)?;
        out.set(i as u32, pair)?;
    }
    Ok(out)
}

/// What an engine thread tells the JS thread, made a JS value there.
enum Event {
    /// The work is done: the flat array of [`output`], or the error as a JS
    /// `Error` value (the promise resolves with it: a rejection could not
    /// carry the error's `code`).
    Finished(std::result::Result<Output, EngineError>),
    /// The thread waits for these chunks of the main file: `{ id, chunks }`,
    /// `chunks` a `Uint32Array` of indices. Read them from the KV and hand
    /// them to `supply(id, …)`.
    Pages(u32, Vec<u32>),
}

impl ToNapiValue for Event {
    unsafe fn to_napi_value(raw: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(raw);
        match val {
            // SAFETY: `raw` is the live env napi-rs handed to this conversion.
            Event::Finished(Ok(out)) => unsafe {
                Array::to_napi_value(raw, output(&env, out, None)?)
            },
            // SAFETY: as above.
            Event::Finished(Err(error)) => {
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

/// What a promise of work done on an engine thread ([`on_engine_thread`])
/// resolves with: the work's value, or its error as a JS `Error` value (see
/// [`Event`]).
struct Done<T>(std::result::Result<T, EngineError>);

impl<T: ToNapiValue> ToNapiValue for Done<T> {
    unsafe fn to_napi_value(raw: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        match val.0 {
            // SAFETY: `raw` is the live env napi-rs handed to this conversion.
            Ok(value) => unsafe { T::to_napi_value(raw, value) },
            // SAFETY: as above.
            Err(error) => Ok(unsafe { JsError::from(to_js(error)).into_value(raw) }),
        }
    }
}

/// Runs `work` on `db` on an engine thread: work that takes the JS thread
/// too long to do inline (reading or removing a file of tens of MB). The
/// promise resolves as [`Done`] says.
fn on_engine_thread<'env, T, F>(
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
        let done = work(&mut db.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        deferred.resolve(Box::new(move |_| Ok(Done(done))));
    });
    Ok(promise)
}

/// What `packedJournal()` resolves with (see `Database::packed_journal_images`).
#[napi(object)]
pub struct PackedJournal {
    pub size: f64,
    pub indices: Uint32Array,
    pub lengths: Uint32Array,
    pub bytes: Uint8Array,
}

type Resolver = Box<dyn FnOnce(Env) -> Result<Event> + Send>;
type Deferred = napi::JsDeferred<Event, Resolver>;

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
struct Link {
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
    fn start(&self, deferred: Deferred) {
        let mut state = self.lock();
        state.deferred = Some(deferred);
        state.parked = None;
        state.waiting = None;
        state.reply = None;
    }

    /// Sends `event` to the promise JS awaits, or keeps it for the next one.
    fn emit(&self, event: Event) {
        let mut state = self.lock();
        match state.deferred.take() {
            Some(deferred) => settle(deferred, event),
            None => state.parked = Some(event),
        }
    }

    /// JS awaits the next event with `deferred`.
    fn next(&self, deferred: Deferred) {
        let mut state = self.lock();
        match state.parked.take() {
            Some(event) => settle(deferred, event),
            None => state.deferred = Some(deferred),
        }
    }

    /// JS answers page request `id` (dropped if nothing waits for it now).
    fn supply(&self, id: u32, reply: std::result::Result<Fetched, String>) {
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
            if control.should_stop() {
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

/// What [`NativeDatabase::take_delta`] returns when no delta is pending.
pub(crate) const NOTHING_PENDING: i32 = -1;

/// The version of the interface between this addon and `lib/native.js`
/// (its exports, their arguments, what they return), which `lib/native.js`
/// checks before it uses an addon: one of another release (a platform
/// package of another version), or another napi-rs package's addon, is
/// refused, not called. Raise it, there and here, with any such change.
#[napi]
pub const ENGINE_INTERFACE: u32 = 4;

/// What [`NativeDatabase::take_delta`] returns when its arrays are too small.
pub(crate) const TOO_SMALL: i32 = -2;

/// [`output`]'s `state` bit of a call that goes on on an engine thread:
/// finish it with `resume()`.
pub(crate) const SUSPENDED: u32 = 4;

/// Bits of `execute`'s `flags`: return the rows of every statement; and
/// acknowledge the delta taken last first.
pub(crate) const COLLECT: u32 = 1;
pub(crate) const ACK_FIRST: u32 = 2;

/// Stops the call of the database `control` belongs to (see
/// `NativeDatabase::interrupt`): a call still waiting for an engine thread
/// (the pool job in `resumed`, if known) gets one of its own at once, and
/// stops there.
fn stop_call(control: &Control, resumed: Option<&Mutex<Option<pool::Ticket>>>) {
    control.interrupt();
    let ticket = resumed.and_then(|resumed| *resumed.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(ticket) = ticket {
        pool::expedite(ticket);
    }
}

/// A SQLite database on a local temporary file, tracking its changed chunks.
///
/// Calls run inline on the JS thread within a small time budget; a call that
/// would run longer is suspended and finished on an engine thread by
/// `resume()`. The JS layer makes no other call while one is suspended.
#[napi]
pub struct NativeDatabase {
    db: Arc<Mutex<Database>>,
    control: Arc<Control>,
    link: Arc<Link>,
    local_path: Option<String>,
    /// The pool job of the last `resume()` (see `interrupt`).
    resumed: Arc<Mutex<Option<pool::Ticket>>>,
}

impl NativeDatabase {
    fn lock(&self) -> MutexGuard<'_, Database> {
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[napi]
impl NativeDatabase {
    #[napi(constructor)]
    pub fn new(env: Env) -> Result<Self, String> {
        let db = Database::new().map_err(to_js)?;
        let native = NativeDatabase {
            control: db.control(),
            link: Arc::default(),
            local_path: db.local_path().map(str::to_owned),
            resumed: Arc::default(),
            db: Arc::new(Mutex::new(db)),
        };
        // Stopped and closed if this JS thread's environment goes away
        // while the database is open (see teardown.rs).
        teardown::register(&env, &native.db, &native.control, &native.resumed).map_err(napi_err)?;
        Ok(native)
    }

    /// The engine's name, as `Database.backend` reports it.
    #[napi(getter, ts_return_type = "\"native\"")]
    pub fn backend(&self) -> &'static str {
        "native"
    }

    /// Writes chunks `firstIndex..` of file `tag` (0 main, 1 journal), as read
    /// from the KV, into the local file. Only before `open`.
    #[napi]
    pub fn load_chunks(
        &self,
        tag: u32,
        first_index: u32,
        chunks: Vec<Option<Uint8Array>>,
    ) -> Result<(), String> {
        let slices: Vec<Option<&[u8]>> = chunks.iter().map(|c| c.as_deref()).collect();
        self.lock()
            .load_chunks(tag, first_index, &slices)
            .map_err(to_js)
    }

    /// Opens SQLite once the files hold what the KV holds, except chunks
    /// `remoteFrom..` of the main file (if given), read from the KV when
    /// SQLite first needs them. Returns true when that needs chunks now: then
    /// `resume()` finishes opening.
    #[napi]
    pub fn open(
        &self,
        main_size: f64,
        journal_size: Option<f64>,
        remote_from: Option<u32>,
    ) -> Result<bool, String> {
        self.lock()
            .open(
                main_size as u64,
                journal_size.map(|s| s as u64),
                remote_from,
            )
            .map_err(to_js)
    }

    /// Whether chunks not yet read may be read lazily (see `open`).
    #[napi(getter)]
    pub fn pages_lazily(&self) -> bool {
        true
    }

    /// The longest a call may run from now on, in milliseconds (null: no limit).
    #[napi]
    pub fn set_timeout(&self, timeout_ms: Option<f64>) {
        // A timeout no Duration holds (JS checks the range first) is none.
        let timeout = timeout_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok());
        self.lock().set_timeout(timeout);
    }

    /// Stops the call that is running on an engine thread, if any: it fails
    /// with `SQLITE_INTERRUPT`. Callable at any time. A call still waiting
    /// for a thread (every one busy with other databases' calls) gets one of
    /// its own at once, and stops there.
    #[napi]
    pub fn interrupt(&self) {
        stop_call(&self.control, Some(&self.resumed));
    }

    /// Finishes the suspended call (or open) on an engine thread. Resolves to
    /// what `execute` returns, or to the call's error (an `Error` value), or
    /// to a page request, `{ id, chunks }`: call `next()`, read the chunks
    /// (a `Uint32Array` of indices) from the KV and hand them to `supply()`.
    #[napi(
        ts_return_type = "Promise<[number, number | bigint, number, ...unknown[]] | Error | { id: number; chunks: Uint32Array }>"
    )]
    pub fn resume<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Event, Resolver>()?;
        self.link.start(deferred);
        let db = self.db.clone();
        let link = self.link.clone();
        let control = self.control.clone();
        let queued = Instant::now();
        let ticket = pool::spawn(move || {
            // The deadline counts the time the call runs, not the time it
            // waited for a thread (all of them busy with other databases).
            control.postpone_deadline(queued.elapsed());
            // A panic must still settle the call (the pool keeps the thread).
            let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut db = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                db.resume(link.clone())
            }))
            .unwrap_or_else(|_| {
                Err(EngineError::internal(
                    "the engine thread running this call panicked",
                ))
            });
            link.emit(Event::Finished(finished));
        });
        // (interrupt() and resume() both run on the JS thread.)
        *self
            .resumed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(ticket);
        Ok(promise)
    }

    /// The promise of the next event of the work `resume()` started, asked
    /// for as soon as a page request comes: what `resume()` resolves with.
    #[napi(
        ts_return_type = "Promise<[number, number | bigint, number, ...unknown[]] | Error | { id: number; chunks: Uint32Array }>"
    )]
    pub fn next<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Event, Resolver>()?;
        self.link.next(deferred);
        Ok(promise)
    }

    /// Answers page request `id`: the chunks in the order asked for, end to
    /// end in `bytes`, with their `lengths` (-1: the KV has no such chunk);
    /// or nulls and the message of the KV's failure.
    #[napi]
    pub fn supply(
        &self,
        id: u32,
        bytes: Option<Uint8Array>,
        lengths: Option<Int32Array>,
        error: Option<String>,
    ) {
        let reply = match (bytes, lengths) {
            (Some(bytes), Some(lengths)) => Ok(Fetched {
                bytes: bytes.to_vec(),
                lengths: lengths
                    .iter()
                    .map(|&len| usize::try_from(len).ok())
                    .collect(),
            }),
            _ => Err(error.unwrap_or_else(|| "the KV read failed".to_owned())),
        };
        self.link.supply(id, reply);
    }

    /// Whether no transaction is open.
    #[napi]
    pub fn is_autocommit(&self) -> Result<bool, String> {
        self.lock().is_autocommit().map_err(to_js)
    }

    /// Whether the last `execute` (even one that failed) changed anything:
    /// sealed changes, or ran a statement that writes (inside a transaction
    /// too).
    #[napi]
    pub fn last_call_changed(&self) -> Result<bool, String> {
        self.lock().last_call_changed().map_err(to_js)
    }

    /// What a rollback journal for the pending commit must hold: `{ size,
    /// pages: [[index, bytes], ...] }`, the durable size and the durable bytes
    /// of every chunk changed since, within that size. With `maxBytes`, null
    /// instead (nothing copied) if those bytes are more: then
    /// `packedJournal()` makes them on an engine thread.
    #[napi(ts_return_type = "{ size: number; pages: [number, Uint8Array][] } | null")]
    pub fn journal<'env>(
        &self,
        env: &'env Env,
        max_bytes: Option<f64>,
    ) -> Result<Option<Object<'env>>, String> {
        let db = self.lock();
        if let Some(max) = max_bytes {
            if db.journal_bytes().map_err(to_js)? as f64 > max {
                return Ok(None);
            }
        }
        let (size, images) = db.journal_images().map_err(to_js)?;
        drop(db);
        let build = || -> Result<Object<'env>> {
            let pages = indexed_chunks(env, &images)?;
            let mut result = Object::new(env)?;
            result.set("size", size as f64)?;
            result.set("pages", pages)?;
            Ok(result)
        };
        build().map(Some).map_err(napi_err)
    }

    /// What `journal()` returns, made on an engine thread (the images of a
    /// commit of tens of MB take tens of ms to copy) and packed: resolves to
    /// `{ size, indices, lengths, bytes }`, each chunk's index and length and
    /// their bytes end to end, or to the error (an `Error` value).
    #[napi(
        ts_return_type = "Promise<{ size: number; indices: Uint32Array; lengths: Uint32Array; bytes: Uint8Array } | Error>"
    )]
    pub fn packed_journal<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        on_engine_thread(env, &self.db, |db| {
            let images = db.packed_journal_images()?;
            Ok(PackedJournal {
                size: images.size as f64,
                indices: Uint32Array::new(images.indices),
                lengths: Uint32Array::new(images.lengths),
                bytes: Uint8Array::from(images.bytes),
            })
        })
    }

    /// Chunks changed since the durable state whose durable bytes the engine
    /// does not have (written while still only in the KV): read them from
    /// the KV, while it holds the durable state, and hand them to
    /// `provideImages()` before `journal()`.
    #[napi]
    pub fn unknown_images(&self) -> Result<Uint32Array, String> {
        self.lock()
            .unknown_images()
            .map(Uint32Array::new)
            .map_err(to_js)
    }

    /// The KV's bytes of the chunks `unknownImages()` listed (null: none).
    #[napi]
    pub fn provide_images(
        &self,
        indices: Vec<u32>,
        chunks: Vec<Option<Uint8Array>>,
    ) -> Result<(), String> {
        let slices: Vec<Option<&[u8]>> = chunks.iter().map(|c| c.as_deref()).collect();
        self.lock().set_images(&indices, &slices).map_err(to_js)
    }

    /// The chunks of the main file still only in the KV (`export()` holds
    /// whatever the local file has there).
    #[napi]
    pub fn remote_chunks(&self) -> Result<Uint32Array, String> {
        self.lock()
            .remote_chunks()
            .map(Uint32Array::new)
            .map_err(to_js)
    }

    /// Returns to the last durable state (after a failed persist).
    #[napi]
    pub fn restore(&self) -> Result<(), String> {
        self.lock().restore().map_err(to_js)
    }

    /// The whole database file, read on an engine thread (a file of 1 GB
    /// takes about a second to read): resolves to its bytes, or to the error
    /// (an `Error` value).
    #[napi(ts_return_type = "Promise<Uint8Array | Error>")]
    pub fn export<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        on_engine_thread(env, &self.db, |db| db.export().map(Uint8Array::from))
    }

    /// Closes SQLite and removes its local files, on an engine
    /// thread (removing a local file of 64 MB took 40 ms): resolves to
    /// null, or to the error (an `Error` value). Idempotent.
    #[napi(ts_return_type = "Promise<null | Error>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> Result<Object<'env>> {
        self.local_path = None;
        on_engine_thread(env, &self.db, |db| db.close().map(|()| Null))
    }

    /// Closes SQLite and removes its local files at once, on this thread,
    /// if they take at most `max_bytes` on disk and no engine thread holds
    /// the database: returns whether it did (if not, `close()` does it on
    /// an engine thread). A failure to close is thrown (it is closed all
    /// the same, as with `close()`).
    #[napi]
    pub fn close_now(&mut self, max_bytes: f64) -> Result<bool, String> {
        let Ok(mut db) = self.db.try_lock() else {
            return Ok(false);
        };
        if db.local_bytes() as f64 > max_bytes {
            return Ok(false);
        }
        self.local_path = None;
        db.close().map_err(to_js)?;
        Ok(true)
    }

    /// The local file's path (null once closed); SQLite's journal, if it
    /// makes one, is the path and `-journal`.
    #[napi(getter)]
    pub fn local_path(&self) -> Option<String> {
        self.local_path.clone()
    }

    /// The functions `execute`, `takeDelta`, `takePackedDelta`, `ack`
    /// and `setStatus` of this database (see calls.rs).
    #[napi(
        ts_return_type = "{ execute(sql: string | null, named: Record<string, unknown> | null, flags: number, count: number, p0?: unknown, p1?: unknown, p2?: unknown, p3?: unknown, positional?: unknown[] | null): [changes: number, lastInsertRowid: number | bigint, state: number, ...columnsRowCountsAndCells: unknown[]] | null; takeDelta(slab: Uint8Array, at: number, meta: Float64Array): number; takePackedDelta(meta: Float64Array): Uint8Array | null; ack(): void; setStatus(status: Float64Array | null): void }"
    )]
    pub fn calls<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        calls::functions(env, self.db.clone())
    }
}
