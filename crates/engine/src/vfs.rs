//! The VFS shim: SQLite's default OS VFS, with three changes.
//!
//! 1. Writes and truncations of a registered main database file are reported
//!    to that file's tracker before they happen, so the engine knows which
//!    4 KiB chunks changed since the last seal; reads (and writes that cover
//!    a chunk in part) of chunks still only in the KV fetch them first (see
//!    [`crate::paging`]).
//!    The tracker may hold back a write of a whole chunk (see
//!    [`crate::tracker::Tracker::write`]): reads, and the file's size, then
//!    account for the bytes it holds.
//! 2. Only registered files (and their journals) can be opened, deleted or
//!    probed. `ATTACH '/etc/passwd'`, `VACUUM INTO '/tmp/x'` and the like get
//!    `SQLITE_CANTOPEN`: a statement can never reach a host file.
//! 3. Files expose version 1 of the I/O methods: no shared memory and no
//!    memory mapping, so every page SQLite changes passes through `xWrite`.
//!    Extension loading (`xDlOpen`) always fails.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;

use crate::errors::disk_full;
use crate::paging::FileState;

/// Name under which the shim is registered with SQLite.
pub const VFS_NAME: &CStr = c"rivetkit-kv";

type SharedState = Arc<FileState>;

/// Main database paths the shim may open, with their states.
fn registry() -> MutexGuard<'static, HashMap<String, SharedState>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, SharedState>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Allows SQLite to open `path` as a main database file, with `state`.
pub fn register_file(path: &str, state: SharedState) {
    registry().insert(path.to_owned(), state);
}

pub fn unregister_file(path: &str) {
    registry().remove(path);
}

/// Whether `path` is a registered main file or one of its sidecars.
fn is_allowed(path: &str) -> bool {
    let registry = registry();
    if registry.contains_key(path) {
        return true;
    }
    ["-journal", "-wal"].iter().any(|suffix| {
        path.strip_suffix(suffix)
            .is_some_and(|main| registry.contains_key(main))
    })
}

/// Registers the shim once per process. Returns SQLite's result code.
pub fn ensure_registered() -> c_int {
    static RESULT: OnceLock<c_int> = OnceLock::new();
    *RESULT.get_or_init(|| {
        // SQLite's memory statistics off: with them on, every sqlite3_malloc
        // and sqlite3_free takes one process-wide mutex, which every engine
        // thread shares, and a write makes a dozen of them. Nothing here
        // reads the statistics (no soft or hard heap limit).
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. Before SQLite is
        // initialised it only records the setting; after, it changes nothing
        // and returns SQLITE_MISUSE, which is fine to ignore.
        unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        // SAFETY: sqlite3_initialize and sqlite3_vfs_find are thread-safe
        // (SQLITE_THREADSAFE=1); a null name asks for the default VFS.
        let inner = unsafe {
            let rc = ffi::sqlite3_initialize();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            ffi::sqlite3_vfs_find(ptr::null())
        };
        if inner.is_null() {
            return ffi::SQLITE_ERROR;
        }
        // SAFETY: `inner` is SQLite's default VFS, valid for the whole process.
        let (inner_size, max_path) = unsafe { ((*inner).szOsFile, (*inner).mxPathname) };
        let vfs = Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: (INNER_OFFSET as c_int) + inner_size,
            mxPathname: max_path,
            pNext: ptr::null_mut(),
            zName: VFS_NAME.as_ptr(),
            pAppData: inner.cast(),
            xOpen: Some(x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: Some(x_dl_open),
            xDlError: Some(x_dl_error),
            xDlSym: Some(x_dl_sym),
            xDlClose: Some(x_dl_close),
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: Some(x_current_time_int64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        });
        // The VFS object must outlive every connection: it is leaked on purpose.
        let vfs = Box::leak(vfs);
        // SAFETY: `vfs` is a fully initialised, never-freed sqlite3_vfs.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 1) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        unregister_others(vfs);
        ffi::SQLITE_OK
    })
}

/// Removes every other VFS from this (private, statically linked) SQLite, so a
/// URI such as `file:/x?vfs=unix` cannot reach the host around the shim. The
/// OS VFS object itself stays valid: the shim keeps using it through its
/// pointer; unregistering only unlinks it from the list of names.
fn unregister_others(ours: *mut ffi::sqlite3_vfs) {
    loop {
        // SAFETY: sqlite3_vfs_find(NULL) walks SQLite's own list under its
        // mutex; every entry is a valid, static or leaked VFS object.
        let others = unsafe {
            let mut found = ptr::null_mut();
            let mut current = ffi::sqlite3_vfs_find(ptr::null());
            while !current.is_null() {
                if current != ours {
                    found = current;
                    break;
                }
                current = (*current).pNext;
            }
            found
        };
        if others.is_null() {
            return;
        }
        // SAFETY: `others` is a registered VFS found just above.
        unsafe { ffi::sqlite3_vfs_unregister(others) };
    }
}

