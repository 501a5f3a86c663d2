"use strict";

// The Database users hold. Calls run one at a time, in call order. The engine
// seals its changes at every point where no transaction is open; the calls run
// back to back (those made while a write is in flight) share one write of what
// they sealed (group commit, see Persistence#commit), and a call settles only
// once what it wrote is durable.

const { SqliteError, fromEngine, lostEffects } = require("./errors");
const { normalizeParams, snapshotParams, checkSql } = require("./params");

// Bits of the engine's `state` (see #execute).
const AUTOCOMMIT = 1;
const PENDING = 2;
const SUSPENDED = 4;
const MORE = 8;

// Kinds of call.
const EXEC = 0;
const RUN = 1;
const QUERY = 2;
const EXPORT = 3;
const CLOSE = 4;

// Column lists kept per database (see Database#columns).
const COLUMN_LISTS = 256;

// Where engines may put `[changes, lastInsertRowid, state]` of a call that
// returns no columns, instead of a new array (see #execute). Shared by every
// database: it is read as soon as the call returns. Engines may keep it and
// write to its memory later: it lives as long as the module, and its buffer,
// allocated for it alone, is never detached.
const STATUS = new Float64Array(new ArrayBuffer(3 * Float64Array.BYTES_PER_ELEMENT));

// A settled promise of `true`: what #joinBatch waits on, one microtask, for a
// call that ran at once and left a sealed delta.
const RAN = Promise.resolve(true);

/** A call waiting for its turn, then for its outcome to settle. */
/**
 * The error of a call that does not run: the transaction it was made to run
 * in was rolled back (`why`, `cause`).
 */
function rolledBackError(why, cause) {
	return new SqliteError(`the transaction this call was made in was rolled back: ${why}`, "SQLITE_ABORT_ROLLBACK", { cause });
}

/** The job whose promise promiseOf() is making (see there). */
let promised = null;

/** Gives `promised` the resolving functions of the promise being made. Made once. */
function bind(resolve, reject) {
	promised.resolve = resolve;
	promised.reject = reject;
}

/**
 * The promise `job` settles (through its `resolve` and `reject`). One
 * executor made once for every job: a closure per call costs an allocation,
 * in a fresh process's tier a noticeable part of a write's JS.
 */
function promiseOf(job) {
	promised = job;
	const settled = new Promise(bind);
	promised = null;
	return settled;
}

class Job {
	constructor(kind, sql, params, callback, resolve, reject) {
		this.kind = kind;
		this.sql = sql;
		this.params = params;
		this.callback = callback;
		this.resolve = resolve;
		this.reject = reject;
		this.ok = false;
		this.value = undefined;
		/** Why the call failed; set before it runs if its parameters could not be taken (see #enqueue). */
		this.error = undefined;
		/** Whether a failed call had effects (see #failed). */
		this.effects = false;
	}
}

class Database {
	#engine;
	#persistence;
	#fileName;
	#onClose;
	#onClosing;
	#queue = [];
	/** The state bits the last execute reported (see #execute). */
	#state = 0;
	/** Whether no transaction is open, as of the last call that ran. */
	#autocommit = true;
	/** Whether the running call reached the engine. */
	#reachedEngine = false;
	/**
	 * The error of a call that failed and took its transaction with it
	 * (SQLite rolled it back: see #failed), while the calls made to run in
	 * that transaction are refused; null otherwise.
	 */
	#rolledBackBy = null;
	#pumping = false;
	/** Whether close() was called: calls made since reject. */
	#closed = false;
	#closing = null;
	/** Whether the engine is closed: the calls made before close() have all run. */
	#engineClosed = false;

	/**
	 * @internal Use `open()` or `SqliteVfs#open()`. `onClosing(promise)` is
	 * called as close() starts, with its promise; `onClose(db)` once it is
	 * done.
	 */
	constructor(engine, persistence, fileName, onClose, onClosing) {
		this.#engine = engine;
		this.#persistence = persistence;
		this.#fileName = fileName;
		this.#onClose = onClose;
		this.#onClosing = onClosing;
	}

	get fileName() {
		return this.#fileName;
	}

	/** "native" or "wasm": the engine running this database. */
	get backend() {
		return this.#engine.backend;
	}

	/**
	 * Whether a transaction is open, as of the calls that have run so far
	 * (await your calls before reading it).
	 */
	get inTransaction() {
		return !this.#closed && !this.#autocommit;
	}

