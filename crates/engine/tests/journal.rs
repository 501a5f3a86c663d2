//! The before-images the engine hands over for a commit's rollback journal
//! (`Database::journal_images`) are byte for byte the page records SQLite
//! writes to its own rollback journal for the same commit on the same file.
//!
//! One test in its own binary: the engine's VFS shim, once registered, removes
//! SQLite's own VFSes from the process, and the reference run needs them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rivetkit_sqlite_engine::connection::{Database, Mode, Step, AUTOCOMMIT, TAG_MAIN};
use rivetkit_sqlite_engine::control::Control;
use rivetkit_sqlite_engine::paging::{FetchError, Fetched, PageSource};
use rivetkit_sqlite_engine::tracker::CHUNK_SIZE;
use rivetkit_sqlite_engine::values::Params;
use rusqlite::Connection;

const PAGE: usize = CHUNK_SIZE as usize;

/// Builds the database the commit starts from.
const SETUP: &str = "
    PRAGMA page_size = 4096;
    CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
    CREATE INDEX t_v ON t(v);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
    INSERT INTO t(v) SELECT printf('value %05d %s', i, hex(randomblob(20))) FROM n;
";

/// The commit: changes rows spread over the table and its index, and grows
/// the file (pages past the old end are not journaled).
const COMMIT: &str = "
    UPDATE t SET v = 'changed ' || id WHERE id % 97 = 0;
    DELETE FROM t WHERE id BETWEEN 500 AND 520;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
    INSERT INTO t(v) SELECT printf('new %05d', i) FROM n;
";

/// SQLite's rollback journal: a header padded to the sector size it records
/// (offset 20), then records of page number (u32 big-endian), page, checksum.
/// Returns the database size in pages before the commit and the records.
fn parse_journal(bytes: &[u8]) -> (u32, Vec<(u32, Vec<u8>)>) {
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(
        &bytes[..8],
        &[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7],
        "journal magic"
    );
    let original_pages = be(16);
    let header = be(20) as usize;
    assert_eq!(be(24) as usize, PAGE, "journal page size");
    let mut records = Vec::new();
    let mut at = header;
    while at + 4 + PAGE + 4 <= bytes.len() {
        let page_number = be(at);
        if page_number == 0 {
            break;
        }
        records.push((page_number, bytes[at + 4..at + 4 + PAGE].to_vec()));
        at += 4 + PAGE + 4;
    }
    (original_pages, records)
}

/// A KV holding `bytes` as chunks, counting the chunks read.
struct Kv {
    bytes: Vec<u8>,
    read: AtomicUsize,
}

impl PageSource for Kv {
    fn fetch(&self, indices: &[u32], _: &Control) -> Result<Fetched, FetchError> {
        self.read.fetch_add(indices.len(), Ordering::SeqCst);
        Ok(Fetched::from_chunks(indices.iter().map(|&i| {
            let start = i as usize * PAGE;
            self.bytes.get(start..start + PAGE)
        })))
    }
}

/// Runs `sql` on `db`, finishing it with `source` if it needs pages.
fn run(db: &mut Database, sql: String, source: &Arc<Kv>) -> u32 {
    match db.execute(&sql, Params::None, false, Mode::Inline).unwrap() {
        Step::Done(out) => out.state,
        Step::Suspended => db.resume(source.clone()).unwrap().state,
    }
}