/// The file object SQLite allocates for us (`szOsFile` bytes). The inner OS
/// VFS's own file object follows it at `INNER_OFFSET`.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    state: Option<SharedState>,
}

const INNER_OFFSET: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// SAFETY (for callers): `vfs` must be the shim registered above.
unsafe fn inner_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: pAppData was set to the default VFS at registration.
    unsafe { (*vfs).pAppData.cast() }
}

/// SAFETY (for callers): `name` must be null or a NUL-terminated string.
unsafe fn path_of<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(name) }.to_str().ok()
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let shim = file.cast::<ShimFile>();
    // SAFETY: SQLite hands us szOsFile writable bytes at `file`; until
    // pMethods is set, SQLite will not call xClose on it.
    unsafe { (*shim).base.pMethods = ptr::null() };

    // SAFETY: `name` is null (a temporary file) or a path from xFullPathname.
    let path = unsafe { path_of(name) };
    let state = match path {
        None => None,
        Some(path) if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 => match registry().get(path) {
            Some(state) => Some(state.clone()),
            None => return ffi::SQLITE_CANTOPEN,
        },
        Some(path) if is_allowed(path) => None,
        Some(_) => return ffi::SQLITE_CANTOPEN,
    };

    // SAFETY: the inner file object lives inside the same allocation, at an
    // offset accounted for in szOsFile, suitably aligned.
    let inner_file = unsafe { file.cast::<u8>().add(INNER_OFFSET) }.cast::<ffi::sqlite3_file>();
    // SAFETY: delegating to the default VFS with its own file object.
    let rc = unsafe {
        let inner = inner_vfs(vfs);
        (*inner_file).pMethods = ptr::null();
        match (*inner).xOpen {
            Some(open) => open(inner, name, inner_file, flags, out_flags),
            None => ffi::SQLITE_CANTOPEN,
        }
    };
    if rc != ffi::SQLITE_OK {
        // SAFETY: per the VFS contract, a non-null pMethods after a failed
        // xOpen still needs xClose.
        unsafe {
            let methods = (*inner_file).pMethods;
            if !methods.is_null() {
                if let Some(close) = (*methods).xClose {
                    close(inner_file);
                }
            }
        }
        return rc;
    }
    // SAFETY: the fields are uninitialised memory owned by SQLite; ptr::write
    // avoids dropping garbage. x_close drops `state` again.
    unsafe {
        ptr::write(ptr::addr_of_mut!((*shim).inner), inner_file);
        ptr::write(ptr::addr_of_mut!((*shim).state), state);
        (*shim).base.pMethods = &IO_METHODS;
    }
    ffi::SQLITE_OK
}

/// SAFETY (for callers): `file` must be a ShimFile opened by x_open.
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (
    *mut ffi::sqlite3_file,
    &'a ffi::sqlite3_io_methods,
    Option<&'a SharedState>,
) {
    // SAFETY: x_open initialised `inner` and `state`; the inner file's
    // methods are valid while it is open.
    unsafe {
        let shim = file.cast::<ShimFile>();
        let inner = (*shim).inner;
        (inner, &*(*inner).pMethods, (*shim).state.as_ref())
    }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xClose once on a file x_open set up.
    unsafe {
        let (inner, methods, _) = parts(file);
        let rc = methods.xClose.map_or(ffi::SQLITE_OK, |close| close(inner));
        let shim = file.cast::<ShimFile>();
        ptr::drop_in_place(ptr::addr_of_mut!((*shim).state));
        rc
    }
}

/// Defines each `unsafe extern "C" fn NAME(file, ARGS…) -> c_int` of the
/// shim's I/O methods that only forwards the call to the inner file's
/// `METHOD`, or returns `MISSING` if the inner file has no such method.
macro_rules! forward_to_inner_file {
    ($($name:ident => $method:ident($($arg:ident: $ty:ty),*) or $missing:expr;)*) => {
        $(
            unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
                // SAFETY: SQLite calls the I/O methods only on a file x_open
                // set up; the call goes unchanged to the inner file.
                unsafe {
                    let (inner, methods, _) = parts(file);
                    methods.$method.map_or($missing, |f| f(inner $(, $arg)*))
                }
            }
        )*
    };
}

