//! The calls JS makes most often on a database (`execute`, `takeDelta`) and
//! the few that go with them (`takePackedDelta`, `ack`, `setStatus`,
//! `setMeta`), as plain N-API functions bound to that database, which
//! `NativeDatabase#calls()` gives out as one object.
//!
//! napi-rs's generated glue costs more than these calls' own work: for
//! every call of a `#[napi]` function it allocates a borrow scope, pushes
//! and pops thread-local stacks, and checks an `External` argument against
//! a process-wide registry behind a mutex (about 3,000 instructions a
//! `takeDelta`, against about 700 for its own work, measured with
//! callgrind; a class method costs more still). A function made here finds
//! its database in the data pointer N-API hands back to it, which nothing
//! but this file sets, so there is nothing to check or record.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::*;
use napi::sys;
use napi::JsError;

use rivetkit_sqlite_engine::connection::{Database, Mode, Output, Step};
use rivetkit_sqlite_engine::errors::EngineError;
use rivetkit_sqlite_engine::values::Params;

use crate::errors::{napi_err, to_js};
use crate::values::{
    optional, output, param, params, sql_text, ArrayMethods, DIRECT_PARAMS, MAX_SAFE,
};
use crate::{ACK_FIRST, COLLECT, NOTHING_PENDING, SUSPENDED, TOO_SMALL};

/// What the functions of one database share: the database, and what they
/// keep between calls. Only the JS thread that made them uses it.
pub(crate) struct Calls {
    db: Arc<Mutex<Database>>,
    /// The SQL of the last `execute` that got as far as running it: a call
    /// that repeats it passes null instead (copying the SQL across N-API
    /// cost about 500 instructions a call). No JS runs while it is taken.
    sql: RefCell<Option<String>>,
    /// The functions results are made with (see `Packer`): `pack`, given
    /// when these functions were made, and `push`, from the first result
    /// that needed it.
    methods: ArrayMethods,
    /// The array `execute` reports `[changes, lastInsertRowid, state]` in
    /// (see [`set_status`]).
    status: RefCell<Option<Float64Array>>,
    /// The array `takeDelta` describes a delta in when it is given none
    /// (see [`set_meta`]).
    meta: RefCell<Option<Float64Array>>,
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, Database> {
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets go of the JS values kept between calls (the status array,
    /// `pack`, `push`), while the environment can still delete references
    /// to them: from the teardown hook (see teardown.rs), which runs before
    /// napi-rs's own. Dropped later, when the functions are finalized, napi-rs no
    /// longer deletes them, and each would be lost. One in use (no JS runs
    /// then, but a call may still be on the stack) is left as it is.
    pub(crate) fn release(&self) {
        if let Ok(mut status) = self.status.try_borrow_mut() {
            status.take();
        }
        if let Ok(mut meta) = self.meta.try_borrow_mut() {
            meta.take();
        }
        self.methods.release();
    }
}

/// A function's body: the database's [`Calls`], the call's env and its
/// arguments (undefined where fewer were passed).
type Body = fn(&Calls, &Env, &[sys::napi_value]) -> Result<sys::napi_value, String>;

/// Most arguments any of these functions takes (`execute`'s).
const MAX_ARGS: usize = 9;

/// The functions, by name.
const FUNCTIONS: [(&str, Body); 6] = [
    ("execute", execute),
    ("takeDelta", take_delta),
    ("takePackedDelta", take_packed_delta),
    ("ack", ack),
    ("setStatus", set_status),
    ("setMeta", set_meta),
];

/// What a function made by [`bind`] holds: its body and its database's
/// [`Calls`] (a reference of its own).
struct Bound {
    body: Body,
    calls: Rc<Calls>,
}

/// The functions of `db`, as one object (see the top of this file).
pub(crate) fn functions<'env>(
    env: &'env Env,
    db: Arc<Mutex<Database>>,
    pack: Function<'env, (), ()>,
) -> Result<Object<'env>> {
    let calls = Rc::new(Calls {
        db,
        sql: RefCell::new(None),
        methods: ArrayMethods::new(pack)?,
        status: RefCell::new(None),
        meta: RefCell::new(None),
    });
    crate::teardown::register_calls(&calls);
    let mut object = Object::new(env)?;
    for (name, body) in FUNCTIONS {
        let function = bind(env, name, body, &calls)?;
        // SAFETY: `function` is a handle made in the current call's scope on `env`.
        object.set_named_property(name, unsafe {
            Unknown::from_raw_unchecked(env.raw(), function)
        })?;
    }
    Ok(object)
}

