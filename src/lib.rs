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
//! `crates/engine`; this crate only converts between it and JS:
//! parameters and results in values.rs, engine errors in errors.rs, the
//! events of work on an engine thread and its page requests in thread.rs,
//! the hot calls in calls.rs, and what happens when a JS environment goes
//! away in teardown.rs.

#![deny(clippy::all)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use rivetkit_sqlite_engine::connection::Database;
use rivetkit_sqlite_engine::control::Control;
use rivetkit_sqlite_engine::errors::EngineError;
use rivetkit_sqlite_engine::paging::Fetched;
use rivetkit_sqlite_engine::pool;

mod calls;
mod errors;
mod teardown;
mod thread;
mod values;

use errors::{napi_err, to_js};
use thread::{on_engine_thread, Event, Link, Resolver, UnsentSlot};
use values::indexed_chunks;

/// What `packedJournal()` resolves with (see `Database::packed_journal_images`).
#[napi(object)]
pub struct PackedJournal {
    pub size: f64,
    pub indices: Uint32Array,
    pub lengths: Uint32Array,
    pub bytes: Uint8Array,
}

/// What `takeDelta` (see calls.rs) returns when no delta is pending.
pub(crate) const NOTHING_PENDING: i32 = -1;

/// The version of the interface between this addon and `lib/native.js`
/// (its exports, their arguments, what they return), which `lib/native.js`
/// checks before it uses an addon: one of another release (a platform
/// package of another version), or another napi-rs package's addon, is
/// refused, not called. Raise it, there and here, with any such change.
#[napi]
pub const ENGINE_INTERFACE: u32 = 10;

/// A delta of at least this many chunks may have left chunks of the local
/// file held back for `writeBackLater()` (the tracker's `WRITE_BACK_LATER`:
/// a seal that leaves that many): after a smaller one, `lib/native.js`
/// makes no such call, whose cost a small commit would feel.
#[napi]
pub const WRITE_BACK_CHUNKS: u32 = rivetkit_sqlite_engine::tracker::WRITE_BACK_LATER as u32;

/// What `takeDelta` (see calls.rs) returns when its arrays are too small.
pub(crate) const TOO_SMALL: i32 = -2;

/// [`values::output`]'s `state` bit of a call that goes on on an engine thread:
/// finish it with `resume()`.
pub(crate) const SUSPENDED: u32 = 4;

/// [`values::output`]'s `state` bit of a result that comes in parts:
/// `moreResults()` returns each next one.
pub(crate) const MORE: u32 = 8;

/// Values per part of a result made on an engine thread's behalf (see
/// [`values::output`]). 1,000,000 rows of 3 values held the JS thread 256
/// ms at a stretch in one part; in parts of 65,536, 20-36 ms; of 16,384,
/// 14-27 ms, in about the same time in all.
pub(crate) const PART_VALUES: usize = 16_384;

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
    /// The rest of the last result made in parts (see `moreResults`).
    unsent: UnsentSlot,
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
    /// `max_text_length`: the longest string the JS runtime holds (UTF-16
    /// code units; buffer.constants.MAX_STRING_LENGTH): a statement that
    /// returns a longer TEXT value fails with `SQLITE_TOOBIG`.
    #[napi(constructor)]
    pub fn new(env: Env, max_text_length: f64) -> Result<Self, String> {
        let mut db = Database::new().map_err(to_js)?;
        db.set_max_text(max_text_length as usize);
        let native = NativeDatabase {
            control: db.control(),
            link: Arc::default(),
            local_path: db.local_path().map(str::to_owned),
            resumed: Arc::default(),
            unsent: Arc::default(),
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

    /// The most values (rows × columns, its statements together), and the
    /// most bytes of TEXT and BLOB values, the results of one call may hold,
    /// at most lib/policy.txt's `result_values` and `result_bytes` (the
    /// defaults): a statement that would return more fails with
    /// `SQLITE_TOOBIG`, and has no effect.
    #[napi]
    pub fn set_result_bounds(&self, values: f64, bytes: f64) {
        // JS checks the values first; a negative or NaN one allows nothing.
        self.lock()
            .set_result_bounds(values.max(0.0) as usize, bytes.max(0.0) as usize);
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
        let unsent = self.unsent.clone();
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
            link.emit(Event::Finished(finished, unsent));
        });
        // (interrupt() and resume() both run on the JS thread.)
        *self
            .resumed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(ticket);
        Ok(promise)
    }

    /// The next part of the result `resume()` (or `next()`) resolved with,
    /// if its `state` has bit 8 set: an array of the rest of the set under
    /// way (whole rows), then of the sets after it (their columns, row
    /// counts and cells, as in `execute`'s result); null once none is left.
    /// Between two parts, the JS thread does other work: a result of
    /// millions of values would hold it for seconds.
    #[napi(ts_return_type = "unknown[] | null")]
    pub fn more_results<'env>(&self, env: &'env Env) -> Result<Option<Array<'env>>> {
        let mut slot = self
            .unsent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(unsent) = slot.as_mut() else {
            return Ok(None);
        };
        match unsent.next_part(env, PART_VALUES) {
            Ok(Some(part)) => Ok(Some(part)),
            // Nothing left, or the part failed (the call fails): the rest goes.
            done => {
                *slot = None;
                done
            }
        }
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

    /// Whether a statement of the last `execute` failed and SQLite rolled
    /// back the transaction it ran in (an I/O error, a stopped write, `OR
    /// ROLLBACK`), as opposed to a `COMMIT` or `ROLLBACK` that failed. Read
    /// once: false again after.
    #[napi]
    pub fn last_call_rolled_back(&self) -> bool {
        self.lock().last_call_rolled_back()
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

    /// Writes the local file's chunks that a large seal left held back (see
    /// the engine's `Tracker::write_back`) on an engine thread: called as
    /// the JS thread starts writing the delta to the KV, while it waits. The
    /// job lets the database be if a call holds it: the chunks stay held
    /// back, and the next seal writes them.
    #[napi]
    pub fn write_back_later(&self) {
        if !self.lock().has_later_writes() {
            return;
        }
        let db = self.db.clone();
        pool::spawn(move || {
            if let Ok(db) = db.try_lock() {
                // A failed write leaves the chunks held back, for the next seal.
                let _ = db.write_back();
            }
        });
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
    /// and `setStatus` of this database (see calls.rs). `pack` is
    /// `(...values) => values`: results of more than a few values are
    /// made with it (see values.rs).
    #[napi(
        ts_args_type = "pack: (...values: unknown[]) => unknown[]",
        ts_return_type = "{ execute(sql: string | null, named: Record<string, unknown> | null, flags: number, count: number, p0?: unknown, p1?: unknown, p2?: unknown, p3?: unknown, positional?: unknown[] | null): [changes: number, lastInsertRowid: number | bigint, state: number, ...columnsRowCountsAndCells: unknown[]] | null; takeDelta(slab: Uint8Array, at: number, meta: Float64Array): number; takePackedDelta(meta: Float64Array): Uint8Array | null; ack(): void; setStatus(status: Float64Array | null): void }"
    )]
    pub fn calls<'env>(
        &self,
        env: &'env Env,
        pack: Function<'env, (), ()>,
    ) -> Result<Object<'env>> {
        calls::functions(env, self.db.clone(), pack)
    }
}