forward_to_inner_file! {
    inner_read => xRead(buf: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64) or ffi::SQLITE_IOERR_READ;
    x_sync => xSync(flags: c_int) or ffi::SQLITE_OK;
    inner_file_size => xFileSize(size: *mut ffi::sqlite3_int64) or ffi::SQLITE_IOERR_FSTAT;
    x_lock => xLock(level: c_int) or ffi::SQLITE_OK;
    x_unlock => xUnlock(level: c_int) or ffi::SQLITE_OK;
    x_check_reserved_lock => xCheckReservedLock(out: *mut c_int) or ffi::SQLITE_OK;
    x_file_control => xFileControl(op: c_int, arg: *mut c_void) or ffi::SQLITE_NOTFOUND;
    x_sector_size => xSectorSize() or 4096;
    x_device_characteristics => xDeviceCharacteristics() or 0;
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls xRead only on a file x_open set up.
    let (_, _, state) = unsafe { parts(file) };
    if let Some(state) = state {
        // A read is a point where a statement may be stopped too (its
        // budget, its deadline, an interrupt): SQLite's progress handler
        // never runs inside one instruction that reads many pages (counting
        // a table's rows, clearing or dropping it, checking its integrity).
        if state.control.should_stop() {
            return ffi::SQLITE_INTERRUPT;
        }
        if let Err(rc) = state.make_local(offset as u64, amount as u64, false) {
            return rc;
        }
        let mut tracker = state.tracker();
        // SAFETY: `buf` has room for `amount` bytes per SQLite's contract.
        let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), amount as usize) };
        // A read within one held-back chunk is served from its bytes; other
        // held-back chunks go to the file before it is read.
        if tracker.read_held_back(offset as u64, out) {
            return ffi::SQLITE_OK;
        }
        if tracker.flush_range(offset as u64, amount as u64).is_err() {
            return ffi::SQLITE_IOERR_READ;
        }
    }
    // SAFETY: as above; `buf` has room for `amount` bytes.
    unsafe { inner_read(file, buf, amount, offset) }
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls xFileSize only on a file x_open set up, with
    // `size` pointing to an integer it provides.
    unsafe {
        let rc = inner_file_size(file, size);
        let (_, _, state) = parts(file);
        if let (ffi::SQLITE_OK, Some(state)) = (rc, state) {
            let counted = state.tracker().size_with_unwritten(*size as u64);
            *size = counted as ffi::sqlite3_int64;
        }
        rc
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwarding an open file's call to its inner file.
    let (inner, methods, state) = unsafe { parts(file) };
    let (offset_u, amount_u) = (offset as u64, amount as u64);
    if let Some(state) = state {
        if let Err(rc) = state.make_local(offset_u, amount_u, true) {
            return rc;
        }
    }
    // SAFETY: `buf` holds `amount` bytes per SQLite's contract, and SQLite
    // does not change them during the call.
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), amount_u as usize) };
    let mut guard = state.map(|state| state.tracker());
    if let Some(tracker) = guard.as_mut() {
        match tracker.write(offset_u, bytes) {
            // Held back: the tracker has the bytes.
            Ok(true) => return ffi::SQLITE_OK,
            Ok(false) => {}
            Err(error) => {
                tracker.write_failed(offset_u, amount_u);
                return io_code(&error, ffi::SQLITE_IOERR_WRITE);
            }
        }
    }
    // SAFETY: as above; `buf` holds `amount` bytes per SQLite's contract.
    let rc = unsafe {
        methods.xWrite.map_or(ffi::SQLITE_IOERR_WRITE, |write| {
            write(inner, buf, amount, offset)
        })
    };
    if rc == ffi::SQLITE_OK {
        if let Some(tracker) = guard.as_mut() {
            tracker.after_write_bytes(offset_u, bytes);
        }
    } else if let Some(tracker) = guard.as_mut() {
        tracker.write_failed(offset_u, amount_u);
    }
    rc
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: forwarding an open file's call to its inner file.
    let (inner, methods, state) = unsafe { parts(file) };
    let size = size as u64;
    if let Some(state) = state {
        // The chunk the new end falls in keeps its head: fetch it if remote.
        if !size.is_multiple_of(crate::tracker::CHUNK_SIZE) {
            if let Err(rc) = state.make_local(size - 1, 1, true) {
                return rc;
            }
        }
    }
    let mut guard = state.map(|state| state.tracker());
    if let (Some(tracker), Some(state)) = (guard.as_mut(), state) {
        if let Err(error) = tracker.before_truncate(size) {
            tracker.truncate_failed();
            state.note_failed_truncation(error.to_string());
            return io_code(&error, ffi::SQLITE_IOERR_TRUNCATE);
        }
    }
    // SAFETY: as above.
    let rc = unsafe {
        methods
            .xTruncate
            .map_or(ffi::SQLITE_IOERR_TRUNCATE, |truncate| {
                truncate(inner, size as ffi::sqlite3_int64)
            })
    };
    if let (Some(tracker), Some(state)) = (guard.as_mut(), state) {
        if rc == ffi::SQLITE_OK {
            tracker.after_truncate(size);
        } else {
            tracker.truncate_failed();
            state.note_failed_truncation(format!(
                "the local file could not be truncated ({})",
                crate::errors::code_name(rc)
            ));
        }
    }
    rc
}

