//! The VFS shim on its own, with no authorizer in front of it (README,
//! Security: "`SQLITE_CANTOPEN` from the shim if the authorizer were
//! bypassed", "the shim cannot load libraries"): a connection that opens its
//! files through the shim reaches no host file and loads no library, whatever
//! SQL it runs. Registering the shim makes it the process's only VFS: any
//! connection opens its files through it.

use std::path::Path;

use rivetkit_sqlite_engine::vfs::{ensure_registered, VFS_NAME};
use rusqlite::{ffi, Connection, ErrorCode, OpenFlags};

/// An in-memory database whose other files (attached databases, `VACUUM
/// INTO` targets) go through the shim, with nothing registered.
fn connection() -> Connection {
    assert_eq!(ensure_registered(), ffi::SQLITE_OK);
    let vfs = VFS_NAME.to_str().unwrap();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags_and_vfs(":memory:", flags, vfs).unwrap();
    conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1)")
        .unwrap();
    conn
}

fn code(error: &rusqlite::Error) -> Option<ErrorCode> {
    error.sqlite_error_code()
}

#[test]
fn host_files_cannot_be_opened_attached_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing.db");
    // A host file. (Not made with SQLite: once registered, the shim is the
    // process's only VFS, so no connection of this process could open it.)
    let contents = b"host data, not to be read or changed".to_vec();
    std::fs::write(&existing, &contents).unwrap();
    let created = dir.path().join("created.db");
    let conn = connection();
    let quote = |path: &Path| path.to_str().unwrap().replace('\'', "''");
    for sql in [
        format!("ATTACH '{}' AS x", quote(&existing)),
        format!("ATTACH 'file:{}?mode=ro' AS x", quote(&existing)),
        format!("ATTACH '{}' AS x", quote(&created)),
        format!("VACUUM INTO '{}'", quote(&created)),
    ] {
        let error = conn.execute_batch(&sql).unwrap_err();
        assert_eq!(code(&error), Some(ErrorCode::CannotOpen), "{sql}: {error}");
    }
    assert!(!created.exists(), "no file was created");
    // The main database of a connection: the same.
    let vfs = VFS_NAME.to_str().unwrap();
    for path in [&existing, &created] {
        let error =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs).unwrap_err();
        assert_eq!(
            code(&error),
            Some(ErrorCode::CannotOpen),
            "{path:?}: {error}"
        );
    }
    assert!(!created.exists(), "no file was created");
    // The host file is as it was, and the connection still works.
    assert_eq!(std::fs::read(&existing).unwrap(), contents);
    let count: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 1);
    // In-memory databases can still be attached.
    conn.execute_batch("ATTACH ':memory:' AS m; CREATE TABLE m.u(v)")
        .unwrap();
}

#[test]
fn no_library_can_be_loaded() {
    let conn = connection();
    // SAFETY: `conn.handle()` is the open connection's handle, used on this
    // thread only while `conn` lives; the call only sets a flag on it.
    let rc = unsafe { ffi::sqlite3_enable_load_extension(conn.handle(), 1) };
    assert_eq!(rc, ffi::SQLITE_OK);
    // A library that exists on every Linux host, and names that do not.
    for library in ["libc.so.6", "libm.so.6", "/no/such/library"] {
        let error = conn
            .query_row(&format!("SELECT load_extension('{library}')"), [], |_| {
                Ok(())
            })
            .unwrap_err();
        assert!(
            error.to_string().contains("extension loading is disabled"),
            "{library}: {error}"
        );
    }
}
