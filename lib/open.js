"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { isMainThread } = require("node:worker_threads");

const { Database } = require("./database");
const { Persistence, resolveLimits } = require("./persist");
const { SqliteError, fromEngine } = require("./errors");
const { createEngine } = require("./engines");
const { boundValue } = require("./policy");

const KV_METHODS = ["get", "getBatch", "put", "putBatch", "deleteBatch"];

// Local files of databases not yet closed, so that they go when the process
// exits by process.exit(), which runs no native cleanup, even if the user
// never called close(). (At a natural exit, and when a worker ends, the
// addon closes what is open and removes its files itself: src/teardown.rs.)
// Only paths are kept: an engine dropped without close() is still freed (its
// files removed) by the GC. WASM engines have no local files. On the main
// thread the process ends with it, and the process's directory that holds
// the files (see crates/engine/src/scratch.rs) goes too.
const liveFiles = new Set();
const processDirectories = new Set();
let exitHook = false;

function track(engine) {
	const file = engine.localPath;
	if (typeof file !== "string") return () => {};
	liveFiles.add(file);
	if (isMainThread) processDirectories.add(path.dirname(file));
	if (!exitHook) {
		exitHook = true;
		process.once("exit", removeLocalFiles);
	}
	return () => liveFiles.delete(file);
}

function removeLocalFiles() {
	const paths = [];
	for (const file of liveFiles) paths.push(file, `${file}-journal`);
	paths.push(...processDirectories);
	for (const name of paths) {
		try {
			fs.rmSync(name, { recursive: true, force: true });
		} catch {
			// Best effort, as the process ends (Windows removes no open file).
		}
	}
}

// KV stores that have an open database (null while it opens): two databases
// on one KV would each believe they own it, and overwrite each other's pages.
// Each holds the database's claim (see openClaim), not the database: one
// dropped without close() frees its KV for another once the GC has collected
// it (`dropped`). Nothing of it can reach the KV then: a KV call in flight
// keeps the database (the handlers that settle its call) alive until it ends.
const kvInUse = new WeakMap();
const dropped = new FinalizationRegistry(({ kv, claim }) => {
	if (kvInUse.get(kv) === claim) kvInUse.delete(kv);
});

/**
 * A database's claim on its KV, as claim() reads it (`closed`, `close()`),
 * without a reference to the database: no WeakRef either, which would keep
 * the database alive to the end of the current job (a loop opening and
 * closing thousands of databases in one would keep them all).
 */
function openClaim() {
	let closing = null;
	return {
		closed: false,
		close: () => closing,
		closingWith(promise) {
			this.closed = true;
			closing = promise;
		},
	};
}

function checkArguments(fileName, kv, options) {
	if (typeof fileName !== "string") throw new TypeError(`fileName must be a string, got ${typeof fileName}`);
	if (fileName.includes("\0")) throw new TypeError("fileName must not contain NUL characters");
	if (kv === null || typeof kv !== "object") throw new TypeError("kv must be an object with get, getBatch, put, putBatch and deleteBatch");
	const missing = KV_METHODS.filter((name) => typeof kv[name] !== "function");
	if (missing.length > 0) throw new TypeError(`kv is missing method(s): ${missing.join(", ")}`);
	if (kv.onError !== undefined && typeof kv.onError !== "function") throw new TypeError("kv.onError must be a function");
	if (options !== undefined && (options === null || typeof options !== "object")) {
		throw new TypeError("options must be an object");
	}
}

/**
 * Claims `key` in `map` for a database about to open (null until it is):
 * waits while `map` holds, under `key`, a database that is closing (an actor
 * put to sleep and woken at once); throws `busy()` if it holds one that is
 * open or opening. `check()` runs after each wait. The last check and the
 * claim are one step: of two opens made at once, the second sees the first's
 * claim.
 */
async function claim(map, key, busy, check = () => {}) {
	while (map.has(key)) {
		const current = map.get(key);
		if (current === null || !current.closed) throw busy();
		await current.close().catch(() => {});
		check();
	}
	map.set(key, null);
}

/** The longest one call may run unless `timeoutMs` says otherwise. */
const DEFAULT_TIMEOUT_MS = 30_000;
// Sets the default where the code that opens cannot pass `timeoutMs`
// (rivetkit opens its actors' databases itself).
const TIMEOUT_ENV_VAR = "RIVETKIT_SQLITE_TIMEOUT_MS";

/**
 * `options.timeoutMs` as the engine takes it: milliseconds, or null for no
 * limit. Without it, the environment variable's value, else the default.
 */
function resolveTimeout(timeoutMs) {
	let source = "timeoutMs";
	let got = typeof timeoutMs === "string" ? JSON.stringify(timeoutMs) : typeof timeoutMs === "number" ? timeoutMs : typeof timeoutMs;
	if (timeoutMs === undefined) {
		const fromEnv = process.env[TIMEOUT_ENV_VAR];
		if (fromEnv === undefined || fromEnv.trim() === "") return DEFAULT_TIMEOUT_MS;
		source = TIMEOUT_ENV_VAR;
		got = JSON.stringify(fromEnv);
		timeoutMs = fromEnv.trim() === "null" ? null : Number(fromEnv);
	}
	if (timeoutMs === null || timeoutMs === 0 || timeoutMs === Number.POSITIVE_INFINITY) return null;
	if (typeof timeoutMs !== "number" || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
		throw new TypeError(`${source} must be a positive number of milliseconds, 0 or Infinity (no limit), got ${got}`);
	}
	return timeoutMs;
}

/** The most values, and bytes of TEXT and BLOB values, one call's results may hold, and the defaults (lib/policy.txt). */
const MAX_RESULT_VALUES = boundValue("result_values");
const MAX_RESULT_BYTES = boundValue("result_bytes");

