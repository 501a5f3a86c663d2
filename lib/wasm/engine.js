"use strict";

// The WASM engine: one SQLite database (sqlite3 compiled to WebAssembly) on
// in-memory files, reporting which 4 KiB chunks changed. It mirrors the
// native engine call for call: src/lib.rs (NativeDatabase), src/connection.rs
// (Database), src/values.rs (parameters and cells) and src/errors.rs, and
// rusqlite's behaviour underneath them (statement cache, Batch, error
// messages).

const { codeName } = require("./codes");
const { MemFile, Tracker, CHUNK_SIZE } = require("./files");

const { TAG_MAIN, TAG_JOURNAL } = require("../format");
const { isBytes } = require("../params");
const { boundValue } = require("../policy");

const {
	SQLITE_OK,
	SQLITE_INTERRUPT,
	SQLITE_CANTOPEN,
	SQLITE_MISUSE,
	SQLITE_IOERR_TRUNCATE,
	SQLITE_ROW,
	SQLITE_DONE,
	SQLITE_INTEGER,
	SQLITE_FLOAT,
	SQLITE_TEXT,
	SQLITE_BLOB,
	SQLITE_OPEN_READWRITE,
	SQLITE_OPEN_CREATE,
	SQLITE_OPEN_NOMUTEX,
	SQLITE_OPEN_EXRESCODE,
	SQLITE_PREPARE_PERSISTENT,
	SQLITE_UTF8,
	SQLITE_DIRECTONLY,
	SQLITE_STATIC,
	SQLITE_TRANSIENT,
	SQLITE_DBCONFIG_ENABLE_TRIGGER,
	SQLITE_DBCONFIG_DEFENSIVE,
	SQLITE_DBCONFIG_DQS_DML,
	SQLITE_DBCONFIG_DQS_DDL,
	SQLITE_DBCONFIG_TRUSTED_SCHEMA,
} = require("./constants");

// rusqlite's statement cache holds this many statements.
const STATEMENT_CACHE_CAPACITY = 16;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SAFE_BIG = BigInt(MAX_SAFE);
const MIN_I64 = -(2n ** 63n);
const MAX_I64 = 2n ** 63n - 1n;

function engineError(code, message, cause) {
	const error = cause === undefined ? new Error(message) : new Error(message, { cause });
	error.code = code;
	return error;
}

// The longest string this runtime holds (UTF-16 code units): a longer TEXT
// result is SQLITE_TOOBIG, as on the native engine (src/values.rs read_row).
const { MAX_STRING_LENGTH } = require("node:buffer").constants;

/**
 * The UTF-16 code units of the text `bytes` decodes to (bytes that are not
 * UTF-8 become U+FFFD), counted a piece at a time: the whole may be longer
 * than a string can be.
 */
function utf16Units(bytes) {
	const decoder = new TextDecoder("utf-8");
	const PIECE = 64 * 1024 * 1024;
	let units = 0;
	for (let at = 0; at < bytes.length; at += PIECE) {
		units += decoder.decode(bytes.subarray(at, at + PIECE), { stream: at + PIECE < bytes.length }).length;
	}
	return units;
}

/**
 * Thrown by #readRow for a TEXT value longer than a string can be or more
 * bytes than a call's results may hold, and by #runStatement for more
 * values than they may hold.
 */
class TooBig extends Error {}

// The most values, and bytes of TEXT and BLOB values, one call's results
// may hold (lib/policy.txt).
const MAX_RESULT_VALUES = boundValue("result_values");
const MAX_RESULT_BYTES = boundValue("result_bytes");

const closedError = () => engineError("ERR_SQLITE_CLOSED", "The database is closed");
const rangeError = (message) => engineError("ERR_SQLITE_RANGE", message);

/**
 * Whether `error`, thrown by a call into the module, leaves the module in an
 * unknown state: a trap (WebAssembly.RuntimeError), or the JS thread's stack
 * overflowing (a RangeError of the runtime's: this engine's own carry a
 * code), which may cut a call short anywhere, in SQLite's allocator too.
 */
function isTrap(error) {
	return error instanceof WebAssembly.RuntimeError || (error instanceof RangeError && error.code === undefined);
}

/** The error of every call on a database whose module broke (`cause`: what broke it). */
function brokenError(cause) {
	const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
	return engineError(
		"SQLITE_INTERNAL",
		`the WASM engine's SQLite module failed (${what}) and every database on it was given up: open them again (what the KV holds is unchanged)`,
		cause,
	);
}

// Where a database header keeps its text encoding: 1 UTF-8, 2 UTF-16le, 3 UTF-16be.
const TEXT_ENCODING_OFFSET = 56;

/**
 * Refuses a UTF-16 database. This build of SQLite has no UTF-16
 * (SQLITE_OMIT_UTF16) and would take its schema for corrupt. Databases are
 * UTF-8 since lib/policy.txt keeps them so, but 2.2.1, and the native engine
 * before that rule, could make UTF-16 ones: the native engine opens them.
 */
function checkTextEncoding(main) {
	const field = new Uint8Array(4);
	if (main.read(field, 0, 4, TEXT_ENCODING_OFFSET) < 4) return;
	const encoding = new DataView(field.buffer).getUint32(0);
	if (encoding === 2 || encoding === 3) {
		throw engineError(
			codeName(SQLITE_CANTOPEN),
			`the database is UTF-16 (${encoding === 2 ? "UTF-16le" : "UTF-16be"}), and the WASM engine's SQLite is built without UTF-16: open it with the native engine`,
		);
	}
}

