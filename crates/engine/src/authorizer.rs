//! The authorizer every connection gets (its rules are in policy.rs),
//! installed through SQLite's C API rather than rusqlite's: rusqlite takes
//! every argument of a request for UTF-8 and panics on one that is not (a
//! name in a schema made by another program, or by a damaged KV), and Rust
//! prints each such panic on stderr, for every statement that touches the
//! name. Here such a request is refused plainly, as rusqlite's caught panic
//! refused it: the statement fails with `SQLITE_AUTH`, and nothing is
//! printed. (A name let through would reach rusqlite's column names, which
//! panic on it too.)

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::ffi;
use rusqlite::hooks::Authorization;
use rusqlite::Connection;

use crate::policy::{self, Request};

/// Gives `conn` the authorizer. It sets `programs_changed` when a statement
/// that may change what others compile to is prepared (see
/// [`policy::changes_programs`]); the caller keeps `programs_changed`
/// alive, and its address unchanged, as long as `conn` is open (the
/// `Database` owning both does).
pub fn install(conn: &Connection, programs_changed: &Arc<AtomicBool>) -> rusqlite::Result<()> {
    let data = Arc::as_ptr(programs_changed).cast_mut().cast::<c_void>();
    // SAFETY: the handle is `conn`'s, open; `data` points to an AtomicBool
    // that outlives the connection (see above), and `authorize` only reads
    // it as one. rusqlite never sets an authorizer of its own on `conn`
    // (this file is the only authorizer), and only clears it at close.
    let rc = unsafe { ffi::sqlite3_set_authorizer(conn.handle(), Some(authorize), data) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

/// `arg` as UTF-8: `Ok(None)` for no argument, `Err` for one that is not UTF-8.
///
/// # Safety
/// `arg` is null or a NUL-terminated string that lives for `'a`.
unsafe fn utf8<'a>(arg: *const c_char) -> Result<Option<&'a str>, ()> {
    if arg.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null here, and NUL-terminated and alive per the contract.
    let bytes = unsafe { CStr::from_ptr(arg) };
    bytes.to_str().map(Some).map_err(|_| ())
}

/// SQLite's authorizer callback (see `sqlite3_set_authorizer`).
unsafe extern "C" fn authorize(
    data: *mut c_void,
    code: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    database: *const c_char,
    accessor: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes null or strings alive for this callback.
    let args = unsafe { (utf8(arg1), utf8(arg2), utf8(database), utf8(accessor)) };
    let (Ok(arg1), Ok(arg2), Ok(_), Ok(_)) = args else {
        return ffi::SQLITE_DENY;
    };
    let request = Request { code, arg1, arg2 };
    // A panic must not unwind into SQLite: the request is refused instead.
    let decided = std::panic::catch_unwind(|| {
        if policy::changes_programs(request) {
            // SAFETY: `data` is the AtomicBool `install` was given, alive
            // while the connection is open (see there).
            let programs_changed = unsafe { &*data.cast_const().cast::<AtomicBool>() };
            programs_changed.store(true, Ordering::Relaxed);
        }
        policy::authorize(request)
    });
    match decided {
        Ok(Authorization::Allow) => ffi::SQLITE_OK,
        Ok(Authorization::Ignore) => ffi::SQLITE_IGNORE,
        _ => ffi::SQLITE_DENY,
    }
}
