//! One database: a local file in the process's temporary directory, the SQLite
//! connection on it (through the VFS shim) and the tracker of its changes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard, OnceLock};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::control::{Control, Stop, PROGRESS_OPS};
use crate::errors::EngineError;
use crate::paging::{FileState, PageSource};
use crate::policy;
use crate::pos_io;
use crate::scratch::{LocalFile, JOURNAL_SUFFIX};
use crate::script;
use crate::tracker::{Chunks, Delta, Images, Packed, Tracker, CHUNK_SIZE};
use crate::values::{bind_all, read_row, ByteRoom, Cells, Params};
use crate::vfs;

/// File tags of the KV format: the main file and its rollback journal.
pub const TAG_MAIN: u32 = 0;
pub const TAG_JOURNAL: u32 = 1;

/// The rows one statement produced.
pub struct ResultSet {
    /// The column names joined by NUL (which no name holds): the form JS
    /// gets them in, made without a string per name.
    pub columns: String,
    /// How many columns.
    pub width: usize,
    /// Every cell of every row, row after row.
    pub cells: Cells,
    /// The bytes of its TEXT and BLOB values as SQLite gave them.
    pub bytes: usize,
}

impl ResultSet {
    /// How many rows.
    pub fn row_count(&self) -> usize {
        self.cells.len().checked_div(self.width).unwrap_or(0)
    }
}

/// What one call produced.
#[derive(Default)]
pub struct Output {
    pub sets: Vec<ResultSet>,
    pub changes: u64,
    pub last_insert_rowid: i64,
    /// The state after the call: [`AUTOCOMMIT`] and [`PENDING`] bits.
    pub state: u32,
    /// The cells of `sets`, all together.
    pub values: usize,
    /// The bytes of the TEXT and BLOB cells of `sets`, all together.
    pub bytes: usize,
}

/// [`Output::state`] bit: no transaction is open.
pub const AUTOCOMMIT: u32 = 1;
/// [`Output::state`] bit: a sealed delta waits to be taken.
pub const PENDING: u32 = 2;

/// How long a call may run inline (on the caller's thread), its statements
/// together, before it is stopped and finished on an engine thread.
pub const INLINE_BUDGET: Duration = Duration::from_millis(4);

/// Most bytes of SQL text (from the statement a call is at) and parameter
/// values together that a call may take inline. Compiling the text cannot be
/// cut short (SQLite compiles about 16 KiB a millisecond here), nor can one
/// function or virtual table call reading a value (an FTS5 query of 16 KiB
/// takes 25 ms to parse, and its time grows faster than its length): a call
/// with more goes to an engine thread first.
pub const INLINE_INPUT_BYTES: usize = 16 * 1024;

/// Pages a statement that ends a transaction (COMMIT, ROLLBACK, RELEASE)
/// may write, at most, for it to run inline: about 4 µs each, written and
/// sealed (80 MB took 74 ms), so about [`INLINE_BUDGET`]. Such a statement
/// cannot be cut short.
const INLINE_COMMIT_PAGES: usize = 1024;

/// Statements (by their first word) that run on an engine thread from
/// their start: their work grows with the database, in steps SQLite cannot
/// stop. VACUUM writes the database back and truncates the file (freeing
/// 40 MB held the JS thread 41 ms); DROP frees every page of a table or
/// index in one instruction (30 MB: 19 ms). (A DELETE without WHERE clears
/// a table in one instruction too, but a DELETE is most often small.)
const ON_THREAD_KEYWORDS: [&str; 2] = ["VACUUM", "DROP"];

/// A delta of at least this many bytes, sealed on an engine thread, is
/// packed there ([`Tracker::pack`]): the JS thread takes it without a copy.
const PACK_BYTES: usize = 1024 * 1024;

/// Statements whose weight ([`script::is_heavy`]) is remembered.
const HEAVY_CACHE_CAPACITY: usize = 256;

/// Where a call runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// On the caller's (the JS) thread, within [`INLINE_BUDGET`]; what would
    /// run longer, or may not be cut short, is left to [`Database::resume`].
    Inline,
    /// On an engine thread: never cut short but by the deadline or an
    /// interrupt.
    Thread,
}

/// What [`Database::execute`] did.
pub enum Step {
    /// The call ran to its end.
    Done(Output),
    /// The call must be finished by [`Database::resume`], on an engine thread.
    Suspended,
}

/// Work handed over to an engine thread: connecting SQLite (when it needs
/// pages that are not local), then what is left of a call, if any.
struct Suspended {
    call: Option<Call>,
}

/// What is left of a call.
struct Call {
    sql: String,
    /// Byte offset in `sql` of the first statement still to run.
    offset: usize,
    params: Params,
    collect: bool,
    /// Whether `sql` is one statement (run through the statement cache), if known.
    single: Option<bool>,
    out: Output,
}

/// See [`Database::packed_journal_images`].
pub struct PackedImages {
    pub size: u64,
    pub indices: Vec<u32>,
    pub lengths: Vec<u32>,
    pub bytes: Vec<u8>,
}

