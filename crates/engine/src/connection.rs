//! One database: a local file in its own temporary directory, the SQLite
//! connection on it (through the VFS shim) and the tracker of its changes.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::{Batch, Connection, OpenFlags};
use tempfile::TempDir;

use crate::errors::EngineError;
use crate::policy;
use crate::pos_io;
use crate::tracker::{Chunks, Delta, Tracker, CHUNK_SIZE};
use crate::values::{bind_all, read_row, Cell, Params};
use crate::vfs;

/// File tags of the KV format: the main file and its rollback journal.
pub const TAG_MAIN: u32 = 0;
pub const TAG_JOURNAL: u32 = 1;

/// The rows one statement produced.
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// What one call produced.
#[derive(Default)]
pub struct Output {
    pub sets: Vec<ResultSet>,
    pub changes: u64,
    pub last_insert_rowid: i64,
    /// The state after the call: [`AUTOCOMMIT`] and [`PENDING`] bits.
    pub state: u32,
}

/// [`Output::state`] bit: no transaction is open.
pub const AUTOCOMMIT: u32 = 1;
/// [`Output::state`] bit: a sealed delta waits to be taken.
pub const PENDING: u32 = 2;

/// Longest SQL text accepted, in bytes (SQLite's default is 1,000,000,000).
pub const MAX_SQL_LENGTH: i32 = 64 * 1024 * 1024;

pub struct Database {
    // Field order matters for Drop: the connection closes before the
    // directory holding its file is removed.
    conn: Option<Connection>,
    tracker: Option<Arc<Mutex<Tracker>>>,
    path: String,
    dir: Option<TempDir>,
    /// The tracker's seal count when the last call started.
    seals_at_call: std::cell::Cell<u64>,
}

impl Database {
    /// A new, empty local database in a fresh temporary directory.
    pub fn new() -> Result<Self, EngineError> {
        let dir = tempfile::Builder::new()
            .prefix("rivetkit-sqlite-")
            .tempdir()?;
        // SQLite resolves the path it is given; use the resolved form so the
        // VFS shim recognises the file it is asked to open.
        let path = std::fs::canonicalize(dir.path())?.join("db");
        File::create(&path)?;
        let path = path
            .into_os_string()
            .into_string()
            .map_err(|_| EngineError::Io(std::io::Error::other("temporary path is not UTF-8")))?;
        Ok(Database {
            conn: None,
            tracker: None,
            path,
            dir: Some(dir),
            seals_at_call: std::cell::Cell::new(0),
        })
    }

    fn file_path(&self, tag: u32) -> Result<PathBuf, EngineError> {
        match tag {
            TAG_MAIN => Ok(PathBuf::from(&self.path)),
            TAG_JOURNAL => Ok(PathBuf::from(format!("{}-journal", self.path))),
            _ => Err(EngineError::Range(format!("unknown file tag {tag}"))),
        }
    }

    /// Writes chunks read from the KV into the local file `tag`, before open.
    pub fn load_chunks(
        &mut self,
        tag: u32,
        first_index: u32,
        chunks: &[Option<&[u8]>],
    ) -> Result<(), EngineError> {
        if self.conn.is_some() {
            return Err(EngineError::Range("the database is already open".into()));
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.file_path(tag)?)?;
        // Runs of whole chunks are written with one call each: a 100 MB
        // database is 25,600 chunks, and a system call per chunk shows.
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0u64;
        for (i, chunk) in chunks.iter().enumerate() {
            let offset = (first_index as u64 + i as u64) * CHUNK_SIZE;
            if let Some(bytes) = chunk {
                if run.is_empty() {
                    run_start = offset;
                }
                run.extend_from_slice(bytes);
                if bytes.len() as u64 == CHUNK_SIZE {
                    continue;
                }
            }
            // A missing or short chunk ends the run (the gap reads as zeros).
            if !run.is_empty() {
                pos_io::write_all_at(&file, &run, run_start)?;
                run.clear();
            }
        }
        if !run.is_empty() {
            pos_io::write_all_at(&file, &run, run_start)?;
        }
        Ok(())
    }

