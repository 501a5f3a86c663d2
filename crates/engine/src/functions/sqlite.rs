//! The C API the functions are registered and called through: arguments
//! read with SQLite's own conversions, results set from an [`Out`].

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::{ffi, Connection};

use super::Out;

/// One argument of the current call.
#[derive(Clone, Copy)]
pub struct Value(*mut ffi::sqlite3_value);

impl Value {
    pub fn kind(self) -> c_int {
        // SAFETY: the value is an argument of the call running now.
        unsafe { ffi::sqlite3_value_type(self.0) }
    }

    pub fn is_null(self) -> bool {
        self.kind() == ffi::SQLITE_NULL
    }

    /// The type after numeric affinity, which the value keeps.
    pub fn numeric_kind(self) -> c_int {
        // SAFETY: as in `kind`; SQLite may convert the value in place.
        unsafe { ffi::sqlite3_value_numeric_type(self.0) }
    }

    /// `sqlite3_value_int`: a C `int` (the low 32 bits of the 64-bit one).
    pub fn int(self) -> i32 {
        // SAFETY: as in `kind`.
        unsafe { ffi::sqlite3_value_int(self.0) }
    }

    pub fn int64(self) -> i64 {
        // SAFETY: as in `kind`.
        unsafe { ffi::sqlite3_value_int64(self.0) }
    }

    pub fn double(self) -> f64 {
        // SAFETY: as in `kind`.
        unsafe { ffi::sqlite3_value_double(self.0) }
    }

    /// `sqlite3_value_bytes`: the length of the value as text (or blob).
    pub fn bytes(self) -> usize {
        // SAFETY: as in `kind`.
        let n = unsafe { ffi::sqlite3_value_bytes(self.0) };
        usize::try_from(n).unwrap_or(0)
    }

    /// The value as UTF-8 text (a BLOB's bytes as they are), NUL included.
    pub fn text(self) -> Vec<u8> {
        // SAFETY: as in `kind`. The text stays valid until the value is
        // converted again; `sqlite3_value_bytes` after `sqlite3_value_text`
        // does not convert it, and the bytes are copied before returning.
        unsafe {
            let p = ffi::sqlite3_value_text(self.0);
            if p.is_null() {
                return Vec::new();
            }
            let n = usize::try_from(ffi::sqlite3_value_bytes(self.0)).unwrap_or(0);
            std::slice::from_raw_parts(p, n).to_vec()
        }
    }
}

/// The context of the call running now.
pub struct Context(*mut ffi::sqlite3_context);

impl Context {
    /// The connection's SQLITE_LIMIT_LENGTH.
    pub fn length_limit(&self) -> u64 {
        // SAFETY: the context is that of the call running now, on its
        // connection's thread; -1 only reads the limit.
        let limit = unsafe {
            ffi::sqlite3_limit(
                ffi::sqlite3_context_db_handle(self.0),
                ffi::SQLITE_LIMIT_LENGTH,
                -1,
            )
        };
        u64::try_from(limit).unwrap_or(0)
    }

    fn set(&self, out: Out) {
        // SAFETY: the context is that of the call running now; SQLite
        // copies the text and the message (SQLITE_TRANSIENT, and
        // sqlite3_result_error copies), and `empty` outlives the call.
        unsafe {
            match out {
                Out::Null => ffi::sqlite3_result_null(self.0),
                Out::Int(i) => ffi::sqlite3_result_int64(self.0, i),
                Out::Real(r) => ffi::sqlite3_result_double(self.0, r),
                Out::Text(bytes) => {
                    let empty: &[u8] = b"\0";
                    let p = if bytes.is_empty() {
                        empty.as_ptr()
                    } else {
                        bytes.as_ptr()
                    };
                    ffi::sqlite3_result_text64(
                        self.0,
                        p.cast::<c_char>(),
                        bytes.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                        ffi::SQLITE_UTF8 as u8,
                    );
                }
                Out::Error(message) => ffi::sqlite3_result_error(
                    self.0,
                    message.as_ptr().cast::<c_char>(),
                    message.len() as c_int,
                ),
                Out::TooBig => ffi::sqlite3_result_error_toobig(self.0),
            }
        }
    }

    /// Sets the result of `f`, or an error if it panicked.
    fn answer(&self, f: impl FnOnce() -> Out) {
        let out = catch_unwind(AssertUnwindSafe(f))
            .unwrap_or(Out::Error("internal error in a SQL function"));
        self.set(out);
    }
}

/// A scalar function's call: its context and arguments.
pub struct Call {
    context: Context,
    args: Vec<Value>,
}

impl Call {
    /// # Safety
    /// `argv` points to `argc` values of the call running on `ctx`.
    unsafe fn new(
        ctx: *mut ffi::sqlite3_context,
        argc: c_int,
        argv: *mut *mut ffi::sqlite3_value,
    ) -> Self {
        let n = usize::try_from(argc).unwrap_or(0);
        let args = if argv.is_null() || n == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller's contract.
            unsafe { std::slice::from_raw_parts(argv, n) }
                .iter()
                .map(|&v| Value(v))
                .collect()
        };
        Call {
            context: Context(ctx),
            args,
        }
    }

    pub fn arg(&self, i: usize) -> Value {
        self.args[i]
    }

    pub fn len(&self) -> usize {
        self.args.len()
    }

    pub fn context(&self) -> &Context {
        &self.context
    }
}