pub struct Database {
    // Field order matters for Drop: the connection closes before its file
    // is removed.
    conn: Option<Connection>,
    /// The main file's tracker and paging state (shared with the VFS shim),
    /// from `open` to `close`. SQLite may be disconnected meanwhile (after
    /// a restore): the next call connects it again.
    file: Option<Arc<FileState>>,
    path: String,
    local: Option<LocalFile>,
    /// The tracker's seal count when the last call started.
    seals_at_call: u64,
    /// Whether a statement that writes ran to its end in the current call.
    wrote: std::cell::Cell<bool>,
    /// Whether a statement of the current call failed and SQLite rolled
    /// back the transaction it ran in (see [`Database::last_call_rolled_back`]).
    rolled_back: std::cell::Cell<bool>,
    control: Arc<Control>,
    /// Longest a call may run (None: no limit).
    timeout: Option<Duration>,
    suspended: Option<Suspended>,
    /// The pending delta, packed on the engine thread that sealed it, if it
    /// was large (see [`Database::take_packed`]).
    packed: Option<Packed>,
    /// Whether a statement (by its SQL) may run long: see [`script::is_heavy`], by SQL text.
    /// (foldhash: SipHash of the SQL cost about 400 instructions a write
    /// inside a transaction; the map is bounded, and cleared when full.)
    heavy: RefCell<HashMap<String, bool, foldhash::fast::RandomState>>,
    /// Set by the authorizer when a statement that changes the schema or a
    /// setting is prepared: what `heavy` knows may then be wrong (a new
    /// trigger, foreign keys on).
    programs_changed: Arc<AtomicBool>,
    /// Whether the open transaction changed the schema: a rollback (of it,
    /// or to one of its savepoints) brings back the schema it had, and
    /// statements compile as before (a dropped trigger is back).
    schema_in_transaction: std::cell::Cell<bool>,
    /// The settings the last connection had, set again on the next (see
    /// [`policy::kept`]).
    kept: Vec<(&'static str, String)>,
    /// The longest string the JS runtime holds, in UTF-16 code units: a
    /// longer TEXT value is `SQLITE_TOOBIG` (see [`Database::set_max_text`]).
    max_text: usize,
    /// The most values (cells), and bytes of TEXT and BLOB values, the
    /// results of one call may hold: a statement that would return more is
    /// `SQLITE_TOOBIG` (see [`Database::set_result_bounds`]).
    max_values: usize,
    max_bytes: usize,
}

impl Database {
    /// A new, empty local database in the process's temporary directory.
    pub fn new() -> Result<Self, EngineError> {
        // The path is canonical, as SQLite resolves the path it is given, so
        // that the VFS shim recognises the file it is asked to open.
        let local = LocalFile::new()?;
        let path = local
            .path()
            .to_path_buf()
            .into_os_string()
            .into_string()
            .map_err(|_| EngineError::Io(std::io::Error::other("temporary path is not UTF-8")))?;
        Ok(Database {
            conn: None,
            file: None,
            path,
            local: Some(local),
            seals_at_call: 0,
            wrote: std::cell::Cell::new(false),
            rolled_back: std::cell::Cell::new(false),
            control: Arc::default(),
            timeout: None,
            suspended: None,
            packed: None,
            heavy: RefCell::default(),
            programs_changed: Arc::default(),
            schema_in_transaction: std::cell::Cell::new(false),
            kept: Vec::new(),
            max_text: usize::MAX,
            max_values: result_bound(ResultBound::Values),
            max_bytes: result_bound(ResultBound::Bytes),
        })
    }