/// A JS function named `name` that runs `body` on `calls`; what it holds
/// (see [`Bound`]) is released when the function is collected.
fn bind(env: &Env, name: &str, body: Body, calls: &Rc<Calls>) -> Result<sys::napi_value> {
    let bound = Box::into_raw(Box::new(Bound {
        body,
        calls: Rc::clone(calls),
    }));
    let mut function = ptr::null_mut();
    // SAFETY: `env` is the live env of the current call; `name` is valid
    // for `name.len()` bytes; `bound` stays valid as long as the function
    // may run: only the function's finalizer releases it (below).
    let mut status = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast(),
            name.len() as isize,
            Some(callback),
            bound.cast(),
            &mut function,
        )
    };
    if status == sys::Status::napi_ok {
        // SAFETY: as above; `function` was just made on `env`.
        status = unsafe {
            sys::napi_add_finalizer(
                env.raw(),
                function,
                bound.cast(),
                Some(release),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status == sys::Status::napi_ok {
            return Ok(function);
        }
        // The function was made, but nothing would release `bound`: it is
        // not handed out, so it never runs.
    }
    // SAFETY: `bound` came from `Box::into_raw` above, and no function
    // that may run holds it.
    drop(unsafe { Box::from_raw(bound) });
    Err(Error::new(
        Status::from(status),
        format!("could not make the function {name}"),
    ))
}

/// A function's finalizer: releases what it holds.
unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the pointer `bind` got from `Box::into_raw` and
    // gave this finalizer alone to release, once, when the function is
    // collected (no call of it runs any more).
    drop(unsafe { Box::from_raw(data.cast::<Bound>()) });
}

/// What N-API runs for a call of a function made by [`bind`].
unsafe extern "C" fn callback(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut args = [ptr::null_mut(); MAX_ARGS];
    let mut count = MAX_ARGS;
    let mut data = ptr::null_mut();
    // SAFETY: `env` and `info` are those N-API gave this callback; `args`
    // has room for `count` handles (N-API fills those not passed with
    // undefined).
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut count,
            args.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    let result = if status == sys::Status::napi_ok {
        // SAFETY: the data of a function made by `bind` is its live
        // `Bound` (see `bind` and `release`), only used on this, its JS
        // thread; the reference ends with this callback.
        let bound = unsafe { &*data.cast::<Bound>() };
        // A panic must not unwind out of this callback (that aborts the
        // process, every actor of the host with it): the call fails
        // instead, as one on an engine thread does (see `resume`).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (bound.body)(&bound.calls, &Env::from_raw(env), &args)
        }))
        .unwrap_or_else(|_| {
            Err(to_js(EngineError::internal(
                "the engine panicked running this call",
            )))
        })
    } else {
        Err(Error::new(
            Status::from(status).as_ref().to_owned(),
            "could not read the call's arguments".to_owned(),
        ))
    };
    match result {
        Ok(value) => value,
        Err(error) => {
            // SAFETY: `env` is the live env of this callback.
            unsafe { JsError::from(error).throw_into(env) };
            ptr::null_mut()
        }
    }
}

/// `value` as JS.
fn to_napi<T: ToNapiValue>(env: &Env, value: T) -> Result<sys::napi_value, String> {
    // SAFETY: `env` is the live env of the current call.
    unsafe { T::to_napi_value(env.raw(), value) }.map_err(napi_err)
}

