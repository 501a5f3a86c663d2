"use strict";

// SqliteVfsPool: the surface rivetkit 2.2.1 uses to get each actor's
// database (`acquire(actorId)` → handle, `handle.open(fileName, kv)`,
// `handle.destroy()`, `release`, `shutdown`).
//
// In 2.2.1 a pool "instance" was a WASM SQLite module shared by up to
// `actorsPerInstance` actors. Here nothing heavy is per instance: the native
// engine has no module to share, and the WASM engine shares one module across
// the whole process. A pool instance is a group of up to `actorsPerInstance`
// actors (a SqliteVfs), assigned by the same bin-packing as 2.2.1 and
// destroyed `idleDestroyMs` after its last actor left; `instanceCount` counts
// those groups, so capacity planning built on 2.2.1's numbers keeps working.

const { SqliteVfs } = require("./open");

// How the pool and its handles talk to each other; not part of their public surface.
const releaseHandle = Symbol("releaseHandle");
const closeHandle = Symbol("closeHandle");
// The longest delay setTimeout keeps (a longer one fires after 1 ms).
const MAX_TIMER_DELAY = 2 ** 31 - 1;

class SqliteVfsPool {
	#config;
	#instances = new Set();
	#actors = new Map(); // actorId → { instance, handle }
	// actorId → the closing of a released handle's databases, while it runs:
	// the actor's next handle opens nothing before it is done (see acquire).
	#closing = new Map();
	// An instance: { vfs, actors: Set of the handles placed on it, idleTimer }.
	#shuttingDown = false;

	/** @param {{ actorsPerInstance: number, idleDestroyMs?: number }} config */
	constructor(config) {
		if (config === null || typeof config !== "object") throw new TypeError("SqliteVfsPool needs a config object");
		if (!Number.isInteger(config.actorsPerInstance) || config.actorsPerInstance < 1) {
			throw new Error(`actorsPerInstance must be a positive integer, got ${config.actorsPerInstance}`);
		}
		// As in 2.2.1: null or undefined is the default, a negative delay none;
		// Infinity keeps an idle instance (2.2.1's timer fired at once), and so
		// does a delay longer than a timer can wait (2^31 - 1 ms, about 24.8
		// days), which setTimeout would cut to 1 ms.
		const idle = config.idleDestroyMs ?? 30_000;
		if (typeof idle !== "number" || Number.isNaN(idle)) {
			throw new TypeError(`idleDestroyMs must be a number of milliseconds, got ${config.idleDestroyMs}`);
		}
		const delay = idle > MAX_TIMER_DELAY ? Number.POSITIVE_INFINITY : Math.max(0, idle);
		this.#config = { actorsPerInstance: config.actorsPerInstance, idleDestroyMs: delay };
	}

	/** Number of live pool instances (groups of at most actorsPerInstance actors). */
	get instanceCount() {
		return this.#instances.size;
	}

	/** Number of actors holding a handle. */
	get actorCount() {
		return this.#actors.size;
	}