    fn file_path(&self, tag: u32) -> Result<PathBuf, EngineError> {
        match tag {
            TAG_MAIN => Ok(PathBuf::from(&self.path)),
            TAG_JOURNAL => Ok(PathBuf::from(format!("{}{JOURNAL_SUFFIX}", self.path))),
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
        // Neighbouring chunks go in one write: a 100 MB database is 25,600
        // chunks, and a system call per chunk shows. A missing or short
        // chunk ends a run (the gap reads as zeros).
        let mut runs = pos_io::Runs::new(&file);
        for (i, chunk) in chunks.iter().enumerate() {
            if let Some(bytes) = chunk {
                runs.write((first_index as u64 + i as u64) * CHUNK_SIZE, bytes)?;
            }
        }
        runs.flush()?;
        Ok(())
    }

    /// Sets the local files to the sizes the KV metadata gives (a journal of
    /// size `None` is absent) and opens SQLite on them. Chunks `remote_from..`
    /// of the main file (if given) were not loaded: they are read from the KV
    /// when SQLite first needs them. A hot journal is rolled back here; its
    /// effect is the pending delta (see [`Database::take`]).
    ///
    /// Returns `true` when connecting needs chunks that are not local: then
    /// [`Database::resume`] finishes it, on an engine thread.
    pub fn open(
        &mut self,
        main_size: u64,
        journal_size: Option<u64>,
        remote_from: Option<u32>,
    ) -> Result<bool, EngineError> {
        if self.file.is_some() {
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
        let remote_from = remote_from.filter(|&from| (from as u64) * CHUNK_SIZE < main_size);
        let file = Arc::new(FileState::new(
            Tracker::new(main, remote_from)?,
            self.control.clone(),
        ));
        vfs::register_file(&self.path, file.clone());
        self.file = Some(file);
        self.control.start_call(self.timeout);
        if !self.connect_inline()? {
            self.suspended = Some(Suspended { call: None });
            return Ok(true);
        }
        self.seal_if_autocommit()?;
        Ok(false)
    }

    /// Connects SQLite on this (the JS) thread: `false` if that needs chunks
    /// that are not local (an engine thread must do it).
    fn connect_inline(&mut self) -> Result<bool, EngineError> {
        match self.connect() {
            Ok(()) => Ok(true),
            Err(_) if self.control.stopped() == Stop::Miss => {
                self.control.clear_stop();
                Ok(false)
            }
            // Stopped by its deadline (or a page read that failed): the
            // error says so, as a statement's does.
            Err(error) => Err(self.stop_error(error)),
        }
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
        for (name, value) in &self.kept {
            conn.execute_batch(&format!("PRAGMA {name} = {value}"))?;
        }
        for limit in policy::limits() {
            let (limit, value) = limit.map_err(|message| EngineError::Sqlite {
                code: rusqlite::ffi::SQLITE_INTERNAL,
                message,
            })?;
            conn.set_limit(limit, value)?;
        }
        crate::authorizer::install(&conn, &self.programs_changed)?;
        let control = self.control.clone();
        conn.progress_handler(PROGRESS_OPS, Some(move || control.should_stop()))?;
        // What a statement that ended its transaction must not be stopped
        // for (see Control::transaction_ended). A statement one of whose
        // page reads was stopped, and that went on regardless, does not
        // commit: SQLite rolls its transaction back instead.
        let control = self.control.clone();
        conn.commit_hook(Some(move || {
            if control.stopped() != Stop::None {
                return true;
            }
            control.transaction_ended();
            false
        }))?;
        let control = self.control.clone();
        conn.rollback_hook(Some(move || control.transaction_ended()))?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Connects SQLite if it is not (after `open` or a restore), where the
    /// call runs. `false`: the call must go on on an engine thread.
    fn ensure_connected(&mut self, mode: Mode) -> Result<bool, EngineError> {
        if self.conn.is_some() {
            return Ok(true);
        }
        self.file()?;
        if mode == Mode::Thread {
            self.connect()?;
            return Ok(true);
        }
        self.connect_inline()
    }

    fn conn(&self) -> Result<&Connection, EngineError> {
        self.conn.as_ref().ok_or(EngineError::Closed)
    }

    fn file(&self) -> Result<&Arc<FileState>, EngineError> {
        self.file.as_ref().ok_or(EngineError::Closed)
    }

    fn tracker(&self) -> Result<MutexGuard<'_, Tracker>, EngineError> {
        Ok(self.file()?.tracker())
    }

    /// The limits of every call from now on: its deadline (None: none).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// What stops the running call from any thread: see [`Control::interrupt`].
    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    /// Runs every statement of `sql` in order, binding `params` to each.
    ///
    /// Every point of the call where no transaction is open and the file
    /// changed is sealed: the end of the call, and the start of each statement
    /// of a script, so `INSERT …; BEGIN` hands over the INSERT even though the
    /// call ends inside a transaction. A failing call is sealed too: the
    /// statements of a script before the failing one keep their effects.
    ///
    /// In [`Mode::Inline`], a statement that SQLite can stop without losing
    /// anything (any statement outside a transaction, which SQLite rolls
    /// back, and a read-only one inside) runs within [`INLINE_BUDGET`]; one
    /// that runs over is stopped and the call is [`Step::Suspended`] at that
    /// statement, as it is before a write inside a transaction that may run
    /// long ([`script::is_heavy`]), which must not be cut short. The
    /// statements before keep their effects; [`Database::resume`] runs the
    /// rest.
    pub fn execute(
        &mut self,
        sql: &str,
        params: Params,
        collect: bool,
        mode: Mode,
    ) -> Result<Step, EngineError> {
        self.suspended = None;
        self.rolled_back.set(false);
        let (seals, damaged) = {
            let tracker = self.tracker()?;
            (tracker.seals(), tracker.is_damaged())
        };
        // A discard that failed at the end of an earlier call is tried again
        // first: SQLite never runs on a file holding part of a failed write.
        if damaged && self.is_autocommit()? {
            self.discard_unsealed()?;
        }
        self.seals_at_call = seals;
        self.wrote.set(false);
        self.control.start_call(self.timeout);
        if mode == Mode::Inline {
            self.control.start_inline(INLINE_BUDGET);
        }
        let mut out = Output::default();
        if !self.ensure_connected(mode)? {
            return Ok(self.suspend(Call {
                sql: sql.to_owned(),
                offset: 0,
                params,
                collect,
                single: None,
                out,
            }));
        }
        match self.run(sql, 0, None, &params, collect, &mut out, mode) {
            Ok(Some((offset, single))) => Ok(self.suspend(Call {
                sql: sql.to_owned(),
                offset,
                params,
                collect,
                single: Some(single),
                out,
            })),
            Ok(None) => self.finish(out).map(Step::Done),
            Err(error) => {
                // The statements that ran before the failure keep their
                // effects, unless they cannot be sealed. Either way the call
                // fails with its own error.
                let _sealed = self.seal_if_autocommit();
                Err(error)
            }
        }
    }

    /// Keeps `call` for [`Database::resume`], which goes on with it on an
    /// engine thread; the time it held this thread counts against later
    /// inline budgets.
    fn suspend(&mut self, call: Call) -> Step {
        self.suspended = Some(Suspended { call: Some(call) });
        self.control.note_suspended();
        Step::Suspended
    }

    /// Finishes what [`Database::execute`] or [`Database::open`] suspended,
    /// on this (an engine) thread, reading the chunks it needs from `source`.
    pub fn resume(&mut self, source: Arc<dyn PageSource>) -> Result<Output, EngineError> {
        let file = self.file()?.clone();
        file.set_source(Some(source));
        let result = self.resume_here();
        file.set_source(None);
        if result.is_ok() {
            self.pack_large_delta()?;
        }
        result
    }

    /// Packs the pending delta if it is large, here (an engine thread), so
    /// that the JS thread takes it without copying it.
    fn pack_large_delta(&mut self) -> Result<(), EngineError> {
        let tracker = self.tracker()?;
        let large = tracker
            .pending_extent()
            .is_some_and(|(bytes, _)| bytes >= PACK_BYTES);
        let packed = if large { tracker.pack() } else { None };
        drop(tracker);
        self.packed = packed;
        Ok(())
    }

    fn resume_here(&mut self) -> Result<Output, EngineError> {
        let Suspended { call } = self
            .suspended
            .take()
            .ok_or_else(|| EngineError::Range("nothing to resume: execute() finished it".into()))?;
        // On an engine thread, no statement is cut short for time spent.
        self.control.set_budget(false);
        if let Err(error) = self.ensure_connected(Mode::Thread) {
            return Err(self.stop_error(error));
        }
        let Some(Call {
            sql,
            offset,
            params,
            collect,
            single,
            mut out,
        }) = call
        else {
            return self.finish(Output::default());
        };
        match self.run(
            &sql,
            offset,
            single,
            &params,
            collect,
            &mut out,
            Mode::Thread,
        ) {
            Ok(_) => self.finish(out),
            Err(error) => {
                let _sealed = self.seal_if_autocommit();
                Err(error)
            }
        }
    }

    /// Seals, and fills in the state of the connection after the call.
    fn finish(&mut self, mut out: Output) -> Result<Output, EngineError> {
        self.seal_if_autocommit()?;
        let conn = self.conn()?;
        out.last_insert_rowid = conn.last_insert_rowid();
        if conn.is_autocommit() {
            out.state |= AUTOCOMMIT;
        }
        if self.tracker()?.has_pending() {
            out.state |= PENDING;
        }
        Ok(out)
    }

    /// Runs the statements of `sql` from byte `offset`. Returns where the call
    /// must go on on an engine thread, if it must: `(offset, single)`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        sql: &str,
        offset: usize,
        single: Option<bool>,
        params: &Params,
        collect: bool,
        out: &mut Output,
        mode: Mode,
    ) -> Result<Option<(usize, bool)>, EngineError> {
        // The common case, one statement, goes through the statement cache.
        // Scripts (and empty SQL) run one statement at a time, each prepared
        // after the previous one ran, as sqlite3_exec does. Only SQL that may
        // be one statement tries the cache: rusqlite checks that nothing
        // follows a statement by preparing what follows, recursively, so a
        // script there would be prepared whole, a stack frame per statement
        // (40,000 statements overflowed the stack).
        if mode == Mode::Inline && sql.len() - offset + params.bytes() > INLINE_INPUT_BYTES {
            return Ok(Some((offset, single.unwrap_or(false))));
        }
        if single != Some(false) && script::may_be_single(sql) {
            let conn = self.conn()?;
            if let Ok(mut stmt) = conn.prepare_cached(sql) {
                bind_all(&mut stmt, params, true)?;
                if mode == Mode::Inline && !self.may_run_inline(conn, &stmt, sql)? {
                    return Ok(Some((0, true)));
                }
                if self.step(conn, &mut stmt, sql, collect, out)? {
                    return Ok(Some((0, true)));
                }
                return Ok(None);
            }
        }
        let script = script::Script::new(sql);
        let mut at = offset;
        // Whether a statement of this SQL came before: from a script's
        // second statement on, parameters bind without an exact count.
        let mut seen = offset > 0;
        while at < sql.len() {
            // The statements before this one spent the call's inline budget.
            if mode == Mode::Inline && at > offset && self.control.inline_spent() {
                return Ok(Some((at, false)));
            }
            let conn = self.conn()?;
            let (len, has_statement) = script.first_statement(conn, at);
            let text = &sql[at..at + len];
            if !has_statement {
                at += len;
                continue;
            }
            // The statements before this one may each have been too short
            // for the progress handler to be asked (see
            // Control::stop_before_statement): they keep their effects.
            if at > offset && self.control.stop_before_statement() {
                return Err(self.stop_error(interrupted()));
            }
            self.seal_between_statements()?;
            let conn = self.conn()?;
            let mut stmt = match conn.prepare(text) {
                Ok(stmt) => stmt,
                // Preparing may read the schema, and miss a chunk.
                Err(error) => {
                    return self
                        .suspend_on_stop(error.into())
                        .map(|()| Some((at, false)))
                }
            };
            // SQL that is one statement (one that has a `;` inside a literal,
            // or too long to run inline) takes its parameters exactly, as
            // through the statement cache above; a script's statements share
            // them. What follows is looked at only when it matters: more
            // positional values than the statement takes.
            let surplus = matches!(params, Params::Positional(values) if values.len() > stmt.parameter_count());
            let exact = surplus && !seen && self.nothing_after(&script, conn, at + len, sql.len());
            seen = true;
            bind_all(&mut stmt, params, exact)?;
            if mode == Mode::Inline && !self.may_run_inline(conn, &stmt, text)? {
                return Ok(Some((at, false)));
            }
            if self.step(conn, &mut stmt, text, collect, out)? {
                return Ok(Some((at, false)));
            }
            at += len;
        }
        Ok(None)
    }

    /// Runs a bound statement to its end and notes what it did. Returns
    /// whether it was stopped for a reason the engine thread makes good (the
    /// inline budget, a chunk not local), with nothing kept: it must run
    /// again there.
    fn step(
        &self,
        conn: &Connection,
        stmt: &mut rusqlite::Statement<'_>,
        text: &str,
        collect: bool,
        out: &mut Output,
    ) -> Result<bool, EngineError> {
        let sets = out.sets.len();
        let in_transaction = !conn.is_autocommit();
        let bounds = Bounds {
            text: self.max_text,
            values: self.max_values,
            bytes: self.max_bytes,
        };
        let ran = run_statement(conn, stmt, collect, out, bounds);
        let ran = self.swallowed_stop(ran, stmt, in_transaction, out, sets);
        self.control.set_budget(false);
        self.note_rollback(conn, stmt, in_transaction, &ran);
        self.note_programs(conn, text);
        if self.stopped_for_budget(ran)? {
            return Ok(true);
        }
        self.note_write(stmt);
        Ok(false)
    }

    /// Whether the text from byte `at` (to `end`) holds no statement: only
    /// whitespace, comments and empty statements. Preparing it may need a
    /// page not read yet (the schema): a miss then counts as a statement
    /// there, and its stop is cleared, as nothing ran.
    fn nothing_after(
        &self,
        script: &script::Script,
        conn: &Connection,
        at: usize,
        end: usize,
    ) -> bool {
        if at >= end {
            return true;
        }
        let has_statement = script.first_statement(conn, at).1;
        if self.control.stopped() == Stop::Miss {
            self.control.clear_stop();
            return false;
        }
        !has_statement
    }

    /// Notes that a statement which failed took the transaction it ran in
    /// with it: SQLite rolls a transaction back on an I/O error, a stopped
    /// write, `OR ROLLBACK`, `RAISE(ROLLBACK)`. A statement that ends a
    /// transaction by design (`COMMIT`, `ROLLBACK`, `RELEASE`: read-only, no
    /// columns) does not count: what follows it was meant to run after.
    fn note_rollback(
        &self,
        conn: &Connection,
        stmt: &rusqlite::Statement<'_>,
        in_transaction: bool,
        ran: &Result<(), EngineError>,
    ) {
        if ran.is_err()
            && in_transaction
            && conn.is_autocommit()
            && !(stmt.readonly() && stmt.column_count() == 0)
        {
            self.rolled_back.set(true);
        }
    }

    /// Notes that a statement which may write ran to its end in this call.
    fn note_write(&self, stmt: &rusqlite::Statement<'_>) {
        if !stmt.readonly() {
            self.wrote.set(true);
        }
    }

    /// After a statement ran, or failed (`text`, its SQL): forgets what
    /// `heavy` knows if statements may now compile to other programs. They
    /// may when a statement that changes the schema or sets a pragma was
    /// prepared, and when a transaction that changed the schema ends or rolls
    /// back to a savepoint: SQLite then brings back the schema it had.
    fn note_programs(&self, conn: &Connection, text: &str) {
        if self.programs_changed.load(Ordering::Relaxed) {
            self.programs_changed.store(false, Ordering::Relaxed);
            self.heavy.borrow_mut().clear();
            self.schema_in_transaction.set(!conn.is_autocommit());
        } else if self.schema_in_transaction.get() {
            if conn.is_autocommit() {
                self.heavy.borrow_mut().clear();
                self.schema_in_transaction.set(false);
            } else if script::first_word(text).eq_ignore_ascii_case(b"ROLLBACK") {
                self.heavy.borrow_mut().clear();
            }
        }
    }

    /// Before a statement runs inline: whether it may, and with what budget.
    fn may_run_inline(
        &self,
        conn: &Connection,
        stmt: &rusqlite::Statement<'_>,
        text: &str,
    ) -> Result<bool, EngineError> {
        let autocommit = conn.is_autocommit();
        if !autocommit && stmt.readonly() && stmt.column_count() == 0 {
            // It may be a COMMIT, RELEASE, SAVEPOINT or ROLLBACK, which must
            // not be cut short: a virtual table's work at a savepoint or a
            // commit (FTS5 writes the index entries it holds back) runs
            // statements of its own, and stopping them can take the whole
            // transaction with them. It runs inline to its end, unless it
            // may have many pages to write, or read pages not local yet
            // (auto_vacuum moves pages at commit), which a miss on this
            // thread would fail.
            self.control.set_budget(false);
            return Ok(!(self.tracker()?.has_remote() || self.ends_large(conn)?));
        }
        if autocommit && {
            let word = script::first_word(text);
            ON_THREAD_KEYWORDS
                .iter()
                .any(|k| word.eq_ignore_ascii_case(k.as_bytes()))
        } {
            self.control.set_budget(false);
            return Ok(false);
        }
        if autocommit || stmt.readonly() {
            // SQLite can stop it with nothing lost.
            self.control.set_budget(true);
            return Ok(true);
        }
        // A write inside a transaction: stopping it would roll the whole
        // transaction back. Quick ones run inline, to their end, if every
        // page they may need is local (a miss would stop them too).
        self.control.set_budget(false);
        if self.tracker()?.has_remote() {
            return Ok(false);
        }
        if let Some(&heavy) = self.heavy.borrow().get(text) {
            return Ok(!heavy);
        }
        let heavy = script::is_heavy(conn, text);
        let mut known = self.heavy.borrow_mut();
        if known.len() >= HEAVY_CACHE_CAPACITY {
            known.clear();
        }
        known.insert(text.to_owned(), heavy);
        Ok(!heavy)
    }

    /// Whether the open transaction may have more than [`INLINE_COMMIT_PAGES`]
    /// pages to write when it ends: those the file saw change since the last
    /// seal, and those SQLite's page cache holds (any of them may be dirty).
    fn ends_large(&self, conn: &Connection) -> Result<bool, EngineError> {
        let changed = self.tracker()?.changed_since_seal();
        if changed >= INLINE_COMMIT_PAGES {
            return Ok(true);
        }
        let (mut used, mut highest) = (0, 0);
        // SAFETY: the handle is the live connection `conn` holds, used on
        // this thread only while `conn` is borrowed; the out pointers are
        // this frame's locals.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut used,
                &mut highest,
                0,
            )
        };
        let cached = if rc == rusqlite::ffi::SQLITE_OK {
            usize::try_from(used).unwrap_or(0) / CHUNK_SIZE as usize
        } else {
            0
        };
        Ok(changed + cached >= INLINE_COMMIT_PAGES)
    }