/// Argument `i` as a `T`.
fn arg<T: FromNapiValue>(env: &Env, args: &[sys::napi_value], i: usize) -> Result<T, String> {
    // SAFETY: the arguments are handles of the current call on `env`; the
    // conversion checks the value's type.
    unsafe { T::from_napi_value(env.raw(), args[i]) }.map_err(napi_err)
}

/// Argument `i`, whatever it is.
fn unknown<'a>(env: &Env, args: &'a [sys::napi_value], i: usize) -> Unknown<'a> {
    // SAFETY: the arguments are live handles of the current call on `env`.
    unsafe { Unknown::from_raw_unchecked(env.raw(), args[i]) }
}

/// `execute`'s parameters: `named` (argument 1), or `count` positional
/// ones (-1: none), up to `DIRECT_PARAMS` of them as arguments 4…, more in
/// the array of argument 8.
fn call_params(env: &Env, args: &[sys::napi_value], count: i32) -> Result<Params, String> {
    if count < 0 {
        return params(None, optional(unknown(env, args, 1))?);
    }
    if count as usize > DIRECT_PARAMS {
        return params(optional(unknown(env, args, 8))?, None);
    }
    let mut values = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        values.push(param(unknown(env, args, 4 + i), &(i + 1))?);
    }
    Ok(Params::Positional(values))
}

/// `execute(sql, named, flags, count, p0, p1, p2, p3, positional)`: runs
/// `sql`. Returns `[changes, lastInsertRowid, state, columns₀,
/// rowCount₀, cells₀…, …]` (see `output`); with the `SUSPENDED` bit set in
/// `state`, the call goes on on an engine thread: call `resume()`. When a
/// status array was given (see [`set_status`]), a call that returns no
/// columns (and a `lastInsertRowid` that is a safe integer) returns null
/// and puts `[changes, lastInsertRowid, state]` there: a result array built
/// across N-API costs a call per element. The array is given once, not
/// with every call: reading a typed array's memory across N-API costs
/// about 1,100 instructions.
///
/// `sql` null stands for the SQL of the last call that returned (or failed
/// in SQLite): the JS layer passes it again only when it changed.
///
/// Parameters: `named` (an object keyed by name without its sigil), or
/// `count` positional ones (-1: none), up to `DIRECT_PARAMS` of them as
/// the arguments `p0`…, more in the array `positional`. An argument costs
/// nothing to read; an element of an array costs an N-API call (about 600
/// instructions).
///
/// `flags`: `COLLECT` to return the rows of every statement (not only of
/// those that return columns), `ACK_FIRST` to acknowledge the delta taken
/// last (see [`ack`]) before anything else, which spares a call of its own
/// after each write.
fn execute(calls: &Calls, env: &Env, args: &[sys::napi_value]) -> Result<sys::napi_value, String> {
    let flags: u32 = arg(env, args, 2)?;
    let count: i32 = arg(env, args, 3)?;
    if flags & ACK_FIRST != 0 {
        calls.lock().ack().map_err(to_js)?;
    }
    // The SQL first: a getter of the parameters may make a call of its
    // own, which keeps its SQL in place of this one's.
    let given = unknown(env, args, 0);
    let repeated = given.get_type().map_err(napi_err)? == ValueType::Null;
    let sql = if repeated {
        // Null stands for the SQL of the last call, kept here.
        calls.sql.borrow_mut().take().ok_or_else(|| {
            to_js(EngineError::Range(
                "execute: no SQL was given before (null stands for the last call's)".into(),
            ))
        })?
    } else {
        sql_text(given)?
    };
    let params = match call_params(env, args, count) {
        Ok(params) => params,
        Err(error) => {
            if repeated {
                *calls.sql.borrow_mut() = Some(sql);
            }
            return Err(error);
        }
    };
    let step = calls
        .lock()
        .execute(&sql, params, flags & COLLECT != 0, Mode::Inline);
    *calls.sql.borrow_mut() = Some(sql);
    let out = match step.map_err(to_js)? {
        Step::Done(out) => out,
        Step::Suspended => Output {
            state: SUSPENDED,
            ..Output::default()
        },
    };
    let mut kept = calls.status.borrow_mut();
    if let Some(status) = kept.as_mut() {
        let rowid = out.last_insert_rowid;
        if out.sets.is_empty() && status.len() >= 3 && (-MAX_SAFE..=MAX_SAFE).contains(&rowid) {
            // SAFETY: the kept reference keeps the array, hence its buffer,
            // alive, and the caller never detaches that buffer (see
            // `set_status`), so its memory is live; no N-API call, hence no
            // JS, runs while this slice lives, so nothing else reads or
            // writes it meanwhile.
            let status = unsafe { status.as_mut() };
            status[..3].copy_from_slice(&[out.changes as f64, rowid as f64, out.state as f64]);
            return to_napi(env, Null);
        }
    }
    drop(kept);
    // Inline: within the inline budget, the result is small enough to make at once.
    let (array, _) = output(env, out, Some(&calls.methods), usize::MAX).map_err(napi_err)?;
    to_napi(env, array)
}