	/**
	 * Stops the call that is running, if any: it rejects with `SqliteError`
	 * `SQLITE_INTERRUPT` (see README, "Interrupts and timeouts"). Calls
	 * queued behind it run as usual. After close() too, until the calls made
	 * before it have run: close() waits for them.
	 */
	interrupt() {
		if (!this.#engineClosed) this.#engine.interrupt();
	}

	/** Whether close() was called. */
	get closed() {
		return this.#closed;
	}

	/**
	 * Runs `sql` on the engine. Engines return one flat array (the cheapest
	 * to build across N-API): `[changes, lastInsertRowid, state, columns₀,
	 * rowCount₀, cells₀…, columns₁, …]`, for each statement that returns
	 * columns its column names joined by "\0", its row count, and its cells
	 * row after row; `state` has bit 1 set when no transaction is open, bit 2
	 * when the engine holds a sealed delta to write, and bit 4 when the call
	 * goes on on an engine thread (the native engine suspends calls that
	 * would hold the JS thread too long): `resume()` finishes it. An engine
	 * may instead return null for a call that returns no columns, with
	 * `[changes, lastInsertRowid, state]` in STATUS. A large result made on
	 * an engine thread comes in parts: see #partedResult. Returns the call's
	 * result (see #result), or a promise of it.
	 */
	#execute(kind, sql, params, callback) {
		if (sql !== this.#checkedSql) this.#checkedSql = checkSql(sql);
		let positional = null;
		let named = null;
		let collect = kind === QUERY;
		if (kind === EXEC) {
			if (callback !== undefined) {
				if (typeof callback !== "function") throw new TypeError("exec callback must be a function");
				collect = true;
			}
		} else {
			const values = normalizeParams(params);
			if (Array.isArray(values)) positional = values;
			else named = values;
		}
		this.#persistence.ready();
		this.#reachedEngine = true;
		const out = this.#engine.execute(sql, positional, named, collect, STATUS);
		const state = out === null ? STATUS[2] : out[2];
		if ((state & SUSPENDED) === 0) return this.#result(kind, out, state);
		return this.#persistence.finish(this.#engine.resume()).then((finished) => {
			if (finished instanceof Error) throw finished;
			if ((finished[2] & MORE) !== 0) return this.#partedResult(kind, finished);
			return this.#result(kind, finished, finished[2]);
		});
	}

	/**
	 * What a call of `kind` resolves to when its result comes in parts (a
	 * large one made on an engine thread's behalf: `first`, the first part,
	 * as #execute describes it, has bit 8 set in its `state`). Each later
	 * part is the engine's to make (moreResults()), and each part's rows are
	 * made here, on a turn of the event loop of its own: other databases'
	 * calls, timers and I/O go on in between. Parts hold whole rows; a part
	 * after the first starts with the rest of the set under way, if any.
	 */
	async #partedResult(kind, first) {
		// The rows of every set, for exec; those of all sets in one array, for query.
		const sets = [];
		const all = [];
		let set = null;
		let left = 0;
		let part = first;
		for (let at = 3; part !== null; at = 0) {
			while (at < part.length) {
				if (left === 0) {
					set = { rows: kind === QUERY ? all : [], columns: this.#columns(part[at]) };
					sets.push(set);
					left = part[at + 1];
					at += 2;
					continue;
				}
				const width = set.columns.length;
				const rows = set.rows;
				const end = Math.min(part.length, at + left * width);
				left -= (end - at) / width;
				for (; at < end; at += width) rows.push(part.slice(at, at + width));
			}
			await new Promise((resolve) => setImmediate(resolve));
			part = this.#engine.moreResults();
		}
		this.#noteState(first[2] & ~MORE);
		return kind === QUERY ? { rows: all, columns: sets[0].columns } : sets;
	}

	/**
	 * The SQL text that passed checkSql last: calls run the same text again
	 * and again, and scanning it for a NUL costs more than comparing it
	 * (the same string, most often, which compares at once). It starts as
	 * "", which passes: no other value may skip the check (a first call
	 * with null once reached the engine, which takes null for the last
	 * call's SQL).
	 */
	#checkedSql = "";

	/** Column lists by their names joined by "\0", as engines give them. */
	#columnLists = new Map();

	/**
	 * The column list `joined` names, a new array (callers may change it).
	 * Splitting the names for every call costs more than looking them up.
	 */
	#columns(joined) {
		let columns = this.#columnLists.get(joined);
		if (columns === undefined) {
			if (this.#columnLists.size >= COLUMN_LISTS) this.#columnLists.clear();
			columns = joined.split("\0");
			this.#columnLists.set(joined, columns);
		}
		return columns.slice();
	}

	/**
	 * The result set of an engine's `out` (see #execute) that starts at
	 * `at`: `{ rows, columns }`. The next set starts 2 + rows × columns
	 * entries after `at`.
	 * A single row (a point query's) is an array literal: an empty array
	 * grows its room for 16 rows at the first push. No literal here holds
	 * another: V8's baseline tiers, which run a fresh process's calls, make
	 * such a literal in the runtime (about 500 instructions), a flat one
	 * inline.
	 */
	#resultSet(out, at) {
		const columns = this.#columns(out[at]);
		const count = out[at + 1];
		const width = columns.length;
		at += 2;
		if (count === 1) {
			const rows = [out.slice(at, at + width)];
			return { rows, columns };
		}
		const rows = [];
		for (let end = at + count * width; at < end; at += width) rows.push(out.slice(at, at + width));
		return { rows, columns };
	}

	/** The result sets of an engine's `out` (see #execute): `[{ rows, columns }, …]`. */
	#resultSets(out) {
		const sets = [];
		for (let at = 3; at < out.length; ) {
			const set = this.#resultSet(out, at);
			sets.push(set);
			at += 2 + set.rows.length * set.columns.length;
		}
		return sets;
	}

	/** The engine's `state` after a call (see #execute). */
	#noteState(state) {
		this.#state = state;
		this.#autocommit = (state & AUTOCOMMIT) !== 0;
	}

	/**
	 * What a call of `kind` resolves to (before #finish), from the engine's
	 * `out` (null: read STATUS) and the `state` it gave.
	 */
	#result(kind, out, state) {
		this.#noteState(state);
		switch (kind) {
			case RUN:
				return out === null ? { changes: STATUS[0], lastInsertRowid: STATUS[1] } : { changes: out[0], lastInsertRowid: out[1] };
			case QUERY: {
				if (out === null || out.length === 3) {
					const rows = [];
					const columns = [];
					return { rows, columns };
				}
				// One statement's rows, without the array of sets.
				const first = this.#resultSet(out, 3);
				if (5 + first.rows.length * first.columns.length === out.length) return first;
				const sets = this.#resultSets(out);
				// Several statements: their rows concatenated, the first's columns.
				return { rows: sets.flatMap((set) => set.rows), columns: sets[0].columns };
			}
			default:
				// exec: the result sets, for its callback.
				return out === null || out.length === 3 ? null : this.#resultSets(out);
		}
	}

	/**
	 * Runs every statement of `sql`. With a callback, it is called with
	 * `(row, columns)` for each result row, once the call's writes are durable.
	 */
	exec(sql, callback) {
		return this.#enqueue(EXEC, sql, undefined, callback);
	}

	/** Runs `sql` with `params`; resolves to `{ changes, lastInsertRowid }`. */
	run(sql, params) {
		return this.#pumping || this.#closed || this.#rolledBackBy !== null
			? this.#enqueue(RUN, sql, params, undefined)
			: this.#now(RUN, sql, params);
	}

	/** Runs `sql` with `params`; resolves to `{ rows, columns }`. */
	query(sql, params) {
		return this.#pumping || this.#closed || this.#rolledBackBy !== null
			? this.#enqueue(QUERY, sql, params, undefined)
			: this.#now(QUERY, sql, params);
	}

	/** The whole SQLite database file, as the KV holds it. */
	export() {
		return this.#enqueue(EXPORT, undefined, undefined, undefined);
	}

	/**
	 * Waits for pending calls, closes the database and frees its local files.
	 * Idempotent; calls made after close() reject.
	 */
	close() {
		if (this.#closing) return this.#closing;
		const job = new Job(CLOSE, undefined, undefined, undefined, null, null);
		this.#closing = new Promise((resolve, reject) => {
			job.resolve = resolve;
			job.reject = reject;
		});
		this.#closed = true;
		this.#onClosing?.(this.#closing);
		this.#queue.push(job);
		if (!this.#pumping) this.#pump();
		return this.#closing;
	}

	/**
	 * A call. When nothing else is queued or running, it runs at once, and if
	 * it needs no write (a read, a call inside a transaction) it costs one
	 * settled promise; otherwise it waits for its turn.
	 */
	#enqueue(kind, sql, params, callback) {
		if (this.#closed) {
			return Promise.reject(new SqliteError(`Database "${this.#fileName}" is closed`, "SQLITE_MISUSE"));
		}
		const job = new Job(kind, sql, params, callback, null, null);
		if (!this.#pumping) {
			this.#pumping = true;
			try {
				return this.#ran(job, this.#runJob(job));
			} catch (error) {
				this.#pumping = false;
				return this.#unwound(error);
			}
		}
		const settled = promiseOf(job);
		this.#queue.push(job);
		// The call runs later: it binds its parameters as they are now, not
		// as the caller's array, object or buffers are by then. Read after
		// the job is queued, so that calls made by a getter of them run
		// after it; a failure is the call's, at its turn (see #runJob).
		if (kind === RUN || kind === QUERY) {
			try {
				job.params = snapshotParams(params);
			} catch (error) {
				job.error = error;
			}
		}
		return settled;
	}

	/**
	 * #enqueue of a run or a query while the database is idle: #runJob then
	 * #ran, without a Job unless the call fails, writes or goes on on an
	 * engine thread. Most calls (reads, calls inside a transaction) end
	 * here, and in a fresh process this code runs interpreted, where each
	 * object and call counts.
	 */
	#now(kind, sql, params) {
		this.#pumping = true;
		try {
			this.#reachedEngine = false;
			const autocommitBefore = this.#autocommit;
			let value;
			try {
				value = this.#execute(kind, sql, params, undefined);
			} catch (error) {
				const job = new Job(kind, sql, params, undefined, null, null);
				return this.#ran(job, this.#failed(job, error, autocommitBefore));
			}
			if (value instanceof Promise) {
				const job = new Job(kind, sql, params, undefined, null, null);
				return this.#ran(job, this.#settled(job, value, autocommitBefore));
			}
			if ((this.#state & PENDING) !== 0) {
				// A write that ran at once and succeeded (what #ran and
				// #settled make of it, without their other cases).
				const job = new Job(kind, sql, params, undefined, null, null);
				job.ok = true;
				job.value = value;
				const settled = promiseOf(job);
				this.#joinBatch(job, true);
				return settled;
			}
			// Calls made meanwhile (by a getter of the parameters, say).
			if (this.#queue.length > 0) this.#pumpLater();
			else this.#pumping = false;
			return Promise.resolve(value);
		} catch (error) {
			// First of all, with no call: the stack may be out still.
			this.#pumping = false;
			return this.#unwound(error);
		}
	}

	/**
	 * A call that threw before it was settled or joined a batch, once the
	 * pump is released: only the runtime throws there, when the JS stack runs
	 * out (a call made from deep recursion). The call fails with that error
	 * (thrown, if even this runs out of stack), and the database goes on:
	 * whatever the call did in the engine (it may have run) is written with
	 * the next call that writes, as the effects of a failed call are.
	 */
	#unwound(error) {
		if (this.#queue.length > 0) {
			this.#pumping = true;
			this.#pumpLater();
		}
		return Promise.reject(error);
	}

	/**
	 * The promise of `job`, which ran at once (`ran`: see #runJob), while
	 * this call holds the pump.
	 */
	#ran(job, ran) {
		if (ran === false) {
			let settled;
			try {
				if (!job.ok) settled = Promise.reject(job.error);
				// An exec callback runs once exec() has returned, as it does
				// when the call waits its turn: never inside exec().
				else if (job.callback !== undefined) settled = RAN.then(() => this.#finish(job));
				else settled = Promise.resolve(this.#finish(job));
			} catch (error) {
				settled = Promise.reject(error);
			}
			if (this.#rolledBackBy !== null) {
				// The call failed at once: calls made in this same turn, before
				// its rejection could be seen, are refused; later ones run.
				this.#refuseQueued();
				RAN.then(() => {
					this.#rolledBackBy = null;
				});
			}
			// Calls made by an exec callback.
			if (this.#queue.length > 0) this.#pumpLater();
			else this.#pumping = false;
			return settled;
		}
		const settled = promiseOf(job);
		this.#joinBatch(job, ran);
		return settled;
	}

	/** Goes on pumping once `done` (a close) is done. */
	#continue(done) {
		done.then(
			() => this.#pump(),
			() => this.#pump(),
		);
	}

	/**
	 * Runs the queued calls, batch after batch, until none is left or a batch
	 * waits (for its write, for a call on an engine thread): that batch goes
	 * on pumping when it is done (see #finishBatch).
	 */
	#pump() {
		this.#pumping = true;
		while (this.#queue.length > 0) {
			if (this.#queue[0].kind === CLOSE) {
				this.#continue(this.#finishClose(this.#queue.shift()));
				return;
			}
			if (this.#runBatch(this.#takeBatch(), 0, false) !== undefined) return;
		}
		this.#pumping = false;
	}

	/** The queued calls up to (not including) a close. */
	#takeBatch() {
		const queue = this.#queue;
		const end = queue.findIndex((job) => job.kind === CLOSE);
		if (end === -1) {
			this.#queue = [];
			return queue;
		}
		return queue.splice(0, end);
	}

	/**
	 * Runs a batch's calls from call `from` on, one after another (`pending`:
	 * whether those before left a sealed delta), then writes what they sealed
	 * (group commit) and settles them. Returns undefined when all that was
	 * done at once; otherwise the batch goes on pumping when it is done.
	 */
	#runBatch(jobs, from, pending) {
		for (let i = from; i < jobs.length; i++) {
			const ran = this.#runJob(jobs[i]);
			// A call goes on on an engine thread: the batch ends with it, so it
			// settles as soon as it is done (and written), with the calls
			// before it. The calls after it go back to the queue.
			if (ran !== true && ran !== false) {
				// (concat: a spread of 120,000 calls or more throws.)
				const rest = jobs.splice(i + 1);
				if (rest.length > 0) this.#queue = rest.concat(this.#queue);
				this.#runRest(jobs, ran, pending).catch(() => this.#pump());
				return ran;
			}
			pending ||= ran;
		}
		return this.#finishBatch(jobs, pending);
	}

	/**
	 * The batch of a call that ran at once and needs a write (`ran`: true),
	 * or that goes on on an engine thread (`ran`: its promise). A call that
	 * ran at once shares its write with the calls made meanwhile (those made
	 * in the same tick at least), which join its batch once queued; one on
	 * an engine thread settles as soon as it is done, and the calls made
	 * meanwhile run after. A promise reaction, not an async function (whose
	 * awaits and own promise add reactions to every write), nor
	 * queueMicrotask (Node runs it in an async resource of its own).
	 */
	#joinBatch(job, ran) {
		if (ran === true) {
			this.#joining = job;
			RAN.then(this.#joined);
			return;
		}
		ran.then((pending) => {
			try {
				this.#endBatch([job], pending);
			} catch {
				this.#pump();
			}
		});
	}

	/**
	 * The call that ran at once and left a sealed delta, while #joined waits
	 * for the calls made meanwhile. One at a time: it holds the pump.
	 */
	#joining = null;

	/** The batch of #joining: it, then the calls queued meanwhile (see #joinBatch). Made once. */
	#joined = () => {
		const job = this.#joining;
		this.#joining = null;
		try {
			// Alone (most often): its write, with nothing to run first.
			if (this.#queue.length === 0) {
				if (this.#finishBatch([job], true) === undefined) this.#pump();
				return;
			}
			const jobs = this.#takeBatch();
			jobs.unshift(job);
			if (this.#runBatch(jobs, 1, true) === undefined) this.#pump();
		} catch {
			this.#pump();
		}
	};

	/** The end of a batch whose last call runs on an engine thread (`ran`: its promise). */
	async #runRest(jobs, ran, pending) {
		// Awaited whatever `pending` is (`||=` would skip the await).
		const wrote = await ran;
		this.#endBatch(jobs, pending || wrote);
	}

	/**
	 * Writes and settles a batch that ended with a call on an engine thread,
	 * then goes on pumping in a later microtask: the calls queued behind it
	 * form the next batch, and calls that settle together are those that
	 * shared one write.
	 */
	#endBatch(jobs, pending) {
		if (this.#finishBatch(jobs, pending, true) === undefined) this.#pumpLater();
	}

	/** Goes on pumping in a later microtask than this one. */
	#pumpLater() {
		RAN.then(() => this.#pump());
	}

	/**
	 * Runs one call and notes its outcome on `job`. Returns whether it left a
	 * sealed delta to write, or a promise of that when it goes on on an engine
	 * thread.
	 */
	#runJob(job) {
		this.#reachedEngine = false;
		if (this.#rolledBackBy !== null) return this.#refuse(job);
		const autocommitBefore = this.#autocommit;
		// Parameters that could not be taken when the call was made.
		if (job.error !== undefined) return this.#failed(job, job.error, autocommitBefore);
		let value;
		try {
			value = job.kind === EXPORT ? this.#persistence.export() : this.#execute(job.kind, job.sql, job.params, job.callback);
		} catch (error) {
			return this.#failed(job, error, autocommitBefore);
		}
		return this.#settled(job, value, autocommitBefore);
	}

	/** #runJob once `value`, the call's outcome or a promise of it, came. */
	#settled(job, value, autocommitBefore) {
		if (value instanceof Promise) {
			return value.then(
				(finished) => this.#succeeded(job, finished),
				(error) => this.#failed(job, error, autocommitBefore),
			);
		}
		return this.#succeeded(job, value);
	}

	#succeeded(job, value) {
		job.ok = true;
		job.value = value;
		return job.kind !== EXPORT && (this.#state & PENDING) !== 0;
	}

	#failed(job, error, autocommitBefore) {
		// A failed call may still have had effects: the statements of a
		// script before the failing one (sealed, or inside a transaction
		// that a later call of the batch commits), a transaction it
		// opened, or the transaction it ran in (which a failed write of
		// its batch rolls back).
		const changed = this.#reachedEngine && this.#changedByLastCall();
		job.error = fromEngine(error);
		job.effects = changed || !autocommitBefore || !this.#autocommit;
		if (this.#reachedEngine && this.#rolledBackByLastCall()) this.#rolledBackBy = job.error;
		return changed;
	}

	/**
	 * A call made while the transaction it was made to run in was being
	 * rolled back by a failure (see #rolledBackBy): it does not run. Run in
	 * autocommit, it would commit a later part of the transaction without
	 * the earlier one (and a COMMIT among such calls would fail).
	 */
	#refuse(job) {
		const cause = this.#rolledBackBy;
		job.error = rolledBackError(`a call before it failed (${cause.message})`, cause);
		job.effects = false;
		return false;
	}

	/** Refuses the queued calls (see #refuse): they were made before the failure could be seen. */
	#refuseQueued() {
		const cause = this.#rolledBackBy;
		this.#rejectQueued(`a call before it failed (${cause.message})`, cause);
	}

	/** Rejects the queued calls: the transaction they were made to run in was rolled back (`why`, `cause`). */
	#rejectQueued(why, cause) {
		for (const job of this.#takeBatch()) job.reject(rolledBackError(why, cause));
	}

	/**
	 * Once the batch of a call that failed and took its transaction with it
	 * has settled: the calls queued meanwhile are refused, and those made
	 * from now on run.
	 */
	#endRollback() {
		if (this.#rolledBackBy === null) return;
		this.#refuseQueued();
		this.#rolledBackBy = null;
	}

	#rolledBackByLastCall() {
		try {
			return this.#engine.lastCallRolledBack();
		} catch {
			return false;
		}
	}

	/**
	 * Writes what the batch sealed, if anything, then settles its calls.
	 * Returns undefined when that was done at once; otherwise, the write's
	 * promise: once it is done, the calls settle and pumping goes on (in a
	 * later microtask if `later`), in one step. One batch writes at a time
	 * (it holds the pump): #written and #unwritten, made once, find it in
	 * #writing.
	 */
	#finishBatch(jobs, pending, later = false) {
		if (!pending) {
			this.#settle(jobs);
			return undefined;
		}
		this.#writing = jobs;
		this.#writingLater = later;
		try {
			return this.#persistence.commit(this.#written, this.#unwritten);
		} catch (error) {
			return Promise.reject(error).then(undefined, this.#unwritten);
		}
	}

	/** The calls of the batch whose write is in flight, and whether pumping then goes on in a later microtask (see #finishBatch). */
	#writing = null;
	#writingLater = false;

	/** The batch's write is durable: its calls settle. */
	#written = () => {
		const jobs = this.#writing;
		this.#writing = null;
		this.#settle(jobs);
		this.#afterWrite();
	};

	/** The batch's write failed (`error`): see #settleFailedWrite. */
	#unwritten = (error) => {
		const jobs = this.#writing;
		this.#writing = null;
		this.#settleFailedWrite(jobs, error);
		this.#afterWrite();
	};

	#afterWrite() {
		if (this.#writingLater) this.#pumpLater();
		else if (this.#queue.length > 0) this.#pump();
		else this.#pumping = false;
	}

	/**
	 * What a call resolves to; an exec callback runs here, once the call's
	 * writes are durable (a promise, if the callback returned one: see
	 * callRows).
	 */
	#finish(job) {
		if (job.kind !== EXEC) return job.value;
		const callback = job.callback;
		return callback !== undefined && job.value !== null ? callRows(callback, job.value) : undefined;
	}

	#settle(jobs) {
		for (let i = 0; i < jobs.length; i++) {
			const job = jobs[i];
			if (!job.ok) job.reject(job.error);
			else if (job.kind !== EXEC) job.resolve(job.value);
			else {
				try {
					job.resolve(this.#finish(job));
				} catch (error) {
					job.reject(error);
				}
			}
		}
		this.#endRollback();
	}

	/**
	 * Persistence put the engine back to the state the KV holds (no
	 * transaction open): every call of the batch lost its effects, and says so.
	 */
	#settleFailedWrite(jobs, error) {
		const inTransaction = !this.#autocommit;
		this.#autocommit = true;
		for (const job of jobs) {
			if (job.ok) job.reject(error);
			else job.reject(job.effects ? lostEffects(job.error, error) : job.error);
		}
		if (inTransaction) this.#abortQueued(error);
		this.#endRollback();
	}

	/**
	 * The batch whose write failed (`error`) ended inside a transaction, which
	 * is gone: the calls queued meanwhile were made to run in it. Run outside
	 * it, in autocommit, they would commit what followed without what came
	 * before (a COMMIT among them would then fail). They reject instead, as
	 * the rest of a pipeline does after an error; calls made from now on run.
	 */
	#abortQueued(error) {
		this.#rejectQueued(`the KV write of the calls before it failed (${error.message})`, error);
	}

	#changedByLastCall() {
		try {
			this.#autocommit = this.#engine.isAutocommit();
			return this.#engine.lastCallChanged();
		} catch {
			return false;
		}
	}

	/**
	 * Closes the engine, once a failed write that may have been applied is
	 * undone in the KV (see Persistence#repairBeforeClose). The database is
	 * closed either way; if that undoing failed, close() rejects with the
	 * KV's error: the KV may then hold the failed write.
	 */
	async #finishClose(job) {
		let failure = null;
		try {
			await this.#persistence.repairBeforeClose();
		} catch (error) {
			failure = error;
		}
		this.#engineClosed = true;
		try {
			await this.#engine.close();
		} catch (error) {
			failure ??= fromEngine(error);
		}
		this.#persistence.closed();
		try {
			if (failure === null) job.resolve();
			else job.reject(failure);
		} finally {
			// Anything queued behind close() was refused at enqueue time.
			try {
				await this.#onClose?.(this);
			} catch {
				// Bookkeeping only.
			}
		}
	}
}

/**
 * Calls `callback(row, columns)` for each row of the result `sets`, in
 * order. A callback that returns a promise (an async one) is awaited before
 * the next row, as 2.2.1 did: the promise of the rows left is returned
 * then, and rejects with the callback's rejection (exec() rejects with it).
 */
function callRows(callback, sets) {
	for (let s = 0; s < sets.length; s++) {
		const { columns, rows } = sets[s];
		for (let r = 0; r < rows.length; r++) {
			const returned = callback(rows[r], columns);
			if (returned !== null && (typeof returned === "object" || typeof returned === "function") && typeof returned.then === "function") {
				return callRowsAfter(callback, sets, s, r, returned);
			}
		}
	}
	return undefined;
}

/** callRows from the row after `rows[r]` of `sets[s]`, once `pending` (its callback's promise) settles. */
async function callRowsAfter(callback, sets, s, r, pending) {
	await pending;
	for (let next = r + 1; s < sets.length; s++, next = 0) {
		const { columns, rows } = sets[s];
		for (; next < rows.length; next++) await callback(rows[next], columns);
	}
}

module.exports = { Database };