    /// A statement that succeeded although a page read of it was stopped
    /// (`PRAGMA integrity_check` reports unreadable pages as text instead of
    /// failing): its result is not to be trusted. Most such statements never
    /// get here: the progress handler stops them at its next check, and the
    /// commit hook refuses their commit (see [`Control::should_stop`]); one
    /// that was near its end when the read was stopped may. It counts as
    /// stopped: a read-only one's rows are dropped, and a write that left a
    /// transaction open rolls the transaction back (its effects cannot be
    /// undone alone), as SQLite does for a write that fails. Outside a
    /// transaction nothing was committed, and a statement stopped for a miss
    /// or for its inline budget runs again on an engine thread.
    ///
    /// So does a write inside a transaction (`in_transaction`: when it
    /// started) that SQLite reports stopped while its transaction is still
    /// open. SQLite asks the progress handler once more as a statement
    /// returns, after its last instruction, and a stop there reports
    /// `SQLITE_INTERRUPT` with the statement's effects kept; a write it stops
    /// midway takes its transaction with it. (A statement that ended its
    /// transaction is not stopped there: see [`Control::transaction_ended`].)
    fn swallowed_stop(
        &self,
        ran: Result<(), EngineError>,
        stmt: &rusqlite::Statement<'_>,
        in_transaction: bool,
        out: &mut Output,
        sets: usize,
    ) -> Result<(), EngineError> {
        let stop = self.control.stopped();
        if stop == Stop::None {
            return ran;
        }
        if let Err(error) = &ran {
            let stopped_at_end = matches!(
                error,
                EngineError::Sqlite { code, .. } if code & 0xff == rusqlite::ffi::SQLITE_INTERRUPT
            ) && in_transaction
                && !stmt.readonly()
                && !self.conn()?.is_autocommit();
            if !stopped_at_end {
                return ran;
            }
        }
        out.sets.truncate(sets);
        out.values = out.sets.iter().map(|set| set.cells.len()).sum();
        out.bytes = out.sets.iter().map(|set| set.bytes).sum();
        let conn = self.conn()?;
        if !stmt.readonly() && !conn.is_autocommit() {
            self.control.clear_stop();
            let rolled_back = conn.execute_batch("ROLLBACK");
            self.control.stop_for(stop);
            rolled_back?;
            if matches!(stop, Stop::Miss | Stop::Budget) {
                // Not to be run again: the transaction it belonged to is gone.
                self.control.clear_stop();
                return Err(EngineError::Sqlite {
                    code: rusqlite::ffi::SQLITE_IOERR_READ,
                    message: "a page read of a write inside a transaction was stopped; \
                              the transaction was rolled back"
                        .into(),
                });
            }
        }
        Err(interrupted())
    }