/** Option `name` (a bound of one call's results), checked: an integer from 1 to `most`, the default. */
function resolveResultBound(name, value, most) {
	if (value === undefined) return most;
	if (typeof value !== "number" || !Number.isInteger(value)) {
		throw new TypeError(`${name} must be an integer, got ${typeof value === "number" ? value : typeof value}`);
	}
	if (value < 1 || value > most) throw new RangeError(`${name} must be from 1 to ${most}, got ${value}`);
	return value;
}

/**
 * Opens the database `fileName` stored in `kv` (created empty if the KV holds
 * none). Resolves to a Database once the whole file is loaded.
 */
async function open(fileName, kv, options = {}, onClose = undefined) {
	checkArguments(fileName, kv, options);
	const limits = resolveLimits(options.limits);
	const timeoutMs = resolveTimeout(options.timeoutMs);
	const maxValues = resolveResultBound("maxResultValues", options.maxResultValues, MAX_RESULT_VALUES);
	const maxBytes = resolveResultBound("maxResultBytes", options.maxResultBytes, MAX_RESULT_BYTES);
	const preload = options.preload;
	if (preload !== undefined && typeof preload !== "boolean") {
		throw new TypeError(`preload must be a boolean, got ${typeof preload}`);
	}
	await claim(kvInUse, kv, () => new SqliteError(`This KV store already has an open database (opening "${fileName}")`, "SQLITE_BUSY"));
	let engine = null;
	let untrack = null;
	try {
		engine = await createEngine(options.backend);
		untrack = track(engine);
		engine.setTimeout(timeoutMs);
		engine.setResultBounds(maxValues, maxBytes);
		const persistence = new Persistence(kv, limits, engine, { preload });
		await persistence.open();
		const claim = openClaim();
		const db = new Database(
			engine,
			persistence,
			fileName,
			async (db) => {
				untrack();
				dropped.unregister(claim);
				if (kvInUse.get(kv) === claim) kvInUse.delete(kv);
				await onClose?.(db);
			},
			(closing) => claim.closingWith(closing),
		);
		kvInUse.set(kv, claim);
		dropped.register(db, { kv, claim }, claim);
		return db;
	} catch (error) {
		kvInUse.delete(kv);
		untrack?.();
		try {
			await engine?.close();
		} catch {
			// The open's own error is the one to report.
		}
		throw fromEngine(error);
	}
}

/**
 * The 2.2.1 entry point: `new SqliteVfs().open(fileName, kv)`. One instance
 * refuses to open the same fileName twice; destroy() closes everything.
 */
class SqliteVfs {
	#databases = new Map();
	/** fileName → a database still opening: the promise of it, or of null if its open fails. */
	#opening = new Map();
	#destroyed = false;

	open(fileName, kv, options) {
		const opening = this.#open(fileName, kv, options);
		// The name is claimed at once when it is free, or this open waits for
		// the database closing under it: from here on, closeFile() waits for
		// this open (and a second open of the name, refused, leaves this entry
		// alone; of two waiting for one close, the first made gets the name).
		const holder = this.#databases.get(fileName);
		if ((holder === null || holder?.closed === true) && !this.#opening.has(fileName)) {
			const entry = opening.catch(() => null);
			this.#opening.set(fileName, entry);
			entry.then(() => {
				if (this.#opening.get(fileName) === entry) this.#opening.delete(fileName);
			});
		}
		return opening;
	}

	async #open(fileName, kv, options) {
		if (this.#destroyed) throw closedVfs();
		await claim(
			this.#databases,
			fileName,
			() => new SqliteError(`SqliteVfs: fileName "${fileName}" is already open on this instance`, "SQLITE_BUSY"),
			() => {
				if (this.#destroyed) throw closedVfs();
			},
		);
		let db;
		try {
			db = await open(fileName, kv, options, () => {
				if (this.#databases.get(fileName) === db) this.#databases.delete(fileName);
			});
		} catch (error) {
			this.#databases.delete(fileName);
			throw error;
		}
		this.#databases.set(fileName, db);
		if (this.#destroyed) {
			await db.close();
			throw closedVfs();
		}
		return db;
	}

	/** Closes the database named `fileName`, if this instance has it open or opening. */
	async closeFile(fileName) {
		// The database of that name, and an open of it still under way (which
		// may be waiting for that database to close).
		const db = this.#databases.get(fileName);
		const opening = this.#opening.get(fileName);
		try {
			await db?.close();
		} finally {
			await (await opening)?.close();
		}
	}

	/**
	 * 2.2.1's name for closeFile(), with its result: whether every close
	 * succeeded (a close rejects when a failed write could not be undone).
	 */
	async forceCloseByFileName(fileName) {
		try {
			await this.closeFile(fileName);
			return { allSucceeded: true };
		} catch {
			return { allSucceeded: false };
		}
	}

	/** Closes every database opened through this instance (errors ignored); later opens still work. */
	async forceCloseAll() {
		// (A name still opening is in #databases too, as null: see claim.)
		await Promise.allSettled([...this.#databases.keys()].map((fileName) => this.closeFile(fileName)));
	}

	/** Closes every database opened through this instance, those still opening included; later opens reject. */
	async destroy() {
		this.#destroyed = true;
		await this.forceCloseAll();
	}

	/** Alias of destroy(). */
	close() {
		return this.destroy();
	}
}

/** What an open on a destroyed SqliteVfs rejects with (2.2.1's message, as a SqliteError). */
function closedVfs() {
	return new SqliteError("SqliteVfs is closed", "SQLITE_MISUSE");
}

module.exports = { open, SqliteVfs };