/** Integers within ±(2^53 − 1) become numbers, others BigInt (src/lib.rs integer). */
function integer(value) {
	return value >= -MAX_SAFE_BIG && value <= MAX_SAFE_BIG ? Number(value) : value;
}

/** Whitespace to SQLite's tokenizer (src/script.rs is_sqlite_space). */
function isSqliteSpace(c) {
	return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

/** src/script.rs may_be_single: no `;` but at the end (whitespace aside). */
function mayBeSingle(sql) {
	const at = sql.indexOf(";");
	return at === -1 || sqliteTrim(sql.slice(at + 1)) === "";
}

/**
 * `s` without SQLite's whitespace at either end: the key, and the text, of
 * a cached statement. (rusqlite trims any Unicode whitespace; src/script.rs
 * may_be_single sends SQL with other whitespace at an end, which SQLite
 * reads as part of a name, to be run as a script instead.)
 */
function sqliteTrim(s) {
	let start = 0;
	let end = s.length;
	while (start < end && isSqliteSpace(s.charCodeAt(start))) start++;
	while (end > start && isSqliteSpace(s.charCodeAt(end - 1))) end--;
	return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** Checks one parameter value as src/lib.rs `param` does (types were checked in JS). */
function checkParam(value) {
	if (value === null || typeof value === "number" || typeof value === "string") return value;
	if (typeof value === "bigint") {
		if (value < MIN_I64 || value > MAX_I64) throw rangeError("BigInt parameter does not fit in 64 bits");
		return value;
	}
	if (isBytes(value)) return value;
	throw new TypeError(`Cannot bind a value of type ${value === undefined ? "undefined" : typeof value}`);
}

function normalize(positional, named) {
	if (positional !== null && positional !== undefined) {
		return { kind: "positional", values: Array.from(positional, checkParam) };
	}
	if (named !== null && named !== undefined) {
		const values = new Map();
		// Enumerable string keys, as napi-rs reads an object into a HashMap.
		for (const key in named) values.set(key, checkParam(named[key]));
		return { kind: "named", values };
	}
	return { kind: "none" };
}

/**
 * Frees what a database holds in the shared module: its statements, its
 * connection, its VFS and files, its scratch memory. Used by close(), and by
 * the GC for a database dropped without close() (as the native engine's
 * Drop does), so nothing leaks into the process-wide heap.
 */
/**
 * Limits on the running call (src/control.rs, without the inline budget:
 * this engine runs every call on the JS thread): a deadline, and a flag that
 * interrupt() raises. SQLite's progress handler asks it every
 * PROGRESS_OPS instructions.
 */
class Control {
	/** performance.now() at which the call's deadline passes (0: none). */
	deadline = 0;
	interrupted = false;
	/** Why the last statement was stopped: null, "deadline" or "interrupt". */
	stopped = null;
	/** Whether the running statement ended its transaction (see transactionEnded). */
	ended = false;

	startCall(timeoutMs) {
		this.interrupted = false;
		this.stopped = null;
		this.ended = false;
		this.deadline = timeoutMs === null ? 0 : performance.now() + timeoutMs;
	}

	/** A statement starts: it has not ended a transaction yet. */
	startStatement() {
		this.ended = false;
	}

	/**
	 * SQLite's commit or rollback hook: the running statement ended its
	 * transaction. SQLite asks the progress handler once more on its way out
	 * of the statement, after that: a stop there would report
	 * SQLITE_INTERRUPT for a statement that took effect. From here to its
	 * end, the statement is not stopped (src/control.rs does the same).
	 */
	transactionEnded() {
		this.ended = true;
	}

	/**
	 * Whether the call must stop before the next statement of its script:
	 * interrupted, or past its deadline (src/control.rs
	 * stop_before_statement). SQLite asks the progress handler every
	 * PROGRESS_OPS instructions of one statement: a script of shorter
	 * statements would otherwise run to its end.
	 */
	stopBeforeStatement() {
		this.ended = false;
		return this.shouldStop();
	}

	shouldStop() {
		if (this.ended) return false;
		if (this.interrupted) this.stopped = "interrupt";
		else if (this.deadline !== 0 && performance.now() >= this.deadline) this.stopped = "deadline";
		return this.stopped !== null;
	}
}

const PROGRESS_OPS = 100;

/** The error of a call stopped by its Control, as src/connection.rs words it. */
function stoppedError(stopped) {
	const message = stopped === "deadline" ? "interrupted: the call ran longer than its timeout" : "interrupted";
	return engineError(codeName(SQLITE_INTERRUPT), message);
}

function release(api, state) {
	api.progress.unregister(state.progressId);
	if (api.broken !== null) {
		// Nothing may call into the module: it goes once no database holds it.
		state.db = 0;
		state.cache.clear();
		return SQLITE_OK;
	}
	let rc = SQLITE_OK;
	if (state.db) {
		const db = state.db;
		state.db = 0;
		for (const stmt of state.cache.values()) api.x.sqlite3_finalize(stmt);
		state.cache.clear();
		rc = api.x.sqlite3_close_v2(db);
	}
	api.vfs.releaseFileSet(state.set);
	state.sqlScratch.trim(0);
	state.bindScratch.trim(0);
	return rc;
}

const finalizer = new FinalizationRegistry(({ api, state }) => {
	try {
		release(api, state);
	} catch {
		// Nothing to report it to.
	}
});

class WasmDatabase {
	#api;
	#x;
	/** What the shared module holds for this database (see release()). */
	#s;
	#tracker = null;
	#closed = false;

	/** The engine's name, as `Database.backend` reports it. */
	get backend() {
		return "wasm";
	}

	/** @internal Use createWasmEngine(). */
	constructor(api) {
		this.#api = api;
		this.#x = api.x;
		this.#s = {
			db: 0,
			set: api.vfs.createFileSet(),
			/** @type {Map<string, number>} trimmed SQL → prepared statement, LRU order */
			cache: new Map(),
			sqlScratch: new api.Scratch(),
			bindScratch: new api.Scratch(),
			control: new Control(),
			progressId: 0,
		};
		this.#s.set.control = this.#s.control;
		this.#s.progressId = api.progress.register(this.#s.control);
		finalizer.register(this, { api, state: this.#s }, this.#s);
	}

	#file(tag) {
		if (tag === TAG_MAIN) return this.#s.set.main;
		if (tag === TAG_JOURNAL) {
			const path = `${this.#s.set.mainPath}-journal`;
			let file = this.#s.set.files.get(path);
			if (file === undefined) {
				file = new MemFile();
				this.#s.set.files.set(path, file);
			}
			return file;
		}
		throw rangeError(`unknown file tag ${tag}`);
	}

	/** Writes chunks `firstIndex..` of file `tag` (0 main, 1 journal), as read from the KV. Only before open. */
	loadChunks(tag, firstIndex, chunks) {
		if (this.#closed) throw closedError();
		if (this.#api.broken !== null) throw brokenError(this.#api.broken);
		if (this.#s.db) throw rangeError("the database is already open");
		const file = this.#file(tag);
		for (let i = 0; i < chunks.length; i++) {
			const bytes = chunks[i];
			if (bytes === null || bytes === undefined) continue;
			file.write(bytes, 0, bytes.length, (firstIndex + i) * CHUNK_SIZE);
		}
	}

	/**
	 * Sets the files to the sizes the KV metadata gives (journal null: absent)
	 * and opens SQLite. Every chunk is loaded (this engine does not page
	 * lazily), so opening never needs resume(): returns false.
	 */
	open(mainSize, journalSize) {
		if (this.#closed) throw closedError();
		if (this.#s.db) throw rangeError("the database is already open");
		this.#s.set.main.truncate(mainSize);
		const journalPath = `${this.#s.set.mainPath}-journal`;
		if (journalSize !== null && journalSize !== undefined) this.#file(TAG_JOURNAL).truncate(journalSize);
		else this.#s.set.files.delete(journalPath);
		checkTextEncoding(this.#s.set.main);
		this.#tracker = new Tracker(this.#s.set.main);
		this.#s.set.tracker = this.#tracker;
		try {
			this.#connect();
			// A hot journal was rolled back: its effect is the pending delta.
			this.#sealIfAutocommit();
		} catch (error) {
			throw this.#fault(error);
		}
		return false;
	}

	/**
	 * Seals the changes made so far, when no transaction is open. Changes
	 * that cannot be sealed (a write to the file failed) are discarded:
	 * SQLite is connected again (its page cache is stale), over the file put
	 * back to the last seal. The call that made them fails, and has no effects.
	 */
	#sealIfAutocommit() {
		if (this.#x.sqlite3_get_autocommit(this.#conn()) === 0) return;
		const tracker = this.#trackerOrThrow();
		try {
			tracker.seal();
		} catch (error) {
			this.#putBack(() => tracker.discardUnsealed());
			throw error;
		}
	}

	#connect() {
		const api = this.#api;
		const x = this.#x;
		const path = api.allocCString(this.#s.set.mainPath);
		const vfs = api.allocCString(this.#s.set.vfsName);
		let db = 0;
		try {
			const flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
			const rc = x.sqlite3_open_v2(path, api.out, flags, vfs);
			db = api.peek32(api.out);
			if (rc !== SQLITE_OK) {
				// As rusqlite reports a failed open.
				let error;
				if (!db) {
					error = engineError(codeName(rc), this.#s.set.mainPath);
				} else {
					error = this.#error(rc, db);
					if ((rc & 0xff) === 14) error.message = `${error.message}: ${this.#s.set.mainPath}`;
				}
				throw error;
			}
			const busy = x.sqlite3_busy_timeout(db, 5000);
			if (busy !== SQLITE_OK) throw this.#error(busy, db);
			this.#configure(db);
			for (const [name, value] of this.#kept) this.#run(db, `PRAGMA ${name} = ${value}`);
			// lib/policy.txt's limits.
			for (const [id, value] of api.limits) x.sqlite3_limit(db, id, value);
			x.sqlite3_set_authorizer(db, api.authorize, 0);
			x.sqlite3_progress_handler(db, PROGRESS_OPS, api.progress.func, this.#s.progressId);
			x.sqlite3_commit_hook(db, api.progress.committed, this.#s.progressId);
			x.sqlite3_rollback_hook(db, api.progress.rolledBack, this.#s.progressId);
			// A journal brought from the KV has been rolled back (or found not
			// hot) by now, and the journal lives in memory from here on: SQLite
			// holds its exclusive lock until close and never reads the file
			// again, so its bytes need not stay in memory.
			const journalPath = `${this.#s.set.mainPath}-journal`;
			if (this.#s.set.files.get(journalPath)?.opens === 0) this.#s.set.files.delete(journalPath);
		} catch (error) {
			if (db) x.sqlite3_close_v2(db);
			throw error;
		} finally {
			api.free(path);
			api.free(vfs);
		}
		this.#s.db = db;
	}

	/** src/connection.rs configure, plus what makes this build's SQLite behave like the native one's. */
	#configure(db) {
		const api = this.#api;
		const x = this.#x;
		const dbConfig = (op, value) => {
			const rc = x.sqlite3__wasm_db_config_ip(db, op, value, 0);
			if (rc !== SQLITE_OK) throw this.#error(rc, db);
		};
		dbConfig(SQLITE_DBCONFIG_DEFENSIVE, 1);
		dbConfig(SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0);
		dbConfig(SQLITE_DBCONFIG_ENABLE_TRIGGER, 1);
		// This build is compiled with SQLITE_DQS=0; the native one has the
		// default (double-quoted string literals accepted).
		dbConfig(SQLITE_DBCONFIG_DQS_DML, 1);
		dbConfig(SQLITE_DBCONFIG_DQS_DDL, 1);
		// Drop the virtual tables the native build does not have
		// (sqlite_dbpage, bytecode, tables_used, sqlite_stmt).
		const dropped = x.sqlite3_drop_modules(db, api.keepModules);
		if (dropped !== SQLITE_OK) throw this.#error(dropped, db);
		for (const nArg of [1, 2]) {
			const rc = x.sqlite3_create_function_v2(
				db,
				api.loadExtension.name,
				nArg,
				SQLITE_UTF8 | SQLITE_DIRECTONLY,
				0,
				api.loadExtension.func,
				0,
				0,
				0,
			);
			if (rc !== SQLITE_OK) throw this.#error(rc, db);
		}
		const functions = api.registerFunctions(db);
		if (functions !== SQLITE_OK) throw this.#error(functions, db);
		// page_size before the first write: this build defaults to 8192.
		// cache_size: this build defaults to -16384 (16 MiB per database), the
		// native one to -2000.
		this.#run(
			db,
			`PRAGMA page_size = 4096;
			 PRAGMA locking_mode = EXCLUSIVE;
			 PRAGMA synchronous = OFF;
			 PRAGMA temp_store = MEMORY;
			 PRAGMA foreign_keys = OFF;
			 PRAGMA cache_size = -2000;`,
		);
		// The first read takes the lock and rolls back a hot journal, if one
		// was brought from the KV; only then may the journal live in memory.
		this.#run(db, "SELECT count(*) FROM sqlite_schema");
		this.#run(db, "PRAGMA journal_mode = MEMORY");
	}

	/** Runs every statement of `sql` to completion (configuration only). */
	#run(db, sql) {
		const api = this.#api;
		const x = this.#x;
		const [p, len] = api.encodeInto(this.#s.sqlScratch, sql);
		let at = 0;
		while (at < len) {
			const { rc, stmt, tail } = this.#prepare(db, p + at, len - at, 0);
			if (rc !== SQLITE_OK) throw this.#error(rc, db);
			at = tail === 0 ? len : at + tail;
			if (!stmt) continue;
			try {
				let step = x.sqlite3_step(stmt);
				while (step === SQLITE_ROW) step = x.sqlite3_step(stmt);
				if (step !== SQLITE_DONE) throw this.#error(step, db);
			} finally {
				x.sqlite3_finalize(stmt);
			}
		}
	}

	#conn() {
		if (!this.#s.db) throw closedError();
		if (this.#api.broken !== null) throw brokenError(this.#api.broken);
		return this.#s.db;
	}

	/**
	 * The tracker, JS state only: it stays usable once the module broke, so
	 * that what calls sealed before (complete states of the file) can still
	 * be written and acknowledged.
	 */
	#trackerOrThrow() {
		if (this.#tracker === null) throw closedError();
		return this.#tracker;
	}

	/**
	 * The error to throw for `error`, thrown by a call into the module: if it
	 * broke the module (see isTrap), the module is given up.
	 */
	#fault(error) {
		if (!isTrap(error)) return error;
		this.#api.fail(error);
		return brokenError(error);
	}

	/**
	 * An SQLite failure as rusqlite reports it: SQLite's message when it is
	 * about `rc`; a failed truncation of the main file says why it failed.
	 */
	#error(rc, db = this.#s.db) {
		const x = this.#x;
		const api = this.#api;
		let message = db && x.sqlite3_errcode(db) === rc ? api.cstr(x.sqlite3_errmsg(db)) : api.cstr(x.sqlite3_errstr(rc));
		message ??= codeName(rc);
		const failure = this.#tracker?.truncationFailure;
		if (rc === SQLITE_IOERR_TRUNCATE && failure) {
			this.#tracker.truncationFailure = null;
			message = `${message}: ${failure}`;
		}
		return engineError(codeName(rc), message);
	}

	/**
	 * sqlite3_prepare_v3 on `len` bytes at `p`: `{ rc, stmt, tail }`, tail as
	 * rusqlite computes it. The text ends where api.encodeInto's does, with
	 * a NUL after it, and SQLite is given the NUL too: text that does not
	 * end with one it copies first, and each statement of a script would
	 * copy the rest of the script (200,000 statements took 9 s, as in
	 * crates/engine/src/script.rs).
	 */
	#prepare(db, p, len, flags) {
		const api = this.#api;
		const rc = this.#x.sqlite3_prepare_v3(db, p, len + 1, flags, api.out, api.out + 4);
		const stmt = rc === SQLITE_OK ? api.peek32(api.out) : 0;
		const tailPointer = api.peek32(api.out + 4);
		let tail = tailPointer ? tailPointer - p : 0;
		if (tail <= 0 || tail >= len) tail = 0;
		return { rc, stmt, tail };
	}

	/**
	 * rusqlite's prepare_cached: the trimmed SQL from the cache, or prepared
	 * (persistent) if it holds exactly one statement. Returns 0 when rusqlite's
	 * would fail (empty, several statements, or any prepare error): the caller
	 * then runs the SQL statement by statement.
	 */
	#prepareCached(db, trimmed) {
		const cached = this.#s.cache.get(trimmed);
		if (cached !== undefined) {
			this.#s.cache.delete(trimmed);
			return cached;
		}
		// As src/connection.rs run: only SQL that may be one statement (see
		// mayBeSingle) is prepared whole. Preparing what follows a statement
		// would apply a pragma there before the statement runs.
		if (!mayBeSingle(trimmed)) return 0;
		const [p, len] = this.#api.encodeInto(this.#s.sqlScratch, trimmed);
		const first = this.#prepare(db, p, len, SQLITE_PREPARE_PERSISTENT);
		if (first.rc !== SQLITE_OK || !first.stmt) return 0;
		if (first.tail !== 0) {
			// Anything but "nothing left" (an error or another statement) is not one statement.
			const rest = this.#prepare(db, p + first.tail, len - first.tail, 0);
			if (rest.stmt) this.#x.sqlite3_finalize(rest.stmt);
			if (rest.rc !== SQLITE_OK || rest.stmt) {
				this.#x.sqlite3_finalize(first.stmt);
				return 0;
			}
		}
		return first.stmt;
	}

	/** src/connection.rs nothing_after: whether the `len` bytes at `p` hold no statement (whitespace, comments, empty statements). */
	#nothingAfter(db, p, len) {
		while (len > 0) {
			const next = this.#prepare(db, p, len, 0);
			if (next.stmt) {
				this.#x.sqlite3_finalize(next.stmt);
				return false;
			}
			if (next.rc !== SQLITE_OK) return false;
			if (next.tail === 0) return true;
			p += next.tail;
			len -= next.tail;
		}
		return true;
	}

	/** Returns a statement to the cache (bindings cleared), evicting the least recently used. */
	#cacheStatement(trimmed, stmt) {
		this.#x.sqlite3_clear_bindings(stmt);
		this.#s.cache.set(trimmed, stmt);
		if (this.#s.cache.size > STATEMENT_CACHE_CAPACITY) {
			const [oldest, old] = this.#s.cache.entries().next().value;
			this.#s.cache.delete(oldest);
			this.#x.sqlite3_finalize(old);
		}
	}

	#flushCache() {
		for (const stmt of this.#s.cache.values()) this.#x.sqlite3_finalize(stmt);
		this.#s.cache.clear();
	}

	/**
	 * Runs `sql`. Returns `[changes, lastInsertRowid, state, columns₀,
	 * rowCount₀, cells₀…, …]` as the native engine does (src/lib.rs
	 * `output`): per statement that returns columns, its column names joined
	 * by "\0", its row count and its cells row after row; `state` has bit 1 set when no
	 * transaction is open and bit 2 when a sealed delta waits to be taken.
	 * Seals as src/connection.rs execute does: at the end of the call and
	 * before each statement of a script, when no transaction is open, even
	 * when the call fails.
	 */
	execute(sql, positional, named, collect) {
		this.#rolledBack = false;
		const params = normalize(positional, named);
		const db = this.#conn();
		const x = this.#x;
		const tracker = this.#trackerOrThrow();
		this.#sealsAtCall = tracker.seals;
		this.#wrote = false;
		const control = this.#s.control;
		control.startCall(this.#timeoutMs);
		const out = { sets: [], changes: 0, lastInsertRowid: 0, values: 0, bytes: 0 };
		try {
			// The common case, one statement, goes through the statement cache;
			// anything else runs one statement at a time, each prepared after the
			// previous one ran.
			const trimmed = sqliteTrim(sql);
			const stmt = this.#prepareCached(db, trimmed);
			if (stmt) {
				try {
					this.#bindAll(stmt, params, true);
					this.#runStatement(db, stmt, collect, out);
				} finally {
					this.#cacheStatement(trimmed, stmt);
				}
			} else {
				const [p, len] = this.#api.encodeInto(this.#s.sqlScratch, sql);
				let at = 0;
				// Whether a statement came before: from a script's second
				// statement on, parameters bind without an exact count.
				let seen = false;
				while (at < len) {
					const next = this.#prepare(db, p + at, len - at, 0);
					if (next.rc !== SQLITE_OK) throw this.#error(next.rc, db);
					at = next.tail === 0 ? len : at + next.tail;
					if (!next.stmt) continue;
					try {
						// The statements before keep their effects.
						if (seen && control.stopBeforeStatement()) throw stoppedError(control.stopped);
						this.#sealIfAutocommit();
						// As src/connection.rs run: SQL that is one statement (a `;` in
						// a literal, a comment after it) takes its values exactly; what
						// follows is looked at only for more values than it takes.
						const surplus = params.kind === "positional" && params.values.length > x.sqlite3_bind_parameter_count(next.stmt);
						const exact = surplus && !seen && this.#nothingAfter(db, p + at, len - at);
						seen = true;
						this.#bindAll(next.stmt, params, exact);
						this.#runStatement(db, next.stmt, collect, out);
					} finally {
						x.sqlite3_finalize(next.stmt);
					}
				}
			}
		} catch (error) {
			const fault = this.#fault(error);
			if (fault !== error) throw fault;
			// A failed call is sealed too; its own error is the one to report.
			try {
				this.#sealIfAutocommit();
			} catch {}
			throw control.stopped === null ? error : stoppedError(control.stopped);
		} finally {
			if (this.#api.broken === null) {
				this.#s.sqlScratch.trim();
				this.#s.bindScratch.trim();
			}
		}
		this.#sealIfAutocommit();
		const state = (x.sqlite3_get_autocommit(db) !== 0 ? 1 : 0) | (tracker.pendingSize !== null ? 2 : 0);
		const result = [out.changes, integer(x.sqlite3_last_insert_rowid(db)), state];
		for (const set of out.sets) {
			result.push(set.columns.join("\0"), set.count);
			for (const cell of set.cells) result.push(cell);
		}
		return result;
	}

	/** The tracker's seal count when the last call started. */
	#sealsAtCall = 0;
	/** Whether a statement that writes ran to its end in the current call. */
	#wrote = false;
	/** Whether a statement of the current call failed and SQLite rolled back the transaction it ran in. */
	#rolledBack = false;
	/** The longest a call may run, in milliseconds (null: no limit). */
	#timeoutMs = null;
	/** The most values, and bytes of TEXT and BLOB values, one call's results may hold (see setResultBounds). */
	#maxValues = MAX_RESULT_VALUES;
	#maxBytes = MAX_RESULT_BYTES;
	/** The bytes of TEXT and BLOB values the statement under way may still add to its call's results. */
	#bytesLeft = 0;

	/**
	 * The most values (rows × columns, its statements together), and the
	 * most bytes of TEXT and BLOB values, the results of one call may hold,
	 * at most lib/policy.txt's `result_values` and `result_bytes` (the
	 * defaults): a statement that would return more fails with
	 * SQLITE_TOOBIG, and has no effect (src/connection.rs run_statement).
	 */
	setResultBounds(values, bytes) {
		this.#maxValues = values >= 0 ? Math.min(values, MAX_RESULT_VALUES) : 0;
		this.#maxBytes = bytes >= 0 ? Math.min(bytes, MAX_RESULT_BYTES) : 0;
	}

	/** The longest a call may run from now on, in milliseconds (null: no limit). */
	setTimeout(timeoutMs) {
		this.#timeoutMs = timeoutMs === null || timeoutMs === undefined || !Number.isFinite(timeoutMs) ? null : timeoutMs;
	}

	/**
	 * Stops the running call (SQLITE_INTERRUPT). A call of this engine runs on
	 * the JS thread, so only code it calls back can reach this while it runs.
	 */
	interrupt() {
		this.#s.control.interrupted = true;
	}

	/**
	 * Whether the last execute (even one that failed) changed anything: sealed
	 * changes, or ran a statement that writes (inside a transaction too).
	 */
	lastCallChanged() {
		return this.#wrote || this.#trackerOrThrow().seals !== this.#sealsAtCall;
	}

	/** src/connection.rs last_call_rolled_back: read once. */
	lastCallRolledBack() {
		const rolledBack = this.#rolledBack;
		this.#rolledBack = false;
		return rolledBack;
	}

	#paramName(stmt, index) {
		return this.#api.cstr(this.#x.sqlite3_bind_parameter_name(stmt, index));
	}

	/** src/values.rs first_named: the first parameter from `index` on that the statement uses. */
	#firstNamed(stmt, index) {
		const count = this.#x.sqlite3_bind_parameter_count(stmt);
		for (let i = index; i <= count; i++) {
			const name = this.#paramName(stmt, i);
			if (name != null) return name;
		}
		return `?${index}`;
	}

	/** src/values.rs bind_all. */
	#bindAll(stmt, params, exact) {
		const count = this.#x.sqlite3_bind_parameter_count(stmt);
		switch (params.kind) {
			case "none":
				if (count > 0) {
					const name = this.#firstNamed(stmt, 1);
					throw rangeError(`Missing value for parameter ${name}: the statement has ${count} parameter(s) and none were given`);
				}
				return;
			case "positional": {
				const values = params.values;
				// Positional values bind by index, to `?`, `?NNN` and named
				// parameters alike.
				for (let index = 1; index <= count; index++) {
					if (index - 1 < values.length) {
						this.#bind(stmt, index, values[index - 1]);
					} else {
						const name = this.#firstNamed(stmt, index);
						throw rangeError(`Missing value for parameter ${name}: ${values.length} value(s) given, the statement needs ${count}`);
					}
				}
				if (exact && values.length > count) {
					throw rangeError(`Too many parameter values: ${values.length} given, the statement takes ${count}`);
				}
				return;
			}
			case "named": {
				for (let index = 1; index <= count; index++) {
					const name = this.#paramName(stmt, index);
					if (name === null || name.startsWith("?")) {
						throw rangeError(`Parameter ?${index} is positional: pass an array, not an object`);
					}
					const key = name.slice(1);
					if (!params.values.has(key)) throw rangeError(`Missing named parameter "${name}"`);
					this.#bind(stmt, index, params.values.get(key));
				}
				return;
			}
		}
	}

	#bind(stmt, index, value) {
		const x = this.#x;
		let rc;
		if (value === null) {
			rc = x.sqlite3_bind_null(stmt, index);
		} else if (typeof value === "number") {
			// Integral values within ±(2^53 − 1) bind as INTEGER, the rest as REAL.
			if (Number.isInteger(value) && Math.abs(value) <= MAX_SAFE) {
				rc = (value | 0) === value ? x.sqlite3_bind_int(stmt, index, value) : x.sqlite3_bind_int64(stmt, index, BigInt(value));
			} else {
				rc = x.sqlite3_bind_double(stmt, index, value);
			}
		} else if (typeof value === "bigint") {
			rc = x.sqlite3_bind_int64(stmt, index, value);
		} else if (typeof value === "string") {
			if (value.length === 0) {
				rc = x.sqlite3_bind_text(stmt, index, this.#api.staticEmpty, 0, SQLITE_STATIC);
			} else {
				const [p, len] = this.#api.encodeInto(this.#s.bindScratch, value);
				rc = x.sqlite3_bind_text(stmt, index, p, len, SQLITE_TRANSIENT);
			}
		} else if (value.length === 0) {
			// rusqlite binds an empty blob as zeroblob(0): a BLOB, not NULL.
			rc = x.sqlite3_bind_zeroblob(stmt, index, 0);
		} else {
			const p = this.#s.bindScratch.ensure(value.length);
			this.#api.heap().set(value, p);
			rc = x.sqlite3_bind_blob(stmt, index, p, value.length, SQLITE_TRANSIENT);
		}
		if (rc !== SQLITE_OK) throw this.#error(rc);
	}

	/** src/connection.rs run_statement. */
	#runStatement(db, stmt, collect, out) {
		const x = this.#x;
		const api = this.#api;
		this.#s.control.startStatement();
		const before = x.sqlite3_total_changes64(db);
		const inTransaction = x.sqlite3_get_autocommit(db) === 0;
		// The columns are read once the statement has stepped: a statement
		// prepared before a schema change is prepared again by its first
		// step, and only then has the new columns.
		let columnCount = -1;
		const cells = [];
		let count = 0;
		// The values, and bytes, this statement may add to the call's results.
		const room = this.#maxValues - out.values;
		this.#bytesLeft = this.#maxBytes - out.bytes;
		const bytesBefore = this.#bytesLeft;
		try {
			for (;;) {
				const rc = x.sqlite3_step(stmt);
				if (rc === SQLITE_ROW) {
					if (collect) {
						if (columnCount === -1) columnCount = x.sqlite3_column_count(stmt);
						try {
							if (cells.length + columnCount > room) {
								throw new TooBig(
									`the call's results would hold more than ${this.#maxValues} values (rows × columns, its statements together; see maxResultValues)`,
								);
							}
							this.#readRow(stmt, columnCount, cells);
						} catch (error) {
							if (!(error instanceof TooBig)) throw error;
							// The statement fails, and what it did is undone, as for any
							// failed statement (src/connection.rs run_statement).
							x.sqlite3_interrupt(db);
							x.sqlite3_step(stmt);
							this.#noteRollback(stmt, inTransaction);
							const rolledBack = inTransaction && x.sqlite3_get_autocommit(db) !== 0;
							throw engineError("SQLITE_TOOBIG", rolledBack ? `${error.message}; the transaction was rolled back` : error.message);
						}
						count++;
					}
				} else if (rc === SQLITE_DONE) {
					break;
				} else {
					const error = this.#error(rc, db);
					this.#rollBackStoppedWrite(db, stmt, rc, inTransaction);
					this.#noteRollback(stmt, inTransaction);
					throw error;
				}
			}
		} finally {
			x.sqlite3_reset(stmt);
		}
		let set = null;
		columnCount = x.sqlite3_column_count(stmt);
		if (collect && columnCount > 0) {
			const columns = [];
			for (let i = 0; i < columnCount; i++) columns.push(api.cstr(x.sqlite3_column_name(stmt, i)));
			set = { columns, count, cells };
		}
		if (x.sqlite3_total_changes64(db) !== before) out.changes += Number(x.sqlite3_changes64(db));
		if (set !== null) {
			out.sets.push(set);
			out.values += cells.length;
			out.bytes += bytesBefore - this.#bytesLeft;
		}
		if (x.sqlite3_stmt_readonly(stmt) === 0) this.#wrote = true;
	}

	/**
	 * src/connection.rs swallowed_stop, for this engine's stops: SQLite asks
	 * the progress handler once more as a statement returns, after its last
	 * instruction, and a stop there reports SQLITE_INTERRUPT with the
	 * statement's effects kept and its transaction open. A write inside a
	 * transaction (`inTransaction`: when it started) stopped there is treated
	 * as one stopped midway, which takes its transaction with it: the
	 * transaction is rolled back, so that a write whose call rejected never
	 * commits with the calls after it.
	 */
	#rollBackStoppedWrite(db, stmt, rc, inTransaction) {
		const x = this.#x;
		if ((rc & 0xff) !== SQLITE_INTERRUPT || !inTransaction) return;
		if (x.sqlite3_stmt_readonly(stmt) !== 0 || x.sqlite3_get_autocommit(db) !== 0) return;
		x.sqlite3_reset(stmt);
		const control = this.#s.control;
		const { deadline, interrupted, stopped, ended } = control;
		control.startCall(null);
		try {
			this.#run(db, "ROLLBACK");
		} finally {
			Object.assign(control, { deadline, interrupted, stopped, ended });
		}
	}

	/**
	 * src/connection.rs note_rollback: a statement that failed (`stmt`, begun
	 * inside a transaction if `inTransaction`) took its transaction with it.
	 */
	#noteRollback(stmt, inTransaction) {
		const x = this.#x;
		if (
			inTransaction &&
			x.sqlite3_get_autocommit(this.#s.db) !== 0 &&
			!(x.sqlite3_stmt_readonly(stmt) !== 0 && x.sqlite3_column_count(stmt) === 0)
		) {
			this.#rolledBack = true;
		}
	}

	/** src/values.rs read_row, then the conversion of src/lib.rs output: appends the row's cells to `cells`. */
	#readRow(stmt, columnCount, cells) {
		const x = this.#x;
		const api = this.#api;
		for (let i = 0; i < columnCount; i++) {
			let cell;
			switch (x.sqlite3_column_type(stmt, i)) {
				case SQLITE_INTEGER:
					cell = integer(x.sqlite3_column_int64(stmt, i));
					break;
				case SQLITE_FLOAT:
					cell = x.sqlite3_column_double(stmt, i);
					break;
				case SQLITE_TEXT: {
					const p = x.sqlite3_column_text(stmt, i);
					const len = x.sqlite3_column_bytes(stmt, i);
					this.#takeBytes(len);
					if (len > MAX_STRING_LENGTH) {
						const units = utf16Units(api.heap().subarray(p, p + len));
						if (units > MAX_STRING_LENGTH) {
							throw new TooBig(
								`a TEXT value of ${units} UTF-16 code units is longer than the longest string this JS runtime holds (${MAX_STRING_LENGTH})`,
							);
						}
					}
					// Every byte, NUL included; invalid UTF-8 becomes U+FFFD.
					cell = len === 0 ? "" : api.decoder.decode(api.heap().subarray(p, p + len));
					break;
				}
				case SQLITE_BLOB: {
					const p = x.sqlite3_column_blob(stmt, i);
					const len = x.sqlite3_column_bytes(stmt, i);
					this.#takeBytes(len);
					cell = len === 0 ? new Uint8Array(0) : api.heap().slice(p, p + len);
					break;
				}
				default:
					cell = null;
			}
			cells.push(cell);
		}
	}

	/** Counts `len` bytes of a TEXT or BLOB value against the call's bound, before the value is copied (src/values.rs read_row). */
	#takeBytes(len) {
		if (len > this.#bytesLeft) {
			throw new TooBig(
				`the call's results would hold more than ${this.#maxBytes} bytes of TEXT and BLOB values (its statements together; see maxResultBytes)`,
			);
		}
		this.#bytesLeft -= len;
	}

	/** Whether no transaction is open. */
	isAutocommit() {
		return this.#x.sqlite3_get_autocommit(this.#conn()) !== 0;
	}

	/** Takes the pending delta into `slab` and `meta` (see Tracker#take). */
	takeDelta(slab, at, meta) {
		return this.#trackerOrThrow().take(slab, at, meta);
	}

	/**
	 * What a rollback journal for the pending commit must hold: `{ size,
	 * pages: [[index, bytes], ...] }`, the durable size and the durable bytes
	 * of every chunk changed since, within that size.
	 */
	journal() {
		return this.#trackerOrThrow().durableImages();
	}

	/** The delta taken last is durable in the KV. */
	ack() {
		this.#trackerOrThrow().ack();
	}

	/**
	 * Back to the last durable state: closes SQLite (rolling back any open
	 * transaction), restores the file from its before-images and reopens.
	 */
	restore() {
		this.#putBack(() => this.#trackerOrThrow().restore());
	}

	/**
	 * Closes SQLite, puts the file back with `putBack` (the tracker's restore
	 * or discard), and connects SQLite again. No deadline or stop of the
	 * running call applies to reconnecting; the call's stay as they were.
	 */
	#putBack(putBack) {
		const control = this.#s.control;
		const { deadline, interrupted, stopped, ended } = control;
		this.#kept = this.#keptSettings(this.#conn());
		try {
			this.#closeConnection();
			putBack();
			control.startCall(null);
			this.#connect();
		} catch (error) {
			throw this.#fault(error);
		} finally {
			Object.assign(control, { deadline, interrupted, stopped, ended });
		}
	}

	/** The settings the last connection had, set again on the next (see #keptSettings). */
	#kept = [];

	/**
	 * The values of the settings a restore keeps (lib/policy.txt, `kept`) on
	 * `db`, as [name, value] with the value as SQL sets it; one that cannot
	 * be read is left out.
	 */
	#keptSettings(db) {
		const x = this.#x;
		const kept = [];
		for (const { name, words } of this.#api.kept) {
			const [p, len] = this.#api.encodeInto(this.#s.sqlScratch, `PRAGMA ${name}`);
			const { rc, stmt } = this.#prepare(db, p, len, 0);
			if (rc !== SQLITE_OK || !stmt) continue;
			try {
				if (x.sqlite3_step(stmt) !== SQLITE_ROW) continue;
				const value = Number(x.sqlite3_column_int64(stmt, 0));
				kept.push([name, words[value] ?? String(value)]);
			} finally {
				x.sqlite3_finalize(stmt);
			}
		}
		return kept;
	}

	#closeConnection() {
		const db = this.#s.db;
		if (!db) return;
		this.#s.db = 0;
		this.#flushCache();
		const rc = this.#x.sqlite3_close_v2(db);
		if (rc !== SQLITE_OK) throw engineError(codeName(rc), this.#api.cstr(this.#x.sqlite3_errstr(rc)));
	}

	/** The whole database file. */
	export() {
		const db = this.#conn();
		if (this.#x.sqlite3_get_autocommit(db) === 0) {
			throw engineError(codeName(SQLITE_MISUSE), "cannot export while a transaction is open");
		}
		return this.#s.set.main.toBytes();
	}

	/** Closes SQLite and frees the files. Idempotent. */
	close() {
		if (this.#closed) return;
		this.#closed = true;
		this.#tracker = null;
		finalizer.unregister(this.#s);
		const rc = release(this.#api, this.#s);
		if (rc !== SQLITE_OK) throw engineError(codeName(rc), this.#api.cstr(this.#x.sqlite3_errstr(rc)));
	}
}

module.exports = { WasmDatabase };
