//! What an open that is stopped reports.

use std::time::Duration;

use rivetkit_sqlite_engine::connection::{Database, TAG_MAIN};
use rivetkit_sqlite_engine::errors::EngineError;

#[test]
fn an_open_stopped_by_its_deadline_says_so() {
    // A database SQLite reads as it connects (its header and schema).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA page_size = 4096; CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(&path).unwrap();
    let chunks: Vec<Option<&[u8]>> = bytes.chunks(4096).map(Some).collect();

    let mut db = Database::new().unwrap();
    db.load_chunks(TAG_MAIN, 0, &chunks).unwrap();
    // A deadline already passed when the open starts.
    db.set_timeout(Some(Duration::ZERO));
    match db.open(bytes.len() as u64, None, None) {
        Err(EngineError::Sqlite { code, message }) => {
            assert_eq!(code, rusqlite::ffi::SQLITE_INTERRUPT);
            assert_eq!(message, "interrupted: the call ran longer than its timeout");
        }
        other => panic!("expected the timeout's error, got {other:?}"),
    }
}