/// `setStatus(status)`: gives the array `execute` puts `[changes,
/// lastInsertRowid, state]` in (see [`execute`]), 3 entries or more; null
/// takes it back. A reference to it is kept, and its memory written to:
/// the caller must never detach its buffer.
fn set_status(
    calls: &Calls,
    env: &Env,
    args: &[sys::napi_value],
) -> Result<sys::napi_value, String> {
    *calls.status.borrow_mut() = arg::<Option<Float64Array>>(env, args, 0)?;
    to_napi(env, ())
}

/// `setMeta(meta)`: gives the array [`take_delta`] describes a delta in
/// when it is given none (null takes it back). A reference to it is kept,
/// and its memory written to: the caller must never detach its buffer.
/// Reading a typed array argument costs about 900 instructions (callgrind),
/// which each `takeDelta` of a small delta would otherwise pay.
fn set_meta(calls: &Calls, env: &Env, args: &[sys::napi_value]) -> Result<sys::napi_value, String> {
    *calls.meta.borrow_mut() = arg::<Option<Float64Array>>(env, args, 0)?;
    to_napi(env, ())
}

/// `takeDelta(slab, at, meta)`: takes the pending delta: its bytes end to
/// end into `slab` from byte `at`, and into `meta` (null: the array given
/// to [`set_meta`]) the file size at its last seal, the largest size at
/// any of its seals, then each changed chunk's index and length, in index
/// order: `[size, maxSize, index₀, length₀, index₁, …]`. Returns the
/// number of chunks, or `NOTHING_PENDING`, or `TOO_SMALL`: then `meta[0]`
/// holds the bytes and `meta[1]` the `meta` length the delta needs, and it
/// stays pending.
/// Filling arrays the caller owns (a slab shared between deltas) spares an
/// `ArrayBuffer` per chunk and an array per delta, which cost V8 far more
/// than the copy.
fn take_delta(
    calls: &Calls,
    env: &Env,
    args: &[sys::napi_value],
) -> Result<sys::napi_value, String> {
    let mut slab: Uint8ArraySlice = arg(env, args, 0)?;
    let at: u32 = arg(env, args, 1)?;
    let mut given: Option<Float64ArraySlice> = arg(env, args, 2)?;
    let mut kept = calls.meta.borrow_mut();
    let meta = match (given.as_mut(), kept.as_mut()) {
        // SAFETY: no N-API call, hence no JS, runs while this slice lives:
        // the memory of the array read from the argument is live and
        // nothing else reads or writes it meanwhile.
        (Some(given), _) => unsafe { given.as_mut() },
        // SAFETY: the kept reference keeps the array, hence its buffer,
        // alive, and the caller never detaches that buffer (see
        // `set_meta`), so its memory is live; no N-API call, hence no JS,
        // runs while this slice lives, so nothing else reads or writes it.
        (None, Some(kept)) => unsafe { kept.as_mut() },
        (None, None) => {
            return Err(to_js(EngineError::Range(
                "takeDelta: no meta given, and none kept (see setMeta)".into(),
            )))
        }
    };
    if meta.len() < 2 {
        return Err(to_js(EngineError::Range(
            "takeDelta: meta must have at least 2 entries".into(),
        )));
    }
    let mut db = calls.lock();
    let (bytes, chunks) = match db.pending_extent().map_err(to_js)? {
        Some(extent) => extent,
        None => return to_napi(env, NOTHING_PENDING),
    };
    let at = at as usize;
    let entries = 2 + 2 * chunks;
    // Two views of the same memory would make two `&mut` slices of it.
    let (slab_at, slab_end) = (slab.as_ptr() as usize, slab.as_ptr() as usize + slab.len());
    let (meta_at, meta_end) = (
        meta.as_ptr() as usize,
        meta.as_ptr() as usize + 8 * meta.len(),
    );
    if slab_at < meta_end && meta_at < slab_end {
        return Err(to_js(EngineError::Range(
            "takeDelta: slab and meta must not share memory".into(),
        )));
    }
    // SAFETY: no N-API call, hence no JS, runs while this slice lives: the
    // memory of the array read from the argument is live and nothing else
    // reads or writes it meanwhile (`meta` is other memory: see above).
    let target = unsafe { slab.as_mut() };
    let fits = at.checked_add(bytes).is_some_and(|end| end <= target.len());
    if !fits || meta.len() < entries {
        meta[..2].copy_from_slice(&[bytes as f64, entries as f64]);
        return to_napi(env, TOO_SMALL);
    }
    let Some(delta) = db.take().map_err(to_js)? else {
        return to_napi(env, NOTHING_PENDING);
    };
    meta[0] = delta.size as f64;
    meta[1] = delta.max_size as f64;
    let mut offset = at;
    for (i, (index, chunk)) in delta.chunks.iter().enumerate() {
        target[offset..offset + chunk.len()].copy_from_slice(chunk);
        offset += chunk.len();
        meta[2 + 2 * i] = *index as f64;
        meta[3 + 2 * i] = chunk.len() as f64;
    }
    drop(db);
    to_napi(env, delta.chunks.len() as i32)
}