    /// Whether a statement's result is a stop that the engine thread makes
    /// good (the inline budget ran out, or a chunk was not local); other
    /// results pass through, as what stopped them.
    fn stopped_for_budget(&self, ran: Result<(), EngineError>) -> Result<bool, EngineError> {
        match ran {
            Ok(()) => Ok(false),
            Err(error) => self.suspend_on_stop(error).map(|()| true),
        }
    }

    /// `Ok` if `error` comes from a stop that the engine thread makes good,
    /// else the error to report.
    fn suspend_on_stop(&self, error: EngineError) -> Result<(), EngineError> {
        match self.control.stopped() {
            Stop::Budget | Stop::Miss => {
                self.control.clear_stop();
                Ok(())
            }
            _ => Err(self.stop_error(error)),
        }
    }

    /// The error a stopped statement reports: why it was stopped, if it was.
    fn stop_error(&self, error: EngineError) -> EngineError {
        let stop = self.control.stopped();
        self.control.clear_stop();
        let (code, message) = match stop {
            Stop::Deadline => (
                rusqlite::ffi::SQLITE_INTERRUPT,
                "interrupted: the call ran longer than its timeout".to_owned(),
            ),
            Stop::Interrupt => (rusqlite::ffi::SQLITE_INTERRUPT, "interrupted".to_owned()),
            Stop::ReadFailed => {
                let detail = self
                    .file
                    .as_ref()
                    .and_then(|file| file.take_failure())
                    .unwrap_or_default();
                (
                    rusqlite::ffi::SQLITE_IOERR_READ,
                    format!("reading a page from the KV failed: {detail}"),
                )
            }
            Stop::Budget | Stop::Miss => (
                rusqlite::ffi::SQLITE_INTERRUPT,
                "interrupted: a page was not local".to_owned(),
            ),
            Stop::None => return self.with_truncation_failure(error),
        };
        EngineError::Sqlite { code, message }
    }