fn check(conn: &Connection, rc: c_int) -> rusqlite::Result<()> {
    if rc == ffi::SQLITE_OK {
        return Ok(());
    }
    // SAFETY: the handle is open for as long as `conn` is borrowed.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(conn.handle())) };
    Err(rusqlite::Error::SqliteFailure(
        ffi::Error::new(rc),
        Some(message.to_string_lossy().into_owned()),
    ))
}

/// Frees a registration's Box when SQLite drops the function.
extern "C" fn drop_box<T>(p: *mut c_void) {
    // SAFETY: `p` is the Box::into_raw of a `T` given to
    // sqlite3_create_function_v2 with this destructor, dropped once.
    drop(unsafe { Box::from_raw(p.cast::<T>()) });
}

extern "C" fn scalar_call(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls with the function's context and arguments; the
    // user data is the `Scalar` boxed by `create_scalar`, alive while the
    // function is registered.
    let (call, f) = unsafe {
        (
            Call::new(ctx, argc, argv),
            *ffi::sqlite3_user_data(ctx).cast::<super::Scalar>(),
        )
    };
    call.context.answer(|| f(&call));
}

/// Registers `f` as the scalar function `name` of `n_arg` arguments.
pub fn create_scalar(
    conn: &Connection,
    name: &CStr,
    n_arg: c_int,
    flags: c_int,
    f: super::Scalar,
) -> rusqlite::Result<()> {
    let data = Box::into_raw(Box::new(f));
    // SAFETY: the handle is open; SQLite owns `data` from here on and frees
    // it with `drop_box` (also when registering fails).
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            conn.handle(),
            name.as_ptr(),
            n_arg,
            flags,
            data.cast::<c_void>(),
            Some(scalar_call),
            None,
            None,
            Some(drop_box::<super::Scalar>),
        )
    };
    check(conn, rc)
}

/// An aggregate's step and final functions over its state `S`.
struct Aggregate<S> {
    step: fn(&mut S, Value),
    finish: fn(S) -> Out,
}

/// The aggregate's functions, and the slot its state's Box is kept in
/// (the call's aggregate context, zeroed by SQLite; null if it could not
/// be allocated, or, with `size` 0, if no step ran).
///
/// # Safety
/// `ctx` is the context of a call of an aggregate registered by
/// `create_aggregate::<S>`.
unsafe fn aggregate<S: 'static>(
    ctx: *mut ffi::sqlite3_context,
    size: usize,
) -> (&'static Aggregate<S>, *mut *mut S) {
    // SAFETY: the caller's contract: the user data is the boxed
    // `Aggregate<S>`, alive while the function is registered.
    unsafe {
        let fns = &*ffi::sqlite3_user_data(ctx).cast::<Aggregate<S>>();
        let slot = ffi::sqlite3_aggregate_context(ctx, size as c_int).cast::<*mut S>();
        (fns, slot)
    }
}

extern "C" fn aggregate_step<S: Default + 'static>(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls with the aggregate's context and arguments.
    let (call, (fns, slot)) = unsafe {
        (
            Call::new(ctx, argc, argv),
            aggregate::<S>(ctx, std::mem::size_of::<*mut S>()),
        )
    };
    if slot.is_null() {
        // SAFETY: the context of the call running now.
        unsafe { ffi::sqlite3_result_error_nomem(ctx) };
        return;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `slot` is this group's aggregate context, holding null or
        // the Box this function stored there, which only the final
        // function takes.
        let state = unsafe {
            if (*slot).is_null() {
                *slot = Box::into_raw(Box::<S>::default());
            }
            &mut **slot
        };
        (fns.step)(state, call.arg(0));
    }));
    if result.is_err() {
        call.context
            .set(Out::Error("internal error in a SQL function"));
    }
}

extern "C" fn aggregate_final<S: Default + 'static>(ctx: *mut ffi::sqlite3_context) {
    // SAFETY: SQLite calls with the aggregate's context, once per group
    // (also when a statement is reset before the end), after its steps.
    let (fns, slot) = unsafe { aggregate::<S>(ctx, 0) };
    // SAFETY: as in `aggregate_step`; the Box is taken out of the slot.
    let state = unsafe {
        if slot.is_null() || (*slot).is_null() {
            S::default()
        } else {
            let state = *Box::from_raw(*slot);
            *slot = std::ptr::null_mut();
            state
        }
    };
    Context(ctx).answer(|| (fns.finish)(state));
}

/// Registers the aggregate `name` of one argument.
pub fn create_aggregate<S: Default + 'static>(
    conn: &Connection,
    name: &CStr,
    flags: c_int,
    step: fn(&mut S, Value),
    finish: fn(S) -> Out,
) -> rusqlite::Result<()> {
    let data = Box::into_raw(Box::new(Aggregate { step, finish }));
    // SAFETY: as in `create_scalar`.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            conn.handle(),
            name.as_ptr(),
            1,
            flags,
            data.cast::<c_void>(),
            None,
            Some(aggregate_step::<S>),
            Some(aggregate_final::<S>),
            Some(drop_box::<Aggregate<S>>),
        )
    };
    check(conn, rc)
}
