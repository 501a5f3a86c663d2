"use strict";

// @rivetkit/sqlite-vfs/kv/lmdb: a durable embedded KV store for `open`, in an
// LMDB environment (a folder) through the `lmdb` package (an optional peer
// dependency, loaded here only). One environment holds any number of actors'
// KVs, each under its own key prefix. Every putBatch and deleteBatch is one
// LMDB write transaction, hence atomic, and its promise resolves once LMDB
// committed it and flushed it to disk (fsync).

const path = require("node:path");
const fs = require("node:fs");

const { createChecks } = require("./checks");

// LMDB's largest key as the lmdb package builds it (MDB_MAXKEYSIZE).
const LMDB_MAX_KEY_SIZE = 1978;
// The map sizes accepted: a page, up to 16 TiB (of address space, not memory).
const MIN_MAP_SIZE = 4096;
const MAX_MAP_SIZE = 2 ** 44;

function loadLmdb() {
	try {
		return require("lmdb");
	} catch (error) {
		const hint = new Error('@rivetkit/sqlite-vfs/kv/lmdb needs the "lmdb" package (an optional peer dependency): npm install lmdb', {
			cause: error,
		});
		hint.code = "ERR_SQLITE_KV_DEPENDENCY";
		throw hint;
	}
}

// Environments open in this process, by real path, shared by their KVs.
const environments = new Map();

function acquireEnvironment(folder, mapSize) {
	const { open } = loadLmdb();
	fs.mkdirSync(folder, { recursive: true });
	const key = fs.realpathSync(folder);
	let env = environments.get(key);
	if (!env) {
		const root = open({
			path: key,
			keyEncoding: "binary",
			encoding: "binary",
			compression: false,
			cache: false,
			// Durable on resolve: each commit is flushed before its promise resolves.
			noSync: false,
			overlappingSync: false,
			...(mapSize === undefined ? {} : { mapSize }),
		});
		env = { key, root, refs: 0, closing: null };
		environments.set(key, env);
	}
	env.refs++;
	return env;
}

async function releaseEnvironment(env) {
	if (--env.refs > 0) return;
	if (environments.get(env.key) === env) environments.delete(env.key);
	await env.root.close();
}

/**
 * A durable KV store for `open`, holding actor `options.actor`'s keys in the
 * LMDB environment at `folder` (created if missing).
 * @param {string} folder the LMDB environment's directory
 * @param {{ actor?: string, limits?: object, mapSize?: number }} [options]
 *   `actor`: whose keys these are (default ""), any string of at most 1024
 *   UTF-8 bytes; `limits`: override the actor KV limits; `mapSize`: LMDB's
 *   initial map size in bytes, 4096 to 2 ** 44 (it grows as needed).
 */
function createLmdbKv(folder, options = {}) {
	if (typeof folder !== "string" || folder === "") throw new TypeError("folder must be a non-empty string");
	if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
	const actor = options.actor ?? "";
	if (typeof actor !== "string") throw new TypeError(`options.actor must be a string, got ${typeof actor}`);
	const actorBytes = Buffer.from(actor, "utf8");
	if (actorBytes.length > 1024) throw new RangeError("options.actor must be at most 1024 UTF-8 bytes");
	const check = createChecks(options.limits);
	const { mapSize } = options;
	if (mapSize !== undefined) {
		if (typeof mapSize !== "number") throw new TypeError(`options.mapSize must be a number, got ${typeof mapSize}`);
		// lmdb takes a bad size without a word and crashes the process on it.
		if (!Number.isInteger(mapSize) || mapSize < MIN_MAP_SIZE || mapSize > MAX_MAP_SIZE) {
			throw new RangeError(`options.mapSize must be an integer from ${MIN_MAP_SIZE} to 2 ** 44 (16 TiB), got ${mapSize}`);
		}
	}

	// Key prefix: the actor id's length (u16 big-endian) and bytes, so that no
	// actor's prefix is a prefix of another's.
	const prefix = Buffer.alloc(2 + actorBytes.length);
	prefix.writeUInt16BE(actorBytes.length, 0);
	actorBytes.copy(prefix, 2);
	const storedKey = (key) => {
		if (prefix.length + key.length > LMDB_MAX_KEY_SIZE) {
			throw new Error(
				`KV key of ${key.length} bytes is too long for LMDB (${LMDB_MAX_KEY_SIZE - prefix.length} bytes with this actor's prefix)`,
			);
		}
		return Buffer.concat([prefix, key]);
	};
	// This actor's stored keys, in order: those from `prefix` on that start with it.
	const ownKeys = function* () {
		for (const key of root.getKeys({ start: prefix })) {
			if (key.length < prefix.length || !key.subarray(0, prefix.length).equals(prefix)) return;
			yield Buffer.from(key);
		}
	};

	const env = acquireEnvironment(path.resolve(folder), mapSize);
	const { root } = env;
	let closed = false;
	const live = () => {
		if (closed) throw new Error("This LMDB KV store is closed");
	};
	const read = (key) => {
		const value = root.getBinary(storedKey(key));
		return value === undefined ? null : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
	};

	return {
		actor,
		limits: check.limits,
		/** The environment's directory. */
		path: env.key,
		async get(key) {
			live();
			return read(check.key(key));
		},
		async getBatch(keys) {
			live();
			// Read synchronously, within lmdb's current read transaction: the
			// values are all of one committed state.
			return check.keys("getBatch", keys).map(read);
		},
		async put(key, value) {
			live();
			const k = storedKey(check.key(key));
			const v = Buffer.from(check.value(value)); // a copy: written later, in lmdb's batch
			await root.transaction(() => root.put(k, v));
		},
		async putBatch(entries) {
			live();
			// Checked and encoded in full before the transaction: all or nothing.
			// (Applied in order: the last value of a repeated key wins.)
			const encoded = check.entries(entries).map(([key, value]) => [storedKey(key), Buffer.from(value)]);
			if (encoded.length === 0) return;
			await root.transaction(() => {
				for (const [key, value] of encoded) root.put(key, value);
			});
		},
		async deleteBatch(keys) {
			live();
			const encoded = check.keys("deleteBatch", keys).map(storedKey);
			if (encoded.length === 0) return;
			await root.transaction(() => {
				for (const key of encoded) root.remove(key);
			});
		},
		/** Every [key, value] pair of this actor, in key order. */
		async entries() {
			live();
			return [...ownKeys()].map((key) => [new Uint8Array(key.subarray(prefix.length)), new Uint8Array(root.getBinary(key))]);
		},
		/** Deletes every key of this actor, in one transaction. */
		async clear() {
			live();
			await root.transaction(() => {
				for (const key of [...ownKeys()]) root.remove(key);
			});
		},
		/** Releases the environment (closed with its last KV). Idempotent. */
		async close() {
			if (closed) return;
			closed = true;
			await releaseEnvironment(env);
		},
	};
}

module.exports = { createLmdbKv, LMDB_MAX_KEY_SIZE };