    /// `error`, with why the truncation failed if it is a failed truncation
    /// of the main file (see [`crate::paging::FileState::note_failed_truncation`]).
    fn with_truncation_failure(&self, error: EngineError) -> EngineError {
        let EngineError::Sqlite {
            code: code @ rusqlite::ffi::SQLITE_IOERR_TRUNCATE,
            message,
        } = error
        else {
            return error;
        };
        let message = match self.file.as_ref().and_then(|file| file.take_failure()) {
            Some(failure) => format!("{message}: {failure}"),
            None => message,
        };
        EngineError::Sqlite { code, message }
    }

    /// Seals the changes made so far, when no transaction is open. Changes
    /// that cannot be sealed (a write to the local file failed) are
    /// discarded: SQLite is disconnected, and the file put back to the last
    /// seal. The call that made them fails, and has no effects.
    fn seal_if_autocommit(&mut self) -> Result<(), EngineError> {
        match self.seal_between_statements() {
            Ok(()) => Ok(()),
            Err(error) => {
                self.discard_unsealed()?;
                Err(error)
            }
        }
    }

    /// [`Database::seal_if_autocommit`] between the statements of a script,
    /// without the discarding: a failure ends the script, and the call's
    /// error path seals (or discards) again.
    fn seal_between_statements(&self) -> Result<(), EngineError> {
        if self.is_autocommit()? {
            self.tracker()?.seal()?;
        }
        Ok(())
    }

    /// See [`Tracker::discard_unsealed`].
    fn discard_unsealed(&mut self) -> Result<(), EngineError> {
        self.put_back(Tracker::discard_unsealed)
    }

    /// Disconnects SQLite (its page cache is stale then) and puts the file
    /// back with `put_back`, the tracker's restore or discard. The next call
    /// connects SQLite again.
    fn put_back(
        &mut self,
        put_back: fn(&mut Tracker) -> std::io::Result<()>,
    ) -> Result<(), EngineError> {
        self.suspended = None;
        self.packed = None;
        if let Some(conn) = self.conn.take() {
            self.kept = kept_settings(&conn);
            close_connection(conn)?;
        }
        put_back(&mut *self.tracker()?)?;
        // The schema may be back to an older one (a trigger the undone
        // write dropped): what was learnt of statements since may be wrong.
        self.heavy.borrow_mut().clear();
        self.schema_in_transaction.set(false);
        Ok(())
    }

    /// The longest string the JS runtime holds, in UTF-16 code units: a
    /// statement that returns a longer TEXT value fails with `SQLITE_TOOBIG`,
    /// and has no effect.
    pub fn set_max_text(&mut self, units: usize) {
        self.max_text = units;
    }

    /// The most values (rows × columns, its statements together), and the
    /// most bytes of TEXT and BLOB values, the results of one call may hold,
    /// at most the `result_values` and `result_bytes` bounds of
    /// lib/policy.txt (the defaults): a statement that would return more
    /// fails with `SQLITE_TOOBIG`, and has no effect.
    pub fn set_result_bounds(&mut self, values: usize, bytes: usize) {
        self.max_values = values.min(result_bound(ResultBound::Values));
        self.max_bytes = bytes.min(result_bound(ResultBound::Bytes));
    }

    /// Whether no transaction is open (none is while SQLite is disconnected).
    pub fn is_autocommit(&self) -> Result<bool, EngineError> {
        self.file()?;
        Ok(self.conn.as_ref().is_none_or(Connection::is_autocommit))
    }

    /// Whether the last call (even a failed one) changed anything: sealed
    /// changes, or ran a statement that writes (inside a transaction too).
    pub fn last_call_changed(&self) -> Result<bool, EngineError> {
        Ok(self.wrote.get() || self.tracker()?.seals() != self.seals_at_call)
    }

    /// Whether a statement of the last call failed and SQLite rolled back the
    /// transaction it ran in (an I/O error, a stopped write, `OR ROLLBACK`,
    /// `RAISE(ROLLBACK)`; not a `COMMIT` or `ROLLBACK` that failed): the
    /// calls made to run in that transaction must not run outside it. Read
    /// once: it is false again after (a later call that fails before it
    /// reaches SQLite does not report it again).
    pub fn last_call_rolled_back(&self) -> bool {
        self.rolled_back.replace(false)
    }

    /// The pending delta's bytes and number of chunks, if one is pending.
    pub fn pending_extent(&self) -> Result<Option<(usize, usize)>, EngineError> {
        Ok(self.tracker()?.pending_extent())
    }