/// `takePackedDelta(meta)`: takes the pending delta as the engine thread
/// that sealed it packed it (a large one: see `Database::take_packed`):
/// returns its bytes end to end, in a buffer of the addon's own (no copy),
/// and fills `meta` as [`take_delta`] does. Returns null when no such delta
/// is pending, or when `meta` is too small for it (see [`take_delta`]):
/// take it with [`take_delta`] then.
fn take_packed_delta(
    calls: &Calls,
    env: &Env,
    args: &[sys::napi_value],
) -> Result<sys::napi_value, String> {
    let mut meta: Float64ArraySlice = arg(env, args, 0)?;
    // SAFETY: no N-API call, hence no JS, runs while this slice lives: the
    // memory of the array read from the argument is live and nothing else
    // reads or writes it meanwhile.
    let meta = unsafe { meta.as_mut() };
    if meta.len() < 2 {
        return to_napi(env, Null);
    }
    let max_chunks = (meta.len() - 2) / 2;
    let Some(packed) = calls.lock().take_packed(max_chunks).map_err(to_js)? else {
        return to_napi(env, Null);
    };
    meta[0] = packed.size as f64;
    meta[1] = packed.max_size as f64;
    for (i, &(index, len)) in packed.chunks.iter().enumerate() {
        meta[2 + 2 * i] = index as f64;
        meta[3 + 2 * i] = len as f64;
    }
    to_napi(env, Uint8Array::from(packed.bytes))
}

/// `ack()`: the delta taken last is durable in the KV. (`execute` can say
/// so too, first thing: see its `flags`.)
fn ack(calls: &Calls, env: &Env, _args: &[sys::napi_value]) -> Result<sys::napi_value, String> {
    calls.lock().ack().map_err(to_js)?;
    to_napi(env, ())
}