	/** The actor's handle; the same one until it is released or destroyed. */
	async acquire(actorId) {
		if (this.#shuttingDown) throw new Error("SqliteVfsPool is shutting down");
		if (typeof actorId !== "string") throw new TypeError("actorId must be a string");
		const existing = this.#actors.get(actorId);
		if (existing) return existing.handle;
		// Bin-packing, as in 2.2.1: the fullest instance that still has room.
		let best = null;
		for (const instance of this.#instances) {
			const count = instance.actors.size;
			if (count < this.#config.actorsPerInstance && (best === null || count > best.actors.size)) best = instance;
		}
		if (best === null) {
			best = { vfs: new SqliteVfs(), actors: new Set(), idleTimer: null };
			this.#instances.add(best);
		}
		if (best.idleTimer) {
			clearTimeout(best.idleTimer);
			best.idleTimer = null;
		}
		// The actor may come back on another instance than the one its release
		// is still closing it on, where no name or KV check sees the old
		// database: its opens wait for that close.
		const handle = new PooledSqliteHandle(this, actorId, best.vfs, this.#closing.get(actorId));
		best.actors.add(handle);
		this.#actors.set(actorId, { instance: best, handle });
		return handle;
	}

	/**
	 * Closes the actor's databases and gives its place back. The actor may be
	 * acquired again at once, before this settles: the new handle is its own,
	 * and nothing this release still does touches it.
	 */
	async release(actorId) {
		const entry = this.#actors.get(actorId);
		if (entry) await this.#release(actorId, entry);
	}

	/** Releases `handle`, the pool's handle for `actorId` or an older one. */
	async [releaseHandle](actorId, handle) {
		const entry = this.#actors.get(actorId);
		if (entry?.handle === handle) await this.#release(actorId, entry);
		else await handle[closeHandle]();
	}

	async #release(actorId, entry) {
		this.#actors.delete(actorId);
		const { instance, handle } = entry;
		instance.actors.delete(handle);
		const closing = handle[closeHandle]();
		this.#closing.set(actorId, closing);
		try {
			await closing;
		} finally {
			if (this.#closing.get(actorId) === closing) this.#closing.delete(actorId);
		}
		if (
			instance.actors.size === 0 &&
			instance.idleTimer === null &&
			!this.#shuttingDown &&
			this.#instances.has(instance) &&
			this.#config.idleDestroyMs !== Number.POSITIVE_INFINITY
		) {
			instance.idleTimer = setTimeout(() => {
				instance.idleTimer = null;
				if (instance.actors.size === 0 && this.#instances.delete(instance)) instance.vfs.destroy();
			}, this.#config.idleDestroyMs);
			// An idle timer must not keep the process alive.
			instance.idleTimer.unref?.();
		}
	}

	/** Closes every database, then refuses new acquire() calls. */
	async shutdown() {
		this.#shuttingDown = true;
		const instances = [...this.#instances];
		this.#instances.clear();
		const handles = [...this.#actors.values()].map((entry) => entry.handle);
		this.#actors.clear();
		await Promise.allSettled([
			...handles.map((handle) => handle[closeHandle]()),
			...instances.map((instance) => {
				if (instance.idleTimer) clearTimeout(instance.idleTimer);
				return instance.vfs.destroy();
			}),
		]);
	}
}

/** One actor's way to open its database through the pool (2.2.1's ISqliteVfs). */
class PooledSqliteHandle {
	#pool;
	#actorId;
	#vfs;
	#released = false;
	/** Databases opened through this handle (those closed since are dropped at the next open). */
	#databases = new Set();
	/** Opens under way (each closes its database and rejects if the handle is released meanwhile). */
	#opening = new Set();
	/** The closing of the actor's previous handle, if it was still running at acquire(). */
	#previous;

	/** @internal Use `SqliteVfsPool#acquire()`. */
	constructor(pool, actorId, vfs, previous) {
		this.#pool = pool;
		this.#actorId = actorId;
		this.#vfs = vfs;
		this.#previous = previous;
	}

	/**
	 * Opens the actor's database in `kv`. `fileName` is accepted for
	 * compatibility; the database is named after the actor, so an actor cannot
	 * open it twice at once.
	 */
	async open(_fileName, kv, options) {
		if (this.#released) throw new Error("PooledSqliteHandle has been released");
		const opening = this.#open(kv, options);
		this.#opening.add(opening);
		try {
			return await opening;
		} finally {
			this.#opening.delete(opening);
		}
	}

	async #open(kv, options) {
		// Its writes are durable, or undone, before this database reads the KV.
		await this.#previous?.catch(() => {});
		if (this.#released) throw new Error("PooledSqliteHandle has been released");
		const db = await this.#vfs.open(this.#actorId, kv, options);
		if (this.#released) {
			// Released while opening: this database belongs to nobody.
			await db.close();
			throw new Error("PooledSqliteHandle has been released");
		}
		// An actor that reopens its database through one handle keeps only
		// the databases still open, not every one it closed.
		for (const old of this.#databases) if (old.closed) this.#databases.delete(old);
		this.#databases.add(db);
		return db;
	}

	/** Releases the actor's place in the pool. Idempotent. */
	async destroy() {
		if (this.#released) return;
		await this.#pool[releaseHandle](this.#actorId, this);
	}

	/**
	 * Marks the handle released and closes the databases it opened, those
	 * still opening included: the actor's next handle opens after this. A
	 * handle that opened nothing still waits for the closing of the handle
	 * before it (the pool remembers only the last release of an actor).
	 */
	async [closeHandle]() {
		this.#released = true;
		const databases = [...this.#databases];
		this.#databases.clear();
		await Promise.allSettled([...databases.map((db) => db.close()), ...this.#opening, this.#previous]);
	}
}

module.exports = { SqliteVfsPool, PooledSqliteHandle };