    /// Takes the pending delta, if any.
    pub fn take(&mut self) -> Result<Option<Delta>, EngineError> {
        self.packed = None;
        Ok(self.tracker()?.take())
    }

    /// Takes the pending delta packed on the engine thread that sealed it,
    /// if it is still the pending delta (calls that ran since may have
    /// added to it) and has at most `max_chunks` chunks: else `None`, and
    /// [`Database::take`] takes it.
    pub fn take_packed(&mut self, max_chunks: usize) -> Result<Option<Packed>, EngineError> {
        let fits = self
            .packed
            .as_ref()
            .is_some_and(|packed| packed.chunks.len() <= max_chunks);
        match self.packed.take() {
            Some(packed) if fits => Ok(self.tracker()?.take_packed(packed)),
            kept => {
                self.packed = kept;
                Ok(None)
            }
        }
    }

    /// The delta taken last is durable.
    pub fn ack(&self) -> Result<(), EngineError> {
        self.tracker()?.ack();
        Ok(())
    }

    /// The durable size and the durable bytes of the chunks changed since
    /// (see [`Tracker::durable_images`]), copied. Fails while some of those
    /// bytes are unknown: see [`Database::unknown_images`].
    pub fn journal_images(&self) -> Result<(u64, Chunks), EngineError> {
        let tracker = self.tracker()?;
        let (size, images) = loaded_images(&tracker)?;
        Ok((
            size,
            images.into_iter().map(|(i, b)| (i, b.to_vec())).collect(),
        ))
    }

    /// How many bytes [`Database::journal_images`] would copy now, without
    /// copying them. Fails when it would.
    pub fn journal_bytes(&self) -> Result<usize, EngineError> {
        let tracker = self.tracker()?;
        let (_, images) = loaded_images(&tracker)?;
        Ok(images.iter().map(|(_, bytes)| bytes.len()).sum())
    }

    /// [`Database::journal_images`], packed: the durable size, each chunk's
    /// index and length, and their bytes end to end (one buffer to hand
    /// over instead of one per chunk).
    pub fn packed_journal_images(&self) -> Result<PackedImages, EngineError> {
        let tracker = self.tracker()?;
        let (size, images) = loaded_images(&tracker)?;
        let mut packed = PackedImages {
            size,
            indices: Vec::with_capacity(images.len()),
            lengths: Vec::with_capacity(images.len()),
            bytes: Vec::with_capacity(images.iter().map(|(_, bytes)| bytes.len()).sum()),
        };
        for (index, bytes) in images {
            packed.indices.push(index);
            packed.lengths.push(bytes.len() as u32);
            packed.bytes.extend_from_slice(bytes);
        }
        Ok(packed)
    }

    /// Chunks changed since the durable state whose durable bytes must be
    /// read from the KV (they were written while still remote).
    pub fn unknown_images(&self) -> Result<Vec<u32>, EngineError> {
        Ok(self.tracker()?.unknown_images())
    }

    /// The KV's bytes of chunks [`Database::unknown_images`] listed, read
    /// while the KV holds the durable state (`None`: the KV has no such chunk).
    pub fn set_images(&self, indices: &[u32], chunks: &[Option<&[u8]>]) -> Result<(), EngineError> {
        let mut tracker = self.tracker()?;
        for (&index, chunk) in indices.iter().zip(chunks) {
            tracker.set_image(index, chunk.unwrap_or(&[]));
        }
        Ok(())
    }

    /// The chunks of the main file that are only in the KV.
    pub fn remote_chunks(&self) -> Result<Vec<u32>, EngineError> {
        Ok(self.tracker()?.remote_chunks())
    }

    /// Back to the last durable state: closes SQLite (rolling back any open
    /// transaction) and restores the file from its before-images. The next
    /// call connects SQLite again.
    pub fn restore(&mut self) -> Result<(), EngineError> {
        self.file()?;
        self.put_back(Tracker::restore)
    }

    /// Writes the local file's chunks that the last large seal left held
    /// back: see [`Tracker::write_back`].
    pub fn write_back(&self) -> Result<(), EngineError> {
        Ok(self.tracker()?.write_back()?)
    }

    /// Whether the last seal left chunks for [`Database::write_back`].
    pub fn has_later_writes(&self) -> bool {
        self.tracker()
            .is_ok_and(|tracker| tracker.has_later_writes())
    }

    /// The whole database file (chunks still remote read as whatever the
    /// local file holds there: see [`Database::remote_chunks`]).
    pub fn export(&self) -> Result<Vec<u8>, EngineError> {
        if !self.is_autocommit()? {
            return Err(EngineError::Sqlite {
                code: rusqlite::ffi::SQLITE_MISUSE,
                message: "cannot export while a transaction is open".into(),
            });
        }
        // Chunks the tracker held back go to the file first.
        self.tracker()?.flush()?;
        Ok(std::fs::read(&self.path)?)
    }

    /// Closes SQLite and removes the local files. Idempotent.
    pub fn close(&mut self) -> Result<(), EngineError> {
        let result = match self.conn.take() {
            Some(conn) => close_connection(conn).map_err(EngineError::from),
            None => Ok(()),
        };
        vfs::unregister_file(&self.path);
        self.file = None;
        if let Some(local) = self.local.take() {
            local.close()?;
        }
        result
    }

    /// Bytes the local files take on disk (allocated, on Unix; their
    /// length elsewhere): removing them takes time in proportion (about
    /// 45 µs a MiB on ext4).
    pub fn local_bytes(&self) -> u64 {
        if self.local.is_none() {
            return 0;
        }
        let on_disk = |tag: u32| {
            let Ok(path) = self.file_path(tag) else {
                return 0;
            };
            std::fs::metadata(path).map_or(0, |meta| {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt;
                    meta.blocks() * 512
                }
                #[cfg(not(unix))]
                {
                    meta.len()
                }
            })
        };
        on_disk(TAG_MAIN) + on_disk(TAG_JOURNAL)
    }

    /// The local file's path, while open (SQLite's journal, if it makes
    /// one, is beside it: the path and `-journal`).
    pub fn local_path(&self) -> Option<&str> {
        self.local.as_ref().map(|_| self.path.as_str())
    }
}