    /// Sets the local files to the sizes the KV metadata gives (a journal of
    /// size `None` is absent) and opens SQLite on them. A hot journal is
    /// rolled back here; its effect is the pending delta (see [`Database::take`]).
    pub fn open(&mut self, main_size: u64, journal_size: Option<u64>) -> Result<(), EngineError> {
        if self.conn.is_some() {
            return Err(EngineError::Range("the database is already open".into()));
        }
        let main = OpenOptions::new().read(true).write(true).open(&self.path)?;
        main.set_len(main_size)?;
        let journal_path = self.file_path(TAG_JOURNAL)?;
        match journal_size {
            Some(size) => OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&journal_path)?
                .set_len(size)?,
            None => {
                if journal_path.exists() {
                    std::fs::remove_file(&journal_path)?;
                }
            }
        }
        let tracker = Arc::new(Mutex::new(Tracker::new(main)?));
        vfs::register_file(&self.path, tracker.clone());
        self.tracker = Some(tracker);
        self.connect()?;
        self.seal_if_autocommit()
    }

    fn connect(&mut self) -> Result<(), EngineError> {
        let rc = vfs::ensure_registered();
        if rc != rusqlite::ffi::SQLITE_OK {
            return Err(EngineError::Sqlite {
                code: rc,
                message: "could not register the VFS".into(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_EXRESCODE;
        let mut conn = Connection::open_with_flags_and_vfs(&self.path, flags, vfs::VFS_NAME)?;
        configure(&conn)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 2)?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_LENGTH)?;
        conn.authorizer(Some(policy::authorize))?;
        self.conn = Some(conn);
        Ok(())
    }

    fn conn(&self) -> Result<&Connection, EngineError> {
        self.conn.as_ref().ok_or(EngineError::Closed)
    }

    fn tracker(&self) -> Result<&Arc<Mutex<Tracker>>, EngineError> {
        self.tracker.as_ref().ok_or(EngineError::Closed)
    }

    /// Runs every statement of `sql` in order, binding `params` to each.
    ///
    /// Every point of the call where no transaction is open and the file
    /// changed is sealed: the end of the call, and the start of each statement
    /// of a script, so `INSERT …; BEGIN` hands over the INSERT even though the
    /// call ends inside a transaction. A failing call is sealed too: the
    /// statements of a script before the failing one keep their effects.
    pub fn execute(
        &self,
        sql: &str,
        params: &Params,
        collect: bool,
    ) -> Result<Output, EngineError> {
        let conn = self.conn()?;
        self.seals_at_call.set(vfs::lock(self.tracker()?).seals());
        let mut out = Output::default();
        let ran = self.run(conn, sql, params, collect, &mut out);
        let sealed = self.seal_if_autocommit();
        ran?;
        sealed?;
        out.last_insert_rowid = conn.last_insert_rowid();
        if conn.is_autocommit() {
            out.state |= AUTOCOMMIT;
        }
        if vfs::lock(self.tracker()?).has_pending() {
            out.state |= PENDING;
        }
        Ok(out)
    }

    fn run(
        &self,
        conn: &Connection,
        sql: &str,
        params: &Params,
        collect: bool,
        out: &mut Output,
    ) -> Result<(), EngineError> {
        // The common case, one statement, goes through the statement cache.
        // `prepare_cached` refuses SQL with several statements (and empty SQL):
        // those run one statement at a time, each prepared after the previous
        // one ran, as sqlite3_exec does.
        match conn.prepare_cached(sql) {
            Ok(mut stmt) => {
                bind_all(&mut stmt, params, true)?;
                run_statement(conn, &mut stmt, collect, out)
            }
            Err(_) => {
                let mut batch = Batch::new(conn, sql);
                while let Some(mut stmt) = fallible_next(&mut batch)? {
                    self.seal_if_autocommit()?;
                    bind_all(&mut stmt, params, false)?;
                    run_statement(conn, &mut stmt, collect, out)?;
                }
                Ok(())
            }
        }
    }

    /// Seals the changes made so far, when no transaction is open.
    fn seal_if_autocommit(&self) -> Result<(), EngineError> {
        if self.conn()?.is_autocommit() {
            vfs::lock(self.tracker()?).seal()?;
        }
        Ok(())
    }

    pub fn is_autocommit(&self) -> Result<bool, EngineError> {
        Ok(self.conn()?.is_autocommit())
    }

    /// Whether the last call (even a failed one) sealed changes.
    pub fn last_call_sealed(&self) -> Result<bool, EngineError> {
        Ok(vfs::lock(self.tracker()?).seals() != self.seals_at_call.get())
    }

    /// Takes the pending delta, if any.
    pub fn take(&self) -> Result<Option<Delta>, EngineError> {
        Ok(vfs::lock(self.tracker()?).take())
    }

    /// The delta taken last is durable.
    pub fn ack(&self) -> Result<(), EngineError> {
        vfs::lock(self.tracker()?).ack();
        Ok(())
    }

    /// The durable size and the durable bytes of the chunks changed since
    /// (see [`Tracker::durable_images`]), copied.
    pub fn journal_images(&self) -> Result<(u64, Chunks), EngineError> {
        let tracker = vfs::lock(self.tracker()?);
        let (size, images) = tracker.durable_images();
        Ok((
            size,
            images.into_iter().map(|(i, b)| (i, b.to_vec())).collect(),
        ))
    }

    /// Back to the last durable state: closes SQLite (rolling back any open
    /// transaction), restores the file from its before-images and reopens.
    pub fn restore(&mut self) -> Result<(), EngineError> {
        self.conn()?;
        if let Some(conn) = self.conn.take() {
            conn.close().map_err(|(_, error)| error)?;
        }
        vfs::lock(self.tracker()?).restore()?;
        self.connect()
    }

    /// The whole database file.
    pub fn export(&self) -> Result<Vec<u8>, EngineError> {
        let conn = self.conn()?;
        if !conn.is_autocommit() {
            return Err(EngineError::Sqlite {
                code: rusqlite::ffi::SQLITE_MISUSE,
                message: "cannot export while a transaction is open".into(),
            });
        }
        Ok(std::fs::read(&self.path)?)
    }

    /// Closes SQLite and removes the temporary directory. Idempotent.
    pub fn close(&mut self) -> Result<(), EngineError> {
        let result = match self.conn.take() {
            Some(conn) => conn.close().map_err(|(_, error)| EngineError::from(error)),
            None => Ok(()),
        };
        vfs::unregister_file(&self.path);
        self.tracker = None;
        if let Some(dir) = self.dir.take() {
            dir.close()?;
        }
        result
    }

    /// The temporary directory holding the local file, while open.
    pub fn directory(&self) -> Option<String> {
        self.dir
            .as_ref()
            .map(|dir| dir.path().to_string_lossy().into_owned())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn fallible_next<'c>(
    batch: &mut Batch<'c, '_>,
) -> Result<Option<rusqlite::Statement<'c>>, EngineError> {
    use rusqlite::fallible_iterator::FallibleIterator;
    Ok(batch.next()?)
}

/// Settings of every connection: the local file is a cache of the KV, so it
/// needs no durability of its own, and nothing it does may leave the file.
fn configure(conn: &Connection) -> Result<(), EngineError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, true)?;
    conn.execute_batch(
        "PRAGMA page_size = 4096;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA synchronous = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = OFF;",
    )?;
    // The first read takes the lock and rolls back a hot journal, if one was
    // brought from the KV; only then may the journal live in memory.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    conn.query_row("PRAGMA journal_mode = MEMORY", [], |_| Ok(()))?;
    Ok(())
}

fn run_statement(
    conn: &Connection,
    stmt: &mut rusqlite::Statement<'_>,
    collect: bool,
    out: &mut Output,
) -> Result<(), EngineError> {
    let before = conn.total_changes();
    let column_count = stmt.column_count();
    let mut set = (collect && column_count > 0).then(|| ResultSet {
        columns: stmt.column_names().map(str::to_owned).collect(),
        rows: Vec::new(),
    });
    {
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next()? {
            if let Some(set) = set.as_mut() {
                set.rows.push(read_row(row, column_count)?);
            }
        }
    }
    if conn.total_changes() != before {
        out.changes += conn.changes();
    }
    if let Some(set) = set {
        out.sets.push(set);
    }
    Ok(())
}
