"use strict";

// The Database users hold. Calls run one at a time, in call order. The engine
// seals its changes at every point where no transaction is open; the calls run
// back to back (those made while a write is in flight) share one write of what
// they sealed (group commit, see Persistence#commit), and a call settles only
// once what it wrote is durable.

const { fromEngine, lostEffects } = require("./errors");
const { normalizeParams, checkSql } = require("./params");

// Bits of the engine's `state` (see #execute).
const AUTOCOMMIT = 1;
const PENDING = 2;
const SUSPENDED = 4;

/** `fn(value)`, or, if `value` is a promise, a promise of it. */
const then = (value, fn) => (value instanceof Promise ? value.then(fn) : fn(value));

class Database {
	#engine;
	#persistence;
	#fileName;
	#onClose;
	#queue = [];
	/** The state bits the last execute reported (see #execute). */
	#state = 0;
	/** Whether no transaction is open, as of the last call that ran. */
	#autocommit = true;
	/** Whether the running call reached the engine. */
	#reachedEngine = false;
	#pumping = false;
	#closed = false;
	#closing = null;

	/** @internal Use `open()` or `SqliteVfs#open()`. */
	constructor(engine, persistence, fileName, onClose) {
		this.#engine = engine;
		this.#persistence = persistence;
		this.#fileName = fileName;
		this.#onClose = onClose;
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
	 * queued behind it run as usual.
	 */
	interrupt() {
		if (!this.#closed) this.#engine.interrupt();
	}

	/** Whether close() was called. */
	get closed() {
		return this.#closed;
	}

	/**
	 * Runs `sql` on the engine. Engines return `[changes, lastInsertRowid,
	 * state, columns₀, rows₀, …]` (a flat array is much cheaper to build
	 * across N-API than objects); `state` has bit 1 set when no transaction is
	 * open, bit 2 when the engine holds a sealed delta to write, and bit 4
	 * when the call goes on on an engine thread (the native engine suspends
	 * calls that would hold the JS thread too long): `resume()` finishes it.
	 * Returns the decoded result, or a promise of it.
	 */
	#execute(sql, positional, named, collect) {
		this.#reachedEngine = true;
		const out = this.#engine.execute(sql, positional, named, collect);
		if ((out[2] & SUSPENDED) === 0) return this.#decode(out);
		return this.#persistence.finish(this.#engine.resume()).then((finished) => {
			if (finished instanceof Error) throw finished;
			return this.#decode(finished);
		});
	}

	#decode(out) {
		this.#state = out[2];
		this.#autocommit = (out[2] & AUTOCOMMIT) !== 0;
		const sets = [];
		for (let i = 3; i < out.length; i += 2) sets.push({ columns: out[i], rows: out[i + 1] });
		return { changes: out[0], lastInsertRowid: out[1], sets };
	}

	/**
	 * Runs every statement of `sql`. With a callback, it is called with
	 * `(row, columns)` for each result row, once the call's writes are durable.
	 */
	exec(sql, callback) {
		return this.#enqueue(() => {
			checkSql(sql);
			if (callback !== undefined && typeof callback !== "function") {
				throw new TypeError("exec callback must be a function");
			}
			return then(this.#execute(sql, null, null, callback !== undefined), (out) => () => {
				if (callback) {
					for (const set of out.sets) for (const row of set.rows) callback(row, set.columns);
				}
			});
		});
	}

	/** Runs `sql` with `params`; resolves to `{ changes, lastInsertRowid }`. */
	run(sql, params) {
		return this.#enqueue(() => {
			checkSql(sql);
			const { positional, named } = normalizeParams(params);
			return then(this.#execute(sql, positional, named, false), (out) => {
				const result = { changes: out.changes, lastInsertRowid: out.lastInsertRowid };
				return () => result;
			});
		});
	}

	/** Runs `sql` with `params`; resolves to `{ rows, columns }`. */
	query(sql, params) {
		return this.#enqueue(() => {
			checkSql(sql);
			const { positional, named } = normalizeParams(params);
			return then(this.#execute(sql, positional, named, true), (out) => {
				const result =
					out.sets.length === 1
						? { rows: out.sets[0].rows, columns: out.sets[0].columns }
						: { rows: out.sets.flatMap((set) => set.rows), columns: out.sets[0]?.columns ?? [] };
				return () => result;
			});
		});
	}

	/** The whole SQLite database file, as the KV holds it. */
	export() {
		return this.#enqueue(() => this.#persistence.export().then((bytes) => () => bytes));
	}

	/**
	 * Waits for pending calls, closes the database and frees its local files.
	 * Idempotent; calls made after close() reject.
	 */
	close() {
		if (this.#closing) return this.#closing;
		this.#closed = true;
		this.#closing = new Promise((resolve, reject) => {
			this.#queue.push({ op: null, resolve, reject });
			this.#pump();
		});
		return this.#closing;
	}

	#enqueue(op) {
		if (this.#closed) {
			return Promise.reject(new Error(`Database "${this.#fileName}" is closed`));
		}
		return new Promise((resolve, reject) => {
			this.#queue.push({ op, resolve, reject });
			this.#pump();
		});
	}

	async #pump() {
		if (this.#pumping) return;
		this.#pumping = true;
		try {
			while (this.#queue.length > 0) {
				const jobs = this.#takeBatch();
				if (jobs.length === 0) {
					await this.#finishClose(this.#queue.shift());
					continue;
				}
				await this.#runBatch(jobs);
			}
		} finally {
			this.#pumping = false;
		}
	}

	/** The queued calls up to (not including) a close. */
	#takeBatch() {
		const end = this.#queue.findIndex((job) => job.op === null);
		return this.#queue.splice(0, end === -1 ? this.#queue.length : end);
	}

	async #runBatch(jobs) {
		const outcomes = [];
		let pending = false;
		for (const job of jobs) {
			this.#reachedEngine = false;
			const autocommitBefore = this.#autocommit;
			try {
				let value = job.op();
				// A call finished on an engine thread: the next one waits for it.
				if (value instanceof Promise) value = await value;
				outcomes.push({ ok: true, value });
				pending ||= (this.#state & PENDING) !== 0;
			} catch (error) {
				// A failed call may still have had effects: the statements of a
				// script before the failing one (sealed, or inside a transaction
				// that a later call of the batch commits), a transaction it
				// opened, or the transaction it ran in (which a failed write of
				// its batch rolls back).
				const changed = this.#reachedEngine && this.#changedByLastCall();
				pending ||= changed;
				const effects = changed || !autocommitBefore || !this.#autocommit;
				outcomes.push({ ok: false, error: fromEngine(error), effects });
			}
		}
		if (pending) {
			try {
				await this.#persistence.commit();
			} catch (error) {
				// Persistence put the engine back to the state the KV holds
				// (no transaction open): every call of the batch lost its
				// effects, and says so.
				this.#autocommit = true;
				jobs.forEach((job, i) => {
					const outcome = outcomes[i];
					if (outcome.ok) job.reject(error);
					else job.reject(outcome.effects ? lostEffects(outcome.error, error) : outcome.error);
				});
				return;
			}
		}
		for (let i = 0; i < jobs.length; i++) {
			const outcome = outcomes[i];
			if (!outcome.ok) {
				jobs[i].reject(outcome.error);
				continue;
			}
			try {
				jobs[i].resolve(outcome.value());
			} catch (error) {
				jobs[i].reject(error);
			}
		}
	}

	#changedByLastCall() {
		try {
			this.#autocommit = this.#engine.isAutocommit();
			return this.#engine.lastCallChanged();
		} catch {
			return false;
		}
	}

	async #finishClose(job) {
		try {
			this.#engine.close();
			job.resolve();
		} catch (error) {
			job.reject(fromEngine(error));
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

module.exports = { Database };