/// Closes `conn`, its rollback hook first: SQLite frees a connection's
/// client data, where rusqlite keeps the hook, before it rolls back the
/// transaction left open as it closes, and would then call the freed hook
/// (the heap was corrupted when a database closed inside a transaction).
/// [`Tracker::durable_images`], or the error every journal read gives while
/// some of those bytes are unknown (see [`Database::unknown_images`]).
fn loaded_images(tracker: &Tracker) -> Result<Images<'_>, EngineError> {
    tracker
        .durable_images()
        .ok_or_else(|| EngineError::Range("the before-images of some pages are not loaded".into()))
}

/// The values of the settings a restore keeps ([`policy::kept`]) on `conn`,
/// as SQL sets them; one that cannot be read (a build without it) is left out.
fn kept_settings(conn: &Connection) -> Vec<(&'static str, String)> {
    policy::kept()
        .filter_map(|(name, words)| {
            let value: i64 = conn
                .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                .ok()?;
            let word = usize::try_from(value).ok().and_then(|i| words.get(i));
            Some((
                name,
                word.map_or_else(|| value.to_string(), |w| (*w).to_owned()),
            ))
        })
        .collect()
}

fn close_connection(mut conn: Connection) -> Result<(), rusqlite::Error> {
    conn.rollback_hook(None::<fn()>)?;
    conn.close().map_err(|(_, error)| error)
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Settings of every connection: the local file is a cache of the KV, so it
/// needs no durability of its own, and nothing it does may leave the file.
fn configure(conn: &Connection) -> Result<(), EngineError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, true)?;
    crate::functions::register(conn)?;
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
    // Not the cache size the file's header may suggest (see
    // `default_cache_size` in lib/policy.txt): SQLite's default, as on the
    // WASM engine.
    conn.execute_batch("PRAGMA cache_size = -2000")?;
    Ok(())
}

/// What one statement's results may hold: TEXT values of at most `text`
/// UTF-16 code units, and at most `values` values and `bytes` bytes of TEXT
/// and BLOB values in the call's results.
#[derive(Clone, Copy)]
struct Bounds {
    text: usize,
    values: usize,
    bytes: usize,
}

/// A bound of lib/policy.txt on one call's results.
#[derive(Clone, Copy)]
enum ResultBound {
    /// `result_values`: the most values.
    Values,
    /// `result_bytes`: the most bytes of TEXT and BLOB values.
    Bytes,
}

/// The value of `bound` (0, refusing every row or value, if the rule were
/// missing).
fn result_bound(bound: ResultBound) -> usize {
    static BOUNDS: OnceLock<[usize; 2]> = OnceLock::new();
    let read = |name| {
        crate::policy::bound(name)
            .and_then(|bound| usize::try_from(bound).ok())
            .unwrap_or(0)
    };
    BOUNDS.get_or_init(|| [read("result_values"), read("result_bytes")])[bound as usize]
}

/// SQLite's error for a stopped statement (see [`Database::stop_error`]
/// for the one a call reports).
fn interrupted() -> EngineError {
    EngineError::Sqlite {
        code: rusqlite::ffi::SQLITE_INTERRUPT,
        message: "interrupted".into(),
    }
}

/// `SQLITE_TOOBIG` for a statement whose rows would take the call's
/// results past `max` values.
fn too_many_values(max: usize) -> EngineError {
    EngineError::Sqlite {
        code: rusqlite::ffi::SQLITE_TOOBIG,
        message: format!(
            "the call's results would hold more than {max} values \
             (rows × columns, its statements together; see maxResultValues)"
        ),
    }
}

fn run_statement(
    conn: &Connection,
    stmt: &mut rusqlite::Statement<'_>,
    collect: bool,
    out: &mut Output,
    bounds: Bounds,
) -> Result<(), EngineError> {
    let before = conn.total_changes();
    // The values, and bytes, this statement may add to the call's results.
    let room = bounds.values.saturating_sub(out.values);
    let mut bytes = ByteRoom {
        left: bounds.bytes.saturating_sub(out.bytes),
        max: bounds.bytes,
    };
    let bytes_before = bytes.left;
    // The columns are read once the statement has stepped: if the schema
    // changed since it was prepared (a cached statement after ALTER TABLE),
    // SQLite prepares it again on its first step, and only then does it
    // have the new columns.
    let mut cells = Cells::default();
    {
        let mut rows = stmt.raw_query();
        let mut column_count = None;
        while let Some(row) = rows.next()? {
            if collect {
                let count = *column_count.get_or_insert_with(|| row.as_ref().column_count());
                let read = if cells.len() + count > room {
                    Err(too_many_values(bounds.values))
                } else {
                    read_row(row, count, &mut cells, bounds.text, &mut bytes)
                };
                if let Err(error) = read {
                    // A value JS cannot hold, or more values than a call
                    // returns: the statement fails, and what it did is
                    // undone, as for any failed statement (an INSERT
                    // … RETURNING made its changes by its first row): SQLite
                    // stops it at its next step, and rolls it back, with the
                    // transaction it ran in if it wrote, as for a stopped write.
                    let in_transaction = !conn.is_autocommit();
                    conn.get_interrupt_handle().interrupt();
                    let _ = rows.next();
                    return Err(match error {
                        EngineError::Sqlite { code, message }
                            if in_transaction && conn.is_autocommit() =>
                        {
                            EngineError::Sqlite {
                                code,
                                message: format!("{message}; the transaction was rolled back"),
                            }
                        }
                        error => error,
                    });
                }
            }
        }
    }
    let width = stmt.column_count();
    if conn.total_changes() != before {
        out.changes += conn.changes();
    }
    if collect && width > 0 {
        // Name by name: `column_names()` collects them in a vector first.
        let mut columns = String::new();
        for i in 0..width {
            if i > 0 {
                columns.push('\0');
            }
            columns.push_str(stmt.column_name(i)?);
        }
        let set_bytes = bytes_before - bytes.left;
        out.values += cells.len();
        out.bytes += set_bytes;
        out.sets.push(ResultSet {
            columns,
            width,
            cells,
            bytes: set_bytes,
        });
    }
    Ok(())
}
