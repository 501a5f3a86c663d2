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

class SqliteVfsPool {
	#config;
	#instances = new Set();
	#actors = new Map(); // actorId → { instance, handle }
	#shuttingDown = false;

	/** @param {{ actorsPerInstance: number, idleDestroyMs?: number }} config */
	constructor(config) {
		if (config === null || typeof config !== "object") throw new TypeError("SqliteVfsPool needs a config object");
		if (!Number.isInteger(config.actorsPerInstance) || config.actorsPerInstance < 1) {
			throw new Error(`actorsPerInstance must be a positive integer, got ${config.actorsPerInstance}`);
		}
		if (config.idleDestroyMs !== undefined && !(Number.isFinite(config.idleDestroyMs) && config.idleDestroyMs >= 0)) {
			throw new Error(`idleDestroyMs must be a non-negative number, got ${config.idleDestroyMs}`);
		}
		this.#config = { actorsPerInstance: config.actorsPerInstance, idleDestroyMs: config.idleDestroyMs ?? 30_000 };
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
		best.actors.add(actorId);
		const handle = new PooledSqliteHandle(this, actorId, best.vfs);
		this.#actors.set(actorId, { instance: best, handle });
		return handle;
	}

	/** Closes the actor's databases and gives its place back. */
	async release(actorId) {
		const entry = this.#actors.get(actorId);
		if (!entry) return;
		this.#actors.delete(actorId);
		released.add(entry.handle);
		const { instance } = entry;
		await instance.vfs.closeFile(actorId);
		instance.actors.delete(actorId);
		if (instance.actors.size === 0 && !this.#shuttingDown && this.#instances.has(instance)) {
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
		for (const entry of this.#actors.values()) released.add(entry.handle);
		this.#actors.clear();
		await Promise.allSettled(
			instances.map((instance) => {
				if (instance.idleTimer) clearTimeout(instance.idleTimer);
				return instance.vfs.destroy();
			}),
		);
	}
}

/** The handles whose actor the pool released (or that were destroyed). */
const released = new WeakSet();

/** One actor's way to open its database through the pool (2.2.1's ISqliteVfs). */
class PooledSqliteHandle {
	#pool;
	#actorId;
	#vfs;

	/** @internal Use `SqliteVfsPool#acquire()`. */
	constructor(pool, actorId, vfs) {
		this.#pool = pool;
		this.#actorId = actorId;
		this.#vfs = vfs;
	}

	/**
	 * Opens the actor's database in `kv`. `fileName` is accepted for
	 * compatibility; the database is named after the actor, so an actor cannot
	 * open it twice at once.
	 */
	async open(_fileName, kv, options) {
		if (released.has(this)) throw new Error("PooledSqliteHandle has been released");
		return this.#vfs.open(this.#actorId, kv, options);
	}

	/** Releases the actor's place in the pool. Idempotent. */
	async destroy() {
		if (released.has(this)) return;
		released.add(this);
		await this.#pool.release(this.#actorId);
	}
}

module.exports = { SqliteVfsPool, PooledSqliteHandle };