/// SQLite's code for a failed write of the local file: SQLITE_FULL when the
/// disk is full (see [`disk_full`]), else `code`.
fn io_code(error: &std::io::Error, code: c_int) -> c_int {
    if disk_full(error) {
        ffi::SQLITE_FULL
    } else {
        code
    }
}

/// SAFETY (for callers): `name` must be null or a NUL-terminated string.
unsafe fn allowed_name(name: *const c_char) -> bool {
    // SAFETY: per the caller's contract.
    unsafe { path_of(name) }.is_some_and(is_allowed)
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: `name` is a NUL-terminated path from SQLite, passed on as is.
    unsafe {
        if allowed_name(name) {
            inner_delete(vfs, name, sync_dir)
        } else {
            ffi::SQLITE_IOERR_DELETE
        }
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    // SAFETY: `name` is a NUL-terminated path from SQLite, passed on as is;
    // `out` points to an int SQLite provides.
    unsafe {
        if allowed_name(name) {
            inner_access(vfs, name, flags, out)
        } else {
            *out = 0;
            ffi::SQLITE_OK
        }
    }
}

/// Defines each `unsafe extern "C" fn NAME(vfs, ARGS…) -> c_int` of the shim
/// VFS that only forwards the call to the default VFS's `METHOD`, or returns
/// `MISSING` if it has no such method.
macro_rules! forward_to_inner_vfs {
    ($($name:ident => $method:ident($($arg:ident: $ty:ty),*) or $missing:expr;)*) => {
        $(
            unsafe extern "C" fn $name(vfs: *mut ffi::sqlite3_vfs $(, $arg: $ty)*) -> c_int {
                // SAFETY: `vfs` is the shim; the call goes unchanged, with
                // SQLite's own arguments, to the default VFS.
                unsafe {
                    let inner = inner_vfs(vfs);
                    (*inner).$method.map_or($missing, |f| f(inner $(, $arg)*))
                }
            }
        )*
    };
}

forward_to_inner_vfs! {
    inner_delete => xDelete(name: *const c_char, sync_dir: c_int) or ffi::SQLITE_IOERR_DELETE;
    inner_access => xAccess(name: *const c_char, flags: c_int, out: *mut c_int) or ffi::SQLITE_IOERR_ACCESS;
    x_full_pathname => xFullPathname(name: *const c_char, n_out: c_int, out: *mut c_char) or ffi::SQLITE_CANTOPEN;
    x_randomness => xRandomness(n: c_int, out: *mut c_char) or 0;
    x_sleep => xSleep(micros: c_int) or 0;
    x_current_time => xCurrentTime(out: *mut f64) or ffi::SQLITE_ERROR;
    x_get_last_error => xGetLastError(n: c_int, out: *mut c_char) or 0;
    x_current_time_int64 => xCurrentTimeInt64(out: *mut ffi::sqlite3_int64) or ffi::SQLITE_ERROR;
}

unsafe extern "C" fn x_dl_open(_vfs: *mut ffi::sqlite3_vfs, _name: *const c_char) -> *mut c_void {
    ptr::null_mut()
}

unsafe extern "C" fn x_dl_error(_vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let msg = b"extension loading is disabled\0";
    if n <= 0 || out.is_null() {
        return;
    }
    let len = msg.len().min(n as usize);
    // SAFETY: `out` has room for `n` bytes; we copy at most `n` and end with NUL.
    unsafe {
        ptr::copy_nonoverlapping(msg.as_ptr().cast::<c_char>(), out, len);
        *out.add(len - 1) = 0;
    }
}

unsafe extern "C" fn x_dl_sym(
    _vfs: *mut ffi::sqlite3_vfs,
    _handle: *mut c_void,
    _symbol: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    None
}

unsafe extern "C" fn x_dl_close(_vfs: *mut ffi::sqlite3_vfs, _handle: *mut c_void) {}
