"use strict";

// The Database users hold. Calls run one at a time, in call order. After each
// call that leaves no transaction open, the engine's delta is sealed; the
// sealed deltas of all calls run back to back are written to the KV together
// (group commit), and a call settles only once what it wrote is durable.

const { fromEngine } = require("./errors");
const { normalizeParams, checkSql } = require("./params");

class Database {
	#engine;
	#persistence;
	#fileName;
	#onClose;
	#queue = [];
	/** The state bits the last execute reported (-1: unknown). */
	#state = -1;
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
		return !this.#closed && !this.#engine.isAutocommit();
	}

	/** Whether close() was called. */
	get closed() {
		return this.#closed;
	}

	/**
	 * Runs `sql` on the engine. Engines return `[changes, lastInsertRowid,
	 * state, columns₀, rows₀, …]` (a flat array is much cheaper to build
	 * across N-API than objects); `state` tells whether a transaction is open
	 * and whether the file changed, which saves two engine calls per call.
	 */
	#execute(sql, positional, named, collect) {
		const out = this.#engine.execute(sql, positional, named, collect);
		this.#state = out[2];
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
			const out = this.#execute(sql, null, null, callback !== undefined);
			return () => {
				if (callback) {
					for (const set of out.sets) for (const row of set.rows) callback(row, set.columns);
				}
			};
		});
	}

	/** Runs `sql` with `params`; resolves to `{ changes, lastInsertRowid }`. */
	run(sql, params) {
		return this.#enqueue(() => {
			checkSql(sql);
			const { positional, named } = normalizeParams(params);
			const out = this.#execute(sql, positional, named, false);
			const result = { changes: out.changes, lastInsertRowid: out.lastInsertRowid };
			return () => result;
		});
	}

	/** Runs `sql` with `params`; resolves to `{ rows, columns }`. */
	query(sql, params) {
		return this.#enqueue(() => {
			checkSql(sql);
			const { positional, named } = normalizeParams(params);
			const out = this.#execute(sql, positional, named, true);
			const result =
				out.sets.length === 1
					? { rows: out.sets[0].rows, columns: out.sets[0].columns }
					: { rows: out.sets.flatMap((set) => set.rows), columns: out.sets[0]?.columns ?? [] };
			return () => result;
		});
	}

	/** The whole SQLite database file, as the KV holds it. */
	export() {
		return this.#enqueue(() => {
			const bytes = this.#engine.export();
			return () => bytes;
		});
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
		const engine = this.#engine;
		const outcomes = [];
		let delta = null;
		for (const job of jobs) {
			this.#state = -1;
			try {
				outcomes.push({ ok: true, value: job.op() });
			} catch (error) {
				this.#state = -1;
				outcomes.push({ ok: false, error: fromEngine(error) });
			}
			// A call that leaves no transaction open is sealed right away, so a
			// later call opening a transaction cannot mix into its delta.
			try {
				const state = this.#state;
				const autocommit = state === -1 ? engine.isAutocommit() : (state & 1) !== 0;
				const changed = state === -1 || (state & 2) !== 0;
				if (autocommit && changed) delta = mergeDelta(delta, engine.seal());
			} catch (error) {
				outcomes[outcomes.length - 1] = { ok: false, error: fromEngine(error) };
			}
		}
		if (delta !== null) {
			try {
				await this.#persistence.write(delta, () => engine.journal());
				engine.ack();
			} catch (error) {
				// The KV holds the state before this batch: go back to it, and
				// fail every call of the batch.
				let restoreError = null;
				try {
					engine.restore();
				} catch (e) {
					restoreError = fromEngine(e);
				}
				jobs.forEach((job, i) => job.reject(outcomes[i].ok ? (restoreError ?? error) : outcomes[i].error));
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

function mergeDelta(acc, sealed) {
	if (sealed === null || sealed === undefined) return acc;
	if (acc === null) acc = { size: sealed.previousSize, maxSize: sealed.previousSize, chunks: new Map() };
	for (const [index, bytes] of sealed.chunks) acc.chunks.set(index, bytes);
	acc.size = sealed.size;
	acc.maxSize = Math.max(acc.maxSize, sealed.size);
	return acc;
}

module.exports = { Database, mergeDelta };