#[test]
fn journal_images_are_the_records_of_sqlites_own_journal() {
    // Reference: SQLite itself, on a plain file, in rollback-journal mode
    // (synchronous OFF, as the engine runs, so the header is complete before
    // the commit: with syncs, its magic is filled in only at the first sync).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reference.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(SETUP).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = 10000;",
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    // Inside the transaction the journal holds every page the commit
    // replaces, and the main file is not written yet.
    conn.execute_batch(&format!("BEGIN; {COMMIT}")).unwrap();
    let journal = std::fs::read(dir.path().join("reference.db-journal")).unwrap();
    conn.execute_batch("COMMIT").unwrap();
    let after = std::fs::read(&path).unwrap();
    drop(conn);
    let (original_pages, records) = parse_journal(&journal);
    assert_eq!(original_pages as usize * PAGE, before.len());
    assert!(
        records.len() > 10,
        "the commit touches many pages: {}",
        records.len()
    );

    // The engine, from the same bytes, running the same commit.
    let mut db = Database::new().unwrap();
    let chunks: Vec<Option<&[u8]>> = before.chunks(PAGE).map(Some).collect();
    db.load_chunks(TAG_MAIN, 0, &chunks).unwrap();
    db.open(before.len() as u64, None, None).unwrap();
    let step = db
        .execute(
            &format!("BEGIN; {COMMIT} COMMIT;"),
            Params::None,
            false,
            Mode::Thread,
        )
        .unwrap();
    let Step::Done(out) = step else {
        panic!("a call on an engine thread is never suspended")
    };
    assert_ne!(out.state & AUTOCOMMIT, 0);
    let delta = db.take().unwrap().expect("the commit is pending");
    let (durable_size, images) = db.journal_images().unwrap();
    // What journal_bytes() counts without copying is what journal_images() copies.
    let copied: usize = images.iter().map(|(_, bytes)| bytes.len()).sum();
    assert!(copied > 0);
    assert_eq!(db.journal_bytes().unwrap(), copied);
    db.close().unwrap();

    // Same file contents after the commit (SQLite is deterministic here), so
    // the comparison below is about the same pages.
    assert_eq!(delta.size as usize, after.len());
    assert_eq!(durable_size as usize, before.len());

    // Every page SQLite journaled, and only those, with the same bytes.
    let sqlite: Vec<(u32, &[u8])> = records
        .iter()
        .map(|(p, b)| (*p - 1, b.as_slice()))
        .collect();
    let mut sqlite_sorted = sqlite.clone();
    sqlite_sorted.sort_unstable_by_key(|(index, _)| *index);
    let engine: Vec<(u32, &[u8])> = images.iter().map(|(i, b)| (*i, b.as_slice())).collect();
    let indexes = |v: &[(u32, &[u8])]| v.iter().map(|(i, _)| *i).collect::<Vec<_>>();
    assert_eq!(indexes(&engine), indexes(&sqlite_sorted));
    for ((index, ours), (_, theirs)) in engine.iter().zip(&sqlite_sorted) {
        assert!(
            ours == theirs,
            "before-image of page {} differs from SQLite's journal",
            index + 1
        );
        let start = *index as usize * PAGE;
        assert!(*ours == &before[start..start + PAGE]);
    }

    // The same commit on the same file opened lazily (only page 1 loaded):
    // the same delta and, once the pages written blind are read from the
    // KV, the same before-images.
    let kv = Arc::new(Kv {
        bytes: before.clone(),
        read: AtomicUsize::new(0),
    });
    let mut lazy = Database::new().unwrap();
    lazy.load_chunks(TAG_MAIN, 0, &[Some(&before[..PAGE])])
        .unwrap();
    if lazy.open(before.len() as u64, None, Some(1)).unwrap() {
        lazy.resume(kv.clone()).unwrap();
    }
    let state = run(&mut lazy, format!("BEGIN; {COMMIT} COMMIT;"), &kv);
    assert_ne!(state & AUTOCOMMIT, 0);
    let lazy_delta = lazy.take().unwrap().expect("the commit is pending");
    assert_eq!(lazy_delta.size, delta.size);
    assert_eq!(lazy_delta.chunks, delta.chunks);
    let unknown = lazy.unknown_images().unwrap();
    let read: Vec<Option<&[u8]>> = unknown
        .iter()
        .map(|&i| before.get(i as usize * PAGE..(i as usize + 1) * PAGE))
        .collect();
    lazy.set_images(&unknown, &read).unwrap();
    let (lazy_size, lazy_images) = lazy.journal_images().unwrap();
    assert_eq!(lazy_size, durable_size);
    assert!(lazy_images == images, "same before-images");
    assert!(
        kv.read.load(Ordering::SeqCst) < before.len() / PAGE,
        "not every page was read"
    );
    lazy.close().unwrap();
}
